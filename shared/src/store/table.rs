//! The one DynamoDB table: its keys, its indexes and its TTL attribute, defined once.
//!
//! The local setup (`xtask`), the tests and the deployment template checks all build or
//! compare against these constants.
//!
//! | item | `pk` | `sk` | TTL | `gsi1pk` | `gsi2pk` |
//! |---|---|---|---|---|---|
//! | device authorization | `DEVICE#<id>` | `DEVICE` | `expires_at` + retention | `DEVICE#<shard>` | `DEVICE#CLIENT#<client_id>#<shard>` |
//! | user-code claim | `USERCODE#<code>` | `USERCODE` | `expires_at` | | |
//! | OAuth client | `CLIENT#<client_id>` | `CLIENT` | none (not transient) | `CLIENT` | |
//! | published JWKS | `JWKS` | `JWKS` | none | | |
//! | grant | `GRANT#<grant_id>` | `GRANT` | `expires_at` + retention | `GRANT#ACCOUNT#<account>` | `GRANT#CLIENT#<client_id>#<shard>` |
//! | refresh token | `REFRESH#<token hash>` | `REFRESH` | `expires_at` + retention | | |
//! | look-up budget | `RATE#<kind>#<window>#<subject>` | `RATE` | end of window | | |
//!
//! Both index sort keys are `<created ms, 15 digits>#<id>`, so that every listing is
//! newest first. `<shard>` is `00` to `31`, a hash of the record's own id
//! ([`INDEX_SHARDS`]): a partition key that every login would write (all device
//! authorizations; all grants of a popular client) is spread over 32 keys, each taking a
//! thirty-second of the writes. Listing one of them reads all 32 shards and merges them.
//!
//! Both indexes project keys only. An index entry is written when its item is created
//! and removed when it is deleted, never in between: nothing a poll, an approval, a
//! refresh or a revocation changes is in an index, so those are one base-table write
//! each. A listing is therefore a `Query` per partition for the keys, then one
//! `BatchGetItem` per hundred items for the items themselves.
//!
//! `gsi1` lists device authorizations (all of them), clients, and an account's grants.
//! `gsi2` lists one client's device authorizations (denied when the client is deleted)
//! and one client's grants (the admin listing by client, and revoking them all when the
//! client is deleted): both read only that client's own partitions.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

use super::StoreError;

/// Partition key (string).
pub const PARTITION_KEY: &str = "pk";
/// Sort key (string).
pub const SORT_KEY: &str = "sk";
/// The TTL attribute: epoch seconds after which DynamoDB may delete the item.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// The listing index: device authorizations, clients and each account's grants by
/// creation time.
pub const LIST_INDEX: &str = "gsi1";
/// Partition key of [`LIST_INDEX`] (string): the item kind, with a shard or an account.
pub const LIST_INDEX_PARTITION_KEY: &str = "gsi1pk";
/// Sort key of [`LIST_INDEX`] (string): zero-padded creation time in ms, `#`, id.
pub const LIST_INDEX_SORT_KEY: &str = "gsi1sk";
/// The client index: each client's device authorizations and grants by creation time.
pub const CLIENT_INDEX: &str = "gsi2";
/// Partition key of [`CLIENT_INDEX`] (string): `<kind>#CLIENT#<client_id>#<shard>`.
pub const CLIENT_INDEX_PARTITION_KEY: &str = "gsi2pk";
/// Sort key of [`CLIENT_INDEX`] (string): zero-padded creation time in ms, `#`, id.
pub const CLIENT_INDEX_SORT_KEY: &str = "gsi2sk";
/// How many partition keys a sharded listing is spread over (see the module's table).
pub const INDEX_SHARDS: u32 = 32;

/// Creates the table as the service expects it: on-demand billing, the keys, the two
/// keys-only indexes, and TTL enabled on [`TTL_ATTRIBUTE`].
pub async fn create_table(client: &Client, table_name: &str) -> Result<(), StoreError> {
    let string_attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let index = |name: &str, partition: &str, sort: &str| {
        GlobalSecondaryIndex::builder()
            .index_name(name)
            .key_schema(key(partition, KeyType::Hash)?)
            .key_schema(key(sort, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .build()
    };
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(PARTITION_KEY)?)
        .attribute_definitions(string_attribute(SORT_KEY)?)
        .attribute_definitions(string_attribute(LIST_INDEX_PARTITION_KEY)?)
        .attribute_definitions(string_attribute(LIST_INDEX_SORT_KEY)?)
        .attribute_definitions(string_attribute(CLIENT_INDEX_PARTITION_KEY)?)
        .attribute_definitions(string_attribute(CLIENT_INDEX_SORT_KEY)?)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .global_secondary_indexes(index(
            LIST_INDEX,
            LIST_INDEX_PARTITION_KEY,
            LIST_INDEX_SORT_KEY,
        )?)
        .global_secondary_indexes(index(
            CLIENT_INDEX,
            CLIENT_INDEX_PARTITION_KEY,
            CLIENT_INDEX_SORT_KEY,
        )?)
        .send()
        .await
        .map_err(StoreError::request)?;
    client
        .update_time_to_live()
        .table_name(table_name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()?,
        )
        .send()
        .await
        .map_err(StoreError::request)?;
    Ok(())
}
