//! The admin API's wire format, in Storyden's shape: the views of records and
//! clients, the request bodies and query strings, and the one place where each outcome of
//! the admin use cases becomes an `{error, message, suggested, metadata}` error.

use std::borrow::Cow;
use std::error::Error as StdError;

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::{Deserialize, Deserializer, Serialize};

use super::{Form, body_bytes, json_response, log_internal, no_store};
use crate::domain::{
    Charset, ClientChanges, ClientError, ClientId, ClientKind, ClientName, ClientOverrides,
    Deletion, DeviceAuthorization, DeviceState, Grant, NewClient, OAuthClient, PerSetting,
    ScopeSet, Setting, Status, parse_allowed_resources, parse_audiences, parse_grants,
    user_code_format,
};
use crate::time::{Clock, Timestamp};
use crate::usecase::grants::{GrantError, GrantListQuery};
use crate::usecase::list_device_authorizations::{DeviceListQuery, ListError};
use crate::usecase::manage_clients::{ClientAdminError, DeleteOutcome, WithSecret};
use crate::usecase::{Internal, ListPage, PageSize};
use crate::user_auth::AuthError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest error message that quotes the JSON parser.
const MAX_MESSAGE_LEN: usize = 300;

/// An error in Storyden's shape: `{"error","message","suggested","metadata"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable, machine-readable, e.g. `not_found`.
    pub error: &'static str,
    pub message: Cow<'static, str>,
    /// What the caller could do about it, when there is something.
    pub suggested: Option<Cow<'static, str>>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Retry-After` in seconds, for 503.
    pub retry_after: Option<u64>,
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
            retry_after: None,
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
        let mut response = json_response(
            self.status,
            &Wire {
                error: self.error,
                message: &self.message,
                suggested: self.suggested.as_deref(),
                metadata: &self.metadata,
            },
        );
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                lambda_http::http::header::RETRY_AFTER,
                lambda_http::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

/// A refused request.
pub fn bad_request(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

pub fn not_found(what: &'static str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
}

pub fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    )
}

/// Signed in, without the administrator permission.
pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the administrator permission is required",
    )
}

impl From<Internal> for ApiError {
    /// A passing store failure is 503 `unavailable` with `Retry-After`; anything else 500.
    /// The cause is logged either way, never shown.
    fn from(error: Internal) -> Self {
        if error.is_transient() {
            log_internal(error.context, &*error.source);
            let mut unavailable = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is busy, try again",
            )
            .suggest("retry after the Retry-After seconds");
            unavailable.retry_after = Some(1);
            return unavailable;
        }
        Self::internal(error.context, &*error.source)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            error.to_string(),
        )
        .suggest("send Authorization: Bearer <user token>")
    }
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        let suggestion = match error {
            ClientError::UnknownGrant => {
                Some("use urn:ietf:params:oauth:grant-type:device_code or refresh_token")
            }
            _ => None,
        };
        let refused = bad_request(error.to_string());
        match suggestion {
            Some(s) => refused.suggest(s),
            None => refused,
        }
    }
}

fn invalid_page_token() -> ApiError {
    bad_request("the cursor is invalid")
        .suggest("use next_cursor exactly as returned, with the same filters")
}

impl From<ListError> for ApiError {
    fn from(error: ListError) -> Self {
        match error {
            ListError::InvalidPageToken(_) => invalid_page_token(),
            ListError::Internal(e) => e.into(),
        }
    }
}

impl From<ClientAdminError> for ApiError {
    fn from(error: ClientAdminError) -> Self {
        match error {
            ClientAdminError::NotFound => not_found("no such client"),
            ClientAdminError::AlreadyExists => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
                    .suggest("choose another client_id, or leave it out to have one generated")
            }
            ClientAdminError::Conflict => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
                    .suggest("read it again and repeat the change")
            }
            ClientAdminError::BeingDeleted => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
                    .suggest("repeat the DELETE until it answers 204")
            }
            ClientAdminError::Invalid(e) => e.into(),
            ClientAdminError::InvalidPageToken(_) => invalid_page_token(),
            ClientAdminError::Internal(e) => e.into(),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(error: GrantError) -> Self {
        match error {
            GrantError::NotFound => not_found("no such grant"),
            GrantError::FilterRequired => {
                bad_request(error.to_string()).suggest("add ?client_id=... or ?account_id=...")
            }
            GrantError::InvalidPageToken(_) => invalid_page_token(),
            GrantError::Busy => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string()).suggest("try again")
            }
            GrantError::Internal(e) => e.into(),
        }
    }
}

