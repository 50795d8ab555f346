//! `POST /oauth2/v1/token`: the device polls here until the user decides, then receives
//! its access token exactly once (RFC 8628 §3.4-3.5, RFC 6749 §5); later it trades its
//! refresh token for new tokens (RFC 6749 §6, rotated on every use).
//!
//! Reads the form and the client's credentials, asks [`poll`] or [`refresh`] what the
//! request means, and renders the outcome in RFC 6749's format.

use device_flow::domain::{DeviceCode, GrantType, RefreshToken, ScopeSet};
use device_flow::http::Form;
use device_flow::http::oauth::{OAuthError, client_credentials, token_response};
use device_flow::permissions::Permissions;
use device_flow::secrets_manager::{self, SecretError};
use device_flow::time::{Clock, SystemClock};
use device_flow::token::{KeyError, KeySet};
use device_flow::usecase::poll::{GrantRequest, PollRequest, poll};
use device_flow::usecase::refresh::{RefreshRequest, refresh};
use device_flow::usecase::signing_keys::{KeySource, TokenMinter};
use device_flow::{Store, TokenConfig};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The parameters this endpoint reads; only these are named in error messages.
const KNOWN_PARAMETERS: [&str; 6] = [
    "client_id",
    "client_secret",
    "grant_type",
    "device_code",
    "refresh_token",
    "scope",
];

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads clients and records, updates a record
/// on each poll, checks the client and writes the grant while consuming, reads a refresh token with
/// its grant and client in one batch, rotates it, publishes the JWKS at cold start, and reads the
/// signing-key secret.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    ],
    writes: &["DEVICE#", "GRANT#", "JWKS", "REFRESH#"],
    index: &[],
    client_index: &[],
    signing_key_secret: &["secretsmanager:GetSecretValue"],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub store: Store,
    pub tokens: TokenMinter,
    pub clock: Box<dyn Clock>,
}

impl App {
    /// The function's state with `keys`, read at cold start; they are published before
    /// the first signature.
    pub fn new(config: TokenConfig, store: Store, keys: KeySet) -> Self {
        Self::reading(config, store, keys, None)
    }

    /// [`App::new`], reading the key set again from `source` every few minutes (see
    /// [`device_flow::usecase::signing_keys`]).
    pub fn reading(
        config: TokenConfig,
        store: Store,
        keys: KeySet,
        source: Option<KeySource>,
    ) -> Self {
        let tokens = TokenMinter::reading(&config, store.clone(), keys, SystemClock.now(), source);
        Self {
            store: store.with_client_cache(config.client_cache),
            tokens,
            clock: Box::new(SystemClock),
        }
    }
}

/// Where a warm instance reads its key set again: the secret (or the variable) it read
/// at cold start.
pub fn key_source(config: &TokenConfig, sdk: &aws_config::SdkConfig) -> KeySource {
    let (source, sdk) = (config.signing_keys.clone(), sdk.clone());
    std::sync::Arc::new(move || {
        let (source, sdk) = (source.clone(), sdk.clone());
        Box::pin(async move {
            secrets_manager::read(&source, &sdk)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

/// Why the signing keys could not be loaded at cold start.
#[derive(Debug, thiserror::Error)]
pub enum LoadKeysError {
    #[error("reading the signing key secret failed")]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Reads and parses the signing key set once, at cold start: from `SIGNING_KEYS`, or
/// from the Secrets Manager secret `SIGNING_KEYS_SECRET_ID` names.
pub async fn load_keys(
    config: &TokenConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<KeySet, LoadKeysError> {
    let json = secrets_manager::read(&config.signing_keys, sdk).await?;
    Ok(KeySet::from_json(&json)?)
}

/// Handles one request; every outcome is an HTTP response with `Cache-Control: no-store`.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    exchange(app, &request)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

async fn exchange(app: &App, request: &Request) -> Result<Response<Body>, OAuthError> {
    if request.method() != Method::POST {
        return Err(OAuthError::invalid_request("use POST"));
    }
    let form = Form::parse(request.headers(), request.body())
        .map_err(|e| OAuthError::from_form(&e, &KNOWN_PARAMETERS))?;
    let credentials = client_credentials(request.headers(), &form)?;
    if form.get("grant_type") == Some(GrantType::RefreshToken.as_str()) {
        let Some(token) = form.get("refresh_token") else {
            return Err(OAuthError::invalid_request("refresh_token is required"));
        };
        let scope = form
            .get("scope")
            .map(|scope| {
                ScopeSet::parse(scope)
                    .map_err(|_| OAuthError::invalid_request("scope is malformed"))
            })
            .transpose()?;
        let request = RefreshRequest {
            credentials,
            // A malformed token cannot name any record; the client is still authenticated.
            refresh_token: RefreshToken::parse(token),
            scope,
            resources: form.resources().to_vec(),
        };
        let tokens = refresh(&app.store, &app.tokens, app.clock.as_ref(), request).await?;
        return Ok(token_response(&tokens));
    }
    let grant = match (form.get("grant_type"), form.get("device_code")) {
        (None, _) => GrantRequest::Missing("grant_type"),
        (Some(GrantType::DEVICE_CODE_URN), None) => GrantRequest::Missing("device_code"),
        // A malformed code cannot name any record: no need to ask the store for it.
        (Some(GrantType::DEVICE_CODE_URN), Some(code)) => {
            GrantRequest::DeviceCode(DeviceCode::parse(code))
        }
        (Some(_), _) => GrantRequest::Unsupported,
    };
    let request = PollRequest { credentials, grant };
    let token = poll(&app.store, &app.tokens, app.clock.as_ref(), request).await?;
    Ok(token_response(&token))
}
