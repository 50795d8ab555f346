//! The `discovery` Lambda: configuration and the store, built once per cold start; each
//! request goes to [`discovery::handle`].

use device_flow::{DiscoveryConfig, FromEnv, Store};
use discovery::{App, handle};
use lambda_http::Error;

// mimalloc: about a tenth fewer instructions per request than glibc's allocator
// (BENCHMARKS.md); the verification page keeps glibc's, for its 8 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = DiscoveryConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let app = App::new(&config, store);
    device_flow::http::serve(app, handle).await
}
