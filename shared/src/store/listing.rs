//! Listing records, clients and grants newest first, never with a scan.
//!
//! Both indexes project keys only (see [`super::table`]), so a page is read in two steps:
//! one `Query` per index partition for the keys (a sharded listing reads its 32 shards at
//! once and merges them), then one `BatchGetItem` per hundred keys for the items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use tokio::task::JoinSet;

use super::item::{self, Item};
use super::table::{
    CLIENT_INDEX, CLIENT_INDEX_PARTITION_KEY, CLIENT_INDEX_SORT_KEY, INDEX_SHARDS, LIST_INDEX,
    LIST_INDEX_PARTITION_KEY, LIST_INDEX_SORT_KEY, PARTITION_KEY, SORT_KEY,
};
use super::{Store, StoreError};
use crate::domain::{ClientId, DeviceAuthorization, OAuthClient, Status};
use crate::time::Timestamp;

/// How many keys one `BatchGetItem` may ask for.
const BATCH_GET_LIMIT: usize = 100;

/// One page and where the next one starts (`None`: this was the last page).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<PageKey>,
}

/// Where a page of a listing starts: the index sort key (`<created ms>#<id>`) of the last
/// item of the page before; the page holds what sorts below it. Opaque outside the store;
/// it travels only inside a signed page token, which binds it to its listing and filters.
/// Being a bound on the sort key only, it cannot point outside the listing's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageKey(String);

impl PageKey {
    /// The key as text, for the page token to carry.
    pub fn encode(&self) -> String {
        self.0.clone()
    }

    /// Reads back what [`PageKey::encode`] wrote: fifteen digits, `#`, an id.
    pub fn decode(text: &str) -> Option<Self> {
        let (created, id) = text.split_once('#')?;
        let well_formed = created.len() == 15
            && created.bytes().all(|b| b.is_ascii_digit())
            && !id.is_empty()
            && id.len() <= 256
            && !id.chars().any(char::is_control);
        well_formed.then(|| Self(text.to_owned()))
    }
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    pub status: Option<Status>,
    pub client_id: Option<ClientId>,
}

/// The index partitions one listing reads: one, or every shard of a sharded one.
#[derive(Debug, Clone)]
pub(crate) struct Partitions {
    index: &'static str,
    partition_key: &'static str,
    sort_key: &'static str,
    values: Vec<String>,
}

impl Partitions {
    fn listing(values: Vec<String>) -> Self {
        Self {
            index: LIST_INDEX,
            partition_key: LIST_INDEX_PARTITION_KEY,
            sort_key: LIST_INDEX_SORT_KEY,
            values,
        }
    }

    fn by_client(values: Vec<String>) -> Self {
        Self {
            index: CLIENT_INDEX,
            partition_key: CLIENT_INDEX_PARTITION_KEY,
            sort_key: CLIENT_INDEX_SORT_KEY,
            values,
        }
    }

    /// Every device authorization: the 32 shards of `gsi1`.
    pub(crate) fn devices() -> Self {
        Self::listing((0..INDEX_SHARDS).map(item::devices_partition).collect())
    }

    /// One client's device authorizations: its 32 shards of `gsi2`.
    pub(crate) fn client_devices(client_id: &ClientId) -> Self {
        Self::by_client(
            (0..INDEX_SHARDS)
                .map(|shard| item::client_devices_partition(client_id, shard))
                .collect(),
        )
    }

    /// One client's grants: its 32 shards of `gsi2`.
    pub(crate) fn client_grants(client_id: &ClientId) -> Self {
        Self::by_client(
            (0..INDEX_SHARDS)
                .map(|shard| item::client_grants_partition(client_id, shard))
                .collect(),
        )
    }

    /// One account's grants: one partition of `gsi1`.
    pub(crate) fn account_grants(account_id: &str) -> Self {
        Self::listing(vec![item::account_grants_partition(account_id)])
    }

    /// The clients: one partition of `gsi1`.
    pub(crate) fn clients() -> Self {
        Self::listing(vec![item::clients_partition()])
    }

