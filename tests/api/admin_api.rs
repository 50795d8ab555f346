//! The admin API against the real store: the listing after a mixed history, pagination,
//! cursors, the client lifecycle, authorization and bad input.

use std::collections::HashSet;
use std::time::Duration;

use admin::{App, handle};
use device_flow::domain::DeviceCode;
use device_flow::time::{Clock, SystemClock, Timestamp};
use integration_tests::{
    TestEnv, admin_request, admin_token, form_post, json, token_request, user_token, with_basic,
};
use lambda_http::http::Method;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const LIST: &str = "/admin/oauth/device-authorizations";
const CLIENTS: &str = "/admin/oauth/clients";

async fn call(app: &App, method: Method, path: &str, body: Option<Value>) -> Response<Body> {
    handle(
        app,
        admin_request(method, path, body, Some(&admin_token("root"))),
    )
    .await
}

/// Asserts a Storyden-shaped error; returns its body.
fn assert_api_error(response: &Response<Body>, status: u16, error: &str) -> Value {
    let body = json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert!(
        body.get("suggested").is_some() && body["metadata"].is_object(),
        "{body}"
    );
    body
}

fn id_of(device_code: &str) -> String {
    DeviceCode::parse(device_code)
        .unwrap()
        .id()
        .as_str()
        .to_owned()
}

