//! A device asks for a code (RFC 8628 §3.1-3.2): authenticate the client, decide what it
//! may be given (a pure function), then write the record and the claim on its user code,
//! drawing again on a user-code collision.
//!
//! DynamoDB cost: one `GetItem` (the client) and one `TransactWriteItems` (record and
//! claim), plus one more transaction per collision.

use std::time::Duration;

use super::{Context as _, Internal, Outcome, in_span};
use crate::config::DeviceConfig;
use crate::domain::{
    ClientCredentials, DeviceAuthorization, DeviceCode, DeviceDetails, GrantType, OAuthClient,
    OFFLINE_ACCESS, RefreshPolicy, ScopeSet, Terms, UserCode, UserCodeFormat, resource,
};
use crate::store::{CreateDeviceError, Store};
use crate::time::Clock;

/// The use case's name in the metrics.
pub const NAME: &str = "issue_device_code";

/// How many user codes are drawn before giving up. With 20^8 codes, even a million live
/// codes make one collision a 1-in-25,600 event; five in a row mean the store is
/// misbehaving, not bad luck.
pub const MAX_CODE_ATTEMPTS: usize = 5;

/// What a device asks for.
#[derive(Debug)]
pub struct DeviceCodeRequest {
    pub credentials: ClientCredentials,
    /// `None`: the client's allowed scopes.
    pub scope: Option<ScopeSet>,
    /// The `resource` parameters (RFC 8707), as sent.
    pub resources: Vec<String>,
    /// What the endpoint saw of the device, for the person who approves.
    pub device: DeviceDetails,
}

/// What was issued. No `Debug`: it holds the device code.
pub struct Issued {
    /// Exists only here and in the response; the record keeps its hash.
    pub device_code: DeviceCode,
    pub record: DeviceAuthorization,
}

/// Why nothing was issued. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("client authentication failed")]
    InvalidClient { used_basic: bool },
    #[error("the client may not use the device authorization grant")]
    UnauthorizedClient,
    #[error("the scope exceeds what the client may request")]
    InvalidScope,
    /// A `resource` is malformed or not allowed to this client (RFC 8707 §2).
    #[error("a requested resource is not allowed to this client")]
    InvalidTarget,
    /// Every drawn user code was taken.
    #[error("no free user code in {MAX_CODE_ATTEMPTS} draws")]
    NoFreeUserCode,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for IssueError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::NoFreeUserCode => "no_free_user_code",
            Self::Internal(_) => "internal",
        }
    }
}

/// Where user codes come from: [`UserCode::generate_in`] the client's format, or a fixed
/// sequence in tests.
pub type UserCodeSource = dyn Fn(UserCodeFormat) -> UserCode + Send + Sync;