    /// How many `Query` requests one page reads.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// What one partition's `Query` returned: `(sort key, base-table key)` newest first, and
/// whether the partition holds more.
struct Shard {
    keys: Vec<(String, Item)>,
    more: bool,
}

/// Merges the partitions' answers into one page of at most `limit` keys, newest first.
///
/// A partition that holds more than it returned may hold items newer than another
/// partition's oldest returned one, so only keys at or above the highest such "floor"
/// are safe to hand out; the rest come again on the next page, which starts below the
/// last key handed out.
fn merge(shards: Vec<Shard>, limit: usize) -> (Vec<Item>, Option<PageKey>) {
    let floor = shards
        .iter()
        .filter(|shard| shard.more)
        .filter_map(|shard| shard.keys.last().map(|(sort, _)| sort.clone()))
        .max();
    let more = shards.iter().any(|shard| shard.more);
    let mut keys: Vec<(String, Item)> = shards.into_iter().flat_map(|s| s.keys).collect();
    keys.sort_by(|a, b| b.0.cmp(&a.0));
    let total = keys.len();
    keys.retain(|(sort, _)| floor.as_ref().is_none_or(|floor| sort >= floor));
    let safe = keys.len();
    keys.truncate(limit);
    let next = if more || safe < total || keys.len() < safe {
        keys.last().map(|(sort, _)| PageKey(sort.clone()))
    } else {
        None
    };
    (keys.into_iter().map(|(_, key)| key).collect(), next)
}

impl Store {
    /// The base-table keys of up to `limit` items of `partitions`, newest first, below
    /// `start`; one `Query` per partition, eight at a time.
    ///
    /// A sharded listing asks each shard for about four times its share of the page (plus
    /// four), not for a whole page each: ids spread evenly, so that is nearly always
    /// enough to fill the page, and when it is not, the page is shorter and the next one
    /// starts where this one stopped (see [`merge`]). A page of 50 reads at most 352
    /// index entries, not 1,600.
    pub(crate) async fn query_keys(
        &self,
        partitions: &Partitions,
        limit: i32,
        start: Option<&PageKey>,
    ) -> Result<(Vec<Item>, Option<PageKey>), StoreError> {
        let condition = if start.is_some() {
            "#pk = :partition AND #sk < :before"
        } else {
            "#pk = :partition"
        };
        let shards = i32::try_from(partitions.len()).unwrap_or(i32::MAX).max(1);
        let per_shard = if shards == 1 {
            limit
        } else {
            limit.min((limit.saturating_mul(4) + shards - 1) / shards + 4)
        };
        let mut queries = Vec::with_capacity(partitions.len());
        for partition in &partitions.values {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(partitions.index)
                .key_condition_expression(condition)
                .expression_attribute_names("#pk", partitions.partition_key)
                .expression_attribute_values(":partition", AttributeValue::S(partition.clone()))
                .scan_index_forward(false)
                .limit(per_shard);
            if let Some(start) = start {
                request = request
                    .expression_attribute_names("#sk", partitions.sort_key)
                    .expression_attribute_values(":before", AttributeValue::S(start.0.clone()));
            }
            let sort_key = partitions.sort_key;
            queries.push(async move {
                let output = request.send().await.map_err(StoreError::request)?;
                let more = output.last_evaluated_key.is_some();
                let keys = output
                    .items
                    .unwrap_or_default()
                    .into_iter()
                    .map(|found| index_entry(found, sort_key))
                    .collect::<Result<_, _>>()?;
                Ok::<_, StoreError>(Shard { keys, more })
            });
        }
        let shards = bounded(queries).await?;
        Ok(merge(shards, usize::try_from(limit).unwrap_or(0)))
    }

    /// The base-table keys of every item of `partitions` created at or after `since`:
    /// each partition paged through on its own, eight partitions at a time, in no order.
    /// Up to `limit` keys of the `shard`-th partition of `partitions`, oldest first,
    /// after the sort key `after` (or from `since`, or from the start): one `Query`.
    /// Returns them with their sort keys, and whether the partition holds more.
    pub(crate) async fn keys_after(
        &self,
        partitions: &Partitions,
        shard: usize,
        after: Option<&str>,
        since: Option<Timestamp>,
        limit: i32,
    ) -> Result<(Vec<(String, Item)>, bool), StoreError> {
        let partition = partitions
            .values
            .get(shard)
            .ok_or(StoreError::Corrupt(PARTITION_KEY))?;
        let bound = after
            .map(str::to_owned)
            .or_else(|| since.map(|since| format!("{:015}", since.as_millis())));
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(partitions.index)
            .expression_attribute_names("#pk", partitions.partition_key)
            .expression_attribute_values(":partition", AttributeValue::S(partition.clone()))
            .scan_index_forward(true)
            .limit(limit);
        request = match bound {
            Some(bound) => request
                .key_condition_expression("#pk = :partition AND #sk > :after")
                .expression_attribute_names("#sk", partitions.sort_key)
                .expression_attribute_values(":after", AttributeValue::S(bound)),
            None => request.key_condition_expression("#pk = :partition"),
        };
        let output = request.send().await.map_err(StoreError::request)?;
        let more = output.last_evaluated_key.is_some();
        let keys = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|found| index_entry(found, partitions.sort_key))
            .collect::<Result<_, _>>()?;
        Ok((keys, more))
    }

