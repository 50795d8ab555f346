//! The verification API's wire format, in Zitadel's shape: the look-up
//! response, the approve/deny body, and the one place where each outcome of the look-up
//! and decide use cases becomes a `{code, message, details}` error.

use std::borrow::Cow;
use std::error::Error as StdError;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;
use serde_json::Value;

use super::{body_bytes, json_response, log_internal, no_store};
use crate::domain::{DeviceAuthorization, Grant};
use crate::usecase::Internal;
use crate::usecase::decide::{DecideError, Decision};
use crate::usecase::grants::GrantError;
use crate::usecase::look_up::LookUpError;
use crate::user_auth::AuthError;

/// Largest approve/deny body accepted.
pub const MAX_BODY_BYTES: usize = 8 * 1024;
/// Longest `sessionId` accepted.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// gRPC status codes used by the Zitadel-shaped verification API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrpcCode {
    InvalidArgument = 3,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The HTTP status grpc-gateway maps each code to.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::Aborted => StatusCode::CONFLICT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

/// An error in Zitadel's shape: `{"code": n, "message": "...", "details": []}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcError {
    pub code: GrpcCode,
    pub message: Cow<'static, str>,
    /// `Retry-After` in seconds, for 429.
    pub retry_after: Option<u64>,
}

impl GrpcError {
    pub fn new(code: GrpcCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// A generic internal error; the cause is logged, never shown.
    pub fn internal(context: &str, cause: &(dyn StdError + 'static)) -> Self {
        log_internal(context, cause);
        Self::new(GrpcCode::Internal, "internal error")
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Wire<'a> {
            code: i32,
            message: &'a str,
            details: [(); 0],
        }
        let mut response = json_response(
            self.code.status(),
            &Wire {
                code: self.code as i32,
                message: &self.message,
                details: [],
            },
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<Internal> for GrpcError {
    /// A passing store failure is 14 `UNAVAILABLE` (503) with `Retry-After`; anything else
    /// 13 `INTERNAL`. The cause is logged either way, never shown.
    fn from(error: Internal) -> Self {
        if error.is_transient() {
            log_internal(error.context, &*error.source);
            return Self::new(GrpcCode::Unavailable, "the service is busy, try again")
                .with_retry_after(1);
        }
        Self::internal(error.context, &*error.source)
    }
}

impl From<AuthError> for GrpcError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unavailable => {
                Self::new(GrpcCode::Unavailable, error.to_string()).with_retry_after(5)
            }
            AuthError::Missing | AuthError::Invalid => {
                Self::new(GrpcCode::Unauthenticated, error.to_string())
            }
        }
    }
}

impl From<LookUpError> for GrpcError {
    fn from(error: LookUpError) -> Self {
        let message = error.to_string();
        match error {
            LookUpError::TooLong => Self::new(GrpcCode::InvalidArgument, message),
            LookUpError::NotFound => Self::new(GrpcCode::NotFound, message),
            LookUpError::RateLimited { retry_after } => {
                Self::new(GrpcCode::ResourceExhausted, message)
                    .with_retry_after(retry_after.as_secs())
            }
            LookUpError::Internal(e) => e.into(),
        }
    }
}

impl From<DecideError> for GrpcError {
    fn from(error: DecideError) -> Self {
        let message = error.to_string();
        match error {
            DecideError::NotFound => Self::new(GrpcCode::NotFound, message),
            DecideError::AlreadyDecided => Self::new(GrpcCode::FailedPrecondition, message),
            DecideError::Busy => Self::new(GrpcCode::Aborted, message),
            DecideError::ForeignSession => Self::new(GrpcCode::PermissionDenied, message),
            DecideError::Internal(e) => e.into(),
        }
    }
}

impl From<GrantError> for GrpcError {
    fn from(error: GrantError) -> Self {
        let message = error.to_string();
        match error {
            GrantError::NotFound => Self::new(GrpcCode::NotFound, message),
            GrantError::Busy => Self::new(GrpcCode::Aborted, message),
            GrantError::FilterRequired | GrantError::InvalidPageToken(_) => {
                Self::new(GrpcCode::InvalidArgument, message)
            }
            GrantError::Internal(e) => e.into(),
        }
    }
}

/// `{"deviceGrants":[...]}`: the caller's signed-in devices, newest first.
pub fn grants_response(grants: &[Grant]) -> Response<Body> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire<'a> {
        device_grants: Vec<View<'a>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct View<'a> {
        id: &'a str,
        client_id: &'a str,
        app_name: &'a str,
        scope: Vec<&'a str>,
        device: Device<'a>,
        created_at: String,
        last_used_at: String,
        expires_at: String,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Device<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        ip_address: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_agent: Option<&'a str>,
    }
    let device_grants = grants
        .iter()
        .map(|g| View {
            id: g.id.as_str(),
            client_id: g.client_id.as_str(),
            app_name: &g.client_name,
            scope: g.scope.iter().collect(),
            device: Device {
                ip_address: g.device.ip.as_deref(),
                user_agent: g.device.user_agent.as_deref(),
            },
            created_at: g.created_at.to_rfc3339(),
            last_used_at: g.last_used_at.to_rfc3339(),
            expires_at: g.expires_at.to_rfc3339(),
        })
        .collect();
    no_store(json_response(StatusCode::OK, &Wire { device_grants }))
}

