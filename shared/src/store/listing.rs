//! Listing records and clients newest first, one `Query` of the listing index per page,
//! never a scan.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::item::{self, CLIENT_KIND, DEVICE_KIND, Item, attr};
use super::table::{
    LIST_INDEX, LIST_INDEX_PARTITION_KEY, LIST_INDEX_SORT_KEY, PARTITION_KEY, SORT_KEY,
};
use super::{Store, StoreError};
use crate::domain::{ClientId, DeviceAuthorization, OAuthClient, Status};
use crate::time::Timestamp;

/// One page and where the next one starts (`None`: this was the last page).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageKey>,
}

/// The two listings of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    DeviceAuthorizations,
    Clients,
}

impl Listing {
    fn kind(self) -> &'static str {
        match self {
            Self::DeviceAuthorizations => DEVICE_KIND,
            Self::Clients => CLIENT_KIND,
        }
    }
}

/// Where a page of a listing starts: the index key DynamoDB stopped at. Opaque outside
/// the store; it travels only inside a signed page token.
#[derive(Debug, Clone, PartialEq)]
pub struct PageKey(Item);

impl PageKey {
    pub(crate) fn from_item(item: Item) -> Self {
        Self(item)
    }

    pub(crate) fn item(&self) -> &Item {
        &self.0
    }

    pub(crate) fn into_item(self) -> Item {
        self.0
    }

    /// Reads back what [`PageKey::encode`] wrote, without saying which listing it belongs
    /// to: the caller checks that.
    pub(crate) fn decode_any(text: &str) -> Option<Self> {
        let strings: BTreeMap<String, String> = serde_json::from_str(text).ok()?;
        Some(Self(
            strings
                .into_iter()
                .map(|(name, value)| (name, AttributeValue::S(value)))
                .collect(),
        ))
    }

    /// The key as text, for the page token to carry.
    pub fn encode(&self) -> String {
        let strings: BTreeMap<&str, &str> = self
            .0
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_s().ok()?.as_str())))
            .collect();
        serde_json::to_string(&strings).unwrap_or_default()
    }

    /// Reads back what [`PageKey::encode`] wrote, if it is a page boundary of `listing`
    /// (so that no start key can point anywhere else).
    pub fn decode(text: &str, listing: Listing) -> Option<Self> {
        let strings: BTreeMap<String, String> = serde_json::from_str(text).ok()?;
        let key: Item = strings
            .into_iter()
            .map(|(name, value)| (name, AttributeValue::S(value)))
            .collect();
        is_page_key(&key, listing.kind()).then_some(Self(key))
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub status: Option<Status>,
    pub client_id: Option<ClientId>,
}

/// The four key attributes a page boundary of the listing index consists of.
const PAGE_KEY_ATTRIBUTES: [&str; 4] = [
    PARTITION_KEY,
    SORT_KEY,
    LIST_INDEX_PARTITION_KEY,
    LIST_INDEX_SORT_KEY,
];

/// Checks that `key` is a page boundary of the `kind` partition of the listing index.
fn is_page_key(key: &Item, kind: &str) -> bool {
    key.len() == PAGE_KEY_ATTRIBUTES.len()
        && PAGE_KEY_ATTRIBUTES
            .iter()
            .all(|name| matches!(key.get(*name), Some(AttributeValue::S(_))))
        && key
            .get(LIST_INDEX_PARTITION_KEY)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(kind)
        && key
            .get(SORT_KEY)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            == Some(kind)
}

