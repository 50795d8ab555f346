//! Each function's declared AWS permissions (`PERMISSIONS` in its crate) are exactly
//! what its code uses: every function runs every kind of request it serves, through a
//! client that records the IAM action each DynamoDB request needs. Too few and the
//! deployed function fails; too many and the template grants more than it should.

use device_flow::domain::DeviceCode;
use device_flow::permissions::Permissions;
use device_flow::token::KeySet;
use integration_tests::{
    Browser, IamLog, TEST_RSA_PEM, TestEnv, TestProvider, admin_request, admin_token, form_post,
    get, hidden, json, key_set, refreshing_client, text, token_request, user_token, user_verifier,
    verification_request, with_basic,
};
use lambda_http::Body;
use lambda_http::http::Method;
use serde_json::json;

fn sorted(actions: &[&str]) -> Vec<String> {
    let mut actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
    actions.sort();
    actions
}

fn assert_uses_exactly(function: &str, log: &IamLog, declared: &Permissions) {
    let (table, index, client_index) = log.actions();
    // Rule 6: the key prefixes it writes are exactly those the template allows it.
    assert_eq!(
        log.written_prefixes(),
        sorted(declared.writes),
        "{function}: partition-key prefixes written vs. declared"
    );
    assert_eq!(
        table,
        sorted(declared.table),
        "{function}: DynamoDB actions used on the table vs. declared"
    );
    assert_eq!(
        index,
        sorted(declared.index),
        "{function}: DynamoDB actions used on the listing index vs. declared"
    );
    assert_eq!(
        client_index,
        sorted(declared.client_index),
        "{function}: DynamoDB actions used on the client index vs. declared"
    );
}

