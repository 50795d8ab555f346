//! `POST /oauth2/v1/token` against the real store: every state, the interval, the races,
//! exactly-once issuance and the keys.

use std::sync::Arc;
use std::time::Duration;

use device_flow::token::AccessTokenClaims;
use device_flow::{FromEnv, TokenConfig};
use integration_tests::{
    ISSUER, ManualClock, TEST_EC_PEM, TEST_RSA_PEM, TestEnv, capture_logs, captured_logs,
    form_post, get, json, key_set, refreshing_client, token_request, user_token,
    verification_request, with_basic,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use lambda_http::http::{HeaderValue, Method, header};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use token::{App, handle};

const PATH: &str = "/oauth2/v1/token";
const GRANT: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

async fn poll(app: &App, request: Request) -> Response<Body> {
    handle(app, request).await
}

/// Asserts an RFC 6749 error with `Cache-Control: no-store`; returns the body.
fn assert_error(response: &Response<Body>, status: u16, error: &str) -> Value {
    let body = json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string());
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    body
}

/// Asserts a token response; returns the access token.
fn assert_token(response: &Response<Body>) -> String {
    let body = json(response);
    assert_eq!(response.status(), 200, "{body}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Verifies `token` with the JWKS the discovery function serves, as a resource server
/// would; returns its claims.
async fn verify_with_jwks(env: &TestEnv, token: &str) -> AccessTokenClaims {
    let response = discovery::handle(&env.discovery_app(), get("/.well-known/jwks.json")).await;
    let jwks: JwkSet = serde_json::from_slice(response.body().as_ref()).expect("a JWKS");
    let header = jsonwebtoken::decode_header(token).expect("a JWT");
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("a kid");
    let jwk = jwks.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[&ISSUER]);
    validation.set_issuer(&[&ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<AccessTokenClaims>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the token verifies with the published key")
    .claims
}

#[tokio::test]
async fn a_pending_public_poll_is_one_dynamodb_request() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;

    let before = env.items_of_kind("DEVICE").await.remove(0);
    let response = poll(&app, token_request("tv", &device_code)).await;
    assert_error(&response, 400, "authorization_pending");
    assert_eq!(env.requests.take(), ["UpdateItem"]);

    // ... of one write unit, and no index write: the record is under 1 KiB, every index
    // projects keys only, and the poll changed no index key.
    let after = env.items_of_kind("DEVICE").await.remove(0);
    assert_ne!(before, after, "the poll was recorded");
    let size = device_flow::store::item::item_size(&after);
    assert!(size <= 1024, "{size} bytes: more than one write unit");
    let table = env
        .dynamodb
        .describe_table()
        .table_name(&env.table_name)
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let indexes = table.global_secondary_indexes();
    assert_eq!(indexes.len(), 2);
    for index in indexes {
        let projection = index.projection().and_then(|p| p.projection_type());
        assert_eq!(
            projection,
            Some(&aws_sdk_dynamodb::types::ProjectionType::KeysOnly)
        );
        for key in index.key_schema() {
            assert_eq!(
                before[key.attribute_name()],
                after[key.attribute_name()],
                "{} changed",
                key.attribute_name()
            );
        }
    }
}

#[tokio::test]
async fn an_instance_reads_a_client_once_per_cache_lifetime_and_a_deleted_clients_codes_die() {
    let mut env = TestEnv::new().await;
    env.set_var("CLIENT_CACHE_SECONDS", "30");
    let (_, old_secret) = env.confidential_client("backend").await;

    // Issuing: one instance reads the client once for any number of codes.
    let device = env.device_app();
    let mut codes = Vec::new();
    for _ in 0..3 {
        let request = with_basic(
            form_post("/oauth2/v1/device", ""),
            "backend",
            old_secret.expose(),
        );
        let response = device_authorization::handle(&device, request).await;
        assert_eq!(response.status(), 200);
        codes.push(json(&response)["device_code"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        env.requests.take(),
        [
            "GetItem",
            "TransactWriteItems",
            "TransactWriteItems",
            "TransactWriteItems"
        ]
    );

    let mut app = env.token_app().await;
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());
    let poll_with = |secret: &str, code: &str| {
        with_basic(
            form_post(PATH, format!("{GRANT}&device_code={code}")),
            "backend",
            secret,
        )
    };
    assert_error(
        &poll(&app, poll_with(old_secret.expose(), &codes[0])).await,
        400,
        "authorization_pending",
    );
    assert_eq!(env.requests.take(), ["GetItem", "UpdateItem"]);
    clock.advance(Duration::from_secs(5));
    assert_error(
        &poll(&app, poll_with(old_secret.expose(), &codes[0])).await,
        400,
        "authorization_pending",
    );
    assert_eq!(
        env.requests.take(),
        ["UpdateItem"],
        "the client came from the cache"
    );

    // The secret is rotated. Inside the cache's lifetime (the stated bound) the instance
    // still knows the old one; past it, the old secret is refused at once.
    let admin = env.admin_app().await;
    let root = integration_tests::admin_token("root");
    let rotated = admin::handle(
        &admin,
        integration_tests::admin_request(
            Method::PATCH,
            "/admin/oauth/clients/backend",
            Some(serde_json::json!({"rotate_secret": true})),
            Some(&root),
        ),
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let new_secret = json(&rotated)["client_secret"].as_str().unwrap().to_owned();
    env.requests.take();
    clock.advance(Duration::from_secs(5));
    assert_error(
        &poll(&app, poll_with(old_secret.expose(), &codes[0])).await,
        400,
        "authorization_pending",
    );
    assert_eq!(env.requests.take(), ["UpdateItem"]);
    clock.advance(Duration::from_secs(30));
    assert_error(
        &poll(&app, poll_with(old_secret.expose(), &codes[0])).await,
        401,
        "invalid_client",
    );
    assert_eq!(env.requests.take(), ["GetItem"]);
    assert_error(
        &poll(&app, poll_with(&new_secret, &codes[0])).await,
        400,
        "authorization_pending",
    );

    // Approved codes, then the client is deleted: the deletion withdraws them, so even an
    // instance that still holds the client cannot exchange them; no login consults the
    // client's one item.
    env.approve(&codes[1], "alice").await;
    env.approve(&codes[2], "bob").await;
    let admin_clock = ManualClock::now();
    let admin = integration_tests::admin_app_on(&env, &admin_clock).await;
    let statuses =
        integration_tests::delete_client_completely(&admin, &admin_clock, "backend").await;
    assert_eq!(statuses.last(), Some(&204), "{statuses:?}");
    env.requests.take();
    for code in &codes[1..] {
        assert_error(
            &poll(&app, poll_with(&new_secret, code)).await,
            400,
            "access_denied",
        );
    }
    assert_eq!(env.requests.take(), ["UpdateItem", "UpdateItem"]);
    assert!(
        env.items_of_kind("GRANT").await.is_empty(),
        "nothing issued"
    );
}

#[tokio::test]
async fn the_key_set_is_published_before_the_first_signature_not_before_the_first_poll() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let keys = device_flow::token::KeySet::from_json(&integration_tests::test_key_set()).unwrap();
    let store = env.store();
    // As the function's cold start does, but without starting the publication in the
    // background: it is still to do when requests arrive.
    let mut app = App::new(env.config(), store, keys);
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());
    let (device_code, _) = env.issue("tv", None).await;
    let (other_code, _) = env.issue("tv", None).await;

    assert_error(
        &poll(&app, token_request("tv", &device_code)).await,
        400,
        "authorization_pending",
    );
    assert_eq!(
        env.requests.take(),
        ["UpdateItem"],
        "a poll does not wait for it"
    );
    assert!(env.items_of_kind("JWKS").await.is_empty());

    // Two exchanges at once on the fresh instance: one publication, both wait for it.
    env.approve(&device_code, "alice").await;
    env.approve(&other_code, "bob").await;
    env.requests.take();
    clock.advance(Duration::from_secs(5));
    let (first, second) = tokio::join!(
        poll(&app, token_request("tv", &device_code)),
        poll(&app, token_request("tv", &other_code)),
    );
    assert_eq!(first.status(), 200, "{}", json(&first));
    assert_eq!(second.status(), 200, "{}", json(&second));
    let requests = env.requests.take();
    let count = |name: &str| requests.iter().filter(|r| *r == name).count();
    assert_eq!(count("PutItem"), 1, "{requests:?}");
    assert_eq!(count("TransactWriteItems"), 2, "{requests:?}");
    let published_at = requests.iter().position(|r| r == "PutItem").unwrap();
    assert!(
        requests[..published_at]
            .iter()
            .all(|r| r == "UpdateItem" || r == "GetItem"),
        "published before any code is consumed: {requests:?}"
    );
    assert_eq!(
        count("GetItem"),
        1,
        "the published set read once: {requests:?}"
    );
    let published = env.items_of_kind("JWKS").await;
    assert!(published[0]["jwks"].as_s().unwrap().contains("test-rsa"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_a_client_while_its_devices_exchange_leaves_no_live_grant() {
    let mut env = TestEnv::new().await;
    env.set_var("CLIENT_CACHE_SECONDS", "30");
    env.register(integration_tests::refreshing_client("tv", false))
        .await;
    let app = Arc::new(env.token_app().await);
    let mut codes = Vec::new();
    for i in 0..12 {
        let (code, _) = env.issue("tv", None).await;
        env.approve(&code, &format!("viewer-{i}")).await;
        codes.push(code);
    }
    // The instance knows the client before the deletion (its cache holds it throughout).
    assert_error(
        &poll(&app, token_request("tv", "not-a-code")).await,
        400,
        "invalid_grant",
    );
    let admin_clock = ManualClock::now();
    let admin = Arc::new(integration_tests::admin_app_on(&env, &admin_clock).await);
    let delete = {
        let admin = Arc::clone(&admin);
        tokio::spawn(async move {
            integration_tests::delete_client_completely(&admin, &admin_clock, "tv").await
        })
    };
    // Spread over the deletion's run (a few hundred milliseconds on the emulator): the
    // first meet it before it withdraws their codes, the last after.
    let exchanges: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let app = Arc::clone(&app);
            let request = token_request("tv", code);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100 * i as u64)).await;
                poll(&app, request).await.status().as_u16()
            })
        })
        .collect();
    let deleted = delete.await.unwrap();
    assert_eq!(deleted.last(), Some(&204), "{deleted:?}");
    let mut statuses = Vec::new();
    for exchange in exchanges {
        statuses.push(exchange.await.unwrap());
    }
    // Each code either lost to the deletion (access_denied) or won its token, whose grant
    // the deletion then revoked: never a grant that outlives its client.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
    let grants = env.items_of_kind("GRANT").await;
    let won = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(
        grants.len(),
        won,
        "one grant per token issued: {statuses:?}"
    );
    assert!(
        grants.iter().all(|g| g.contains_key("revoked_at")),
        "every grant issued during the deletion is revoked"
    );
    let records = env.items_of_kind("DEVICE").await;
    assert!(
        records
            .iter()
            .all(|r| matches!(r["status"].as_s().unwrap().as_str(), "consumed" | "denied")),
        "no code is left exchangeable"
    );
}

