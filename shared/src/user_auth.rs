//! Signing users in: verifying the bearer tokens of the identity provider the deployment
//! trusts (verification and admin APIs).
//!
//! The algorithm, issuer and audience are pinned by configuration; a token's own `alg`
//! header is never trusted (no `none`, no HS256-with-a-public-key confusion). `exp`,
//! `nbf`, `iss`, `aud` and `sub` are required and checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lambda_http::http::{HeaderMap, header};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::config::{UserTokenAlgorithm, UserTokenConfig, UserTokenKey};
use crate::domain::Profile;
use crate::outbound::{Outbound, OutboundError};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// The longest user token accepted, before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The token's `sub`.
    pub account_id: String,
    /// The configured permissions claim: an array of strings, or a space-separated string.
    pub permissions: Vec<String>,
    /// The person's claims the token carries (`name`, `email`, ...; `auth_time`, else
    /// `iat`): what a device that asked for `profile` or `email` is told.
    pub profile: Profile,
}

impl User {
    pub fn has_permission(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// A signed-in user who holds the administrator permission: the admin use cases take one,
/// so that none of them can run for anyone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Administrator {
    /// Who acts, for the audit log.
    pub account_id: String,
}

impl Administrator {
    /// `user`, if their token grants `permission` (the deployment's administrator
    /// permission).
    pub fn authorize(user: &User, permission: &str) -> Option<Self> {
        user.has_permission(permission).then(|| Self {
            account_id: user.account_id.clone(),
        })
    }

    /// Someone at the deployment's own command line (the development tasks), who holds
    /// the table's credentials and so needs no token.
    pub fn operator(name: &str) -> Self {
        Self {
            account_id: name.to_owned(),
        }
    }
}

/// Why a request is not signed in. The messages are fixed and say nothing of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("a bearer token is required")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    /// The identity provider's keys could not be fetched yet: the token may be fine.
    #[error("the identity provider's keys are unavailable, try again")]
    Unavailable,
}

/// Reads `Authorization: Bearer <token>` (exactly one header, scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(AuthError::Missing),
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Err(AuthError::Invalid),
    };
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .ok_or(AuthError::Invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Invalid);
    }
    Ok(token)
}

/// Verifies user tokens; built once per cold start.
pub struct UserTokenVerifier {
    validation: Validation,
    keys: Keys,
    permissions_claim: String,
}

enum Keys {
    Static(DecodingKey),
    Jwks(Box<JwksCache>),
}

/// Why the verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierSetupError {
    #[error("USER_TOKEN_PUBLIC_KEY_PEM is not a PEM public key for USER_TOKEN_ALGORITHM")]
    BadPublicKey,
}

impl UserTokenVerifier {
    /// Builds the verifier; a JWKS URL is fetched now (a failure is logged, and the
    /// fetch is retried when the first token arrives).
    pub async fn new(config: &UserTokenConfig) -> Result<Self, VerifierSetupError> {
        let (algorithm, keys) = match &config.key {
            UserTokenKey::Hs256Secret(secret) => (
                Algorithm::HS256,
                Keys::Static(DecodingKey::from_secret(secret.as_bytes())),
            ),
            UserTokenKey::PublicKeyPem { algorithm, pem } => {
                let key = match algorithm {
                    UserTokenAlgorithm::Rs256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                    UserTokenAlgorithm::Es256 => DecodingKey::from_ec_pem(pem.as_bytes()),
                }
                .map_err(|_| VerifierSetupError::BadPublicKey)?;
                (pinned(*algorithm), Keys::Static(key))
            }
            UserTokenKey::JwksUrl { algorithm, url } => {
                let cache = JwksCache::new(url.clone())?;
                cache.refresh().await;
                (pinned(*algorithm), Keys::Jwks(Box::new(cache)))
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(Self {
            validation,
            keys,
            permissions_claim: config.permissions_claim.clone(),
        })
    }

    /// How soon an unknown `kid` may trigger another JWKS fetch (default one minute).
    pub fn with_jwks_refetch_interval(mut self, interval: Duration) -> Self {
        if let Keys::Jwks(cache) = &mut self.keys {
            cache.refetch_interval = interval;
        }
        self
    }

    /// Verifies the bearer token of a request.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<User, AuthError> {
        self.verify(bearer_token(headers)?).await
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<User, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Invalid);
        }
        let claims = match &self.keys {
            Keys::Static(key) => self.decode(token, key)?,
            Keys::Jwks(cache) => {
                let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
                // Without a `kid` (RFC 7515 makes it optional), only a set of one key can
                // say which key signed.
                let kid = header.kid.as_deref();
                // No keys yet (the identity provider was down at cold start) or an
                // unknown kid (a rotation): look again, at most once a minute.
                let key = match cache.key(kid).await {
                    Ok(Some(key)) => key,
                    Ok(None) | Err(_) if cache.refresh_if_due().await => {
                        cache.key(kid).await?.ok_or(AuthError::Invalid)?
                    }
                    Ok(None) => return Err(AuthError::Invalid),
                    Err(unavailable) => return Err(unavailable),
                };
                self.decode(token, &key)?
            }
        };
        let account_id = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or(AuthError::Invalid)?
            .to_owned();
        let permissions = match claims.get(&self.permissions_claim) {
            Some(Value::Array(values)) => values
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(list)) => list.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        Ok(User {
            account_id,
            permissions,
            profile: Profile::from_json(&claims),
        })
    }

    fn decode(&self, token: &str, key: &DecodingKey) -> Result<Map<String, Value>, AuthError> {
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| AuthError::Invalid)
    }
}

