//! `POST /oauth2/v1/device` against the real store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use device_authorization::{App, handle};
use device_flow::DeviceConfig;
use device_flow::domain::{DeviceCode, GrantType, ScopeSet, UserCode, user_code};
use device_flow::time::{Clock, SystemClock, Timestamp};
use device_flow::usecase::issue_device_code::MAX_CODE_ATTEMPTS;
use integration_tests::{
    TestEnv, VERIFICATION_URI, forced_user_codes, form_post, json, new_client, with_basic,
};
use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde_json::Value;

const PATH: &str = "/oauth2/v1/device";

async fn post(app: &App, request: Request) -> Response<Body> {
    handle(app, request).await
}

fn assert_oauth_error(response: &Response<Body>, status: u16, error: &str) {
    let body = json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
}

/// Asserts there is no device authorization and no user-code claim in the table.
async fn assert_nothing_written(env: &TestEnv) {
    assert!(
        env.items_of_kind("DEVICE").await.is_empty(),
        "a record was written"
    );
    assert!(
        env.items_of_kind("USERCODE").await.is_empty(),
        "a claim was written"
    );
}

/// Checks a successful response field by field and returns its body.
fn assert_issued(response: &Response<Body>) -> Value {
    let body = json(response);
    assert_eq!(response.status(), 200, "{body}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");

    let device_code = body["device_code"].as_str().expect("device_code");
    assert!(
        DeviceCode::parse(device_code).is_some(),
        "256-bit base64url device code"
    );

    let user_code = body["user_code"].as_str().expect("user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(
        user_code
            .bytes()
            .filter(|&b| b != b'-')
            .all(|b| user_code::ALPHABET.contains(&b)),
        "{user_code}"
    );
    assert_eq!(body["verification_uri"], VERIFICATION_URI);
    assert_eq!(
        body["verification_uri_complete"],
        format!("{}?user_code={user_code}", VERIFICATION_URI)
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    assert_eq!(body.as_object().map(|o| o.len()), Some(6), "{body}");
    body
}

#[tokio::test]
async fn a_public_client_gets_a_device_code_and_a_user_code() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.device_app();

    let response = post(&app, form_post(PATH, "client_id=tv&scope=read")).await;
    let body = assert_issued(&response);

    let code = DeviceCode::parse(body["device_code"].as_str().unwrap()).unwrap();
    let record = env
        .store()
        .get_device_authorization(&code.id())
        .await
        .unwrap()
        .expect("the record is stored under the hash of the device code");
    assert_eq!(record.client_id.as_str(), "tv");
    assert_eq!(record.scope, ScopeSet::parse("read").unwrap());
    assert_eq!(record.user_code.to_string(), body["user_code"]);
    assert_eq!(record.interval, Duration::from_secs(5));
    assert_eq!(
        record.expires_at.as_millis() - record.created_at.as_millis(),
        600_000
    );
    assert!(record.last_polled_at.is_none());
    let now = SystemClock.now();
    assert_eq!(record.status(now), device_flow::domain::Status::Pending);
    assert_eq!(
        env.store()
            .find_user_code(&record.user_code, now)
            .await
            .unwrap(),
        Some(record.id.clone())
    );
}

#[tokio::test]
async fn what_is_stored_for_a_device_code_is_not_the_device_code() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let response = post(&env.device_app(), form_post(PATH, "client_id=tv")).await;
    let device_code = json(&response)["device_code"].as_str().unwrap().to_owned();

    let items = env.all_items().await;
    assert!(items.len() >= 3, "client, record and claim");
    for item in items {
        for (name, value) in item {
            let text = format!("{value:?}");
            assert!(
                !text.contains(&device_code),
                "attribute {name} holds the device code"
            );
        }
    }
}

#[tokio::test]
async fn every_item_written_for_a_code_carries_a_ttl() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let response = post(&env.device_app(), form_post(PATH, "client_id=tv")).await;
    assert_eq!(response.status(), 200);

    let now_secs = SystemClock.now().as_secs();
    for kind in ["DEVICE", "USERCODE"] {
        let items = env.items_of_kind(kind).await;
        assert_eq!(items.len(), 1, "{kind}");
        let ttl: u64 = items[0]["ttl"].as_n().unwrap().parse().unwrap();
        assert!(
            ttl > now_secs + 590,
            "{kind}: the TTL is after the code's expiry"
        );
    }
    let record = &env.items_of_kind("DEVICE").await[0];
    let claim = &env.items_of_kind("USERCODE").await[0];
    let ttl = |item: &integration_tests::Item| item["ttl"].as_n().unwrap().parse::<u64>().unwrap();
    assert!(
        ttl(record) >= ttl(claim) + env.config::<DeviceConfig>().record_retention.as_secs(),
        "the record outlives its code by the retention window"
    );
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_http_basic() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let request = with_basic(
        form_post(PATH, "scope=read+write"),
        "backend",
        secret.expose(),
    );
    let response = post(&env.device_app(), request).await;
    assert_issued(&response);
}

