//! UserInfo (OpenID Connect Core §5.3): a device presents its access token and learns who
//! signed it in, as far as the token's scopes allow (`profile`: the names; `email`: the
//! address).
//!
//! The token must be an access token this deployment signed for its own default audience
//! (a token meant for another resource, RFC 8707, is that resource's), unexpired, with
//! `openid` among the scopes its grant still holds, its grant must not be revoked, and the
//! client it was issued to must still be there: a client whose deletion has begun gets
//! nothing more, even before the deletion's sweep reaches its grants.
//!
//! DynamoDB cost: one strongly consistent `BatchGetItem` (the client and the grant), plus
//! the published key set as introspection reads it (see [`super::introspection`]).

use serde_json::{Map, Value};

use super::introspection::{AccessTokens, MAX_TOKEN_LEN};
use super::{Context as _, Internal, Outcome, in_span};
use crate::domain::{ClientId, GrantId, OPENID, ScopeSet};
use crate::store::Store;
use crate::time::Clock;

/// The use case's name in the metrics.
pub const NAME: &str = "userinfo";

/// What UserInfo says: the subject, and the claims the token's scopes allow. No `Debug`:
/// the claims are personal data.
pub struct UserInfo {
    pub sub: String,
    pub claims: Map<String, Value>,
}

/// Why UserInfo says nothing (RFC 6750 §3.1).
#[derive(Debug, thiserror::Error)]
pub enum UserInfoError {
    /// No access token was presented.
    #[error("an access token is required")]
    NoToken,
    /// Two tokens (header and body), or a malformed request.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// Unknown, malformed, expired, revoked, another issuer's or another audience's.
    #[error("the access token is not valid")]
    InvalidToken,
    /// A valid token whose scopes do not include `openid`.
    #[error("the access token was not issued for openid")]
    InsufficientScope,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for UserInfoError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::NoToken => "no_token",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::Internal(_) => "internal",
        }
    }
}

/// The claims about the person behind `token` (`None`: no token presented).
pub async fn userinfo(
    store: &Store,
    keys: &AccessTokens,
    clock: &dyn Clock,
    token: Option<&str>,
) -> Result<UserInfo, UserInfoError> {
    let span = tracing::info_span!(
        "userinfo",
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(NAME, span, async {
        let token = token.ok_or(UserInfoError::NoToken)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(UserInfoError::InvalidToken);
        }
        let now = clock.now();
        let claims = keys
            .verify(store, token, now)
            .await
            .context("reading the published keys failed")?
            .filter(|claims| {
                now.as_secs() < claims.exp && claims.aud.is_only(keys.default_audience())
            })
            .ok_or(UserInfoError::InvalidToken)?;
        let grant_id = claims
            .sid
            .as_deref()
            .and_then(GrantId::parse)
            .ok_or(UserInfoError::InvalidToken)?;
        tracing::Span::current().record("grant_id", grant_id.as_str());
        let client_id = ClientId::parse(&claims.client_id).ok_or(UserInfoError::InvalidToken)?;
        let found = store
            .find(Some(&client_id), Some(&grant_id), None)
            .await
            .context("reading the grant failed")?;
        // The incarnation of the client that was issued the grant, not being deleted.
        let client = found.client.filter(|c| c.deletion.is_none());
        let grant = found
            .grant
            .filter(|g| {
                g.revoked.is_none()
                    && g.account_id == claims.sub
                    && g.client_id == client_id
                    && client
                        .as_ref()
                        .is_some_and(|c| c.generation == g.client_generation)
            })
            .ok_or(UserInfoError::InvalidToken)?;
        // The token's scopes that its grant still holds (an administrator may have
        // narrowed the client since).
        let scope = ScopeSet::parse(claims.scope.as_deref().unwrap_or_default())
            .unwrap_or_default()
            .intersection(&grant.scope);
        if !scope.contains(OPENID) {
            return Err(UserInfoError::InsufficientScope);
        }
        Ok(UserInfo {
            claims: grant.profile.claims_for(&scope),
            sub: claims.sub,
        })
    })
    .await
}
