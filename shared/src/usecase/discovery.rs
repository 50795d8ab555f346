//! Discovery: what a client reads first. The authorization server metadata (RFC 8414), the
//! same with OpenID Connect Discovery 1.0's fields (UserInfo, ID token algorithms, subject
//! types, claims), and the published JWKS (RFC 7517).
//!
//! The metadata is fixed per deployment and rendered once per cold start ([`Documents`]).
//! The JWKS is what the token function published to the table at its own cold start:
//! discovery never sees the signing secret. An instance serves it from memory for
//! [`JWKS_INSTANCE_CACHE`], so the one item is read at most once per instance per that time,
//! however many resource servers ask ([`PublishedJwks`]).

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use super::Internal;
use super::signing_keys::{JWKS_INSTANCE_CACHE, published_keys_if_any};
use crate::config::DiscoveryConfig;
use crate::domain::GrantType;
use crate::store::Store;

/// Where the JWKS is published, under the issuer.
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

/// The two metadata documents of a deployment, as JSON.
pub struct Documents {
    /// RFC 8414's, at `/.well-known/oauth-authorization-server`.
    pub oauth: String,
    /// With OpenID Connect Discovery's fields, at `/.well-known/openid-configuration`.
    pub openid: String,
}

impl Documents {
    pub fn new(config: &DiscoveryConfig) -> Self {
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
            oauth,
            openid: serde_json::to_string(&metadata).unwrap_or_default(),
        }
    }
}

/// The published key set, read from the table and kept for [`JWKS_INSTANCE_CACHE`].
#[derive(Default)]
pub struct PublishedJwks {
    /// The key set as last read, and when.
    cached: Mutex<Option<(Instant, String)>>,
}

impl PublishedJwks {
    /// The published key set, from this instance's cache when it is fresh.
    pub async fn get(&self, store: &Store) -> Result<String, Internal> {
        if let Ok(cached) = self.cached.lock()
            && let Some((read_at, jwks)) = cached.as_ref()
            && read_at.elapsed() < JWKS_INSTANCE_CACHE
        {
            return Ok(jwks.clone());
        }
        let Some(jwks) = published_keys_if_any(store).await? else {
            // Nothing published yet (the token function has not started): not cached, so
            // that the first published set is served at once.
            return Ok(r#"{"keys":[]}"#.to_owned());
        };
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), jwks.clone()));
        }
        Ok(jwks)
    }
}
