//! DynamoDB faults, injected per operation by a proxy in front of the server: every
//! endpoint answers cleanly in its own format (the token endpoint tells devices to back off
//! or poll again; the others answer 503 with `Retry-After`), never a bare 500, and the table
//! holds no partial state afterwards (read back).

use std::time::Duration;

use device_flow::domain::{DeviceCode, DeviceState};
use integration_tests::{
    Fault, FaultProxy, ManualClock, TestEnv, admin_app_on, admin_request, admin_token,
    delete_client_completely, form_post, json, token_request, user_token, verification_request,
};
use lambda_http::http::Method;
use lambda_http::{Body, Response};

async fn proxy() -> FaultProxy {
    FaultProxy::start(&TestEnv::dynamodb_url()).await
}

fn error(response: &Response<Body>) -> (u16, String) {
    let body = json(response);
    let error = body["error"].as_str().map(str::to_owned);
    (
        response.status().as_u16(),
        error.unwrap_or_else(|| body.to_string()),
    )
}

#[tokio::test]
async fn a_throttled_or_busy_pending_poll_is_told_to_slow_down() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (device_code, _) = env.issue("tv", None).await;
    let faults = proxy().await;
    let mut app = env.token_app().await;
    app.store = env.store_through(&faults).await;
    for fault in [
        Fault::ThroughputExceeded,
        Fault::Throttling,
        Fault::TransactionConflict,
    ] {
        faults.fail("UpdateItem", fault);
        let response = token::handle(&app, token_request("tv", &device_code)).await;
        assert_eq!(error(&response), (400, "slow_down".into()), "{fault:?}");
    }
    let record = env.record(&device_code).await;
    assert_eq!(record.last_polled_at, None, "nothing was written");
    faults.heal();
    let response = token::handle(&app, token_request("tv", &device_code)).await;
    assert_eq!(error(&response), (400, "authorization_pending".into()));
}

#[tokio::test]
async fn a_failing_or_unreachable_store_is_503_with_retry_after_at_the_token_endpoint() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (device_code, _) = env.issue("tv", None).await;
    let faults = proxy().await;
    let mut app = env.token_app().await;
    app.store = env.store_through(&faults).await;
    for fault in [
        Fault::InternalServerError,
        Fault::Reset,
        Fault::Slow(Duration::from_secs(2)),
    ] {
        faults.fail("UpdateItem", fault);
        let response = token::handle(&app, token_request("tv", &device_code)).await;
        assert_eq!(
            error(&response),
            (503, "temporarily_unavailable".into()),
            "{fault:?}"
        );
        assert!(response.headers().contains_key("retry-after"), "{fault:?}");
    }
}

#[tokio::test]
async fn a_conflict_while_consuming_keeps_the_token_for_the_next_poll() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (device_code, _) = env.issue("tv", None).await;
    env.approve(&device_code, "alice").await;
    let faults = proxy().await;
    let mut app = env.token_app().await;
    app.store = env.store_through(&faults).await;
    faults.fail("TransactWriteItems", Fault::TransactionConflict);
    let response = token::handle(&app, token_request("tv", &device_code)).await;
    assert_eq!(error(&response), (400, "authorization_pending".into()));
    assert!(
        matches!(
            env.record(&device_code).await.state,
            DeviceState::Approved(_)
        ),
        "still approved: nothing consumed"
    );
    faults.heal();
    let response = token::handle(&app, token_request("tv", &device_code)).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
}

#[tokio::test]
async fn the_device_endpoint_answers_503_and_writes_nothing_when_the_store_fails() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let faults = proxy().await;
    let app = device_authorization::App::new(env.config(), env.store_through(&faults).await);
    for (operation, fault) in [
        ("GetItem", Fault::InternalServerError),
        ("GetItem", Fault::Slow(Duration::from_secs(2))),
        ("TransactWriteItems", Fault::TransactionConflict),
        ("TransactWriteItems", Fault::Reset),
        ("TransactWriteItems", Fault::ThroughputExceeded),
    ] {
        faults.heal();
        faults.fail(operation, fault);
        let response =
            device_authorization::handle(&app, form_post("/oauth2/v1/device", "client_id=tv"))
                .await;
        assert_eq!(
            error(&response),
            (503, "temporarily_unavailable".into()),
            "{operation} {fault:?}"
        );
        assert!(response.headers().contains_key("retry-after"));
    }
    assert!(env.items_of_kind("DEVICE").await.is_empty(), "no record");
    assert!(env.items_of_kind("USERCODE").await.is_empty(), "no claim");
}