    pub(crate) async fn keys_since(
        &self,
        partitions: &Partitions,
        since: Timestamp,
    ) -> Result<Vec<Item>, StoreError> {
        let mut queries = Vec::with_capacity(partitions.len());
        for partition in &partitions.values {
            let request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(partitions.index)
                .key_condition_expression("#pk = :partition AND #sk >= :since")
                .expression_attribute_names("#pk", partitions.partition_key)
                .expression_attribute_names("#sk", partitions.sort_key)
                .expression_attribute_values(":partition", AttributeValue::S(partition.clone()))
                .expression_attribute_values(
                    ":since",
                    AttributeValue::S(format!("{:015}", since.as_millis())),
                );
            let sort_key = partitions.sort_key;
            queries.push(async move {
                let mut keys = Vec::new();
                let mut start = None;
                loop {
                    let output = request
                        .clone()
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .map_err(StoreError::request)?;
                    for found in output.items.unwrap_or_default() {
                        keys.push(index_entry(found, sort_key)?.1);
                    }
                    start = output.last_evaluated_key;
                    if start.is_none() {
                        return Ok::<_, StoreError>(keys);
                    }
                }
            });
        }
        Ok(bounded(queries).await?.into_iter().flatten().collect())
    }

    /// The items with these base-table keys, in the keys' order, with `BatchGetItem`s of
    /// at most a hundred keys (strongly consistent with `consistent`); unprocessed keys
    /// (throttling inside a batch) are asked for again, twice. A key whose item is gone
    /// (deleted, or removed by TTL since the index was read) is skipped.
    pub(crate) async fn get_items(
        &self,
        keys: Vec<Item>,
        consistent: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let identity = |item: &Item| -> Option<(String, String)> {
            Some((
                item.get(PARTITION_KEY)?.as_s().ok()?.clone(),
                item.get(SORT_KEY)?.as_s().ok()?.clone(),
            ))
        };
        let order: Vec<(String, String)> = keys.iter().filter_map(identity).collect();
        let mut found: HashMap<(String, String), Item> = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_LIMIT) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(consistent)
                .build()?;
            let mut attempts = 0;
            loop {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(StoreError::request)?;
                for got in output
                    .responses
                    .and_then(|mut tables| tables.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(id) = identity(&got) {
                        found.insert(id, got);
                    }
                }
                match output
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&self.table))
                {
                    Some(rest) if !rest.keys().is_empty() => {
                        attempts += 1;
                        if attempts == 3 {
                            return Err(StoreError::Unprocessed);
                        }
                        request = rest;
                    }
                    _ => break,
                }
            }
        }
        Ok(order.iter().filter_map(|id| found.remove(id)).collect())
    }

    /// One page of `partitions`' items, newest first, read as `convert` says.
    async fn list<T>(
        &self,
        partitions: &Partitions,
        limit: i32,
        start: Option<PageKey>,
        convert: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let (keys, next) = self.query_keys(partitions, limit, start.as_ref()).await?;
        let items = self.get_items(keys, false).await?;
        Ok(Page {
            items: items.iter().map(convert).collect::<Result<_, _>>()?,
            next,
        })
    }

    /// One page of device authorizations, newest first, filtered by status (derived at
    /// `now`, so that `expired` means past `expires_at` though still stored) and client.
    ///
    /// Without a client: the 32 shards of `gsi1`; with one: that client's 32 shards of
    /// `gsi2`. Either way 32 `Query` requests and one `BatchGetItem` per hundred items.
    /// `limit` bounds the items read, before the status filter: a filtered page may hold
    /// fewer, even none, and still have a next page.
    pub async fn list_device_authorizations(
        &self,
        filter: &DeviceFilter,
        limit: i32,
        start: Option<PageKey>,
        now: Timestamp,
    ) -> Result<Page<DeviceAuthorization>, StoreError> {
        let partitions = match &filter.client_id {
            Some(client_id) => Partitions::client_devices(client_id),
            None => Partitions::devices(),
        };
        let mut page = self
            .list(&partitions, limit, start, item::device_from_item)
            .await?;
        if let Some(status) = filter.status {
            page.items.retain(|record| record.status(now) == status);
        }
        Ok(page)
    }

    /// One page of clients, newest first: one `Query` and one `BatchGetItem` per hundred.
    pub async fn list_clients(
        &self,
        limit: i32,
        start: Option<PageKey>,
    ) -> Result<Page<OAuthClient>, StoreError> {
        self.list(&Partitions::clients(), limit, start, item::client_from_item)
            .await
    }

    /// One page of grants of `partitions`, newest first.
    pub(crate) async fn list_grant_items(
        &self,
        partitions: &Partitions,
        limit: i32,
        start: Option<PageKey>,
    ) -> Result<Page<crate::domain::Grant>, StoreError> {
        self.list(partitions, limit, start, item::grant_from_item)
            .await
    }
}

