//! The whole flow as a user sees it: the real `device-login` binary against the service
//! over HTTP (the real handlers on the real DynamoDB-compatible server that `make test`
//! starts), approved or denied through the verification API.

mod common;

use common::{finish, start};
use integration_tests::{TestEnv, json, user_token, verification_request};
use lambda_http::Body;
use lambda_http::http::Method;
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
    let login = start(&env, &base, id, confidential).await;
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
