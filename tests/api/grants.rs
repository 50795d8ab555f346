//! Devices stay signed in: grants, rotated refresh tokens with reuse detection,
//! revocation, introspection, and the user's and the administrator's view of grants.

use std::time::Duration;

use device_flow::domain::RefreshToken;
use integration_tests::{
    ManualClock, TestEnv, admin_request, admin_token, form_post, json, refreshing_client,
    user_token, with_basic,
};
use lambda_http::http::Method;
use lambda_http::{Body, Response};
use serde_json::Value;

/// Signs `account` in on `client_id` (public) for `scope`; returns the token response.
pub(crate) async fn login(
    env: &TestEnv,
    token: &token::App,
    client_id: &str,
    scope: &str,
) -> Value {
    let device = device_authorization::handle(
        &env.device_app(),
        form_post(
            "/oauth2/v1/device",
            format!("client_id={client_id}&scope={}", scope.replace(' ', "+")),
        ),
    )
    .await;
    let code = json(&device)["device_code"].as_str().unwrap().to_owned();
    env.approve(&code, "alice").await;
    let response = token::handle(token, poll(client_id, &code)).await;
    let body = json(&response);
    assert_eq!(response.status(), 200, "{body}");
    env.requests.take();
    body
}

/// Signs `alice` in on the confidential client `client_id` (HTTP Basic with `secret`);
/// returns the token response.
pub(crate) async fn confidential_login(
    env: &TestEnv,
    token: &token::App,
    client_id: &str,
    secret: &device_flow::domain::ClientSecret,
) -> Value {
    let (code, _) = env.issue(client_id, Some(secret)).await;
    env.approve(&code, "alice").await;
    let body =
        format!("grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code={code}");
    let request = integration_tests::with_basic(
        form_post("/oauth2/v1/token", body),
        client_id,
        secret.expose(),
    );
    let response = token::handle(token, request).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    json(&response)
}

pub(crate) fn poll(client_id: &str, code: &str) -> lambda_http::Request {
    form_post(
        "/oauth2/v1/token",
        format!(
            "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code={code}&client_id={client_id}"
        ),
    )
}

pub(crate) fn refresh(client_id: &str, token: &str, scope: Option<&str>) -> lambda_http::Request {
    let mut body = format!("grant_type=refresh_token&refresh_token={token}&client_id={client_id}");
    if let Some(scope) = scope {
        body.push_str(&format!("&scope={}", scope.replace(' ', "+")));
    }
    form_post("/oauth2/v1/token", body)
}

pub(crate) fn error(response: &Response<Body>) -> String {
    json(response)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned()
}

pub(crate) async fn introspect(
    app: &introspection::App,
    client: &str,
    secret: &str,
    token: &str,
) -> Value {
    let request = with_basic(
        form_post("/oauth2/v1/introspect", format!("token={token}")),
        client,
        secret,
    );
    let response = introspection::handle(app, request).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    json(&response)
}

/// A token app and introspection app on one manual clock.
pub(crate) async fn apps(env: &TestEnv, clock: &ManualClock) -> (token::App, introspection::App) {
    let mut token = env.token_app().await;
    token.clock = Box::new(clock.clone());
    let mut introspection = env.introspection_app().await;
    introspection.clock = Box::new(clock.clone());
    (token, introspection)
}

#[tokio::test]
async fn refresh_tokens_come_with_offline_access_for_clients_allowed_the_grant() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    env.public_client("plain").await;
    let token = env.token_app().await;

    let offline = login(&env, &token, "tv", "read offline_access").await;
    let refresh_token = refresh_token_of(&offline);
    assert!(RefreshToken::parse(&refresh_token).is_some());
    assert_eq!(offline["scope"], "offline_access read");
    let online = login(&env, &token, "tv", "read").await;
    assert!(online.get("refresh_token").is_none(), "{online}");
    let plain = login(&env, &token, "plain", "read").await;
    assert!(plain.get("refresh_token").is_none(), "{plain}");

    // The access token names its grant; the grant and the refresh token's record carry
    // a TTL, and the token itself is stored nowhere.
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(
        offline["access_token"].as_str().unwrap(),
    )
    .unwrap()
    .claims;
    let sid = claims["sid"].as_str().expect("sid");
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 3);
    let refreshes = env.items_of_kind("REFRESH").await;
    assert_eq!(refreshes.len(), 1);
    for item in grants.iter().chain(&refreshes) {
        assert!(item.contains_key("ttl"), "{item:?}");
        for value in item.values() {
            if let Ok(text) = value.as_s() {
                assert!(
                    !text.contains(&refresh_token),
                    "a stored refresh token: {item:?}"
                );
            }
        }
    }
    assert!(grants.iter().any(|g| g["grant_id"].as_s().unwrap() == sid));
}

