//! A fault-injecting proxy in front of the DynamoDB-compatible server: per operation, the
//! tests make requests throttled, failed, cancelled by a conflict, slow past the SDK's
//! timeout, or cut off; everything else passes through untouched.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;

/// What happens to a request of a faulty operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ProvisionedThroughputExceededException`.
    ThroughputExceeded,
    /// `ThrottlingException`.
    Throttling,
    /// `InternalServerError` (HTTP 500).
    InternalServerError,
    /// A transaction cancelled by `TransactionConflict` on every item (or, for a single-item
    /// write, `TransactionConflictException`).
    TransactionConflict,
    /// Answered only after this long (past the SDK's timeouts).
    Slow(Duration),
    /// The connection is dropped without an answer.
    Reset,
}

type Response = hyper::Response<Full<Bytes>>;

#[derive(Debug, Clone)]
struct Passing {
    fault: Fault,
    left: usize,
    only_if_body_has: Option<String>,
}

/// The proxy, on a loopback port until the test's runtime ends.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    faults: Arc<Mutex<HashMap<String, Fault>>>,
    /// Faults that end after so many requests: operation -> (fault, requests left, and
    /// the text a request's body must hold to count, if any).
    passing: Arc<Mutex<HashMap<String, Passing>>>,
    /// Requests the server itself answered slower than the SDK's attempt timeout allows.
    slow: Arc<AtomicUsize>,
}

/// An answer slower than this reaches the SDK after its 600 ms attempt timeout (or nearly):
/// the store call may fail as unavailable without any fault injected.
const SLOW_ANSWER: Duration = Duration::from_millis(500);

impl FaultProxy {
    /// A proxy in front of `upstream` (the server `AWS_ENDPOINT_URL_DYNAMODB` names).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        let proxy = Self {
            url,
            faults: Arc::default(),
            passing: Arc::default(),
            slow: Arc::default(),
        };
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<Full<Bytes>>();
        let upstream: hyper::Uri = upstream.parse().expect("an upstream URL");
        let served = proxy.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (proxy, client, upstream) = (served.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (proxy, client, upstream) =
                            (proxy.clone(), client.clone(), upstream.clone());
                        async move { proxy.answer(request, &client, &upstream).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        proxy
    }

    /// Makes every request of `operation` (`UpdateItem`, `TransactWriteItems`, …) fail so.
    pub fn fail(&self, operation: &str, fault: Fault) {
        self.faults
            .lock()
            .unwrap()
            .insert(operation.to_owned(), fault);
    }

    /// Makes the next `times` requests of `operation` fail so; later ones pass.
    pub fn fail_next(&self, operation: &str, fault: Fault, times: usize) {
        self.fail_next_passing(operation, fault, times, None);
    }

    /// Makes the next `times` requests of `operation` whose body holds `needle` (a key,
    /// say `"GRANT#`) fail so; every other request passes.
    pub fn fail_next_with(&self, operation: &str, needle: &str, fault: Fault, times: usize) {
        self.fail_next_passing(operation, fault, times, Some(needle.to_owned()));
    }

    fn fail_next_passing(
        &self,
        operation: &str,
        fault: Fault,
        left: usize,
        only_if_body_has: Option<String>,
    ) {
        self.passing.lock().unwrap().insert(
            operation.to_owned(),
            Passing {
                fault,
                left,
                only_if_body_has,
            },
        );
    }

    /// Ends every fault.
    /// How many requests the server (not an injected fault) answered so slowly that the
    /// SDK may have given up on them: on a loaded machine a test then sees a 503 that no
    /// fault caused.
    pub fn slow_answers(&self) -> usize {
        self.slow.load(Ordering::Relaxed)
    }

    pub fn heal(&self) {
        self.faults.lock().unwrap().clear();
        self.passing.lock().unwrap().clear();
    }

    async fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        client: &hyper_util::client::legacy::Client<
            hyper_util::client::legacy::connect::HttpConnector,
            Full<Bytes>,
        >,
        upstream: &hyper::Uri,
    ) -> Result<Response, std::io::Error> {
        let (mut parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim_start_matches("DynamoDB_20120810.")
            .to_owned();
        let passing = {
            let mut passing = self.passing.lock().unwrap();
            match passing.get_mut(&operation) {
                Some(p)
                    if p.left > 0
                        && p.only_if_body_has.as_ref().is_none_or(|needle| {
                            String::from_utf8_lossy(&body).contains(needle.as_str())
                        }) =>
                {
                    p.left -= 1;
                    Some(p.fault)
                }
                _ => None,
            }
        };
        let fault = passing.or_else(|| self.faults.lock().unwrap().get(&operation).copied());
        let error = |status: u16, kind: &str, extra: &str| {
            let body = format!(
                r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"injected"{extra}}}"#
            );
            let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a status");
            response.headers_mut().insert(
                "content-type",
                "application/x-amz-json-1.0".parse().expect("a header"),
            );
            Ok(response)
        };
        match fault {
            Some(Fault::ThroughputExceeded) => {
                return error(400, "ProvisionedThroughputExceededException", "");
            }
            Some(Fault::Throttling) => return error(400, "ThrottlingException", ""),
            Some(Fault::InternalServerError) => return error(500, "InternalServerError", ""),
            Some(Fault::TransactionConflict) if operation == "TransactWriteItems" => {
                let items = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|b| b["TransactItems"].as_array().map(Vec::len))
                    .unwrap_or(1);
                let reasons = vec![r#"{"Code":"TransactionConflict"}"#; items].join(",");
                return error(
                    400,
                    "TransactionCanceledException",
                    &format!(r#","CancellationReasons":[{reasons}]"#),
                );
            }
            Some(Fault::TransactionConflict) => {
                return error(400, "TransactionConflictException", "");
            }
            Some(Fault::Slow(delay)) => tokio::time::sleep(delay).await,
            Some(Fault::Reset) => {
                return Err(std::io::Error::other("connection reset by the fault proxy"));
            }
            None => {}
        }
        let mut uri = upstream.clone().into_parts();
        uri.path_and_query = parts.uri.path_and_query().cloned();
        parts.uri = hyper::Uri::from_parts(uri).expect("an upstream URI");
        let forwarded = hyper::Request::from_parts(parts, Full::new(body));
        let started = Instant::now();
        let response = client.request(forwarded).await;
        if started.elapsed() > SLOW_ANSWER {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
        let response = response.map_err(std::io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(hyper::Response::from_parts(parts, Full::new(body)))
    }
}
