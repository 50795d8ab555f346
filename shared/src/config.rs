//! Configuration, read once at cold start from environment variables.
//!
//! Each function builds the part it needs as its own type ([`DeviceConfig`],
//! [`TokenConfig`], [`IntrospectionConfig`], [`DiscoveryConfig`], [`VerifyConfig`],
//! [`AdminConfig`], [`PageConfig`]); the variables and their reads are in [`env`]. Every value is
//! typed and checked here, so a misconfigured function fails at start with a message
//! naming the variable, never on a request; a setting a function needs is never an
//! `Option` it checks later. Messages name variables, never their values (some are
//! secrets).

use std::time::Duration;

use crate::domain::{Charset, PerSetting, Setting, UserCodeFormat};

mod env;

use env::{Env, absolute_url};
pub use env::{VARIABLES, setting_default, setting_variable};

/// Defaults (DESIGN.md, "Records and their life").
pub const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
pub const DEFAULT_RECORD_RETENTION: Duration = Duration::from_secs(86_400);

/// A function's configuration: read once at cold start, every value typed and checked.
pub trait FromEnv: Sized {
    /// Reads configuration through `lookup`, which maps a variable name to its value.
    /// An empty value counts as unset.
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError>;

    /// Reads the process environment.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// The device endpoint's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// `TABLE_NAME`: the one DynamoDB table.
    pub table_name: String,
    /// `VERIFICATION_URI`: the page where users enter their code (default `{ISSUER}/device`).
    pub verification_uri: String,
    /// What a client gets unless its own record overrides it.
    pub defaults: IssueDefaults,
    /// `RECORD_RETENTION_SECONDS` (0 to 30 days, default 1 day): how long a finished or
    /// expired record stays readable after it expires, so that late polls still hear
    /// `expired_token` and admins can see it; DynamoDB TTL removes it afterwards.
    pub record_retention: Duration,
    /// `CLIENT_CACHE_SECONDS` (0 to 60, default 5): how long an instance answers from a
    /// client record it read (see [`crate::Store::cached_client`]).
    pub client_cache: Duration,
    /// `USER_CODE_CHARSET` (`letters` or `digits`, default `letters`) and
    /// `USER_CODE_LENGTH` (8 to 12 letters or 9 to 12 digits; default the charset's
    /// shortest): the user-code format of clients that chose none.
    pub user_code_format: UserCodeFormat,
}

/// The deployment's lifetimes and interval, each in the range of its [`Setting`], read
/// from the variable [`setting_variable`] names (default: [`setting_default`]).
pub type IssueDefaults = PerSetting<Duration>;

/// The token endpoint's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub table_name: String,
    /// `ISSUER`: the public base URL of the service, without a trailing slash: the `iss`
    /// of access tokens.
    pub issuer: String,
    /// `ACCESS_TOKEN_AUDIENCE`: the `aud` of access tokens (default: the issuer).
    pub access_token_audience: String,
    /// Where the signing keys come from: `SIGNING_KEYS` (the key set JSON itself) or
    /// `SIGNING_KEYS_SECRET_ID` (a Secrets Manager secret holding it). Required.
    pub signing_keys: SigningKeysSource,
    /// `CLIENT_CACHE_SECONDS` (0 to 60, default 5): how long an instance answers polls
    /// from a client record it read (see [`crate::Store::cached_client`]).
    pub client_cache: Duration,
    /// `ID_TOKEN_LIFETIME_SECONDS` (60 to 3600, default 600): how long an ID token (the
    /// `openid` scope) is valid. Short: a device reads it once, at sign-in.
    pub id_token_lifetime: Duration,
}

/// An ID token's lifetime unless `ID_TOKEN_LIFETIME_SECONDS` says otherwise.
pub const DEFAULT_ID_TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// The verification API's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyConfig {
    pub table_name: String,
    /// The identity provider whose tokens sign users in. Required.
    pub user_tokens: UserTokenConfig,
    /// Brute-force protection of user-code look-ups (RFC 8628 §5.1).
    pub lookup_limits: LookupLimits,
}

