//! `POST /oauth2/v1/device`: the device authorization endpoint (RFC 8628 §3.1-3.2).
//!
//! A device (public or confidential client) asks for a device code and a user code.
//! The request costs at most two DynamoDB requests: reading the client, and one
//! transaction writing the record and the claim on its user code.

use std::borrow::Cow;
use std::time::Duration;

use device_flow::domain::{DeviceAuthorization, DeviceCode, GrantType, ScopeSet, UserCode};
use device_flow::error::{OAuthError, OAuthErrorCode};
use device_flow::http::{Form, FormError, json_response};
use device_flow::oauth::ClientCredentials;
use device_flow::store::CreateDeviceError;
use device_flow::time::{Clock, SystemClock};
use device_flow::{Config, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// How many user codes are drawn before giving up with a 503. With 20^8 codes, even a
/// million live codes make one collision a 1-in-25,600 event; five in a row mean the
/// store is misbehaving, not bad luck.
pub const MAX_CODE_ATTEMPTS: usize = 5;

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub clock: Box<dyn Clock>,
    /// Where user codes come from; tests replace it to force collisions.
    pub user_codes: Box<dyn Fn() -> UserCode + Send + Sync>,
}

impl App {
    pub fn new(config: Config, store: Store) -> Self {
        Self {
            config,
            store,
            clock: Box::new(SystemClock),
            user_codes: Box::new(UserCode::generate),
        }
    }
}

/// The RFC 8628 §3.2 response.
#[derive(Debug, Serialize)]
struct DeviceAuthorizationResponse<'a> {
    device_code: &'a str,
    user_code: String,
    verification_uri: &'a str,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// Handles one request; every outcome is an HTTP response.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    issue(app, &request)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

async fn issue(app: &App, request: &Request) -> Result<Response<Body>, OAuthError> {
    if request.method() != Method::POST {
        return Err(OAuthError::invalid_request("use POST"));
    }
    let form = Form::parse(request.headers(), request.body()).map_err(form_error)?;
    let credentials = ClientCredentials::from_request(request.headers(), &form)?;
    match form.get("response_type") {
        None | Some("device_code") => {}
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "response_type must be device_code when present",
            ));
        }
    }
    let requested_scope = form
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|_| OAuthError::new(OAuthErrorCode::InvalidScope, "the scope is malformed"))?;

    let stored = app
        .store
        .get_client(&credentials.client_id)
        .await
        .map_err(|e| OAuthError::internal("reading the client failed", &e))?;
    let client = credentials.authenticate(stored)?;
    if !client.may_use(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "the client may not use the device authorization grant",
        ));
    }
    // RFC 6749 §3.3: without a scope, the client's full allowed set is the default.
    let scope = requested_scope.unwrap_or_else(|| client.allowed_scopes.clone());
    if !scope.is_subset(&client.allowed_scopes) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "the scope exceeds what the client may request",
        ));
    }
    let lifetime = client
        .device_code_lifetime
        .unwrap_or(app.config.device_code_lifetime);
    let interval = client.poll_interval.unwrap_or(app.config.poll_interval);

    for _ in 0..MAX_CODE_ATTEMPTS {
        let now = app.clock.now();
        let device_code = DeviceCode::generate();
        let record = DeviceAuthorization::new(
            device_code.id(),
            client.id.clone(),
            scope.clone(),
            (app.user_codes)(),
            now,
            lifetime,
            interval,
        );
        match app
            .store
            .create_device_authorization(&record, app.config.record_retention, now)
            .await
        {
            Ok(()) => {
                tracing::info!(client_id = %client.id, "device authorization issued");
                return Ok(success(app, &device_code, &record, lifetime, interval));
            }
            Err(CreateDeviceError::UserCodeTaken | CreateDeviceError::IdTaken) => {
                tracing::warn!(client_id = %client.id, "code collision, drawing again");
            }
            Err(CreateDeviceError::Store(e)) => {
                return Err(OAuthError::internal(
                    "writing the device authorization failed",
                    &e,
                ));
            }
        }
    }
    tracing::error!(attempts = MAX_CODE_ATTEMPTS, "no free user code found");
    Err(OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "no user code could be allocated, try again",
    )
    .with_retry_after(1))
}

fn success(
    app: &App,
    device_code: &DeviceCode,
    record: &DeviceAuthorization,
    lifetime: Duration,
    interval: Duration,
) -> Response<Body> {
    let verification_uri = app.config.verification_uri.as_str();
    let user_code = record.user_code.to_string();
    let mut response = json_response(
        StatusCode::OK,
        &DeviceAuthorizationResponse {
            device_code: device_code.expose(),
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            user_code,
            verification_uri,
            expires_in: lifetime.as_secs(),
            interval: interval.as_secs(),
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Maps a refused body to `invalid_request`, naming the parameter only when it is one
/// this endpoint knows (never echoing arbitrary input).
fn form_error(error: FormError) -> OAuthError {
    const KNOWN: [&str; 4] = ["client_id", "client_secret", "scope", "response_type"];
    let description: Cow<'static, str> = match &error {
        FormError::Repeated(name) if KNOWN.contains(&name.as_str()) => {
            format!("the {name} parameter is repeated").into()
        }
        FormError::Repeated(_) => "a parameter is repeated".into(),
        FormError::WrongContentType => {
            "the body must be application/x-www-form-urlencoded (UTF-8)".into()
        }
        FormError::TooLarge => "the body is too large".into(),
        FormError::NotUtf8 => "the body is not valid UTF-8".into(),
        FormError::TooManyFields => "the body has too many parameters".into(),
    };
    OAuthError::invalid_request(description)
}
