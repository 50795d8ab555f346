//! The contract test: schemathesis (PyPI, installed by `make test`) generates requests
//! from `openapi.yaml` for every route, valid and invalid, a bounded number per route,
//! and sends them to every function served over HTTP on this test's table. It fails on
//! any 5xx and on any response the document does not describe (status, content type,
//! headers, body schema).

use std::path::PathBuf;
use std::process::Command;

use device_flow::domain::{GrantType, NewClient, ScopeSet};
use integration_tests::{TestEnv, admin_token, form_post, json, new_client, token_request};

/// Examples per route and phase; bounded so that the test takes seconds, not minutes.
const EXAMPLES_PER_ROUTE: &str = "30";

#[tokio::test(flavor = "multi_thread")]
async fn every_response_matches_openapi_yaml() {
    let schemathesis = std::env::var("SCHEMATHESIS").expect(
        "SCHEMATHESIS is not set: this test needs the schemathesis command. Run it with \
         `make test`, which installs it.",
    );
    let env = TestEnv::new().await;
    env.public_client("demo-cli").await;
    let (_, secret) = env.confidential_client("demo-service").await;
    let access_token = openid_access_token(&env).await;
    let base = env.serve().await;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let report = std::env::temp_dir().join(format!("schemathesis-{}", std::process::id()));

    let mut command = Command::new(schemathesis);
    command
        .current_dir(&root)
        .arg("--config-file")
        .arg("tests/contract/schemathesis.toml")
        .args(["run", "openapi.yaml", "--url", &base])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", EXAMPLES_PER_ROUTE, "--seed", "8628"])
        .args(["--workers", "2", "--request-timeout", "30"])
        .arg("--report-dir")
        .arg(&report)
        .env("CONTRACT_USER_TOKEN", admin_token("contract-admin"))
        .env("CONTRACT_ACCESS_TOKEN", access_token)
        .env("CONTRACT_CLIENT_ID", "demo-service")
        .env("CONTRACT_CLIENT_SECRET", secret.expose())
        .env("NO_COLOR", "1");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the schemathesis task")
        .expect("running schemathesis");
    let _ = std::fs::remove_dir_all(&report);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found responses that do not match openapi.yaml:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// An access token with `openid profile email`, from a whole login: UserInfo's credential.
async fn openid_access_token(env: &TestEnv) -> String {
    env.register(NewClient {
        allowed_grants: vec![GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("openid profile email").unwrap(),
        ..new_client("contract-device", false)
    })
    .await;
    let request = form_post(
        "/oauth2/v1/device",
        "client_id=contract-device&scope=openid%20profile%20email",
    );
    let issued = json(&device_authorization::handle(&env.device_app(), request).await);
    let device_code = issued["device_code"].as_str().unwrap();
    env.approve(device_code, "contract-user").await;
    let token_app = env.token_app().await;
    let tokens =
        json(&token::handle(&token_app, token_request("contract-device", device_code)).await);
    tokens["access_token"].as_str().unwrap().to_owned()
}
