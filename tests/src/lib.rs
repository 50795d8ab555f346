//! The integration-test harness: every test gets its own table on the real
//! DynamoDB-compatible server that `make test` starts, a DynamoDB client that records
//! every request it sends, and helpers to build API Gateway requests.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use device_flow::domain::{
    Approval, ClientId, ClientSecret, DeviceCode, GrantType, NewClient, OAuthClient, ScopeSet,
};
use device_flow::store::{DecideOutcome, table};
use device_flow::time::{Clock, SystemClock, Timestamp};
use device_flow::token::KeySet;
use device_flow::{Config, Store};
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, Response};

pub type Item = HashMap<String, AttributeValue>;

/// The DynamoDB operations a client has sent, in order (one entry per HTTP request,
/// retries included), read from the `X-Amz-Target` header.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
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

/// The IAM actions a client's requests needed, as `(action, on the index)` pairs: a
/// transaction counts as the actions of its items, a `Query` names the index it read.
#[derive(Debug, Clone, Default)]
pub struct IamLog(Arc<Mutex<std::collections::BTreeSet<(String, bool)>>>);

impl IamLog {
    /// The actions on the table and on the index, each sorted.
    pub fn actions(&self) -> (Vec<String>, Vec<String>) {
        let seen = self.0.lock().unwrap();
        let of = |index: bool| {
            seen.iter()
                .filter(|(_, on_index)| *on_index == index)
                .map(|(action, _)| action.clone())
                .collect()
        };
        (of(false), of(true))
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
        let mut seen = self.0.lock().unwrap();
        match operation {
            "TransactWriteItems" | "TransactGetItems" => {
                for item in body["TransactItems"].as_array().into_iter().flatten() {
                    for kind in item.as_object().into_iter().flat_map(|o| o.keys()) {
                        let action = match kind.as_str() {
                            "ConditionCheck" => "ConditionCheckItem".to_owned(),
                            other => format!("{other}Item"),
                        };
                        seen.insert((format!("dynamodb:{action}"), false));
                    }
                }
            }
            _ => {
                let on_index = body.get("IndexName").is_some();
                seen.insert((format!("dynamodb:{operation}"), on_index));
            }
        }
        Ok(())
    }
}

/// One test's world: a fresh table and a counting client.
pub struct TestEnv {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub requests: RequestLog,
    pub config: Config,
}