/// Issues a code for `client` at `at` (a past instant makes an expired record).
async fn issue_at(env: &TestEnv, client: &str, at: Timestamp) -> String {
    let mut app = env.device_app();
    struct At(Timestamp);
    impl Clock for At {
        fn now(&self) -> Timestamp {
            self.0
        }
    }
    app.clock = Box::new(At(at));
    let response = device_authorization::handle(
        &app,
        form_post("/oauth2/v1/device", format!("client_id={client}")),
    )
    .await;
    json(&response)["device_code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_list_shows_every_state_with_seed_001_fields_newest_first_and_filters() {
    let env = TestEnv::new().await;
    env.public_client("tv-a").await;
    env.public_client("tv-b").await;
    let token_app = env.token_app().await;
    let now = SystemClock.now().as_millis();
    let at = |minutes_ago: u64| Timestamp::from_millis(now - minutes_ago * 60_000);

    let expired = issue_at(&env, "tv-b", at(20)).await;
    let consumed = issue_at(&env, "tv-a", at(4)).await;
    let denied = issue_at(&env, "tv-b", at(3)).await;
    let approved = issue_at(&env, "tv-a", at(2)).await;
    let pending = issue_at(&env, "tv-a", at(1)).await;
    env.approve(&consumed, "acct-c").await;
    assert_eq!(
        token::handle(&token_app, token_request("tv-a", &consumed))
            .await
            .status(),
        200
    );
    env.deny(&denied).await;
    env.approve(&approved, "acct-a").await;

    let app = env.admin_app().await;
    env.requests.take();
    let response = call(&app, Method::GET, LIST, None).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    assert_eq!(
        env.requests.take(),
        integration_tests::sharded_page(5),
        "a Query per shard and one BatchGetItem per page, and no Scan"
    );
    let body = json(&response);
    assert!(body.get("next_cursor").is_none());
    let records = body["device_authorisations"].as_array().unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let newest_first: Vec<String> = [&pending, &approved, &denied, &consumed, &expired]
        .iter()
        .map(|c| id_of(c))
        .collect();
    assert_eq!(ids, newest_first);

    let fields = [
        "id",
        "createdAt",
        "client_id",
        "user_code",
        "scope",
        "expires_at",
        "poll_interval_seconds",
        "last_polled_at",
        "approved_by_account_id",
        "approved_at",
        "denied_at",
        "consumed_at",
    ];
    for record in records {
        let keys: HashSet<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            fields.into_iter().collect(),
            "exactly Storyden's fields"
        );
        assert!(record["createdAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(record["scope"], "read write");
        assert_eq!(record["poll_interval_seconds"], 5);
        assert_eq!(record["user_code"].as_str().unwrap().len(), 9);
    }
    let by = |code: &String| records.iter().find(|r| r["id"] == id_of(code)).unwrap();
    assert_eq!(by(&pending)["approved_at"], Value::Null);
    assert_eq!(by(&pending)["client_id"], "tv-a");
    assert_eq!(by(&approved)["approved_by_account_id"], "acct-a");
    assert!(by(&approved)["approved_at"].is_string());
    assert!(by(&denied)["denied_at"].is_string());
    assert_eq!(by(&denied)["approved_by_account_id"], Value::Null);
    assert_eq!(by(&consumed)["approved_by_account_id"], "acct-c");
    assert!(by(&consumed)["consumed_at"].is_string());
    assert!(by(&consumed)["last_polled_at"].is_string());
    assert_eq!(by(&expired)["consumed_at"], Value::Null);

    for (status, want) in [
        ("pending", &pending),
        ("approved", &approved),
        ("denied", &denied),
        ("consumed", &consumed),
        ("expired", &expired),
    ] {
        let body = json(&call(&app, Method::GET, &format!("{LIST}?status={status}"), None).await);
        let ids: Vec<&str> = body["device_authorisations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id_of(want)], "status={status}");
    }
    let body = json(&call(&app, Method::GET, &format!("{LIST}?client_id=tv-b"), None).await);
    let ids: Vec<&str> = body["device_authorisations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id_of(&denied), id_of(&expired)]);

    for bad in [
        "?status=weird",
        "?limit=0",
        "?limit=201",
        "?limit=x",
        "?client_id=%3Cx%3E",
        "?status=pending&status=denied",
    ] {
        assert_api_error(
            &call(&app, Method::GET, &format!("{LIST}{bad}"), None).await,
            400,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn pagination_visits_every_record_once_even_while_records_are_created() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.admin_app().await;
    let mut existing = HashSet::new();
    for _ in 0..7 {
        existing.insert(id_of(&env.issue("tv", None).await.0));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("{LIST}?limit=3&cursor={c}"),
            None => format!("{LIST}?limit=3"),
        };
        env.requests.take();
        let body = json(&call(&app, Method::GET, &path, None).await);
        let shown = body["device_authorisations"].as_array().unwrap().len();
        assert_eq!(env.requests.take(), integration_tests::sharded_page(shown));
        seen.extend(
            body["device_authorisations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        // New records arrive while an administrator pages through.
        env.issue("tv", None).await;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    assert!(
        existing.iter().all(|id| seen.contains(id)),
        "every record that existed is visited"
    );
}

#[tokio::test]
async fn pages_of_the_sharded_listing_merge_every_shard_newest_first() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.admin_app().await;
    for _ in 0..150 {
        env.issue("tv", None).await;
    }
    // The expected order: the index sort key (created ms, then id), newest first.
    let mut expected: Vec<(String, String)> = env
        .items_of_kind("DEVICE")
        .await
        .iter()
        .map(|item| {
            (
                item["gsi1sk"].as_s().unwrap().clone(),
                item["id"].as_s().unwrap().clone(),
            )
        })
        .collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0));
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    let shards: HashSet<String> = env
        .items_of_kind("DEVICE")
        .await
        .iter()
        .map(|item| item["gsi1pk"].as_s().unwrap().clone())
        .collect();
    assert!(
        shards.len() > 20,
        "150 records spread over the shards: {shards:?}"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("{LIST}?limit=40&cursor={c}"),
            None => format!("{LIST}?limit=40"),
        };
        env.requests.take();
        let body = json(&call(&app, Method::GET, &path, None).await);
        let page: Vec<String> = body["device_authorisations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            env.requests.take(),
            integration_tests::sharded_page(page.len())
        );
        sizes.push(page.len());
        seen.extend(page);
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen, expected,
        "every record once, newest first across the shards"
    );
    assert!(
        sizes.iter().rev().skip(1).all(|&n| n >= 30),
        "pages are (nearly) full: {sizes:?}"
    );
}

#[tokio::test]
async fn a_tampered_or_foreign_cursor_is_400() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    for _ in 0..3 {
        env.issue("tv", None).await;
    }
    let app = env.admin_app().await;
    let body = json(&call(&app, Method::GET, &format!("{LIST}?limit=1"), None).await);
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &app,
            Method::GET,
            &format!("{LIST}?limit=1&cursor={cursor}"),
            None
        )
        .await
        .status(),
        200
    );

    let mut tampered = cursor.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        format!("{LIST}?cursor={tampered}"),
        format!("{LIST}?cursor=garbage"),
        format!("{LIST}?status=pending&cursor={cursor}"),
        format!("{CLIENTS}?cursor={cursor}"),
    ] {
        assert_api_error(
            &call(&app, Method::GET, &bad, None).await,
            400,
            "invalid_request",
        );
    }
}

