//! The admin API, in Storyden's shape (seed 001): every device authorisation, and the
//! OAuth clients. Every route requires a user token whose permissions claim holds the
//! administrator permission.
//!
//! - `GET /admin/oauth/device-authorizations`: newest first, filterable by `status` and
//!   `client_id`, paginated by a signed cursor; one `Query` per page, never a scan.
//! - `GET, POST /admin/oauth/clients`, `GET, PATCH, DELETE /admin/oauth/clients/{id}`.

use device_flow::permissions::Permissions;
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use device_flow::domain::{
    ClientId, ClientKind, ClientSecret, DeviceAuthorization, DeviceState, GrantType, NewClient,
    OAuthClient, ScopeSet, Status,
};
use device_flow::error::ApiError;
use device_flow::http::{Form, json_response};
use device_flow::secret;
use device_flow::store::{
    ChangeClientError, CreateClientError, DeviceFilter, PAGE_KEY_ATTRIBUTES, Page, is_page_key,
};
use device_flow::time::{Clock, SystemClock, Timestamp};
use device_flow::user_auth::{User, UserTokenVerifier};
use device_flow::{Config, Store};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Deserializer, Serialize};

pub const DEVICE_AUTHORIZATIONS_PATH: &str = "/admin/oauth/device-authorizations";
pub const CLIENTS_PATH: &str = "/admin/oauth/clients";
/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i32 = 50;
pub const MAX_LIMIT: i32 = 200;
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest client name accepted.
pub const MAX_NAME_LEN: usize = 200;
/// The longest a code can live: pending requests are never older (see `DELETE`).
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(1800);

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads, writes and deletes clients, denies
/// records, and lists through the index.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ],
    index: &["dynamodb:Query"],
    signing_key_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub users: UserTokenVerifier,
    pub clock: Box<dyn Clock>,
    cursor_keys: (EncodingKey, DecodingKey),
}

/// The admin function cannot start without a cursor key.
#[derive(Debug, thiserror::Error)]
#[error("ADMIN_CURSOR_SECRET is required")]
pub struct MissingCursorSecret;

impl App {
    pub fn new(
        config: Config,
        store: Store,
        users: UserTokenVerifier,
    ) -> Result<Self, MissingCursorSecret> {
        let secret = config
            .admin_cursor_secret
            .as_ref()
            .ok_or(MissingCursorSecret)?
            .0
            .as_bytes()
            .to_vec();
        Ok(Self {
            config,
            store,
            users,
            clock: Box::new(SystemClock),
            cursor_keys: (
                EncodingKey::from_secret(&secret),
                DecodingKey::from_secret(&secret),
            ),
        })
    }
}

/// Handles one request; every error is in seed 001's format.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    route(app, &request)
        .await
        .unwrap_or_else(ApiError::into_response)
}

fn bad_request(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

fn not_found(what: &'static str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
}

async fn route(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().trim_end_matches('/');
    let method = request.method().clone();
    // Authenticate before anything else, so that nothing is revealed to strangers.
    let user = app
        .users
        .authenticate(request.headers())
        .await
        .map_err(|e| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e.to_string())
                .suggest("send Authorization: Bearer <user token>")
        })?;
    if !user.has_permission(&app.config.admin_permission) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the administrator permission is required",
        ));
    }
    if path == DEVICE_AUTHORIZATIONS_PATH {
        return match method {
            Method::GET => list_device_authorizations(app, request).await,
            _ => Err(method_not_allowed()),
        };
    }
    if path == CLIENTS_PATH {
        return match method {
            Method::GET => list_clients(app, request).await,
            Method::POST => {
                let body: CreateClientRequest = json_body(request)?;
                let created = create_client(&app.store, body, app.clock.now()).await?;
                audit(&user, "client created", created.client.client_id.as_str());
                Ok(no_store(json_response(StatusCode::CREATED, &created)))
            }
            _ => Err(method_not_allowed()),
        };
    }
    if let Some(id) = path
        .strip_prefix(CLIENTS_PATH)
        .and_then(|r| r.strip_prefix('/'))
    {
        let id = percent_encoding::percent_decode_str(id)
            .decode_utf8()
            .ok()
            .and_then(|id| ClientId::parse(&id))
            .ok_or_else(|| not_found("no such client"))?;
        return match method {
            Method::GET => {
                let client = read_client(app, &id).await?;
                Ok(json_response(StatusCode::OK, &ClientView::from(&client)))
            }
            Method::PATCH => patch_client(app, request, &user, &id).await,
            Method::DELETE => delete_client(app, &user, &id).await,
            _ => Err(method_not_allowed()),
        };
    }
    Err(not_found("no such route"))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed",
    )
}

