//! `POST /oauth2/v1/device`: the device authorization endpoint (RFC 8628 §3.1-3.2).
//!
//! A device (public or confidential client) asks for a device code and a user code.
//! The request costs at most two DynamoDB requests: reading the client, and one
//! transaction writing the record and the claim on its user code.

use device_flow::domain::{DeviceAuthorization, DeviceCode, ScopeSet, UserCode};
use device_flow::error::{OAuthError, OAuthErrorCode};
use device_flow::http::{Form, json_response};
use device_flow::oauth::ClientCredentials;
use device_flow::oauth::device_authorization::{self, IssueError};
use device_flow::permissions::Permissions;
use device_flow::time::{Clock, SystemClock};
use device_flow::{Config, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The parameters this endpoint reads; only these are named in error messages.
const KNOWN_PARAMETERS: [&str; 4] = ["client_id", "client_secret", "scope", "response_type"];

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads the client; writes the record and its
/// user-code claim in one transaction.
pub const PERMISSIONS: Permissions = Permissions {
    table: &["dynamodb:GetItem", "dynamodb:PutItem"],
    index: &[],
    signing_key_secret: &[],
};

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
/// No `Debug`: it holds the device code.
#[derive(Serialize)]
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
    let form = Form::parse(request.headers(), request.body())
        .map_err(|e| OAuthError::from_form(&e, &KNOWN_PARAMETERS))?;
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
    let terms = device_authorization::terms(&client, requested_scope, &app.config)?;
    let issued = device_authorization::issue(
        &app.store,
        app.clock.as_ref(),
        app.user_codes.as_ref(),
        &client,
        &terms,
        app.config.record_retention,
    )
    .await;
    match issued {
        Ok((device_code, record)) => {
            tracing::info!(client_id = %client.id, "device authorization issued");
            Ok(success(app, &device_code, &record))
        }
        Err(IssueError::NoFreeUserCode) => {
            tracing::error!(client_id = %client.id, "no free user code found");
            Err(OAuthError::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "no user code could be allocated, try again",
            )
            .with_retry_after(1))
        }
        Err(IssueError::Store(e)) => Err(OAuthError::internal(
            "writing the device authorization failed",
            &e,
        )),
    }
}

fn success(app: &App, device_code: &DeviceCode, record: &DeviceAuthorization) -> Response<Body> {
    let verification_uri = app.config.verification_uri.as_str();
    let user_code = record.user_code.to_string();
    let mut response = json_response(
        StatusCode::OK,
        &DeviceAuthorizationResponse {
            device_code: device_code.expose(),
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            user_code,
            verification_uri,
            expires_in: record.created_at.secs_until(record.expires_at),
            interval: record.interval.as_secs(),
        },
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
