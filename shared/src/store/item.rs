//! Conversions between domain types and stored DynamoDB items, in one place.
//!
//! Times are stored as Numbers in epoch milliseconds; the TTL attribute alone is epoch
//! seconds, as DynamoDB requires. Optional fields are absent when unset.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::StoreError;
use super::table::{
    CLIENT_INDEX_PARTITION_KEY, CLIENT_INDEX_SORT_KEY, INDEX_SHARDS, LIST_INDEX_PARTITION_KEY,
    LIST_INDEX_SORT_KEY, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE,
};
use crate::domain::{
    Approval, ClientGeneration, ClientId, ClientKind, ClientOverrides, Deletion, DeletionPhase,
    DeviceAuthorization, DeviceAuthorizationId, DeviceDetails, DeviceState, Grant, GrantId,
    GrantType, OAuthClient, Profile, RefreshPolicy, RefreshRecord, RefreshTokenHash, Revocation,
    RevokeReason, ScopeSet, SecretHash, Setting, Status, UserCode,
};
use crate::time::Timestamp;

pub type Item = HashMap<String, AttributeValue>;

pub const DEVICE_KIND: &str = "DEVICE";
pub const CLIENT_KIND: &str = "CLIENT";
pub const USER_CODE_KIND: &str = "USERCODE";
pub const JWKS_KIND: &str = "JWKS";
pub const GRANT_KIND: &str = "GRANT";
pub const REFRESH_KIND: &str = "REFRESH";

/// Record attribute names, shared with the condition expressions of the store.
pub mod attr {
    pub const ID: &str = "id";
    pub const CLIENT_ID: &str = "client_id";
    pub const SCOPE: &str = "scope";
    pub const USER_CODE: &str = "user_code";
    pub const STATUS: &str = "status";
    pub const CREATED_AT: &str = "created_at";
    pub const EXPIRES_AT: &str = "expires_at";
    /// The client record's interval override, in seconds.
    pub const POLL_INTERVAL: &str = "poll_interval_seconds";
    /// A device authorization's current interval, in milliseconds so that update
    /// expressions can add it to a time.
    pub const POLL_INTERVAL_MS: &str = "poll_interval_ms";
    pub const LAST_POLLED_AT: &str = "last_polled_at";
    /// `last_polled_at` + interval - tolerance: what the poll condition compares with,
    /// since condition expressions cannot do arithmetic.
    pub const NEXT_POLL_AT: &str = "next_poll_at";
    pub const PUBLIC_CLIENT: &str = "public_client";
    pub const APPROVED_BY: &str = "approved_by_account_id";
    pub const APPROVED_AT: &str = "approved_at";
    pub const SESSION_ID: &str = "session_id";
    /// The approving person's claims (OpenID Connect), compact JSON: on an approved
    /// record and on its grant.
    pub const PROFILE: &str = "profile";
    pub const DENIED_AT: &str = "denied_at";
    pub const CONSUMED_AT: &str = "consumed_at";
    pub const DEVICE_AUTHORIZATION_ID: &str = "device_authorization_id";
    pub const NAME: &str = "name";
    pub const CLIENT_NAME: &str = "client_name";
    pub const FAILURES: &str = "failures";
    pub const CLIENT_TYPE: &str = "client_type";
    pub const SECRET_HASH: &str = "secret_hash";
    pub const ALLOWED_GRANTS: &str = "allowed_grant_types";
    pub const ALLOWED_SCOPES: &str = "allowed_scopes";
    pub const DEVICE_CODE_LIFETIME: &str = "device_code_lifetime_seconds";
    pub const ACCESS_TOKEN_LIFETIME: &str = "access_token_lifetime_seconds";
    pub const DEVICE_IP: &str = "device_ip";
    pub const DEVICE_USER_AGENT: &str = "device_user_agent";
    pub const UPDATED_AT: &str = "updated_at";
    pub const JWKS: &str = "jwks";
    pub const VERSION: &str = "version";
    /// On the published key set: when each key id was first published.
    pub const PUBLISHED_AT: &str = "published_at";
    pub const GRANT_ID: &str = "grant_id";
    pub const ACCOUNT_ID: &str = "account_id";
    /// A record's or grant's refresh policy, in seconds.
    pub const REFRESH_IDLE: &str = "refresh_token_idle_lifetime_seconds";
    pub const REFRESH_ABSOLUTE: &str = "refresh_token_absolute_lifetime_seconds";
    pub const LAST_USED_AT: &str = "last_used_at";
    pub const REVOKED_AT: &str = "revoked_at";
    pub const REVOKED_REASON: &str = "revoked_reason";
    pub const ISSUED_AT: &str = "issued_at";
    pub const ROTATED_AT: &str = "rotated_at";
    /// A client's incarnation; on a code or a grant, the issuing incarnation's.
    pub const GENERATION: &str = "generation";
    pub const RESOURCE_SERVER_AUDIENCES: &str = "resource_server_audiences";
    /// On a record and its grant: the resources (RFC 8707) its access tokens are for.
    pub const RESOURCES: &str = "resources";
    /// On a client: the resources it may ask for, and its user-code format.
    pub const ALLOWED_RESOURCES: &str = "allowed_resources";
    pub const USER_CODE_CHARSET: &str = "user_code_charset";
    pub const USER_CODE_LENGTH: &str = "user_code_length";
    pub const CLIENT_GENERATION: &str = "client_generation";
    /// A client's deletion under way: when it started, its phase, where its listing
    /// continues, and what it has done so far.
    pub const DELETING_AT: &str = "deleting_at";
    pub const DELETION_PHASE: &str = "deletion_phase";
    pub const DELETION_CURSOR: &str = "deletion_cursor";
    pub const CODES_WITHDRAWN: &str = "codes_withdrawn";
    pub const GRANTS_REVOKED: &str = "grants_revoked";
}

