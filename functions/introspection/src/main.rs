//! The `introspection` Lambda: configuration and the store, built once per cold start (the
//! published keys at the first access token); each request goes to [`introspection::handle`].

use device_flow::{FromEnv, IntrospectionConfig, Store};
use introspection::{App, handle};
use lambda_http::Error;

// mimalloc: about a tenth fewer instructions per request than glibc's allocator
// (BENCHMARKS.md); the verification page keeps glibc's, for its 8 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = IntrospectionConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    // The published key set is read at the first access token introspected (a key id
    // never seen, and no read yet), not here: a cold start makes no request.
    let app = App::new(&config, store);
    device_flow::http::serve(app, handle).await
}
