//! The moves of a device authorization's life, each one conditional write that names
//! the state it starts from, so that of two racing requests exactly one wins.

use std::time::Duration;

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::item::{self, Item, attr};
use super::table::PARTITION_KEY;
use super::{Cancellation, GRANT_RETENTION, Store, StoreError, cancellations};
use crate::domain::{
    Approval, ClientId, DeviceAuthorization, DeviceAuthorizationId, DeviceState, Grant, GrantType,
    POLL_TOLERANCE, RefreshRecord, SLOW_DOWN_STEP, SecretHash, Status,
};
use crate::time::Timestamp;

/// The result of recording a poll.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per poll and consumed at once; boxing would add an allocation to the hot path"
)]
pub enum PollWrite {
    /// The record was pending, unexpired, the client's own and the interval had passed:
    /// the poll is recorded and the answer is `authorization_pending`.
    Recorded,
    /// The condition failed; this is the record as it was (`None`: no such record).
    /// [`crate::domain::decide_poll`] says what that means.
    Refused(Option<DeviceAuthorization>),
    /// A transaction was changing the record at that moment; nothing was written. The
    /// poll should be answered as pending, so that the device asks again.
    Busy,
}

/// The result of consuming an approved record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOutcome {
    /// This request consumed the record: it, and only it, may issue the token.
    Consumed,
    /// The record was no longer approved, unexpired and this client's: another request
    /// consumed it first, or it expired in between.
    Lost,
    /// The client has been deleted, or may no longer use the device grant.
    ClientGone,
    /// Concurrent transactions on the record cancelled each other (DynamoDB may cancel
    /// all of them). The record may still be approved: the device should ask again.
    Conflict,
}

/// The published key set as stored: its version, and when each of its key ids was first
/// published (see [`Store::publish_jwks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    pub version: u64,
    pub first_published: std::collections::BTreeMap<String, Timestamp>,
}

/// How the exchange of a device code makes sure the client may still have its token.
#[derive(Debug, Clone, Copy)]
pub enum ClientCheck<'a> {
    /// In the consuming transaction, against the client as stored at that moment (and,
    /// for a poll that authenticated, its secret): exact, but every login of a client
    /// then writes a condition check on that client's one item.
    InTransaction { secret_hash: Option<&'a SecretHash> },
    /// The caller checked the client itself, from a record read at most the client
    /// cache's lifetime ago (see [`Store::cached_client`]).
    Checked,
}

/// The result of approving or denying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    Decided,
    NotFound,
    Expired,
    /// Approved, denied or consumed before; `approved_by` the account whose approval
    /// stands, if it was approved.
    AlreadyDecided {
        approved_by: Option<String>,
    },
    /// A transaction was changing the record at that moment; nothing was written. Try
    /// again.
    Busy,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn old_record(item: Option<&Item>) -> Result<Option<DeviceAuthorization>, StoreError> {
    item.map(item::device_from_item).transpose()
}

