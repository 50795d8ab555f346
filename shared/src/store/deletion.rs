//! A client's deletion, in bounded steps: the mark on the client item, one page of its
//! codes or grants at a time, the progress saved on the client item after each step, the
//! last sweep, and the client item removed last. Every write is conditional, so two
//! `DELETE`s running at once repeat work at worst, never undo it.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::item::{self, attr};
use super::listing::{Partitions, bounded};
use super::table::PARTITION_KEY;
use super::{RevokeOutcome, Store, StoreError};
use crate::domain::{
    ClientId, Deletion, DeletionPhase, DeviceAuthorizationId, GrantId, GrantStatus, OAuthClient,
    RevokeReason, Status,
};
use crate::store::Owner;
use crate::time::Timestamp;

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// What one step did, and where the listing continues (`None`: the phase is done).
#[derive(Debug)]
pub struct Step {
    pub done: u64,
    pub next: Option<String>,
}

impl Store {
    /// Marks `client` (as read, `updated_at` unchanged since) as being deleted: one
    /// conditional `UpdateItem`. From this write on it authenticates nowhere and may use
    /// no grant (within the client cache's bound). `None`: it changed, is already being
    /// deleted or is gone since it was read; read it again. A code exchange's transaction
    /// checking the client at that moment makes the write wait and try again
    /// ([`super::retry_while_busy`]); still held: [`StoreError::Busy`].
    pub async fn mark_client_deleting(
        &self,
        client: &OAuthClient,
        now: Timestamp,
    ) -> Result<Option<OAuthClient>, StoreError> {
        super::retry_while_busy(|| self.mark_once(client, now))
            .await?
            .ok_or(StoreError::Busy)
    }

