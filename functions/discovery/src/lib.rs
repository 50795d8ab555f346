//! Discovery: `GET` of the metadata documents and the JWKS, with the caching headers each
//! carries. What they say is the [`discovery`](device_flow::usecase::discovery) use case's.

use device_flow::http::json_response;
use device_flow::http::oauth::OAuthError;
use device_flow::permissions::Permissions;
use device_flow::usecase::discovery::{Documents, PublishedJwks};
use device_flow::{DiscoveryConfig, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

pub use device_flow::usecase::discovery::JWKS_PATH;
// The JWKS's `max-age` (5 minutes) is the token function's too: it signs with a new key only
// once that and the instance cache have passed since its publication.
use device_flow::usecase::signing_keys::JWKS_MAX_AGE;

/// The metadata changes only with a deployment.
pub const METADATA_MAX_AGE: u32 = 3600;

pub const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. Reads the published JWKS.
pub const PERMISSIONS: Permissions = Permissions {
    table: &["dynamodb:GetItem"],
    writes: &[],
    index: &[],
    client_index: &[],
    signing_key_secret: &[],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    store: Store,
    documents: Documents,
    jwks: PublishedJwks,
}

impl App {
    pub fn new(config: &DiscoveryConfig, store: Store) -> Self {
        Self {
            store,
            documents: Documents::new(config),
            jwks: PublishedJwks::default(),
        }
    }
}

/// Handles one request.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let path = request.uri().path();
    if request.method() != Method::GET {
        return not_found();
    }
    if path == METADATA_PATHS[0] {
        return cacheable(Body::from(app.documents.oauth.clone()), METADATA_MAX_AGE);
    }
    if path == METADATA_PATHS[1] {
        return cacheable(Body::from(app.documents.openid.clone()), METADATA_MAX_AGE);
    }
    if path == JWKS_PATH {
        return match app.jwks.get(&app.store).await {
            Ok(jwks) => cacheable(Body::from(jwks), JWKS_MAX_AGE.as_secs() as u32),
            Err(e) => OAuthError::from(e).into_response(),
        };
    }
    not_found()
}

fn cacheable(body: Body, max_age: u32) -> Response<Body> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

fn not_found() -> Response<Body> {
    #[derive(Serialize)]
    struct NotFound {
        error: &'static str,
    }
    json_response(StatusCode::NOT_FOUND, &NotFound { error: "not_found" })
}