#[tokio::test]
async fn a_pending_confidential_poll_is_two_requests_by_basic_or_post() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let mut app = env.token_app().await;
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());
    let (device_code, _) = env.issue("backend", Some(&secret)).await;

    let body = format!("{GRANT}&device_code={device_code}");
    let basic = with_basic(form_post(PATH, body), "backend", secret.expose());
    assert_error(&poll(&app, basic).await, 400, "authorization_pending");
    assert_eq!(env.requests.take(), ["GetItem", "UpdateItem"]);

    clock.advance(Duration::from_secs(5));
    let body = format!(
        "{GRANT}&device_code={device_code}&client_id=backend&client_secret={}",
        secret.expose()
    );
    assert_error(
        &poll(&app, form_post(PATH, body)).await,
        400,
        "authorization_pending",
    );
    assert_eq!(env.requests.take(), ["GetItem", "UpdateItem"]);
}

#[tokio::test]
async fn an_approved_code_yields_a_token_once_at_one_more_request() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;
    env.approve(&device_code, "account-7").await;

    let response = poll(&app, token_request("tv", &device_code)).await;
    let token = assert_token(&response);
    assert_eq!(env.requests.take(), ["UpdateItem", "TransactWriteItems"]);

    let claims = verify_with_jwks(&env, &token).await;
    assert_eq!(claims.sub, "account-7");
    assert_eq!(claims.client_id, "tv");
    assert_eq!(claims.scope.as_deref(), Some("read write"));
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(claims.jti.len(), 22);

    // The code is spent: a replay is invalid_grant.
    let again = poll(&app, token_request("tv", &device_code)).await;
    assert_error(&again, 400, "invalid_grant");
}

