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

use crate::grants::{apps, confidential_login, error, login, poll, refresh, refresh_token_of};

/// The grant's `revoked_reason` in the table, if it is revoked.
async fn revoked_reason(env: &TestEnv) -> Option<String> {
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 1);
    grants[0]
        .get("revoked_reason")
        .map(|r| r.as_s().unwrap().to_owned())
}

/// Presents a reused credential (`present` builds the request) to `token` while the next
/// `conflicts` writes on the grant meet a transaction, and checks that the detection never
/// fails open: below the retry limit the grant is revoked at once (`invalid_grant`); at
/// the limit the answer is 503 with `Retry-After`, the grant still stands, and the next
/// presentation revokes it. Either way the grant ends revoked for `reason`.
async fn assert_detection_survives_conflicts(
    env: &TestEnv,
    token: &mut token::App,
    conflicts: usize,
    present: impl Fn() -> lambda_http::Request,
    reason: &str,
) {
    let faults = FaultProxy::start(&TestEnv::dynamodb_url()).await;
    token.store = env.store_through(&faults).await;
    faults.fail_next_with(
        "UpdateItem",
        "\"GRANT#",
        Fault::TransactionConflict,
        conflicts,
    );
    let first = token::handle(token, present()).await;
    if conflicts < BUSY_ATTEMPTS as usize {
        assert_eq!(error(&first), "invalid_grant", "{conflicts} conflicts");
    } else {
        assert_eq!(first.status(), 503, "{conflicts} conflicts");
        assert_eq!(error(&first), "temporarily_unavailable");
        assert!(first.headers().contains_key("retry-after"));
        assert_eq!(revoked_reason(env).await, None, "not revoked yet");
        let again = token::handle(token, present()).await;
        assert_eq!(error(&again), "invalid_grant", "detected again");
    }
    assert_eq!(
        revoked_reason(env).await.as_deref(),
        Some(reason),
        "{conflicts} conflicts"
    );
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

        let reuse = || refresh("tv", &first, None);
        assert_detection_survives_conflicts(
            &env,
            &mut token,
            conflicts,
            reuse,
            "refresh_token_reuse",
        )
        .await;
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

        let replay = || poll("tv", &code);
        assert_detection_survives_conflicts(
            &env,
            &mut token,
            conflicts,
            replay,
            "device_code_replay",
        )
        .await;
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
    // Nothing written (the published key set is read again: five minutes have passed).
    assert_eq!(
        env.requests.take(),
        ["GetItem", "BatchGetItem"],
        "nothing written"
    );
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

/// PATCHes client `id` as an administrator; returns the answer.
async fn patch(
    env: &TestEnv,
    id: &str,
    changes: serde_json::Value,
) -> lambda_http::Response<lambda_http::Body> {
    admin::handle(
        &env.admin_app().await,
        admin_request(
            Method::PATCH,
            &format!("/admin/oauth/clients/{id}"),
            Some(changes),
            Some(&admin_token("root")),
        ),
    )
    .await
}

/// PATCHes client `id` as an administrator, successfully.
async fn patch_client(env: &TestEnv, id: &str, changes: serde_json::Value) {
    let response = patch(env, id, changes).await;
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

/// Writes `n` more grants of the one real grant's client beside it (copies of it under
/// new ids, created a second apart over the hours before it), straight into the table.
async fn more_grants(env: &TestEnv, n: usize) {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    use device_flow::domain::GrantId;
    use device_flow::store::{GRANT_RETENTION, item};
    let template = item::grant_from_item(&env.items_of_kind("GRANT").await[0]).unwrap();
    let copies: Vec<_> = (0..n)
        .map(|i| {
            let mut grant = template.clone();
            grant.id = GrantId::generate();
            // Logins of the last days, none in the minute before the deletion.
            grant.created_at = device_flow::time::Timestamp::from_millis(
                template.created_at.as_millis() - 3_600_000 - 1_000 * i as u64,
            );
            let put = PutRequest::builder()
                .set_item(Some(item::grant_to_item(&grant, GRANT_RETENTION)))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    for batch in copies.chunks(25) {
        let mut left = Some(batch.to_vec());
        while let Some(requests) = left.take().filter(|r| !r.is_empty()) {
            let output = env
                .dynamodb
                .batch_write_item()
                .request_items(&env.table_name, requests)
                .send()
                .await
                .unwrap();
            left = output
                .unprocessed_items
                .and_then(|mut items| items.remove(&env.table_name));
        }
    }
    env.requests.take();
}

/// The admin API's view of client `id`: its status code and body.
async fn admin_get(
    admin: &admin::App,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let response = admin::handle(
        admin,
        admin_request(method, path, body, Some(&admin_token("root"))),
    )
    .await;
    (response.status().as_u16(), json(&response))
}

/// A public client registration for `tv` (the admin API's create body).
fn tv_registration() -> serde_json::Value {
    json!({
        "client_id": "tv", "name": "TV", "type": "public",
        "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "allowed_scopes": ["read", "offline_access"],
    })
}

/// Rule 2: a client with 2,000 grants (and live codes) is deleted completely across
/// repeated DELETEs, a small step at a time. From the first DELETE on it gets nothing and
/// shows as deleting; its id cannot be registered again until the deletion is finished;
/// afterwards it can, and the new client inherits nothing.
#[tokio::test]
async fn rule2_a_client_with_2000_grants_is_deleted_completely_in_small_steps() {
    let mut env = TestEnv::new().await;
    env.set_var("CLIENT_DELETION_STEP", "50");
    env.set_var("CLIENT_DELETION_STEPS_PER_REQUEST", "4");
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    let logged_in = login(&env, &token, "tv", "read offline_access").await;
    let refresh_token = refresh_token_of(&logged_in);
    more_grants(&env, 1999).await;
    let (pending, _) = env.issue("tv", None).await;
    let (approved, _) = env.issue("tv", None).await;
    env.approve(&approved, "bob").await;
    let clock = ManualClock::now();
    let admin = integration_tests::admin_app_on(&env, &clock).await;

    let first = admin::handle(&admin, integration_tests::delete_client_request("tv")).await;
    assert_eq!(first.status(), 202, "{}", json(&first));
    assert!(first.headers().contains_key("retry-after"));
    let (status, shown) = admin_get(&admin, Method::GET, "/admin/oauth/clients/tv", None).await;
    assert_eq!(
        (status, shown["status"].as_str()),
        (200, Some("deleting")),
        "{shown}"
    );
    // From the mark on (a fresh instance: nothing cached), the client gets nothing.
    let fresh = env.token_app().await;
    let refused = token::handle(&fresh, refresh("tv", &refresh_token, None)).await;
    assert_eq!(error(&refused), "invalid_client");
    let device = device_authorization::handle(
        &env.device_app(),
        form_post("/oauth2/v1/device", "client_id=tv"),
    )
    .await;
    assert_eq!(device.status(), 401, "{}", json(&device));
    // Its id is taken until the deletion is finished; it cannot be changed either.
    let (status, _) = admin_get(
        &admin,
        Method::POST,
        "/admin/oauth/clients",
        Some(tv_registration()),
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = admin_get(
        &admin,
        Method::PATCH,
        "/admin/oauth/clients/tv",
        Some(json!({"name": "Back"})),
    )
    .await;
    assert_eq!(status, 409);

    let rest = integration_tests::delete_client_completely(&admin, &clock, "tv").await;
    assert_eq!(rest.last(), Some(&204), "{rest:?}");
    assert!(
        rest.len() >= 2000 / (50 * 4),
        "in steps of 200 at most: {} DELETEs",
        rest.len() + 1
    );
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 2000);
    assert!(
        grants
            .iter()
            .all(|g| g["revoked_reason"].as_s().unwrap() == "client_deleted"),
        "every grant revoked"
    );
    for code in [&pending, &approved] {
        assert!(matches!(
            env.record(code).await.state,
            device_flow::domain::DeviceState::Denied { .. }
        ));
    }
    assert!(
        env.items_of_kind("CLIENT").await.is_empty(),
        "the client item went last"
    );
    let (status, _) = admin_get(&admin, Method::GET, "/admin/oauth/clients/tv", None).await;
    assert_eq!(status, 404);

    // Registered again: a new client, which inherits nothing.
    let (status, created) = admin_get(
        &admin,
        Method::POST,
        "/admin/oauth/clients",
        Some(tv_registration()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let old = token::handle(&env.token_app().await, refresh("tv", &refresh_token, None)).await;
    assert_eq!(error(&old), "invalid_grant");
    let poll_old = token::handle(&env.token_app().await, poll("tv", &approved)).await;
    assert_eq!(error(&poll_old), "access_denied");
}

/// Rule 2: what a client issued is bound to that incarnation of it. Even a grant and an
/// approved code the deletion had missed (put back by hand here) are worth nothing to a
/// client registered later under the same id.
#[tokio::test]
async fn rule2_a_recreated_client_inherits_nothing_of_the_old_one() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    let refresh_token = refresh_token_of(&login(&env, &token, "tv", "read offline_access").await);
    let (approved, _) = env.issue("tv", None).await;
    env.approve(&approved, "bob").await;
    let clock = ManualClock::now();
    let admin = integration_tests::admin_app_on(&env, &clock).await;
    let statuses = integration_tests::delete_client_completely(&admin, &clock, "tv").await;
    assert_eq!(statuses.last(), Some(&204));

    // Undo the deletion's work on the records, as if it had missed them.
    let grant_key = {
        let grant = &env.items_of_kind("GRANT").await[0];
        std::collections::HashMap::from([
            ("pk".to_owned(), grant["pk"].clone()),
            ("sk".to_owned(), grant["sk"].clone()),
        ])
    };
    env.dynamodb
        .update_item()
        .table_name(&env.table_name)
        .set_key(Some(grant_key))
        .update_expression("REMOVE revoked_at, revoked_reason")
        .send()
        .await
        .unwrap();
    let devices = env.items_of_kind("DEVICE").await;
    let record = devices
        .iter()
        .find(|d| d["status"].as_s().unwrap() == "denied")
        .expect("the withdrawn code");
    env.dynamodb
        .update_item()
        .table_name(&env.table_name)
        .key("pk", record["pk"].clone())
        .key("sk", record["sk"].clone())
        .update_expression("SET #status = :approved REMOVE denied_at")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(
            ":approved",
            aws_sdk_dynamodb::types::AttributeValue::S("approved".into()),
        )
        .send()
        .await
        .unwrap();

    env.register(refreshing_client("tv", false)).await;
    for cache in ["0", "5"] {
        let mut env = env.clone();
        env.set_var("CLIENT_CACHE_SECONDS", cache);
        let token = env.token_app().await;
        let refreshed = token::handle(&token, refresh("tv", &refresh_token, None)).await;
        assert_eq!(error(&refreshed), "invalid_grant", "cache {cache}");
        let polled = token::handle(&token, poll("tv", &approved)).await;
        assert_eq!(error(&polled), "invalid_client", "cache {cache}");
    }
    assert_eq!(
        env.items_of_kind("GRANT").await.len(),
        1,
        "no grant for the old code"
    );
}

/// Rule 2: a deletion cut off by store faults (a read failing, a write failing, a
/// connection dropped) answers 503 and leaves its progress as it was; the next DELETE
/// goes on from there and finishes.
#[tokio::test]
async fn rule2_a_deletion_interrupted_by_faults_is_finished_by_a_retry() {
    let mut env = TestEnv::new().await;
    env.set_var("CLIENT_DELETION_STEP", "10");
    env.set_var("CLIENT_DELETION_STEPS_PER_REQUEST", "1");
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    login(&env, &token, "tv", "read offline_access").await;
    more_grants(&env, 39).await;
    for _ in 0..3 {
        env.issue("tv", None).await;
    }
    let faults = FaultProxy::start(&TestEnv::dynamodb_url()).await;
    let clock = ManualClock::now();
    let mut admin = integration_tests::admin_app_on(&env, &clock).await;
    admin.store = env.store_through(&faults).await;
    let delete = || admin::handle(&admin, integration_tests::delete_client_request("tv"));
    // Without a fault injected, a 503 comes only from a server too slow for the SDK on a
    // loaded machine; the administrator repeats the DELETE, as its Retry-After asks.
    let delete_without_faults = || async {
        let mut response = delete().await;
        for _ in 0..5 {
            if response.status() != 503 || faults.slow_answers() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            response = delete().await;
        }
        response
    };

    assert_eq!(delete_without_faults().await.status(), 202, "the codes");
    let progress = |env: &TestEnv| {
        let env = env.clone();
        async move {
            let client = &env.items_of_kind("CLIENT").await[0];
            (
                client["deletion_phase"].as_s().unwrap().clone(),
                client.get("deletion_cursor").cloned(),
                client["grants_revoked"].as_n().unwrap().clone(),
            )
        }
    };
    assert_eq!(
        delete_without_faults().await.status(),
        202,
        "the first grants"
    );
    for (operation, fault, needle) in [
        ("BatchGetItem", Fault::InternalServerError, ""),
        ("UpdateItem", Fault::Reset, "\"GRANT#"),
        ("Query", Fault::ThroughputExceeded, ""),
        ("UpdateItem", Fault::TransactionConflict, "\"GRANT#"),
    ] {
        let before = progress(&env).await;
        faults.heal();
        faults.fail_next_with(operation, needle, fault, 100);
        let failed = delete().await;
        assert_eq!(
            failed.status(),
            503,
            "{operation} {fault:?}: {}",
            json(&failed)
        );
        assert!(failed.headers().contains_key("retry-after"));
        assert_eq!(
            progress(&env).await,
            before,
            "{operation} {fault:?}: progress kept"
        );
    }
    faults.heal();
    let statuses = integration_tests::delete_client_completely(&admin, &clock, "tv").await;
    assert_eq!(statuses.last(), Some(&204), "{statuses:?}");
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 40);
    assert!(grants.iter().all(|g| g.contains_key("revoked_at")));
    assert!(
        env.items_of_kind("DEVICE")
            .await
            .iter()
            .all(|d| d["status"].as_s().unwrap() != "pending")
    );
}

/// An introspection request from `client` (HTTP Basic) for `token`.
async fn introspect_as(
    app: &introspection::App,
    client: &str,
    secret: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let request = integration_tests::with_basic(
        form_post("/oauth2/v1/introspect", format!("token={token}")),
        client,
        secret,
    );
    let response = introspection::handle(app, request).await;
    (response.status().as_u16(), json(&response))
}

/// Rule 3: only resource servers introspect (confidential clients an administrator made
/// one, with the audiences they serve), and only their own audience's access tokens; a
/// refresh token only to the client it was issued to; the scope is the grant's current
/// one.
#[tokio::test]
async fn rule3_only_resource_servers_introspect_and_only_their_own_audience() {
    let env = TestEnv::new().await;
    env.register(refreshing_client("tv", false)).await;
    let (_, backend) = env.confidential_client("backend").await;
    let (_, api) = env.resource_server("api").await;
    let (_, other_api) = env
        .register(device_flow::domain::NewClient {
            resource_server_audiences: vec!["https://other-api.example".into()],
            ..integration_tests::new_client("other-api", true)
        })
        .await;
    let other_api = other_api.unwrap();
    let clock = ManualClock::now();
    let (token, introspection) = apps(&env, &clock).await;
    let logged_in = login(&env, &token, "tv", "read write offline_access").await;
    let access = logged_in["access_token"].as_str().unwrap().to_owned();
    let refresh_token = refresh_token_of(&logged_in);

    // A confidential client that is no resource server (a TV app whose secret ships in
    // its firmware), and a public one, may not introspect at all.
    let (status, body) = introspect_as(&introspection, "backend", backend.expose(), &access).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let public = introspection::handle(
        &introspection,
        form_post(
            "/oauth2/v1/introspect",
            format!("token={access}&client_id=tv"),
        ),
    )
    .await;
    assert_eq!(public.status(), 401);

    // The resource server of the token's audience sees it active, in one request.
    env.requests.take();
    let (status, body) = introspect_as(&introspection, "api", api.expose(), &access).await;
    assert_eq!(env.requests.take(), ["BatchGetItem"]);
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    assert_eq!(body["scope"], "offline_access read write");
    // Another audience's resource server: as if the token did not exist (no scanning).
    let (status, body) =
        introspect_as(&introspection, "other-api", other_api.expose(), &access).await;
    assert_eq!((status, body), (200, json!({"active": false})));
    // Another client's refresh token: inactive to a resource server too.
    let (_, body) = introspect_as(&introspection, "api", api.expose(), &refresh_token).await;
    assert_eq!(body, json!({"active": false}));

    // The scope is the grant's current one: narrowed by an administrator and a refresh,
    // the old, unexpired access token no longer reports `write`.
    patch_client(
        &env,
        "tv",
        json!({"allowed_scopes": ["read", "offline_access"]}),
    )
    .await;
    let refreshed = token::handle(&token, refresh("tv", &refresh_token, None)).await;
    assert_eq!(refreshed.status(), 200);
    let (_, body) = introspect_as(&introspection, "api", api.expose(), &access).await;
    assert_eq!(body["scope"], "offline_access read", "{body}");

    // Administrators grant the capability; a public client cannot hold it.
    patch_client(
        &env,
        "backend",
        json!({"resource_server_audiences": [integration_tests::ISSUER]}),
    )
    .await;
    let (status, body) = introspect_as(&introspection, "backend", backend.expose(), &access).await;
    assert_eq!((status, &body["active"]), (200, &json!(true)), "{body}");
    let refused = patch(
        &env,
        "tv",
        json!({"resource_server_audiences": ["https://api.example"]}),
    )
    .await;
    assert_eq!(refused.status(), 400, "{}", json(&refused));
}

/// Rule 3: a refresh token is active only to the client it was issued to, and only when
/// that client may introspect at all.
#[tokio::test]
async fn rule3_a_refresh_token_is_active_only_to_its_own_client() {
    let env = TestEnv::new().await;
    let (_, secret) = env
        .register(integration_tests::resource_server(refreshing_client(
            "kiosk", true,
        )))
        .await;
    let secret = secret.unwrap();
    let (_, api) = env.resource_server("api").await;
    let token = env.token_app().await;
    let introspection = env.introspection_app().await;
    let refresh_token = refresh_token_of(&confidential_login(&env, &token, "kiosk", &secret).await);
    let (_, own) = introspect_as(&introspection, "kiosk", secret.expose(), &refresh_token).await;
    assert_eq!(own["active"], true, "{own}");
    assert_eq!(own["token_type"], "refresh_token");
    let (_, foreign) = introspect_as(&introspection, "api", api.expose(), &refresh_token).await;
    assert_eq!(foreign, json!({"active": false}));
    // No longer a resource server: it may not introspect even its own tokens.
    patch_client(&env, "kiosk", json!({"resource_server_audiences": []})).await;
    let (status, _) = introspect_as(&introspection, "kiosk", secret.expose(), &refresh_token).await;
    assert_eq!(status, 401);
}

/// The key ids the published JWKS (discovery's answer) holds.
async fn published_kids(env: &TestEnv) -> Vec<String> {
    let response = discovery::handle(
        &env.discovery_app(),
        integration_tests::get("/.well-known/jwks.json"),
    )
    .await;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(response.body().as_ref()).unwrap();
    let mut kids: Vec<String> = jwks
        .keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect();
    kids.sort();
    kids
}

/// Rule 7: signing keys rotate without breaking or trusting too long. A warm token
/// instance reads a changed key set within 5 minutes and publishes it; the new key signs
/// only once it has been published for longer than any cache of the set lives; a warm
/// introspection instance sees a removed key stop verifying within 5 minutes.
#[tokio::test]
async fn rule7_signing_keys_rotate_on_warm_instances_within_the_stated_bounds() {
    use device_flow::usecase::signing_keys::{KEY_PUBLISH_LEAD, KEY_SET_REFRESH};
    use integration_tests::{TEST_EC_PEM, TEST_RSA_PEM, key_set};
    use std::sync::{Arc, Mutex};

    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (_, api) = env.resource_server("api").await;
    let secret = Arc::new(Mutex::new(key_set(
        1,
        "k1",
        &[("k1", "RS256", TEST_RSA_PEM)],
    )));
    let source: device_flow::usecase::signing_keys::KeySource = {
        let secret = Arc::clone(&secret);
        Arc::new(move || {
            let json = secret.lock().unwrap().clone();
            Box::pin(async move { Ok(json) })
        })
    };
    let keys = device_flow::token::KeySet::from_json(&secret.lock().unwrap()).unwrap();
    let clock = ManualClock::now();
    let mut token = token::App::reading(env.config(), env.store(), keys, Some(source));
    token.clock = Box::new(clock.clone());
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut device = env.device_app();
    device.clock = Box::new(clock.clone());
    let sign_in = |who: &'static str| {
        let (env, token, device) = (&env, &token, &device);
        async move {
            let issued = device_authorization::handle(
                device,
                form_post("/oauth2/v1/device", "client_id=tv"),
            )
            .await;
            let code = json(&issued)["device_code"].as_str().unwrap().to_owned();
            env.approve(&code, who).await;
            let response = token::handle(token, poll("tv", &code)).await;
            assert_eq!(response.status(), 200, "{}", json(&response));
            json(&response)["access_token"].as_str().unwrap().to_owned()
        }
    };
    let first = sign_in("first").await;
    assert_eq!(kid(&first), "k1");
    // A warm introspection instance, started once the set was published.
    let mut introspection = env.introspection_app().await;
    introspection.clock = Box::new(clock.clone());
    let active = |access: String| {
        let introspection = &introspection;
        let api = api.expose().to_owned();
        async move {
            let (_, body) = introspect_as(introspection, "api", &api, &access).await;
            body["active"] == json!(true)
        }
    };

    assert!(active(first.clone()).await);

    // The operator stores a new set: k2 active, k1 kept for its tokens.
    *secret.lock().unwrap() = key_set(
        2,
        "k2",
        &[("k2", "ES256", TEST_EC_PEM), ("k1", "RS256", TEST_RSA_PEM)],
    );
    clock.advance(KEY_SET_REFRESH - Duration::from_secs(1));
    assert_eq!(kid(&sign_in("before the refresh").await), "k1");
    assert_eq!(published_kids(&env).await, ["k1"], "not read yet");
    clock.advance(Duration::from_secs(1));
    let read = sign_in("at the refresh").await;
    assert_eq!(
        published_kids(&env).await,
        ["k1", "k2"],
        "read and published"
    );
    assert_eq!(kid(&read), "k1", "k2 is too new for the caches of the set");
    clock.advance(KEY_PUBLISH_LEAD - Duration::from_secs(1));
    assert_eq!(kid(&sign_in("just before").await), "k1");
    clock.advance(Duration::from_secs(1));
    let second = sign_in("second").await;
    assert_eq!(kid(&second), "k2", "published long enough");
    assert!(
        active(second.clone()).await,
        "introspection reads the new key at once"
    );
    assert!(active(first.clone()).await, "k1's tokens still verify");

    // The operator retires k1 (its tokens would have expired by then in practice).
    *secret.lock().unwrap() = key_set(3, "k2", &[("k2", "ES256", TEST_EC_PEM)]);
    clock.advance(KEY_SET_REFRESH);
    assert_eq!(kid(&sign_in("third").await), "k2");
    assert_eq!(published_kids(&env).await, ["k2"]);
    // However recently a warm introspection instance read the set, k1 stops verifying
    // there within 5 minutes of the removal's publication.
    clock.advance(KEY_SET_REFRESH);
    assert!(
        !active(first).await,
        "a removed key stops verifying within 5 minutes"
    );
    assert!(active(second).await);
}

/// Rule 2, raced: two administrators' DELETEs of one client fired at once, again and again
/// until it is gone. Every answer is 202, 204 or 404 (the other finished it first), and
/// nothing of the client is left alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rule2_concurrent_deletes_of_one_client_finish_it_once() {
    let mut env = TestEnv::new().await;
    env.set_var("CLIENT_DELETION_STEP", "10");
    env.set_var("CLIENT_DELETION_STEPS_PER_REQUEST", "1");
    env.register(refreshing_client("tv", false)).await;
    let token = env.token_app().await;
    login(&env, &token, "tv", "read offline_access").await;
    more_grants(&env, 59).await;
    for _ in 0..3 {
        env.issue("tv", None).await;
    }
    let clock = ManualClock::now();
    let admin = std::sync::Arc::new(integration_tests::admin_app_on(&env, &clock).await);
    let mut statuses = Vec::new();
    for _ in 0..200 {
        let fire = || {
            let admin = std::sync::Arc::clone(&admin);
            tokio::spawn(async move {
                let response =
                    admin::handle(&admin, integration_tests::delete_client_request("tv")).await;
                let status = response.status().as_u16();
                let body = if status == 204 {
                    json!(null)
                } else {
                    json(&response)
                };
                (status, body)
            })
        };
        let (a, b) = (fire(), fire());
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        for (status, body) in [&a, &b] {
            assert!([202, 204, 404].contains(status), "{status}: {body}");
        }
        statuses.push((a.0, b.0));
        if a.0 != 202 && b.0 != 202 {
            break;
        }
        if [&a, &b]
            .iter()
            .any(|(_, body)| body["deletion"]["phase"] == "settle")
        {
            clock.advance(Duration::from_secs(20));
        }
    }
    let finished: usize = statuses
        .iter()
        .map(|(a, b)| usize::from(*a == 204) + usize::from(*b == 204))
        .sum();
    assert!(finished >= 1, "{statuses:?}");
    assert!(env.items_of_kind("CLIENT").await.is_empty());
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 60);
    assert!(grants.iter().all(|g| g.contains_key("revoked_at")));
    assert!(
        env.items_of_kind("DEVICE")
            .await
            .iter()
            .all(|d| d["status"].as_s().unwrap() != "pending")
    );
}
