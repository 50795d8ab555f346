//! `POST /oauth2/v1/token`: the device polls here until the user decides, then receives
//! its access token exactly once (RFC 8628 §3.4-3.5, RFC 6749 §5).
//!
//! DynamoDB cost: a public client's pending poll is one conditional `UpdateItem`; a
//! confidential client's adds the `GetItem` that authenticates it; the poll that gets
//! the token adds one `TransactWriteItems` that consumes the record.

use device_flow::domain::{DeviceCode, DeviceState, GrantType, PollDecision, decide};
use device_flow::error::{OAuthError, OAuthErrorCode};
use device_flow::http::{Form, json_response};
use device_flow::oauth::ClientCredentials;
use device_flow::permissions::Permissions;
use device_flow::store::{ConsumeOutcome, PollWrite};
use device_flow::time::{Clock, SystemClock, Timestamp};
use device_flow::token::{AccessTokenClaims, KeyError, KeySet};
use device_flow::{Config, SigningKeysSource, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The parameters this endpoint reads; only these are named in error messages.
const KNOWN_PARAMETERS: [&str; 4] = ["client_id", "client_secret", "grant_type", "device_code"];

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads clients and records, updates a record
/// on each poll, checks the client while consuming, publishes the JWKS at cold start, and reads the
/// signing-key secret.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    ],
    index: &[],
    signing_key_secret: &["secretsmanager:GetSecretValue"],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub keys: KeySet,
    pub clock: Box<dyn Clock>,
}

impl App {
    pub fn new(config: Config, store: Store, keys: KeySet) -> Self {
        Self {
            config,
            store,
            keys,
            clock: Box::new(SystemClock),
        }
    }
}

