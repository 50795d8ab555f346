//! Grants and their refresh tokens: reading them together, rotating a refresh token, and
//! revoking a grant, each one request, each move one conditional write.

use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::item::{self, GRANT_KIND, Item, attr};
use super::listing::Partitions;
use super::table::{PARTITION_KEY, SORT_KEY};
use super::{Cancellation, Page, PageKey, Store, StoreError, cancellations};
use crate::domain::{
    ClientId, Grant, GrantId, GrantStatus, OAuthClient, RefreshRecord, RefreshTokenHash,
    RevokeReason, ScopeSet,
};
use crate::time::Timestamp;

/// How long a grant stays readable (for administrators) after it expired or was revoked,
/// before TTL may remove it.
pub const GRANT_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// What one strongly consistent `BatchGetItem` found: any of a client, a grant and a
/// refresh token's record.
#[derive(Debug, Default)]
pub struct Found {
    pub client: Option<OAuthClient>,
    pub grant: Option<Grant>,
    pub refresh: Option<RefreshRecord>,
}

/// The result of rotating a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is rotated, the new one stored, the grant renewed: this request, and
    /// only it, may issue tokens.
    Rotated,
    /// Another request rotated the old token first.
    Lost,
    /// The grant was revoked or expired in between.
    GrantGone,
    /// Concurrent transactions cancelled each other; nothing was written.
    Conflict,
}

/// The result of revoking a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    AlreadyRevoked,
    /// No such grant, or not the given owner's.
    NotFound,
    /// A transaction held the grant through every attempt; nothing was written.
    Busy,
}

