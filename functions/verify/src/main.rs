//! The `verify` Lambda: configuration, the store and the user-token verifier, built once
//! per cold start; each request goes to [`verify::handle`].

use device_flow::user_auth::UserTokenVerifier;
use device_flow::{FromEnv, Store, VerifyConfig};
use lambda_http::Error;
use verify::{App, handle};

// mimalloc: about a tenth fewer instructions per request than glibc's allocator
// (BENCHMARKS.md); the verification page keeps glibc's, for its 8 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = VerifyConfig::from_env()?;
    let users = UserTokenVerifier::new(&config.user_tokens).await?;
    let sdk = device_flow::store::load_aws_config().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let app = App::new(config, store, users);
    device_flow::http::serve(app, handle).await
}