fn audit(user: &User, what: &str, client_id: &str) {
    tracing::info!(admin = %user.account_id, client_id, "{what}");
}

fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn query(request: &Request) -> Result<Form, ApiError> {
    Form::parse_bytes(request.uri().query().unwrap_or_default().as_bytes())
        .map_err(|e| bad_request(format!("the query string is invalid: {e}")))
}

fn limit(query: &Form) -> Result<i32, ApiError> {
    match query.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| bad_request("limit must be a whole number from 1 to 200")),
    }
}

/// The signed content of a cursor: where the next page starts, for which listing.
#[derive(Serialize, Deserialize)]
struct CursorClaims {
    /// The listing and its filters; a cursor is valid only for the same ones.
    scope: String,
    key: HashMap<String, String>,
}

fn encode_cursor(app: &App, scope: &str, key: &device_flow::store::item::Item) -> Option<String> {
    let key = key
        .iter()
        .filter_map(|(name, value)| Some((name.clone(), value.as_s().ok()?.clone())))
        .collect();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &CursorClaims {
            scope: scope.to_owned(),
            key,
        },
        &app.cursor_keys.0,
    )
    .ok()
}

fn decode_cursor(
    app: &App,
    scope: &str,
    kind: &str,
    cursor: &str,
) -> Result<device_flow::store::item::Item, ApiError> {
    let invalid = || {
        bad_request("the cursor is invalid")
            .suggest("use next_cursor exactly as returned, with the same filters")
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<CursorClaims>(cursor, &app.cursor_keys.1, &validation)
        .map_err(|_| invalid())?
        .claims;
    if claims.scope != scope {
        return Err(invalid());
    }
    let key: device_flow::store::item::Item = claims
        .key
        .into_iter()
        .filter(|(name, _)| PAGE_KEY_ATTRIBUTES.contains(&name.as_str()))
        .map(|(name, value)| (name, aws_sdk_dynamodb::types::AttributeValue::S(value)))
        .collect();
    if !is_page_key(&key, kind) {
        return Err(invalid());
    }
    Ok(key)
}

/// A record as seed 001 shows it; unset times are `null`.
#[derive(Serialize)]
struct DeviceAuthorisationView {
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

impl From<&DeviceAuthorization> for DeviceAuthorisationView {
    fn from(r: &DeviceAuthorization) -> Self {
        let (approval, denied_at, consumed_at) = match &r.state {
            DeviceState::Pending => (None, None, None),
            DeviceState::Approved(a) => (Some(a), None, None),
            DeviceState::Denied { denied_at } => (None, Some(*denied_at), None),
            DeviceState::Consumed {
                approval,
                consumed_at,
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

#[derive(Serialize)]
struct DeviceAuthorisationList {
    device_authorisations: Vec<DeviceAuthorisationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

async fn list_device_authorizations(
    app: &App,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let query = query(request)?;
    let status = match query.get("status") {
        None => None,
        Some(raw) => Some(Status::parse(raw).ok_or_else(|| {
            bad_request("status is not one of pending, approved, denied, consumed, expired")
        })?),
    };
    let client_id = match query.get("client_id") {
        None => None,
        Some(raw) => {
            Some(ClientId::parse(raw).ok_or_else(|| bad_request("client_id is malformed"))?)
        }
    };
    let limit = limit(&query)?;
    let scope = format!(
        "device:{}:{}",
        status.map_or("", Status::as_str),
        client_id.as_ref().map_or("", ClientId::as_str)
    );
    let start = query
        .get("cursor")
        .map(|c| decode_cursor(app, &scope, "DEVICE", c))
        .transpose()?;
    let filter = DeviceFilter { status, client_id };
    let Page { items, next } = app
        .store
        .list_device_authorizations(&filter, limit, start, app.clock.now())
        .await
        .map_err(|e| ApiError::internal("listing device authorisations failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &DeviceAuthorisationList {
            device_authorisations: items.iter().map(DeviceAuthorisationView::from).collect(),
            next_cursor: next.and_then(|key| encode_cursor(app, &scope, &key)),
        },
    ))
}

/// A client as the admin API shows it. The secret hash never appears.
#[derive(Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub allowed_grant_types: Vec<&'static str>,
    pub allowed_scopes: Vec<String>,
    pub device_code_lifetime_seconds: Option<u64>,
    pub poll_interval_seconds: Option<u64>,
    pub access_token_lifetime_seconds: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&OAuthClient> for ClientView {
    fn from(c: &OAuthClient) -> Self {
        Self {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            kind: match c.kind {
                ClientKind::Public => "public",
                ClientKind::Confidential { .. } => "confidential",
            },
            allowed_grant_types: c.allowed_grants.iter().map(|g| g.as_str()).collect(),
            allowed_scopes: c.allowed_scopes.iter().map(str::to_owned).collect(),
            device_code_lifetime_seconds: c.device_code_lifetime.map(|d| d.as_secs()),
            poll_interval_seconds: c.poll_interval.map(|d| d.as_secs()),
            access_token_lifetime_seconds: c.access_token_lifetime.map(|d| d.as_secs()),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

/// A client with its secret, shown once: at creation or rotation.
#[derive(Serialize)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Serialize)]
struct ClientList {
    clients: Vec<ClientView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `POST /admin/oauth/clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ClientType,
    pub allowed_grant_types: Vec<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub device_code_lifetime_seconds: Option<u64>,
    #[serde(default)]
    pub poll_interval_seconds: Option<u64>,
    #[serde(default)]
    pub access_token_lifetime_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Public,
    Confidential,
}

/// `PATCH /admin/oauth/clients/{id}`: absent fields stay; `null` clears a lifetime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchClientRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    allowed_grant_types: Option<Vec<String>>,
    #[serde(default)]
    allowed_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    device_code_lifetime_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    poll_interval_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    access_token_lifetime_seconds: Option<Option<u64>>,
    #[serde(default)]
    rotate_secret: bool,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(deserializer).map(Some)
}

fn json_body<T: serde::de::DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => return Err(bad_request("unsupported body")),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than 16 KiB",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut message = format!("the body is not valid: {e}");
        message.truncate(300);
        bad_request(message).suggest("send a JSON object with the documented fields")
    })
}

fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(bad_request(
            "name must be 1 to 200 characters, without control characters",
        ));
    }
    Ok(name.to_owned())
}

fn valid_grants(grants: &[String]) -> Result<Vec<GrantType>, ApiError> {
    grants
        .iter()
        .map(|g| GrantType::parse(g))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            bad_request("an allowed grant type is unknown")
                .suggest("use urn:ietf:params:oauth:grant-type:device_code or refresh_token")
        })
}

fn valid_scopes(scopes: &[String]) -> Result<ScopeSet, ApiError> {
    ScopeSet::from_tokens(scopes.iter().map(String::as_str))
        .map_err(|e| bad_request(format!("allowed_scopes: {e}")))
}

fn valid_seconds(
    name: &'static str,
    value: Option<u64>,
    min: u64,
    max: u64,
) -> Result<Option<Duration>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if (min..=max).contains(&v) => Ok(Some(Duration::from_secs(v))),
        Some(_) => Err(bad_request(format!("{name} must be from {min} to {max}"))),
    }
}

/// Creates a client; the one path for the API and for seeding the local demo clients.
pub async fn create_client(
    store: &Store,
    request: CreateClientRequest,
    now: Timestamp,
) -> Result<ClientWithSecret, ApiError> {
    let id = match &request.client_id {
        Some(id) => ClientId::parse(id).ok_or_else(|| {
            bad_request("client_id must be 1 to 128 characters of A-Z a-z 0-9 - . _ ~")
        })?,
        None => {
            let mut bytes = [0u8; 16];
            secret::fill_random(&mut bytes);
            let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            ClientId::parse(&id).ok_or_else(|| bad_request("client_id generation failed"))?
        }
    };
    let new = NewClient {
        id,
        name: valid_name(&request.name)?,
        confidential: matches!(request.kind, ClientType::Confidential),
        allowed_grants: valid_grants(&request.allowed_grant_types)?,
        allowed_scopes: valid_scopes(&request.allowed_scopes)?,
        device_code_lifetime: valid_seconds(
            "device_code_lifetime_seconds",
            request.device_code_lifetime_seconds,
            60,
            1800,
        )?,
        poll_interval: valid_seconds(
            "poll_interval_seconds",
            request.poll_interval_seconds,
            1,
            60,
        )?,
        access_token_lifetime: valid_seconds(
            "access_token_lifetime_seconds",
            request.access_token_lifetime_seconds,
            60,
            86_400,
        )?,
    };
    let (client, secret) = new.register(now);
    match store.create_client(&client).await {
        Ok(()) => Ok(ClientWithSecret {
            client: ClientView::from(&client),
            client_secret: secret.map(|s| s.expose().to_owned()),
        }),
        Err(CreateClientError::AlreadyExists) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "a client with this client_id exists",
        )
        .suggest("choose another client_id, or leave it out to have one generated")),
        Err(CreateClientError::Store(e)) => Err(ApiError::internal("creating a client failed", &e)),
    }
}

async fn read_client(app: &App, id: &ClientId) -> Result<OAuthClient, ApiError> {
    app.store
        .get_client(id)
        .await
        .map_err(|e| ApiError::internal("reading a client failed", &e))?
        .ok_or_else(|| not_found("no such client"))
}

async fn list_clients(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    let query = query(request)?;
    let limit = limit(&query)?;
    let start = query
        .get("cursor")
        .map(|c| decode_cursor(app, "clients", "CLIENT", c))
        .transpose()?;
    let Page { items, next } = app
        .store
        .list_clients(limit, start)
        .await
        .map_err(|e| ApiError::internal("listing clients failed", &e))?;
    Ok(json_response(
        StatusCode::OK,
        &ClientList {
            clients: items.iter().map(ClientView::from).collect(),
            next_cursor: next.and_then(|key| encode_cursor(app, "clients", &key)),
        },
    ))
}

async fn patch_client(
    app: &App,
    request: &Request,
    user: &User,
    id: &ClientId,
) -> Result<Response<Body>, ApiError> {
    let patch: PatchClientRequest = json_body(request)?;
    let mut client = read_client(app, id).await?;
    let previous_update = client.updated_at;
    if let Some(name) = &patch.name {
        client.name = valid_name(name)?;
    }
    if let Some(grants) = &patch.allowed_grant_types {
        client.allowed_grants = valid_grants(grants)?;
        client.allowed_grants.sort();
        client.allowed_grants.dedup();
    }
    if let Some(scopes) = &patch.allowed_scopes {
        client.allowed_scopes = valid_scopes(scopes)?;
    }
    if let Some(v) = patch.device_code_lifetime_seconds {
        client.device_code_lifetime = valid_seconds("device_code_lifetime_seconds", v, 60, 1800)?;
    }
    if let Some(v) = patch.poll_interval_seconds {
        client.poll_interval = valid_seconds("poll_interval_seconds", v, 1, 60)?;
    }
    if let Some(v) = patch.access_token_lifetime_seconds {
        client.access_token_lifetime =
            valid_seconds("access_token_lifetime_seconds", v, 60, 86_400)?;
    }
    let mut new_secret = None;
    if patch.rotate_secret {
        if client.kind == ClientKind::Public {
            return Err(bad_request("a public client has no secret to rotate"));
        }
        let secret = ClientSecret::generate();
        client.kind = ClientKind::Confidential {
            secret_hash: secret.hash(),
        };
        new_secret = Some(secret.expose().to_owned());
    }
    // Strictly later than before, so that the optimistic check always sees a change.
    client.updated_at = Timestamp::from_millis(
        app.clock
            .now()
            .as_millis()
            .max(previous_update.as_millis() + 1),
    );
    match app.store.replace_client(&client, previous_update).await {
        Ok(()) => {}
        Err(ChangeClientError::NotFound) => return Err(not_found("no such client")),
        Err(ChangeClientError::Conflict) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the client was changed by another request",
            )
            .suggest("read it again and repeat the change"));
        }
        Err(ChangeClientError::Store(e)) => {
            return Err(ApiError::internal("updating a client failed", &e));
        }
    }
    audit(
        user,
        if patch.rotate_secret {
            "client secret rotated"
        } else {
            "client updated"
        },
        id.as_str(),
    );
    Ok(no_store(json_response(
        StatusCode::OK,
        &ClientWithSecret {
            client: ClientView::from(&client),
            client_secret: new_secret,
        },
    )))
}

async fn delete_client(app: &App, user: &User, id: &ClientId) -> Result<Response<Body>, ApiError> {
    match app.store.delete_client(id).await {
        Ok(()) => {}
        // Deleting checks only existence, so a conflict cannot happen here.
        Err(ChangeClientError::NotFound | ChangeClientError::Conflict) => {
            return Err(not_found("no such client"));
        }
        Err(ChangeClientError::Store(e)) => {
            return Err(ApiError::internal("deleting a client failed", &e));
        }
    }
    let now = app.clock.now();
    let since = Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(MAX_CODE_LIFETIME.as_millis() as u64),
    );
    let revoked = app
        .store
        .revoke_pending(id, since, now)
        .await
        .map_err(|e| ApiError::internal("revoking the client's pending requests failed", &e))?;
    tracing::info!(admin = %user.account_id, client_id = %id, revoked, "client deleted");
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
