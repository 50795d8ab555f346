//! The `device-authorization` Lambda: configuration, clients and the runtime, built once
//! per cold start; each request goes to [`device_authorization::handle`].

use device_authorization::{App, handle};
use device_flow::{DeviceConfig, FromEnv, Store};
use lambda_http::Error;

// mimalloc: about a tenth fewer instructions per request than glibc's allocator
// (BENCHMARKS.md); the verification page keeps glibc's, for its 8 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = DeviceConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let app = App::new(config, store);
    device_flow::http::serve(app, handle).await
}
