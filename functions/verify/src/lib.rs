//! The verification API, in Zitadel's shape: what a verification page calls once the user
//! has signed in and typed the code from their TV.
//!
//! - `GET /v2/oidc/device_authorization/{user_code}`: what is being authorized (at most
//!   two DynamoDB requests: the budget check with the code's claim, then the record).
//! - `POST /v2/oidc/device_authorization/{id}`: approve or deny (one conditional write).
//!
//! Failed look-ups are rate limited per account and per source IP (RFC 8628 §5.1).

use device_flow::domain::{Approval, DeviceAuthorizationId, Status, UserCode, user_code};
use device_flow::error::{GrpcCode, GrpcError};
use device_flow::http::json_response;
use device_flow::permissions::Permissions;
use device_flow::store::{DecideOutcome, Requester, Window};
use device_flow::time::{Clock, SystemClock};
use device_flow::user_auth::{User, UserTokenVerifier};
use device_flow::{Config, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::Value;

/// The route's fixed part; the rest of the path is the user code or the record id.
pub const PATH_PREFIX: &str = "/v2/oidc/device_authorization/";
/// Largest approve/deny body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Longest `sessionId` accepted.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads the look-up counters and the code
/// claim, reads the record, and updates the counters and the record.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    ],
    index: &[],
    signing_key_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub users: UserTokenVerifier,
    pub clock: Box<dyn Clock>,
}

impl App {
    pub fn new(config: Config, store: Store, users: UserTokenVerifier) -> Self {
        Self {
            config,
            store,
            users,
            clock: Box::new(SystemClock),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LookupResponse<'a> {
    device_authorization_request: DeviceAuthorizationRequest<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceAuthorizationRequest<'a> {
    id: &'a str,
    client_id: &'a str,
    app_name: &'a str,
    scope: Vec<&'a str>,
    expires_at: String,
}

/// Handles one request; every outcome is an HTTP response in seed 000's error format.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    route(app, &request)
        .await
        .unwrap_or_else(GrpcError::into_response)
}

fn not_found() -> GrpcError {
    GrpcError::new(GrpcCode::NotFound, "device authorization not found")
}

async fn route(app: &App, request: &Request) -> Result<Response<Body>, GrpcError> {
    let path = request.uri().path();
    let segment = path
        .strip_prefix(PATH_PREFIX)
        .filter(|rest| !rest.is_empty() && !rest.contains('/'))
        .ok_or_else(not_found)?;
    // Percent-decoded strictly: invalid UTF-8 is a bad request, not a replacement character.
    let segment = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| GrpcError::new(GrpcCode::InvalidArgument, "the path is not valid UTF-8"))?;
    let user = app
        .users
        .authenticate(request.headers())
        .await
        .map_err(|e| GrpcError::new(GrpcCode::Unauthenticated, e.to_string()))?;
    match *request.method() {
        Method::GET => lookup(app, request, &user, &segment).await,
        Method::POST => decide(app, request, &user, &segment).await,
        _ => Err(GrpcError::new(GrpcCode::InvalidArgument, "use GET or POST")),
    }
}