pub fn device_key(id: &DeviceAuthorizationId) -> Item {
    key(format!("{DEVICE_KIND}#{id}"), DEVICE_KIND)
}

pub fn client_key(id: &ClientId) -> Item {
    key(format!("{CLIENT_KIND}#{id}"), CLIENT_KIND)
}

pub fn user_code_key(code: &UserCode) -> Item {
    key(
        format!("{USER_CODE_KIND}#{}", code.as_str()),
        USER_CODE_KIND,
    )
}

pub const RATE_KIND: &str = "RATE";

/// A failed-look-up counter for one subject (`ACCOUNT` or `IP`) in one fixed window.
pub fn rate_key(subject_kind: &str, window_start_secs: u64, subject: &str) -> Item {
    key(
        format!("{RATE_KIND}#{subject_kind}#{window_start_secs}#{subject}"),
        RATE_KIND,
    )
}

pub fn grant_key(id: &GrantId) -> Item {
    key(format!("{GRANT_KIND}#{id}"), GRANT_KIND)
}

pub fn refresh_key(hash: &RefreshTokenHash) -> Item {
    key(format!("{REFRESH_KIND}#{}", hash.as_str()), REFRESH_KIND)
}

/// The listing-index partition of one account's grants.
pub fn account_grants_partition(account_id: &str) -> String {
    format!("{GRANT_KIND}#ACCOUNT#{account_id}")
}

/// The shard (`0..INDEX_SHARDS`) an item with this id is listed in: FNV-1a of the id,
/// which is random, so the shards fill evenly.
pub fn shard_of(id: &str) -> u32 {
    let hash = id.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % INDEX_SHARDS
}

/// The listing-index partition of every device authorization in `shard`.
pub fn devices_partition(shard: u32) -> String {
    format!("{DEVICE_KIND}#{shard:02}")
}

/// The client-index partition of one client's device authorizations in `shard`.
pub fn client_devices_partition(client_id: &ClientId, shard: u32) -> String {
    format!("{DEVICE_KIND}#CLIENT#{client_id}#{shard:02}")
}

/// The client-index partition of one client's grants in `shard`.
pub fn client_grants_partition(client_id: &ClientId, shard: u32) -> String {
    format!("{GRANT_KIND}#CLIENT#{client_id}#{shard:02}")
}

/// The listing-index partition of the clients (admin-written, so never hot).
pub fn clients_partition() -> String {
    CLIENT_KIND.to_owned()
}

pub fn jwks_key() -> Item {
    key(JWKS_KIND.to_owned(), JWKS_KIND)
}

/// The published public keys: one item, replaced on rotation.
/// The published key set: the JWKS document, its version, and when each key id was first
/// published (epoch ms; 0: published before anyone could have cached a key set).
pub fn jwks_item(
    jwks: &str,
    version: u64,
    first_published: &std::collections::BTreeMap<String, Timestamp>,
) -> Item {
    let mut item = jwks_key();
    item.insert(attr::JWKS.to_owned(), s(jwks));
    item.insert(attr::VERSION.to_owned(), n(version));
    item.insert(
        attr::PUBLISHED_AT.to_owned(),
        AttributeValue::M(
            first_published
                .iter()
                .map(|(kid, at)| (kid.clone(), time(*at)))
                .collect(),
        ),
    );
    item
}

