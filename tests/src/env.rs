//! One test's world: a fresh table on the DynamoDB-compatible server, the deployment's
//! configuration, and each function's state built as its cold start builds it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use device_flow::domain::{
    Approval, ClientId, ClientName, ClientSecret, DeviceCode, GrantType, NewClient, OAuthClient,
    ScopeSet,
};
use device_flow::store::{DecideOutcome, create_table};
use device_flow::time::{Clock, SystemClock};
use device_flow::token::KeySet;
use device_flow::{AdminConfig, FromEnv, PageConfig, SecretSource, Store, VerifyConfig};

use crate::interceptors::{IamLog, RequestLog};
use crate::requests::{form_post, json};
use crate::tokens::{
    TEST_RSA_PEM, USER_TOKEN_AUDIENCE, USER_TOKEN_ISSUER, USER_TOKEN_SECRET, key_set, user_verifier,
};

pub type Item = HashMap<String, AttributeValue>;

/// The tests' signing key set: one RS256 key, `test-rsa`.
pub fn test_key_set() -> String {
    key_set(1, "test-rsa", &[("test-rsa", "RS256", TEST_RSA_PEM)])
}

/// One test's world: a fresh table and a counting client.
#[derive(Clone)]
pub struct TestEnv {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub requests: RequestLog,
    pub table_name: String,
    /// The functions' environment variables; each function reads its own part.
    vars: BTreeMap<String, String>,
}

/// The verification page's client id at the tests' OpenID provider.
pub const PAGE_CLIENT_ID: &str = "device-page";

