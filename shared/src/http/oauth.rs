//! The OAuth endpoints' wire format (RFC 6749 §5, RFC 8628 §3.2, §3.5): client
//! identification, the success bodies, and the one place where each outcome of the
//! device-code and poll use cases becomes an RFC 6749 §5.2 error.

use std::borrow::Cow;
use std::error::Error as StdError;

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use super::{Authorization, Form, FormError, basic_credentials, json_response, log_internal};
use crate::domain::{ClientCredentials, ClientId, ClientSecret};
use crate::store::Fault;
use crate::usecase::Internal;
use crate::usecase::introspection::{ActiveToken, TokenRequestError};
use crate::usecase::issue_device_code::{IssueError, Issued};
use crate::usecase::poll::{IssuedToken, PollError};
use crate::usecase::refresh::RefreshError;
use crate::usecase::userinfo::{UserInfo, UserInfoError};

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
    /// A requested resource is malformed or not allowed (RFC 8707 §2). 400.
    InvalidTarget,
    /// A protected resource's: the access token is not valid (RFC 6750 §3.1). 401.
    InvalidToken,
    /// A protected resource's: the token lacks a scope it needs (RFC 6750 §3.1). 403.
    InsufficientScope,
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
            Self::InvalidTarget => "invalid_target",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidClient | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope => StatusCode::FORBIDDEN,
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
    /// A protected resource's answer carries RFC 6750 §3's `WWW-Authenticate: Bearer`.
    pub bearer_challenge: Option<BearerChallenge>,
}

/// RFC 6750 §3: how a protected resource challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerChallenge {
    /// The request had no token: the challenge names no error (§3.1).
    NoToken,
    /// The challenge names the error code (and, for `insufficient_scope`, the scope).
    Error,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
            interval: None,
            bearer_challenge: None,
        }
    }

    pub fn with_bearer_challenge(mut self, challenge: BearerChallenge) -> Self {
        self.bearer_challenge = Some(challenge);
        self
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
        if let Some(challenge) = self.bearer_challenge {
            let value = match (challenge, self.code) {
                (BearerChallenge::NoToken, _) => "Bearer realm=\"device-flow\"".to_owned(),
                (BearerChallenge::Error, OAuthErrorCode::InsufficientScope) => format!(
                    "Bearer realm=\"device-flow\", error=\"insufficient_scope\", scope=\"{}\"",
                    crate::domain::OPENID
                ),
                (BearerChallenge::Error, code) => {
                    format!("Bearer realm=\"device-flow\", error=\"{}\"", code.as_str())
                }
            };
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

impl From<Internal> for OAuthError {
    /// A passing store failure is 503 `temporarily_unavailable` with `Retry-After`; anything
    /// else 500. The cause is logged either way, never shown.
    fn from(error: Internal) -> Self {
        if error.is_transient() {
            log_internal(error.context, &*error.source);
            return Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the service is busy, try again",
            )
            .with_retry_after(1);
        }
        Self::internal(error.context, &*error.source)
    }
}

impl From<IssueError> for OAuthError {
    fn from(error: IssueError) -> Self {
        let description = error.to_string();
        match error {
            IssueError::InvalidClient { used_basic } => {
                Self::invalid_client("client authentication failed")
                    .with_basic_challenge(used_basic)
            }
            IssueError::UnauthorizedClient => {
                Self::new(OAuthErrorCode::UnauthorizedClient, description)
            }
            IssueError::InvalidScope => Self::new(OAuthErrorCode::InvalidScope, description),
            IssueError::InvalidTarget => Self::new(OAuthErrorCode::InvalidTarget, description),
            IssueError::NoFreeUserCode => Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "no user code could be allocated, try again",
            )
            .with_retry_after(1),
            IssueError::Internal(e) => e.into(),
        }
    }
}