#[tokio::test]
async fn a_confidential_client_authenticates_with_client_secret_post() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let body = format!(
        "client_id=backend&client_secret={}&scope=write",
        secret.expose()
    );
    let response = post(&env.device_app(), form_post(PATH, body)).await;
    assert_issued(&response);
}

#[tokio::test]
async fn issuing_a_code_costs_two_dynamodb_requests() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    env.public_client("tv").await;
    let app = env.device_app();

    let response = post(&app, form_post(PATH, "client_id=tv&scope=read")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requests.take(), ["GetItem", "TransactWriteItems"]);

    let request = with_basic(form_post(PATH, "scope=read"), "backend", secret.expose());
    assert_eq!(post(&app, request).await.status(), 200);
    assert_eq!(env.requests.take(), ["GetItem", "TransactWriteItems"]);
}

#[tokio::test]
async fn a_confidential_client_may_send_no_body_at_all() {
    // `curl -u id:secret -X POST .../device`: no body, no Content-Type.
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let mut request = with_basic(form_post(PATH, Body::Empty), "backend", secret.expose());
    request.headers_mut().remove(header::CONTENT_TYPE);
    let response = post(&env.device_app(), request).await;
    assert_issued(&response);
}

#[tokio::test]
async fn response_type_device_code_is_accepted() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let body = "response_type=device_code&scope=read&client_id=tv";
    let response = post(&env.device_app(), form_post(PATH, body)).await;
    assert_issued(&response);
}

#[tokio::test]
async fn without_a_scope_the_client_gets_its_allowed_scopes() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.device_app();
    // `scope=` with no value counts as no scope (RFC 6749 §3.1).
    for body in ["client_id=tv", "client_id=tv&scope="] {
        let response = post(&app, form_post(PATH, body)).await;
        let code = DeviceCode::parse(json(&response)["device_code"].as_str().unwrap()).unwrap();
        let record = env
            .store()
            .get_device_authorization(&code.id())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.scope.to_string(), "read write", "{body}");
    }
}

#[tokio::test]
async fn per_client_lifetime_and_interval_override_the_defaults() {
    let env = TestEnv::new().await;
    let mut new = new_client("slow-tv", false);
    new.overrides.device_code_lifetime = Some(Duration::from_secs(300));
    new.overrides.poll_interval = Some(Duration::from_secs(10));
    env.register(new).await;

    let response = post(&env.device_app(), form_post(PATH, "client_id=slow-tv")).await;
    let body = json(&response);
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["interval"], 10);
    let code = DeviceCode::parse(body["device_code"].as_str().unwrap()).unwrap();
    let record = env
        .store()
        .get_device_authorization(&code.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.interval, Duration::from_secs(10));
    assert_eq!(
        record.expires_at.as_millis() - record.created_at.as_millis(),
        300_000
    );
}

#[tokio::test]
async fn unknown_clients_and_bad_secrets_are_invalid_client() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    env.public_client("tv").await;
    let app = env.device_app();
    let wrong = format!("{}x", secret.expose());

    let cases: Vec<(&str, Request, bool)> = vec![
        ("unknown client", form_post(PATH, "client_id=nobody"), false),
        (
            "unknown client by Basic",
            with_basic(form_post(PATH, ""), "nobody", "s"),
            true,
        ),
        (
            "wrong secret by Basic",
            with_basic(form_post(PATH, ""), "backend", &wrong),
            true,
        ),
        (
            "wrong secret by post",
            form_post(PATH, format!("client_id=backend&client_secret={wrong}")),
            false,
        ),
        (
            "confidential client without a secret",
            form_post(PATH, "client_id=backend"),
            false,
        ),
        (
            "public client with a secret",
            with_basic(form_post(PATH, ""), "tv", "guess"),
            true,
        ),
        (
            "public client with a posted secret",
            form_post(PATH, "client_id=tv&client_secret=guess"),
            false,
        ),
        (
            "malformed client_id",
            form_post(PATH, "client_id=%3Cscript%3E"),
            false,
        ),
    ];
    for (case, request, basic) in cases {
        let response = post(&app, request).await;
        assert_oauth_error(&response, 401, "invalid_client");
        assert_eq!(
            response.headers().contains_key(header::WWW_AUTHENTICATE),
            basic,
            "{case}: WWW-Authenticate exactly when Basic was used"
        );
    }
    assert_nothing_written(&env).await;
}

