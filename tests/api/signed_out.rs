//! A signed-out device stays signed out: every way a grant ends holds under faults and
//! races, and nothing ended comes back. One test (or a few) per rule, named after it;
//! each fires the situation through the handlers and reads the table back.

use std::time::Duration;

use device_flow::store::BUSY_ATTEMPTS;
use integration_tests::{
    Fault, FaultProxy, ManualClock, TestEnv, admin_request, admin_token, form_post, json,
    refreshing_client,
};
use lambda_http::http::Method;
use serde_json::json;

use crate::grants::{apps, error, login, poll, refresh, refresh_token_of};

/// The grant's `revoked_reason` in the table, if it is revoked.
async fn revoked_reason(env: &TestEnv) -> Option<String> {
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 1);
    grants[0]
        .get("revoked_reason")
        .map(|r| r.as_s().unwrap().to_owned())
}

/// Rule 1: a reused refresh token revokes its grant even while refreshes' transactions
/// hold it: the revocation is tried again, and when it still cannot be written the
/// answer is 503 with `Retry-After` (not a final `invalid_grant` over a live grant), so
/// the next presentation detects the reuse again.
#[tokio::test]
async fn rule1_refresh_token_reuse_detection_never_fails_open() {
    for conflicts in [BUSY_ATTEMPTS as usize - 1, BUSY_ATTEMPTS as usize] {
        let env = TestEnv::new().await;
        env.register(refreshing_client("tv", false)).await;
        let clock = ManualClock::now();
        let (mut token, _) = apps(&env, &clock).await;
        let first = refresh_token_of(&login(&env, &token, "tv", "read offline_access").await);
        let rotated = token::handle(&token, refresh("tv", &first, None)).await;
        let newest = refresh_token_of(&json(&rotated));
        clock.advance(Duration::from_secs(60));

        let faults = FaultProxy::start(&TestEnv::dynamodb_url()).await;
        token.store = env.store_through(&faults).await;
        faults.fail_next_with(
            "UpdateItem",
            "\"GRANT#",
            Fault::TransactionConflict,
            conflicts,
        );
        let reused = token::handle(&token, refresh("tv", &first, None)).await;
        if conflicts < BUSY_ATTEMPTS as usize {
            assert_eq!(error(&reused), "invalid_grant", "{conflicts} conflicts");
        } else {
            assert_eq!(reused.status(), 503, "{conflicts} conflicts");
            assert_eq!(error(&reused), "temporarily_unavailable");
            assert!(reused.headers().contains_key("retry-after"));
            assert_eq!(revoked_reason(&env).await, None, "not revoked yet");
            let again = token::handle(&token, refresh("tv", &first, None)).await;
            assert_eq!(error(&again), "invalid_grant", "detected again");
        }
        assert_eq!(
            revoked_reason(&env).await.as_deref(),
            Some("refresh_token_reuse"),
            "{conflicts} conflicts"
        );
        let newest_after = token::handle(&token, refresh("tv", &newest, None)).await;
        assert_eq!(
            error(&newest_after),
            "invalid_grant",
            "the newest token is dead"
        );
    }
}

/// Rule 1, for device codes: a replayed (already exchanged) device code revokes its
/// grant through the same retries, and answers 503 while it cannot.
#[tokio::test]
async fn rule1_device_code_replay_detection_never_fails_open() {
    for conflicts in [BUSY_ATTEMPTS as usize - 1, BUSY_ATTEMPTS as usize] {
        let env = TestEnv::new().await;
        env.register(refreshing_client("tv", false)).await;
        let clock = ManualClock::now();
        let (mut token, _) = apps(&env, &clock).await;
        let device = device_authorization::handle(
            &env.device_app(),
            form_post("/oauth2/v1/device", "client_id=tv&scope=offline_access"),
        )
        .await;
        let code = json(&device)["device_code"].as_str().unwrap().to_owned();
        env.approve(&code, "alice").await;
        let won = token::handle(&token, poll("tv", &code)).await;
        let refresh_token = refresh_token_of(&json(&won));
        clock.advance(Duration::from_secs(30));

        let faults = FaultProxy::start(&TestEnv::dynamodb_url()).await;
        token.store = env.store_through(&faults).await;
        faults.fail_next_with(
            "UpdateItem",
            "\"GRANT#",
            Fault::TransactionConflict,
            conflicts,
        );
        let replay = token::handle(&token, poll("tv", &code)).await;
        if conflicts < BUSY_ATTEMPTS as usize {
            assert_eq!(error(&replay), "invalid_grant", "{conflicts} conflicts");
        } else {
            assert_eq!(replay.status(), 503, "{conflicts} conflicts");
            assert_eq!(error(&replay), "temporarily_unavailable");
            assert!(replay.headers().contains_key("retry-after"));
            assert_eq!(revoked_reason(&env).await, None, "not revoked yet");
            let again = token::handle(&token, poll("tv", &code)).await;
            assert_eq!(error(&again), "invalid_grant", "detected again");
        }
        assert_eq!(
            revoked_reason(&env).await.as_deref(),
            Some("device_code_replay"),
            "{conflicts} conflicts"
        );
        let refreshed = token::handle(&token, refresh("tv", &refresh_token, None)).await;
        assert_eq!(
            error(&refreshed),
            "invalid_grant",
            "its refresh token is dead"
        );
    }
}