impl From<PollError> for OAuthError {
    fn from(error: PollError) -> Self {
        let description = error.to_string();
        match error {
            PollError::InvalidClient { used_basic } => {
                Self::invalid_client(description).with_basic_challenge(used_basic)
            }
            PollError::ClientGone => Self::invalid_client(description),
            PollError::UnauthorizedClient => {
                Self::new(OAuthErrorCode::UnauthorizedClient, description)
            }
            PollError::Pending => Self::new(OAuthErrorCode::AuthorizationPending, description),
            PollError::SlowDown { interval } => {
                let slow_down = Self::new(OAuthErrorCode::SlowDown, description);
                match interval {
                    Some(interval) => slow_down.with_interval(interval.as_secs()),
                    None => slow_down,
                }
            }
            PollError::Denied => Self::new(OAuthErrorCode::AccessDenied, description),
            PollError::Expired => Self::new(OAuthErrorCode::ExpiredToken, description),
            PollError::InvalidGrant => Self::new(OAuthErrorCode::InvalidGrant, description),
            PollError::Missing(_) => Self::invalid_request(description),
            PollError::UnsupportedGrantType => {
                Self::new(OAuthErrorCode::UnsupportedGrantType, description)
            }
            // A throttled store: the device backs off instead of failing (RFC 8628 §3.5).
            PollError::Internal(e) if e.fault() == Fault::Throttled => {
                log_internal(e.context, &*e.source);
                Self::new(OAuthErrorCode::SlowDown, "the service is busy, slow down")
            }
            PollError::Internal(e) => e.into(),
        }
    }
}

/// Sets the headers RFC 6749 §5.1 requires on every response that carries a credential.
fn no_store(response: Response<Body>) -> Response<Body> {
    let mut response = super::no_store(response);
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The RFC 8628 §3.2 response.
pub fn device_authorization_response(issued: &Issued, verification_uri: &str) -> Response<Body> {
    /// No `Debug`: it holds the device code.
    #[derive(Serialize)]
    struct Wire<'a> {
        device_code: &'a str,
        user_code: String,
        verification_uri: &'a str,
        verification_uri_complete: String,
        expires_in: u64,
        interval: u64,
    }
    let record = &issued.record;
    let user_code = record.user_code.to_string();
    no_store(json_response(
        StatusCode::OK,
        &Wire {
            device_code: issued.device_code.expose(),
            verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
            user_code,
            verification_uri,
            expires_in: record.created_at.secs_until(record.expires_at),
            interval: record.interval.as_secs(),
        },
    ))
}

impl From<UserInfoError> for OAuthError {
    fn from(error: UserInfoError) -> Self {
        let description = error.to_string();
        match error {
            UserInfoError::NoToken => Self::new(OAuthErrorCode::InvalidToken, description)
                .with_bearer_challenge(BearerChallenge::NoToken),
            UserInfoError::InvalidRequest(_) => {
                Self::invalid_request(description).with_bearer_challenge(BearerChallenge::Error)
            }
            UserInfoError::InvalidToken => Self::new(OAuthErrorCode::InvalidToken, description)
                .with_bearer_challenge(BearerChallenge::Error),
            UserInfoError::InsufficientScope => {
                Self::new(OAuthErrorCode::InsufficientScope, description)
                    .with_bearer_challenge(BearerChallenge::Error)
            }
            UserInfoError::Internal(e) => e.into(),
        }
    }
}

/// UserInfo's answer (OpenID Connect Core §5.3.2): `sub` and the claims.
pub fn userinfo_response(info: UserInfo) -> Response<Body> {
    let mut claims = info.claims;
    claims.insert("sub".to_owned(), serde_json::Value::String(info.sub));
    no_store(json_response(StatusCode::OK, &claims))
}

/// The RFC 6749 §5.1 response (with OpenID Connect Core §3.1.3.3's `id_token`).
pub fn token_response(token: &IssuedToken) -> Response<Body> {
    /// No `Debug`: it holds the token.
    #[derive(Serialize)]
    struct Wire<'a> {
        access_token: &'a str,
        token_type: &'static str,
        expires_in: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        scope: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        id_token: Option<&'a str>,
    }
    no_store(json_response(
        StatusCode::OK,
        &Wire {
            access_token: &token.access_token,
            token_type: "Bearer",
            expires_in: token.expires_in.as_secs(),
            scope: token.scope.as_deref(),
            refresh_token: token.refresh_token.as_ref().map(|t| t.expose()),
            id_token: token.id_token.as_deref(),
        },
    ))
}

