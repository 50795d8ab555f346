//! The one DynamoDB table: its keys, its index and its TTL attribute, defined once.
//!
//! The local setup (`xtask`), the tests and the deployment template checks all build or
//! compare against these constants.
//!
//! | item | `pk` | `sk` | TTL | in `gsi1` |
//! |---|---|---|---|---|
//! | device authorization | `DEVICE#<id>` | `DEVICE` | `expires_at` + retention | `gsi1pk = DEVICE`, `gsi1sk = <created ms>#<id>` |
//! | user-code claim | `USERCODE#<code>` | `USERCODE` | `expires_at` | no |
//! | OAuth client | `CLIENT#<client_id>` | `CLIENT` | none (not transient) | `gsi1pk = CLIENT`, `gsi1sk = <created ms>#<client_id>` |
//! | published JWKS | `JWKS` | `JWKS` | none | no |
//! | grant | `GRANT#<grant_id>` | `GRANT` | `expires_at` + retention | `gsi1pk = GRANT#ACCOUNT#<account>`, and in `gsi2`: `gsi2pk = GRANT#CLIENT#<client_id>`; both sort keys `<created ms>#<grant_id>` |
//! | refresh token | `REFRESH#<token hash>` | `REFRESH` | `expires_at` + retention | no |
//! | look-up budget | `RATE#<kind>#<window>#<subject>` | `RATE` | end of window | no |
//!
//! `gsi1` lists records and clients newest first without a scan. It projects every
//! attribute, so that one `Query` is one page of the admin listing with all of seed 001's
//! fields. The price: each poll, which updates `last_polled_at`, also writes the index
//! (one more write unit per poll).
//!
//! `gsi2` lists one client's grants (the admin listing by client, and revoking them all
//! when the client is deleted). Grants are spread over both indexes by account and by
//! client, so no grant listing shares a partition with anyone else's.

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
/// The listing index: every record and client by creation time.
pub const LIST_INDEX: &str = "gsi1";
/// Partition key of [`LIST_INDEX`] (string): the item kind.
pub const LIST_INDEX_PARTITION_KEY: &str = "gsi1pk";
/// Sort key of [`LIST_INDEX`] (string): zero-padded creation time in ms, `#`, id.
pub const LIST_INDEX_SORT_KEY: &str = "gsi1sk";
/// The client index: each client's grants by creation time.
pub const CLIENT_INDEX: &str = "gsi2";
/// Partition key of [`CLIENT_INDEX`] (string): `GRANT#CLIENT#<client_id>`.
pub const CLIENT_INDEX_PARTITION_KEY: &str = "gsi2pk";
/// Sort key of [`CLIENT_INDEX`] (string): zero-padded creation time in ms, `#`, id.
pub const CLIENT_INDEX_SORT_KEY: &str = "gsi2sk";

/// Creates the table as the service expects it: on-demand billing, the keys, the
/// listing index, and TTL enabled on [`TTL_ATTRIBUTE`].
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
                    .projection_type(ProjectionType::All)
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
