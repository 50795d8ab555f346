//! The whole flow as a user sees it: the real `device-login` binary against the service
//! over HTTP (the real handlers on the real DynamoDB-compatible server that `make test`
//! starts), approved or denied through the verification API.

mod common;

use common::{Device, finish, start};
use integration_tests::{
    TestEnv, json, new_client, refreshing_client, user_token, verification_request,
};
use lambda_http::Body;
use lambda_http::http::Method;
use serde_json::Value;
use tokio::process::Command;

/// Looks the code up and approves or denies it as `account`, through the verification API.
async fn decide(env: &TestEnv, code: &str, account: &str, approve: bool) {
    let app = env.verify_app().await;
    let token = user_token(account);
    let found = verify::handle(
        &app,
        verification_request(Method::GET, code, Body::Empty, Some(&token)),
    )
    .await;
    let found = json(&found);
    let id = found["deviceAuthorizationRequest"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{found}"))
        .to_owned();
    let body = if approve {
        serde_json::json!({"session": {"sessionId": "e2e"}})
    } else {
        serde_json::json!({"deny": {}})
    };
    let decided = verify::handle(
        &app,
        verification_request(
            Method::POST,
            &id,
            Body::from(body.to_string()),
            Some(&token),
        ),
    )
    .await;
    assert_eq!(decided.status(), 200, "{}", json(&decided));
}

async fn approved_login(confidential: bool) {
    let env = TestEnv::new().await;
    let base = env.serve().await;
    let id = if confidential {
        "e2e-service"
    } else {
        "e2e-cli"
    };
    let device = Device::register(&env, &base, new_client(id, confidential)).await;
    let login = device.start(&["--scope", "read write"]).await;
    decide(&env, &login.user_code, "alice", true).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stderr}");
    let response: serde_json::Value =
        serde_json::from_str(&stdout).expect("the token response on stdout");
    let token = response["access_token"].as_str().expect("an access token");
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], id);
    assert!(stderr.contains("Signed in as alice"), "{stderr}");
    assert!(stderr.contains("signature verified"), "{stderr}");
    assert!(
        !device.credentials.exists(),
        "without offline_access there is no refresh token, so nothing is saved"
    );
}