impl From<RefreshError> for OAuthError {
    fn from(error: RefreshError) -> Self {
        let description = error.to_string();
        match error {
            RefreshError::InvalidClient { used_basic } => {
                Self::invalid_client(description).with_basic_challenge(used_basic)
            }
            RefreshError::UnauthorizedClient => {
                Self::new(OAuthErrorCode::UnauthorizedClient, description)
            }
            RefreshError::InvalidGrant => Self::new(OAuthErrorCode::InvalidGrant, description),
            RefreshError::InvalidTarget => Self::new(OAuthErrorCode::InvalidTarget, description),
            RefreshError::InvalidScope => Self::new(OAuthErrorCode::InvalidScope, description),
            RefreshError::Busy => {
                Self::new(OAuthErrorCode::TemporarilyUnavailable, description).with_retry_after(1)
            }
            RefreshError::Internal(e) => e.into(),
        }
    }
}

impl From<TokenRequestError> for OAuthError {
    fn from(error: TokenRequestError) -> Self {
        let description = error.to_string();
        match error {
            TokenRequestError::InvalidClient { used_basic }
            | TokenRequestError::NotResourceServer { used_basic } => {
                Self::invalid_client(description).with_basic_challenge(used_basic)
            }
            TokenRequestError::MissingToken => Self::invalid_request(description),
            TokenRequestError::Busy => {
                Self::new(OAuthErrorCode::TemporarilyUnavailable, description).with_retry_after(1)
            }
            TokenRequestError::Internal(e) => e.into(),
        }
    }
}

/// The RFC 7009 §2.2 success: 200 with an empty body.
pub fn revoked_response() -> Response<Body> {
    no_store(Response::new(Body::Empty))
}

/// The RFC 7662 §2.2 response: `{"active": false}`, or the active token's claims.
pub fn introspection_response(active: Option<&ActiveToken>) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        active: bool,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        token: Option<Claims<'a>>,
    }
    #[derive(Serialize)]
    struct Claims<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        scope: Option<&'a str>,
        client_id: &'a str,
        sub: &'a str,
        exp: u64,
        iat: u64,
        iss: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        aud: Option<&'a crate::token::Audience>,
        token_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        jti: Option<&'a str>,
        sid: &'a str,
    }
    no_store(json_response(
        StatusCode::OK,
        &Wire {
            active: active.is_some(),
            token: active.map(|t| Claims {
                scope: t.scope.as_deref(),
                client_id: &t.client_id,
                sub: &t.sub,
                exp: t.exp,
                iat: t.iat,
                iss: &t.iss,
                aud: t.aud.as_ref(),
                token_type: t.token_type,
                jti: t.jti.as_deref(),
                sid: &t.sid,
            }),
        },
    ))
}