/// The admin API's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    pub table_name: String,
    /// The identity provider whose tokens sign administrators in. Required.
    pub user_tokens: UserTokenConfig,
    /// `ADMIN_PERMISSION` (default `ADMINISTRATOR`): what the admin API requires in the
    /// user token's permissions claim.
    pub admin_permission: String,
    /// `ADMIN_CURSOR_SECRET` (32 bytes or more): signs the listing's page tokens, so that
    /// a modified one is refused. Required.
    pub cursor_secret: SecretKey,
    /// How a client's deletion is cut into steps.
    pub client_deletion: ClientDeletion,
}

/// How much of a client's clean-up one `DELETE` does (see
/// `usecase::manage_clients::delete_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientDeletion {
    /// `CLIENT_DELETION_STEP` (1 to 10000, default 100): codes or grants per step (one
    /// page of the client index, one `BatchGetItem`, one write per live one).
    pub step: u32,
    /// `CLIENT_DELETION_STEPS_PER_REQUEST` (1 to 10000, default 20): steps per `DELETE`,
    /// which also stops after 5 seconds of work, inside the function's 10-second timeout.
    pub steps_per_request: u32,
    /// How long after the deletion started the last sweep runs and the client item goes:
    /// `CLIENT_CACHE_SECONDS` (the longest an instance acts on the client as it was) plus
    /// 15 s (a request in flight at the mark ends within the functions' 10-second timeout).
    pub settle: Duration,
}

/// The revocation and introspection function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionConfig {
    pub table_name: String,
    /// `ISSUER`: access tokens must carry it as `iss`.
    pub issuer: String,
    /// `ACCESS_TOKEN_AUDIENCE` (default: the issuer): access tokens must carry it as `aud`.
    pub access_token_audience: String,
}

/// The discovery function's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub table_name: String,
    /// `ISSUER`, the base of every advertised endpoint.
    pub issuer: String,
    /// `SCOPES_SUPPORTED`: space-separated scopes to advertise in the metadata.
    pub scopes_supported: Option<String>,
}

/// The verification page's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageConfig {
    pub table_name: String,
    /// `ISSUER`: the service's public base URL; the page lives at `{ISSUER}/device`, and
    /// its origin is the only one its forms accept.
    pub issuer: String,
    /// Brute-force protection of the codes typed on the page: the same budget as the
    /// verification API's (`LOOKUP_*`).
    pub lookup_limits: LookupLimits,
    /// The OpenID provider people sign in with.
    pub provider: ProviderConfig,
    /// `PAGE_SESSION_SECRET` (32 bytes or more): encrypts and authenticates the page's
    /// cookies. Required.
    pub session_secret: SecretKey,
    /// `SERVICE_NAME` (default `Device sign-in`): the name the page shows.
    pub service_name: String,
    /// `SUPPORT_URL`: a help link on every page, when set.
    pub support_url: Option<String>,
    /// `SCOPE_DESCRIPTIONS`: a JSON object from scope to the words the page shows for it
    /// (`{"read": "See your files"}`); a scope without one is shown by its name.
    pub scope_descriptions: Vec<(String, String)>,
    /// `USER_CODE_CHARSET` and `USER_CODE_LENGTH`, as for the device endpoint: the keyboard
    /// and the hint of the code form when no code came with the link.
    pub user_code_format: UserCodeFormat,
}

/// The OpenID provider of the verification page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// `OIDC_ISSUER`: the provider's issuer URL; its discovery document is at
    /// `{OIDC_ISSUER}/.well-known/openid-configuration`.
    pub issuer: String,
    /// `OIDC_CLIENT_ID`: the page's client id at the provider.
    pub client_id: String,
    /// `OIDC_CLIENT_SECRET` (local development) or `OIDC_CLIENT_SECRET_ID` (a Secrets
    /// Manager secret, read at cold start); neither for a public client (PKCE only).
    pub client_secret: Option<SecretSource>,
}

/// Where a secret value comes from: the environment itself (local development), or a
/// Secrets Manager secret read once at cold start ([`crate::secrets_manager::read`]).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(String),
    /// A secret id or ARN.
    SecretsManager(String),
}

/// Never prints an inline secret.
impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(..)"),
            Self::SecretsManager(id) => f.debug_tuple("SecretsManager").field(id).finish(),
        }
    }
}

