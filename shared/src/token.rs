//! Access tokens (JWTs per RFC 9068), ID tokens (OpenID Connect Core §2), and the key set
//! that signs them both.
//!
//! The key set is one JSON document, read once per cold start (from configuration or a
//! Secrets Manager secret):
//!
//! ```json
//! {"version": 2, "active": "2026-11",
//!  "keys": [{"kid": "2026-11", "alg": "RS256", "private_key_pem": "-----BEGIN PRIVATE KEY-----..."},
//!           {"kid": "2026-05", "alg": "RS256", "private_key_pem": "..."}]}
//! ```
//!
//! The `active` key signs; every key is published in the JWKS, so rotating (add a key,
//! make it active, raise `version`) never breaks tokens already issued. A retired key is
//! removed once the tokens it signed have expired.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::bearer_secret::fill_random;
use crate::domain::{Grant, ScopeSet};
use crate::time::Timestamp;

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The `typ` header of an ID token (RFC 7519 §5.1): never mistaken for an access token,
/// which must say `at+jwt`.
pub const ID_TOKEN_TYPE: &str = "JWT";

/// Why a key set could not be loaded or used. Never includes key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the signing key set is not valid JSON of the expected shape")]
    Malformed,
    #[error("the signing key set has no key with the active kid")]
    NoActiveKey,
    #[error("a signing key has an unsupported alg (RS256, ES256 or EdDSA)")]
    UnsupportedAlgorithm,
    #[error("the signing key {kid} does not parse as a PEM private key for its alg")]
    BadKey { kid: String },
    #[error("two signing keys share the kid {kid}")]
    DuplicateKid { kid: String },
    #[error("signing failed")]
    Signing,
}

#[derive(Deserialize)]
struct KeySetDocument {
    #[serde(default)]
    version: u64,
    active: String,
    keys: Vec<KeyDocument>,
}

#[derive(Deserialize)]
struct KeyDocument {
    kid: String,
    alg: String,
    private_key_pem: String,
}

/// The signing keys: one active, all published. `Debug` shows only the kids.
pub struct KeySet {
    version: u64,
    active_kid: String,
    /// Every key, in the document's order: the active one signs once it has been
    /// published long enough (see `usecase::signing_keys`), another until then.
    keys: Vec<(String, Algorithm, EncodingKey)>,
    jwks: JwkSet,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("version", &self.version)
            .field("active_kid", &self.active_kid)
            .field("published", &self.jwks.keys.len())
            .finish_non_exhaustive()
    }
}

impl KeySet {
    /// Parses and checks the key set document; every key must parse for its algorithm.
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        let document: KeySetDocument =
            serde_json::from_str(json).map_err(|_| KeyError::Malformed)?;
        let mut jwks = JwkSet { keys: Vec::new() };
        let mut keys = Vec::new();
        for key in document.keys {
            if jwks
                .keys
                .iter()
                .any(|j| j.common.key_id.as_deref() == Some(&key.kid))
            {
                return Err(KeyError::DuplicateKid { kid: key.kid });
            }
            let alg = match key.alg.as_str() {
                "RS256" => Algorithm::RS256,
                "ES256" => Algorithm::ES256,
                "EdDSA" => Algorithm::EdDSA,
                _ => return Err(KeyError::UnsupportedAlgorithm),
            };
            let pem = key.private_key_pem.as_bytes();
            let encoding = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem),
                Algorithm::ES256 => EncodingKey::from_ec_pem(pem),
                _ => EncodingKey::from_ed_pem(pem),
            }
            .map_err(|_| KeyError::BadKey {
                kid: key.kid.clone(),
            })?;
            let mut jwk = Jwk::from_encoding_key(&encoding, alg).map_err(|_| KeyError::BadKey {
                kid: key.kid.clone(),
            })?;
            jwk.common.key_id = Some(key.kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(match alg {
                Algorithm::RS256 => KeyAlgorithm::RS256,
                Algorithm::ES256 => KeyAlgorithm::ES256,
                _ => KeyAlgorithm::EdDSA,
            });
            jwks.keys.push(jwk);
            keys.push((key.kid, alg, encoding));
        }
        if !keys.iter().any(|(kid, _, _)| *kid == document.active) {
            return Err(KeyError::NoActiveKey);
        }
        Ok(Self {
            version: document.version,
            active_kid: document.active,
            keys,
            jwks,
        })
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// The key ids of the set, in its order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(kid, _, _)| kid.as_str())
    }

    /// The public JWKS (RFC 7517) of every key in the set.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The JWKS as JSON, to publish.
    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&self.jwks).unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned())
    }

    /// Signs `claims` with the active key: header `typ: at+jwt`, `kid`, `alg`.
    pub fn sign(&self, claims: &AccessTokenClaims) -> Result<String, KeyError> {
        self.sign_with(&self.active_kid, claims)
    }

    /// Signs `claims` with the key `kid` of the set.
    pub fn sign_with(&self, kid: &str, claims: &AccessTokenClaims) -> Result<String, KeyError> {
        self.sign_jwt(kid, ACCESS_TOKEN_TYPE, claims)
    }

    /// Signs an ID token with the key `kid`, its `at_hash` made for `access_token` with
    /// that key's hash (OpenID Connect Core §3.1.3.6).
    pub fn sign_id_token(
        &self,
        kid: &str,
        mut claims: IdTokenClaims,
        access_token: &str,
    ) -> Result<String, KeyError> {
        let (_, alg, _) = self.key(kid)?;
        claims.at_hash = at_hash(*alg, access_token);
        self.sign_jwt(kid, ID_TOKEN_TYPE, &claims)
    }

    fn key(&self, kid: &str) -> Result<&(String, Algorithm, EncodingKey), KeyError> {
        self.keys
            .iter()
            .find(|(k, _, _)| k == kid)
            .ok_or(KeyError::NoActiveKey)
    }

    fn sign_jwt(&self, kid: &str, typ: &str, claims: &impl Serialize) -> Result<String, KeyError> {
        let (kid, alg, key) = self.key(kid)?;
        let mut header = Header::new(*alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|_| KeyError::Signing)
    }
}

