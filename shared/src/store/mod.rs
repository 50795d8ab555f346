//! The DynamoDB store: thin, typed operations over the one table.
//!
//! Every state change is a conditional write naming the state it starts from; a lost
//! condition comes back as a typed outcome, never as a string to match.

mod deletion;
mod grants;
pub mod item;
mod listing;
mod lookup;
pub mod table;
mod transitions;

pub use deletion::Step;
pub use grants::{Found, GRANT_RETENTION, GrantsOf, Owner, RevokeOutcome, RotateOutcome};
pub use listing::{DeviceFilter, Page, PageKey};
pub use lookup::{Budget, Requester, Window};
pub use table::{CLIENT_INDEX, INDEX_SHARDS, LIST_INDEX, TTL_ATTRIBUTE, create_table};
pub use transitions::{ClientCheck, ConsumeOutcome, DecideOutcome, PollWrite, PublishedKeys};

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use crate::domain::{
    ClientId, DeviceAuthorization, DeviceAuthorizationId, GrantId, OAuthClient, RefreshTokenHash,
    UserCode,
};
use crate::time::Timestamp;
use item::attr;
use table::PARTITION_KEY;

/// A failure to talk to the store, or an item the code cannot read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB request failed ({fault:?})")]
    Request {
        fault: Fault,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("a stored item has a missing or malformed attribute `{0}`")]
    Corrupt(&'static str),
    #[error("building a DynamoDB request failed")]
    Build(#[from] BuildError),
    /// A batch read left keys unprocessed after its retries (throttling inside the batch).
    #[error("a batch read left keys unprocessed")]
    Unprocessed,
    /// An item stayed inside other requests' transactions through every retry.
    #[error("an item stayed busy in a transaction")]
    Busy,
}

/// What kind of failure a store error is, for the answer the caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB throttled the request (after the SDK's retries): the caller should slow
    /// down and try again.
    Throttled,
    /// A passing failure (a 5xx, a timeout, a dropped connection): try again soon.
    Unavailable,
    /// Anything else: a bug or a misconfiguration, not worth retrying.
    Other,
}

/// The AWS SDK's settings for every function: at most 3 attempts per request, backing off
/// from 25 ms to at most 400 ms, an attempt timing out after 600 ms and a request (with its
/// retries) after 1.5 s. The longest request chain, a look-up that finds its code (6
/// requests), thus ends within 9 s, inside the functions' 10-second timeout, and every
/// store failure reaches the caller as an answer, never as a Lambda timeout.
///
/// Credentials and region come from the environment only (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`), which is where Lambda puts
/// the function role's credentials and its region, and where `make run` and the tests put
/// theirs. The SDK's default chains (profile files, SSO, web identity, container and
/// instance metadata) would find the same values there after probing, and cost their code
/// in every binary. Stalled-stream protection is off: every body is a few kilobytes of
/// JSON read at once, and the attempt timeout already bounds a stalled answer.
pub async fn load_aws_config() -> aws_config::SdkConfig {
    use aws_config::environment::{
        EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
    };
    use aws_config::retry::RetryConfig;
    use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
    use aws_config::timeout::TimeoutConfig;
    use std::time::Duration;
    aws_config::from_env()
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .region(EnvironmentVariableRegionProvider::new())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(25))
                .with_max_backoff(Duration::from_millis(400)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(500))
                .operation_attempt_timeout(Duration::from_millis(600))
                .operation_timeout(Duration::from_millis(1500))
                .build(),
        )
        .load()
        .await
}

/// DynamoDB's throttling error codes.
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
];

impl StoreError {
    /// A failed request, classified by its error code (no code at all: the request never
    /// got an answer, a timeout or a dropped connection).
    pub fn request(
        error: impl StdError + aws_sdk_dynamodb::error::ProvideErrorMetadata + Send + Sync + 'static,
    ) -> Self {
        let fault = match error.code() {
            Some(code) if THROTTLING.contains(&code) => Fault::Throttled,
            // A transaction held the item (`TransactionConflictException` on a single-item
            // write): passing, like a cancelled transaction. The writes that end something
            // wait it out themselves (`retry_while_busy`); any other answers 503, not 500.
            Some(
                "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionCanceledException"
                | "TransactionConflictException",
            )
            | None => Fault::Unavailable,
            Some(_) => Fault::Other,
        };
        Self::Request {
            fault,
            source: Box::new(error),
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            Self::Request { fault, .. } => *fault,
            Self::Unprocessed => Fault::Throttled,
            Self::Busy => Fault::Unavailable,
            Self::Corrupt(_) | Self::Build(_) => Fault::Other,
        }
    }
}

