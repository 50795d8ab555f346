//! The admin API, in Storyden's shape: every device authorization, and the
//! OAuth clients. Every route requires a user token whose permissions claim holds the
//! administrator permission.
//!
//! - `GET /admin/oauth/device-authorizations`: [`list_device_authorizations`].
//! - `GET, POST /admin/oauth/clients`, `GET, PATCH, DELETE /admin/oauth/clients/{client_id}`:
//!   [`manage_clients`](device_flow::usecase::manage_clients).
//! - `GET /admin/oauth/grants?client_id=...|account_id=...`, `DELETE /admin/oauth/grants/{grant_id}`:
//!   [`list_grants`] and [`revoke_grant`].

use device_flow::domain::{ClientId, GrantId};
use device_flow::http::admin_api::{
    ApiError, CreateClientRequest, PatchClientRequest, client_deletion_response,
    client_list_response, client_response, client_with_secret_response, device_list_query,
    device_list_response, forbidden, grant_list_query, grant_list_response, json_body,
    method_not_allowed, no_content, not_found, page_size, page_token, query,
};
use device_flow::http::path_parameter;
use device_flow::permissions::Permissions;
use device_flow::time::{Clock, SystemClock};
use device_flow::usecase::PageTokens;
use device_flow::usecase::grants::{list_grants, revoke_grant};
use device_flow::usecase::list_device_authorizations::list_device_authorizations;
use device_flow::usecase::manage_clients::{
    create_client, delete_client, list_clients, read_client, update_client,
};
use device_flow::user_auth::{Administrator, UserTokenVerifier};
use device_flow::{AdminConfig, Store};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

pub const DEVICE_AUTHORIZATIONS_PATH: &str = "/admin/oauth/device-authorizations";
pub const CLIENTS_PATH: &str = "/admin/oauth/clients";
pub const GRANTS_PATH: &str = "/admin/oauth/grants";
/// The path parameter of `/admin/oauth/grants/{grant_id}`.
pub const GRANT_ID_PARAMETER: &str = "grant_id";
/// The path parameter of `/admin/oauth/clients/{client_id}`.
pub const CLIENT_ID_PARAMETER: &str = "client_id";

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads, writes and deletes clients, denies
/// records, revokes grants, and lists through the indexes (records and clients in the listing
/// index, grants by account in it and by client in the client index).
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ],
    writes: &["CLIENT#", "DEVICE#", "GRANT#"],
    index: &["dynamodb:Query"],
    client_index: &["dynamodb:Query"],
    signing_key_secret: &[],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: AdminConfig,
    pub store: Store,
    pub users: UserTokenVerifier,
    pub pages: PageTokens,
    pub clock: Box<dyn Clock>,
}

impl App {
    pub fn new(config: AdminConfig, store: Store, users: UserTokenVerifier) -> Self {
        Self {
            pages: PageTokens::new(&config.cursor_secret),
            config,
            store,
            users,
            clock: Box::new(SystemClock),
        }
    }
}

/// Handles one request; every error is in Storyden's format.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    route(app, &request)
        .await
        .unwrap_or_else(ApiError::into_response)
}

async fn route(app: &App, request: &Request) -> Result<Response<Body>, ApiError> {
    // Authenticate before anything else, so that nothing is revealed to strangers.
    let user = app.users.authenticate(request.headers()).await?;
    let admin =
        Administrator::authorize(&user, &app.config.admin_permission).ok_or_else(forbidden)?;
    let (store, clock) = (&app.store, app.clock.as_ref());
    let method = request.method().clone();
    if let Some(id) = path_parameter(request, GRANT_ID_PARAMETER) {
        if method != Method::DELETE {
            return Err(method_not_allowed());
        }
        let id = id.ok().and_then(|id| GrantId::parse(&id));
        revoke_grant(store, clock, &admin, id).await?;
        return Ok(no_content());
    }
    if let Some(id) = path_parameter(request, CLIENT_ID_PARAMETER) {
        let id = id
            .ok()
            .and_then(|id| ClientId::parse(&id))
            .ok_or_else(|| not_found("no such client"))?;
        return match method {
            Method::GET => Ok(client_response(&read_client(store, &admin, &id).await?)),
            Method::PATCH => {
                let changes = json_body::<PatchClientRequest>(request.body())?.into_changes()?;
                let changed = update_client(store, clock, &admin, &id, changes).await?;
                Ok(client_with_secret_response(StatusCode::OK, &changed))
            }
            Method::DELETE => {
                let settings = &app.config.client_deletion;
                let outcome = delete_client(store, clock, settings, &admin, &id).await?;
                Ok(client_deletion_response(&id, &outcome))
            }
            _ => Err(method_not_allowed()),
        };
    }
    let query = || query(request.uri().query());
    match (request.uri().path().trim_end_matches('/'), method) {
        (DEVICE_AUTHORIZATIONS_PATH, Method::GET) => {
            let query = device_list_query(&query()?)?;
            let page = list_device_authorizations(store, &app.pages, clock, &admin, query);
            Ok(device_list_response(&page.await?))
        }
        (GRANTS_PATH, Method::GET) => {
            let query = grant_list_query(&query()?)?;
            let page = list_grants(store, &app.pages, &admin, query).await?;
            Ok(grant_list_response(&page, clock))
        }
        (CLIENTS_PATH, Method::GET) => {
            let query = query()?;
            let (size, token) = (page_size(&query)?, page_token(&query));
            let page = list_clients(store, &app.pages, &admin, size, token).await?;
            Ok(client_list_response(&page))
        }
        (CLIENTS_PATH, Method::POST) => {
            let new = json_body::<CreateClientRequest>(request.body())?.into_new_client()?;
            let created = create_client(store, &admin, new, clock.now()).await?;
            Ok(client_with_secret_response(StatusCode::CREATED, &created))
        }
        (DEVICE_AUTHORIZATIONS_PATH | CLIENTS_PATH | GRANTS_PATH, _) => Err(method_not_allowed()),
        _ => Err(not_found("no such route")),
    }
}