/// OpenID Connect Core §3.1.3.6: the left half of the access token's hash, with the hash
/// of the signature's algorithm (SHA-256 for RS256 and ES256; SHA-512 for EdDSA, whose
/// Ed25519 hashes with it), base64url.
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    use sha2::Digest as _;
    let digest = match alg {
        Algorithm::EdDSA => sha2::Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => sha2::Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The claims of an ID token a device gets with the `openid` scope (OpenID Connect Core
/// §2, §3.1.3.3): about the person who approved, for the client. No `Debug`: it carries
/// the person's claims.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    /// The same subject as the access token's.
    pub sub: String,
    /// The client id.
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    /// When the person signed in at their identity provider (else when they approved).
    pub auth_time: u64,
    /// The grant: the same `sid` as the access tokens'.
    pub sid: String,
    /// Filled in when signed, for the access token it comes with.
    pub at_hash: String,
    /// What the scopes allow of the person's claims (`name`, `email`, ...).
    #[serde(flatten)]
    pub person: serde_json::Map<String, serde_json::Value>,
}

impl IdTokenClaims {
    /// The claims of the ID token `grant` yields at `now` for `scope`, valid `lifetime`.
    pub fn for_grant(
        issuer: &str,
        grant: &Grant,
        scope: &ScopeSet,
        lifetime: Duration,
        now: Timestamp,
    ) -> Self {
        let iat = now.as_secs();
        Self {
            iss: issuer.to_owned(),
            sub: grant.account_id.clone(),
            aud: grant.client_id.as_str().to_owned(),
            exp: iat + lifetime.as_secs(),
            iat,
            auth_time: grant
                .profile
                .auth_time
                .unwrap_or_else(|| grant.approved_at.as_secs()),
            sid: grant.id.as_str().to_owned(),
            at_hash: String::new(),
            person: grant.profile.claims_for(scope),
        }
    }
}

/// An access token's `aud` (RFC 7519 §4.1.3): one value, or several (the resources of
/// RFC 8707 a request named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// `resources` when there are any (one: a string; more: an array), else `default`.
    pub fn of(resources: &[String], default: &str) -> Self {
        match resources {
            [] => Self::One(default.to_owned()),
            [one] => Self::One(one.clone()),
            many => Self::Many(many.to_vec()),
        }
    }

    pub fn values(&self) -> &[String] {
        match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        }
    }

    /// Whether `audience` is one of them.
    pub fn contains(&self, audience: &str) -> bool {
        self.values().iter().any(|a| a == audience)
    }

    /// Whether it is exactly `audience`, and nothing else.
    pub fn is_only(&self, audience: &str) -> bool {
        self.values() == [audience]
    }
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The account that approved the request.
    pub sub: String,
    /// The resources the token is for (RFC 8707), or the deployment's default audience.
    pub aud: Audience,
    pub client_id: String,
    /// Space-separated; absent when no scope was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// The grant (the device login) the token belongs to: revoking it makes the token
    /// inactive at introspection (RFC 9068 §2.2.1 allows session claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessTokenClaims {
    /// The claims for the token `grant` yields at `now` for `scope` and `resources` (none:
    /// the deployment's default `audience`).
    pub fn for_grant(
        issuer: &str,
        audience: &str,
        grant: &Grant,
        (scope, resources): (&ScopeSet, &[String]),
        now: Timestamp,
    ) -> Self {
        let mut jti = [0u8; 16];
        fill_random(&mut jti);
        let iat = now.as_secs();
        Self {
            iss: issuer.to_owned(),
            sub: grant.account_id.clone(),
            aud: Audience::of(resources, audience),
            client_id: grant.client_id.as_str().to_owned(),
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            iat,
            exp: iat + grant.access_token_lifetime.as_secs(),
            jti: URL_SAFE_NO_PAD.encode(jti),
            sid: Some(grant.id.as_str().to_owned()),
        }
    }

    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.exp.saturating_sub(self.iat))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::{Approval, DeviceAuthorization, DeviceCode, GrantId, Terms, UserCode};
    use jsonwebtoken::{DecodingKey, Validation};

    /// A 2048-bit RSA test key (PKCS#8), generated for these tests only.
    pub(crate) const TEST_RSA_PEM: &str = include_str!("../testdata/rsa-2048.pem");
    pub(crate) const TEST_EC_PEM: &str = include_str!("../testdata/ec-p256.pem");
    pub(crate) const TEST_ED_PEM: &str = include_str!("../testdata/ed25519.pem");

    pub(crate) fn key_set(active: &str, keys: &[(&str, &str, &str)]) -> String {
        let keys: Vec<_> = keys
            .iter()
            .map(|(kid, alg, pem)| serde_json::json!({"kid": kid, "alg": alg, "private_key_pem": pem}))
            .collect();
        serde_json::json!({"version": 1, "active": active, "keys": keys}).to_string()
    }

    fn grant(now: Timestamp) -> Grant {
        let terms = Terms {
            resources: Vec::new(),
            user_code_format: Default::default(),
            scope: ScopeSet::parse("read write").unwrap(),
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            access_token_lifetime: Duration::from_secs(900),
            refresh: None,
        };
        let record = DeviceAuthorization::new(
            DeviceCode::generate().id(),
            &crate::domain::test_client("tv"),
            &terms,
            UserCode::generate(),
            now,
        );
        let approval = Approval {
            account_id: "acct-42".into(),
            approved_at: now,
            session_id: None,
            profile: Default::default(),
        };
        Grant::from_login(GrantId::generate(), &record, &approval, now)
    }

    #[test]
    fn claims_follow_rfc_9068() {
        let now = Timestamp::from_millis(1_700_000_000_999);
        let grant = grant(now);
        let claims =
            AccessTokenClaims::for_grant("https://iss", "api", &grant, (&grant.scope, &[]), now);
        assert_eq!(claims.iss, "https://iss");
        assert_eq!(claims.sub, "acct-42");
        assert_eq!(claims.aud, Audience::One("api".into()));
        assert_eq!(claims.client_id, "tv");
        assert_eq!(claims.scope.as_deref(), Some("read write"));
        assert_eq!(claims.iat, 1_700_000_000);
        assert_eq!(claims.exp, 1_700_000_900);
        assert_eq!(claims.lifetime(), Duration::from_secs(900));
        assert_eq!(claims.sid.as_deref(), Some(grant.id.as_str()));
        let narrow = ScopeSet::parse("read").unwrap();
        let other = AccessTokenClaims::for_grant("https://iss", "api", &grant, (&narrow, &[]), now);
        assert_ne!(claims.jti, other.jti);
        assert_eq!(other.scope.as_deref(), Some("read"));
    }

    #[test]
    fn every_algorithm_signs_tokens_that_verify_with_the_published_jwk() {
        let now = Timestamp::from_millis(1_700_000_000_000);
        let grant = grant(now);
        let claims =
            AccessTokenClaims::for_grant("https://iss", "api", &grant, (&grant.scope, &[]), now);
        for (alg, pem, algorithm) in [
            ("RS256", TEST_RSA_PEM, Algorithm::RS256),
            ("ES256", TEST_EC_PEM, Algorithm::ES256),
            ("EdDSA", TEST_ED_PEM, Algorithm::EdDSA),
        ] {
            let keys = KeySet::from_json(&key_set("k1", &[("k1", alg, pem)])).unwrap();
            let token = keys.sign(&claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some("k1"));
            assert_eq!(header.alg, algorithm);
            let jwk = &keys.jwks().keys[0];
            assert_eq!(jwk.common.public_key_use, Some(PublicKeyUse::Signature));
            let mut validation = Validation::new(algorithm);
            validation.set_audience(&["api"]);
            validation.validate_exp = false;
            let decoded = jsonwebtoken::decode::<AccessTokenClaims>(
                &token,
                &DecodingKey::from_jwk(jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims, claims, "{alg}");
            assert!(!keys.jwks_json().contains("PRIVATE"), "{alg}");
        }
    }

    #[test]
    fn bad_key_sets_are_refused_without_echoing_key_material() {
        let cases = [
            ("not json".to_owned(), "Malformed"),
            (
                key_set("missing", &[("k1", "RS256", TEST_RSA_PEM)]),
                "NoActiveKey",
            ),
            (
                key_set("k1", &[("k1", "HS256", "secret")]),
                "UnsupportedAlgorithm",
            ),
            (
                key_set(
                    "k1",
                    &[(
                        "k1",
                        "RS256",
                        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                    )],
                ),
                "BadKey",
            ),
            (key_set("k1", &[("k1", "ES256", TEST_RSA_PEM)]), "BadKey"),
            (
                key_set(
                    "k1",
                    &[("k1", "RS256", TEST_RSA_PEM), ("k1", "RS256", TEST_RSA_PEM)],
                ),
                "DuplicateKid",
            ),
        ];
        for (json, want) in cases {
            let err = KeySet::from_json(&json).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{err:?}");
            assert!(!err.to_string().contains("PRIVATE"));
        }
    }

    /// Every algorithm's ID token verifies with the `openidconnect` crate, a relying party's
    /// library (signature, issuer, audience, expiry), and its `at_hash` is the one that
    /// crate computes for the access token (SHA-512 for EdDSA).
    #[test]
    fn id_tokens_of_every_algorithm_verify_with_an_openid_connect_library() {
        use openidconnect::core::{
            CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
        };
        use openidconnect::{AccessToken, AccessTokenHash, ClientId, IssuerUrl, Nonce};
        let now = crate::time::Clock::now(&crate::time::SystemClock);
        let grant = grant(now);
        for (alg, pem) in [
            ("RS256", TEST_RSA_PEM),
            ("ES256", TEST_EC_PEM),
            ("EdDSA", TEST_ED_PEM),
        ] {
            let keys = KeySet::from_json(&key_set("k1", &[("k1", alg, pem)])).unwrap();
            let scope = ScopeSet::parse("openid profile").unwrap();
            let access = AccessTokenClaims::for_grant(
                "https://iss.example",
                "api",
                &grant,
                (&scope, &[]),
                now,
            );
            let access_token = keys.sign(&access).unwrap();
            let claims = IdTokenClaims::for_grant(
                "https://iss.example",
                &grant,
                &scope,
                Duration::from_secs(600),
                now,
            );
            let id_token = keys.sign_id_token("k1", claims, &access_token).unwrap();

            let jwks: CoreJsonWebKeySet = serde_json::from_str(&keys.jwks_json()).unwrap();
            let verifier = CoreIdTokenVerifier::new_public_client(
                ClientId::new("tv".into()),
                IssuerUrl::new("https://iss.example".into()).unwrap(),
                jwks,
            )
            .set_allowed_algs(vec![
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::EdDsa,
            ]);
            let parsed: CoreIdToken = id_token.parse().unwrap();
            let verified = parsed
                .claims(&verifier, |_: Option<&Nonce>| Ok::<(), String>(()))
                .unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(verified.subject().as_str(), "acct-42", "{alg}");
            let expected = AccessTokenHash::from_token(
                &AccessToken::new(access_token.clone()),
                parsed.signing_alg().unwrap(),
                parsed.signing_key(&verifier).unwrap(),
            )
            .unwrap();
            assert_eq!(verified.access_token_hash(), Some(&expected), "{alg}");
            let header = jsonwebtoken::decode_header(&id_token).unwrap();
            assert_eq!(header.typ.as_deref(), Some(ID_TOKEN_TYPE), "never at+jwt");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let keys = KeySet::from_json(&key_set("k1", &[("k1", "RS256", TEST_RSA_PEM)])).unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1") && !debug.contains("PRIVATE") && !debug.contains("MII"));
    }
}