impl Store {
    /// Records a poll by `client_id` if, and only if, it is on time: one conditional
    /// `UpdateItem` that checks ownership, state, expiry and the interval together, so
    /// that two concurrent polls cannot both pass. With `require_public`, the record must
    /// also have been issued to a public client (the poll did not authenticate).
    pub async fn record_poll(
        &self,
        id: &DeviceAuthorizationId,
        client_id: &ClientId,
        require_public: bool,
        now: Timestamp,
    ) -> Result<PollWrite, StoreError> {
        let base = now.as_millis().saturating_sub(ms(POLL_TOLERANCE));
        let mut condition = "#client = :client AND #status = :pending AND #expires > :now \
             AND (attribute_not_exists(#next) OR #next <= :now)"
            .to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::device_key(id)))
            .update_expression("SET #last = :now, #next = :base + #interval")
            .expression_attribute_names("#client", attr::CLIENT_ID)
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_names("#next", attr::NEXT_POLL_AT)
            .expression_attribute_names("#last", attr::LAST_POLLED_AT)
            .expression_attribute_names("#interval", attr::POLL_INTERVAL_MS)
            .expression_attribute_values(":client", s(client_id.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":base", n(base))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if require_public {
            condition.push_str(" AND #public = :true");
            request = request
                .expression_attribute_names("#public", attr::PUBLIC_CLIENT)
                .expression_attribute_values(":true", AttributeValue::Bool(true));
        }
        match request.condition_expression(condition).send().await {
            Ok(_) => Ok(PollWrite::Recorded),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(PollWrite::Refused(old_record(failed.item())?))
                }
                UpdateItemError::TransactionConflictException(_) => Ok(PollWrite::Busy),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Answers a too-early poll: the interval grows by [`SLOW_DOWN_STEP`] and the poll is
    /// recorded, conditional on the interval still being the one `record` shows, so that
    /// concurrent too-early polls grow it once. Returns the interval to announce.
    pub async fn slow_down(
        &self,
        record: &DeviceAuthorization,
        now: Timestamp,
    ) -> Result<Duration, StoreError> {
        let base = now.as_millis().saturating_sub(ms(POLL_TOLERANCE)) + ms(SLOW_DOWN_STEP);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::device_key(&record.id)))
            .update_expression(
                "SET #interval = #interval + :step, #last = :now, #next = :base + #interval",
            )
            .condition_expression("#status = :pending AND #interval = :seen")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#interval", attr::POLL_INTERVAL_MS)
            .expression_attribute_names("#last", attr::LAST_POLLED_AT)
            .expression_attribute_names("#next", attr::NEXT_POLL_AT)
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":seen", n(ms(record.interval)))
            .expression_attribute_values(":step", n(ms(SLOW_DOWN_STEP)))
            .expression_attribute_values(":now", n(now.as_millis()))
            .expression_attribute_values(":base", n(base))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let interval_of = |item: Option<&Item>| {
            item.and_then(|i| i.get(attr::POLL_INTERVAL_MS))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
                .ok_or(StoreError::Corrupt(attr::POLL_INTERVAL_MS))
        };
        match result {
            Ok(output) => interval_of(output.attributes()),
            Err(error) => match error.into_service_error() {
                // Another too-early poll grew it first: announce the interval it set.
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    interval_of(failed.item())
                }
                // The record is being consumed or decided: the interval it showed stands.
                UpdateItemError::TransactionConflictException(_) => Ok(record.interval),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Consumes an approved record for its client: one `TransactWriteItems` that moves
    /// `approved -> consumed` (unexpired, same client) and writes the login's grant and
    /// its first refresh token, if any. With [`ClientCheck::InTransaction`] it also
    /// checks that the client, as stored at that moment, exists and may use the device
    /// grant (and, for a poll that authenticated with a secret, still has that secret).
    /// Exactly one of any number of concurrent calls gets `Consumed`; the others write
    /// nothing.
    pub async fn consume(
        &self,
        record: &DeviceAuthorization,
        grant: &Grant,
        refresh: Option<&RefreshRecord>,
        check: ClientCheck<'_>,
        now: Timestamp,
    ) -> Result<ConsumeOutcome, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::device_key(&record.id)))
            .update_expression(
                "SET #status = :consumed, #consumed = :now, #last = :now, #grant = :grant",
            )
            .expression_attribute_names("#grant", attr::GRANT_ID)
            .expression_attribute_values(":grant", s(grant.id.as_str()))
            .condition_expression("#status = :approved AND #client = :client AND #expires > :now")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#consumed", attr::CONSUMED_AT)
            .expression_attribute_names("#last", attr::LAST_POLLED_AT)
            .expression_attribute_names("#client", attr::CLIENT_ID)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":consumed", s(Status::Consumed.as_str()))
            .expression_attribute_values(":approved", s(Status::Approved.as_str()))
            .expression_attribute_values(":client", s(record.client_id.as_str()))
            .expression_attribute_values(":now", n(now.as_millis()))
            .build()?;
        let client_allowed = match check {
            ClientCheck::InTransaction { secret_hash } => {
                // The client exists, is the incarnation that issued the code, is not being
                // deleted, may use the grant, and (if the poll authenticated) has the
                // secret it authenticated with.
                let mut expression = "attribute_exists(#pk) AND contains(#grants, :grant) \
                     AND attribute_not_exists(#deleting)"
                    .to_owned();
                let mut condition = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(item::client_key(&record.client_id)))
                    .expression_attribute_names("#pk", PARTITION_KEY)
                    .expression_attribute_names("#grants", attr::ALLOWED_GRANTS)
                    .expression_attribute_names("#deleting", attr::DELETING_AT)
                    .expression_attribute_names("#generation", attr::GENERATION)
                    .expression_attribute_values(":grant", s(GrantType::DeviceCode.as_str()));
                if record.client_generation.is_empty() {
                    expression.push_str(" AND attribute_not_exists(#generation)");
                } else {
                    expression.push_str(" AND #generation = :generation");
                    condition = condition.expression_attribute_values(
                        ":generation",
                        s(record.client_generation.as_str()),
                    );
                }
                if let Some(hash) = secret_hash {
                    expression.push_str(" AND #secret = :secret");
                    condition = condition
                        .expression_attribute_names("#secret", attr::SECRET_HASH)
                        .expression_attribute_values(":secret", s(hash.as_str()));
                }
                Some(condition.condition_expression(expression).build()?)
            }
            ClientCheck::Checked => None,
        };
        let new_item = |item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .build()
        };
        let client_checked = client_allowed.is_some();
        let mut request = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build());
        if let Some(condition) = client_allowed {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .condition_check(condition)
                    .build(),
            );
        }
        request = request.transact_items(
            TransactWriteItem::builder()
                .put(new_item(item::grant_to_item(grant, GRANT_RETENTION))?)
                .build(),
        );
        if let Some(refresh) = refresh {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(new_item(item::refresh_to_item(refresh, Duration::ZERO))?)
                    .build(),
            );
        }
        let result = request.send().await;
        let Err(error) = result else {
            return Ok(ConsumeOutcome::Consumed);
        };
        match error.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                let reasons = cancellations(&cancelled);
                if reasons.contains(&Cancellation::Conflict) {
                    Ok(ConsumeOutcome::Conflict)
                } else if reasons.first() == Some(&Cancellation::Condition) {
                    Ok(ConsumeOutcome::Lost)
                } else if client_checked && reasons.get(1) == Some(&Cancellation::Condition) {
                    Ok(ConsumeOutcome::ClientGone)
                } else {
                    Err(StoreError::request(cancelled))
                }
            }
            other => Err(StoreError::request(other)),
        }
    }

    /// Moves `pending -> approved`, recording who approved and when.
    pub async fn approve(
        &self,
        id: &DeviceAuthorizationId,
        approval: &Approval,
        now: Timestamp,
    ) -> Result<DecideOutcome, StoreError> {
        let mut expression = "SET #status = :new, #by = :by, #at = :now".to_owned();
        let mut request = self
            .client
            .update_item()
            .expression_attribute_names("#by", attr::APPROVED_BY)
            .expression_attribute_names("#at", attr::APPROVED_AT)
            .expression_attribute_values(":new", s(Status::Approved.as_str()))
            .expression_attribute_values(":by", s(&approval.account_id));
        if let Some(session) = &approval.session_id {
            expression.push_str(", #session = :session");
            request = request
                .expression_attribute_names("#session", attr::SESSION_ID)
                .expression_attribute_values(":session", s(session));
        }
        if let Some(profile) = approval.profile.to_stored() {
            expression.push_str(", #profile = :profile");
            request = request
                .expression_attribute_names("#profile", attr::PROFILE)
                .expression_attribute_values(":profile", s(&profile));
        }
        let request = request.update_expression(expression);
        self.decide_pending(request, id, now).await
    }

    /// Moves `pending -> denied`.
    pub async fn deny(
        &self,
        id: &DeviceAuthorizationId,
        now: Timestamp,
    ) -> Result<DecideOutcome, StoreError> {
        let request = self
            .client
            .update_item()
            .update_expression("SET #status = :new, #at = :now")
            .expression_attribute_names("#at", attr::DENIED_AT)
            .expression_attribute_values(":new", s(Status::Denied.as_str()));
        self.decide_pending(request, id, now).await
    }

    /// Moves `pending -> denied` or `approved -> denied` (the client is gone, so the
    /// code must never be exchanged). Returns whether this call moved it.
    ///
    /// A transaction on the record at that moment (an exchange) ends within
    /// milliseconds, so a conflict is tried again ([`super::retry_while_busy`]):
    /// afterwards the record is consumed (and its grant revoked by the client's
    /// deletion) or still approved (and withdrawn now), never left exchangeable.
    pub async fn withdraw(
        &self,
        id: &DeviceAuthorizationId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        super::retry_while_busy(|| self.withdraw_once(id, now))
            .await?
            .ok_or(StoreError::Busy)
    }

    /// One attempt of [`Store::withdraw`]: `None` when a transaction was on the record.
    async fn withdraw_once(
        &self,
        id: &DeviceAuthorizationId,
        now: Timestamp,
    ) -> Result<Option<bool>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::device_key(id)))
            .update_expression("SET #status = :denied, #at = :now")
            .condition_expression("#status IN (:pending, :approved) AND #expires > :now")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#at", attr::DENIED_AT)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":denied", s(Status::Denied.as_str()))
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":approved", s(Status::Approved.as_str()))
            .expression_attribute_values(":now", n(now.as_millis()))
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

    /// Sends a decision update conditional on the record being pending and unexpired,
    /// and explains a refusal from the record as it was.
    async fn decide_pending(
        &self,
        request: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
        id: &DeviceAuthorizationId,
        now: Timestamp,
    ) -> Result<DecideOutcome, StoreError> {
        let result = request
            .table_name(&self.table)
            .set_key(Some(item::device_key(id)))
            .condition_expression("#status = :pending AND #expires > :now")
            .expression_attribute_names("#status", attr::STATUS)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":pending", s(Status::Pending.as_str()))
            .expression_attribute_values(":now", n(now.as_millis()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(DecideOutcome::Decided),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    Ok(match old_record(failed.item())? {
                        None => DecideOutcome::NotFound,
                        Some(r) if r.state != DeviceState::Pending => {
                            DecideOutcome::AlreadyDecided {
                                approved_by: match r.state {
                                    DeviceState::Approved(approval)
                                    | DeviceState::Consumed { approval, .. } => {
                                        Some(approval.account_id)
                                    }
                                    _ => None,
                                },
                            }
                        }
                        Some(_) => DecideOutcome::Expired,
                    })
                }
                UpdateItemError::TransactionConflictException(_) => Ok(DecideOutcome::Busy),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Publishes the public signing keys (a JWKS document) of key set `version`, whose key
    /// ids are `kids`, unless that version or a newer one is published already; returns
    /// the set as published now (a stale instance never rolls it back).
    ///
    /// The item keeps when each key id was first published, so that a new key signs only
    /// once every cache of the older set has expired: a key id the published set already
    /// had keeps its time, a new one gets `now`, and every key of the very first
    /// publication gets 0 (nobody can have cached a set before it). A strongly consistent
    /// `GetItem`, then a `PutItem` conditional on the version read (tried again when
    /// another instance published in between).
    pub async fn publish_jwks(
        &self,
        jwks: &str,
        version: u64,
        kids: &[&str],
        now: Timestamp,
    ) -> Result<PublishedKeys, StoreError> {
        for _ in 0..3 {
            let current = self.published_keys().await?;
            if let Some(current) = &current
                && (current.version > version
                    || (current.version == version && !current.first_published.is_empty()))
            {
                return Ok(current.clone());
            }
            let first_published = kids
                .iter()
                .map(|kid| {
                    let at = match &current {
                        None => Timestamp::from_millis(0),
                        Some(c) if c.first_published.is_empty() => Timestamp::from_millis(0),
                        Some(c) => c.first_published.get(*kid).copied().unwrap_or(now),
                    };
                    ((*kid).to_owned(), at)
                })
                .collect();
            let request = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item::jwks_item(jwks, version, &first_published)));
            let request = match &current {
                None => request
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PARTITION_KEY),
                Some(current) => request
                    .condition_expression("#version = :seen")
                    .expression_attribute_names("#version", attr::VERSION)
                    .expression_attribute_values(":seen", n(current.version)),
            };
            match request.send().await {
                Ok(_) => {
                    return Ok(PublishedKeys {
                        version,
                        first_published,
                    });
                }
                Err(error) => match error.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(_) => continue,
                    other => return Err(StoreError::request(other)),
                },
            }
        }
        Err(StoreError::Busy)
    }

    /// The published key set's version and publication times (strongly consistent).
    pub async fn published_keys(&self) -> Result<Option<PublishedKeys>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::jwks_key()))
            .consistent_read(true)
            .projection_expression("#version, #published")
            .expression_attribute_names("#version", attr::VERSION)
            .expression_attribute_names("#published", attr::PUBLISHED_AT)
            .send()
            .await
            .map_err(StoreError::request)?;
        output
            .item
            .as_ref()
            .map(|found| {
                let (version, first_published) = item::published_from_item(found)?;
                Ok(PublishedKeys {
                    version,
                    first_published,
                })
            })
            .transpose()
    }

    /// The published JWKS document, if any (eventually consistent).
    pub async fn get_jwks(&self) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::jwks_key()))
            .send()
            .await
            .map_err(StoreError::request)?;
        Ok(output
            .item
            .and_then(|mut i| i.remove(attr::JWKS))
            .and_then(|v| v.as_s().ok().cloned()))
    }
}