/// How many of a listing's queries are in flight at once: enough that 32 shards take four
/// round trips, few enough that no query waits long behind the others for a connection or
/// a slow server (each has its own timeout).
const CONCURRENT_QUERIES: usize = 8;

/// Runs `tasks`, at most [`CONCURRENT_QUERIES`] at a time; the results in no order.
pub(crate) async fn bounded<T, F>(tasks: Vec<F>) -> Result<Vec<T>, StoreError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let mut waiting = tasks.into_iter();
    let mut running = JoinSet::new();
    for task in waiting.by_ref().take(CONCURRENT_QUERIES) {
        running.spawn(task);
    }
    let mut results = Vec::new();
    while let Some(done) = running.join_next().await {
        results.push(done.map_err(|_| StoreError::Corrupt(PARTITION_KEY))??);
        if let Some(task) = waiting.next() {
            running.spawn(task);
        }
    }
    Ok(results)
}

/// An index entry (keys only) as its index sort key and its base-table key.
fn index_entry(mut found: Item, sort_key: &str) -> Result<(String, Item), StoreError> {
    let Some(AttributeValue::S(sort)) = found.remove(sort_key) else {
        return Err(StoreError::Corrupt(SORT_KEY));
    };
    let key: Item = [PARTITION_KEY, SORT_KEY]
        .into_iter()
        .filter_map(|name| found.remove_entry(name))
        .collect();
    if key.len() == 2 {
        Ok((sort, key))
    } else {
        Err(StoreError::Corrupt(PARTITION_KEY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> Item {
        HashMap::from([(PARTITION_KEY.to_owned(), AttributeValue::S(name.to_owned()))])
    }

    fn shard(sorts: &[&str], more: bool) -> Shard {
        Shard {
            keys: sorts.iter().map(|s| ((*s).to_owned(), key(s))).collect(),
            more,
        }
    }

    fn names(keys: &[Item]) -> Vec<&str> {
        keys.iter()
            .map(|k| k[PARTITION_KEY].as_s().unwrap().as_str())
            .collect()
    }

    #[test]
    fn merging_shards_is_newest_first_and_stops_at_the_limit() {
        let (keys, next) = merge(
            vec![shard(&["5", "3"], false), shard(&["4", "1"], false)],
            3,
        );
        assert_eq!(names(&keys), ["5", "4", "3"]);
        assert_eq!(next, Some(PageKey("3".into())));
        let (keys, next) = merge(vec![shard(&["5", "3"], false), shard(&["4"], false)], 3);
        assert_eq!(names(&keys), ["5", "4", "3"]);
        assert_eq!(next, None);
    }

    #[test]
    fn a_partition_with_more_holds_back_what_sorts_below_its_last_key() {
        // The first shard stopped at 8 with more to come (9 > unseen > ... could be 7):
        // nothing below 8 may be handed out before the shard is read further.
        let (keys, next) = merge(vec![shard(&["9", "8"], true), shard(&["6", "5"], false)], 3);
        assert_eq!(names(&keys), ["9", "8"]);
        assert_eq!(next, Some(PageKey("8".into())));
    }

    #[test]
    fn page_keys_are_a_creation_time_and_an_id() {
        let key = PageKey::decode("001700000000123#abc").unwrap();
        assert_eq!(key.encode(), "001700000000123#abc");
        for bad in [
            "",
            "{}",
            "not json",
            "1700000000123#abc",
            "001700000000123#",
            "00170000000012x#abc",
            "001700000000123#a\u{0}b",
            "001700000000123",
        ] {
            assert_eq!(PageKey::decode(bad), None, "{bad:?}");
        }
        assert_eq!(
            PageKey::decode(&format!("001700000000123#{}", "a".repeat(257))),
            None
        );
    }
}