/// The source IP API Gateway saw, when there is a request context.
fn source_ip(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

async fn lookup(
    app: &App,
    request: &Request,
    user: &User,
    input: &str,
) -> Result<Response<Body>, GrpcError> {
    if input.len() > user_code::MAX_INPUT_LEN {
        return Err(GrpcError::new(
            GrpcCode::InvalidArgument,
            "the user code is too long",
        ));
    }
    // A malformed code is looked up like any other, so that it counts as a failure.
    let code = UserCode::parse(input).ok();
    let requester = Requester {
        account_id: &user.account_id,
        source_ip: source_ip(request),
    };
    let now = app.clock.now();
    let limits = app.config.lookup_limits;
    let window = Window::containing(now, limits.window);
    let read = app
        .store
        .read_lookup(requester, code.as_ref(), window, now)
        .await
        .map_err(|e| GrpcError::internal("reading the user code failed", &e))?;
    if read.account_failures >= limits.per_account || read.ip_failures >= limits.per_ip {
        tracing::warn!(
            security_event = "user_code_lookup_throttled",
            account_id = %user.account_id,
            "too many failed user-code look-ups"
        );
        return Err(GrpcError::new(
            GrpcCode::ResourceExhausted,
            "too many failed look-ups, try again later",
        )
        .with_retry_after(retry_after_secs(now, window.end)));
    }
    let record = match &read.claimed_by {
        Some(id) => app
            .store
            .get_device_authorization(id)
            .await
            .map_err(|e| GrpcError::internal("reading the device authorization failed", &e))?
            .filter(|r| r.status(now) == Status::Pending),
        None => None,
    };
    let Some(record) = record else {
        app.store
            .record_lookup_failure(requester, window)
            .await
            .map_err(|e| GrpcError::internal("counting a failed look-up failed", &e))?;
        return Err(not_found());
    };
    let mut response = json_response(
        StatusCode::OK,
        &LookupResponse {
            device_authorization_request: DeviceAuthorizationRequest {
                id: record.id.as_str(),
                client_id: record.client_id.as_str(),
                app_name: &record.client_name,
                scope: record.scope.iter().collect(),
                expires_at: record.expires_at.to_rfc3339(),
            },
        },
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Whole seconds until `end`, rounded up: a client that waits exactly this long must
/// find the window over.
fn retry_after_secs(now: device_flow::time::Timestamp, end: device_flow::time::Timestamp) -> u64 {
    end.as_millis()
        .saturating_sub(now.as_millis())
        .div_ceil(1000)
        .max(1)
}

/// What the approve/deny body asks for.
enum Decision {
    Approve { session_id: Option<String> },
    Deny,
}

/// Parses `{"session":{"sessionId","sessionToken"}}` or `{"deny":{}}`; checks a given
/// `sessionToken` against the caller.
async fn decision(app: &App, body: &Body, user: &User) -> Result<Decision, GrpcError> {
    let invalid = |message: &'static str| GrpcError::new(GrpcCode::InvalidArgument, message);
    let bytes: &[u8] = match body {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(invalid("unsupported body")),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(invalid("the body is too large"));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|_| invalid("the body must be a JSON object"))?;
    let object = value
        .as_object()
        .ok_or_else(|| invalid("the body must be a JSON object"))?;
    match (object.get("session"), object.get("deny")) {
        (Some(_), Some(_)) | (None, None) => {
            Err(invalid("send exactly one of session (to approve) and deny"))
        }
        (None, Some(deny)) => {
            if deny.is_object() {
                Ok(Decision::Deny)
            } else {
                Err(invalid("deny must be an object"))
            }
        }
        (Some(session), None) => {
            let session = session
                .as_object()
                .ok_or_else(|| invalid("session must be an object"))?;
            let text = |name: &str| match session.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(invalid("sessionId and sessionToken must be strings")),
            };
            let session_id = text("sessionId")?;
            if session_id.is_some_and(|s| s.len() > MAX_SESSION_ID_LEN) {
                return Err(invalid("sessionId is too long"));
            }
            if let Some(token) = text("sessionToken")? {
                let same_user = app
                    .users
                    .verify(token)
                    .await
                    .is_ok_and(|session_user| session_user.account_id == user.account_id);
                if !same_user {
                    return Err(GrpcError::new(
                        GrpcCode::PermissionDenied,
                        "the session does not belong to the signed-in user",
                    ));
                }
            }
            Ok(Decision::Approve {
                session_id: session_id.map(str::to_owned),
            })
        }
    }
}

async fn decide(
    app: &App,
    request: &Request,
    user: &User,
    id: &str,
) -> Result<Response<Body>, GrpcError> {
    let id = DeviceAuthorizationId::parse(id).ok_or_else(not_found)?;
    let decision = decision(app, request.body(), user).await?;
    let now = app.clock.now();
    let outcome = match &decision {
        Decision::Approve { session_id } => {
            let approval = Approval {
                account_id: user.account_id.clone(),
                approved_at: now,
                session_id: session_id.clone(),
            };
            app.store.approve(&id, &approval, now).await
        }
        Decision::Deny => app.store.deny(&id, now).await,
    }
    .map_err(|e| GrpcError::internal("recording the decision failed", &e))?;
    match outcome {
        DecideOutcome::Decided => {
            let verb = match decision {
                Decision::Approve { .. } => "approved",
                Decision::Deny => "denied",
            };
            tracing::info!(account_id = %user.account_id, "device authorization {verb}");
            let mut response = json_response(StatusCode::OK, &serde_json::json!({}));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        DecideOutcome::NotFound | DecideOutcome::Expired => Err(not_found()),
        DecideOutcome::AlreadyDecided => Err(GrpcError::new(
            GrpcCode::FailedPrecondition,
            "the device authorization was already decided",
        )),
        DecideOutcome::Busy => Err(GrpcError::new(
            GrpcCode::Aborted,
            "the device authorization is being changed, try again",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use device_flow::time::Timestamp;

    #[test]
    fn retry_after_rounds_up() {
        let end = Timestamp::from_millis(600_000);
        assert_eq!(retry_after_secs(Timestamp::from_millis(123_456), end), 477);
        assert_eq!(retry_after_secs(Timestamp::from_millis(599_999), end), 1);
        assert_eq!(retry_after_secs(Timestamp::from_millis(0), end), 600);
        assert_eq!(retry_after_secs(end, end), 1);
    }
}