/// A symmetric key of 32 bytes or more from the environment (the admin page tokens' signing
/// key, the verification page's cookie key). `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// A key for unit tests.
    #[cfg(test)]
    pub(crate) fn for_tests(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// The trusted issuer of user tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokenConfig {
    /// `USER_TOKEN_ISSUER`: the exact `iss`.
    pub issuer: String,
    /// `USER_TOKEN_AUDIENCE`: the `aud` user tokens must carry.
    pub audience: String,
    /// One of `USER_TOKEN_HS256_SECRET`, `USER_TOKEN_PUBLIC_KEY_PEM` or
    /// `USER_TOKEN_JWKS_URL`.
    pub key: UserTokenKey,
    /// `USER_TOKEN_PERMISSIONS_CLAIM` (default `permissions`).
    pub permissions_claim: String,
}

/// How user tokens are verified. The algorithm is pinned here, never taken from a token.
#[derive(Clone, PartialEq, Eq)]
pub enum UserTokenKey {
    /// HS256 with a shared secret (local development).
    Hs256Secret(String),
    /// A PEM public key; `USER_TOKEN_ALGORITHM` is `RS256` (default) or `ES256`.
    PublicKeyPem {
        algorithm: UserTokenAlgorithm,
        pem: String,
    },
    /// A JWKS URL, fetched at cold start and again (at most once a minute) when a token
    /// names an unknown `kid`; `USER_TOKEN_ALGORITHM` as above.
    JwksUrl {
        algorithm: UserTokenAlgorithm,
        url: String,
    },
}

/// Never prints the HS256 secret.
impl std::fmt::Debug for UserTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hs256Secret(_) => f.write_str("Hs256Secret(..)"),
            Self::PublicKeyPem { algorithm, .. } => {
                write!(f, "PublicKeyPem({algorithm:?})")
            }
            Self::JwksUrl { algorithm, url } => write!(f, "JwksUrl({algorithm:?}, {url})"),
        }
    }
}

/// Asymmetric algorithms accepted for user tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserTokenAlgorithm {
    Rs256,
    Es256,
}

/// Failed user-code look-ups allowed per window before answers become 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLimits {
    /// `LOOKUP_FAILURES_PER_ACCOUNT` (default 5).
    pub per_account: u32,
    /// `LOOKUP_FAILURES_PER_IP` (default 20; `off`: no per-address budget, for a
    /// deployment behind a CDN or proxy, where API Gateway sees the proxy's address).
    pub per_ip: Option<u32>,
    /// `LOOKUP_WINDOW_SECONDS` (default 600).
    pub window: Duration,
}

/// Where the signing key set is read from: `SIGNING_KEYS` (the key set JSON itself, local
/// development and tests) or `SIGNING_KEYS_SECRET_ID` (a Secrets Manager secret).
pub type SigningKeysSource = SecretSource;

/// A configuration problem, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        reason: &'static str,
    },
}

impl FromEnv for DeviceConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let verification_uri = match env.get("VERIFICATION_URI") {
            Some(uri) => absolute_url("VERIFICATION_URI", &uri)?,
            None => format!("{}/device", env.issuer()?),
        };
        Ok(Self {
            table_name: env.table_name()?,
            verification_uri,
            defaults: IssueDefaults::try_from_fn(|setting| env.setting(setting))?,
            record_retention: env.seconds(
                "RECORD_RETENTION_SECONDS",
                DEFAULT_RECORD_RETENTION,
                0..=30 * 86_400,
            )?,
            client_cache: env.client_cache()?,
            user_code_format: env.user_code_format()?,
        })
    }
}

impl FromEnv for TokenConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let issuer = env.issuer()?;
        let signing_keys = match (env.get("SIGNING_KEYS"), env.get("SIGNING_KEYS_SECRET_ID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "SIGNING_KEYS",
                    reason: "set either SIGNING_KEYS or SIGNING_KEYS_SECRET_ID, not both",
                });
            }
            (Some(json), None) => SigningKeysSource::Inline(json),
            (None, Some(id)) => SigningKeysSource::SecretsManager(id),
            (None, None) => return Err(ConfigError::Missing("SIGNING_KEYS_SECRET_ID")),
        };
        Ok(Self {
            table_name: env.table_name()?,
            access_token_audience: env
                .get("ACCESS_TOKEN_AUDIENCE")
                .unwrap_or_else(|| issuer.clone()),
            issuer,
            signing_keys,
            client_cache: env.client_cache()?,
            id_token_lifetime: env.seconds(
                "ID_TOKEN_LIFETIME_SECONDS",
                DEFAULT_ID_TOKEN_LIFETIME,
                60..=3600,
            )?,
        })
    }
}