impl TestEnv {
    /// Creates a uniquely named table on the server named by `AWS_ENDPOINT_URL_DYNAMODB`.
    ///
    /// # Panics
    /// When no server is configured: tests that need DynamoDB fail loudly, never skip.
    pub async fn new() -> Self {
        assert!(
            std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok_and(|v| !v.is_empty()),
            "AWS_ENDPOINT_URL_DYNAMODB is not set: these tests need a DynamoDB-compatible \
             server. Run them with `make test`, which starts one."
        );
        let sdk = aws_config::load_from_env().await;
        let requests = RequestLog::default();
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .interceptor(requests.clone())
                .build(),
        );
        let mut suffix = [0u8; 8];
        device_flow::secret::fill_random(&mut suffix);
        let table_name = format!(
            "test-{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        table::create_table(&dynamodb, &table_name)
            .await
            .expect("creating the test table failed; is the DynamoDB server running?");
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table_name.clone()),
            "ISSUER" => Some("https://auth.example.test".into()),
            "VERIFICATION_URI" => Some("https://example.test/device".into()),
            "USER_TOKEN_ISSUER" => Some(USER_TOKEN_ISSUER.into()),
            "USER_TOKEN_AUDIENCE" => Some(USER_TOKEN_AUDIENCE.into()),
            "USER_TOKEN_HS256_SECRET" => Some(USER_TOKEN_SECRET.into()),
            "ADMIN_CURSOR_SECRET" => Some("test-admin-cursor-secret-0123456789abcdef".into()),
            _ => None,
        })
        .expect("test configuration");
        requests.take();
        Self {
            dynamodb,
            requests,
            config,
        }
    }

    pub fn store(&self) -> Store {
        Store::new(self.dynamodb.clone(), self.config.table_name.clone())
    }

    /// A store on this test's table whose client also records the IAM actions it needs.
    pub fn store_recording(&self, log: &IamLog) -> Store {
        let client = aws_sdk_dynamodb::Client::from_conf(
            self.dynamodb
                .config()
                .to_builder()
                .interceptor(log.clone())
                .build(),
        );
        Store::new(client, self.config.table_name.clone())
    }

    /// The device-authorization function's state, on this test's table.
    pub fn device_app(&self) -> device_authorization::App {
        device_authorization::App::new(self.config.clone(), self.store())
    }

    /// The token function's state with `keys`, having published its JWKS as its cold
    /// start does.
    pub async fn token_app_with(&self, keys: &str) -> token::App {
        let keys = KeySet::from_json(keys).expect("test key set");
        self.store()
            .publish_jwks(&keys.jwks_json(), keys.version())
            .await
            .expect("publishing the JWKS");
        self.requests.take();
        token::App::new(self.config.clone(), self.store(), keys)
    }

    /// The token function's state with one RS256 key, `test-rsa`.
    pub async fn token_app(&self) -> token::App {
        self.token_app_with(&key_set(
            1,
            "test-rsa",
            &[("test-rsa", "RS256", TEST_RSA_PEM)],
        ))
        .await
    }

    /// The verify function's state, trusting HS256 user tokens signed with
    /// [`USER_TOKEN_SECRET`].
    pub async fn verify_app(&self) -> verify::App {
        self.verify_app_with(&self.config).await
    }

    /// The verify function's state for another configuration (another user-token key).
    pub async fn verify_app_with(&self, config: &Config) -> verify::App {
        verify::App::new(config.clone(), self.store(), user_verifier(config).await)
    }

    /// The admin function's state.
    pub async fn admin_app(&self) -> admin::App {
        admin::App::new(
            self.config.clone(),
            self.store(),
            user_verifier(&self.config).await,
        )
        .expect("an admin app")
    }

    /// Serves every function over real HTTP on a free loopback port, routed by path as
    /// API Gateway and `cargo lambda watch` route, with the issuer set to that address;
    /// returns the base URL. The server stops with the test's runtime.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let mut config = self.config.clone();
        config.issuer = base.clone();
        config.access_token_audience = base.clone();
        config.verification_uri = format!("{base}/device");
        let served = TestEnv {
            dynamodb: self.dynamodb.clone(),
            requests: self.requests.clone(),
            config,
        };
        let apps = Arc::new(Apps {
            device: served.device_app(),
            token: served.token_app().await,
            verify: served.verify_app().await,
            admin: served.admin_app().await,
            discovery: served.discovery_app(),
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let apps = Arc::clone(&apps);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let apps = Arc::clone(&apps);
                        async move { Ok::<_, std::convert::Infallible>(apps.dispatch(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        base
    }

    /// The discovery function's state.
    pub fn discovery_app(&self) -> discovery::App {
        discovery::App::new(&self.config, self.store())
    }

    /// Issues a device code to `client_id` (public, or confidential with `secret`)
    /// through the device endpoint; returns the device code and the user code.
    pub async fn issue(&self, client_id: &str, secret: Option<&ClientSecret>) -> (String, String) {
        let mut body = format!("client_id={client_id}");
        if let Some(secret) = secret {
            body.push_str(&format!("&client_secret={}", secret.expose()));
        }
        let response =
            device_authorization::handle(&self.device_app(), form_post("/oauth2/v1/device", body))
                .await;
        let body = json(&response);
        assert_eq!(response.status(), 200, "{body}");
        self.requests.take();
        (
            body["device_code"].as_str().unwrap_or_default().to_owned(),
            body["user_code"].as_str().unwrap_or_default().to_owned(),
        )
    }

    /// Approves the request behind `device_code` as `account`, as the verification API will.
    pub async fn approve(&self, device_code: &str, account: &str) {
        let id = DeviceCode::parse(device_code).expect("a device code").id();
        let approval = Approval {
            account_id: account.to_owned(),
            approved_at: SystemClock.now(),
            session_id: Some("test-session".into()),
        };
        let outcome = self
            .store()
            .approve(&id, &approval, SystemClock.now())
            .await;
        assert_eq!(outcome.expect("approving"), DecideOutcome::Decided);
        self.requests.take();
    }

    /// Denies the request behind `device_code`.
    pub async fn deny(&self, device_code: &str) {
        let id = DeviceCode::parse(device_code).expect("a device code").id();
        let outcome = self.store().deny(&id, SystemClock.now()).await;
        assert_eq!(outcome.expect("denying"), DecideOutcome::Decided);
        self.requests.take();
    }

    /// Registers a client through the same path as the admin API.
    pub async fn register(&self, new: NewClient) -> (OAuthClient, Option<ClientSecret>) {
        let (client, secret) = new.register(SystemClock.now());
        self.store()
            .create_client(&client)
            .await
            .expect("registering a client");
        self.requests.take();
        (client, secret)
    }

    /// A public client allowed the device grant and `read write`.
    pub async fn public_client(&self, id: &str) -> OAuthClient {
        self.register(new_client(id, false)).await.0
    }

    /// A confidential client allowed the device grant and `read write`, with its secret.
    pub async fn confidential_client(&self, id: &str) -> (OAuthClient, ClientSecret) {
        let (client, secret) = self.register(new_client(id, true)).await;
        (client, secret.expect("a confidential client has a secret"))
    }

    /// Every item in the table (a scan: for assertions only, never in the product).
    pub async fn all_items(&self) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.config.table_name)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        self.requests.take();
        items
    }

    /// Items whose sort key is `kind` (`DEVICE`, `USERCODE`, `CLIENT`).
    pub async fn items_of_kind(&self, kind: &str) -> Vec<Item> {
        self.all_items()
            .await
            .into_iter()
            .filter(|item| {
                item.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(kind)
            })
            .collect()
    }
}

/// The functions behind [`TestEnv::serve`].
struct Apps {
    device: device_authorization::App,
    token: token::App,
    verify: verify::App,
    admin: admin::App,
    discovery: discovery::App,
}

impl Apps {
    /// What API Gateway does: the HTTP request becomes the function's request, routed by
    /// path, and the function's response becomes the HTTP response.
    async fn dispatch(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
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
        let request = Request::from_parts(parts, body);
        let path = request.uri().path().to_owned();
        let response = match path.as_str() {
            "/oauth2/v1/device" => device_authorization::handle(&self.device, request).await,
            "/oauth2/v1/token" => token::handle(&self.token, request).await,
            p if p.starts_with("/v2/oidc/device_authorization/") => {
                verify::handle(&self.verify, request).await
            }
            p if p.starts_with("/admin/") => admin::handle(&self.admin, request).await,
            _ => discovery::handle(&self.discovery, request).await,
        };
        let (parts, body) = response.into_parts();
        hyper::Response::from_parts(
            parts,
            http_body_util::Full::new(hyper::body::Bytes::from(body.as_ref().to_vec())),
        )
    }
}

/// The user-token verifier `config` describes, as the verify and admin functions build it.
pub async fn user_verifier(config: &Config) -> device_flow::user_auth::UserTokenVerifier {
    device_flow::user_auth::UserTokenVerifier::new(
        config
            .user_tokens
            .as_ref()
            .expect("user-token configuration"),
    )
    .await
    .expect("a user-token verifier")
}

/// A client registration allowed the device grant and `read write`.
pub fn new_client(id: &str, confidential: bool) -> NewClient {
    NewClient {
        id: ClientId::parse(id).expect("a valid client id"),
        name: format!("Test client {id}"),
        confidential,
        allowed_grants: vec![GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("read write").expect("valid scopes"),
        device_code_lifetime: None,
        poll_interval: None,
        access_token_lifetime: None,
    }
}

/// A `POST` with a form body, as API Gateway hands it to the function.
pub fn form_post(path: &str, body: impl Into<Body>) -> Request {
    let mut request = Request::new(body.into());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = path.parse().expect("a valid path");
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().expect("header"),
    );
    request
}

/// Adds `Authorization: Basic` with RFC 6749 §2.3.1 encoding of id and secret.
pub fn with_basic(mut request: Request, id: &str, secret: &str) -> Request {
    let encode = |s: &str| percent_encode_form(s);
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(id),
        encode(secret)
    ));
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Basic {credentials}").parse().expect("header"),
    );
    request
}