/// Extracts the client's identity from the `Authorization` header or the form.
///
/// Refused: more than one authentication method (RFC 6749 §2.3: "MUST NOT use more
/// than one"), a form `client_id` that differs from the Basic one, a malformed
/// `Authorization` header, and no client identification at all.
pub fn client_credentials(
    headers: &HeaderMap,
    form: &Form,
) -> Result<ClientCredentials, OAuthError> {
    let form_id = form.get("client_id");
    let form_secret = form.get("client_secret");
    match basic_credentials(headers) {
        Authorization::Malformed => Err(OAuthError::invalid_client(
            "the Authorization header is not valid HTTP Basic client credentials",
        )
        .with_basic_challenge(true)),
        Authorization::Basic { username, password } => {
            if form_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use either HTTP Basic or client_secret in the body, not both",
                ));
            }
            if form_id.is_some_and(|id| id != username) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the HTTP Basic client",
                ));
            }
            let client_id = ClientId::parse(&username).ok_or_else(|| {
                OAuthError::invalid_client("client authentication failed")
                    .with_basic_challenge(true)
            })?;
            Ok(ClientCredentials {
                client_id,
                secret: (!password.is_empty()).then(|| ClientSecret::new(password)),
                used_basic: true,
            })
        }
        Authorization::None => {
            let Some(id) = form_id else {
                return Err(OAuthError::invalid_request("client_id is required"));
            };
            let client_id = ClientId::parse(id)
                .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
            Ok(ClientCredentials {
                client_id,
                secret: form_secret.map(|s| ClientSecret::new(s.to_owned())),
                used_basic: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::{Value, json};

    fn body(response: &Response<Body>) -> Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn form(body: &str) -> Form {
        Form::parse_bytes(body.as_bytes()).unwrap()
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
    fn a_public_client_is_identified_by_its_id() {
        let creds = client_credentials(&HeaderMap::new(), &form("client_id=c1")).unwrap();
        assert!(!creds.used_basic);
        assert!(creds.secret.is_none());
    }

    #[test]
    fn a_confidential_client_uses_post_or_basic() {
        let post =
            client_credentials(&HeaderMap::new(), &form("client_id=c1&client_secret=s")).unwrap();
        assert_eq!(post.secret.unwrap().expose(), "s");
        assert!(!post.used_basic);
        let basic = client_credentials(&basic("c1", "s"), &form("")).unwrap();
        assert!(basic.used_basic);
        assert_eq!(basic.secret.unwrap().expose(), "s");
    }

    #[test]
    fn ambiguous_or_missing_identification_is_refused() {
        let err = client_credentials(&HeaderMap::new(), &form("")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        let err = client_credentials(&basic("c1", "s"), &form("client_secret=s")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        let err = client_credentials(&basic("c1", "s"), &form("client_id=c2")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        // Same id in both places is fine.
        assert!(client_credentials(&basic("c1", "s"), &form("client_id=c1")).is_ok());
        let err = client_credentials(&HeaderMap::new(), &form("client_id=bad%20id")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidClient);
    }

    #[test]
    fn every_poll_outcome_has_its_rfc_code_and_status() {
        use std::time::Duration;
        let cases = [
            (
                PollError::InvalidClient { used_basic: true },
                "invalid_client",
                401,
            ),
            (PollError::ClientGone, "invalid_client", 401),
            (PollError::UnauthorizedClient, "unauthorized_client", 400),
            (PollError::Pending, "authorization_pending", 400),
            (
                PollError::SlowDown {
                    interval: Some(Duration::from_secs(10)),
                },
                "slow_down",
                400,
            ),
            (PollError::Denied, "access_denied", 400),
            (PollError::Expired, "expired_token", 400),
            (PollError::InvalidGrant, "invalid_grant", 400),
        ];
        for (outcome, code, status) in cases {
            let response = OAuthError::from(outcome).into_response();
            assert_eq!(response.status(), status, "{code}");
            assert_eq!(body(&response)["error"], code);
        }
        let slow = OAuthError::from(PollError::SlowDown {
            interval: Some(Duration::from_secs(10)),
        });
        assert_eq!(slow.interval, Some(10));
        let challenged = OAuthError::from(PollError::InvalidClient { used_basic: true });
        assert!(challenged.basic_challenge);
    }

    #[test]
    fn every_issue_outcome_has_its_rfc_code_and_status() {
        let cases = [
            (
                IssueError::InvalidClient { used_basic: false },
                "invalid_client",
                401,
            ),
            (IssueError::UnauthorizedClient, "unauthorized_client", 400),
            (IssueError::InvalidScope, "invalid_scope", 400),
            (IssueError::NoFreeUserCode, "temporarily_unavailable", 503),
        ];
        for (outcome, code, status) in cases {
            let response = OAuthError::from(outcome).into_response();
            assert_eq!(response.status(), status, "{code}");
            assert_eq!(body(&response)["error"], code);
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let cause = std::io::Error::other("secret-detail");
        let r = OAuthError::internal("test", &cause).into_response();
        assert_eq!(r.status(), 500);
        assert!(!String::from_utf8_lossy(r.body().as_ref()).contains("secret-detail"));
    }
}