impl FromEnv for VerifyConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        Ok(Self {
            table_name: env.table_name()?,
            user_tokens: env.user_tokens()?,
            lookup_limits: env.lookup_limits()?,
        })
    }
}

impl FromEnv for AdminConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        Ok(Self {
            table_name: env.table_name()?,
            user_tokens: env.user_tokens()?,
            admin_permission: env
                .get("ADMIN_PERMISSION")
                .unwrap_or_else(|| "ADMINISTRATOR".to_owned()),
            cursor_secret: env
                .key("ADMIN_CURSOR_SECRET")?
                .map(SecretKey)
                .ok_or(ConfigError::Missing("ADMIN_CURSOR_SECRET"))?,
            client_deletion: ClientDeletion {
                step: env.count("CLIENT_DELETION_STEP", 100)?,
                steps_per_request: env.count("CLIENT_DELETION_STEPS_PER_REQUEST", 20)?,
                settle: env.client_cache()? + Duration::from_secs(15),
            },
        })
    }
}

impl FromEnv for PageConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let client_secret = match (
            env.get("OIDC_CLIENT_SECRET"),
            env.get("OIDC_CLIENT_SECRET_ID"),
        ) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "OIDC_CLIENT_SECRET",
                    reason: "set either OIDC_CLIENT_SECRET or OIDC_CLIENT_SECRET_ID, not both",
                });
            }
            (Some(secret), None) => Some(SecretSource::Inline(secret)),
            (None, Some(id)) => Some(SecretSource::SecretsManager(id)),
            (None, None) => None,
        };
        let scope_descriptions = match env.get("SCOPE_DESCRIPTIONS") {
            None => Vec::new(),
            Some(json) => {
                let invalid = ConfigError::Invalid {
                    name: "SCOPE_DESCRIPTIONS",
                    reason: "must be a JSON object from scope names to descriptions",
                };
                let map: std::collections::BTreeMap<String, String> =
                    serde_json::from_str(&json).map_err(|_| invalid.clone())?;
                if map
                    .keys()
                    .any(|k| crate::domain::ScopeToken::parse(k).is_err())
                {
                    return Err(invalid);
                }
                map.into_iter().collect()
            }
        };
        Ok(Self {
            table_name: env.table_name()?,
            issuer: env.issuer()?,
            lookup_limits: env.lookup_limits()?,
            provider: ProviderConfig {
                issuer: absolute_url("OIDC_ISSUER", &env.required("OIDC_ISSUER")?)?,
                client_id: env.required("OIDC_CLIENT_ID")?,
                client_secret,
            },
            session_secret: env
                .key("PAGE_SESSION_SECRET")?
                .map(SecretKey)
                .ok_or(ConfigError::Missing("PAGE_SESSION_SECRET"))?,
            service_name: env
                .get("SERVICE_NAME")
                .unwrap_or_else(|| "Device sign-in".to_owned()),
            support_url: env
                .get("SUPPORT_URL")
                .map(|url| absolute_url("SUPPORT_URL", &url))
                .transpose()?,
            scope_descriptions,
            user_code_format: env.user_code_format()?,
        })
    }
}

impl FromEnv for IntrospectionConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let issuer = env.issuer()?;
        Ok(Self {
            table_name: env.table_name()?,
            access_token_audience: env
                .get("ACCESS_TOKEN_AUDIENCE")
                .unwrap_or_else(|| issuer.clone()),
            issuer,
        })
    }
}

impl FromEnv for DiscoveryConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let scopes_supported = match env.get("SCOPES_SUPPORTED") {
            Some(scopes) => Some(
                crate::domain::ScopeSet::parse(&scopes)
                    .map_err(|_| ConfigError::Invalid {
                        name: "SCOPES_SUPPORTED",
                        reason: "not a space-separated list of scope tokens",
                    })?
                    .to_string(),
            ),
            None => None,
        };
        Ok(Self {
            table_name: env.table_name()?,
            issuer: env.issuer()?,
            scopes_supported,
        })
    }
}

#[cfg(test)]
mod tests;
