//! The environment variables: every name the functions read, the deployment's value of
//! each per-client [`Setting`], and the typed, checked reads the configuration types are
//! built with.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::*;

/// The variable that sets the deployment's value of `setting`, in whole seconds.
pub const fn setting_variable(setting: Setting) -> &'static str {
    match setting {
        Setting::DeviceCodeLifetime => "DEVICE_CODE_LIFETIME_SECONDS",
        Setting::PollInterval => "POLL_INTERVAL_SECONDS",
        Setting::AccessTokenLifetime => "ACCESS_TOKEN_LIFETIME_SECONDS",
        Setting::RefreshTokenIdleLifetime => "REFRESH_TOKEN_IDLE_LIFETIME_SECONDS",
        Setting::RefreshTokenAbsoluteLifetime => "REFRESH_TOKEN_ABSOLUTE_LIFETIME_SECONDS",
    }
}

/// The deployment's value of `setting` when its variable is unset: 600 s, 5 s, an hour,
/// 30 days, 365 days.
pub const fn setting_default(setting: Setting) -> Duration {
    match setting {
        Setting::DeviceCodeLifetime => DEFAULT_DEVICE_CODE_LIFETIME,
        Setting::PollInterval => DEFAULT_POLL_INTERVAL,
        Setting::AccessTokenLifetime => DEFAULT_ACCESS_TOKEN_LIFETIME,
        Setting::RefreshTokenIdleLifetime => crate::domain::DEFAULT_REFRESH_IDLE_LIFETIME,
        Setting::RefreshTokenAbsoluteLifetime => crate::domain::DEFAULT_REFRESH_ABSOLUTE_LIFETIME,
    }
}

/// Every environment variable the functions read, the configuration's and the logs' and
/// metrics' ([`crate::telemetry`], [`crate::metrics`]); the manual's configuration table
/// lists each (a test holds the two equal), and reading one not listed here fails every
/// debug build's test that reaches it.
pub const VARIABLES: &[&str] = &[
    "TABLE_NAME",
    "ISSUER",
    "VERIFICATION_URI",
    setting_variable(Setting::DeviceCodeLifetime),
    setting_variable(Setting::PollInterval),
    setting_variable(Setting::AccessTokenLifetime),
    setting_variable(Setting::RefreshTokenIdleLifetime),
    setting_variable(Setting::RefreshTokenAbsoluteLifetime),
    "RECORD_RETENTION_SECONDS",
    "ACCESS_TOKEN_AUDIENCE",
    "ID_TOKEN_LIFETIME_SECONDS",
    "USER_CODE_CHARSET",
    "USER_CODE_LENGTH",
    "SIGNING_KEYS",
    "SIGNING_KEYS_SECRET_ID",
    "SCOPES_SUPPORTED",
    "USER_TOKEN_ISSUER",
    "USER_TOKEN_AUDIENCE",
    "USER_TOKEN_HS256_SECRET",
    "USER_TOKEN_PUBLIC_KEY_PEM",
    "USER_TOKEN_JWKS_URL",
    "USER_TOKEN_ALGORITHM",
    "USER_TOKEN_PERMISSIONS_CLAIM",
    "LOOKUP_FAILURES_PER_ACCOUNT",
    "LOOKUP_FAILURES_PER_IP",
    "LOOKUP_WINDOW_SECONDS",
    "CLIENT_CACHE_SECONDS",
    "CLIENT_DELETION_STEP",
    "CLIENT_DELETION_STEPS_PER_REQUEST",
    "ADMIN_PERMISSION",
    "ADMIN_CURSOR_SECRET",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_CLIENT_SECRET_ID",
    "PAGE_SESSION_SECRET",
    "SERVICE_NAME",
    "SUPPORT_URL",
    "SCOPE_DESCRIPTIONS",
    "METRICS",
    "RUST_LOG",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_LAMBDA_LOG_FORMAT",
];

