//! The verification page, driven as a browser drives it (cookies, form posts, `Origin`),
//! signing in at an OpenID provider the tests control; the records are read back from the
//! table after every refusal.

use std::time::Duration;

use device_flow::domain::{DeviceState, GrantId};
use integration_tests::{
    Browser, ManualClock, Misbehaviour, TestEnv, TestProvider, form_post, from_ip, hidden, json,
    location, text, token_request,
};
use lambda_http::http::{Method, header};
use lambda_http::{Body, Response};
use verification_page::{App, handle};

async fn setup() -> (TestEnv, TestProvider, App) {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let provider = TestProvider::start().await;
    let page = env.page_app(&provider.issuer);
    (env, provider, page)
}

/// Issues a code as a TV on `203.0.113.7` would; returns the device code and user code.
async fn issue_from_tv(env: &TestEnv) -> (String, String) {
    let mut request = form_post("/oauth2/v1/device", "client_id=tv");
    request.headers_mut().insert(
        header::USER_AGENT,
        "SmartTV/7.1 (living room)".parse().unwrap(),
    );
    let request = from_ip(request, "203.0.113.7");
    let response = device_authorization::handle(&env.device_app(), request).await;
    let body = json(&response);
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

fn assert_page_headers(response: &Response<Body>) {
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn a_person_signs_in_types_a_messy_code_sees_the_device_and_approves() {
    let (env, provider, page) = setup().await;
    let (device_code, user_code) = issue_from_tv(&env).await;
    provider.sign_in_as("alice");
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;

    let messy = user_code.to_lowercase().replace('-', " ");
    let request = browser.request(
        Method::POST,
        "/device",
        &[("user_code", &messy), ("csrf", &csrf)],
    );
    let confirmation = handle(&page, request).await;
    assert_eq!(confirmation.status(), 200, "{}", text(&confirmation));
    assert_page_headers(&confirmation);
    let html = text(&confirmation);
    for shown in [
        "Test client tv",
        "See your files",
        "write",
        "203.0.113.7",
        "SmartTV/7.1 (living room)",
        user_code.as_str(),
        "Only continue if you started this on your own device just now",
        "Approve",
        "Deny",
    ] {
        assert!(html.contains(shown), "the confirmation shows {shown:?}");
    }
    let id = hidden(&html, "id").expect("the record's id");
    let request = browser.request(
        Method::POST,
        "/device/decide",
        &[("csrf", &csrf), ("id", &id), ("decision", "approve")],
    );
    let done = handle(&page, request).await;
    assert_eq!(done.status(), 200);
    assert!(text(&done).contains("return to your device"));

    let token = token::handle(&env.token_app().await, token_request("tv", &device_code)).await;
    let body = json(&token);
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        body["access_token"].as_str().expect("a token"),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "alice", "the signed-in account approved");
}

#[tokio::test]
async fn deny_is_recorded_and_the_device_hears_access_denied() {
    let (env, _provider, page) = setup().await;
    let (device_code, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;
    let request = browser.request(
        Method::POST,
        "/device",
        &[("user_code", &user_code), ("csrf", &csrf)],
    );
    let id = hidden(&text(&handle(&page, request).await), "id").unwrap();
    let request = browser.request(
        Method::POST,
        "/device/decide",
        &[("csrf", &csrf), ("id", &id), ("decision", "deny")],
    );
    assert!(text(&handle(&page, request).await).contains("Request denied"));
    let poll = token::handle(&env.token_app().await, token_request("tv", &device_code)).await;
    assert_eq!(json(&poll)["error"], "access_denied");
}

#[tokio::test]
async fn the_complete_uri_fills_the_code_in_but_approves_nothing() {
    let (env, _provider, page) = setup().await;
    let (device_code, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    // Not signed in yet: the code survives the trip to the provider.
    let path = format!("/device?user_code={user_code}");
    let started = handle(&page, browser.request(Method::GET, &path, &[])).await;
    assert_eq!(started.status(), 303);
    assert_page_headers(&started);
    let authorize = location(&started);
    assert!(authorize.contains("code_challenge=") && authorize.contains("nonce="));
    assert!(
        !authorize.contains(&user_code),
        "the code never goes to the provider"
    );
    let signed_in = browser.through_provider(&page, &started).await;
    assert_eq!(location(&signed_in), path, "back to the form with the code");
    let form = handle(&page, browser.request(Method::GET, &path, &[])).await;
    assert!(text(&form).contains(&format!(r#"value="{user_code}""#)));
    assert_eq!(env.record(&device_code).await.state, DeviceState::Pending);
}

#[tokio::test]
async fn posts_without_the_sessions_csrf_token_or_from_another_origin_change_nothing() {
    let (env, _provider, page) = setup().await;
    let (device_code, user_code) = issue_from_tv(&env).await;
    let mut alice = Browser::new();
    let csrf = alice.sign_in(&page).await;
    let request = alice.request(
        Method::POST,
        "/device",
        &[("user_code", &user_code), ("csrf", &csrf)],
    );
    let id = hidden(&text(&handle(&page, request).await), "id").unwrap();
    let mut mallory = Browser::new();
    let mallory_csrf = mallory.sign_in(&page).await;

    let approve = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("id".to_owned(), id.clone()),
            ("decision".to_owned(), "approve".to_owned()),
        ]
    };
    let post = |browser: &Browser, fields: &[(String, String)]| {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        browser.request(Method::POST, "/device/decide", &fields)
    };
    // No token; another session's token; a foreign origin; no origin.
    let mut no_csrf = approve("");
    no_csrf.remove(0);
    let mut foreign = alice.clone();
    foreign.origin = Some("https://evil.example".into());
    let mut no_origin = alice.clone();
    no_origin.origin = None;
    for (what, request) in [
        ("no CSRF token", post(&alice, &no_csrf)),
        (
            "another session's token",
            post(&alice, &approve(&mallory_csrf)),
        ),
        ("a foreign Origin", post(&foreign, &approve(&csrf))),
        ("no Origin", post(&no_origin, &approve(&csrf))),
    ] {
        let refused = handle(&page, request).await;
        assert_eq!(refused.status(), 403, "{what}");
        assert_page_headers(&refused);
        assert!(text(&refused).contains("Request refused"), "{what}");
        assert_eq!(
            env.record(&device_code).await.state,
            DeviceState::Pending,
            "{what}"
        );
    }
    // With everything right, it works.
    let approved = handle(&page, post(&alice, &approve(&csrf))).await;
    assert_eq!(approved.status(), 200);
    assert!(matches!(
        env.record(&device_code).await.state,
        DeviceState::Approved(_)
    ));
}

#[tokio::test]
async fn a_tampered_or_expired_session_is_signed_out_and_changes_nothing() {
    let (env, _provider, mut page) = setup().await;
    let clock = ManualClock::now();
    page.clock = Box::new(clock.clone());
    let (device_code, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;

    let mut tampered = browser.clone();
    let session = tampered.cookies.get_mut("__Host-device_session").unwrap();
    let flipped = if session.ends_with('A') { 'B' } else { 'A' };
    session.pop();
    session.push(flipped);
    let fields = [("user_code", user_code.as_str()), ("csrf", csrf.as_str())];
    let refused = handle(&page, tampered.request(Method::POST, "/device", &fields)).await;
    assert_eq!(refused.status(), 401);
    assert!(text(&refused).contains("Your session has ended"));

    clock.advance(Duration::from_secs(16 * 60));
    let refused = handle(&page, browser.request(Method::POST, "/device", &fields)).await;
    assert_eq!(refused.status(), 401, "a session lasts 15 minutes");
    assert_eq!(env.record(&device_code).await.state, DeviceState::Pending);
}

#[tokio::test]
async fn an_id_token_that_is_wrong_in_any_way_signs_nobody_in() {
    let (_env, provider, page) = setup().await;
    for (what, wrong) in [
        (
            "nonce",
            Misbehaviour {
                wrong_nonce: true,
                ..Misbehaviour::default()
            },
        ),
        (
            "audience",
            Misbehaviour {
                wrong_audience: true,
                ..Misbehaviour::default()
            },
        ),
        (
            "issuer",
            Misbehaviour {
                wrong_issuer: true,
                ..Misbehaviour::default()
            },
        ),
        (
            "expiry",
            Misbehaviour {
                expired: true,
                ..Misbehaviour::default()
            },
        ),
    ] {
        provider.misbehave(wrong);
        let mut browser = Browser::new();
        let started = handle(&page, browser.request(Method::GET, "/device", &[])).await;
        let failed = browser.through_provider(&page, &started).await;
        assert_eq!(failed.status(), 400, "wrong {what}");
        assert!(text(&failed).contains("Sign-in failed"), "wrong {what}");
        assert!(
            !browser.cookies.contains_key("__Host-device_session"),
            "wrong {what}"
        );
        assert!(
            !browser.cookies.contains_key("__Host-device_login"),
            "wrong {what}"
        );
    }
}

#[tokio::test]
async fn a_callback_with_another_state_or_without_a_sign_in_is_refused() {
    let (_env, _provider, page) = setup().await;
    let mut browser = Browser::new();
    let started = handle(&page, browser.request(Method::GET, "/device", &[])).await;
    browser.absorb(&started);
    let forged = handle(
        &page,
        browser.request(Method::GET, "/device/callback?code=abc&state=forged", &[]),
    )
    .await;
    assert_eq!(forged.status(), 400);
    assert!(text(&forged).contains("Sign-in failed"));
    let stranger = Browser::new();
    let lost = handle(
        &page,
        stranger.request(Method::GET, "/device/callback?code=abc&state=x", &[]),
    )
    .await;
    assert_eq!(lost.status(), 400);
    assert!(text(&lost).contains("Sign-in expired"));
}

#[tokio::test]
async fn wrong_codes_spend_the_look_up_budget_then_the_page_says_how_long_to_wait() {
    let (env, _provider, page) = setup().await;
    let (device_code, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;
    for wrong in ["BCDF-GHJK", "ZZZZ-ZZZZ", "nonsense", "", "QQQQ QQQQ"] {
        let request = browser.request(
            Method::POST,
            "/device",
            &[("user_code", wrong), ("csrf", &csrf)],
        );
        let response = handle(&page, request).await;
        assert_eq!(response.status(), 404, "{wrong:?}");
        assert!(text(&response).contains("not valid or has expired"));
    }
    let request = browser.request(
        Method::POST,
        "/device",
        &[("user_code", &user_code), ("csrf", &csrf)],
    );
    let limited = handle(&page, request).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The wait is what is left of the fixed window, in words.
    let html = text(&limited);
    assert!(html.contains("Wait ") && html.contains("minute"), "{html}");
    assert_eq!(env.record(&device_code).await.state, DeviceState::Pending);
}

#[tokio::test]
async fn an_expired_code_gets_the_same_answer_as_an_unknown_one() {
    let (env, _provider, mut page) = setup().await;
    let clock = ManualClock::now();
    page.clock = Box::new(clock.clone());
    let (_, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;
    // Ten minutes later the code has expired; the 15-minute session has not.
    clock.advance(Duration::from_secs(601));
    let request = browser.request(
        Method::POST,
        "/device",
        &[("user_code", &user_code), ("csrf", &csrf)],
    );
    let expired = handle(&page, request).await;
    assert_eq!(expired.status(), 404);
    assert!(text(&expired).contains("not valid or has expired"));
}

/// A TV signed in as `account` through a completed login; the grant's id (the tokens' `sid`).
async fn signed_in_tv(env: &TestEnv, account: &str) -> String {
    let (device_code, _) = issue_from_tv(env).await;
    env.approve(&device_code, account).await;
    let token = token::handle(&env.token_app().await, token_request("tv", &device_code)).await;
    let body = json(&token);
    let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(
        body["access_token"].as_str().expect("a token"),
    )
    .unwrap()
    .claims;
    claims["sid"].as_str().expect("a grant id").to_owned()
}

async fn revoked(env: &TestEnv, grant: &str) -> bool {
    let id = GrantId::parse(grant).expect("a grant id");
    let grant = env
        .store()
        .get_grant(&id)
        .await
        .unwrap()
        .expect("the grant");
    grant.revoked.is_some()
}

#[tokio::test]
async fn a_person_sees_only_their_own_devices_and_signs_one_out() {
    let (env, provider, page) = setup().await;
    let mine = signed_in_tv(&env, "alice").await;
    let theirs = signed_in_tv(&env, "bob").await;

    // Not signed in: off to the provider, and back to the list, not the code form.
    let mut browser = Browser::new();
    let started = handle(&page, browser.request(Method::GET, "/device/devices", &[])).await;
    assert_eq!(started.status(), 303);
    provider.sign_in_as("alice");
    let signed_in = browser.through_provider(&page, &started).await;
    assert_eq!(location(&signed_in), "/device/devices");

    let list = handle(&page, browser.request(Method::GET, "/device/devices", &[])).await;
    assert_eq!(list.status(), 200, "{}", text(&list));
    assert_page_headers(&list);
    let html = text(&list);
    for shown in [
        "Your devices",
        "Test client tv",
        "See your files",
        "203.0.113.7",
        "SmartTV/7.1",
    ] {
        assert!(html.contains(shown), "the list shows {shown:?}: {html}");
    }
    assert_eq!(hidden(&html, "grant").as_deref(), Some(mine.as_str()));
    assert!(
        !html.contains(&theirs),
        "another account's device is not listed"
    );
    let csrf = hidden(&html, "csrf").expect("the session's CSRF token");

    // Every screen links to the list.
    let form = handle(&page, browser.request(Method::GET, "/device", &[])).await;
    assert!(text(&form).contains(r#"href="/device/devices""#));

    // Another account's grant, a malformed id: one answer, and nothing changes.
    for grant in [theirs.as_str(), "not-a-grant", ""] {
        let fields = [("csrf", csrf.as_str()), ("grant", grant)];
        let refused = handle(
            &page,
            browser.request(Method::POST, "/device/devices", &fields),
        )
        .await;
        assert_eq!(refused.status(), 404, "{grant:?}");
        assert!(text(&refused).contains("Device not found"));
    }
    assert!(!revoked(&env, &theirs).await);

    // Without the session's CSRF token, or from another origin: refused, nothing revoked.
    let fields = [("grant", mine.as_str())];
    let forged = handle(
        &page,
        browser.request(Method::POST, "/device/devices", &fields),
    )
    .await;
    assert_eq!(forged.status(), 403);
    let fields = [("csrf", csrf.as_str()), ("grant", mine.as_str())];
    let mut foreign = browser.request(Method::POST, "/device/devices", &fields);
    foreign
        .headers_mut()
        .insert(header::ORIGIN, "https://evil.example".parse().unwrap());
    assert_eq!(handle(&page, foreign).await.status(), 403);
    assert!(!revoked(&env, &mine).await);

    // Signed out: the grant is revoked, and the list says so.
    let done = handle(
        &page,
        browser.request(Method::POST, "/device/devices", &fields),
    )
    .await;
    assert_eq!(done.status(), 200);
    let html = text(&done);
    assert!(html.contains("The device was signed out."), "{html}");
    assert!(html.contains("No device is signed in"), "{html}");
    assert!(revoked(&env, &mine).await);
    assert!(!revoked(&env, &theirs).await);

    // Twice: already signed out is "not found".
    let again = handle(
        &page,
        browser.request(Method::POST, "/device/devices", &fields),
    )
    .await;
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let (_env, _provider, page) = setup().await;
    let mut browser = Browser::new();
    let csrf = browser.sign_in(&page).await;
    let out = handle(
        &page,
        browser.request(Method::POST, "/device/logout", &[("csrf", &csrf)]),
    )
    .await;
    assert_eq!(out.status(), 200);
    assert!(text(&out).contains("Signed out"));
    browser.absorb(&out);
    assert!(!browser.cookies.contains_key("__Host-device_session"));
    let again = handle(&page, browser.request(Method::GET, "/device", &[])).await;
    assert_eq!(again.status(), 303, "signed out: off to the provider again");
}

#[tokio::test]
async fn the_stylesheet_and_unknown_paths() {
    let (_env, _provider, page) = setup().await;
    let browser = Browser::new();
    let css = handle(
        &page,
        browser.request(Method::GET, "/device/style.css", &[]),
    )
    .await;
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let missing = handle(&page, browser.request(Method::GET, "/device/nothing", &[])).await;
    assert_eq!(missing.status(), 404);
    assert_page_headers(&missing);
    let wrong_method = handle(&page, browser.request(Method::PUT, "/device", &[])).await;
    assert_eq!(wrong_method.status(), 404);
}

#[tokio::test]
async fn no_code_cookie_or_csrf_token_reaches_the_logs() {
    integration_tests::capture_logs();
    let (env, _provider, page) = setup().await;
    let (_, user_code) = issue_from_tv(&env).await;
    let mut browser = Browser::new();
    let started = handle(&page, browser.request(Method::GET, "/device", &[])).await;
    let login_cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    let csrf = browser.sign_in(&page).await;
    let typed = user_code.to_lowercase();
    let fields = [("user_code", typed.as_str()), ("csrf", csrf.as_str())];
    let html = text(&handle(&page, browser.request(Method::POST, "/device", &fields)).await);
    let id = hidden(&html, "id").unwrap();
    let fields = [
        ("csrf", csrf.as_str()),
        ("id", &id),
        ("decision", "approve"),
    ];
    handle(
        &page,
        browser.request(Method::POST, "/device/decide", &fields),
    )
    .await;

    let logs = integration_tests::captured_logs();
    assert!(
        logs.contains("finish_sign_in{"),
        "the sign-in is logged, in its span"
    );
    let session = browser.cookies["__Host-device_session"].clone();
    let login = login_cookie.split(['=', ';']).nth(1).unwrap().to_owned();
    for (what, secret) in [
        ("user code", user_code.as_str()),
        ("user code, compact", &user_code.replace('-', "")),
        ("user code, as typed", &typed),
        ("session cookie", &session),
        ("login cookie", &login),
        ("CSRF token", &csrf),
    ] {
        assert!(!logs.contains(secret), "the {what} was logged");
    }
}