/// Whose grant may be revoked.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// Anyone's (an administrator, the service itself).
    Any,
    /// Only this account's.
    Account(&'a str),
    /// Only one issued to this client.
    Client(&'a ClientId),
}

/// Which grants to list.
#[derive(Debug, Clone)]
pub enum GrantsOf {
    Account(String),
    Client(ClientId),
}

impl GrantsOf {
    /// The index partitions of this listing.
    fn partitions(&self) -> Partitions {
        match self {
            Self::Account(account) => Partitions::account_grants(account),
            Self::Client(client) => Partitions::client_grants(client),
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Store {
    /// Reads any of a client, a grant and a refresh token's record in one strongly
    /// consistent `BatchGetItem`.
    pub async fn find(
        &self,
        client: Option<&ClientId>,
        grant: Option<&GrantId>,
        refresh: Option<&RefreshTokenHash>,
    ) -> Result<Found, StoreError> {
        let mut keys: Vec<Item> = Vec::new();
        keys.extend(client.map(item::client_key));
        keys.extend(grant.map(item::grant_key));
        keys.extend(refresh.map(item::refresh_key));
        let mut found = Found::default();
        if keys.is_empty() {
            return Ok(found);
        }
        for found_item in self.get_items(keys, true).await? {
            match found_item
                .get(SORT_KEY)
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
            {
                Some(item::CLIENT_KIND) => {
                    found.client = Some(item::client_from_item(&found_item)?);
                }
                Some(GRANT_KIND) => found.grant = Some(item::grant_from_item(&found_item)?),
                Some(item::REFRESH_KIND) => {
                    found.refresh = Some(item::refresh_from_item(&found_item)?);
                }
                _ => return Err(StoreError::Corrupt(SORT_KEY)),
            }
        }
        Ok(found)
    }

    /// Reads a grant with a strongly consistent `GetItem`.
    pub async fn get_grant(&self, id: &GrantId) -> Result<Option<Grant>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::grant_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        output.item.as_ref().map(item::grant_from_item).transpose()
    }

    /// Rotates `old` into `new` for `grant`: one `TransactWriteItems` that marks the old
    /// token rotated (if no one else has), stores the new one, and renews the grant (if it
    /// is still active), narrowing its scope to `narrowed` when given. Exactly one of any
    /// number of concurrent rotations of one token gets `Rotated`.
    pub async fn rotate_refresh_token(
        &self,
        old: &RefreshRecord,
        new: &RefreshRecord,
        grant: &Grant,
        narrowed: Option<&ScopeSet>,
        now: Timestamp,
    ) -> Result<RotateOutcome, StoreError> {
        let expires_at = new.expires_at.max(now.plus(grant.access_token_lifetime));
        let rotate = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::refresh_key(&old.hash)))
            .update_expression("SET #rotated = :now")
            .condition_expression("attribute_not_exists(#rotated) AND #grant = :grant")
            .expression_attribute_names("#rotated", attr::ROTATED_AT)
            .expression_attribute_names("#grant", attr::GRANT_ID)
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":grant", s(grant.id.as_str()))
            .build()?;
        let store_new = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item::refresh_to_item(new, Duration::ZERO)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()?;
        let mut renew = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::grant_key(&grant.id)))
            .condition_expression("attribute_not_exists(#revoked) AND #expires > :now");
        let mut expression = "SET #used = :now, #expires = :expires, #ttl = :ttl".to_owned();
        match narrowed {
            None => {}
            Some(scope) if scope.is_empty() => {
                expression.push_str(" REMOVE #scope");
                renew = renew.expression_attribute_names("#scope", attr::SCOPE);
            }
            Some(scope) => {
                expression.push_str(", #scope = :scope");
                renew = renew
                    .expression_attribute_names("#scope", attr::SCOPE)
                    .expression_attribute_values(":scope", s(&scope.to_string()));
            }
        }
        let renew = renew
            .update_expression(expression)
            .expression_attribute_names("#used", attr::LAST_USED_AT)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_names("#revoked", attr::REVOKED_AT)
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":expires", n(expires_at.as_millis()))
            .expression_attribute_values(":ttl", n(item::ttl(expires_at, GRANT_RETENTION)))
            .build()?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(rotate).build())
            .transact_items(TransactWriteItem::builder().put(store_new).build())
            .transact_items(TransactWriteItem::builder().update(renew).build())
            .send()
            .await;
        let Err(error) = result else {
            return Ok(RotateOutcome::Rotated);
        };
        match error.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                let reasons = cancellations(&cancelled);
                if reasons.contains(&Cancellation::Conflict) {
                    Ok(RotateOutcome::Conflict)
                } else if reasons.first() == Some(&Cancellation::Condition) {
                    Ok(RotateOutcome::Lost)
                } else if reasons.get(2) == Some(&Cancellation::Condition) {
                    Ok(RotateOutcome::GrantGone)
                } else {
                    Err(StoreError::request(cancelled))
                }
            }
            other => Err(StoreError::request(other)),
        }
    }

    /// Revokes a grant, if it is `owner`'s and not revoked yet: one conditional
    /// `UpdateItem`. Its refresh tokens stop working at once (a refresh renews the grant
    /// only while it is unrevoked), and its access tokens are inactive at introspection.
    ///
    /// A refresh's transaction holding the grant at that moment makes the write fail with
    /// a conflict; it is tried again ([`super::retry_while_busy`]), and
    /// [`RevokeOutcome::Busy`] means it still could not be written: the caller must answer
    /// so that the request comes again, never as if the grant were ended.
    pub async fn revoke_grant(
        &self,
        id: &GrantId,
        owner: Owner<'_>,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<RevokeOutcome, StoreError> {
        Ok(
            super::retry_while_busy(|| self.revoke_grant_once(id, owner, reason, now))
                .await?
                .unwrap_or(RevokeOutcome::Busy),
        )
    }

    /// One attempt of [`Store::revoke_grant`]: `None` when a transaction held the grant.
    async fn revoke_grant_once(
        &self,
        id: &GrantId,
        owner: Owner<'_>,
        reason: RevokeReason,
        now: Timestamp,
    ) -> Result<Option<RevokeOutcome>, StoreError> {
        let mut condition = "attribute_exists(#pk) AND attribute_not_exists(#revoked)".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::grant_key(id)))
            .update_expression("SET #revoked = :now, #reason = :reason")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#revoked", attr::REVOKED_AT)
            .expression_attribute_names("#reason", attr::REVOKED_REASON)
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":reason", s(reason.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match owner {
            Owner::Any => {}
            Owner::Account(account) => {
                condition.push_str(" AND #owner = :owner");
                request = request
                    .expression_attribute_names("#owner", attr::ACCOUNT_ID)
                    .expression_attribute_values(":owner", s(account));
            }
            Owner::Client(client) => {
                condition.push_str(" AND #owner = :owner");
                request = request
                    .expression_attribute_names("#owner", attr::CLIENT_ID)
                    .expression_attribute_values(":owner", s(client.as_str()));
            }
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(Some(RevokeOutcome::Revoked)),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    let Some(grant) = failed.item().map(item::grant_from_item).transpose()? else {
                        return Ok(Some(RevokeOutcome::NotFound));
                    };
                    let owned = match owner {
                        Owner::Any => true,
                        Owner::Account(account) => grant.account_id == account,
                        Owner::Client(client) => &grant.client_id == client,
                    };
                    Ok(Some(if !owned {
                        RevokeOutcome::NotFound
                    } else {
                        RevokeOutcome::AlreadyRevoked
                    }))
                }
                UpdateItemError::TransactionConflictException(_) => Ok(None),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// One page of an account's or a client's grants, newest first: one `Query` of the
    /// listing index (by account) or 32 of the client index (by client, its shards), then
    /// one `BatchGetItem` per hundred grants. With `active_at`, only grants unrevoked and
    /// unexpired at that instant (filtered after the read: a page may hold fewer than
    /// `limit`).
    pub async fn list_grants(
        &self,
        of: &GrantsOf,
        active_at: Option<Timestamp>,
        limit: i32,
        start: Option<PageKey>,
    ) -> Result<Page<Grant>, StoreError> {
        let mut page = self
            .list_grant_items(&of.partitions(), limit, start)
            .await?;
        if let Some(now) = active_at {
            page.items
                .retain(|grant| grant.status(now) == GrantStatus::Active);
        }
        Ok(page)
    }
}