#[tokio::test]
async fn every_refresh_rotates_and_scope_may_narrow_but_never_widen() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    let first = refresh_token_of(&login(&env, &token, "tv", "read write offline_access").await);

    let response = token::handle(&token, refresh("tv", &first, Some("read"))).await;
    let body = json(&response);
    assert_eq!(response.status(), 200, "{body}");
    assert_eq!(body["scope"], "read");
    assert_eq!(
        env.requests.take(),
        ["BatchGetItem", "TransactWriteItems"],
        "a refresh is one batch read and one transaction"
    );
    let second = refresh_token_of(&body);
    assert_ne!(first, second);

    // The old token is dead; the new one keeps the grant's whole scope.
    let old = token::handle(&token, refresh("tv", &first, None)).await;
    assert_eq!(
        (old.status().as_u16(), error(&old)),
        (400, "invalid_grant".into())
    );
    let wider = token::handle(&token, refresh("tv", &second, Some("read admin"))).await;
    assert_eq!(error(&wider), "invalid_scope");
    let whole = token::handle(&token, refresh("tv", &second, None)).await;
    assert_eq!(json(&whole)["scope"], "offline_access read write");

    // Another client cannot use it; malformed tokens are invalid_grant.
    env.register(refreshing_client("other", false)).await;
    let third = refresh_token_of(&json(&whole));
    let foreign = token::handle(&token, refresh("other", &third, None)).await;
    assert_eq!(error(&foreign), "invalid_grant");
    for bad in ["x", "%00", &"a".repeat(5000)] {
        let response = token::handle(&token, refresh("tv", bad, None)).await;
        assert_eq!(error(&response), "invalid_grant", "{bad:.20}");
    }
    let missing = token::handle(
        &token,
        form_post("/oauth2/v1/token", "grant_type=refresh_token&client_id=tv"),
    )
    .await;
    assert_eq!(error(&missing), "invalid_request");
    let ok = token::handle(&token, refresh("tv", &third, None)).await;
    assert_eq!(ok.status(), 200, "the grant survived all of that");
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let token = std::sync::Arc::new(env.token_app().await);
    let mut current = refresh_token_of(&login(&env, &token, "tv", "read offline_access").await);
    for round in 0..3 {
        let tasks: Vec<_> = (0..25)
            .map(|_| {
                let (token, current) = (std::sync::Arc::clone(&token), current.clone());
                tokio::spawn(async move {
                    let response = token::handle(&token, refresh("tv", &current, None)).await;
                    (response.status().as_u16(), json(&response))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (status, body) = task.await.expect("no panic");
            if status == 200 {
                winners.push(body);
            } else {
                let code = body["error"].as_str().unwrap_or_default().to_owned();
                assert!(
                    code == "invalid_grant" || code == "temporarily_unavailable",
                    "round {round}: {code}"
                );
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        current = refresh_token_of(&winners[0]);
    }
}

#[tokio::test]
async fn a_rotated_token_presented_again_revokes_the_whole_grant() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let (_, rs_secret) = env.resource_server("resource-server").await;
    let clock = ManualClock::now();
    let (token, introspection) = apps(&env, &clock).await;
    let logged_in = login(&env, &token, "tv", "read offline_access").await;
    let first = refresh_token_of(&logged_in);
    let rotated = token::handle(&token, refresh("tv", &first, None)).await;
    let second = json(&rotated);
    let newest = refresh_token_of(&second);

    clock.advance(Duration::from_secs(60));
    let reused = token::handle(&token, refresh("tv", &first, None)).await;
    assert_eq!(error(&reused), "invalid_grant");
    let newest_after = token::handle(&token, refresh("tv", &newest, None)).await;
    assert_eq!(
        error(&newest_after),
        "invalid_grant",
        "the newest token died too"
    );

    let access = second["access_token"].as_str().unwrap();
    let status = introspect(
        &introspection,
        "resource-server",
        rs_secret.expose(),
        access,
    )
    .await;
    assert_eq!(status, serde_json::json!({"active": false}));
    let grant = &env.items_of_kind("GRANT").await[0];
    assert_eq!(
        grant["revoked_reason"].as_s().unwrap(),
        "refresh_token_reuse"
    );
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_at_the_absolute_end() {
    let env = TestEnv::new().await;
    let mut tv = refreshing_client("tv", false);
    tv.overrides.refresh_token_idle_lifetime = Some(Duration::from_secs(3600));
    tv.overrides.refresh_token_absolute_lifetime = Some(Duration::from_secs(7200));
    env.register(tv).await;
    let clock = ManualClock::now();
    let (token, _) = apps(&env, &clock).await;

    let idle = refresh_token_of(&login(&env, &token, "tv", "offline_access").await);
    let mut current = refresh_token_of(&login(&env, &token, "tv", "offline_access").await);

    // Sliding, but never past two hours after the login.
    for _ in 0..2 {
        clock.advance(Duration::from_secs(3000));
        let response = token::handle(&token, refresh("tv", &current, None)).await;
        assert_eq!(response.status(), 200, "{}", json(&response));
        current = refresh_token_of(&json(&response));
    }
    // Idle: unused for an hour, dead.
    let response = token::handle(&token, refresh("tv", &idle, None)).await;
    assert_eq!(error(&response), "invalid_grant", "idle for 6000 s");
    clock.advance(Duration::from_secs(1300));
    let response = token::handle(&token, refresh("tv", &current, None)).await;
    assert_eq!(
        error(&response),
        "invalid_grant",
        "past the absolute lifetime"
    );
}

#[tokio::test]
async fn revocation_by_refresh_token_and_by_access_token() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    env.register(refreshing_client("other", false)).await;
    let (_, rs_secret) = env.resource_server("resource-server").await;
    let token = env.token_app().await;
    let introspection = env.introspection_app().await;
    let revoke = |client: &str, token: &str| {
        form_post(
            "/oauth2/v1/revoke",
            format!("token={token}&client_id={client}&token_type_hint=refresh_token"),
        )
    };

    // Another client's token is untouched; unknown tokens are 200 all the same.
    let kept = login(&env, &token, "other", "read offline_access").await;
    for (client, presented) in [
        ("tv", refresh_token_of(&kept)),
        ("tv", kept["access_token"].as_str().unwrap().to_owned()),
        ("tv", "not-a-token".to_owned()),
    ] {
        let response = introspection::handle(&introspection, revoke(client, &presented)).await;
        assert_eq!(response.status(), 200);
    }
    let alive = token::handle(&token, refresh("other", &refresh_token_of(&kept), None)).await;
    assert_eq!(alive.status(), 200, "{}", json(&alive));

    // By refresh token.
    let first = login(&env, &token, "tv", "read offline_access").await;
    let response =
        introspection::handle(&introspection, revoke("tv", &refresh_token_of(&first))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requests.take(), ["BatchGetItem", "UpdateItem"]);
    let after = token::handle(&token, refresh("tv", &refresh_token_of(&first), None)).await;
    assert_eq!(error(&after), "invalid_grant");

    // By access token: the grant's access tokens are inactive, its refresh token dead.
    let second = login(&env, &token, "tv", "read offline_access").await;
    let access = second["access_token"].as_str().unwrap();
    let before = introspect(
        &introspection,
        "resource-server",
        rs_secret.expose(),
        access,
    )
    .await;
    assert_eq!(before["active"], true);
    assert_eq!(before["client_id"], "tv");
    assert_eq!(before["sub"], "alice");
    assert_eq!(before["token_type"], "Bearer");
    assert!(before["sid"].is_string() && before["jti"].is_string());
    let response = introspection::handle(&introspection, revoke("tv", access)).await;
    assert_eq!(response.status(), 200);
    let after = introspect(
        &introspection,
        "resource-server",
        rs_secret.expose(),
        access,
    )
    .await;
    assert_eq!(after["active"], false);
    let refreshed = token::handle(&token, refresh("tv", &refresh_token_of(&second), None)).await;
    assert_eq!(error(&refreshed), "invalid_grant");

    // Missing token, unknown client.
    let missing = introspection::handle(
        &introspection,
        form_post("/oauth2/v1/revoke", "client_id=tv"),
    )
    .await;
    assert_eq!(error(&missing), "invalid_request");
    let stranger = introspection::handle(&introspection, revoke("nobody", "x")).await;
    assert_eq!(stranger.status(), 401);
}

#[tokio::test]
async fn introspection_is_one_request_and_a_rotated_refresh_token_is_inactive() {
    let env = TestEnv::new().await;
    let (_, secret) = env
        .register(integration_tests::resource_server(refreshing_client(
            "tv", true,
        )))
        .await;
    let secret = secret.unwrap();
    let token = env.token_app().await;
    let introspection = env.introspection_app().await;
    let exchange = |body: String| {
        integration_tests::with_basic(form_post("/oauth2/v1/token", body), "tv", secret.expose())
    };
    let refresh_token = refresh_token_of(&confidential_login(&env, &token, "tv", &secret).await);
    env.requests.take();

    let status = introspect(&introspection, "tv", secret.expose(), &refresh_token).await;
    assert_eq!(env.requests.take(), ["BatchGetItem"]);
    assert_eq!(status["active"], true);
    assert_eq!(status["token_type"], "refresh_token");
    for junk in ["garbage", "a.b.c", &"x".repeat(5_000)] {
        let status = introspect(&introspection, "tv", secret.expose(), junk).await;
        assert_eq!(status, serde_json::json!({"active": false}), "{junk:.10}");
    }
    // A rotated refresh token is inactive.
    let rotated = token::handle(
        &token,
        exchange(format!(
            "grant_type=refresh_token&refresh_token={refresh_token}"
        )),
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let status = introspect(&introspection, "tv", secret.expose(), &refresh_token).await;
    assert_eq!(status["active"], false);
}

#[tokio::test]
async fn a_fresh_introspection_instance_reads_the_key_set_at_its_first_access_token() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let (_, rs_secret) = env.resource_server("resource-server").await;
    let token = env.token_app().await;
    let body = login(&env, &token, "tv", "read offline_access").await;
    let access_token = body["access_token"].as_str().unwrap().to_owned();

    // As the function's cold start builds it: no request before the first token.
    let introspection = introspection::App::new(&env.config(), env.store());
    assert!(env.requests.take().is_empty());
    let mut reads = Vec::new();
    for _ in 0..2 {
        let status = introspect(
            &introspection,
            "resource-server",
            rs_secret.expose(),
            &access_token,
        )
        .await;
        assert_eq!(status["active"], true, "{status}");
        reads.push(env.requests.take());
    }
    // The first introspection read the key set once; the next one does not read it again.
    let get_items = |requests: &Vec<_>| requests.iter().filter(|r| *r == "GetItem").count();
    assert_eq!(reads[0].len(), reads[1].len() + 1, "{reads:?}");
    assert_eq!(get_items(&reads[0]), get_items(&reads[1]) + 1, "{reads:?}");
}

#[tokio::test]
async fn a_replayed_device_code_revokes_its_grant() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let clock = ManualClock::now();
    let (token, _) = apps(&env, &clock).await;
    let device = device_authorization::handle(
        &env.device_app(),
        form_post("/oauth2/v1/device", "client_id=tv&scope=offline_access"),
    )
    .await;
    let code = json(&device)["device_code"].as_str().unwrap().to_owned();
    env.approve(&code, "alice").await;
    let won = token::handle(&token, poll("tv", &code)).await;
    assert_eq!(won.status(), 200);
    let refresh_token = refresh_token_of(&json(&won));

    // A replay a moment later (a concurrent poll of the same device) changes nothing.
    let racing = token::handle(&token, poll("tv", &code)).await;
    assert_eq!(error(&racing), "invalid_grant");
    let still = token::handle(&token, refresh("tv", &refresh_token, None)).await;
    assert_eq!(still.status(), 200);
    let refresh_token = refresh_token_of(&json(&still));

    clock.advance(Duration::from_secs(30));
    let replay = token::handle(&token, poll("tv", &code)).await;
    assert_eq!(error(&replay), "invalid_grant");
    let revoked = token::handle(&token, refresh("tv", &refresh_token, None)).await;
    assert_eq!(error(&revoked), "invalid_grant");
    let grant = &env.items_of_kind("GRANT").await[0];
    assert_eq!(
        grant["revoked_reason"].as_s().unwrap(),
        "device_code_replay"
    );
}

#[tokio::test]
async fn users_see_and_revoke_only_their_own_devices_and_administrators_any() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    let verify = env.verify_app().await;
    let admin = env.admin_app().await;
    let alice = user_token("alice");
    let bob = user_token("bob");
    let body = login(&env, &token, "tv", "read offline_access").await;
    login(&env, &token, "tv", "read").await;

    let list = |who: &str| admin_request(Method::GET, "/v2/oidc/device_grants", None, Some(who));
    let response = verify::handle(&verify, list(&alice)).await;
    let grants = json(&response)["deviceGrants"].as_array().unwrap().clone();
    assert_eq!(grants.len(), 2);
    assert_eq!(env.requests.take(), ["Query", "BatchGetItem"]);
    assert_eq!(grants[0]["appName"], "Test client tv");
    let empty = verify::handle(&verify, list(&bob)).await;
    assert_eq!(json(&empty)["deviceGrants"], serde_json::json!([]));

    // Bob cannot revoke Alice's grant, and learns nothing: 404, as for an unknown id.
    let id = grants[0]["id"].as_str().unwrap();
    let path = format!("/v2/oidc/device_grants/{id}");
    let delete = |who: &str, path: &str| admin_request(Method::DELETE, path, None, Some(who));
    for (who, path) in [
        (&bob, path.as_str()),
        (&alice, "/v2/oidc/device_grants/unknown"),
    ] {
        let response = verify::handle(&verify, delete(who, path)).await;
        assert_eq!(response.status(), 404, "{}", json(&response));
        assert_eq!(json(&response)["code"], 5);
    }
    let response = verify::handle(&verify, delete(&alice, &path)).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    let response = verify::handle(&verify, list(&alice)).await;
    assert_eq!(json(&response)["deviceGrants"].as_array().unwrap().len(), 1);
    let unauthenticated = verify::handle(
        &verify,
        admin_request(Method::GET, "/v2/oidc/device_grants", None, None),
    )
    .await;
    assert_eq!(unauthenticated.status(), 401);

    // The administrator lists by account and by client, sees the revoked one, revokes any.
    let root = admin_token("root");
    env.requests.take();
    let by_account = admin::handle(
        &admin,
        admin_request(
            Method::GET,
            "/admin/oauth/grants?account_id=alice",
            None,
            Some(&root),
        ),
    )
    .await;
    let listed = json(&by_account)["grants"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2);
    assert_eq!(env.requests.take(), ["Query", "BatchGetItem"]);
    assert!(
        listed
            .iter()
            .any(|g| g["status"] == "revoked" && g["revoked_reason"] == "user")
    );
    let by_client = admin::handle(
        &admin,
        admin_request(
            Method::GET,
            "/admin/oauth/grants?client_id=tv&limit=1",
            None,
            Some(&root),
        ),
    )
    .await;
    let page = json(&by_client);
    assert_eq!(page["grants"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let next = admin::handle(
        &admin,
        admin_request(
            Method::GET,
            &format!("/admin/oauth/grants?client_id=tv&limit=1&cursor={cursor}"),
            None,
            Some(&root),
        ),
    )
    .await;
    assert_eq!(next.status(), 200, "{}", json(&next));
    let replayed = admin::handle(
        &admin,
        admin_request(
            Method::GET,
            &format!("/admin/oauth/grants?account_id=alice&cursor={cursor}"),
            None,
            Some(&root),
        ),
    )
    .await;
    assert_eq!(replayed.status(), 400, "a cursor is bound to its filters");
    let unfiltered = admin::handle(
        &admin,
        admin_request(Method::GET, "/admin/oauth/grants", None, Some(&root)),
    )
    .await;
    assert_eq!(unfiltered.status(), 400);

    let other = listed.iter().find(|g| g["status"] == "active").unwrap();
    let path = format!("/admin/oauth/grants/{}", other["id"].as_str().unwrap());
    let response = admin::handle(
        &admin,
        admin_request(Method::DELETE, &path, None, Some(&root)),
    )
    .await;
    assert_eq!(response.status(), 204);
    let forbidden = admin::handle(
        &admin,
        admin_request(Method::DELETE, &path, None, Some(&alice)),
    )
    .await;
    assert_eq!(forbidden.status(), 403);
    let response = verify::handle(&verify, list(&alice)).await;
    assert_eq!(json(&response)["deviceGrants"], serde_json::json!([]));
    let refreshed = token::handle(&token, refresh("tv", &refresh_token_of(&body), None)).await;
    assert_eq!(error(&refreshed), "invalid_grant");
}

#[tokio::test]
async fn deleting_a_client_revokes_its_grants_and_no_one_elses() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    env.register(refreshing_client("other", false)).await;
    let token = env.token_app().await;
    let clock = ManualClock::now();
    let admin = integration_tests::admin_app_on(&env, &clock).await;
    let mine = refresh_token_of(&login(&env, &token, "tv", "offline_access").await);
    let mut theirs = Vec::new();
    for _ in 0..5 {
        theirs.push(refresh_token_of(
            &login(&env, &token, "other", "offline_access").await,
        ));
    }
    // Pending requests: two of this client's among many of another's.
    for _ in 0..2 {
        env.issue("tv", None).await;
    }
    for _ in 0..60 {
        env.issue("other", None).await;
    }
    env.requests.take();
    let first = admin::handle(&admin, integration_tests::delete_client_request("tv")).await;
    assert_eq!(first.status(), 202, "{}", json(&first));
    assert_eq!(json(&first)["deletion"]["phase"], "settle");
    // Only the client's own partitions are read (its 3 records: 1 consumed, 2 pending;
    // its 1 grant), and only what is its own and live is written: the request count does
    // not grow with the other client's records. The first DELETE reads the client, marks
    // it, withdraws the 2 pending codes, revokes the grant, saving its progress after
    // each step; then it waits out the client cache.
    let mut expected = vec!["GetItem".to_owned(), "UpdateItem".to_owned()];
    expected.extend(integration_tests::sharded_page(3));
    expected.extend(vec!["UpdateItem".to_owned(); 3]);
    expected.extend(integration_tests::sharded_page(1));
    expected.extend(vec!["UpdateItem".to_owned(); 2]);
    assert_eq!(env.requests.take(), expected);
    // The last DELETE sweeps what was created since just before the mark (here, the
    // same records, all ended), then removes the client item.
    clock.advance(Duration::from_secs(20));
    let last = admin::handle(&admin, integration_tests::delete_client_request("tv")).await;
    assert_eq!(last.status(), 204);
    let mut expected = vec!["GetItem".to_owned()];
    expected.extend(integration_tests::sharded_page(3));
    expected.extend(integration_tests::sharded_page(1));
    expected.push("DeleteItem".to_owned());
    assert_eq!(env.requests.take(), expected);
    let devices = env.items_of_kind("DEVICE").await;
    let status_of = |client: &str, status: &str| {
        devices
            .iter()
            .filter(|d| d["client_id"].as_s().unwrap() == client)
            .filter(|d| d["status"].as_s().unwrap() == status)
            .count()
    };
    assert_eq!(status_of("tv", "denied"), 2);
    assert_eq!(status_of("tv", "pending"), 0);
    assert_eq!(
        status_of("other", "pending"),
        60,
        "no one else's request touched"
    );
    let revoked: Vec<_> = env
        .items_of_kind("GRANT")
        .await
        .into_iter()
        .filter(|g| g.contains_key("revoked_at"))
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["client_id"].as_s().unwrap(), "tv");
    assert_eq!(
        revoked[0]["revoked_reason"].as_s().unwrap(),
        "client_deleted"
    );
    drop(mine);
    for token_text in theirs {
        let response = token::handle(&token, refresh("other", &token_text, None)).await;
        assert_eq!(response.status(), 200);
    }
}
