//! The verification page in a real browser: headless Chromium (Debian's `chromium`, driven
//! by Playwright through `tests/browser/page_flow.py`), signing in at the local OpenID
//! provider (`oidc-provider-mock`), against the service over HTTP, with the real
//! `device-login` binary polling through the `oauth2` crate. Each screen is saved as a
//! screenshot under `target/screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Device, finish, start};
use device_flow::domain::{DeviceCode, DeviceState};
use device_flow::domain::{NewClient, ScopeSet};
use integration_tests::{LocalProvider, TestEnv, json, new_client};
use serde_json::Value;

/// The screens `page_flow.py` reported, in order.
fn run_browser(args: &[&str]) -> Vec<Value> {
    let python = std::env::var("PLAYWRIGHT_PYTHON").expect(
        "PLAYWRIGHT_PYTHON is not set: the browser tests need Python with Playwright. Run \
         them with `make test`, which installs it (and needs Debian's chromium).",
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let screenshots = root.join("target/screenshots");
    let output = Command::new(python)
        .arg(root.join("tests/browser/page_flow.py"))
        .args(args)
        .arg("--screenshots")
        .arg(&screenshots)
        .output()
        .expect("the browser script runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON screen"))
        .collect()
}

fn screen<'a>(screens: &'a [Value], name: &str) -> &'a Value {
    screens
        .iter()
        .find(|s| s["screen"] == name)
        .unwrap_or_else(|| panic!("no {name} screen in {screens:?}"))
}

async fn serve() -> (TestEnv, LocalProvider, String) {
    let env = TestEnv::new().await;
    let provider = LocalProvider::start().await;
    let base = env.serve_with_provider(&provider.issuer).await;
    (env, provider, base)
}

