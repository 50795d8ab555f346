//! The functions over real HTTP on a loopback port, routed as API Gateway routes them.

use std::sync::Arc;

use lambda_http::{Body, Request};

use crate::env::TestEnv;
use crate::provider::TestProvider;
use crate::requests::{from_ip, routed};

impl TestEnv {
    /// Serves every function over real HTTP on a free loopback port, routed by path as
    /// API Gateway and `cargo lambda watch` route, with the issuer set to that address;
    /// returns the base URL. The server stops with the test's runtime.
    pub async fn serve(&self) -> String {
        let provider = TestProvider::start().await;
        self.serve_with_provider(&provider.issuer).await
    }

    /// [`TestEnv::serve`], with the verification page signing people in at the OpenID
    /// provider `issuer`.
    pub async fn serve_with_provider(&self, issuer: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let mut served = self.clone();
        served.set_var("ISSUER", &base);
        served.set_var("VERIFICATION_URI", &format!("{base}/device"));
        let apps = Arc::new(Apps {
            device: served.device_app(),
            token: served.token_app().await,
            verify: served.verify_app().await,
            admin: served.admin_app().await,
            discovery: served.discovery_app(),
            page: served.page_app(issuer),
            introspection: served.introspection_app().await,
        });
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                let apps = Arc::clone(&apps);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let apps = Arc::clone(&apps);
                        async move {
                            let response = apps.dispatch(request, peer.ip()).await;
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        base
    }
}

/// The functions behind [`TestEnv::serve`].
struct Apps {
    device: device_authorization::App,
    token: token::App,
    verify: verify::App,
    admin: admin::App,
    discovery: discovery::App,
    page: verification_page::App,
    introspection: introspection::App,
}

impl Apps {
    /// What API Gateway does: the HTTP request becomes the function's request (with the
    /// caller's address as the source IP), routed by path, and the function's response
    /// becomes the HTTP response.
    async fn dispatch(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: std::net::IpAddr,
    ) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
        use http_body_util::BodyExt as _;
        let (parts, body) = request.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let body = if bytes.is_empty() {
            Body::Empty
        } else {
            Body::Binary(bytes.to_vec())
        };
        let request = routed(from_ip(Request::from_parts(parts, body), &peer.to_string()));
        let path = request.uri().path().to_owned();
        let response = match path.as_str() {
            "/oauth2/v1/device" => device_authorization::handle(&self.device, request).await,
            "/oauth2/v1/token" => token::handle(&self.token, request).await,
            "/oauth2/v1/revoke" | "/oauth2/v1/introspect" | "/oauth2/v1/userinfo" => {
                introspection::handle(&self.introspection, request).await
            }
            p if p.starts_with("/v2/oidc/device_authorization/")
                || p.starts_with("/v2/oidc/device_grants") =>
            {
                verify::handle(&self.verify, request).await
            }
            p if p.starts_with("/admin/") => admin::handle(&self.admin, request).await,
            p if p == "/device" || p.starts_with("/device/") => {
                verification_page::handle(&self.page, request).await
            }
            _ => discovery::handle(&self.discovery, request).await,
        };
        let (parts, body) = response.into_parts();
        hyper::Response::from_parts(
            parts,
            http_body_util::Full::new(hyper::body::Bytes::from(body.as_ref().to_vec())),
        )
    }
}
