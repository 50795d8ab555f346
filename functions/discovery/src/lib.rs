//! Discovery: the authorization server metadata (RFC 8414); the same with OpenID Connect
//! Discovery 1.0's fields (UserInfo, ID token algorithms, subject types, claims) at the
//! OpenID Connect location that clients look at first; and the JWKS (RFC 7517).
//!
//! The metadata is fixed per deployment and rendered once per cold start. The JWKS is
//! what the token function published to the table at its own cold start: this function
//! never sees the signing secret.

use std::sync::Mutex;
use std::time::Instant;

use device_flow::domain::GrantType;
use device_flow::http::json_response;
use device_flow::http::oauth::OAuthError;
use device_flow::permissions::Permissions;
use device_flow::usecase::signing_keys::published_keys_if_any;
use device_flow::{DiscoveryConfig, Store};
use lambda_http::http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// The metadata changes only with a deployment.
pub const METADATA_MAX_AGE: u32 = 3600;
// The JWKS's `max-age` (5 minutes) and this function's instance cache (10 s: the one
// item is read at most once per instance per this time, however many resource servers
// ask, so it never runs hot) are the token function's too: it signs with a new key only
// once both have passed since its publication.
pub use device_flow::usecase::signing_keys::{JWKS_INSTANCE_CACHE, JWKS_MAX_AGE};

pub const METADATA_PATHS: [&str; 2] = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
];
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// RFC 8414 §2.
#[derive(Debug, Serialize)]
struct Metadata<'a> {
    issuer: &'a str,
    device_authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    grant_types_supported: [&'static str; 2],
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    /// Introspection is for resource servers: confidential clients only.
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    response_types_supported: [&'static str; 1],
    scopes_supported: Vec<&'a str>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    openid: Option<OpenIdMetadata<'a>>,
}

/// OpenID Connect Discovery 1.0 §3's fields beyond RFC 8414's.
#[derive(Debug, Clone, Serialize)]
struct OpenIdMetadata<'a> {
    userinfo_endpoint: String,
    /// What the key set may sign with; a client checks the `alg` of each ID token against
    /// this list (and its `kid` against the JWKS).
    id_token_signing_alg_values_supported: [&'a str; 3],
    subject_types_supported: [&'a str; 1],
    claims_supported: [&'a str; 12],
}

/// The scopes every deployment has: OpenID Connect's, and the refresh tokens'.
const BUILT_IN_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

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
    metadata: String,
    openid_configuration: String,
    /// The key set as last read, and when.
    jwks: Mutex<Option<(Instant, String)>>,
}

impl App {
    pub fn new(config: &DiscoveryConfig, store: Store) -> Self {
        let issuer = config.issuer.as_str();
        let mut scopes: Vec<&str> = config
            .scopes_supported
            .as_deref()
            .map(|s| s.split(' ').collect())
            .unwrap_or_default();
        for scope in BUILT_IN_SCOPES {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let mut metadata = Metadata {
            issuer,
            device_authorization_endpoint: format!("{issuer}/oauth2/v1/device"),
            token_endpoint: format!("{issuer}/oauth2/v1/token"),
            jwks_uri: format!("{issuer}{JWKS_PATH}"),
            revocation_endpoint: format!("{issuer}/oauth2/v1/revoke"),
            introspection_endpoint: format!("{issuer}/oauth2/v1/introspect"),
            grant_types_supported: [GrantType::DEVICE_CODE_URN, "refresh_token"],
            token_endpoint_auth_methods_supported: [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            revocation_endpoint_auth_methods_supported: [
                "none",
                "client_secret_basic",
                "client_secret_post",
            ],
            introspection_endpoint_auth_methods_supported: [
                "client_secret_basic",
                "client_secret_post",
            ],
            // The IDCS-style `response_type=device_code` of the device endpoint.
            response_types_supported: ["device_code"],
            scopes_supported: scopes,
            openid: None,
        };
        let oauth = serde_json::to_string(&metadata).unwrap_or_default();
        metadata.openid = Some(OpenIdMetadata {
            userinfo_endpoint: format!("{issuer}/oauth2/v1/userinfo"),
            id_token_signing_alg_values_supported: ["RS256", "ES256", "EdDSA"],
            subject_types_supported: ["public"],
            claims_supported: [
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "sid",
                "at_hash",
                "name",
                "preferred_username",
                "email",
                "email_verified",
            ],
        });
        Self {
            store,
            metadata: oauth,
            openid_configuration: serde_json::to_string(&metadata).unwrap_or_default(),
            jwks: Mutex::new(None),
        }
    }

    /// The published key set, from this instance's cache when it is fresh.
    async fn jwks(&self) -> Result<String, OAuthError> {
        if let Ok(cached) = self.jwks.lock()
            && let Some((read_at, jwks)) = cached.as_ref()
            && read_at.elapsed() < JWKS_INSTANCE_CACHE
        {
            return Ok(jwks.clone());
        }
        let Some(jwks) = published_keys_if_any(&self.store)
            .await
            .map_err(OAuthError::from)?
        else {
            // Nothing published yet (the token function has not started): not cached, so
            // that the first published set is served at once.
            return Ok(r#"{"keys":[]}"#.to_owned());
        };
        if let Ok(mut cached) = self.jwks.lock() {
            *cached = Some((Instant::now(), jwks.clone()));
        }
        Ok(jwks)
    }
}

/// Handles one request.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let path = request.uri().path();
    if request.method() != Method::GET {
        return not_found();
    }
    if path == METADATA_PATHS[0] {
        return cacheable(Body::from(app.metadata.clone()), METADATA_MAX_AGE);
    }
    if path == METADATA_PATHS[1] {
        return cacheable(
            Body::from(app.openid_configuration.clone()),
            METADATA_MAX_AGE,
        );
    }
    if path == JWKS_PATH {
        return match app.jwks().await {
            Ok(jwks) => cacheable(Body::from(jwks), JWKS_MAX_AGE.as_secs() as u32),
            Err(e) => e.into_response(),
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