    async fn mark_once(
        &self,
        client: &OAuthClient,
        now: Timestamp,
    ) -> Result<Option<Option<OAuthClient>>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::client_key(&client.id)))
            .update_expression(
                "SET #deleting = :now, #phase = :phase, #codes = :zero, #grants = :zero",
            )
            .condition_expression(
                "attribute_exists(#pk) AND attribute_not_exists(#deleting) AND #updated = :seen",
            )
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#deleting", attr::DELETING_AT)
            .expression_attribute_names("#phase", attr::DELETION_PHASE)
            .expression_attribute_names("#codes", attr::CODES_WITHDRAWN)
            .expression_attribute_names("#grants", attr::GRANTS_REVOKED)
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":phase", s(DeletionPhase::Codes.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":seen", n(client.updated_at.as_millis()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(
                output
                    .attributes
                    .as_ref()
                    .map(item::client_from_item)
                    .transpose()?,
            )),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(Some(None)),
                UpdateItemError::TransactionConflictException(_) => Ok(None),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Saves the progress of a deletion, provided no other request saved any since
    /// `before` was read. `false`: another `DELETE` got further (or finished); read again.
    /// Tried again while a transaction holds the client item.
    pub async fn save_deletion(
        &self,
        id: &ClientId,
        before: &Deletion,
        after: &Deletion,
    ) -> Result<bool, StoreError> {
        super::retry_while_busy(|| self.save_once(id, before, after))
            .await?
            .ok_or(StoreError::Busy)
    }

    async fn save_once(
        &self,
        id: &ClientId,
        before: &Deletion,
        after: &Deletion,
    ) -> Result<Option<bool>, StoreError> {
        let mut condition = "#deleting = :started AND #phase = :before_phase".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::client_key(id)))
            .expression_attribute_names("#deleting", attr::DELETING_AT)
            .expression_attribute_names("#phase", attr::DELETION_PHASE)
            .expression_attribute_names("#cursor", attr::DELETION_CURSOR)
            .expression_attribute_names("#codes", attr::CODES_WITHDRAWN)
            .expression_attribute_names("#grants", attr::GRANTS_REVOKED)
            .expression_attribute_values(":started", n(before.started_at.as_millis()))
            .expression_attribute_values(":before_phase", s(before.phase.as_str()))
            .expression_attribute_values(":phase", s(after.phase.as_str()))
            .expression_attribute_values(":codes", n(after.codes_withdrawn))
            .expression_attribute_values(":grants", n(after.grants_revoked));
        match &before.cursor {
            Some(cursor) => {
                condition.push_str(" AND #cursor = :before_cursor");
                request = request.expression_attribute_values(":before_cursor", s(cursor));
            }
            None => condition.push_str(" AND attribute_not_exists(#cursor)"),
        }
        let expression = match &after.cursor {
            Some(cursor) => {
                request = request.expression_attribute_values(":cursor", s(cursor));
                "SET #phase = :phase, #codes = :codes, #grants = :grants, #cursor = :cursor"
            }
            None => "SET #phase = :phase, #codes = :codes, #grants = :grants REMOVE #cursor",
        };
        let result = request
            .update_expression(expression)
            .condition_expression(condition)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(true)),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(Some(false)),
                UpdateItemError::TransactionConflictException(_) => Ok(None),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Removes the client item of a finished deletion (the one that started at
    /// `started_at`). `false`: it is gone already.
    pub async fn remove_deleted_client(
        &self,
        id: &ClientId,
        started_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item::client_key(id)))
            .condition_expression("#deleting = :started")
            .expression_attribute_names("#deleting", attr::DELETING_AT)
            .expression_attribute_values(":started", n(started_at.as_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.into_service_error() {
                DeleteItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// One step of withdrawing a client's live codes: up to `limit` records of its part of
    /// the client index, shard after shard, from where `cursor` stopped, none created
    /// before `since` (older ones have expired). Each pending or approved one is
    /// denied ([`Store::withdraw`], conditional).
    pub async fn withdraw_codes_step(
        &self,
        client_id: &ClientId,
        since: Timestamp,
        cursor: Option<&str>,
        limit: i32,
        now: Timestamp,
    ) -> Result<Step, StoreError> {
        let partitions = Partitions::client_devices(client_id);
        let (keys, next) = self
            .shard_step(&partitions, cursor, Some(since), limit)
            .await?;
        let mut live = Vec::new();
        for found in self.get_items(keys, false).await? {
            let record = item::device_from_item(&found)?;
            if matches!(record.status(now), Status::Pending | Status::Approved) {
                live.push(record.id);
            }
        }
        Ok(Step {
            done: self.withdraw_all(live, now).await?,
            next,
        })
    }

    /// One step of revoking a client's grants: up to `limit` of its part of the client
    /// index, shard after shard, from where `cursor` stopped; each active one is
    /// revoked (conditional, tried again while a refresh holds it; still held:
    /// [`StoreError::Busy`], and the step is repeated).
    pub async fn revoke_grants_step(
        &self,
        client_id: &ClientId,
        cursor: Option<&str>,
        limit: i32,
        now: Timestamp,
    ) -> Result<Step, StoreError> {
        let partitions = Partitions::client_grants(client_id);
        let (keys, next) = self.shard_step(&partitions, cursor, None, limit).await?;
        let mut active = Vec::new();
        for found in self.get_items(keys, false).await? {
            let grant = item::grant_from_item(&found)?;
            if grant.status(now) == GrantStatus::Active {
                active.push(grant.id);
            }
        }
        Ok(Step {
            done: self.revoke_all(active, now).await?,
            next,
        })
    }

    /// The keys of one step through a client's shards: up to `limit` of them, one shard
    /// after another (a `Query` each, at most one per shard), and the cursor after them
    /// (`None`: the last shard is done). A cursor is `<shard>` (that shard from its
    /// start) or `<shard>/<sort key>` (that shard after that key). Oldest first within a
    /// shard, so a record written into the shard under way is still ahead; one written
    /// into a shard already passed (by a request that read the client before the mark) is
    /// the last sweep's.
    async fn shard_step(
        &self,
        partitions: &Partitions,
        cursor: Option<&str>,
        since: Option<Timestamp>,
        limit: i32,
    ) -> Result<(Vec<super::item::Item>, Option<String>), StoreError> {
        let (mut shard, mut after) = match cursor {
            None => (0, None),
            Some(cursor) => {
                let (shard, after) = match cursor.split_once('/') {
                    Some((shard, after)) => (shard, Some(after.to_owned())),
                    None => (cursor, None),
                };
                let shard = shard
                    .parse::<usize>()
                    .map_err(|_| StoreError::Corrupt(attr::DELETION_CURSOR))?;
                (shard, after)
            }
        };
        let mut keys = Vec::new();
        while shard < partitions.len() {
            let room = limit - i32::try_from(keys.len()).unwrap_or(i32::MAX);
            let (found, more) = self
                .keys_after(partitions, shard, after.as_deref(), since, room)
                .await?;
            let last = found.last().map(|(sort_key, _)| sort_key.clone());
            keys.extend(found.into_iter().map(|(_, key)| key));
            if more {
                after = last.or(after);
            } else {
                shard += 1;
                after = None;
            }
            if i32::try_from(keys.len()).unwrap_or(i32::MAX) >= limit {
                break;
            }
        }
        let next = (shard < partitions.len()).then(|| match after {
            Some(after) => format!("{shard}/{after}"),
            None => shard.to_string(),
        });
        Ok((keys, next))
    }

    /// The last sweep: every code and grant of the client created since `since`, which
    /// the paged steps may have passed before they were written (a request that read the
    /// client before the mark). Returns how many codes and grants it ended.
    pub async fn sweep_client_since(
        &self,
        client_id: &ClientId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        let keys = self
            .keys_since(&Partitions::client_devices(client_id), since)
            .await?;
        let mut live = Vec::new();
        for found in self.get_items(keys, true).await? {
            let record = item::device_from_item(&found)?;
            if matches!(record.status(now), Status::Pending | Status::Approved) {
                live.push(record.id);
            }
        }
        let keys = self
            .keys_since(&Partitions::client_grants(client_id), since)
            .await?;
        let mut active = Vec::new();
        for found in self.get_items(keys, true).await? {
            let grant = item::grant_from_item(&found)?;
            if grant.status(now) == GrantStatus::Active {
                active.push(grant.id);
            }
        }
        Ok((
            self.withdraw_all(live, now).await?,
            self.revoke_all(active, now).await?,
        ))
    }

    /// Withdraws these codes, a few at a time; how many this call moved.
    async fn withdraw_all(
        &self,
        ids: Vec<DeviceAuthorizationId>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let tasks = ids
            .into_iter()
            .map(|id| {
                let store = self.clone();
                async move { store.withdraw(&id, now).await }
            })
            .collect();
        Ok(bounded(tasks)
            .await?
            .into_iter()
            .filter(|moved| *moved)
            .count() as u64)
    }

    /// Revokes these grants of a deleted client, a few at a time; how many this call
    /// revoked. One still held by a refresh through every attempt fails the call
    /// ([`StoreError::Busy`]), so that the step is repeated.
    async fn revoke_all(&self, ids: Vec<GrantId>, now: Timestamp) -> Result<u64, StoreError> {
        let tasks = ids
            .into_iter()
            .map(|id| {
                let store = self.clone();
                async move {
                    match store
                        .revoke_grant(&id, Owner::Any, RevokeReason::ClientDeleted, now)
                        .await?
                    {
                        RevokeOutcome::Revoked => Ok(true),
                        RevokeOutcome::AlreadyRevoked | RevokeOutcome::NotFound => Ok(false),
                        RevokeOutcome::Busy => Err(StoreError::Busy),
                    }
                }
            })
            .collect();
        Ok(bounded(tasks)
            .await?
            .into_iter()
            .filter(|done| *done)
            .count() as u64)
    }
}
