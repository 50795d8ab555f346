//! `POST /oauth2/v1/device`: the device authorization endpoint (RFC 8628 §3.1-3.2).
//!
//! Reads the form and the client's credentials, asks
//! [`issue_device_code`](device_flow::usecase::issue_device_code) for a code, and renders
//! the outcome in RFC 6749's format.

use device_flow::domain::{DeviceDetails, ScopeSet, UserCode};
use device_flow::http::oauth::{
    OAuthError, OAuthErrorCode, client_credentials, device_authorization_response,
};
use device_flow::http::{Form, source_ip, user_agent};
use device_flow::permissions::Permissions;
use device_flow::time::{Clock, SystemClock};
use device_flow::usecase::issue_device_code::{
    DeviceCodeRequest, UserCodeSource, issue_device_code,
};
use device_flow::{DeviceConfig, Store};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The parameters this endpoint reads; only these are named in error messages.
const KNOWN_PARAMETERS: [&str; 4] = ["client_id", "client_secret", "scope", "response_type"];

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads the client; writes the record and its
/// user-code claim in one transaction.
pub const PERMISSIONS: Permissions = Permissions {
    table: &["dynamodb:GetItem", "dynamodb:PutItem"],
    writes: &["DEVICE#", "USERCODE#"],
    index: &[],
    client_index: &[],
    signing_key_secret: &[],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: DeviceConfig,
    pub store: Store,
    pub clock: Box<dyn Clock>,
    /// Where user codes come from; tests replace it to force collisions.
    pub user_codes: Box<UserCodeSource>,
}

impl App {
    pub fn new(config: DeviceConfig, store: Store) -> Self {
        Self {
            store: store.with_client_cache(config.client_cache),
            config,
            clock: Box::new(SystemClock),
            user_codes: Box::new(UserCode::generate_in),
        }
    }
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
    let credentials = client_credentials(request.headers(), &form)?;
    if form
        .get("response_type")
        .is_some_and(|t| t != "device_code")
    {
        return Err(OAuthError::invalid_request(
            "response_type must be device_code when present",
        ));
    }
    let scope = form
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|_| OAuthError::new(OAuthErrorCode::InvalidScope, "the scope is malformed"))?;
    let issued = issue_device_code(
        &app.store,
        &app.config,
        app.clock.as_ref(),
        app.user_codes.as_ref(),
        DeviceCodeRequest {
            credentials,
            scope,
            resources: form.resources().to_vec(),
            device: DeviceDetails::new(source_ip(request), user_agent(request)),
        },
    )
    .await?;
    Ok(device_authorization_response(
        &issued,
        &app.config.verification_uri,
    ))
}