/// A login of the real client, decided in the browser; the service stays up as long as
/// `served` lives.
async fn login_decided_in_the_browser(
    served: &(TestEnv, LocalProvider, String),
    decision: &str,
    name: &str,
) -> (i32, String, String) {
    let (env, _provider, base) = served;
    let (env, base) = (env, base.as_str());
    let scope = "openid profile email read write";
    let client = NewClient {
        allowed_scopes: ScopeSet::parse(scope).unwrap(),
        ..new_client("tv-app", false)
    };
    let device = Device::register(env, base, client).await;
    let login = device.start(&["--scope", scope]).await;
    let typed = login.user_code.to_lowercase().replace('-', " ");
    let url = format!("{base}/device");
    let screens = tokio::task::spawn_blocking({
        let typed = typed.clone();
        let name = name.to_owned();
        let decision = decision.to_owned();
        move || {
            run_browser(&[
                "--url",
                &url,
                "--sub",
                "alice",
                "--code",
                &typed,
                "--decision",
                &decision,
                "--name",
                &name,
            ])
        }
    })
    .await
    .unwrap();
    let confirmation = screen(&screens, "confirmation");
    assert_eq!(confirmation["status"], 200, "{confirmation}");
    let text = confirmation["text"].as_str().unwrap();
    for shown in [
        "Test client tv-app",
        "See your files",
        "write",
        "Know your name",
        "See your e-mail address",
        "127.0.0.1",
        "Only continue if you started this on your own device just now",
        login.user_code.as_str(),
    ] {
        assert!(
            text.contains(shown),
            "the confirmation shows {shown:?}: {text}"
        );
    }
    assert_eq!(screen(&screens, decision)["status"], 200);
    finish(login).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_approves_in_the_browser_and_the_device_gets_its_token() {
    let served = serve().await;
    let (code, stdout, stderr) = login_decided_in_the_browser(&served, "approve", "approve").await;
    assert_eq!(code, 0, "{stderr}");
    let response: Value = serde_json::from_str(&stdout).expect("the token response");
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(
        response["access_token"].as_str().expect("a token"),
    )
    .unwrap()
    .claims;
    assert_eq!(
        claims["sub"], "alice",
        "the account that signed in approved"
    );
    // The device learned who, from the ID token it verified with the openidconnect crate:
    // the name and address the person's provider gave the page.
    assert!(
        stderr.contains("Signed in as Alice Liddell (alice@example.com)"),
        "{stderr}"
    );
    assert!(stderr.contains("ID token verified"), "{stderr}");
    assert!(response["id_token"].is_string());

    // The device is in alice's list, where one press signs it out.
    let url = format!(
        "{}/device/devices",
        claims["iss"].as_str().expect("an issuer")
    );
    let screens = tokio::task::spawn_blocking(move || {
        run_browser(&[
            "--url",
            &url,
            "--sub",
            "alice",
            "--devices",
            "--sign-out-device",
            "--name",
            "devices",
        ])
    })
    .await
    .unwrap();
    let list = screen(&screens, "devices")["text"].as_str().unwrap();
    for shown in [
        "Your devices",
        "Test client tv-app",
        "See your files",
        "127.0.0.1",
    ] {
        assert!(list.contains(shown), "the list shows {shown:?}: {list}");
    }
    let out = screen(&screens, "device-signed-out");
    assert_eq!(out["status"], 200, "{out}");
    let text = out["text"].as_str().unwrap();
    assert!(text.contains("The device was signed out."), "{text}");
    assert!(text.contains("No device is signed in"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_denies_in_the_browser_and_the_device_is_told() {
    let served = serve().await;
    let (code, stdout, stderr) = login_decided_in_the_browser(&served, "deny", "deny").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("denied"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_complete_link_fills_the_code_in_and_approves_nothing() {
    let (env, _provider, base) = serve().await;
    env.public_client("tv").await;
    let response = device_authorization::handle(
        &env.device_app(),
        integration_tests::form_post("/oauth2/v1/device", "client_id=tv"),
    )
    .await;
    let body = json(&response);
    let (device_code, user_code) = (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    );
    // The served device endpoint is the one that knows the served address.
    let complete = format!("{base}/device?user_code={user_code}");
    let screens = tokio::task::spawn_blocking(move || {
        run_browser(&[
            "--url",
            &complete,
            "--sub",
            "carol",
            "--name",
            "complete-link",
        ])
    })
    .await
    .unwrap();
    assert_eq!(
        screen(&screens, "code-entry")["code_value"],
        user_code.as_str()
    );
    let id = DeviceCode::parse(&device_code).unwrap().id();
    let record = env
        .store()
        .get_device_authorization(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.state,
        DeviceState::Pending,
        "nothing without a click"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_until_the_budget_is_spent_then_the_wait_in_words() {
    let (env, _provider, base) = serve().await;
    let login = start(&env, &base, "tv-budget", false).await;
    let url = format!("{base}/device");
    let code = login.user_code.clone();
    let screens = tokio::task::spawn_blocking(move || {
        run_browser(&[
            "--url",
            &url,
            "--sub",
            "dave",
            "--codes-first",
            "BCDF-GHJK,ZZZZ-ZZZZ,QQQQ-QQQQ,XXXX-XXXX,WWWW-WWWW",
            "--code",
            &code,
            "--name",
            "rate-limited",
        ])
    })
    .await
    .unwrap();
    let wrong: Vec<_> = screens
        .iter()
        .filter(|s| s["screen"] == "wrong-code")
        .collect();
    assert_eq!(wrong.len(), 5);
    for w in wrong {
        assert_eq!(w["status"], 404);
        assert!(
            w["text"]
                .as_str()
                .unwrap()
                .contains("not valid or has expired")
        );
    }
    let limited = screen(&screens, "confirmation");
    assert_eq!(limited["status"], 429, "the right code, too late");
    assert!(
        limited["text"]
            .as_str()
            .unwrap()
            .contains("Too many attempts")
    );
    drop(login);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_gets_the_same_page_as_an_unknown_one() {
    let (env, _provider, base) = serve().await;
    env.public_client("tv").await;
    let (device_code, user_code) = env.issue("tv", None).await;
    // Expire the record and its code's claim in the table, as time would.
    let id = DeviceCode::parse(&device_code).unwrap().id();
    let past = aws_sdk_dynamodb::types::AttributeValue::N("1000".into());
    for (pk, sk) in [
        (format!("DEVICE#{id}"), "DEVICE"),
        (
            format!("USERCODE#{}", user_code.replace('-', "")),
            "USERCODE",
        ),
    ] {
        env.dynamodb
            .update_item()
            .table_name(&env.table_name)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .update_expression("SET expires_at = :past")
            .expression_attribute_values(":past", past.clone())
            .send()
            .await
            .expect("expiring");
    }
    let url = format!("{base}/device");
    let screens = tokio::task::spawn_blocking(move || {
        run_browser(&[
            "--url", &url, "--sub", "erin", "--code", &user_code, "--name", "expired",
        ])
    })
    .await
    .unwrap();
    let refused = screen(&screens, "confirmation");
    assert_eq!(refused["status"], 404);
    assert!(
        refused["text"]
            .as_str()
            .unwrap()
            .contains("not valid or has expired")
    );
}
