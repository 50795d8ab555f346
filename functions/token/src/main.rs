//! The `token` Lambda: configuration, clients and signing keys, built once per cold
//! start; each request goes to [`token::handle`].
//!
//! At cold start it also publishes the public half of its key set for the discovery
//! function (which may not read the signing secret), before it signs anything.

use std::convert::Infallible;

use device_flow::token::KeySet;
use device_flow::{Config, SigningKeysSource, Store};
use lambda_http::{Error, run, service_fn};
use token::{App, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let key_set_json = match &config.signing_keys {
        Some(SigningKeysSource::Inline(json)) => json.clone(),
        Some(SigningKeysSource::SecretsManager(id)) => aws_sdk_secretsmanager::Client::new(&sdk)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| format!("reading the signing key secret failed: {e}"))?
            .secret_string
            .ok_or("the signing key secret has no string value")?,
        None => return Err("SIGNING_KEYS or SIGNING_KEYS_SECRET_ID is required".into()),
    };
    let keys = KeySet::from_json(&key_set_json)?;
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    store
        .publish_jwks(&keys.jwks_json(), keys.version())
        .await?;
    let app = App::new(config, store, keys);
    let app = &app;
    run(service_fn(move |request| async move {
        Ok::<_, Infallible>(handle(app, request).await)
    }))
    .await
}
