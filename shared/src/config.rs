//! Configuration, read once at cold start from environment variables.
//!
//! Every value is typed and checked here, so a misconfigured function fails at start with
//! a message naming the variable, never on a request. Messages name variables, never
//! their values (some are secrets).

use std::time::Duration;

/// Defaults (DESIGN.md, "Records and their life").
pub const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
pub const DEFAULT_RECORD_RETENTION: Duration = Duration::from_secs(86_400);

/// The service's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the one DynamoDB table.
    pub table_name: String,
    /// `ISSUER`: the public base URL of the service, without a trailing slash. It is the
    /// `iss` of access tokens and the base of the discovery documents.
    pub issuer: String,
    /// `VERIFICATION_URI`: the page where users enter their code (default `{ISSUER}/device`).
    pub verification_uri: String,
    /// `DEVICE_CODE_LIFETIME_SECONDS` (60 to 1800, default 600).
    pub device_code_lifetime: Duration,
    /// `POLL_INTERVAL_SECONDS` (1 to 60, default 5).
    pub poll_interval: Duration,
    /// `ACCESS_TOKEN_LIFETIME_SECONDS` (60 to 86400, default 3600).
    pub access_token_lifetime: Duration,
    /// `RECORD_RETENTION_SECONDS` (0 to 30 days, default 1 day): how long a finished or
    /// expired record stays readable after it expires, so that late polls still hear
    /// `expired_token` and admins can see it; DynamoDB TTL removes it afterwards.
    pub record_retention: Duration,
    /// `ACCESS_TOKEN_AUDIENCE`: the `aud` of access tokens (default: the issuer).
    pub access_token_audience: String,
    /// Where the token function's signing keys come from: `SIGNING_KEYS` (the key set
    /// JSON itself) or `SIGNING_KEYS_SECRET_ID` (a Secrets Manager secret holding it).
    /// Only the token function needs it.
    pub signing_keys: Option<SigningKeysSource>,
    /// `SCOPES_SUPPORTED`: space-separated scopes to advertise in the metadata.
    pub scopes_supported: Option<String>,
    /// The identity provider whose tokens sign users in (verification and admin APIs).
    /// `None` when `USER_TOKEN_ISSUER` is unset; the functions that need it refuse to start.
    pub user_tokens: Option<UserTokenConfig>,
    /// Brute-force protection of user-code look-ups (RFC 8628 §5.1).
    pub lookup_limits: LookupLimits,
    /// `ADMIN_PERMISSION` (default `ADMINISTRATOR`): what the admin API requires in the
    /// user token's permissions claim.
    pub admin_permission: String,
    /// `ADMIN_CURSOR_SECRET` (32 bytes or more): signs the admin listing's cursors, so that
    /// a modified cursor is refused. Required by the admin function only.
    pub admin_cursor_secret: Option<CursorSecret>,
}

/// The key that signs admin cursors. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct CursorSecret(pub String);

impl std::fmt::Debug for CursorSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSecret(..)")
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
    /// `LOOKUP_FAILURES_PER_IP` (default 20).
    pub per_ip: u32,
    /// `LOOKUP_WINDOW_SECONDS` (default 600).
    pub window: Duration,
}

/// Where the signing key set is read from.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningKeysSource {
    /// The key set JSON, from `SIGNING_KEYS` (local development and tests).
    Inline(String),
    /// A Secrets Manager secret id or ARN, from `SIGNING_KEYS_SECRET_ID`.
    SecretsManager(String),
}