/// Why the signing keys could not be loaded at cold start.
#[derive(Debug, thiserror::Error)]
pub enum LoadKeysError {
    #[error("SIGNING_KEYS or SIGNING_KEYS_SECRET_ID is required")]
    NotConfigured,
    #[error("reading the signing key secret failed")]
    Secret(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the signing key secret has no string value")]
    NotAString,
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// Reads and parses the signing key set once, at cold start: from `SIGNING_KEYS`, or
/// from the Secrets Manager secret `SIGNING_KEYS_SECRET_ID` names.
pub async fn load_keys(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<KeySet, LoadKeysError> {
    let json = match &config.signing_keys {
        Some(SigningKeysSource::Inline(json)) => json.clone(),
        Some(SigningKeysSource::SecretsManager(id)) => aws_sdk_secretsmanager::Client::new(sdk)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| LoadKeysError::Secret(Box::new(e)))?
            .secret_string
            .ok_or(LoadKeysError::NotAString)?,
        None => return Err(LoadKeysError::NotConfigured),
    };
    Ok(KeySet::from_json(&json)?)
}

/// RFC 6749 §5.1. No `Debug`: it holds the token.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

/// Handles one request; every outcome is an HTTP response with `Cache-Control: no-store`.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    exchange(app, &request)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

fn error(code: OAuthErrorCode, description: &'static str) -> OAuthError {
    OAuthError::new(code, description)
}

async fn exchange(app: &App, request: &Request) -> Result<Response<Body>, OAuthError> {
    if request.method() != Method::POST {
        return Err(OAuthError::invalid_request("use POST"));
    }
    let form = Form::parse(request.headers(), request.body())
        .map_err(|e| OAuthError::from_form(&e, &KNOWN_PARAMETERS))?;
    let credentials = ClientCredentials::from_request(request.headers(), &form)?;
    match form.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required")),
        Some(GrantType::DEVICE_CODE_URN) => {}
        Some(_) => {
            return Err(error(
                OAuthErrorCode::UnsupportedGrantType,
                "only urn:ietf:params:oauth:grant-type:device_code is supported",
            ));
        }
    }
    let Some(device_code) = form.get("device_code") else {
        return Err(OAuthError::invalid_request("device_code is required"));
    };
    // A malformed code cannot name any record: no need to ask the store.
    let device_code = DeviceCode::parse(device_code)
        .ok_or_else(|| error(OAuthErrorCode::InvalidGrant, "the device code is invalid"))?;

    // A client that presents a secret is authenticated against its record; one that
    // presents only its id may poll only codes issued to a public client.
    let require_public = credentials.secret.is_none();
    let client_id = credentials.client_id.clone();
    let used_basic = credentials.used_basic;
    if !require_public {
        let stored = app
            .store
            .get_client(&client_id)
            .await
            .map_err(|e| OAuthError::internal("reading the client failed", &e))?;
        let client = credentials.authenticate(stored)?;
        if !client.may_use(GrantType::DeviceCode) {
            return Err(error(
                OAuthErrorCode::UnauthorizedClient,
                "the client may not use the device authorization grant",
            ));
        }
    }

    let now = app.clock.now();
    let id = device_code.id();
    let write = app
        .store
        .record_poll(&id, &client_id, require_public, now)
        .await
        .map_err(|e| OAuthError::internal("recording the poll failed", &e))?;
    let record = match write {
        PollWrite::Recorded | PollWrite::Busy => return Err(pending()),
        PollWrite::Refused(record) => record,
    };
    if let Some(r) = &record
        && r.client_id == client_id
        && require_public
        && !r.public_client
    {
        return Err(OAuthError::invalid_client("client authentication failed")
            .with_basic_challenge(used_basic));
    }
    match decide(record.as_ref(), &client_id, now) {
        // Only reachable when a concurrent write changed the record between the
        // condition and our read of it: pending is the safe answer.
        PollDecision::Pending => Err(pending()),
        PollDecision::SlowDown => {
            let Some(record) = record else {
                return Err(pending());
            };
            let interval = app
                .store
                .slow_down(&record, now)
                .await
                .map_err(|e| OAuthError::internal("recording slow_down failed", &e))?;
            Err(
                error(OAuthErrorCode::SlowDown, "polling too fast, slow down")
                    .with_interval(interval.as_secs()),
            )
        }
        PollDecision::Denied => Err(error(
            OAuthErrorCode::AccessDenied,
            "the user denied the request",
        )),
        PollDecision::Expired => Err(expired()),
        PollDecision::InvalidGrant { replay } => {
            if replay {
                tracing::warn!(
                    security_event = "device_code_replay",
                    client_id = %client_id,
                    "an exchanged device code was presented again"
                );
            }
            Err(error(
                OAuthErrorCode::InvalidGrant,
                "the device code is invalid",
            ))
        }
        PollDecision::Issue => match record {
            Some(record) => issue(app, &record, now).await,
            None => Err(error(
                OAuthErrorCode::InvalidGrant,
                "the device code is invalid",
            )),
        },
    }
}

/// Consumes the approved record and, if this request won, mints the token.
async fn issue(
    app: &App,
    record: &device_flow::domain::DeviceAuthorization,
    now: Timestamp,
) -> Result<Response<Body>, OAuthError> {
    let DeviceState::Approved(approval) = &record.state else {
        return Err(error(
            OAuthErrorCode::InvalidGrant,
            "the device code is invalid",
        ));
    };
    match app
        .store
        .consume(record, now)
        .await
        .map_err(|e| OAuthError::internal("consuming the device code failed", &e))?
    {
        ConsumeOutcome::Consumed => {}
        ConsumeOutcome::Lost if record.is_expired(app.clock.now()) => return Err(expired()),
        ConsumeOutcome::Lost => {
            tracing::warn!(
                security_event = "device_code_race_lost",
                client_id = %record.client_id,
                "a concurrent request consumed this device code first"
            );
            return Err(error(
                OAuthErrorCode::InvalidGrant,
                "the device code is invalid",
            ));
        }
        // Nothing was consumed and the record may still be approved: telling the device
        // to poll again (rather than invalid_grant, which ends its login) is the only
        // answer that never loses a token.
        ConsumeOutcome::Conflict => return Err(pending()),
        ConsumeOutcome::ClientGone => {
            return Err(OAuthError::invalid_client(
                "the client no longer exists or may not use this grant",
            ));
        }
    }
    let claims = AccessTokenClaims::for_grant(
        &app.config.issuer,
        &app.config.access_token_audience,
        record,
        approval,
        now,
    );
    let token = app
        .keys
        .sign(&claims)
        .map_err(|e| OAuthError::internal("signing the access token failed", &e))?;
    tracing::info!(client_id = %record.client_id, kid = app.keys.active_kid(), "access token issued");
    let mut response = json_response(
        StatusCode::OK,
        &TokenResponse {
            access_token: &token,
            token_type: "Bearer",
            expires_in: claims.lifetime().as_secs(),
            scope: claims.scope.as_deref(),
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

fn pending() -> OAuthError {
    error(
        OAuthErrorCode::AuthorizationPending,
        "the user has not decided yet",
    )
}

fn expired() -> OAuthError {
    error(OAuthErrorCode::ExpiredToken, "the device code has expired")
}