#[tokio::test]
async fn a_confidential_client_gets_its_token_with_at_most_three_requests() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("backend", Some(&secret)).await;
    env.approve(&device_code, "account-8").await;

    let body = format!("{GRANT}&device_code={device_code}");
    let request = with_basic(form_post(PATH, body), "backend", secret.expose());
    assert_token(&poll(&app, request).await);
    assert_eq!(
        env.requests.take(),
        ["GetItem", "UpdateItem", "TransactWriteItems"]
    );
}

#[tokio::test]
async fn a_per_client_token_lifetime_is_honoured() {
    let env = TestEnv::new().await;
    let mut new = integration_tests::new_client("short", false);
    new.overrides.access_token_lifetime = Some(Duration::from_secs(600));
    env.register(new).await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("short", None).await;
    env.approve(&device_code, "a").await;

    let response = poll(&app, token_request("short", &device_code)).await;
    assert_eq!(json(&response)["expires_in"], 600);
}

#[tokio::test]
async fn a_denied_code_answers_access_denied() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;
    env.deny(&device_code).await;

    assert_error(
        &poll(&app, token_request("tv", &device_code)).await,
        400,
        "access_denied",
    );
}

#[tokio::test]
async fn an_expired_record_answers_expired_token_before_ttl_deletes_it() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.token_app().await;
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());
    let (pending_code, _) = env.issue("tv", None).await;
    let (approved_code, _) = env.issue("tv", None).await;
    env.approve(&approved_code, "a").await;

    clock.advance(Duration::from_secs(601));
    for code in [&pending_code, &approved_code] {
        assert_error(
            &poll(&app, token_request("tv", code)).await,
            400,
            "expired_token",
        );
    }
    // Still stored (TTL is the record's expiry plus the retention window).
    assert_eq!(env.items_of_kind("DEVICE").await.len(), 2);
}

