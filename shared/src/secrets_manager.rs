//! Secrets the functions read once at cold start: the access-token signing keys (token)
//! and the OpenID client secret (the verification page).

use crate::config::SecretSource;

/// Why a secret could not be read. Never holds the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the secret failed")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the secret has no string value")]
    NotAString,
}

/// The secret's value: from the environment, or one `GetSecretValue`.
pub async fn read(
    source: &SecretSource,
    sdk: &aws_config::SdkConfig,
) -> Result<String, SecretError> {
    match source {
        SecretSource::Inline(value) => Ok(value.clone()),
        SecretSource::SecretsManager(id) => aws_sdk_secretsmanager::Client::new(sdk)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::Read(Box::new(e)))?
            .secret_string
            .ok_or(SecretError::NotAString),
    }
}