/// Issues a device code and a user code to the requesting client.
pub async fn issue_device_code(
    store: &Store,
    config: &DeviceConfig,
    clock: &dyn Clock,
    user_codes: &UserCodeSource,
    request: DeviceCodeRequest,
) -> Result<Issued, IssueError> {
    let span = tracing::info_span!(
        "issue_device_code",
        client_id = %request.credentials.client_id,
        record_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let run =
        async {
            let stored = store
                .cached_client(&request.credentials.client_id, clock.now())
                .await
                .context("reading the client failed")?;
            let client = request.credentials.authenticate(stored).map_err(|_| {
                IssueError::InvalidClient {
                    used_basic: request.credentials.used_basic,
                }
            })?;
            let terms = terms(&client, request.scope, &request.resources, config)?;
            let issued = write(
                store,
                clock,
                user_codes,
                (&client, &terms, &request.device),
                config.record_retention,
            )
            .await?;
            tracing::Span::current().record("record_id", issued.record.id.as_str());
            tracing::info!("device authorization issued");
            Ok(issued)
        };
    in_span(NAME, span, run).await
}

/// Decides what `client` may be issued for `requested` scope, without any I/O.
///
/// - The client must be allowed the device grant, else `unauthorized_client`.
/// - The scope defaults to the client's allowed scopes when none is asked for (RFC 6749
///   §3.3 lets the server pick a default) and must lie within them, else `invalid_scope`.
/// - The resources (RFC 8707) are the ones asked for, each allowed to the client, else
///   `invalid_target`; none asked for: the deployment's default audience.
/// - The user code takes the client's format, else the deployment's.
/// - The client's own lifetimes and interval override the deployment's.
/// - The login will come with refresh tokens if the client may use the `refresh_token`
///   grant and the scope includes `offline_access`.
pub fn terms(
    client: &OAuthClient,
    requested: Option<ScopeSet>,
    resources: &[String],
    config: &DeviceConfig,
) -> Result<Terms, IssueError> {
    if !client.may_use(GrantType::DeviceCode) {
        return Err(IssueError::UnauthorizedClient);
    }
    let scope = requested.unwrap_or_else(|| client.allowed_scopes.clone());
    if !scope.is_subset(&client.allowed_scopes) {
        return Err(IssueError::InvalidScope);
    }
    let resources = resource::choose(resources, &client.allowed_resources)
        .map_err(|_| IssueError::InvalidTarget)?;
    let settings = client.overrides.over(&config.defaults);
    let refresh = (client.may_use(GrantType::RefreshToken)
        && scope.iter().any(|token| token == OFFLINE_ACCESS))
    .then_some(RefreshPolicy {
        idle: settings.refresh_token_idle_lifetime,
        absolute: settings.refresh_token_absolute_lifetime,
    });
    Ok(Terms {
        scope,
        refresh,
        lifetime: settings.device_code_lifetime,
        interval: settings.poll_interval,
        access_token_lifetime: settings.access_token_lifetime,
        resources,
        user_code_format: client.user_code_format.unwrap_or(config.user_code_format),
    })
}

/// Each attempt draws a fresh device code and user code and writes both items in one
/// transaction; a collision writes nothing and draws again, at most
/// [`MAX_CODE_ATTEMPTS`] times.
async fn write(
    store: &Store,
    clock: &dyn Clock,
    user_codes: &UserCodeSource,
    (client, terms, device): (&OAuthClient, &Terms, &DeviceDetails),
    retention: Duration,
) -> Result<Issued, IssueError> {
    for _ in 0..MAX_CODE_ATTEMPTS {
        let now = clock.now();
        let device_code = DeviceCode::generate();
        let mut record = DeviceAuthorization::new(
            device_code.id(),
            client,
            terms,
            user_codes(terms.user_code_format),
            now,
        );
        record.device = device.clone();
        match store
            .create_device_authorization(&record, retention, now)
            .await
        {
            Ok(()) => {
                return Ok(Issued {
                    device_code,
                    record,
                });
            }
            Err(CreateDeviceError::UserCodeTaken | CreateDeviceError::IdTaken) => {
                tracing::warn!("code collision, drawing again");
            }
            Err(CreateDeviceError::Store(e)) => {
                return Err(Internal::new("writing the device authorization failed", e).into());
            }
        }
    }
    tracing::error!("no free user code found");
    Err(IssueError::NoFreeUserCode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_POLL_INTERVAL};

    fn defaults() -> DeviceConfig {
        DeviceConfig {
            table_name: "t".into(),
            verification_uri: "https://example.com/device".into(),
            defaults: crate::config::IssueDefaults {
                device_code_lifetime: Duration::from_secs(600),
                poll_interval: DEFAULT_POLL_INTERVAL,
                access_token_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
                refresh_token_idle_lifetime: Duration::from_secs(1000),
                refresh_token_absolute_lifetime: Duration::from_secs(5000),
            },
            record_retention: Duration::ZERO,
            client_cache: Duration::ZERO,
            user_code_format: UserCodeFormat::DEFAULT,
        }
    }

    fn client() -> OAuthClient {
        crate::domain::test_client("tv")
    }

    fn scope(s: &str) -> Option<ScopeSet> {
        Some(ScopeSet::parse(s).unwrap())
    }

    #[test]
    fn a_requested_subset_is_granted_with_the_deployment_defaults() {
        let t = terms(&client(), scope("read"), &[], &defaults()).unwrap();
        assert_eq!(t.scope, ScopeSet::parse("read").unwrap());
        assert_eq!(t.lifetime, Duration::from_secs(600));
        assert_eq!(t.interval, Duration::from_secs(5));
        assert_eq!(t.access_token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn no_scope_means_all_the_allowed_scopes() {
        let t = terms(&client(), None, &[], &defaults()).unwrap();
        assert_eq!(t.scope.to_string(), "read write");
    }

    #[test]
    fn a_scope_beyond_the_allowed_is_invalid_scope() {
        let err = terms(&client(), scope("read admin"), &[], &defaults()).unwrap_err();
        assert!(matches!(err, IssueError::InvalidScope));
    }

    #[test]
    fn a_client_without_the_device_grant_is_unauthorized() {
        let mut c = client();
        c.allowed_grants = vec![GrantType::RefreshToken];
        let err = terms(&c, None, &[], &defaults()).unwrap_err();
        assert!(matches!(err, IssueError::UnauthorizedClient));
    }

    #[test]
    fn refresh_tokens_need_the_grant_and_offline_access() {
        let mut c = client();
        c.allowed_scopes = ScopeSet::parse("read offline_access").unwrap();
        let without_grant = terms(&c, None, &[], &defaults()).unwrap();
        assert_eq!(without_grant.refresh, None);
        c.allowed_grants.push(GrantType::RefreshToken);
        assert_eq!(
            terms(&c, scope("read"), &[], &defaults()).unwrap().refresh,
            None
        );
        let policy = terms(&c, None, &[], &defaults()).unwrap().refresh.unwrap();
        assert_eq!(policy.idle, Duration::from_secs(1000));
        assert_eq!(policy.absolute, Duration::from_secs(5000));
        c.overrides.refresh_token_idle_lifetime = Some(Duration::from_secs(7200));
        let policy = terms(&c, scope("offline_access"), &[], &defaults())
            .unwrap()
            .refresh
            .unwrap();
        assert_eq!(policy.idle, Duration::from_secs(7200));
    }

    #[test]
    fn the_clients_own_lifetime_and_interval_win() {
        let mut c = client();
        c.overrides.device_code_lifetime = Some(Duration::from_secs(120));
        c.overrides.poll_interval = Some(Duration::from_secs(15));
        c.overrides.access_token_lifetime = Some(Duration::from_secs(900));
        let t = terms(&c, None, &[], &defaults()).unwrap();
        assert_eq!(t.access_token_lifetime, Duration::from_secs(900));
        assert_eq!(t.lifetime, Duration::from_secs(120));
        assert_eq!(t.interval, Duration::from_secs(15));
    }
}