#[tokio::test]
async fn another_clients_device_code_is_invalid_grant() {
    let env = TestEnv::new().await;
    env.public_client("tv-a").await;
    env.public_client("tv-b").await;
    let (_, secret) = env.confidential_client("backend").await;
    let app = env.token_app().await;
    let (code_of_a, _) = env.issue("tv-a", None).await;
    env.approve(&code_of_a, "victim").await;

    assert_error(
        &poll(&app, token_request("tv-b", &code_of_a)).await,
        400,
        "invalid_grant",
    );
    let body = format!("{GRANT}&device_code={code_of_a}");
    let request = with_basic(form_post(PATH, body), "backend", secret.expose());
    assert_error(&poll(&app, request).await, 400, "invalid_grant");
    // And it was not consumed by those attempts.
    assert_token(&poll(&app, token_request("tv-a", &code_of_a)).await);
}

#[tokio::test]
async fn a_confidential_clients_code_polled_without_its_secret_is_invalid_client() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("backend", Some(&secret)).await;
    env.approve(&device_code, "a").await;

    let response = poll(&app, token_request("backend", &device_code)).await;
    assert_error(&response, 401, "invalid_client");
    let body = format!("{GRANT}&device_code={device_code}");
    let wrong = with_basic(form_post(PATH, body), "backend", "wrong");
    let response = poll(&app, wrong).await;
    assert_error(&response, 401, "invalid_client");
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn unknown_and_malformed_device_codes_are_invalid_grant() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let unknown = device_flow::domain::DeviceCode::generate();
    assert_error(
        &poll(&app, token_request("tv", unknown.expose())).await,
        400,
        "invalid_grant",
    );
    // The poll's write failed, so the client is read to tell an unknown client apart.
    assert_eq!(env.requests.take(), ["UpdateItem", "GetItem"]);
    for malformed in ["abc", "%3Cscript%3E", &"A".repeat(500)] {
        assert_error(
            &poll(&app, token_request("tv", malformed)).await,
            400,
            "invalid_grant",
        );
        assert_eq!(
            env.requests.take(),
            ["GetItem"],
            "a malformed code costs only the client's read"
        );
    }
}

