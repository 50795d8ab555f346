//! Issuing device authorizations (RFC 8628 §3.1-3.2): what a client may be given, as a
//! pure decision, and the store write with its bounded redraw on user-code collisions.

use std::time::Duration;

use crate::Config;
use crate::domain::{
    DeviceAuthorization, DeviceCode, GrantType, OAuthClient, ScopeSet, Terms, UserCode,
};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::store::{CreateDeviceError, Store, StoreError};
use crate::time::Clock;

/// How many user codes are drawn before giving up. With 20^8 codes, even a million live
/// codes make one collision a 1-in-25,600 event; five in a row mean the store is
/// misbehaving, not bad luck.
pub const MAX_CODE_ATTEMPTS: usize = 5;

/// Decides what `client` may be issued for `requested` scope, without any I/O.
///
/// - The client must be allowed the device grant, else `unauthorized_client`.
/// - The scope defaults to the client's allowed scopes when none is asked for (RFC 6749
///   §3.3 lets the server pick a default) and must lie within them, else `invalid_scope`.
/// - The client's own lifetimes and interval override the deployment's.
pub fn terms(
    client: &OAuthClient,
    requested: Option<ScopeSet>,
    config: &Config,
) -> Result<Terms, OAuthError> {
    if !client.may_use(GrantType::DeviceCode) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "the client may not use the device authorization grant",
        ));
    }
    let scope = requested.unwrap_or_else(|| client.allowed_scopes.clone());
    if !scope.is_subset(&client.allowed_scopes) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            "the scope exceeds what the client may request",
        ));
    }
    Ok(Terms {
        scope,
        lifetime: client
            .device_code_lifetime
            .unwrap_or(config.device_code_lifetime),
        interval: client.poll_interval.unwrap_or(config.poll_interval),
        access_token_lifetime: client
            .access_token_lifetime
            .unwrap_or(config.access_token_lifetime),
    })
}

/// Why nothing was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Every drawn user code was taken. Nothing was written.
    #[error("no free user code in {MAX_CODE_ATTEMPTS} draws")]
    NoFreeUserCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a pending record for `client` under `terms`, returning the device code (which
/// exists only here and in the response) and the record.
///
/// Each attempt draws a fresh device code and user code and writes both items in one
/// transaction; a collision writes nothing and draws again, at most
/// [`MAX_CODE_ATTEMPTS`] times.
pub async fn issue(
    store: &Store,
    clock: &dyn Clock,
    user_codes: &(dyn Fn() -> UserCode + Send + Sync),
    client: &OAuthClient,
    terms: &Terms,
    retention: Duration,
) -> Result<(DeviceCode, DeviceAuthorization), IssueError> {
    for _ in 0..MAX_CODE_ATTEMPTS {
        let now = clock.now();
        let device_code = DeviceCode::generate();
        let record = DeviceAuthorization::new(device_code.id(), client, terms, user_codes(), now);
        match store
            .create_device_authorization(&record, retention, now)
            .await
        {
            Ok(()) => return Ok((device_code, record)),
            Err(CreateDeviceError::UserCodeTaken | CreateDeviceError::IdTaken) => {
                tracing::warn!(client_id = %client.id, "code collision, drawing again");
            }
            Err(CreateDeviceError::Store(e)) => return Err(e.into()),
        }
    }
    Err(IssueError::NoFreeUserCode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some("t".into()),
            "ISSUER" => Some("https://a.test".into()),
            _ => None,
        })
        .unwrap()
    }

    fn client() -> OAuthClient {
        crate::domain::test_client("tv")
    }

    fn scope(s: &str) -> Option<ScopeSet> {
        Some(ScopeSet::parse(s).unwrap())
    }

    #[test]
    fn a_requested_subset_is_granted_with_the_deployment_defaults() {
        let t = terms(&client(), scope("read"), &config()).unwrap();
        assert_eq!(t.scope, ScopeSet::parse("read").unwrap());
        assert_eq!(t.lifetime, Duration::from_secs(600));
        assert_eq!(t.interval, Duration::from_secs(5));
        assert_eq!(t.access_token_lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn no_scope_means_all_the_allowed_scopes() {
        let t = terms(&client(), None, &config()).unwrap();
        assert_eq!(t.scope.to_string(), "read write");
    }

    #[test]
    fn a_scope_beyond_the_allowed_is_invalid_scope() {
        let err = terms(&client(), scope("read admin"), &config()).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidScope);
    }

    #[test]
    fn a_client_without_the_device_grant_is_unauthorized() {
        let mut c = client();
        c.allowed_grants = vec![GrantType::RefreshToken];
        let err = terms(&c, None, &config()).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::UnauthorizedClient);
    }

    #[test]
    fn the_clients_own_lifetime_and_interval_win() {
        let mut c = client();
        c.device_code_lifetime = Some(Duration::from_secs(120));
        c.poll_interval = Some(Duration::from_secs(15));
        c.access_token_lifetime = Some(Duration::from_secs(900));
        let t = terms(&c, None, &config()).unwrap();
        assert_eq!(t.access_token_lifetime, Duration::from_secs(900));
        assert_eq!(t.lifetime, Duration::from_secs(120));
        assert_eq!(t.interval, Duration::from_secs(15));
    }
}