#[tokio::test]
async fn the_verification_api_answers_unavailable_or_try_again_in_its_own_format() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (device_code, user_code) = env.issue("tv", None).await;
    let faults = proxy().await;
    let config = env.config();
    let users =
        integration_tests::user_verifier(&env.config::<device_flow::VerifyConfig>().user_tokens)
            .await;
    let app = verify::App::new(config, env.store_through(&faults).await, users);
    let token = user_token("alice");

    faults.fail("UpdateItem", Fault::Throttling);
    let request = verification_request(Method::GET, &user_code, Body::Empty, Some(&token));
    let response = verify::handle(&app, request).await;
    assert_eq!(response.status(), 503);
    assert_eq!(json(&response)["code"], 14);
    assert!(response.headers().contains_key("retry-after"));

    // A decision that meets a concurrent transaction: try again (409), nothing written.
    faults.fail("UpdateItem", Fault::TransactionConflict);
    let id = DeviceCode::parse(&device_code).unwrap().id();
    let body = Body::from(r#"{"session":{"sessionId":"s"}}"#);
    let request = verification_request(Method::POST, id.as_str(), body, Some(&token));
    let response = verify::handle(&app, request).await;
    assert_eq!(
        (response.status().as_u16(), json(&response)["code"].clone()),
        (409, 10.into())
    );
    assert_eq!(env.record(&device_code).await.state, DeviceState::Pending);
}

#[tokio::test]
async fn the_admin_api_answers_unavailable_in_its_own_format() {
    let env = TestEnv::new().await;
    let faults = proxy().await;
    let config: device_flow::AdminConfig = env.config();
    let users = integration_tests::user_verifier(&config.user_tokens).await;
    let app = admin::App::new(config, env.store_through(&faults).await, users);
    faults.fail("Query", Fault::InternalServerError);
    let request = admin_request(
        Method::GET,
        "/admin/oauth/device-authorizations",
        None,
        Some(&admin_token("root")),
    );
    let response = admin::handle(&app, request).await;
    assert_eq!(error(&response), (503, "unavailable".into()));
    assert!(response.headers().contains_key("retry-after"));
}

/// Deletes `client_id` through a proxy that answers the first two `UpdateItem`s of items
/// whose key holds `kind` (`"DEVICE#`, `"GRANT#`) with `TransactionConflictException`;
/// the deletion must still finish, without a single failed `DELETE`.
async fn delete_client_through_two_conflicts(env: &TestEnv, client_id: &str, kind: &str) {
    let faults = proxy().await;
    let clock = ManualClock::now();
    let mut admin = admin_app_on(env, &clock).await;
    admin.store = env.store_through(&faults).await;
    faults.fail_next_with("UpdateItem", kind, Fault::TransactionConflict, 2);
    let statuses = delete_client_completely(&admin, &clock, client_id).await;
    assert_eq!(statuses.last(), Some(&204), "{statuses:?}");
    // The conflicts are waited out, never answered as 503; a 503 is allowed only when the
    // server itself was too slow for the SDK (a loaded machine), which no retry hides.
    assert!(
        statuses.iter().all(|s| [202, 204].contains(s))
            || statuses.iter().all(|s| [202, 204, 503].contains(s)) && faults.slow_answers() > 0,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn deleting_a_client_waits_out_a_transaction_on_its_records() {
    let env = TestEnv::new().await;
    env.register(integration_tests::refreshing_client("tv", false))
        .await;
    let (pending, _) = env.issue("tv", None).await;
    let (approved, _) = env.issue("tv", None).await;
    env.approve(&approved, "alice").await;
    let token = env.token_app().await;
    let (granted, _) = env.issue("tv", None).await;
    env.approve(&granted, "bob").await;
    let response = token::handle(&token, token_request("tv", &granted)).await;
    assert_eq!(response.status(), 200, "{}", json(&response));

    // Exchanges and refreshes hold the items a moment: the first attempts of each
    // withdrawal and revocation meet a transaction (TransactionConflictException).
    delete_client_through_two_conflicts(&env, "tv", "\"DEVICE#").await;

    let status = |code: &str| {
        let id = DeviceCode::parse(code).unwrap().id();
        let store = env.store();
        async move {
            store
                .get_device_authorization(&id)
                .await
                .unwrap()
                .unwrap()
                .state
        }
    };
    assert!(matches!(status(&pending).await, DeviceState::Denied { .. }));
    assert!(matches!(
        status(&approved).await,
        DeviceState::Denied { .. }
    ));
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0]["revoked_reason"].as_s().unwrap(),
        "client_deleted"
    );
}

#[tokio::test]
async fn deleting_a_client_waits_out_a_refresh_on_its_grant() {
    let env = TestEnv::new().await;
    env.register(integration_tests::refreshing_client("tv", false))
        .await;
    let token = env.token_app().await;
    let (granted, _) = env.issue("tv", None).await;
    env.approve(&granted, "bob").await;
    let response = token::handle(&token, token_request("tv", &granted)).await;
    assert_eq!(response.status(), 200, "{}", json(&response));

    // No live code to withdraw: the first UpdateItems are the grant's revocation, which
    // meets a refresh's transaction twice.
    delete_client_through_two_conflicts(&env, "tv", "\"GRANT#").await;
    let grants = env.items_of_kind("GRANT").await;
    assert_eq!(
        grants[0]["revoked_reason"].as_s().unwrap(),
        "client_deleted"
    );
}