/// Typed reads of the variables, naming the variable in every refusal.
pub(super) struct Env<F>(pub(super) F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub(super) fn get(&self, name: &str) -> Option<String> {
        debug_assert!(
            VARIABLES.contains(&name),
            "{name} is read but not in config::VARIABLES"
        );
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError::Missing(name))
    }

    pub(super) fn table_name(&self) -> Result<String, ConfigError> {
        self.required("TABLE_NAME")
    }

    pub(super) fn issuer(&self) -> Result<String, ConfigError> {
        absolute_url("ISSUER", &self.required("ISSUER")?)
    }

    pub(super) fn seconds(
        &self,
        name: &'static str,
        default: Duration,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let value: u64 = raw.parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: "not a whole number of seconds",
        })?;
        if !range.contains(&value) {
            return Err(ConfigError::Invalid {
                name,
                reason: "out of the allowed range",
            });
        }
        Ok(Duration::from_secs(value))
    }

    /// A per-client setting's deployment default, in the range the admin API accepts.
    pub(super) fn setting(&self, setting: Setting) -> Result<Duration, ConfigError> {
        self.seconds(
            setting_variable(setting),
            setting_default(setting),
            setting.range(),
        )
    }

    pub(super) fn count(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => {
                raw.parse()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or(ConfigError::Invalid {
                        name,
                        reason: "must be a whole number from 1 to 10000",
                    })
            }
        }
    }

    /// A secret of at least 32 bytes.
    pub(super) fn key(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match self.get(name) {
            Some(secret) if secret.len() < 32 => Err(ConfigError::Invalid {
                name,
                reason: "must be at least 32 bytes",
            }),
            other => Ok(other),
        }
    }

    pub(super) fn user_code_format(&self) -> Result<UserCodeFormat, ConfigError> {
        let charset = match self.get("USER_CODE_CHARSET") {
            None => Charset::Letters,
            Some(name) => Charset::parse(&name).ok_or(ConfigError::Invalid {
                name: "USER_CODE_CHARSET",
                reason: "must be letters or digits",
            })?,
        };
        let len = match self.get("USER_CODE_LENGTH") {
            None => None,
            Some(raw) => Some(raw.parse::<usize>().map_err(|_| ConfigError::Invalid {
                name: "USER_CODE_LENGTH",
                reason: "not a whole number",
            })?),
        };
        UserCodeFormat::new(charset, len).map_err(|_| ConfigError::Invalid {
            name: "USER_CODE_LENGTH",
            reason: "must be 8 to 12 for letters, 9 to 12 for digits",
        })
    }

    pub(super) fn client_cache(&self) -> Result<Duration, ConfigError> {
        self.seconds("CLIENT_CACHE_SECONDS", Duration::from_secs(5), 0..=60)
    }

    pub(super) fn lookup_limits(&self) -> Result<LookupLimits, ConfigError> {
        Ok(LookupLimits {
            per_account: self.count("LOOKUP_FAILURES_PER_ACCOUNT", 5)?,
            per_ip: match self.get("LOOKUP_FAILURES_PER_IP").as_deref() {
                Some("off") => None,
                _ => Some(self.count("LOOKUP_FAILURES_PER_IP", 20)?),
            },
            window: self.seconds(
                "LOOKUP_WINDOW_SECONDS",
                Duration::from_secs(600),
                60..=86_400,
            )?,
        })
    }

    /// The trusted issuer of user tokens (required by the functions that call this).
    pub(super) fn user_tokens(&self) -> Result<UserTokenConfig, ConfigError> {
        let issuer = self.required("USER_TOKEN_ISSUER")?;
        let algorithm = match self.get("USER_TOKEN_ALGORITHM").as_deref() {
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
            self.key("USER_TOKEN_HS256_SECRET")?,
            self.get("USER_TOKEN_PUBLIC_KEY_PEM"),
            self.get("USER_TOKEN_JWKS_URL"),
        ) {
            (Some(secret), None, None) => UserTokenKey::Hs256Secret(secret),
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
        Ok(UserTokenConfig {
            issuer,
            audience: self.required("USER_TOKEN_AUDIENCE")?,
            key,
            permissions_claim: self
                .get("USER_TOKEN_PERMISSIONS_CLAIM")
                .unwrap_or_else(|| "permissions".to_owned()),
        })
    }
}

/// Checks that `value` is an absolute http(s) URL without query or fragment, and drops
/// a trailing slash so that paths can be appended.
pub(super) fn absolute_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
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