/// How many times a write that ends something (revoking a grant, withdrawing a code) is
/// tried while another request's transaction holds its item.
pub const BUSY_ATTEMPTS: u32 = 4;

/// Runs `attempt` until it answers other than `None` (a transaction held the item, nothing
/// was written), at most [`BUSY_ATTEMPTS`] times, waiting 40, 80 and 160 ms in between:
/// a refresh's or an exchange's transaction ends within milliseconds, so a revocation
/// that meets one wins soon after. `Ok(None)`: still busy after every attempt; the caller
/// answers so that the request is made again (never "done").
pub(crate) async fn retry_while_busy<T, Fut>(
    mut attempt: impl FnMut() -> Fut,
) -> Result<Option<T>, StoreError>
where
    Fut: Future<Output = Result<Option<T>, StoreError>>,
{
    for tried in 1..=BUSY_ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(Some(done));
        }
        if tried < BUSY_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(20 << tried)).await;
        }
    }
    Ok(None)
}

/// Why a new device authorization was not written.
#[derive(Debug, thiserror::Error)]
pub enum CreateDeviceError {
    /// Another live record holds this user code (or is claiming it at this moment).
    /// Nothing was written; draw another code.
    #[error("the user code is taken")]
    UserCodeTaken,
    /// A record with this id exists (a 256-bit collision: in practice never). Nothing
    /// was written.
    #[error("the record id is taken")]
    IdTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a client was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeClientError {
    #[error("no such client")]
    NotFound,
    /// Someone else changed it since it was read.
    #[error("the client was changed concurrently")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a client was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateClientError {
    #[error("a client with this id exists")]
    AlreadyExists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one item of a cancelled `TransactWriteItems` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancellation {
    /// Its condition failed: the state it named was not the state it found.
    Condition,
    /// Another transaction or write was changing the item at that moment. Nothing is
    /// known about its state; asking again later is the only safe answer.
    Conflict,
    /// This item was fine; another one cancelled the transaction.
    None,
    Other,
}

/// The per-item reasons of a cancelled transaction, in the order of its items.
pub(crate) fn cancellations(
    cancelled: &aws_sdk_dynamodb::types::error::TransactionCanceledException,
) -> Vec<Cancellation> {
    cancelled
        .cancellation_reasons()
        .iter()
        .map(|reason| match reason.code() {
            Some("ConditionalCheckFailed") => Cancellation::Condition,
            Some("TransactionConflict") => Cancellation::Conflict,
            Some("None") | None => Cancellation::None,
            Some(_) => Cancellation::Other,
        })
        .collect()
}

/// The store, built once per cold start and lent to every request.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    clients: Arc<ClientCache>,
}

/// Client records as this instance last read them (see [`Store::cached_client`]).
#[derive(Debug, Default)]
struct ClientCache {
    ttl: Duration,
    entries: Mutex<HashMap<ClientId, (Timestamp, Option<OAuthClient>)>>,
}

/// How many clients one instance remembers; past that it starts over.
const CLIENT_CACHE_ENTRIES: usize = 1024;

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clients: Arc::default(),
        }
    }

    /// The same store, answering [`Store::cached_client`] from what this instance read
    /// less than `ttl` ago (zero: always from the table).
    #[must_use]
    pub fn with_client_cache(self, ttl: Duration) -> Self {
        Self {
            clients: Arc::new(ClientCache {
                ttl,
                entries: Mutex::default(),
            }),
            ..self
        }
    }

    /// A client as read at most the cache's lifetime ago (`CLIENT_CACHE_SECONDS`, default
    /// 5 s), for the hot paths: issuing a code and polling. Every instance reads each
    /// client at most once per lifetime, so one client's item is never hot however many
    /// devices use it; an unknown client is remembered as unknown just as long.
    ///
    /// The bound on staleness: a secret rotation, a narrowed grant or scope, or a deletion
    /// reaches these answers within the lifetime, and until then an instance that read
    /// the client before may act on the old record, issuing a token included (the
    /// exchange then checks the client from this cache, not in its transaction: see
    /// [`ClientCheck`]). Deleting a client withdraws its pending and approved codes, so
    /// what remains exchangeable in that window is a code issued and approved inside it.
    /// Administrators read the table.
    pub async fn cached_client(
        &self,
        id: &ClientId,
        now: Timestamp,
    ) -> Result<Option<OAuthClient>, StoreError> {
        if let Some(client) = self.fresh_client(id, now) {
            return Ok(client);
        }
        let client = self.get_client(id).await?;
        self.remember_client(id, now, client.clone());
        Ok(client)
    }

    /// Whether [`Store::cached_client`] answers from memory (a lifetime above zero).
    pub fn caches_clients(&self) -> bool {
        !self.clients.ttl.is_zero()
    }

    /// The client as this instance read it less than the cache's lifetime ago, if so
    /// (`Some(None)`: read then, and unknown).
    fn fresh_client(&self, id: &ClientId, now: Timestamp) -> Option<Option<OAuthClient>> {
        let cache = &self.clients;
        if cache.ttl.is_zero() {
            return None;
        }
        let entries = cache.entries.lock().ok()?;
        let (read_at, client) = entries.get(id)?;
        (*read_at <= now && now < read_at.plus(cache.ttl)).then(|| client.clone())
    }

    fn remember_client(&self, id: &ClientId, now: Timestamp, client: Option<OAuthClient>) {
        let cache = &self.clients;
        if cache.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = cache.entries.lock() {
            if entries.len() >= CLIENT_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(id.clone(), (now, client));
        }
    }

    /// [`Store::find`] for a refresh: the client comes from this instance's cache when it
    /// is fresh (then the batch reads only the grant and the token), else from the same
    /// batch, which refills the cache.
    pub async fn find_with_client(
        &self,
        client: &ClientId,
        grant: Option<&GrantId>,
        refresh: Option<&RefreshTokenHash>,
        now: Timestamp,
    ) -> Result<Found, StoreError> {
        if let Some(cached) = self.fresh_client(client, now) {
            let mut found = self.find(None, grant, refresh).await?;
            found.client = cached;
            return Ok(found);
        }
        let found = self.find(Some(client), grant, refresh).await?;
        self.remember_client(client, now, found.client.clone());
        Ok(found)
    }

    /// Reads a client with a strongly consistent `GetItem`: a rotated secret, a narrowed
    /// grant or a deleted client takes effect on the very next request, and an admin's
    /// read-before-replace never sees an older version (no spurious conflicts). The price:
    /// one read unit instead of half, and one client item serves at most about 3,000
    /// strong reads a second (a single confidential client polled by ~15,000 devices at a
    /// 5-second interval; docs/operations.md's scaling notes say what comes next).
    pub async fn get_client(&self, id: &ClientId) -> Result<Option<OAuthClient>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::client_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        output.item.as_ref().map(item::client_from_item).transpose()
    }

    /// Writes a new client; refuses to overwrite an existing one.
    pub async fn create_client(&self, client: &OAuthClient) -> Result<(), CreateClientError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::client_to_item(client)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.into_service_error() {
                PutItemError::ConditionalCheckFailedException(_) => {
                    Err(CreateClientError::AlreadyExists)
                }
                other => Err(StoreError::request(other).into()),
            },
        }
    }

    /// Replaces a client with its changed version, provided nobody else changed it since
    /// it was read (`previous_update` is the `updated_at` that was read).
    pub async fn replace_client(
        &self,
        client: &OAuthClient,
        previous_update: Timestamp,
    ) -> Result<(), ChangeClientError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item::client_to_item(client)))
            .condition_expression("#updated = :seen")
            .expression_attribute_names("#updated", attr::UPDATED_AT)
            .expression_attribute_values(
                ":seen",
                AttributeValue::N(previous_update.as_millis().to_string()),
            )
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.into_service_error() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    Err(if failed.item().is_some() {
                        ChangeClientError::Conflict
                    } else {
                        ChangeClientError::NotFound
                    })
                }
                other => Err(StoreError::request(other).into()),
            },
        }
    }

    /// Writes a new pending record and the claim on its user code in one
    /// `TransactWriteItems`: both or neither.
    ///
    /// The claim's condition makes user codes unique among live codes: it succeeds only
    /// if no claim exists or the existing one has expired (TTL deletes late, so an
    /// expired claim may still be there). The record's condition refuses to overwrite.
    pub async fn create_device_authorization(
        &self,
        record: &DeviceAuthorization,
        retention: Duration,
        now: Timestamp,
    ) -> Result<(), CreateDeviceError> {
        let record_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item::device_to_item(record, retention)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .build()
            .map_err(StoreError::from)?;
        let claim_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item::user_code_claim_item(record)))
            .condition_expression("attribute_not_exists(#pk) OR #expires <= :now")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_names("#expires", attr::EXPIRES_AT)
            .expression_attribute_values(":now", AttributeValue::N(now.as_millis().to_string()))
            .build()
            .map_err(StoreError::from)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(record_put).build())
            .transact_items(TransactWriteItem::builder().put(claim_put).build())
            .send()
            .await;
        let Err(error) = result else {
            return Ok(());
        };
        match error.into_service_error() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                let reasons = cancellations(&cancelled);
                match (reasons.first(), reasons.get(1)) {
                    // Taken, or being claimed by another request right now: either way
                    // not ours. A fresh draw avoids both.
                    (_, Some(Cancellation::Condition | Cancellation::Conflict)) => {
                        Err(CreateDeviceError::UserCodeTaken)
                    }
                    (Some(Cancellation::Condition | Cancellation::Conflict), _) => {
                        Err(CreateDeviceError::IdTaken)
                    }
                    _ => Err(StoreError::request(cancelled).into()),
                }
            }
            other => Err(StoreError::request(other).into()),
        }
    }

    /// Reads a record with a strongly consistent `GetItem`.
    pub async fn get_device_authorization(
        &self,
        id: &DeviceAuthorizationId,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::device_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        output.item.as_ref().map(item::device_from_item).transpose()
    }

    /// The record a live user code belongs to, if any. An expired claim is treated as
    /// absent even before TTL removes it.
    pub async fn find_user_code(
        &self,
        code: &UserCode,
        now: Timestamp,
    ) -> Result<Option<DeviceAuthorizationId>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(item::user_code_key(code)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::request)?;
        match output.item {
            Some(claim) => item::live_claim(&claim, now),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;

    /// Found by the soak: a look-up's failure count (an `UpdateItem`) that met a
    /// transaction answered 500; a passing failure is 503 with `Retry-After`.
    #[test]
    fn a_write_that_meets_a_transaction_is_a_passing_failure() {
        use aws_sdk_dynamodb::error::ErrorMetadata;
        use aws_sdk_dynamodb::types::error::{
            ResourceNotFoundException, TransactionConflictException,
        };
        let code = |code: &str| ErrorMetadata::builder().code(code).build();
        let conflict = TransactionConflictException::builder()
            .meta(code("TransactionConflictException"))
            .build();
        assert_eq!(StoreError::request(conflict).fault(), Fault::Unavailable);
        let missing = ResourceNotFoundException::builder()
            .meta(code("ResourceNotFoundException"))
            .build();
        assert_eq!(StoreError::request(missing).fault(), Fault::Other);
    }

    #[test]
    fn cancellation_reasons_are_classified_per_item() {
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        let cancelled = TransactionCanceledException::builder()
            .cancellation_reasons(reason("None"))
            .cancellation_reasons(reason("ConditionalCheckFailed"))
            .cancellation_reasons(reason("TransactionConflict"))
            .cancellation_reasons(reason("ThrottlingError"))
            .build();
        assert_eq!(
            cancellations(&cancelled),
            [
                Cancellation::None,
                Cancellation::Condition,
                Cancellation::Conflict,
                Cancellation::Other
            ]
        );
    }
}
