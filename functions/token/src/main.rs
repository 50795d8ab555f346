//! The `token` Lambda: configuration, clients and signing keys, built once per cold
//! start; each request goes to [`token::handle`].
//!
//! At cold start it also starts publishing the public half of its key set for the
//! discovery function (which may not read the signing secret); the instance's first
//! signature waits until that is done, its first requests do not. A warm instance reads
//! its key set again every few minutes (`device_flow::usecase::signing_keys`).

use device_flow::time::{Clock as _, SystemClock};
use device_flow::{FromEnv, Store, TokenConfig};
use lambda_http::Error;
use token::{App, handle, key_source, load_keys};

// mimalloc: about a tenth fewer instructions per request than glibc's allocator
// (BENCHMARKS.md); the verification page keeps glibc's, for its 8 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = TokenConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let keys = load_keys(&config, &sdk).await?;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let source = key_source(&config, &sdk);
    let app = App::reading(config, store, keys, Some(source));
    // Published beside the first requests, not before them: the first signature waits
    // for it, a pending poll does not.
    app.tokens.start_publishing(SystemClock.now());
    device_flow::http::serve(app, handle).await
}
