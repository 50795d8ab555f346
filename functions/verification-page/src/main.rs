//! The `verification-page` Lambda: configuration, the store, the OpenID client secret and
//! the relying party, built once per cold start; each request goes to
//! [`verification_page::handle`].

use device_flow::{FromEnv, PageConfig, Store};
use lambda_http::Error;
use verification_page::{App, handle};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    device_flow::telemetry::init();
    let config = PageConfig::from_env()?;
    let sdk = device_flow::store::load_aws_config().await;
    let secret = match &config.provider.client_secret {
        Some(source) => Some(device_flow::secrets_manager::read(source, &sdk).await?),
        None => None,
    };
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        config.table_name.clone(),
    );
    let app = App::new(config, store, secret)?;
    device_flow::http::serve(app, handle).await
}
