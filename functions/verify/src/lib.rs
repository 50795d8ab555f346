//! The verification API, in Zitadel's shape: what a verification page calls once the user
//! has signed in and typed the code from their TV.
//!
//! - `GET /v2/oidc/device_authorization/{user_code}`: [`look_up`] the pending request,
//!   under the brute-force budget of RFC 8628 §5.1.
//! - `POST /v2/oidc/device_authorization/{id}`: [`decide`] (approve or deny).
//! - `GET /v2/oidc/device_grants`: the caller's signed-in devices ([`list_my_grants`]).
//! - `DELETE /v2/oidc/device_grants/{grant_id}`: sign one out ([`revoke_my_grant`]).

use device_flow::domain::{DeviceAuthorizationId, GrantId};
use device_flow::http::verification_api::{
    GrpcCode, GrpcError, decided_response, grants_response, lookup_response, not_found,
    parse_decision,
};
use device_flow::http::{path_parameter, source_ip};
use device_flow::permissions::Permissions;
use device_flow::store::Requester;
use device_flow::time::{Clock, SystemClock};
use device_flow::usecase::decide::decide;
use device_flow::usecase::grants::{list_my_grants, revoke_my_grant};
use device_flow::usecase::look_up::look_up;
use device_flow::user_auth::UserTokenVerifier;
use device_flow::{Store, VerifyConfig};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The route's path parameter: the user code (GET) or the record id (POST).
pub const PATH_PARAMETER: &str = "user_code_or_id";
/// The device-grant route's path parameter.
pub const GRANT_PARAMETER: &str = "grant_id";
/// The caller's signed-in devices.
pub const GRANTS_PATH: &str = "/v2/oidc/device_grants";

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Counts look-ups, reads the code's claim
/// and the record, updates the record, lists the caller's grants (their partition of the listing
/// index) and revokes one.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ],
    writes: &["DEVICE#", "GRANT#", "RATE#"],
    index: &["dynamodb:Query"],
    client_index: &[],
    signing_key_secret: &[],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: VerifyConfig,
    pub store: Store,
    pub users: UserTokenVerifier,
    pub clock: Box<dyn Clock>,
}

impl App {
    pub fn new(config: VerifyConfig, store: Store, users: UserTokenVerifier) -> Self {
        Self {
            config,
            store,
            users,
            clock: Box::new(SystemClock),
        }
    }
}

/// Handles one request; every outcome is an HTTP response in Zitadel's error format.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    route(app, &request)
        .await
        .unwrap_or_else(GrpcError::into_response)
}

async fn route(app: &App, request: &Request) -> Result<Response<Body>, GrpcError> {
    if request.uri().path().ends_with(GRANTS_PATH) {
        if request.method() != Method::GET {
            return Err(GrpcError::new(GrpcCode::InvalidArgument, "use GET"));
        }
        let user = app.users.authenticate(request.headers()).await?;
        let grants = list_my_grants(&app.store, app.clock.as_ref(), &user).await?;
        return Ok(grants_response(&grants));
    }
    if let Some(grant) = path_parameter(request, GRANT_PARAMETER) {
        let grant = grant.map_err(|_| not_found())?;
        if request.method() != Method::DELETE {
            return Err(GrpcError::new(GrpcCode::InvalidArgument, "use DELETE"));
        }
        let user = app.users.authenticate(request.headers()).await?;
        let clock = app.clock.as_ref();
        revoke_my_grant(&app.store, clock, &user, GrantId::parse(&grant)).await?;
        return Ok(decided_response());
    }
    let segment = path_parameter(request, PATH_PARAMETER)
        .ok_or_else(not_found)?
        .map_err(|_| GrpcError::new(GrpcCode::InvalidArgument, "the path is not valid UTF-8"))?;
    let user = app.users.authenticate(request.headers()).await?;
    match *request.method() {
        Method::GET => {
            let requester = Requester {
                account_id: &user.account_id,
                source_ip: source_ip(request),
            };
            let limits = &app.config.lookup_limits;
            let record = look_up(&app.store, limits, app.clock.as_ref(), requester, &segment);
            Ok(lookup_response(&record.await?))
        }
        Method::POST => {
            let id = DeviceAuthorizationId::parse(&segment).ok_or_else(not_found)?;
            let decision = parse_decision(request.body())?;
            let clock = app.clock.as_ref();
            decide(&app.store, Some(&app.users), clock, &user, &id, decision).await?;
            Ok(decided_response())
        }
        _ => Err(GrpcError::new(GrpcCode::InvalidArgument, "use GET or POST")),
    }
}