#[tokio::test]
async fn an_unknown_client_id_is_invalid_client_and_a_pending_poll_still_costs_one_request() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;
    let unknown = device_flow::domain::DeviceCode::generate();
    for code in [device_code.as_str(), unknown.expose(), "malformed"] {
        let response = poll(&app, token_request("nobody", code)).await;
        assert_error(&response, 401, "invalid_client");
        assert!(!response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
    env.requests.take();
    assert_error(
        &poll(&app, token_request("tv", &device_code)).await,
        400,
        "authorization_pending",
    );
    assert_eq!(
        env.requests.take(),
        ["UpdateItem"],
        "one request per pending poll"
    );
}

#[tokio::test]
async fn wrong_basic_credentials_are_invalid_client_whatever_else_the_request_holds() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("backend", Some(&secret)).await;
    let bodies = [
        format!("{GRANT}&device_code=malformed"),
        format!("{GRANT}&device_code={device_code}"),
        format!("grant_type=password&device_code={device_code}"),
        GRANT.to_owned(),
        format!("device_code={device_code}"),
    ];
    for body in bodies {
        let request = with_basic(form_post(PATH, body.clone()), "backend", "wrong-secret");
        let response = poll(&app, request).await;
        assert_error(&response, 401, "invalid_client");
        assert!(
            response.headers().contains_key(header::WWW_AUTHENTICATE),
            "{body}"
        );
    }
    // With the right secret, the grant is judged.
    let request = with_basic(
        form_post(PATH, format!("{GRANT}&device_code=malformed")),
        "backend",
        secret.expose(),
    );
    assert_error(&poll(&app, request).await, 400, "invalid_grant");
}

#[tokio::test]
async fn bad_requests_get_rfc_6749_errors() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (code, _) = env.issue("tv", None).await;
    let json_body = {
        let mut r = token_request("tv", &code);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    };
    let cases: Vec<(Request, &str)> = vec![
        (
            form_post(PATH, format!("client_id=tv&device_code={code}")),
            "invalid_request",
        ),
        (
            form_post(PATH, format!("{GRANT}&client_id=tv")),
            "invalid_request",
        ),
        (
            form_post(PATH, format!("{GRANT}&device_code={code}")),
            "invalid_request",
        ),
        (
            form_post(
                PATH,
                format!("{GRANT}&{GRANT}&client_id=tv&device_code={code}"),
            ),
            "invalid_request",
        ),
        (
            form_post(
                PATH,
                format!("{GRANT}&client_id=tv&device_code={code}&device_code={code}"),
            ),
            "invalid_request",
        ),
        (json_body, "invalid_request"),
        (
            form_post(
                PATH,
                format!("grant_type=authorization_code&client_id=tv&device_code={code}"),
            ),
            "unsupported_grant_type",
        ),
        (
            form_post(
                PATH,
                format!("grant_type=password&client_id=tv&device_code={code}"),
            ),
            "unsupported_grant_type",
        ),
        (
            form_post(PATH, Body::Binary(b"grant_type=\xff".to_vec())),
            "invalid_request",
        ),
    ];
    for (request, error) in cases {
        assert_error(&poll(&app, request).await, 400, error);
    }
    assert_eq!(env.requests.take(), Vec::<String>::new());
}

