//! The three error formats of the API, each rendered in one place.
//!
//! - [`OAuthError`]: RFC 6749 §5.2 (and RFC 8628 §3.5) for `/oauth2/v1/*`.
//! - [`GrpcError`]: Zitadel's `{code, message, details}` for the verification API.
//! - [`ApiError`]: Storyden's `{error, message, suggested, metadata}` for the admin API.
//!
//! Server-side failures are logged here with their cause chain, and the client sees only
//! a generic message. Client-facing messages are fixed strings chosen by the code, so no
//! secret, code or token can reach them.

use std::borrow::Cow;
use std::error::Error as StdError;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use crate::http::{FormError, json_response};

/// Logs an internal failure with its whole source chain.
pub fn log_internal(context: &str, error: &(dyn StdError + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "{context}");
}

/// RFC 6749 §5.2 and RFC 8628 §3.5 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// Missing, repeated or malformed parameter, or an unacceptable request (RFC 6749 §5.2).
    InvalidRequest,
    /// Client authentication failed: unknown client, bad or missing secret (RFC 6749 §5.2). 401.
    InvalidClient,
    /// The grant (here: the device code) is invalid, expired elsewhere, or belongs to
    /// another client (RFC 6749 §5.2).
    InvalidGrant,
    /// The client is not allowed to use this grant type (RFC 6749 §5.2).
    UnauthorizedClient,
    /// The grant type is not supported (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// The scope is malformed or exceeds what the client may ask for (RFC 6749 §5.2).
    InvalidScope,
    /// The user has not decided yet (RFC 8628 §3.5).
    AuthorizationPending,
    /// Poll more slowly: the interval grows by 5 s (RFC 8628 §3.5).
    SlowDown,
    /// The user denied the request (RFC 8628 §3.5).
    AccessDenied,
    /// The device code has expired (RFC 8628 §3.5).
    ExpiredToken,
    /// An unexpected failure on the server (RFC 6749 §4.1.2.1). 500.
    ServerError,
    /// The server is briefly unable to answer (RFC 6749 §4.1.2.1). 503.
    TemporarilyUnavailable,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient => StatusCode::UNAUTHORIZED,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error from an OAuth endpoint, rendered as RFC 6749 §5.2 JSON with
/// `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    /// `error_description`: fixed text written by us (RFC 6749 restricts it to printable
    /// ASCII without `"` and `\`).
    pub description: Cow<'static, str>,
    /// The client tried HTTP Basic: a 401 must carry `WWW-Authenticate: Basic`.
    pub basic_challenge: bool,
    /// `Retry-After` in seconds, for 503.
    pub retry_after: Option<u32>,
    /// The polling interval now in force, sent with `slow_down` (RFC 8628 §3.5).
    pub interval: Option<u64>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            interval: None,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    /// `invalid_request` for a refused form body, naming the parameter only when it is
    /// one of `known` (never echoing arbitrary input).
    pub fn from_form(error: &FormError, known: &[&str]) -> Self {
        match error {
            FormError::Repeated(name) if known.contains(&name.as_str()) => {
                Self::invalid_request(format!("the {name} parameter is repeated"))
            }
            _ => Self::invalid_request(error.to_string()),
        }
    }

    /// A generic `server_error`; the cause is logged, never shown.
    pub fn internal(context: &str, cause: &(dyn StdError + 'static)) -> Self {
        log_internal(context, cause);
        Self::new(
            OAuthErrorCode::ServerError,
            "the server failed to process the request",
        )
    }

    pub fn with_basic_challenge(mut self, used_basic: bool) -> Self {
        self.basic_challenge = used_basic;
        self
    }

    pub fn with_interval(mut self, seconds: u64) -> Self {
        self.interval = Some(seconds);
        self
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Wire<'a> {
            error: &'static str,
            error_description: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            interval: Option<u64>,
        }
        let mut response = json_response(
            self.code.status(),
            &Wire {
                error: self.code.as_str(),
                error_description: &self.description,
                interval: self.interval,
            },
        );
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.code.status() == StatusCode::UNAUTHORIZED && self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"device-flow\", charset=\"UTF-8\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

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

/// An error in Zitadel's shape (seed 000): `{"code": n, "message": "...", "details": []}`.
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

/// An error in Storyden's shape (seed 001): `{"error","message","suggested","metadata"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable, e.g. `not_found`.
    pub error: &'static str,
    pub message: Cow<'static, str>,
    /// What the caller could do about it, when there is something.
    pub suggested: Option<Cow<'static, str>>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            error,
            message: message.into(),
            suggested: None,
            metadata: serde_json::Map::new(),
        }
    }

    pub fn suggest(mut self, suggestion: impl Into<Cow<'static, str>>) -> Self {
        self.suggested = Some(suggestion.into());
        self
    }

    /// A generic internal error; the cause is logged, never shown.
    pub fn internal(context: &str, cause: &(dyn StdError + 'static)) -> Self {
        log_internal(context, cause);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to process the request",
        )
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Wire<'a> {
            error: &'static str,
            message: &'a str,
            suggested: Option<&'a str>,
            metadata: &'a serde_json::Map<String, serde_json::Value>,
        }
        json_response(
            self.status,
            &Wire {
                error: self.error,
                message: &self.message,
                suggested: self.suggested.as_deref(),
                metadata: &self.metadata,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn body(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn oauth_errors_follow_rfc_6749() {
        let r = OAuthError::invalid_request("missing client_id").into_response();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            body(&r),
            json!({"error": "invalid_request", "error_description": "missing client_id"})
        );
    }

    #[test]
    fn form_errors_name_only_known_parameters() {
        let known = OAuthError::from_form(&FormError::Repeated("scope".into()), &["scope"]);
        assert_eq!(known.description, "the scope parameter is repeated");
        let unknown = OAuthError::from_form(&FormError::Repeated("<x>".into()), &["scope"]);
        assert_eq!(unknown.description, "a parameter is repeated");
        assert_eq!(unknown.code, OAuthErrorCode::InvalidRequest);
    }

    #[test]
    fn slow_down_carries_the_interval() {
        let r = OAuthError::new(OAuthErrorCode::SlowDown, "slow down")
            .with_interval(10)
            .into_response();
        assert_eq!(
            body(&r),
            json!({"error": "slow_down", "error_description": "slow down", "interval": 10})
        );
    }

    #[test]
    fn invalid_client_is_401_and_challenges_only_after_basic() {
        let plain = OAuthError::invalid_client("unknown client").into_response();
        assert_eq!(plain.status(), 401);
        assert!(plain.headers().get("www-authenticate").is_none());
        let basic = OAuthError::invalid_client("unknown client")
            .with_basic_challenge(true)
            .into_response();
        assert!(
            basic.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let r = OAuthError::new(OAuthErrorCode::TemporarilyUnavailable, "busy")
            .with_retry_after(1)
            .into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
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
    fn api_errors_follow_storyden() {
        let r = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such client")
            .suggest("list the clients")
            .into_response();
        assert_eq!(r.status(), 404);
        assert_eq!(
            body(&r),
            json!({"error": "not_found", "message": "no such client", "suggested": "list the clients", "metadata": {}})
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = std::io::Error::other("secret-detail");
        let r = OAuthError::internal("test", &cause).into_response();
        assert_eq!(r.status(), 500);
        assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
        let r = GrpcError::internal("test", &cause).into_response();
        assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
        let r = ApiError::internal("test", &cause).into_response();
        assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
    }
}