/// The issuer and verification page of the tests' deployment.
pub const ISSUER: &str = "https://auth.example.test";
pub const VERIFICATION_URI: &str = "https://example.test/device";

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
        device_flow::bearer_secret::fill_random(&mut suffix);
        let table_name = format!(
            "test-{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        create_table(&dynamodb, &table_name)
            .await
            .expect("creating the test table failed; is the DynamoDB server running?");
        let vars = [
            ("TABLE_NAME", table_name.as_str()),
            ("ISSUER", ISSUER),
            ("VERIFICATION_URI", VERIFICATION_URI),
            ("SIGNING_KEYS", &test_key_set()),
            ("USER_TOKEN_ISSUER", USER_TOKEN_ISSUER),
            ("USER_TOKEN_AUDIENCE", USER_TOKEN_AUDIENCE),
            ("USER_TOKEN_HS256_SECRET", USER_TOKEN_SECRET),
            (
                "ADMIN_CURSOR_SECRET",
                "test-admin-cursor-secret-0123456789abcdef",
            ),
            ("OIDC_CLIENT_ID", PAGE_CLIENT_ID),
            ("OIDC_CLIENT_SECRET", "test-page-client-secret"),
            (
                "PAGE_SESSION_SECRET",
                "test-page-session-secret-0123456789abcdef",
            ),
            ("SCOPE_DESCRIPTIONS", r#"{"read": "See your files"}"#),
            // Every request reads the table, so that a test sees each change at once; the
            // cache's own test turns it on.
            ("CLIENT_CACHE_SECONDS", "0"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        requests.take();
        Self {
            dynamodb,
            requests,
            table_name,
            vars,
        }
    }

    /// The configuration a function of this deployment reads at cold start.
    pub fn config<C: FromEnv>(&self) -> C {
        C::from_lookup(|name| self.vars.get(name).cloned()).expect("test configuration")
    }

    /// Sets an environment variable of the deployment (before building an app).
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    pub fn store(&self) -> Store {
        Store::new(self.dynamodb.clone(), self.table_name.clone())
    }

    /// A store on this test's table whose client also records the IAM actions it needs.
    pub fn store_recording(&self, log: &IamLog) -> Store {
        self.store_with(log.clone())
    }

    /// A store on this test's table that reaches the server through `proxy`, with the SDK
    /// settings every function uses (retries, backoff, timeouts).
    pub async fn store_through(&self, proxy: &crate::faults::FaultProxy) -> Store {
        let sdk = device_flow::store::load_aws_config().await;
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(&proxy.url)
            .build();
        Store::new(
            aws_sdk_dynamodb::Client::from_conf(config),
            self.table_name.clone(),
        )
    }

    /// The URL of the DynamoDB-compatible server.
    pub fn dynamodb_url() -> String {
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("AWS_ENDPOINT_URL_DYNAMODB")
    }

    /// A store on this test's table whose client also runs `interceptor`.
    pub fn store_with(
        &self,
        interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
    ) -> Store {
        let client = aws_sdk_dynamodb::Client::from_conf(
            self.dynamodb
                .config()
                .to_builder()
                .interceptor(interceptor)
                .build(),
        );
        Store::new(client, self.table_name.clone())
    }

    /// The device-authorization function's state, on this test's table.
    pub fn device_app(&self) -> device_authorization::App {
        device_authorization::App::new(self.config(), self.store())
    }

    /// The token function's state with `keys`, having published its JWKS as its cold
    /// start does.
    pub async fn token_app_with(&self, keys: &str) -> token::App {
        let keys = KeySet::from_json(keys).expect("test key set");
        let app = token::App::new(self.config(), self.store(), keys);
        app.tokens
            .ready(SystemClock.now())
            .await
            .expect("publishing the JWKS");
        self.requests.take();
        app
    }

    /// The token function's state with one RS256 key, `test-rsa`.
    pub async fn token_app(&self) -> token::App {
        self.token_app_with(&test_key_set()).await
    }

    /// The verify function's state, trusting HS256 user tokens signed with
    /// [`USER_TOKEN_SECRET`].
    pub async fn verify_app(&self) -> verify::App {
        self.verify_app_with(&self.config()).await
    }

    /// The verify function's state for another configuration (another user-token key).
    pub async fn verify_app_with(&self, config: &VerifyConfig) -> verify::App {
        let users = user_verifier(&config.user_tokens).await;
        verify::App::new(config.clone(), self.store(), users)
    }

    /// The admin function's state.
    pub async fn admin_app(&self) -> admin::App {
        let config: AdminConfig = self.config();
        let users = user_verifier(&config.user_tokens).await;
        admin::App::new(config, self.store(), users)
    }

    /// The verification page's state, signing people in at the OpenID provider `issuer`.
    pub fn page_app(&self, issuer: &str) -> verification_page::App {
        self.page_app_with(issuer, self.store())
    }

    /// [`TestEnv::page_app`] on `store` (one that records, say).
    pub fn page_app_with(&self, issuer: &str, store: Store) -> verification_page::App {
        let mut env = self.clone();
        env.set_var("OIDC_ISSUER", issuer);
        let config: PageConfig = env.config();
        let secret = match &config.provider.client_secret {
            Some(SecretSource::Inline(secret)) => Some(secret.clone()),
            _ => None,
        };
        verification_page::App::new(config, store, secret).expect("a page app")
    }

    /// The revocation and introspection function's state, having read the published keys
    /// as its cold start does.
    pub async fn introspection_app(&self) -> introspection::App {
        let config: device_flow::IntrospectionConfig = self.config();
        let app = introspection::App::new(&config, self.store());
        app.keys
            .load(&app.store, SystemClock.now())
            .await
            .expect("reading the JWKS");
        self.requests.take();
        app
    }

    /// The discovery function's state.
    pub fn discovery_app(&self) -> discovery::App {
        discovery::App::new(&self.config(), self.store())
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

    /// The record behind `device_code`, read back from the table.
    pub async fn record(&self, device_code: &str) -> device_flow::domain::DeviceAuthorization {
        let id = DeviceCode::parse(device_code).expect("a device code").id();
        let record = self.store().get_device_authorization(&id).await;
        record.expect("reading the record").expect("the record")
    }

    /// Approves the request behind `device_code` as `account`, as the verification API will.
    pub async fn approve(&self, device_code: &str, account: &str) {
        let id = DeviceCode::parse(device_code).expect("a device code").id();
        let approval = Approval {
            account_id: account.to_owned(),
            approved_at: SystemClock.now(),
            session_id: Some("test-session".into()),
            profile: Default::default(),
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

    /// A resource server: a confidential client that may introspect tokens of the
    /// deployment's audience (`ISSUER`).
    pub async fn resource_server(&self, id: &str) -> (OAuthClient, ClientSecret) {
        let (client, secret) = self.register(resource_server(new_client(id, true))).await;
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
                .table_name(&self.table_name)
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

/// A client registration allowed the device and refresh grants and `openid profile email
/// read write offline_access`.
pub fn refreshing_client(id: &str, confidential: bool) -> NewClient {
    NewClient {
        allowed_grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        allowed_scopes: ScopeSet::parse("openid profile email read write offline_access")
            .expect("valid scopes"),
        ..new_client(id, confidential)
    }
}

/// `new` as a resource server for the deployment's audience (`ISSUER`).
pub fn resource_server(new: NewClient) -> NewClient {
    NewClient {
        confidential: true,
        resource_server_audiences: vec![ISSUER.to_owned()],
        ..new
    }
}

/// A client registration allowed the device grant and `read write`.
pub fn new_client(id: &str, confidential: bool) -> NewClient {
    NewClient {
        allowed_resources: Vec::new(),
        user_code_format: None,
        id: ClientId::parse(id).expect("a valid client id"),
        name: ClientName::parse(&format!("Test client {id}")).expect("a valid name"),
        confidential,
        allowed_grants: vec![GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("read write").expect("valid scopes"),
        overrides: Default::default(),
        resource_server_audiences: Vec::new(),
    }
}

/// An admin app whose clock the test moves, for deletions (which wait out the client
/// cache before they finish).
pub async fn admin_app_on(env: &TestEnv, clock: &crate::ManualClock) -> admin::App {
    let mut app = env.admin_app().await;
    app.clock = Box::new(clock.clone());
    app
}

/// Deletes client `id` as an administrator would: `DELETE` again while it answers 202
/// (or a passing 503: the `DELETE` is made to be repeated), moving `clock` (`app`'s own)
/// on by the `Retry-After` a 202 asks for once only the last sweep is left. Returns every
/// status, the last one 204 (or the first other error's).
pub async fn delete_client_completely(
    app: &admin::App,
    clock: &crate::ManualClock,
    id: &str,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    let mut unavailable = 0;
    for _ in 0..10_000 {
        let response = admin::handle(app, crate::delete_client_request(id)).await;
        let status = response.status().as_u16();
        statuses.push(status);
        if status == 503 && unavailable < 5 {
            unavailable += 1;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            continue;
        }
        if status != 202 {
            return statuses;
        }
        let body = json(&response);
        assert_eq!(body["status"], "deleting", "{body}");
        if body["deletion"]["phase"] == "settle" {
            let seconds: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            clock.advance(std::time::Duration::from_secs(seconds));
        }
    }
    panic!("the deletion of {id} never finished: {statuses:?}");
}

/// A user-code source whose first `forced` draws are `code`, then random in the format
/// asked for: collisions on demand.
pub fn forced_user_codes(
    code: &'static str,
    forced: usize,
) -> Box<device_flow::usecase::issue_device_code::UserCodeSource> {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    Box::new(move |format| {
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < forced {
            device_flow::domain::UserCode::parse(code).expect("a forced user code")
        } else {
            device_flow::domain::UserCode::generate_in(format)
        }
    })
}
