//! The budgets of user-code look-ups (RFC 8628 §5.1 brute-force protection): failed
//! look-ups are counted per account and per source IP in fixed windows, in items that
//! DynamoDB's TTL removes after their window. A look-up takes from both budgets before the
//! code is read, and gives back what it took when the code was found.

use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{self, Item, attr};
use super::table::TTL_ATTRIBUTE;
use super::{Store, StoreError};
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

/// One of a requester's budgets: per account, or per source IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Account,
    Ip,
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn signed(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl Store {
    fn budget_key(&self, requester: Requester<'_>, budget: Budget, window: Window) -> Option<Item> {
        let start = window.start.as_secs();
        match budget {
            Budget::Account => Some(item::rate_key("ACCOUNT", start, requester.account_id)),
            Budget::Ip => requester
                .source_ip
                .map(|ip| item::rate_key("IP", start, ip)),
        }
    }

    /// Takes one look-up from the requester's `budget` for `window`, if fewer than `limit`
    /// are taken: one conditional `ADD`, so that of any number of concurrent look-ups at
    /// most `limit` get one. Each counter is its own item and its own request (in one
    /// transaction, two concurrent look-ups would cancel each other). `true` when taken
    /// (also when there is no such budget: no source IP); the counter expires with the
    /// window.
    pub async fn take_lookup(
        &self,
        requester: Requester<'_>,
        budget: Budget,
        window: Window,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let Some(key) = self.budget_key(requester, budget, window) else {
            return Ok(true);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("ADD #failures :one SET #ttl = :ttl")
            .condition_expression("attribute_not_exists(#failures) OR #failures < :limit")
            .expression_attribute_names("#failures", attr::FAILURES)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(u64::from(limit)))
            .expression_attribute_values(":ttl", n(window.end.as_secs() + 60))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.into_service_error() {
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(false),
                other => Err(StoreError::request(other)),
            },
        }
    }

    /// Gives back a look-up taken from `budget` (one that found its code: only failures
    /// count).
    pub async fn return_lookup(
        &self,
        requester: Requester<'_>,
        budget: Budget,
        window: Window,
    ) -> Result<(), StoreError> {
        let Some(key) = self.budget_key(requester, budget, window) else {
            return Ok(());
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("ADD #failures :minus_one")
            .condition_expression("#failures > :zero")
            .expression_attribute_names("#failures", attr::FAILURES)
            .expression_attribute_values(":minus_one", signed(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map(|_| ())
            .or_else(|error| match error.into_service_error() {
                // The window ended and TTL removed the counter: nothing to give back.
                UpdateItemError::ConditionalCheckFailedException(_) => Ok(()),
                other => Err(StoreError::request(other)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_contain_now() {
        let ten_minutes = Duration::from_secs(600);
        let w = Window::containing(Timestamp::from_millis(1_200_123), ten_minutes);
        assert_eq!(w.start.as_millis(), 1_200_000);
        assert_eq!(w.end.as_millis(), 1_800_000);
        let next = Window::containing(w.end, ten_minutes);
        assert_eq!(next.start, w.end);
    }
}