/// A filter expression with its attribute names and values.
struct Filter<'a> {
    expression: String,
    names: Vec<(&'a str, &'a str)>,
    values: Vec<(&'a str, AttributeValue)>,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

impl Store {
    async fn query_listing(
        &self,
        kind: &str,
        limit: i32,
        start: Option<PageKey>,
        filter: Option<Filter<'_>>,
    ) -> Result<(Vec<Item>, Option<PageKey>), StoreError> {
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(LIST_INDEX)
            .key_condition_expression("#gpk = :kind")
            .expression_attribute_names("#gpk", LIST_INDEX_PARTITION_KEY)
            .expression_attribute_values(":kind", s(kind))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start.map(|key| key.0));
        if let Some(filter) = filter {
            request = request.filter_expression(filter.expression);
            for (placeholder, name) in filter.names {
                request = request.expression_attribute_names(placeholder, name);
            }
            for (placeholder, value) in filter.values {
                request = request.expression_attribute_values(placeholder, value);
            }
        }
        let output = request.send().await.map_err(StoreError::request)?;
        Ok((
            output.items.unwrap_or_default(),
            output.last_evaluated_key.map(PageKey),
        ))
    }

    /// One page of device authorizations, newest first, filtered by status (derived at
    /// `now`, so that `expired` means past `expires_at` though still stored) and client.
    ///
    /// `limit` bounds the items DynamoDB reads, before the filter: a filtered page may
    /// hold fewer, even none, and still have a next page.
    pub async fn list_device_authorizations(
        &self,
        filter: &DeviceFilter,
        limit: i32,
        start: Option<PageKey>,
        now: Timestamp,
    ) -> Result<Page<DeviceAuthorization>, StoreError> {
        let mut clauses = Vec::new();
        let mut names = Vec::new();
        let mut values = Vec::new();
        if let Some(status) = filter.status {
            names.push(("#status", attr::STATUS));
            names.push(("#expires", attr::EXPIRES_AT));
            values.push((":now", AttributeValue::N(now.as_millis().to_string())));
            let clause = match status {
                Status::Pending => "#status = :pending AND #expires > :now",
                Status::Approved => "#status = :approved AND #expires > :now",
                Status::Denied => "#status = :denied",
                Status::Consumed => "#status = :consumed",
                Status::Expired => "#status IN (:pending, :approved) AND #expires <= :now",
            };
            for (placeholder, stored) in [
                (":pending", Status::Pending),
                (":approved", Status::Approved),
                (":denied", Status::Denied),
                (":consumed", Status::Consumed),
            ] {
                if clause.contains(placeholder) {
                    values.push((placeholder, s(stored.as_str())));
                }
            }
            if !clause.contains(":now") {
                values.retain(|(p, _)| *p != ":now");
                names.retain(|(p, _)| *p != "#expires");
            }
            clauses.push(clause.to_owned());
        }
        if let Some(client_id) = &filter.client_id {
            names.push(("#client", attr::CLIENT_ID));
            values.push((":client", s(client_id.as_str())));
            clauses.push("#client = :client".to_owned());
        }
        let filter_expression = (!clauses.is_empty()).then(|| Filter {
            expression: clauses.join(" AND "),
            names,
            values,
        });
        let (items, next) = self
            .query_listing(
                Listing::DeviceAuthorizations.kind(),
                limit,
                start,
                filter_expression,
            )
            .await?;
        Ok(Page {
            items: items
                .iter()
                .map(item::device_from_item)
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    /// One page of clients, newest first.
    pub async fn list_clients(
        &self,
        limit: i32,
        start: Option<PageKey>,
    ) -> Result<Page<OAuthClient>, StoreError> {
        let (items, next) = self
            .query_listing(Listing::Clients.kind(), limit, start, None)
            .await?;
        Ok(Page {
            items: items
                .iter()
                .map(item::client_from_item)
                .collect::<Result<_, _>>()?,
            next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn page_key(kind: &str) -> Item {
        HashMap::from([
            (PARTITION_KEY.to_owned(), s(&format!("{kind}#x"))),
            (SORT_KEY.to_owned(), s(kind)),
            (LIST_INDEX_PARTITION_KEY.to_owned(), s(kind)),
            (LIST_INDEX_SORT_KEY.to_owned(), s("000000000000001#x")),
        ])
    }

    #[test]
    fn page_keys_must_stay_in_their_partition() {
        assert!(is_page_key(&page_key(DEVICE_KIND), DEVICE_KIND));
        assert!(!is_page_key(&page_key(CLIENT_KIND), DEVICE_KIND));
        let mut extra = page_key(DEVICE_KIND);
        extra.insert("other".into(), s("x"));
        assert!(!is_page_key(&extra, DEVICE_KIND));
        let mut number = page_key(DEVICE_KIND);
        number.insert(PARTITION_KEY.into(), AttributeValue::N("1".into()));
        assert!(!is_page_key(&number, DEVICE_KIND));
    }

    #[test]
    fn page_keys_round_trip_through_text_for_their_listing_only() {
        let key = PageKey(page_key(DEVICE_KIND));
        let text = key.encode();
        assert_eq!(
            PageKey::decode(&text, Listing::DeviceAuthorizations),
            Some(key)
        );
        assert_eq!(PageKey::decode(&text, Listing::Clients), None);
        assert_eq!(PageKey::decode("{}", Listing::Clients), None);
        assert_eq!(PageKey::decode("not json", Listing::Clients), None);
    }
}
