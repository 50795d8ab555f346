//! SDK interceptors: what a DynamoDB client sent, by operation and by the IAM action
//! each request needs.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// The DynamoDB operations a client has sent, in order (one entry per HTTP request,
/// retries included), read from the `X-Amz-Target` header.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The requests of one page of a sharded listing (every device authorization, or one
/// client's records or grants): a `Query` per shard, then one `BatchGetItem` per hundred
/// items found (`items` of them).
pub fn sharded_page(items: usize) -> Vec<String> {
    page(device_flow::store::INDEX_SHARDS as usize, items)
}

/// The requests of one page of a listing read from `partitions` index partitions.
pub fn page(partitions: usize, items: usize) -> Vec<String> {
    let mut requests = vec!["Query".to_owned(); partitions];
    requests.extend(std::iter::repeat_n(
        "BatchGetItem".to_owned(),
        items.div_ceil(100),
    ));
    requests
}

impl Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0
            .lock()
            .unwrap()
            .push(operation(context.request()).to_owned());
        Ok(())
    }
}

/// The DynamoDB operation of an outgoing request, from its `X-Amz-Target` header.
fn operation(request: &aws_sdk_dynamodb::config::http::HttpRequest) -> &str {
    request
        .headers()
        .get("x-amz-target")
        .unwrap_or("?")
        .trim_start_matches("DynamoDB_20120810.")
}

/// The IAM actions a client's requests needed, as `(action, index)` pairs (`""`: the
/// table): a transaction counts as the actions of its items, a `Query` names the index it
/// read.
#[derive(Debug, Clone, Default)]
pub struct IamLog {
    actions: Arc<Mutex<std::collections::BTreeSet<(String, String)>>>,
    /// The partition-key prefixes (`DEVICE#`, `JWKS`, …) of the items written
    /// (`PutItem`, `UpdateItem`, `DeleteItem`, alone or in a transaction): what
    /// `dynamodb:LeadingKeys` sees.
    written: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

/// The prefix of a partition key that a `dynamodb:LeadingKeys` pattern names: up to and
/// including the first `#`, or the whole key.
pub fn key_prefix(partition_key: &str) -> String {
    match partition_key.find('#') {
        Some(at) => partition_key[..=at].to_owned(),
        None => partition_key.to_owned(),
    }
}

impl IamLog {
    /// The partition-key prefixes of every item written, sorted.
    pub fn written_prefixes(&self) -> Vec<String> {
        self.written.lock().unwrap().iter().cloned().collect()
    }

    fn record_write(&self, item_or_key: &serde_json::Value) {
        if let Some(pk) = item_or_key[device_flow::store::table::PARTITION_KEY]["S"].as_str() {
            self.written.lock().unwrap().insert(key_prefix(pk));
        }
    }

    /// The actions on the table, on the listing index and on the client index, each sorted.
    pub fn actions(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let seen = self.actions.lock().unwrap();
        let of = |index: &str| {
            seen.iter()
                .filter(|(_, on)| on == index)
                .map(|(action, _)| action.clone())
                .collect()
        };
        (
            of(""),
            of(device_flow::store::LIST_INDEX),
            of(device_flow::store::CLIENT_INDEX),
        )
    }
}

impl Intercept for IamLog {
    fn name(&self) -> &'static str {
        "IamLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = operation(request);
        let body: serde_json::Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        let mut seen = self.actions.lock().unwrap();
        match operation {
            "TransactWriteItems" | "TransactGetItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, part) in item.as_object().into_iter().flatten() {
                        let action = match kind.as_str() {
                            "ConditionCheck" => "ConditionCheckItem".to_owned(),
                            other => format!("{other}Item"),
                        };
                        match kind.as_str() {
                            "Put" => self.record_write(&part["Item"]),
                            "Update" | "Delete" => self.record_write(&part["Key"]),
                            _ => {}
                        }
                        seen.insert((format!("dynamodb:{action}"), String::new()));
                    }
                }
            }
            _ => {
                match operation {
                    "PutItem" => self.record_write(&body["Item"]),
                    "UpdateItem" | "DeleteItem" => self.record_write(&body["Key"]),
                    _ => {}
                }
                let index = body["IndexName"].as_str().unwrap_or_default().to_owned();
                seen.insert((format!("dynamodb:{operation}"), index));
            }
        }
        Ok(())
    }
}

/// Every request a client sent, as `(operation, JSON body)`.
#[derive(Debug, Clone, Default)]
pub struct BodyLog(Arc<Mutex<Vec<(String, serde_json::Value)>>>);

impl BodyLog {
    pub fn take(&self) -> Vec<(String, serde_json::Value)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for BodyLog {
    fn name(&self) -> &'static str {
        "BodyLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let body = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .push((operation(request).to_owned(), body));
        Ok(())
    }
}
