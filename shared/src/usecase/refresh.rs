//! A device trades its refresh token for new tokens (RFC 6749 §6), and every use rotates
//! the refresh token (RFC 9700 §4.14.2): exactly one of any number of concurrent uses of
//! one token wins, and a rotated token presented again revokes its whole grant.
//!
//! DynamoDB cost: one strongly consistent `BatchGetItem` (the client, the grant and the
//! token's record) and one `TransactWriteItems` (rotate the old token, store the new one,
//! renew the grant). A reused token adds the `UpdateItem` that revokes the grant (tried
//! again while a refresh's transaction holds the grant; still held: 503, never a final
//! `invalid_grant` over a grant left alive).

use super::poll::IssuedToken;
use super::signing_keys::TokenMinter;
use super::{Context as _, Internal, Outcome, in_span};
use crate::domain::{
    ClientCredentials, GrantType, OFFLINE_ACCESS, RefreshDecision, RefreshRecord, RefreshToken,
    RevokeReason, ScopeSet, decide_refresh, resource,
};
use crate::store::{Owner, RevokeOutcome, RotateOutcome, Store};
use crate::time::Clock;

pub const NAME: &str = "refresh";

/// A refresh request, as far as the form says.
#[derive(Debug)]
pub struct RefreshRequest {
    pub credentials: ClientCredentials,
    /// `None`: malformed (it cannot name any token).
    pub refresh_token: Option<RefreshToken>,
    /// `None`: the grant's whole scope.
    pub scope: Option<ScopeSet>,
    /// The `resource` parameters (RFC 8707), as sent; none: the grant's.
    pub resources: Vec<String>,
}

/// Every answer but new tokens (RFC 6749 §5.2).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("client authentication failed")]
    InvalidClient { used_basic: bool },
    #[error("the client may not use the refresh_token grant")]
    UnauthorizedClient,
    /// Unknown, malformed, expired, another client's, already used, or its grant is over.
    #[error("the refresh token is invalid")]
    InvalidGrant,
    #[error("the scope exceeds what the grant holds")]
    InvalidScope,
    /// A `resource` the grant does not hold, or malformed (RFC 8707 §2).
    #[error("a requested resource is not one the grant holds")]
    InvalidTarget,
    /// Concurrent writes cancelled each other; nothing was used up. Try again.
    #[error("the refresh token is busy, try again")]
    Busy,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for RefreshError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient { .. } => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }
}

/// Rotates the refresh token and mints a new access token for its grant.
pub async fn refresh(
    store: &Store,
    tokens: &TokenMinter,
    clock: &dyn Clock,
    request: RefreshRequest,
) -> Result<IssuedToken, RefreshError> {
    let span = tracing::info_span!(
        "refresh",
        client_id = %request.credentials.client_id,
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(NAME, span, async {
        let credentials = &request.credentials;
        let token = request.refresh_token.as_ref();
        let grant_id = token.map(RefreshToken::grant_id);
        let hash = token.map(RefreshToken::hash);
        let found = store
            .find_with_client(
                &credentials.client_id,
                grant_id.as_ref(),
                hash.as_ref(),
                clock.now(),
            )
            .await
            .context("reading the refresh token failed")?;
        let client =
            credentials
                .authenticate(found.client)
                .map_err(|_| RefreshError::InvalidClient {
                    used_basic: credentials.used_basic,
                })?;
        if !client.may_use(GrantType::RefreshToken) {
            return Err(RefreshError::UnauthorizedClient);
        }
        if let Some(id) = &grant_id {
            tracing::Span::current().record("grant_id", id.as_str());
        }
        let now = clock.now();
        let (Some(old), Some(grant)) = (found.refresh, found.grant) else {
            return Err(RefreshError::InvalidGrant);
        };
        // A grant of an earlier incarnation of this client id: that client was deleted,
        // and this one never issued it.
        if grant.client_generation != client.generation {
            return Err(RefreshError::InvalidGrant);
        }
        match decide_refresh(Some(&old), Some(&grant), &client.id, now) {
            RefreshDecision::Rotate => {}
            RefreshDecision::Invalid => return Err(RefreshError::InvalidGrant),
            RefreshDecision::LostRace => {
                tracing::warn!(
                    security_event = "refresh_token_race_lost",
                    "a concurrent request rotated this refresh token a moment ago"
                );
                return Err(RefreshError::InvalidGrant);
            }
            RefreshDecision::Reuse => {
                let outcome = store
                    .revoke_grant(&grant.id, Owner::Any, RevokeReason::RefreshTokenReuse, now)
                    .await
                    .context("revoking the grant of a reused refresh token failed")?;
                tracing::warn!(
                    security_event = "refresh_token_reuse",
                    revoked = outcome == RevokeOutcome::Revoked,
                    "a rotated refresh token was presented again; its grant is revoked"
                );
                // Never fail open: a grant that could not be revoked is not answered as
                // ended. 503 makes the token come again, and with it the detection.
                if outcome == RevokeOutcome::Busy {
                    return Err(RefreshError::Busy);
                }
                return Err(RefreshError::InvalidGrant);
            }
        }
        let requested = request.scope.unwrap_or_else(|| grant.scope.clone());
        if !requested.is_subset(&grant.scope) {
            return Err(RefreshError::InvalidScope);
        }
        // The client's settings as they are now bind every refresh: scopes an
        // administrator has taken away since the login are dropped, from the new tokens
        // and from the grant. Without `offline_access` the grant has no refresh tokens.
        let allowed = grant.scope.intersection(&client.allowed_scopes);
        if !allowed.contains(OFFLINE_ACCESS) {
            return Err(RefreshError::InvalidGrant);
        }
        let narrowed = (allowed != grant.scope).then_some(&allowed);
        if narrowed.is_some() {
            tracing::info!("the client's allowed scopes narrowed the grant");
        }
        let scope = requested.intersection(&allowed);
        // Fewer resources than the grant's may be asked for, never others; what the
        // client may no longer use is dropped.
        let resources = resource::narrow(
            &request.resources,
            &grant.resources,
            &client.allowed_resources,
        )
        .map_err(|_| RefreshError::InvalidTarget)?;
        let expires_at = grant
            .refresh_expiry(now)
            .ok_or(RefreshError::InvalidGrant)?;
        // Before the token is rotated: the access token this request wins must be
        // signable with a published key.
        tokens.ready(now).await?;
        let new_token = RefreshToken::generate(&grant.id);
        let new = RefreshRecord {
            hash: new_token.hash(),
            grant_id: grant.id.clone(),
            client_id: client.id.clone(),
            issued_at: now,
            expires_at,
            rotated_at: None,
        };
        match store
            .rotate_refresh_token(&old, &new, &grant, narrowed, now)
            .await
            .context("rotating the refresh token failed")?
        {
            RotateOutcome::Rotated => {}
            RotateOutcome::Lost => {
                tracing::warn!(
                    security_event = "refresh_token_race_lost",
                    "a concurrent request rotated this refresh token first"
                );
                return Err(RefreshError::InvalidGrant);
            }
            RotateOutcome::GrantGone => return Err(RefreshError::InvalidGrant),
            RotateOutcome::Conflict => return Err(RefreshError::Busy),
        }
        let minted = tokens
            .mint(&grant, (&scope, &resources), now)
            .context("signing the access token failed")?;
        tracing::info!(
            kid = minted.kid,
            id_token = minted.id_token.is_some(),
            "tokens refreshed"
        );
        Ok(IssuedToken::new(minted, Some(new_token)))
    })
    .await
}
