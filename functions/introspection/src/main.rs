//! The `introspection` Lambda: configuration, the store and the published keys, built once
//! per cold start; each request goes to [`introspection::handle`].

use device_flow::{FromEnv, IntrospectionConfig, Store};
use introspection::{App, handle};
use lambda_http::Error;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = IntrospectionConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let app = App::new(&config, store);
    // The key set is read once here; an unknown key id reads it again (at most once a
    // minute). A failure now is not fatal: the first request tries again.
    if let Err(error) = app.keys.load(&app.store).await {
        tracing::warn!(error = %error, "reading the published keys failed; retrying on first use");
    }
    device_flow::http::serve(app, handle).await
}