#[tokio::test]
async fn a_malformed_authorization_header_is_invalid_client() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    for value in ["Basic not-base64!", "Bearer abc", "Basic dHY="] {
        let mut request = form_post(PATH, "client_id=tv");
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        let response = post(&env.device_app(), request).await;
        assert_oauth_error(&response, 401, "invalid_client");
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    assert_nothing_written(&env).await;
}

#[tokio::test]
async fn a_client_not_allowed_the_device_grant_is_unauthorized_client() {
    let env = TestEnv::new().await;
    let mut new = new_client("web-only", false);
    new.allowed_grants = vec![GrantType::RefreshToken];
    env.register(new).await;
    let response = post(&env.device_app(), form_post(PATH, "client_id=web-only")).await;
    assert_oauth_error(&response, 400, "unauthorized_client");
    assert_nothing_written(&env).await;
}

#[tokio::test]
async fn scopes_beyond_the_clients_or_malformed_are_invalid_scope() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.device_app();
    for body in [
        "client_id=tv&scope=admin",
        "client_id=tv&scope=read+admin",
        // Control characters, a quote, a double space, a newline.
        "client_id=tv&scope=read%07",
        "client_id=tv&scope=read%00",
        "client_id=tv&scope=%22read%22",
        "client_id=tv&scope=read++write",
        "client_id=tv&scope=read%0Awrite",
    ] {
        let response = post(&app, form_post(PATH, body)).await;
        assert_oauth_error(&response, 400, "invalid_scope");
    }
    assert_nothing_written(&env).await;
}

#[tokio::test]
async fn bad_input_is_invalid_request_and_writes_nothing() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.device_app();

    let json_body = {
        let mut r = form_post(PATH, r#"{"client_id":"tv"}"#);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let no_content_type = {
        let mut r = form_post(PATH, "client_id=tv");
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    };
    let oversized = form_post(PATH, format!("client_id=tv&scope={}", "r".repeat(10_000)));
    let cases: Vec<(&str, Request)> = vec![
        ("missing client_id", form_post(PATH, "scope=read")),
        ("empty client_id", form_post(PATH, "client_id=&scope=read")),
        ("empty body", form_post(PATH, Body::Empty)),
        (
            "repeated client_id",
            form_post(PATH, "client_id=tv&client_id=tv"),
        ),
        (
            "repeated scope",
            form_post(PATH, "client_id=tv&scope=read&scope=write"),
        ),
        (
            "repeated, one empty",
            form_post(PATH, "client_id=tv&scope=&scope=read"),
        ),
        ("JSON body", json_body),
        ("no content type", no_content_type),
        ("oversized body", oversized),
        (
            "raw non-UTF-8",
            form_post(PATH, Body::Binary(b"client_id=tv\xff".to_vec())),
        ),
        (
            "encoded non-UTF-8",
            form_post(PATH, "client_id=tv&scope=%C3%28"),
        ),
        (
            "unknown response_type",
            form_post(PATH, "client_id=tv&response_type=code"),
        ),
        (
            "response_type token",
            form_post(PATH, "client_id=tv&response_type=token"),
        ),
        (
            "Basic and client_secret",
            with_basic(form_post(PATH, "client_secret=x"), "tv", "x"),
        ),
        (
            "Basic and another client_id",
            with_basic(form_post(PATH, "client_id=other"), "tv", "x"),
        ),
    ];
    for (case, request) in cases {
        let response = post(&app, request).await;
        let body = json(&response);
        assert_eq!(response.status(), 400, "{case}: {body}");
        assert_eq!(body["error"], "invalid_request", "{case}: {body}");
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "no-store",
            "{case}"
        );
    }
    // Refused before the store was asked anything.
    assert_eq!(env.requests.take(), Vec::<String>::new());
    assert_nothing_written(&env).await;
}

#[tokio::test]
async fn unknown_parameters_are_ignored() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let body = "client_id=tv&foo=bar&nonce=%F0%9F%98%80";
    let response = post(&env.device_app(), form_post(PATH, body)).await;
    assert_issued(&response);
}

#[tokio::test]
async fn a_base64_encoded_body_from_api_gateway_is_read() {
    // API Gateway may base64-encode bodies; lambda_http hands them over as bytes.
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let request = form_post(PATH, Body::Binary(b"client_id=tv&scope=read".to_vec()));
    let response = post(&env.device_app(), request).await;
    assert_issued(&response);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_requests_get_fifty_distinct_codes_and_records() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = Arc::new(env.device_app());

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { handle(&app, form_post(PATH, "client_id=tv")).await })
        })
        .collect();
    let mut user_codes = HashSet::new();
    let mut device_codes = HashSet::new();
    for task in tasks {
        let response = task.await.expect("no panic");
        let body = json(&response);
        assert_eq!(response.status(), 200, "{body}");
        user_codes.insert(body["user_code"].as_str().unwrap().to_owned());
        device_codes.insert(body["device_code"].as_str().unwrap().to_owned());
    }
    assert_eq!(user_codes.len(), 50);
    assert_eq!(device_codes.len(), 50);
    assert_eq!(env.items_of_kind("DEVICE").await.len(), 50);
    assert_eq!(env.items_of_kind("USERCODE").await.len(), 50);
}

