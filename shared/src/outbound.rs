//! Outbound HTTP(S) to the identity provider (its discovery document, keys and token
//! endpoint): one client per cold start, every exchange bounded in time and size.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use lambda_http::http;

/// How long one exchange may take, answer included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a discovery document or key set is a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Why an exchange failed. The messages name no URL, header or body.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the HTTPS client could not be built: {0}")]
    Tls(String),
    #[error("the request timed out")]
    Timeout,
    #[error("the request failed")]
    Request(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the answer was too large or unreadable")]
    Body,
}

/// An HTTP client for `https://` (and `http://`, which local development uses).
///
/// Built at its first exchange, not before: reading the system's root certificates takes a
/// few milliseconds, which a cold start whose requests never go out (most of the
/// verification page's) would pay for nothing. Clones share the one client.
#[derive(Clone, Default)]
pub struct Outbound {
    client: Arc<OnceLock<Result<Client, String>>>,
}

impl Outbound {
    pub fn new() -> Self {
        Self::default()
    }

    fn client(&self) -> Result<&Client, OutboundError> {
        self.client
            .get_or_init(|| {
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_native_roots(provider)
                    .map_err(|e| e.to_string())?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Ok(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(connector),
                )
            })
            .as_ref()
            .map_err(|e| OutboundError::Tls(e.clone()))
    }

    /// Sends `request` and reads the whole answer, within [`TIMEOUT`] and
    /// [`MAX_BODY_BYTES`].
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, OutboundError> {
        let exchange = async {
            let (parts, body) = request.into_parts();
            let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
            let response = self
                .client()?
                .request(request)
                .await
                .map_err(|e| OutboundError::Request(Box::new(e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| OutboundError::Body)?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| OutboundError::Timeout)?
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<http::Response<Vec<u8>>, OutboundError> {
        let request = http::Request::get(url)
            .body(Vec::new())
            .map_err(|e| OutboundError::Request(Box::new(e)))?;
        self.send(request).await
    }
}