fn pinned(algorithm: UserTokenAlgorithm) -> Algorithm {
    match algorithm {
        UserTokenAlgorithm::Rs256 => Algorithm::RS256,
        UserTokenAlgorithm::Es256 => Algorithm::ES256,
    }
}

/// How soon a fetch is tried again while no fetch has ever succeeded.
const NO_KEYS_RETRY: Duration = Duration::from_secs(5);

/// The identity provider's keys, fetched from its JWKS URL.
///
/// Requests read the keys under a read lock that a fetch never holds: a fetch runs under
/// its own lock (one at a time; requests that also want one wait for it, and then find
/// its keys) and swaps the new keys in at the end.
struct JwksCache {
    url: String,
    client: Outbound,
    refetch_interval: Duration,
    keys: RwLock<Keyring>,
    /// When the last fetch started; held while a fetch runs.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// The keys of the last fetch that succeeded.
#[derive(Default)]
struct Keyring {
    keys: Vec<(Option<String>, Arc<DecodingKey>)>,
    /// Whether any fetch has ever succeeded.
    fetched: bool,
}

impl JwksCache {
    fn new(url: String) -> Result<Self, VerifierSetupError> {
        let client = Outbound::new();
        Ok(Self {
            url,
            client,
            refetch_interval: Duration::from_secs(60),
            keys: RwLock::new(Keyring::default()),
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// The key named `kid`; without one, the only key of a one-key set. `Err` when no
    /// fetch has ever succeeded: nothing can be verified, and the token may be fine.
    async fn key(&self, kid: Option<&str>) -> Result<Option<Arc<DecodingKey>>, AuthError> {
        let ring = self.keys.read().await;
        if !ring.fetched {
            return Err(AuthError::Unavailable);
        }
        Ok(match kid {
            Some(kid) => ring
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, key)| Arc::clone(key)),
            None => match ring.keys.as_slice() {
                [(_, key)] => Some(Arc::clone(key)),
                _ => None,
            },
        })
    }

    /// Fetches again unless the last fetch started less than `refetch_interval` ago;
    /// returns whether the keys may have changed since the caller looked (it fetched, or
    /// another request fetched while this one waited).
    async fn refresh_if_due(&self) -> bool {
        let waited = Instant::now();
        // With no keys at all, every request fails: try again sooner.
        let interval = if self.keys.read().await.fetched {
            self.refetch_interval
        } else {
            self.refetch_interval.min(NO_KEYS_RETRY)
        };
        let mut last = self.fetching.lock().await;
        match *last {
            Some(at) if at >= waited => true,
            Some(at) if at.elapsed() < interval => false,
            _ => {
                *last = Some(Instant::now());
                self.fetch_and_swap().await;
                true
            }
        }
    }

    /// Fetches now (at cold start).
    async fn refresh(&self) {
        let mut last = self.fetching.lock().await;
        *last = Some(Instant::now());
        self.fetch_and_swap().await;
    }

    /// Fetches the JWKS (holding no lock that requests read under) and swaps the keys in;
    /// keeps the old ones on failure.
    async fn fetch_and_swap(&self) {
        match self.fetch().await {
            Ok(set) => {
                let keys: Vec<_> = set
                    .keys
                    .iter()
                    .filter_map(|jwk| {
                        let key = DecodingKey::from_jwk(jwk).ok()?;
                        Some((jwk.common.key_id.clone(), Arc::new(key)))
                    })
                    .collect();
                tracing::info!(keys = keys.len(), "user-token JWKS fetched");
                *self.keys.write().await = Keyring {
                    keys,
                    fetched: true,
                };
            }
            Err(reason) => tracing::error!(error = reason, "fetching the user-token JWKS failed"),
        }
    }

    async fn fetch(&self) -> Result<JwkSet, &'static str> {
        let response = self.client.get(&self.url).await.map_err(|e| match e {
            OutboundError::Timeout => "timed out",
            OutboundError::Body => "body too large or unreadable",
            _ => "request failed",
        })?;
        if !response.status().is_success() {
            return Err("non-success status");
        }
        serde_json::from_slice(response.body()).map_err(|_| "not a JWKS document")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use lambda_http::http::HeaderValue;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(key: UserTokenKey) -> UserTokenConfig {
        UserTokenConfig {
            issuer: "https://idp".into(),
            audience: "api".into(),
            key,
            permissions_claim: "permissions".into(),
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn hs256(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn good_claims() -> Value {
        json!({"iss": "https://idp", "aud": "api", "sub": "acct-1", "exp": now() + 300,
               "nbf": now() - 10, "permissions": ["ADMINISTRATOR"]})
    }

    #[tokio::test]
    async fn a_valid_token_yields_its_subject_and_permissions() {
        let v = UserTokenVerifier::new(&config(UserTokenKey::Hs256Secret(SECRET.into())))
            .await
            .unwrap();
        let user = v.verify(&hs256(good_claims())).await.unwrap();
        assert_eq!(user.account_id, "acct-1");
        assert!(user.has_permission("ADMINISTRATOR"));

        let mut claims = good_claims();
        claims["permissions"] = json!("read ADMINISTRATOR");
        assert!(
            v.verify(&hs256(claims))
                .await
                .unwrap()
                .has_permission("ADMINISTRATOR")
        );
    }

    #[tokio::test]
    async fn bad_tokens_are_invalid() {
        let v = UserTokenVerifier::new(&config(UserTokenKey::Hs256Secret(SECRET.into())))
            .await
            .unwrap();
        let with = |key: &str, value: Value| {
            let mut c = good_claims();
            c[key] = value;
            hs256(c)
        };
        let without = |key: &str| {
            let mut c = good_claims();
            c.as_object_mut().unwrap().remove(key);
            hs256(c)
        };
        let none_alg = {
            let header = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                r#"{"alg":"none","typ":"JWT"}"#,
            );
            let body = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                good_claims().to_string(),
            );
            format!("{header}.{body}.")
        };
        let cases = [
            ("expired", with("exp", json!(now() - 120))),
            ("not yet valid", with("nbf", json!(now() + 120))),
            ("wrong issuer", with("iss", json!("https://evil"))),
            ("wrong audience", with("aud", json!("other"))),
            ("no sub", without("sub")),
            ("no exp", without("exp")),
            ("empty sub", with("sub", json!(""))),
            ("alg none", none_alg),
            ("garbage", "not.a.token".to_owned()),
            (
                "wrong key",
                jsonwebtoken::encode(
                    &Header::new(Algorithm::HS256),
                    &good_claims(),
                    &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
                )
                .unwrap(),
            ),
        ];
        for (case, token) in cases {
            assert_eq!(v.verify(&token).await, Err(AuthError::Invalid), "{case}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            h
        };
        assert_eq!(bearer_token(&headers(&["Bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&[])), Err(AuthError::Missing));
        for bad in [
            &["Basic abc"][..],
            &["Bearer "],
            &["Bearer"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(
                bearer_token(&headers(bad)),
                Err(AuthError::Invalid),
                "{bad:?}"
            );
        }
    }
}