async fn denied_login(confidential: bool) {
    let env = TestEnv::new().await;
    let base = env.serve().await;
    let id = if confidential {
        "e2e-service"
    } else {
        "e2e-cli"
    };
    let login = start(&env, &base, id, confidential).await;
    decide(&env, &login.user_code, "bob", false).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty(), "no token on stdout: {stdout}");
    assert!(stderr.contains("denied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_signs_in_when_the_user_approves() {
    approved_login(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_signs_in_when_the_user_approves() {
    approved_login(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_is_told_when_the_user_denies() {
    denied_login(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_is_told_when_the_user_denies() {
    denied_login(true).await;
}

/// The refresh token saved in the device's file, if any (and the file is private).
fn saved_token(device: &Device) -> Option<String> {
    let bytes = std::fs::read(&device.credentials).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |path: &std::path::Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            mode(&device.credentials),
            0o600,
            "readable by the user only"
        );
        let dir = device.credentials.parent().expect("a directory");
        assert_eq!(mode(dir), 0o700, "a private directory");
    }
    let file: Value = serde_json::from_slice(&bytes).expect("the saved sign-ins are JSON");
    let sessions = file["sessions"].as_array().expect("a list of sessions");
    assert!(sessions.len() <= 1, "one sign-in per server and client");
    let session = sessions.first()?;
    assert_eq!(session["client_id"], device.id.as_str());
    assert_eq!(session["issuer"], device.base.as_str());
    Some(session["refresh_token"].as_str()?.to_owned())
}

fn claims(response: &Value) -> Value {
    let token = response["access_token"].as_str().expect("an access token");
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .expect("a JWT")
        .claims
}

/// Presents `refresh_token` at the token endpoint by hand; the status and the body.
async fn refresh_by_hand(device: &Device, refresh_token: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let mut request =
        oauth2::reqwest::Client::new().post(format!("{}/oauth2/v1/token", device.base));
    match &device.secret {
        Some(secret) => request = request.basic_auth(&device.id, Some(secret)),
        None => form.push(("client_id", &device.id)),
    }
    let response = request
        .form(&form)
        .send()
        .await
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("a body");
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

/// Signs in with a code; returns the token response.
async fn first_login(env: &TestEnv, device: &Device) -> Value {
    let login = device.start(&[]).await;
    decide(env, &login.user_code, "alice", true).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("the next run refreshes"), "{stderr}");
    // The default scope asks for openid: an ID token, verified by the openidconnect crate.
    assert!(stderr.contains("ID token verified"), "{stderr}");
    serde_json::from_str(&stdout).expect("the token response on stdout")
}

async fn a_saved_sign_in_is_refreshed_then_revoked_by_logout(confidential: bool) {
    let env = TestEnv::new().await;
    let base = env.serve().await;
    let id = if confidential {
        "keeper-service"
    } else {
        "keeper-cli"
    };
    let device = Device::register(&env, &base, refreshing_client(id, confidential)).await;

    // The first run shows a code; the default scope asks for offline_access, so the
    // refresh token is saved, readable by the user only.
    let first = first_login(&env, &device).await;
    let first_refresh = first["refresh_token"].as_str().expect("a refresh token");
    assert_eq!(saved_token(&device).as_deref(), Some(first_refresh));

    // The next run needs no code: it refreshes, and the rotated token replaces the old.
    let (code, stdout, stderr) = device.run(&[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Refreshed the saved sign-in"), "{stderr}");
    assert!(!stderr.contains("user code"), "no code is shown: {stderr}");
    let second: Value = serde_json::from_str(&stdout).expect("the token response on stdout");
    let second_refresh = second["refresh_token"]
        .as_str()
        .expect("a rotated refresh token");
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(saved_token(&device).as_deref(), Some(second_refresh));
    assert_eq!(claims(&second)["sub"], "alice");
    assert_eq!(
        claims(&second)["sid"],
        claims(&first)["sid"],
        "the same grant"
    );

    // --logout revokes the grant at the server and forgets the token.
    let (code, _, stderr) = device.run(&["--logout"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Signed out"), "{stderr}");
    assert_eq!(saved_token(&device), None);
    let (status, body) = refresh_by_hand(&device, second_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // Signed out, a second logout has nothing to do, and the next run asks for a code.
    let (code, _, stderr) = device.run(&["--logout"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("nothing to sign out"), "{stderr}");
    let login = device.start(&[]).await;
    assert!(!login.user_code.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_refreshes_its_saved_sign_in_and_logout_revokes_it() {
    a_saved_sign_in_is_refreshed_then_revoked_by_logout(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confidential_client_refreshes_its_saved_sign_in_and_logout_revokes_it() {
    a_saved_sign_in_is_refreshed_then_revoked_by_logout(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_ended_elsewhere_starts_a_new_login() {
    let env = TestEnv::new().await;
    let base = env.serve().await;
    let device = Device::register(&env, &base, refreshing_client("ended-cli", false)).await;
    let first = first_login(&env, &device).await;

    // Signed out elsewhere (the user's device list): the saved token is now dead.
    let refresh = first["refresh_token"].as_str().expect("a refresh token");
    let revoked = oauth2::reqwest::Client::new()
        .post(format!("{base}/oauth2/v1/revoke"))
        .form(&[("token", refresh), ("client_id", "ended-cli")])
        .send()
        .await
        .expect("the revocation endpoint answers");
    assert_eq!(revoked.status(), 200);

    let login = device.start(&[]).await;
    decide(&env, &login.user_code, "alice", true).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("The saved sign-in has ended"), "{stderr}");
    let second: Value = serde_json::from_str(&stdout).expect("the token response on stdout");
    assert_ne!(claims(&second)["sid"], claims(&first)["sid"], "a new grant");
    assert_eq!(
        saved_token(&device).as_deref(),
        second["refresh_token"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wider_scope_than_saved_starts_a_new_login_and_revokes_the_old_one() {
    let env = TestEnv::new().await;
    let base = env.serve().await;
    let device = Device::register(&env, &base, refreshing_client("wider-cli", false)).await;
    let login = device.start(&["--scope", "read offline_access"]).await;
    decide(&env, &login.user_code, "alice", true).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stderr}");
    let first: Value = serde_json::from_str(&stdout).expect("the token response");

    let login = device
        .start(&["--scope", "read write offline_access"])
        .await;
    decide(&env, &login.user_code, "alice", true).await;
    let (code, stdout, stderr) = finish(login).await;
    assert_eq!(code, 0, "{stderr}");
    let second: Value = serde_json::from_str(&stdout).expect("the token response");
    assert_eq!(claims(&second)["scope"], "offline_access read write");
    assert_eq!(
        saved_token(&device).as_deref(),
        second["refresh_token"].as_str()
    );
    let old = first["refresh_token"].as_str().expect("a refresh token");
    let (status, body) = refresh_by_hand(&device, old).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_not_a_panic() {
    let output = Command::new(env!("CARGO_BIN_EXE_device-login"))
        .args(["--issuer", "http://127.0.0.1:9", "--client-id", "x"])
        .env_remove("DEVICE_LOGIN_CLIENT_SECRET")
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Could not reach the authorization server"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
