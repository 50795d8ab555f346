//! Reads and counters for user-code look-ups, with RFC 8628 §5.1 brute-force protection:
//! failed look-ups are counted per account and per source IP in fixed windows, in items
//! that DynamoDB's TTL removes after their window.

use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem, Update};

use super::item::{self, Item, attr};
use super::table::TTL_ATTRIBUTE;
use super::{Store, StoreError};
use crate::domain::{DeviceAuthorizationId, UserCode};
use crate::time::Timestamp;

/// Who is looking codes up: the signed-in account and, behind API Gateway, the source IP.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    pub account_id: &'a str,
    pub source_ip: Option<&'a str>,
}

/// A fixed counting window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Window {
    /// The window of length `length` that contains `now` (windows start at multiples of
    /// `length` since the epoch).
    pub fn containing(now: Timestamp, length: Duration) -> Self {
        let length_ms = u64::try_from(length.as_millis())
            .unwrap_or(u64::MAX)
            .max(1000);
        let start = now.as_millis() / length_ms * length_ms;
        Self {
            start: Timestamp::from_millis(start),
            end: Timestamp::from_millis(start.saturating_add(length_ms)),
        }
    }
}

/// What one look-up read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupRead {
    pub account_failures: u32,
    pub ip_failures: u32,
    /// The record the code is claimed by, if the claim is live.
    pub claimed_by: Option<DeviceAuthorizationId>,
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn failures(item: Option<&Item>) -> u32 {
    item.and_then(|i| i.get(attr::FAILURES))
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Store {
    /// Reads the requester's failure counters for `window` and the claim on `code`, in
    /// one strongly consistent `BatchGetItem` (keys DynamoDB leaves unprocessed under
    /// load are asked for again).
    pub async fn read_lookup(
        &self,
        requester: Requester<'_>,
        code: Option<&UserCode>,
        window: Window,
        now: Timestamp,
    ) -> Result<LookupRead, StoreError> {
        let account_key = item::rate_key("ACCOUNT", window.start.as_secs(), requester.account_id);
        let ip_key = requester
            .source_ip
            .map(|ip| item::rate_key("IP", window.start.as_secs(), ip));
        let claim_key = code.map(item::user_code_key);
        let mut pending: Vec<Item> = [Some(account_key.clone()), ip_key.clone(), claim_key.clone()]
            .into_iter()
            .flatten()
            .collect();
        let mut found: Vec<Item> = Vec::new();
        for _ in 0..3 {
            if pending.is_empty() {
                break;
            }
            let keys = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(true)
                .build()?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, keys)
                .send()
                .await
                .map_err(StoreError::request)?;
            if let Some(mut responses) = output.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            if let Some(mut unprocessed) = output.unprocessed_keys {
                pending = unprocessed
                    .remove(&self.table)
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
        }
        if !pending.is_empty() {
            return Err(StoreError::Corrupt("unprocessed keys"));
        }
        let same_key = |a: &Item, b: &Item| {
            a.get(super::table::PARTITION_KEY) == b.get(super::table::PARTITION_KEY)
        };
        let find = |key: &Item| found.iter().find(|i| same_key(i, key));
        let claimed_by = match claim_key.as_ref().and_then(find) {
            Some(claim) => item::live_claim(claim, now)?,
            None => None,
        };
        Ok(LookupRead {
            account_failures: failures(find(&account_key)),
            ip_failures: ip_key.as_ref().map_or(0, |k| failures(find(k))),
            claimed_by,
        })
    }

    /// Counts one failed look-up against the requester's account and IP for `window`,
    /// in one request; the counters expire with the window.
    pub async fn record_lookup_failure(
        &self,
        requester: Requester<'_>,
        window: Window,
    ) -> Result<(), StoreError> {
        let update = |key: Item| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("ADD #failures :one SET #ttl = :ttl")
                .expression_attribute_names("#failures", attr::FAILURES)
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ttl", n(window.end.as_secs() + 60))
                .build()
        };
        let mut request = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .update(update(item::rate_key(
                    "ACCOUNT",
                    window.start.as_secs(),
                    requester.account_id,
                ))?)
                .build(),
        );
        if let Some(ip) = requester.source_ip {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .update(update(item::rate_key("IP", window.start.as_secs(), ip))?)
                    .build(),
            );
        }
        request.send().await.map_err(StoreError::request)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn windows_are_fixed_and_contain_now() {
        let ten_minutes = Duration::from_secs(600);
        let w = Window::containing(Timestamp::from_millis(1_200_123), ten_minutes);
        assert_eq!(w.start.as_millis(), 1_200_000);
        assert_eq!(w.end.as_millis(), 1_800_000);
        let next = Window::containing(w.end, ten_minutes);
        assert_eq!(next.start, w.end);
    }

    #[test]
    fn missing_counters_count_zero() {
        assert_eq!(failures(None), 0);
        let item: HashMap<String, AttributeValue> =
            HashMap::from([(attr::FAILURES.to_owned(), n(4))]);
        assert_eq!(failures(Some(&item)), 4);
    }
}