/// A revocation request (RFC 7009) from public client `client`.
fn revoke(client: &str, token: &str) -> lambda_http::Request {
    form_post(
        "/oauth2/v1/revoke",
        format!("token={token}&client_id={client}"),
    )
}

/// Rule 4: an access token ends its grant only while it is unexpired; an expired one gets
/// 200 and changes nothing (RFC 7009 §2.2), so an old token found anywhere cannot sign a
/// device out months later.
#[tokio::test]
async fn rule4_an_expired_access_token_cannot_revoke_its_grant() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let clock = ManualClock::now();
    let (token, introspection) = apps(&env, &clock).await;
    let logged_in = login(&env, &token, "tv", "read offline_access").await;
    let expired_access = logged_in["access_token"].as_str().unwrap().to_owned();
    let lifetime = logged_in["expires_in"].as_u64().unwrap();

    clock.advance(Duration::from_secs(lifetime + 1));
    env.requests.take();
    let response = introspection::handle(&introspection, revoke("tv", &expired_access)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requests.take(), ["BatchGetItem"], "nothing written");
    assert_eq!(revoked_reason(&env).await, None);
    let refreshed = token::handle(&token, refresh("tv", &refresh_token_of(&logged_in), None)).await;
    assert_eq!(refreshed.status(), 200, "the device is still signed in");

    // A live access token still signs the device out.
    let live_access = json(&refreshed)["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    env.requests.take();
    let response = introspection::handle(&introspection, revoke("tv", &live_access)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requests.take(), ["BatchGetItem", "UpdateItem"]);
    assert_eq!(revoked_reason(&env).await.as_deref(), Some("client"));
}

/// PATCHes client `id` as an administrator.
async fn patch_client(env: &TestEnv, id: &str, changes: serde_json::Value) {
    let response = admin::handle(
        &env.admin_app().await,
        admin_request(
            Method::PATCH,
            &format!("/admin/oauth/clients/{id}"),
            Some(changes),
            Some(&admin_token("root")),
        ),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", json(&response));
}

/// Rule 5: narrowing a client's scopes narrows the next refresh of an existing grant (the
/// new tokens and the grant itself); taking the `refresh_token` grant away makes the next
/// refresh `unauthorized_client`.
#[tokio::test]
async fn rule5_refreshes_obey_the_clients_current_settings() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    let logged_in = login(&env, &token, "tv", "read write offline_access").await;
    assert_eq!(logged_in["scope"], "offline_access read write");

    patch_client(
        &env,
        "tv",
        json!({"allowed_scopes": ["read", "offline_access"]}),
    )
    .await;
    let narrowed = token::handle(&token, refresh("tv", &refresh_token_of(&logged_in), None)).await;
    let narrowed = json(&narrowed);
    assert_eq!(narrowed["scope"], "offline_access read", "{narrowed}");
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        narrowed["access_token"].as_str().unwrap(),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["scope"], "offline_access read");
    let grant = &env.items_of_kind("GRANT").await[0];
    assert_eq!(grant["scope"].as_s().unwrap(), "offline_access read");
    // The grant itself was narrowed: what it no longer holds cannot be asked for.
    let widened = token::handle(
        &token,
        refresh("tv", &refresh_token_of(&narrowed), Some("read write")),
    )
    .await;
    assert_eq!(error(&widened), "invalid_scope");
    let asked = token::handle(
        &token,
        refresh("tv", &refresh_token_of(&narrowed), Some("read")),
    )
    .await;
    let asked = json(&asked);
    assert_eq!(asked["scope"], "read", "{asked}");

    patch_client(
        &env,
        "tv",
        json!({"allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
    )
    .await;
    let refused = token::handle(&token, refresh("tv", &refresh_token_of(&asked), None)).await;
    assert_eq!(error(&refused), "unauthorized_client");

    // Without `offline_access` the grant has no refresh tokens any more.
    patch_client(
        &env,
        "tv",
        json!({
            "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "allowed_scopes": ["read"],
        }),
    )
    .await;
    let refused = token::handle(&token, refresh("tv", &refresh_token_of(&asked), None)).await;
    assert_eq!(error(&refused), "invalid_grant");
}