/// Never prints the inline keys.
impl std::fmt::Debug for SigningKeysSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(..)"),
            Self::SecretsManager(id) => f.debug_tuple("SecretsManager").field(id).finish(),
        }
    }
}

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

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, which maps a variable name to its value.
    /// An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        let seconds = |name: &'static str, default: Duration, min: u64, max: u64| {
            let Some(raw) = get(name) else {
                return Ok(default);
            };
            let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
                name,
                reason: "not a whole number of seconds",
            })?;
            if !(min..=max).contains(&value) {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "out of the allowed range",
                });
            }
            Ok(Duration::from_secs(value))
        };

        let issuer = absolute_url("ISSUER", &required("ISSUER")?)?;
        let verification_uri = match get("VERIFICATION_URI") {
            Some(uri) => absolute_url("VERIFICATION_URI", &uri)?,
            None => format!("{issuer}/device"),
        };
        let signing_keys = match (get("SIGNING_KEYS"), get("SIGNING_KEYS_SECRET_ID")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "SIGNING_KEYS",
                    reason: "set either SIGNING_KEYS or SIGNING_KEYS_SECRET_ID, not both",
                });
            }
            (Some(json), None) => Some(SigningKeysSource::Inline(json)),
            (None, Some(id)) => Some(SigningKeysSource::SecretsManager(id.trim().to_owned())),
            (None, None) => None,
        };
        let scopes_supported = match get("SCOPES_SUPPORTED") {
            Some(scopes) => {
                let set = crate::domain::ScopeSet::parse(scopes.trim()).map_err(|_| {
                    ConfigError::Invalid {
                        name: "SCOPES_SUPPORTED",
                        reason: "not a space-separated list of scope tokens",
                    }
                })?;
                Some(set.to_string())
            }
            None => None,
        };
        let user_tokens = match get("USER_TOKEN_ISSUER") {
            None => None,
            Some(issuer) => {
                let algorithm = match get("USER_TOKEN_ALGORITHM").as_deref().map(str::trim) {
                    None | Some("RS256") => UserTokenAlgorithm::Rs256,
                    Some("ES256") => UserTokenAlgorithm::Es256,
                    Some(_) => {
                        return Err(ConfigError::Invalid {
                            name: "USER_TOKEN_ALGORITHM",
                            reason: "must be RS256 or ES256",
                        });
                    }
                };
                let key = match (
                    get("USER_TOKEN_HS256_SECRET"),
                    get("USER_TOKEN_PUBLIC_KEY_PEM"),
                    get("USER_TOKEN_JWKS_URL"),
                ) {
                    (Some(secret), None, None) => {
                        if secret.len() < 32 {
                            return Err(ConfigError::Invalid {
                                name: "USER_TOKEN_HS256_SECRET",
                                reason: "must be at least 32 bytes",
                            });
                        }
                        UserTokenKey::Hs256Secret(secret)
                    }
                    (None, Some(pem), None) => UserTokenKey::PublicKeyPem { algorithm, pem },
                    (None, None, Some(url)) => UserTokenKey::JwksUrl {
                        algorithm,
                        url: absolute_url("USER_TOKEN_JWKS_URL", &url)?,
                    },
                    _ => {
                        return Err(ConfigError::Invalid {
                            name: "USER_TOKEN_ISSUER",
                            reason: "set exactly one of USER_TOKEN_HS256_SECRET, \
                                     USER_TOKEN_PUBLIC_KEY_PEM and USER_TOKEN_JWKS_URL",
                        });
                    }
                };
                Some(UserTokenConfig {
                    issuer: issuer.trim().to_owned(),
                    audience: required("USER_TOKEN_AUDIENCE")?.trim().to_owned(),
                    key,
                    permissions_claim: get("USER_TOKEN_PERMISSIONS_CLAIM")
                        .map(|c| c.trim().to_owned())
                        .unwrap_or_else(|| "permissions".to_owned()),
                })
            }
        };
        let count = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or(ConfigError::Invalid {
                        name,
                        reason: "must be a whole number from 1 to 10000",
                    }),
            }
        };
        let lookup_limits = LookupLimits {
            per_account: count("LOOKUP_FAILURES_PER_ACCOUNT", 5)?,
            per_ip: count("LOOKUP_FAILURES_PER_IP", 20)?,
            window: seconds(
                "LOOKUP_WINDOW_SECONDS",
                Duration::from_secs(600),
                60,
                86_400,
            )?,
        };
        let admin_cursor_secret = match get("ADMIN_CURSOR_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::Invalid {
                    name: "ADMIN_CURSOR_SECRET",
                    reason: "must be at least 32 bytes",
                });
            }
            other => other.map(CursorSecret),
        };
        Ok(Self {
            admin_permission: get("ADMIN_PERMISSION")
                .map(|p| p.trim().to_owned())
                .unwrap_or_else(|| "ADMINISTRATOR".to_owned()),
            admin_cursor_secret,
            user_tokens,
            lookup_limits,
            access_token_audience: get("ACCESS_TOKEN_AUDIENCE")
                .map(|a| a.trim().to_owned())
                .unwrap_or_else(|| issuer.clone()),
            signing_keys,
            scopes_supported,
            table_name: required("TABLE_NAME")?.trim().to_owned(),
            issuer,
            verification_uri,
            device_code_lifetime: seconds(
                "DEVICE_CODE_LIFETIME_SECONDS",
                DEFAULT_DEVICE_CODE_LIFETIME,
                60,
                1800,
            )?,
            poll_interval: seconds("POLL_INTERVAL_SECONDS", DEFAULT_POLL_INTERVAL, 1, 60)?,
            access_token_lifetime: seconds(
                "ACCESS_TOKEN_LIFETIME_SECONDS",
                DEFAULT_ACCESS_TOKEN_LIFETIME,
                60,
                86_400,
            )?,
            record_retention: seconds(
                "RECORD_RETENTION_SECONDS",
                DEFAULT_RECORD_RETENTION,
                0,
                30 * 86_400,
            )?,
        })
    }
}