#[tokio::test]
async fn every_function_uses_exactly_the_permissions_it_declares() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (_, secret) = env.confidential_client("backend").await;

    // device-authorization: public and confidential requests.
    let device_log = IamLog::default();
    let device = device_authorization::App::new(env.config(), env.store_recording(&device_log));
    let mut codes = Vec::new();
    for request in [
        form_post("/oauth2/v1/device", "client_id=tv"),
        with_basic(
            form_post("/oauth2/v1/device", ""),
            "backend",
            secret.expose(),
        ),
        form_post("/oauth2/v1/device", "client_id=tv"),
    ] {
        let response = device_authorization::handle(&device, request).await;
        let body = json(&response);
        assert_eq!(response.status(), 200, "{body}");
        codes.push((
            body["device_code"].as_str().unwrap().to_owned(),
            body["user_code"].as_str().unwrap().to_owned(),
        ));
    }
    assert_uses_exactly(
        "device-authorization",
        &device_log,
        &device_authorization::PERMISSIONS,
    );

    // token: the cold start's JWKS publication, pending and too-fast polls (public and
    // confidential), and the consuming poll.
    let token_log = IamLog::default();
    let keys = KeySet::from_json(&key_set(1, "k", &[("k", "RS256", TEST_RSA_PEM)])).unwrap();
    let token_store = env.store_recording(&token_log);
    let token = token::App::new(env.config(), token_store, keys);
    token
        .tokens
        .ready(device_flow::time::Timestamp::from_millis(0))
        .await
        .expect("publishing the JWKS");
    let (public_code, user_code) = &codes[0];
    for _ in 0..2 {
        token::handle(&token, token_request("tv", public_code)).await;
    }
    let confidential = with_basic(
        form_post(
            "/oauth2/v1/token",
            format!(
                "grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code={}",
                codes[1].0
            ),
        ),
        "backend",
        secret.expose(),
    );
    token::handle(&token, confidential).await;

    // verify: a failed look-up, a look-up, an approval and a denial.
    let verify_log = IamLog::default();
    let verify = verify::App::new(
        env.config(),
        env.store_recording(&verify_log),
        user_verifier(&env.config::<device_flow::AdminConfig>().user_tokens).await,
    );
    let user = user_token("alice");
    let miss = verify::handle(
        &verify,
        verification_request(Method::GET, "BBBB-BBBB", Body::Empty, Some(&user)),
    )
    .await;
    assert_eq!(miss.status(), 404);
    let found = verify::handle(
        &verify,
        verification_request(Method::GET, user_code, Body::Empty, Some(&user)),
    )
    .await;
    let id = json(&found)["deviceAuthorizationRequest"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let approved = verify::handle(
        &verify,
        verification_request(
            Method::POST,
            &id,
            Body::from(json!({"session": {"sessionId": "s"}}).to_string()),
            Some(&user),
        ),
    )
    .await;
    assert_eq!(approved.status(), 200);
    let denied_id = DeviceCode::parse(&codes[1].0).unwrap().id();
    let denied = verify::handle(
        &verify,
        verification_request(
            Method::POST,
            denied_id.as_str(),
            Body::from(json!({"deny": {}}).to_string()),
            Some(&user),
        ),
    )
    .await;
    assert_eq!(denied.status(), 200);

    let consumed = token::handle(&token, token_request("tv", public_code)).await;
    assert_eq!(consumed.status(), 200, "{}", json(&consumed));
    // A login with a refresh token, and a refresh.
    env.register(refreshing_client("rt", false)).await;
    let (rt_code, _) = env.issue("rt", None).await;
    env.approve(&rt_code, "alice").await;
    let issued = json(&token::handle(&token, token_request("rt", &rt_code)).await);
    let refresh_token = issued["refresh_token"].as_str().expect("a refresh token");
    let refreshed = token::handle(
        &token,
        form_post(
            "/oauth2/v1/token",
            format!("grant_type=refresh_token&refresh_token={refresh_token}&client_id=rt"),
        ),
    )
    .await;
    let refreshed = json(&refreshed);
    assert!(refreshed["refresh_token"].is_string(), "{refreshed}");
    assert_uses_exactly("token", &token_log, &token::PERMISSIONS);
    let access_token = refreshed["access_token"].as_str().unwrap().to_owned();
    let claims =
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&access_token).unwrap();
    let grant_id = claims.claims["sid"].as_str().unwrap().to_owned();

    // introspection: an introspection and a revocation.
    let introspection_log = IamLog::default();
    let introspection =
        introspection::App::new(&env.config(), env.store_recording(&introspection_log));
    let (_, rs_secret) = env.resource_server("resource-server").await;
    for path in ["/oauth2/v1/introspect", "/oauth2/v1/revoke"] {
        let request = with_basic(
            form_post(path, format!("token={access_token}")),
            "resource-server",
            rs_secret.expose(),
        );
        assert_eq!(
            introspection::handle(&introspection, request)
                .await
                .status(),
            200
        );
    }
    let revoke = form_post(
        "/oauth2/v1/revoke",
        format!("token={access_token}&client_id=rt"),
    );
    assert_eq!(
        introspection::handle(&introspection, revoke).await.status(),
        200
    );
    assert_uses_exactly(
        "introspection",
        &introspection_log,
        &introspection::PERMISSIONS,
    );

    // verify, again: the user's devices, and signing one out.
    let (other_code, _) = env.issue("rt", None).await;
    env.approve(&other_code, "alice").await;
    let other = json(&token::handle(&token, token_request("rt", &other_code)).await);
    let other_claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        other["access_token"].as_str().unwrap(),
    )
    .unwrap();
    let other_grant = other_claims.claims["sid"].as_str().unwrap().to_owned();
    let grants = verify::handle(
        &verify,
        admin_request(Method::GET, "/v2/oidc/device_grants", None, Some(&user)),
    )
    .await;
    assert_eq!(grants.status(), 200);
    let signed_out = verify::handle(
        &verify,
        admin_request(
            Method::DELETE,
            &format!("/v2/oidc/device_grants/{other_grant}"),
            None,
            Some(&user),
        ),
    )
    .await;
    assert_eq!(signed_out.status(), 200, "{}", json(&signed_out));
    assert_uses_exactly("verify", &verify_log, &verify::PERMISSIONS);

    // admin: every route, including a delete that denies the client's pending codes.
    let admin_log = IamLog::default();
    let admin_clock = integration_tests::ManualClock::now();
    let mut admin = admin::App::new(
        env.config(),
        env.store_recording(&admin_log),
        user_verifier(&env.config::<device_flow::AdminConfig>().user_tokens).await,
    );
    admin.clock = Box::new(admin_clock.clone());
    let root = admin_token("root");
    let clients = "/admin/oauth/clients";
    let revoke_grant_path = format!("/admin/oauth/grants/{grant_id}");
    for (method, path, body, status) in [
        (Method::GET, "/admin/oauth/device-authorizations", None, 200),
        (Method::GET, clients, None, 200),
        (
            Method::GET,
            "/admin/oauth/grants?account_id=alice",
            None,
            200,
        ),
        (Method::GET, "/admin/oauth/grants?client_id=rt", None, 200),
        (Method::DELETE, &revoke_grant_path, None, 204),
        (
            Method::POST,
            clients,
            Some(
                json!({"client_id": "new", "name": "New", "type": "public", "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "allowed_scopes": ["read"]}),
            ),
            201,
        ),
        (Method::GET, "/admin/oauth/clients/new", None, 200),
        (
            Method::PATCH,
            "/admin/oauth/clients/new",
            Some(json!({"name": "Renamed"})),
            200,
        ),
        (Method::DELETE, "/admin/oauth/clients/tv", None, 202),
    ] {
        let response = admin::handle(&admin, admin_request(method, path, body, Some(&root))).await;
        assert_eq!(response.status(), status, "{path}: {}", json(&response));
    }
    let finished = integration_tests::delete_client_completely(&admin, &admin_clock, "tv").await;
    assert_eq!(finished.last(), Some(&204), "{finished:?}");
    assert_uses_exactly("admin", &admin_log, &admin::PERMISSIONS);

    // discovery: the metadata (no request) and the JWKS.
    let discovery_log = IamLog::default();
    let discovery = discovery::App::new(&env.config(), env.store_recording(&discovery_log));
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let response = discovery::handle(&discovery, get(path)).await;
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_uses_exactly("discovery", &discovery_log, &discovery::PERMISSIONS);

    // Only the token function may read the signing-key secret, and only the page its
    // client secret.
    for (function, permissions) in [
        ("device-authorization", device_authorization::PERMISSIONS),
        ("verify", verify::PERMISSIONS),
        ("admin", admin::PERMISSIONS),
        ("discovery", discovery::PERMISSIONS),
        ("verification-page", verification_page::PERMISSIONS),
        ("introspection", introspection::PERMISSIONS),
    ] {
        assert!(permissions.signing_key_secret.is_empty(), "{function}");
    }
    for (function, permissions) in [
        ("device-authorization", device_authorization::PERMISSIONS),
        ("token", token::PERMISSIONS),
        ("verify", verify::PERMISSIONS),
        ("admin", admin::PERMISSIONS),
        ("discovery", discovery::PERMISSIONS),
        ("introspection", introspection::PERMISSIONS),
    ] {
        assert!(permissions.page_client_secret.is_empty(), "{function}");
    }
    assert_eq!(
        token::PERMISSIONS.signing_key_secret,
        ["secretsmanager:GetSecretValue"]
    );
}

#[tokio::test]
async fn the_verification_page_uses_exactly_the_permissions_it_declares() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let (approved_code, user_code) = env.issue("tv", None).await;
    let (denied_code, denied_user_code) = env.issue("tv", None).await;
    let provider = TestProvider::start().await;
    let log = IamLog::default();
    let page = env.page_app_with(&provider.issuer, env.store_recording(&log));
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;
    let post = |path: &str, fields: &[(&str, &str)]| browser.request(Method::POST, path, fields);
    // A miss, a look-up and an approval; a look-up and a denial.
    let miss = post("/device", &[("user_code", "BBBB-BBBB"), ("csrf", &csrf)]);
    assert_eq!(verification_page::handle(&page, miss).await.status(), 404);
    for (code, decision) in [(&user_code, "approve"), (&denied_user_code, "deny")] {
        let found = post("/device", &[("user_code", code), ("csrf", &csrf)]);
        let found = text(&verification_page::handle(&page, found).await);
        let id = hidden(&found, "id").expect("a confirmation");
        let fields = [("csrf", csrf.as_str()), ("id", &id), ("decision", decision)];
        let decided = verification_page::handle(&page, post("/device/decide", &fields)).await;
        assert_eq!(decided.status(), 200, "{decision}");
    }
    assert!(!denied_code.is_empty());
    // The approved device signs in; the person lists their devices and signs it out.
    let exchanged =
        token::handle(&env.token_app().await, token_request("tv", &approved_code)).await;
    assert_eq!(exchanged.status(), 200);
    let get = browser.request(Method::GET, "/device/devices", &[]);
    let devices = text(&verification_page::handle(&page, get).await);
    let grant = hidden(&devices, "grant").expect("the device in the list");
    let fields = [("csrf", csrf.as_str()), ("grant", grant.as_str())];
    let out = verification_page::handle(&page, post("/device/devices", &fields)).await;
    assert_eq!(out.status(), 200);
    assert_uses_exactly("verification-page", &log, &verification_page::PERMISSIONS);
}