#[tokio::test]
async fn a_user_code_collision_draws_again_and_overwrites_nothing() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.device_app();
    app.user_codes = forced_user_codes("BCDFGHJK", 2);

    let first = json(&post(&app, form_post(PATH, "client_id=tv")).await);
    assert_eq!(first["user_code"], "BCDF-GHJK");
    env.requests.take();

    let second = post(&app, form_post(PATH, "client_id=tv")).await;
    let second = assert_issued(&second);
    assert_ne!(second["user_code"], "BCDF-GHJK");
    assert_eq!(
        env.requests.take(),
        ["GetItem", "TransactWriteItems", "TransactWriteItems"],
        "one retry"
    );

    // The first record still owns its code.
    let first_id = DeviceCode::parse(first["device_code"].as_str().unwrap())
        .unwrap()
        .id();
    let taken = UserCode::parse("BCDFGHJK").unwrap();
    assert_eq!(
        env.store()
            .find_user_code(&taken, SystemClock.now())
            .await
            .unwrap(),
        Some(first_id.clone())
    );
    let record = env
        .store()
        .get_device_authorization(&first_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.user_code, taken);
    assert_eq!(env.items_of_kind("DEVICE").await.len(), 2);
    assert_eq!(env.items_of_kind("USERCODE").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_drawing_the_same_code_have_one_winner() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.device_app();
    // Every request's first draw is the same code.
    app.user_codes = forced_user_codes("WDJBMJHT", 10);
    let app = Arc::new(app);

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { handle(&app, form_post(PATH, "client_id=tv")).await })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        let response = task.await.expect("no panic");
        assert_eq!(response.status(), 200, "{}", json(&response));
        codes.push(json(&response)["user_code"].as_str().unwrap().to_owned());
    }
    let winners = codes.iter().filter(|c| *c == "WDJB-MJHT").count();
    assert_eq!(winners, 1, "{codes:?}");
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10);
    assert_eq!(env.items_of_kind("DEVICE").await.len(), 10);
    assert_eq!(env.items_of_kind("USERCODE").await.len(), 10);
}

#[tokio::test]
async fn when_every_draw_collides_the_answer_is_a_clean_503() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.device_app();
    app.user_codes = forced_user_codes("BCDFGHJK", usize::MAX);
    assert_eq!(
        post(&app, form_post(PATH, "client_id=tv")).await.status(),
        200
    );
    env.requests.take();

    let response = post(&app, form_post(PATH, "client_id=tv")).await;
    assert_oauth_error(&response, 503, "temporarily_unavailable");
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let requests = env.requests.take();
    assert_eq!(requests.len(), 1 + MAX_CODE_ATTEMPTS, "{requests:?}");
    assert_eq!(
        env.items_of_kind("DEVICE").await.len(),
        1,
        "no half-written record"
    );
    assert_eq!(env.items_of_kind("USERCODE").await.len(), 1);
}

/// A clock stopped at one instant.
struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[tokio::test]
async fn an_expired_user_code_can_be_issued_again() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.device_app();
    app.user_codes = forced_user_codes("BCDFGHJK", usize::MAX);

    // Issued eleven minutes ago: its ten-minute code has expired, though TTL has not
    // deleted the claim.
    let past = SystemClock.now().as_millis() - 11 * 60 * 1000;
    app.clock = Box::new(FixedClock(Timestamp::from_millis(past)));
    let old = json(&post(&app, form_post(PATH, "client_id=tv")).await);
    assert_eq!(old["user_code"], "BCDF-GHJK");

    app.clock = Box::new(SystemClock);
    let new = json(&post(&app, form_post(PATH, "client_id=tv")).await);
    assert_eq!(new["user_code"], "BCDF-GHJK");
    let new_id = DeviceCode::parse(new["device_code"].as_str().unwrap())
        .unwrap()
        .id();
    let code = UserCode::parse("BCDFGHJK").unwrap();
    assert_eq!(
        env.store()
            .find_user_code(&code, SystemClock.now())
            .await
            .unwrap(),
        Some(new_id)
    );
    // The old record is still there for late polls, and still reads as expired.
    let old_id = DeviceCode::parse(old["device_code"].as_str().unwrap())
        .unwrap()
        .id();
    let old_record = env
        .store()
        .get_device_authorization(&old_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        old_record.status(SystemClock.now()),
        device_flow::domain::Status::Expired
    );
}