fn percent_encode_form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The response body as JSON.
pub fn json(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "the body is not JSON ({e}): {}",
            String::from_utf8_lossy(response.body().as_ref())
        )
    })
}

/// A token request for `device_code` by the public client `client_id`.
pub fn token_request(client_id: &str, device_code: &str) -> Request {
    form_post(
        "/oauth2/v1/token",
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
             &client_id={client_id}&device_code={device_code}"
        ),
    )
}

/// A request to a discovery route.
pub fn get(path: &str) -> Request {
    let mut request = Request::new(Body::Empty);
    *request.uri_mut() = path.parse().expect("a valid path");
    request
}

/// The trusted user-token issuer of the tests.
pub const USER_TOKEN_ISSUER: &str = "https://idp.example.test";
pub const USER_TOKEN_AUDIENCE: &str = "device-flow-tests";
pub const USER_TOKEN_SECRET: &str = "test-user-token-secret-0123456789abcdef";

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemClock.now().as_secs()
}

/// Valid user-token claims for `sub`, valid for five minutes.
pub fn user_claims(sub: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": USER_TOKEN_ISSUER, "aud": USER_TOKEN_AUDIENCE, "sub": sub,
        "iat": unix_now(), "nbf": unix_now(), "exp": unix_now() + 300,
    })
}