/// The grant listing's query: `account_id` and/or `client_id`, `limit`, `cursor`.
pub fn grant_list_query(query: &Form) -> Result<GrantListQuery, ApiError> {
    let client_id = query
        .get("client_id")
        .map(|raw| ClientId::parse(raw).ok_or_else(|| bad_request("client_id is malformed")))
        .transpose()?;
    let account_id = query
        .get("account_id")
        .map(|raw| {
            (!raw.is_empty() && raw.len() <= 256)
                .then(|| raw.to_owned())
                .ok_or_else(|| bad_request("account_id must be 1 to 256 bytes"))
        })
        .transpose()?;
    Ok(GrantListQuery {
        account_id,
        client_id,
        size: page_size(query)?,
        page_token: page_token(query),
    })
}

/// A grant as the admin API shows it, with its status at the time of the answer.
#[derive(Serialize)]
pub struct GrantView {
    pub id: String,
    pub account_id: String,
    pub client_id: String,
    pub client_name: String,
    pub scope: Vec<String>,
    /// The resources (RFC 8707) its access tokens are for; empty: the default audience.
    pub resources: Vec<String>,
    pub status: &'static str,
    pub device_ip: Option<String>,
    pub device_user_agent: Option<String>,
    pub refresh_tokens: bool,
    pub created_at: String,
    pub last_used_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<&'static str>,
}

impl GrantView {
    pub fn new(g: &Grant, now: Timestamp) -> Self {
        Self {
            id: g.id.as_str().to_owned(),
            account_id: g.account_id.clone(),
            client_id: g.client_id.as_str().to_owned(),
            client_name: g.client_name.clone(),
            scope: g.scope.iter().map(str::to_owned).collect(),
            resources: g.resources.clone(),
            status: g.status(now).as_str(),
            device_ip: g.device.ip.clone(),
            device_user_agent: g.device.user_agent.clone(),
            refresh_tokens: g.refresh.is_some(),
            created_at: g.created_at.to_rfc3339(),
            last_used_at: g.last_used_at.to_rfc3339(),
            expires_at: g.expires_at.to_rfc3339(),
            revoked_at: g.revoked.map(|r| r.at.to_rfc3339()),
            revoked_reason: g.revoked.map(|r| r.reason.as_str()),
        }
    }
}

/// `{"grants": [...], "next_cursor": ...}`.
pub fn grant_list_response(page: &ListPage<Grant>, clock: &dyn Clock) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        grants: Vec<GrantView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<&'a str>,
    }
    let now = clock.now();
    json_response(
        StatusCode::OK,
        &Wire {
            grants: page.items.iter().map(|g| GrantView::new(g, now)).collect(),
            next_cursor: page.next_page_token.as_deref(),
        },
    )
}

/// `204 No Content`.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A JSON body of at most [`MAX_BODY_BYTES`].
pub fn json_body<T: serde::de::DeserializeOwned>(body: &Body) -> Result<T, ApiError> {
    let bytes = body_bytes(body).ok_or_else(|| bad_request("unsupported body"))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 16 KiB",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut message = format!("the body is not valid: {e}");
        if message.len() > MAX_MESSAGE_LEN {
            // Cut on a character boundary: serde quotes the input, which may be any UTF-8.
            let mut end = MAX_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        bad_request(message).suggest("send a JSON object with the documented fields")
    })
}

/// The query string's parameters.
pub fn query(query: Option<&str>) -> Result<Form, ApiError> {
    Form::parse_bytes(query.unwrap_or_default().as_bytes())
        .map_err(|e| bad_request(format!("the query string is invalid: {e}")))
}