#[tokio::test]
async fn the_client_lifecycle() {
    let env = TestEnv::new().await;
    let clock = integration_tests::ManualClock::now();
    let app = integration_tests::admin_app_on(&env, &clock).await;
    let token_app = env.token_app().await;

    // Create: the secret is returned once.
    let created = call(
        &app,
        Method::POST,
        CLIENTS,
        Some(json!({
            "client_id": "living-room-tv", "name": "Living room TV", "type": "confidential",
            "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "allowed_scopes": ["read", "write"], "access_token_lifetime_seconds": 900,
        })),
    )
    .await;
    let body = json(&created);
    assert_eq!(created.status(), 201, "{body}");
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(body["type"], "confidential");
    assert_eq!(body["access_token_lifetime_seconds"], 900);
    assert!(!body.to_string().contains("hash"));

    // Read and list: never the secret or its hash.
    let read = json(
        &call(
            &app,
            Method::GET,
            &format!("{CLIENTS}/living-room-tv"),
            None,
        )
        .await,
    );
    assert_eq!(read["name"], "Living room TV");
    assert!(read.get("client_secret").is_none() && !read.to_string().contains("hash"));
    let list = json(&call(&app, Method::GET, CLIENTS, None).await);
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);

    // An authorization issued before the scopes narrow keeps its scope.
    let (before, _) = env
        .issue(
            "living-room-tv",
            Some(&device_flow::domain::ClientSecret::new(secret.clone())),
        )
        .await;
    let patched = call(
        &app,
        Method::PATCH,
        &format!("{CLIENTS}/living-room-tv"),
        Some(json!({
            "name": "Lounge TV", "allowed_scopes": ["read"],
        })),
    )
    .await;
    assert_eq!(patched.status(), 200, "{}", json(&patched));
    assert_eq!(json(&patched)["allowed_scopes"], json!(["read"]));
    let record = env
        .store()
        .get_device_authorization(&DeviceCode::parse(&before).unwrap().id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.scope.to_string(), "read write");
    let body = format!("client_id=living-room-tv&client_secret={secret}&scope=read+write");
    let refused =
        device_authorization::handle(&env.device_app(), form_post("/oauth2/v1/device", body)).await;
    assert_eq!(json(&refused)["error"], "invalid_scope");

    // Rotate: the old secret fails at the token endpoint, the new one works.
    let rotated = json(
        &call(
            &app,
            Method::PATCH,
            &format!("{CLIENTS}/living-room-tv"),
            Some(json!({"rotate_secret": true})),
        )
        .await,
    );
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let poll = |secret: &str| {
        with_basic(
            form_post(
                "/oauth2/v1/token",
                format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={before}"
                ),
            ),
            "living-room-tv",
            secret,
        )
    };
    assert_eq!(
        json(&token::handle(&token_app, poll(&secret)).await)["error"],
        "invalid_client"
    );
    assert_eq!(
        json(&token::handle(&token_app, poll(&new_secret)).await)["error"],
        "authorization_pending"
    );

    // Delete: its pending authorization can no longer be approved or exchanged.
    let statuses =
        integration_tests::delete_client_completely(&app, &clock, "living-room-tv").await;
    assert_eq!(statuses.last(), Some(&204), "{statuses:?}");
    let verify = env.verify_app().await;
    let approve = verify::handle(
        &verify,
        integration_tests::verification_request(
            Method::POST,
            &id_of(&before),
            Body::from(json!({"session": {}}).to_string()),
            Some(&user_token("alice")),
        ),
    )
    .await;
    assert_ne!(approve.status(), 200, "{}", json(&approve));
    assert_eq!(
        json(&token::handle(&token_app, poll(&new_secret)).await)["error"],
        "invalid_client"
    );
    assert_api_error(
        &call(
            &app,
            Method::GET,
            &format!("{CLIENTS}/living-room-tv"),
            None,
        )
        .await,
        404,
        "not_found",
    );
    assert_api_error(
        &call(
            &app,
            Method::DELETE,
            &format!("{CLIENTS}/living-room-tv"),
            None,
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn every_route_requires_an_administrator() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let app = env.admin_app().await;
    let routes = [
        (Method::GET, LIST.to_owned()),
        (Method::GET, CLIENTS.to_owned()),
        (Method::POST, CLIENTS.to_owned()),
        (Method::GET, format!("{CLIENTS}/tv")),
        (Method::PATCH, format!("{CLIENTS}/tv")),
        (Method::DELETE, format!("{CLIENTS}/tv")),
    ];
    let plain_user = user_token("someone");
    for (method, path) in routes {
        let body = Some(json!({"name": "x"}));
        let anonymous = handle(
            &app,
            admin_request(method.clone(), &path, body.clone(), None),
        )
        .await;
        assert_api_error(&anonymous, 401, "unauthenticated");
        let forbidden = handle(
            &app,
            admin_request(method.clone(), &path, body, Some(&plain_user)),
        )
        .await;
        assert_api_error(&forbidden, 403, "forbidden");
    }
    // Nothing changed.
    assert!(
        env.store()
            .get_client(&device_flow::domain::ClientId::parse("tv").unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn bad_client_input_is_4xx_and_writes_nothing() {
    let env = TestEnv::new().await;
    env.public_client("taken").await;
    let app = env.admin_app().await;
    let valid = json!({"name": "A", "type": "public", "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("unexpected", json!(1)), 400, "invalid_request"),
        (with("name", json!(42)), 400, "invalid_request"),
        (with("name", json!("   ")), 400, "invalid_request"),
        (with("name", json!("x".repeat(201))), 400, "invalid_request"),
        (with("name", json!("tab\there")), 400, "invalid_request"),
        (with("type", json!("secretive")), 400, "invalid_request"),
        (
            with("allowed_grant_types", json!(["password"])),
            400,
            "invalid_request",
        ),
        (
            with(
                "allowed_grant_types",
                json!("urn:ietf:params:oauth:grant-type:device_code"),
            ),
            400,
            "invalid_request",
        ),
        (
            with("allowed_scopes", json!(["has space"])),
            400,
            "invalid_request",
        ),
        (
            with("client_id", json!("x".repeat(129))),
            400,
            "invalid_request",
        ),
        (with("client_id", json!("bad/id")), 400, "invalid_request"),
        (
            with("poll_interval_seconds", json!(0)),
            400,
            "invalid_request",
        ),
        (
            with("device_code_lifetime_seconds", json!(-5)),
            400,
            "invalid_request",
        ),
        (with("client_id", json!("taken")), 409, "conflict"),
        (
            with("name", json!("x".repeat(20_000))),
            413,
            "payload_too_large",
        ),
        (json!([1, 2, 3]), 400, "invalid_request"),
    ];
    for (body, status, error) in cases {
        let response = call(&app, Method::POST, CLIENTS, Some(body.clone())).await;
        assert_api_error(&response, status, error);
    }
    let not_json = handle(&app, {
        let mut r = admin_request(Method::POST, CLIENTS, None, Some(&admin_token("root")));
        *r.body_mut() = Body::from("{not json");
        r
    })
    .await;
    assert_api_error(&not_json, 400, "invalid_request");
    let patch_bad = call(
        &app,
        Method::PATCH,
        &format!("{CLIENTS}/taken"),
        Some(json!({"allowed_scopes": [""]})),
    )
    .await;
    assert_api_error(&patch_bad, 400, "invalid_request");
    let rotate_public = call(
        &app,
        Method::PATCH,
        &format!("{CLIENTS}/taken"),
        Some(json!({"rotate_secret": true})),
    )
    .await;
    assert_api_error(&rotate_public, 400, "invalid_request");

    // Only the one client that existed before.
    assert_eq!(env.items_of_kind("CLIENT").await.len(), 1);
    let taken = env
        .store()
        .get_client(&device_flow::domain::ClientId::parse("taken").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.name, "Test client taken");
}

#[tokio::test]
async fn a_generated_client_id_is_used_when_none_is_given() {
    let env = TestEnv::new().await;
    let app = env.admin_app().await;
    let response = call(&app, Method::POST, CLIENTS, Some(json!({
        "name": "CLI", "type": "public", "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
    }))).await;
    let body = json(&response);
    assert_eq!(response.status(), 201, "{body}");
    assert_eq!(body["client_id"].as_str().unwrap().len(), 32);
    assert!(body.get("client_secret").is_none());
}