/// Checks that `value` is an absolute http(s) URL without query or fragment, and drops
/// a trailing slash so that paths can be appended.
fn absolute_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_end_matches('/');
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or(ConfigError::Invalid {
            name,
            reason: "must start with https:// or http://",
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(ConfigError::Invalid {
            name,
            reason: "has no host",
        });
    }
    if rest.contains(['?', '#']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::Invalid {
            name,
            reason: "must not contain a query, a fragment or whitespace",
        });
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn minimal_configuration_gets_the_defaults() {
        let c = load(&[("TABLE_NAME", "t"), ("ISSUER", "https://auth.example.com/")]).unwrap();
        assert_eq!(c.issuer, "https://auth.example.com");
        assert_eq!(c.verification_uri, "https://auth.example.com/device");
        assert_eq!(c.device_code_lifetime, Duration::from_secs(600));
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!(c.access_token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn missing_and_empty_variables_are_named() {
        assert_eq!(
            load(&[("ISSUER", "https://a")]),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert_eq!(
            load(&[("TABLE_NAME", "t"), ("ISSUER", " ")]),
            Err(ConfigError::Missing("ISSUER"))
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_variable_name() {
        let base = [("TABLE_NAME", "t"), ("ISSUER", "https://a")];
        for (name, value) in [
            ("POLL_INTERVAL_SECONDS", "five"),
            ("POLL_INTERVAL_SECONDS", "0"),
            ("DEVICE_CODE_LIFETIME_SECONDS", "99999"),
            ("VERIFICATION_URI", "ftp://x"),
            ("VERIFICATION_URI", "https://x/device?a=b"),
            ("ISSUER", "https:///path"),
        ] {
            let mut vars = base.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, value));
            match load(&vars) {
                Err(ConfigError::Invalid { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn signing_keys_come_from_one_source_and_never_print() {
        let base = [("TABLE_NAME", "t"), ("ISSUER", "https://a")];
        let mut inline = base.to_vec();
        inline.push(("SIGNING_KEYS", "{\"secret\":1}"));
        let c = load(&inline).unwrap();
        assert_eq!(
            c.signing_keys,
            Some(SigningKeysSource::Inline("{\"secret\":1}".into()))
        );
        assert!(!format!("{c:?}").contains("secret\""));
        assert_eq!(c.access_token_audience, "https://a");

        let mut both = inline.clone();
        both.push(("SIGNING_KEYS_SECRET_ID", "arn:x"));
        assert!(load(&both).is_err());
        let mut arn = base.to_vec();
        arn.push(("SIGNING_KEYS_SECRET_ID", "arn:x"));
        assert_eq!(
            load(&arn).unwrap().signing_keys,
            Some(SigningKeysSource::SecretsManager("arn:x".into()))
        );
    }

    #[test]
    fn user_tokens_need_exactly_one_key_and_never_print_the_secret() {
        let secret = "0123456789abcdef0123456789abcdef";
        let base = [
            ("TABLE_NAME", "t"),
            ("ISSUER", "https://a"),
            ("USER_TOKEN_ISSUER", "https://idp"),
            ("USER_TOKEN_AUDIENCE", "api"),
        ];
        let mut hs = base.to_vec();
        hs.push(("USER_TOKEN_HS256_SECRET", secret));
        let c = load(&hs).unwrap();
        let user = c.user_tokens.clone().unwrap();
        assert_eq!(user.key, UserTokenKey::Hs256Secret(secret.into()));
        assert_eq!(user.permissions_claim, "permissions");
        assert!(!format!("{c:?}").contains(secret));

        let mut both = hs.clone();
        both.push(("USER_TOKEN_JWKS_URL", "https://idp/jwks"));
        assert!(load(&both).is_err());
        assert!(load(&base).is_err(), "no key at all");
        let mut short = base.to_vec();
        short.push(("USER_TOKEN_HS256_SECRET", "short"));
        assert!(load(&short).is_err());

        let mut jwks = base.to_vec();
        jwks.push(("USER_TOKEN_JWKS_URL", "https://idp/.well-known/jwks.json"));
        jwks.push(("USER_TOKEN_ALGORITHM", "ES256"));
        match load(&jwks).unwrap().user_tokens.unwrap().key {
            UserTokenKey::JwksUrl { algorithm, .. } => {
                assert_eq!(algorithm, UserTokenAlgorithm::Es256)
            }
            other => panic!("{other:?}"),
        }
        let mut none_alg = jwks.clone();
        none_alg.push(("USER_TOKEN_ALGORITHM", "none"));
        none_alg.retain(|(k, v)| *k != "USER_TOKEN_ALGORITHM" || *v == "none");
        assert!(load(&none_alg).is_err());
    }

    #[test]
    fn lookup_limits_default_to_five_per_account_per_ten_minutes() {
        let c = load(&[("TABLE_NAME", "t"), ("ISSUER", "https://a")]).unwrap();
        assert_eq!(c.lookup_limits.per_account, 5);
        assert_eq!(c.lookup_limits.per_ip, 20);
        assert_eq!(c.lookup_limits.window, Duration::from_secs(600));
        assert!(c.user_tokens.is_none());
        let bad = load(&[
            ("TABLE_NAME", "t"),
            ("ISSUER", "https://a"),
            ("LOOKUP_FAILURES_PER_ACCOUNT", "0"),
        ]);
        assert!(bad.is_err());
    }

    #[test]
    fn messages_never_contain_values() {
        let err = load(&[("TABLE_NAME", "t"), ("ISSUER", "s3cr3t-value")]).unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"));
    }
}
