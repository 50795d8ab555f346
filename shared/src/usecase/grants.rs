//! Signed-in devices: a user lists and revokes their own grants ("sign out that TV"); an
//! administrator lists any account's or client's grants and revokes any of them.
//!
//! DynamoDB cost: a user's list is one `Query` of the listing index per 100 grants read
//! (their account's own partition); an administrator's page is one `Query` of the listing
//! index (by account) or the client index (by client); a revocation is one conditional
//! `UpdateItem`.

use super::page_token::InvalidPageToken;
use super::{Context as _, Internal, ListPage, Outcome, PageSize, PageTokens, in_span};
use crate::domain::{ClientId, Grant, GrantId, RevokeReason};
use crate::store::{GrantsOf, Owner, Page, RevokeOutcome, Store};
use crate::time::Clock;
use crate::user_auth::{Administrator, User};

pub const LIST_MINE: &str = "list_my_grants";
pub const REVOKE_MINE: &str = "revoke_my_grant";
pub const LIST: &str = "list_grants";
pub const REVOKE: &str = "revoke_grant";

/// The most grants a user's list shows (their newest active ones).
pub const MAX_OWN_GRANTS: usize = 100;
/// The most index pages a user's list reads to find them.
const MAX_OWN_PAGES: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// No such grant, or not the caller's: one answer, so that ids tell nothing.
    #[error("no such grant")]
    NotFound,
    /// Neither `client_id` nor `account_id` was given (listing everyone's would need a
    /// scan or a hot index partition).
    #[error("filter by client_id or account_id")]
    FilterRequired,
    #[error(transparent)]
    InvalidPageToken(#[from] InvalidPageToken),
    #[error("the grant is being changed, try again")]
    Busy,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for GrantError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::FilterRequired => "filter_required",
            Self::InvalidPageToken(_) => "invalid_page_token",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }
}

/// The caller's active grants, newest first: at most [`MAX_OWN_GRANTS`].
pub async fn list_my_grants(
    store: &Store,
    clock: &dyn Clock,
    user: &User,
) -> Result<Vec<Grant>, GrantError> {
    let span = tracing::info_span!(
        "list_my_grants",
        account_id = %user.account_id,
        outcome = tracing::field::Empty,
    );
    in_span(LIST_MINE, span, async {
        let of = GrantsOf::Account(user.account_id.clone());
        let now = clock.now();
        let mut grants = Vec::new();
        let mut start = None;
        for _ in 0..MAX_OWN_PAGES {
            let Page { items, next } = store
                .list_grants(&of, Some(now), 100, start)
                .await
                .context("listing the account's grants failed")?;
            grants.extend(items);
            start = next;
            if start.is_none() || grants.len() >= MAX_OWN_GRANTS {
                break;
            }
        }
        grants.truncate(MAX_OWN_GRANTS);
        Ok(grants)
    })
    .await
}

/// Revokes one of the caller's grants. Another account's grant, an unknown id and an
/// already revoked grant are all "not found".
pub async fn revoke_my_grant(
    store: &Store,
    clock: &dyn Clock,
    user: &User,
    id: Option<GrantId>,
) -> Result<(), GrantError> {
    let span = tracing::info_span!(
        "revoke_my_grant",
        account_id = %user.account_id,
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(REVOKE_MINE, span, async {
        let id = id.ok_or(GrantError::NotFound)?;
        tracing::Span::current().record("grant_id", id.as_str());
        match store
            .revoke_grant(
                &id,
                Owner::Account(&user.account_id),
                RevokeReason::User,
                clock.now(),
            )
            .await
            .context("revoking the grant failed")?
        {
            RevokeOutcome::Revoked => Ok(()),
            RevokeOutcome::AlreadyRevoked | RevokeOutcome::NotFound => Err(GrantError::NotFound),
            RevokeOutcome::Busy => Err(GrantError::Busy),
        }
    })
    .await
}

/// Which page of whose grants an administrator asks for.
#[derive(Debug, Clone, Default)]
pub struct GrantListQuery {
    pub account_id: Option<String>,
    pub client_id: Option<ClientId>,
    pub size: Option<PageSize>,
    pub page_token: Option<String>,
}

/// One page of an account's grants (with `client_id` too: only that client's, filtered
/// by the caller) or a client's grants, newest first, whatever their status.
pub async fn list_grants(
    store: &Store,
    tokens: &PageTokens,
    admin: &Administrator,
    query: GrantListQuery,
) -> Result<ListPage<Grant>, GrantError> {
    let span = tracing::info_span!(
        "list_grants",
        admin = %admin.account_id,
        outcome = tracing::field::Empty,
    );
    in_span(LIST, span, async {
        let of = match (&query.account_id, &query.client_id) {
            (Some(account), _) => GrantsOf::Account(account.clone()),
            (None, Some(client)) => GrantsOf::Client(client.clone()),
            (None, None) => return Err(GrantError::FilterRequired),
        };
        let scope = format!(
            "grants:{}:{}",
            query.account_id.as_deref().unwrap_or(""),
            query.client_id.as_ref().map_or("", ClientId::as_str)
        );
        let start = query
            .page_token
            .map(|token| tokens.open(&scope, &token))
            .transpose()?;
        let size = query.size.unwrap_or(PageSize::DEFAULT).get();
        let Page { mut items, next } = store
            .list_grants(&of, None, size, start)
            .await
            .context("listing grants failed")?;
        if let (Some(_), Some(client)) = (&query.account_id, &query.client_id) {
            items.retain(|grant| &grant.client_id == client);
        }
        Ok(ListPage {
            items,
            next_page_token: next.and_then(|key| tokens.sign(&scope, &key)),
        })
    })
    .await
}

/// Revokes any grant. An unknown id is "not found"; an already revoked one succeeds.
pub async fn revoke_grant(
    store: &Store,
    clock: &dyn Clock,
    admin: &Administrator,
    id: Option<GrantId>,
) -> Result<(), GrantError> {
    let span = tracing::info_span!(
        "revoke_grant",
        admin = %admin.account_id,
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(REVOKE, span, async {
        let id = id.ok_or(GrantError::NotFound)?;
        tracing::Span::current().record("grant_id", id.as_str());
        match store
            .revoke_grant(&id, Owner::Any, RevokeReason::Administrator, clock.now())
            .await
            .context("revoking the grant failed")?
        {
            RevokeOutcome::Revoked | RevokeOutcome::AlreadyRevoked => Ok(()),
            RevokeOutcome::NotFound => Err(GrantError::NotFound),
            RevokeOutcome::Busy => Err(GrantError::Busy),
        }
    })
    .await
}