#[tokio::test]
async fn a_compliant_client_never_sees_slow_down_and_a_fast_one_is_slowed_by_5s_each_time() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.token_app().await;
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());

    // Exactly at the interval, twenty times.
    let (compliant, _) = env.issue("tv", None).await;
    for _ in 0..20 {
        assert_error(
            &poll(&app, token_request("tv", &compliant)).await,
            400,
            "authorization_pending",
        );
        clock.advance(Duration::from_secs(5));
    }
    // Slightly early (network jitter within the tolerance) is still compliant.
    assert_error(
        &poll(&app, token_request("tv", &compliant)).await,
        400,
        "authorization_pending",
    );
    clock.advance(Duration::from_millis(4_200));
    assert_error(
        &poll(&app, token_request("tv", &compliant)).await,
        400,
        "authorization_pending",
    );

    // At half the interval: slow_down, and the interval grows by 5 s every time.
    let (fast, _) = env.issue("tv", None).await;
    assert_error(
        &poll(&app, token_request("tv", &fast)).await,
        400,
        "authorization_pending",
    );
    let mut interval = 5;
    for _ in 0..4 {
        clock.advance(Duration::from_millis(interval * 500));
        let body = assert_error(
            &poll(&app, token_request("tv", &fast)).await,
            400,
            "slow_down",
        );
        interval += 5;
        assert_eq!(body["interval"], interval);
    }
    // Polling at the new interval from then on is compliant, and the interval stays.
    for _ in 0..5 {
        clock.advance(Duration::from_secs(interval));
        assert_error(
            &poll(&app, token_request("tv", &fast)).await,
            400,
            "authorization_pending",
        );
    }
    let id = device_flow::domain::DeviceCode::parse(&fast).unwrap().id();
    let record = env
        .store()
        .get_device_authorization(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.interval,
        Duration::from_secs(interval),
        "persisted, never reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_polls_while_pending_let_one_through_per_interval() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut app = env.token_app().await;
    let clock = ManualClock::now();
    app.clock = Box::new(clock.clone());
    let app = Arc::new(app);
    let (device_code, _) = env.issue("tv", None).await;

    for round in 0..3 {
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let app = Arc::clone(&app);
                let code = device_code.clone();
                tokio::spawn(async move { json(&handle(&app, token_request("tv", &code)).await) })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(
                task.await.expect("no panic")["error"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let passed = answers
            .iter()
            .filter(|a| *a == "authorization_pending")
            .count();
        assert_eq!(passed, 1, "round {round}: {answers:?}");
        assert_eq!(answers.iter().filter(|a| *a == "slow_down").count(), 9);
        // The losers' slow_down grew the interval once, not nine times.
        let id = device_flow::domain::DeviceCode::parse(&device_code)
            .unwrap()
            .id();
        let record = env
            .store()
            .get_device_authorization(&id)
            .await
            .unwrap()
            .unwrap();
        clock.advance(record.interval);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_five_concurrent_exchanges_issue_exactly_one_token() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = Arc::new(env.token_app().await);

    for round in 0..5 {
        let (device_code, _) = env.issue("tv", None).await;
        env.approve(&device_code, "account-1").await;
        let tasks: Vec<_> = (0..25)
            .map(|_| {
                let app = Arc::clone(&app);
                let code = device_code.clone();
                tokio::spawn(async move { handle(&app, token_request("tv", &code)).await })
            })
            .collect();
        let mut tokens = Vec::new();
        let mut refused = 0;
        for task in tasks {
            let response = task.await.expect("no panic");
            match response.status().as_u16() {
                200 => tokens.push(json(&response)["access_token"].as_str().unwrap().to_owned()),
                400 => {
                    assert_eq!(json(&response)["error"], "invalid_grant");
                    refused += 1;
                }
                other => panic!(
                    "round {round}: unexpected status {other}: {}",
                    json(&response)
                ),
            }
        }
        assert_eq!(tokens.len(), 1, "round {round}: exactly one winner");
        assert_eq!(refused, 24, "round {round}");
        verify_with_jwks(&env, &tokens[0]).await;
    }
}

/// Rule 7: a new key signs only once every cache of the published set has seen it.
#[tokio::test]
async fn rule7_after_a_rotation_old_tokens_verify_and_the_new_key_signs_once_published_long_enough()
{
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let old_keys = key_set(1, "2026-05", &[("2026-05", "RS256", TEST_RSA_PEM)]);
    let old_app = env.token_app_with(&old_keys).await;
    let (first, _) = env.issue("tv", None).await;
    env.approve(&first, "a").await;
    let old_token = assert_token(&poll(&old_app, token_request("tv", &first)).await);

    // Rotate: a new active ES256 key, the old one kept for its tokens' lifetime.
    let new_keys = key_set(
        2,
        "2026-11",
        &[
            ("2026-11", "ES256", TEST_EC_PEM),
            ("2026-05", "RS256", TEST_RSA_PEM),
        ],
    );
    let mut new_app = env.token_app_with(&new_keys).await;
    let clock = ManualClock::now();
    new_app.clock = Box::new(clock.clone());
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    // Just published: resource servers may hold the old set for minutes yet, so the new
    // instance still signs with the old key.
    let (early, _) = env.issue("tv", None).await;
    env.approve(&early, "early").await;
    let early_token = assert_token(&poll(&new_app, token_request("tv", &early)).await);
    assert_eq!(kid(&early_token), "2026-05");
    clock.advance(device_flow::usecase::signing_keys::KEY_PUBLISH_LEAD);
    let (second, _) = env.issue("tv", None).await;
    env.approve(&second, "b").await;
    let new_token = assert_token(&poll(&new_app, token_request("tv", &second)).await);

    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("2026-11")
    );
    assert_eq!(verify_with_jwks(&env, &old_token).await.sub, "a");
    assert_eq!(verify_with_jwks(&env, &new_token).await.sub, "b");

    // An instance still holding the old set cannot take the newer publication back.
    let stale = device_flow::token::KeySet::from_json(&old_keys).unwrap();
    let kids: Vec<&str> = stale.kids().collect();
    let now = device_flow::time::Timestamp::from_millis(0);
    let published = env
        .store()
        .publish_jwks(&stale.jwks_json(), stale.version(), &kids, now)
        .await
        .unwrap();
    assert_eq!(published.version, 2, "the newer set stays published");
    assert_eq!(verify_with_jwks(&env, &new_token).await.sub, "b");
}

#[tokio::test]
async fn a_deleted_client_gets_no_token() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;
    env.approve(&device_code, "a").await;
    env.dynamodb
        .delete_item()
        .table_name(&env.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLIENT#tv".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLIENT".into()),
        )
        .send()
        .await
        .unwrap();

    assert_error(
        &poll(&app, token_request("tv", &device_code)).await,
        401,
        "invalid_client",
    );
}

#[tokio::test]
async fn a_client_no_longer_allowed_the_device_grant_gets_no_token() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.token_app().await;
    let (device_code, _) = env.issue("tv", None).await;
    env.approve(&device_code, "a").await;
    // An administrator takes the grant away after the code was issued.
    env.dynamodb
        .update_item()
        .table_name(&env.table_name)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLIENT#tv".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CLIENT".into()),
        )
        .update_expression("SET allowed_grant_types = :grants")
        .expression_attribute_values(
            ":grants",
            aws_sdk_dynamodb::types::AttributeValue::L(vec![
                aws_sdk_dynamodb::types::AttributeValue::S("refresh_token".into()),
            ]),
        )
        .send()
        .await
        .unwrap();

    assert_error(
        &poll(&app, token_request("tv", &device_code)).await,
        401,
        "invalid_client",
    );
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    capture_logs();
    let env = TestEnv::new().await;
    let (_, secret) = env
        .register(integration_tests::resource_server(refreshing_client(
            "backend", true,
        )))
        .await;
    let secret = secret.expect("a secret");
    let app = env.token_app().await;
    let (device_code, user_code) = env.issue("backend", Some(&secret)).await;
    let body = format!("{GRANT}&device_code={device_code}");
    let request = || with_basic(form_post(PATH, body.clone()), "backend", secret.expose());
    poll(&app, request()).await;
    // The person looks the code up (a miss first, counted) and approves, through the
    // verification API's use cases.
    let verify = env.verify_app().await;
    let user = user_token("a");
    let lookup = |code: &str| verification_request(Method::GET, code, Body::Empty, Some(&user));
    verify::handle(&verify, lookup("BCDF-GHJK")).await;
    let found = json(&verify::handle(&verify, lookup(&user_code)).await);
    let id = found["deviceAuthorizationRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approve = serde_json::json!({"session": {"sessionId": "s1", "sessionToken": user}});
    let approved = verify::handle(
        &verify,
        verification_request(
            Method::POST,
            &id,
            Body::from(approve.to_string()),
            Some(&user),
        ),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let issued = poll(&app, request()).await;
    let first_refresh = json(&issued)["refresh_token"].as_str().unwrap().to_owned();
    let token = json(&issued)["access_token"].as_str().unwrap().to_owned();
    // A replay, which is logged as a security event.
    assert_error(&poll(&app, request()).await, 400, "invalid_grant");
    // A refresh, a reuse of the rotated token, an introspection and a revocation.
    let refresh = |token: &str| {
        let body = format!("grant_type=refresh_token&refresh_token={token}");
        with_basic(form_post(PATH, body), "backend", secret.expose())
    };
    let refreshed = json(&poll(&app, refresh(&first_refresh)).await);
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_error(
        &poll(&app, refresh(&first_refresh)).await,
        400,
        "invalid_grant",
    );
    let introspection = env.introspection_app().await;
    for path in ["/oauth2/v1/introspect", "/oauth2/v1/revoke"] {
        let request = with_basic(
            form_post(path, format!("token={second_refresh}")),
            "backend",
            secret.expose(),
        );
        assert_eq!(
            introspection::handle(&introspection, request)
                .await
                .status(),
            200
        );
    }

    let logs = captured_logs();
    assert!(
        logs.contains("device_code_race_lost"),
        "the replay is logged as a security event"
    );
    assert!(
        logs.contains("refresh{client_id=backend"),
        "the refresh span"
    );
    // Each use case logs inside its span, whose fields are safe identifiers only.
    for span in [
        "issue_device_code{client_id=backend",
        "poll{client_id=backend",
        "look_up{account_id=a",
        "decide{account_id=a",
    ] {
        assert!(logs.contains(span), "no {span} span in the logs");
    }
    for (what, secret) in [
        ("device code", device_code.as_str()),
        ("user code", user_code.as_str()),
        ("user code, compact", &user_code.replace('-', "")),
        ("client secret", secret.expose()),
        ("access token", token.as_str()),
        ("refresh token", first_refresh.as_str()),
        ("refresh token's secret half", &first_refresh[44..]),
        ("rotated refresh token", second_refresh.as_str()),
        ("signature", token.rsplit('.').next().unwrap()),
        ("private key", &TEST_RSA_PEM[28..80]),
        ("user token", user.as_str()),
        ("user token signature", user.rsplit('.').next().unwrap()),
    ] {
        let line = logs
            .lines()
            .find(|l| l.contains(secret))
            .unwrap_or_default();
        assert!(
            !logs.contains(secret),
            "the {what} was logged: {}",
            &line[..line.len().min(300)]
        );
    }
}

#[tokio::test]
async fn signing_keys_load_from_a_secrets_manager_secret() {
    let env = TestEnv::new().await;
    let sdk = aws_config::load_from_env().await;
    let name = format!("{}-signing-keys", env.table_name);
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(&name)
        .secret_string(key_set(3, "sm-key", &[("sm-key", "ES256", TEST_EC_PEM)]))
        .send()
        .await
        .expect("creating the secret");

    let mut config: TokenConfig = env.config();
    config.signing_keys = device_flow::SigningKeysSource::SecretsManager(name);
    let keys = token::load_keys(&config, &sdk)
        .await
        .expect("keys from the secret");
    assert_eq!(keys.active_kid(), "sm-key");
    assert_eq!(keys.version(), 3);

    config.signing_keys = device_flow::SigningKeysSource::SecretsManager("missing".into());
    let err = token::load_keys(&config, &sdk).await.unwrap_err();
    assert!(matches!(err, token::LoadKeysError::Secret(_)), "{err}");
    // Without either source the function does not start: the configuration refuses.
    let refused = TokenConfig::from_lookup(|name| match name {
        "TABLE_NAME" => Some(env.table_name.clone()),
        "ISSUER" => Some(ISSUER.into()),
        _ => None,
    });
    assert_eq!(
        refused.unwrap_err().to_string(),
        "environment variable SIGNING_KEYS_SECRET_ID is required"
    );
}

#[tokio::test]
async fn client_reads_are_strongly_consistent_so_changes_apply_to_the_next_request() {
    let env = TestEnv::new().await;
    let (_, secret) = env.confidential_client("backend").await;
    let bodies = integration_tests::BodyLog::default();
    let mut app = env.token_app().await;
    app.store = env.store_with(bodies.clone());
    let (device_code, _) = env.issue("backend", Some(&secret)).await;
    let body = format!("{GRANT}&device_code={device_code}");
    let request = with_basic(form_post(PATH, body), "backend", secret.expose());
    assert_error(&poll(&app, request).await, 400, "authorization_pending");
    let reads: Vec<_> = bodies
        .take()
        .into_iter()
        .filter(|(operation, body)| {
            operation == "GetItem" && body["Key"]["pk"]["S"] == "CLIENT#backend"
        })
        .collect();
    assert_eq!(reads.len(), 1, "the poll authenticated the client");
    assert_eq!(reads[0].1["ConsistentRead"], true, "{:?}", reads[0].1);
}