/// What [`jwks_item`] wrote: the version, and when each key id was first published
/// (empty for a set published before these times were kept).
pub fn published_from_item(
    item: &Item,
) -> Result<(u64, std::collections::BTreeMap<String, Timestamp>), StoreError> {
    let r = Reader(item);
    let version = r.number(attr::VERSION)?;
    let times = match item.get(attr::PUBLISHED_AT) {
        None => std::collections::BTreeMap::new(),
        Some(AttributeValue::M(times)) => times
            .iter()
            .map(|(kid, at)| {
                let at = at
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or(StoreError::Corrupt(attr::PUBLISHED_AT))?;
                Ok((kid.clone(), Timestamp::from_millis(at)))
            })
            .collect::<Result<_, StoreError>>()?,
        Some(_) => return Err(StoreError::Corrupt(attr::PUBLISHED_AT)),
    };
    Ok((version, times))
}

/// An item's size as DynamoDB bills it: each attribute's name plus its value (a string
/// or binary's bytes; a number's significant digits, two to a byte, plus one; a boolean
/// or null one byte; a list or map three bytes plus one per element and its elements).
/// A write costs one unit per started KiB of the larger of the old and new item; a read
/// one unit per started 4 KiB (half of that when eventually consistent).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => {
            let digits = number
                .trim_start_matches('-')
                .split(['e', 'E'])
                .next()
                .unwrap_or_default()
                .replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            significant.div_ceil(2) + 1
        }
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(values) => values.iter().map(String::len).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        (PARTITION_KEY.to_owned(), AttributeValue::S(pk)),
        (SORT_KEY.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// Sort key of the listing index: fixed-width creation time, so that string order is
/// time order, then the id to make it unique.
fn list_sort_key(created_at: Timestamp, id: &str) -> String {
    format!("{:015}#{id}", created_at.as_millis())
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn time(t: Timestamp) -> AttributeValue {
    n(t.as_millis())
}

fn millis(d: Duration) -> AttributeValue {
    n(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A device authorization as an item; kept `retention` past its expiry before TTL.
pub fn device_to_item(record: &DeviceAuthorization, retention: Duration) -> Item {
    let mut item = device_key(&record.id);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::ID, s(record.id.as_str()));
    put(attr::CLIENT_ID, s(record.client_id.as_str()));
    if !record.client_generation.is_empty() {
        put(
            attr::CLIENT_GENERATION,
            s(record.client_generation.as_str()),
        );
    }
    put(attr::CLIENT_NAME, s(record.client_name.clone()));
    if !record.scope.is_empty() {
        put(attr::SCOPE, s(record.scope.to_string()));
    }
    put(attr::USER_CODE, s(record.user_code.as_str()));
    put(attr::STATUS, s(record.state.status().as_str()));
    put(attr::CREATED_AT, time(record.created_at));
    put(attr::EXPIRES_AT, time(record.expires_at));
    put(attr::POLL_INTERVAL_MS, millis(record.interval));
    if let Some(t) = record.last_polled_at {
        put(attr::LAST_POLLED_AT, time(t));
    }
    if let Some(t) = record.next_poll_at() {
        put(attr::NEXT_POLL_AT, time(t));
    }
    put(
        attr::PUBLIC_CLIENT,
        AttributeValue::Bool(record.public_client),
    );
    put(
        attr::ACCESS_TOKEN_LIFETIME,
        n(record.access_token_lifetime.as_secs()),
    );
    if let Some(ip) = &record.device.ip {
        put(attr::DEVICE_IP, s(ip.clone()));
    }
    if let Some(user_agent) = &record.device.user_agent {
        put(attr::DEVICE_USER_AGENT, s(user_agent.clone()));
    }
    if let Some(policy) = record.refresh {
        put(attr::REFRESH_IDLE, n(policy.idle.as_secs()));
        put(attr::REFRESH_ABSOLUTE, n(policy.absolute.as_secs()));
    }
    if !record.resources.is_empty() {
        put(attr::RESOURCES, string_list(&record.resources));
    }
    let approval = match &record.state {
        DeviceState::Approved(approval) => Some(approval),
        DeviceState::Consumed {
            approval,
            consumed_at,
            grant_id,
        } => {
            put(attr::CONSUMED_AT, time(*consumed_at));
            if let Some(id) = grant_id {
                put(attr::GRANT_ID, s(id.as_str()));
            }
            Some(approval)
        }
        DeviceState::Denied { denied_at } => {
            put(attr::DENIED_AT, time(*denied_at));
            None
        }
        DeviceState::Pending => None,
    };
    if let Some(approval) = approval {
        put(attr::APPROVED_BY, s(approval.account_id.clone()));
        put(attr::APPROVED_AT, time(approval.approved_at));
        if let Some(session) = &approval.session_id {
            put(attr::SESSION_ID, s(session.clone()));
        }
        if let Some(profile) = approval.profile.to_stored() {
            put(attr::PROFILE, s(profile));
        }
    }
    put(
        TTL_ATTRIBUTE,
        n(record.expires_at.plus(retention).as_secs() + 1),
    );
    let shard = shard_of(record.id.as_str());
    let sort_key = list_sort_key(record.created_at, record.id.as_str());
    put(LIST_INDEX_PARTITION_KEY, s(devices_partition(shard)));
    put(LIST_INDEX_SORT_KEY, s(sort_key.clone()));
    put(
        CLIENT_INDEX_PARTITION_KEY,
        s(client_devices_partition(&record.client_id, shard)),
    );
    put(CLIENT_INDEX_SORT_KEY, s(sort_key));
    item
}

pub fn device_from_item(item: &Item) -> Result<DeviceAuthorization, StoreError> {
    let r = Reader(item);
    let approval = || -> Result<Approval, StoreError> {
        Ok(Approval {
            account_id: r.string(attr::APPROVED_BY)?.to_owned(),
            approved_at: r.time(attr::APPROVED_AT)?,
            session_id: r.opt_string(attr::SESSION_ID)?.map(str::to_owned),
            profile: r.profile()?,
        })
    };
    let state = match Status::parse(r.string(attr::STATUS)?) {
        Some(Status::Pending) => DeviceState::Pending,
        Some(Status::Approved) => DeviceState::Approved(approval()?),
        Some(Status::Denied) => DeviceState::Denied {
            denied_at: r.time(attr::DENIED_AT)?,
        },
        Some(Status::Consumed) => DeviceState::Consumed {
            approval: approval()?,
            consumed_at: r.time(attr::CONSUMED_AT)?,
            grant_id: r.opt_grant_id(attr::GRANT_ID)?,
        },
        // `expired` is derived from the time, never stored.
        Some(Status::Expired) | None => return Err(StoreError::Corrupt(attr::STATUS)),
    };
    Ok(DeviceAuthorization {
        id: DeviceAuthorizationId::parse(r.string(attr::ID)?)
            .ok_or(StoreError::Corrupt(attr::ID))?,
        client_id: ClientId::parse(r.string(attr::CLIENT_ID)?)
            .ok_or(StoreError::Corrupt(attr::CLIENT_ID))?,
        client_generation: r.generation(attr::CLIENT_GENERATION)?,
        client_name: r.string(attr::CLIENT_NAME)?.to_owned(),
        scope: ScopeSet::parse(r.opt_string(attr::SCOPE)?.unwrap_or_default())
            .map_err(|_| StoreError::Corrupt(attr::SCOPE))?,
        user_code: UserCode::parse(r.string(attr::USER_CODE)?)
            .map_err(|_| StoreError::Corrupt(attr::USER_CODE))?,
        created_at: r.time(attr::CREATED_AT)?,
        expires_at: r.time(attr::EXPIRES_AT)?,
        interval: Duration::from_millis(r.number(attr::POLL_INTERVAL_MS)?),
        last_polled_at: r.opt_time(attr::LAST_POLLED_AT)?,
        public_client: r.boolean(attr::PUBLIC_CLIENT)?,
        access_token_lifetime: Duration::from_secs(r.number(attr::ACCESS_TOKEN_LIFETIME)?),
        device: DeviceDetails {
            ip: r.opt_string(attr::DEVICE_IP)?.map(str::to_owned),
            user_agent: r.opt_string(attr::DEVICE_USER_AGENT)?.map(str::to_owned),
        },
        refresh: r.refresh_policy()?,
        resources: r.string_list(attr::RESOURCES)?,
        state,
    })
}

/// A list of strings as an attribute.
pub(super) fn string_list(values: &[String]) -> AttributeValue {
    AttributeValue::L(values.iter().map(|v| s(v.clone())).collect())
}

/// The TTL (epoch seconds) of an item that stops mattering at `expires_at`.
pub fn ttl(expires_at: Timestamp, retention: Duration) -> u64 {
    expires_at.plus(retention).as_secs() + 1
}

/// The item that reserves a user code for one record until the code expires.
pub fn user_code_claim_item(record: &DeviceAuthorization) -> Item {
    let mut item = user_code_key(&record.user_code);
    item.insert(
        attr::DEVICE_AUTHORIZATION_ID.to_owned(),
        s(record.id.as_str()),
    );
    item.insert(attr::EXPIRES_AT.to_owned(), time(record.expires_at));
    item.insert(TTL_ATTRIBUTE.to_owned(), n(record.expires_at.as_secs() + 1));
    item
}

/// The record a user-code claim points to, or `None` when the claim has expired (TTL
/// deletes late, so an expired claim may still be read).
pub fn live_claim(
    claim: &Item,
    now: Timestamp,
) -> Result<Option<DeviceAuthorizationId>, StoreError> {
    let r = Reader(claim);
    if now >= r.time(attr::EXPIRES_AT)? {
        return Ok(None);
    }
    DeviceAuthorizationId::parse(r.string(attr::DEVICE_AUTHORIZATION_ID)?)
        .map(Some)
        .ok_or(StoreError::Corrupt(attr::DEVICE_AUTHORIZATION_ID))
}

/// Typed reads of item attributes; a missing or mistyped attribute names itself.
struct Reader<'a>(&'a Item);

impl Reader<'_> {
    fn opt_string(&self, name: &'static str) -> Result<Option<&str>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(value)) => Ok(Some(value)),
            Some(_) => Err(StoreError::Corrupt(name)),
        }
    }

    fn string(&self, name: &'static str) -> Result<&str, StoreError> {
        self.opt_string(name)?.ok_or(StoreError::Corrupt(name))
    }

    /// A client generation; absent on items written before generations existed.
    fn generation(&self, name: &'static str) -> Result<ClientGeneration, StoreError> {
        Ok(ClientGeneration::from_stored(
            self.opt_string(name)?.unwrap_or_default().to_owned(),
        ))
    }

    fn opt_number(&self, name: &'static str) -> Result<Option<u64>, StoreError> {
        match self.0.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(value)) => value
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt(name)),
            Some(_) => Err(StoreError::Corrupt(name)),
        }
    }

    fn number(&self, name: &'static str) -> Result<u64, StoreError> {
        self.opt_number(name)?.ok_or(StoreError::Corrupt(name))
    }

    fn boolean(&self, name: &'static str) -> Result<bool, StoreError> {
        match self.0.get(name) {
            Some(AttributeValue::Bool(value)) => Ok(*value),
            _ => Err(StoreError::Corrupt(name)),
        }
    }

    fn opt_time(&self, name: &'static str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.opt_number(name)?.map(Timestamp::from_millis))
    }

    fn time(&self, name: &'static str) -> Result<Timestamp, StoreError> {
        self.number(name).map(Timestamp::from_millis)
    }

    fn opt_grant_id(&self, name: &'static str) -> Result<Option<GrantId>, StoreError> {
        self.opt_string(name)?
            .map(|id| GrantId::parse(id).ok_or(StoreError::Corrupt(name)))
            .transpose()
    }

    fn grant_id(&self, name: &'static str) -> Result<GrantId, StoreError> {
        self.opt_grant_id(name)?.ok_or(StoreError::Corrupt(name))
    }

    /// A list of strings; empty when absent.
    pub(super) fn string_list(&self, name: &'static str) -> Result<Vec<String>, StoreError> {
        match self.0.get(name) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| v.as_s().ok().cloned())
                .collect::<Option<Vec<_>>>()
                .ok_or(StoreError::Corrupt(name)),
            Some(_) => Err(StoreError::Corrupt(name)),
        }
    }

    /// The person's claims: empty when none were kept.
    fn profile(&self) -> Result<Profile, StoreError> {
        match self.opt_string(attr::PROFILE)? {
            Some(json) => Profile::from_stored(json).ok_or(StoreError::Corrupt(attr::PROFILE)),
            None => Ok(Profile::default()),
        }
    }

    fn refresh_policy(&self) -> Result<Option<RefreshPolicy>, StoreError> {
        match (
            self.opt_number(attr::REFRESH_IDLE)?,
            self.opt_number(attr::REFRESH_ABSOLUTE)?,
        ) {
            (Some(idle), Some(absolute)) => Ok(Some(RefreshPolicy {
                idle: Duration::from_secs(idle),
                absolute: Duration::from_secs(absolute),
            })),
            (None, None) => Ok(None),
            _ => Err(StoreError::Corrupt(attr::REFRESH_IDLE)),
        }
    }
}

mod client;
mod grant;
#[cfg(test)]
mod tests;

pub use client::{client_from_item, client_to_item};
pub use grant::{grant_from_item, grant_to_item, refresh_from_item, refresh_to_item};