/// `limit` (1 to 200; absent: the default).
pub fn page_size(query: &Form) -> Result<Option<PageSize>, ApiError> {
    query
        .get("limit")
        .map(|raw| {
            raw.parse()
                .ok()
                .and_then(PageSize::new)
                .ok_or_else(|| bad_request("limit must be a whole number from 1 to 200"))
        })
        .transpose()
}

/// `cursor`: the `next_cursor` of the previous page.
pub fn page_token(query: &Form) -> Option<String> {
    query.get("cursor").map(str::to_owned)
}

/// The device-authorization listing's query: `status`, `client_id`, `limit`, `cursor`.
pub fn device_list_query(query: &Form) -> Result<DeviceListQuery, ApiError> {
    let status = query
        .get("status")
        .map(|raw| {
            Status::parse(raw).ok_or_else(|| {
                bad_request("status is not one of pending, approved, denied, consumed, expired")
            })
        })
        .transpose()?;
    let client_id = query
        .get("client_id")
        .map(|raw| ClientId::parse(raw).ok_or_else(|| bad_request("client_id is malformed")))
        .transpose()?;
    Ok(DeviceListQuery {
        status,
        client_id,
        size: page_size(query)?,
        page_token: page_token(query),
    })
}

/// A record as the admin API shows it; unset times are `null`.
#[derive(Serialize)]
pub struct DeviceAuthorizationView {
    id: String,
    #[serde(rename = "createdAt")]
    created_at: String,
    client_id: String,
    user_code: String,
    scope: String,
    expires_at: String,
    poll_interval_seconds: u64,
    last_polled_at: Option<String>,
    approved_by_account_id: Option<String>,
    approved_at: Option<String>,
    denied_at: Option<String>,
    consumed_at: Option<String>,
}

impl From<&DeviceAuthorization> for DeviceAuthorizationView {
    fn from(r: &DeviceAuthorization) -> Self {
        let (approval, denied_at, consumed_at) = match &r.state {
            DeviceState::Pending => (None, None, None),
            DeviceState::Approved(a) => (Some(a), None, None),
            DeviceState::Denied { denied_at } => (None, Some(*denied_at), None),
            DeviceState::Consumed {
                approval,
                consumed_at,
                ..
            } => (Some(approval), None, Some(*consumed_at)),
        };
        Self {
            id: r.id.as_str().to_owned(),
            created_at: r.created_at.to_rfc3339(),
            client_id: r.client_id.as_str().to_owned(),
            user_code: r.user_code.to_string(),
            scope: r.scope.to_string(),
            expires_at: r.expires_at.to_rfc3339(),
            poll_interval_seconds: r.interval.as_secs(),
            last_polled_at: r.last_polled_at.map(Timestamp::to_rfc3339),
            approved_by_account_id: approval.map(|a| a.account_id.clone()),
            approved_at: approval.map(|a| a.approved_at.to_rfc3339()),
            denied_at: denied_at.map(Timestamp::to_rfc3339),
            consumed_at: consumed_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// `{"device_authorisations": [...], "next_cursor": ...}`.
pub fn device_list_response(page: &ListPage<DeviceAuthorization>) -> Response<Body> {
    list_response::<_, DeviceAuthorizationView>("device_authorisations", page)
}

/// `{"<field>": [...], "next_cursor": ...}`: one page of a listing, each item in its view.
fn list_response<T, V>(field: &'static str, page: &ListPage<T>) -> Response<Body>
where
    V: Serialize + for<'a> From<&'a T>,
{
    #[derive(Serialize)]
    struct Wire<'a, V> {
        #[serde(flatten)]
        items: std::collections::BTreeMap<&'static str, Vec<V>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_cursor: Option<&'a str>,
    }
    let views = page.items.iter().map(V::from).collect();
    json_response(
        StatusCode::OK,
        &Wire {
            items: std::collections::BTreeMap::from([(field, views)]),
            next_cursor: page.next_page_token.as_deref(),
        },
    )
}

mod clients;

pub use clients::{
    ClientType, ClientView, CreateClientRequest, DeletionView, OverridesView, PatchClientRequest,
    client_deletion_response, client_list_response, client_response, client_with_secret_response,
};

#[cfg(test)]
mod tests;