/// Signs `claims` as the tests' identity provider does (HS256).
pub fn sign_user_claims(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(USER_TOKEN_SECRET.as_bytes()),
    )
    .expect("signing a user token")
}

/// A valid user token for `sub`.
pub fn user_token(sub: &str) -> String {
    sign_user_claims(&user_claims(sub))
}

/// A user token that holds the administrator permission.
pub fn admin_token(sub: &str) -> String {
    let mut claims = user_claims(sub);
    claims["permissions"] = serde_json::json!(["ADMINISTRATOR"]);
    sign_user_claims(&claims)
}

/// A request to the admin API.
pub fn admin_request(
    method: Method,
    path_and_query: &str,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> Request {
    let mut request = Request::new(body.map_or(Body::Empty, |b| Body::from(b.to_string())));
    *request.method_mut() = method;
    *request.uri_mut() = path_and_query.parse().expect("a valid path");
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

/// A request to the verification API with `token` as bearer (if any).
pub fn verification_request(
    method: Method,
    path_rest: &str,
    body: Body,
    token: Option<&str>,
) -> Request {
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = format!("/v2/oidc/device_authorization/{path_rest}")
        .parse()
        .expect("a valid path");
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("header"),
    );
    request
}

/// Sets the source IP API Gateway would report.
pub fn from_ip(request: Request, ip: &str) -> Request {
    use lambda_http::RequestExt as _;
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(ip.to_owned());
    request.with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context))
}

/// RSA, EC and Ed25519 keys for tests only (the shared crate's test keys).
pub const TEST_RSA_PEM: &str = include_str!("../../shared/testdata/rsa-2048.pem");
pub const TEST_EC_PEM: &str = include_str!("../../shared/testdata/ec-p256.pem");
pub const TEST_ED_PEM: &str = include_str!("../../shared/testdata/ed25519.pem");
pub const TEST_RSA_PUBLIC_PEM: &str = include_str!("../../shared/testdata/rsa-2048.pub.pem");

/// A key set document: `(kid, alg, pem)` for each key.
pub fn key_set(version: u64, active: &str, keys: &[(&str, &str, &str)]) -> String {
    let keys: Vec<_> = keys
        .iter()
        .map(|(kid, alg, pem)| serde_json::json!({"kid": kid, "alg": alg, "private_key_pem": pem}))
        .collect();
    serde_json::json!({"version": version, "active": active, "keys": keys}).to_string()
}

/// A clock the test moves by hand. Clones share the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// Starts at the real time now, so that records are live for the store's TTL.
    pub fn now() -> Self {
        Self(Arc::new(AtomicU64::new(SystemClock.now().as_millis())))
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            u64::try_from(by.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Everything every test in this process has logged through `tracing`, from the moment
/// [`capture_logs`] was first called.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

/// Routes `tracing` output of the whole test process into a buffer (once).
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // The functions' own filter, at its most verbose.
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        let _ = tracing_subscriber::registry()
            .with(device_flow::telemetry::filter("trace"))
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(|| LogWriter),
            )
            .try_init();
    });
}

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static BUFFER: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    BUFFER.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