/// The 404 of an unknown record or path: the same words as the look-up's.
pub fn not_found() -> GrpcError {
    LookUpError::NotFound.into()
}

/// `{"deviceAuthorizationRequest":{...}}`: what the page shows before the person decides.
pub fn lookup_response(record: &DeviceAuthorization) -> Response<Body> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Wire<'a> {
        device_authorization_request: Request<'a>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a> {
        id: &'a str,
        client_id: &'a str,
        app_name: &'a str,
        scope: Vec<&'a str>,
        expires_at: String,
    }
    no_store(json_response(
        StatusCode::OK,
        &Wire {
            device_authorization_request: Request {
                id: record.id.as_str(),
                client_id: record.client_id.as_str(),
                app_name: &record.client_name,
                scope: record.scope.iter().collect(),
                expires_at: record.expires_at.to_rfc3339(),
            },
        },
    ))
}

/// `{}`: the decision is recorded.
pub fn decided_response() -> Response<Body> {
    no_store(json_response(StatusCode::OK, &serde_json::json!({})))
}

/// Parses `{"session":{"sessionId","sessionToken"}}` (approve) or `{"deny":{}}`.
pub fn parse_decision(body: &Body) -> Result<Decision, GrpcError> {
    let invalid = |message: &'static str| GrpcError::new(GrpcCode::InvalidArgument, message);
    let bytes = body_bytes(body).ok_or_else(|| invalid("unsupported body"))?;
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
        (None, Some(deny)) if deny.is_object() => Ok(Decision::Deny),
        (None, Some(_)) => Err(invalid("deny must be an object")),
        (Some(session), None) => {
            let session = session
                .as_object()
                .ok_or_else(|| invalid("session must be an object"))?;
            let text = |name: &str| match session.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid("sessionId and sessionToken must be strings")),
            };
            let session_id = text("sessionId")?;
            if session_id
                .as_ref()
                .is_some_and(|s| s.len() > MAX_SESSION_ID_LEN)
            {
                return Err(invalid("sessionId is too long"));
            }
            Ok(Decision::Approve {
                session_id,
                session_token: text("sessionToken")?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn grpc_errors_follow_zitadel() {
        let r = GrpcError::new(GrpcCode::FailedPrecondition, "already decided").into_response();
        assert_eq!(r.status(), 400);
        assert_eq!(
            body(&r),
            json!({"code": 9, "message": "already decided", "details": []})
        );
        assert_eq!(
            GrpcError::new(GrpcCode::NotFound, "x")
                .into_response()
                .status(),
            404
        );
    }

    #[test]
    fn every_outcome_has_its_grpc_code() {
        let look_ups = [
            (LookUpError::TooLong, 3, 400),
            (LookUpError::NotFound, 5, 404),
            (
                LookUpError::RateLimited {
                    retry_after: std::time::Duration::from_secs(7),
                },
                8,
                429,
            ),
        ];
        for (outcome, code, status) in look_ups {
            let response = GrpcError::from(outcome).into_response();
            assert_eq!(
                (body(&response)["code"].as_i64(), response.status().as_u16()),
                (Some(code), status)
            );
        }
        let decisions = [
            (DecideError::NotFound, 5, 404),
            (DecideError::AlreadyDecided, 9, 400),
            (DecideError::Busy, 10, 409),
            (DecideError::ForeignSession, 7, 403),
        ];
        for (outcome, code, status) in decisions {
            let response = GrpcError::from(outcome).into_response();
            assert_eq!(
                (body(&response)["code"].as_i64(), response.status().as_u16()),
                (Some(code), status)
            );
        }
        let limited = GrpcError::from(LookUpError::RateLimited {
            retry_after: std::time::Duration::from_secs(7),
        })
        .into_response();
        assert_eq!(limited.headers()["retry-after"], "7");
    }

    #[test]
    fn decisions_parse_strictly() {
        let parse = |v: Value| parse_decision(&Body::from(v.to_string()));
        assert_eq!(parse(json!({"deny": {}})), Ok(Decision::Deny));
        assert_eq!(
            parse(json!({"session": {"sessionId": "s", "sessionToken": ""}})),
            Ok(Decision::Approve {
                session_id: Some("s".into()),
                session_token: None
            })
        );
        for bad in [
            json!({}),
            json!({"deny": {}, "session": {}}),
            json!({"deny": true}),
            json!({"session": []}),
            json!({"session": {"sessionId": 5}}),
            json!({"session": {"sessionId": "x".repeat(MAX_SESSION_ID_LEN + 1)}}),
            json!([1]),
        ] {
            assert_eq!(
                parse(bad.clone()).unwrap_err().code,
                GrpcCode::InvalidArgument,
                "{bad}"
            );
        }
        let large = Body::from(vec![b' '; MAX_BODY_BYTES + 1]);
        assert!(parse_decision(&large).is_err());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = std::io::Error::other("secret-detail");
        let r = GrpcError::internal("test", &cause).into_response();
        assert_eq!(r.status(), 500);
        assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
    }
}
