//! The verification API against the real store: look-up, approve, deny, the races
//! between decisions, brute-force protection and user authentication.

use std::sync::Arc;
use std::time::Duration;

use device_flow::domain::{DeviceCode, DeviceState};
use device_flow::{UserTokenAlgorithm, UserTokenKey, VerifyConfig};
use integration_tests::{
    ManualClock, TEST_RSA_PUBLIC_PEM, TestEnv, from_ip, json, sign_user_claims, token_request,
    user_claims, user_token, verification_request,
};
use lambda_http::http::{Method, header};
use lambda_http::{Body, Response};
use serde_json::{Value, json};
use verify::{App, handle};

async fn lookup(app: &App, code: &str, token: &str) -> Response<Body> {
    handle(
        app,
        verification_request(Method::GET, code, Body::Empty, Some(token)),
    )
    .await
}

async fn decide(app: &App, id: &str, body: Value, token: &str) -> Response<Body> {
    let request = verification_request(Method::POST, id, Body::from(body.to_string()), Some(token));
    handle(app, request).await
}

fn approve_body() -> Value {
    json!({"session": {"sessionId": "163840776835432705"}})
}

/// Asserts a Zitadel-shaped error; returns its body.
fn assert_grpc(response: &Response<Body>, status: u16, code: i64) -> Value {
    let body = json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["details"], json!([]), "{body}");
    body
}

fn record_id(device_code: &str) -> String {
    DeviceCode::parse(device_code)
        .unwrap()
        .id()
        .as_str()
        .to_owned()
}

#[tokio::test]
async fn the_whole_flow_approve_then_token_for_the_approving_account() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let token_app = env.token_app().await;
    let (device_code, user_code) = env.issue("tv", None).await;
    let alice = user_token("alice");

    // Typed in lower case, with spaces instead of the dash.
    let typed = user_code.to_lowercase().replace('-', "%20%20");
    let response = lookup(&verify, &typed, &alice).await;
    let body = json(&response);
    assert_eq!(response.status(), 200, "{body}");
    // Take from the account's budget, read the claim and the record, give the look-up back
    // (only failures count). Behind API Gateway the source IP's budget adds one update on
    // each side.
    assert_eq!(
        env.requests.take(),
        ["UpdateItem", "GetItem", "GetItem", "UpdateItem"]
    );
    let request = &body["deviceAuthorizationRequest"];
    assert_eq!(request["id"], record_id(&device_code));
    assert_eq!(request["clientId"], "tv");
    assert_eq!(request["appName"], "Test client tv");
    assert_eq!(request["scope"], json!(["read", "write"]));
    assert!(request["expiresAt"].as_str().unwrap().ends_with('Z'));

    let id = request["id"].as_str().unwrap();
    let response = decide(&verify, id, approve_body(), &alice).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    assert_eq!(json(&response), json!({}));
    assert_eq!(env.requests.take(), ["UpdateItem"]);

    let response = token::handle(&token_app, token_request("tv", &device_code)).await;
    let access_token = json(&response)["access_token"].as_str().unwrap().to_owned();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&access_token)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "alice");

    // The record names the approver and the session.
    let record = env
        .store()
        .get_device_authorization(&DeviceCode::parse(&device_code).unwrap().id())
        .await
        .unwrap()
        .unwrap();
    match record.state {
        DeviceState::Consumed { approval, .. } => {
            assert_eq!(approval.account_id, "alice");
            assert_eq!(approval.session_id.as_deref(), Some("163840776835432705"));
        }
        other => panic!("{other:?}"),
    }
    // A decided code is no longer found.
    assert_grpc(&lookup(&verify, &user_code, &alice).await, 404, 5);
}

#[tokio::test]
async fn the_whole_flow_deny_ends_in_access_denied() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let token_app = env.token_app().await;
    let (device_code, user_code) = env.issue("tv", None).await;
    let bob = user_token("bob");

    let found = json(&lookup(&verify, &user_code, &bob).await);
    let id = found["deviceAuthorizationRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.requests.take();
    let response = decide(&verify, &id, json!({"deny": {}}), &bob).await;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requests.take(), ["UpdateItem"]);

    let response = token::handle(&token_app, token_request("tv", &device_code)).await;
    assert_eq!(json(&response)["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_and_deny_at_once_have_exactly_one_winner() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = Arc::new(env.verify_app().await);
    let alice = user_token("alice");

    for round in 0..10 {
        let (device_code, _) = env.issue("tv", None).await;
        let id = record_id(&device_code);
        let approve = {
            let (verify, id, token) = (Arc::clone(&verify), id.clone(), alice.clone());
            tokio::spawn(async move { decide(&verify, &id, approve_body(), &token).await })
        };
        let deny = {
            let (verify, id, token) = (Arc::clone(&verify), id.clone(), alice.clone());
            tokio::spawn(async move { decide(&verify, &id, json!({"deny": {}}), &token).await })
        };
        let approved = approve.await.unwrap();
        let denied = deny.await.unwrap();
        let statuses = [approved.status().as_u16(), denied.status().as_u16()];
        assert!(
            statuses == [200, 400] || statuses == [400, 200],
            "round {round}: {statuses:?}"
        );
        let loser = if statuses[0] == 400 {
            &approved
        } else {
            &denied
        };
        assert_grpc(loser, 400, 9);

        let record = env
            .store()
            .get_device_authorization(&DeviceCode::parse(&device_code).unwrap().id())
            .await
            .unwrap()
            .unwrap();
        match (&record.state, statuses[0]) {
            (DeviceState::Approved(a), 200) => assert_eq!(a.account_id, "alice"),
            (DeviceState::Denied { .. }, 400) => {}
            (state, _) => panic!("round {round}: record shows {state:?} after {statuses:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_approvals_by_different_accounts_have_one_winner() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = Arc::new(env.verify_app().await);
    let (device_code, _) = env.issue("tv", None).await;
    let id = record_id(&device_code);

    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (verify, id) = (Arc::clone(&verify), id.clone());
            tokio::spawn(async move {
                let account = format!("account-{i}");
                let response = decide(&verify, &id, approve_body(), &user_token(&account)).await;
                (account, response.status().as_u16())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (account, status) = task.await.unwrap();
        match status {
            200 => winners.push(account),
            400 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let record = env
        .store()
        .get_device_authorization(&DeviceCode::parse(&device_code).unwrap().id())
        .await
        .unwrap()
        .unwrap();
    match record.state {
        DeviceState::Approved(approval) => assert_eq!(approval.account_id, winners[0]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn approving_after_expiry_is_404_and_changes_nothing() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut verify = env.verify_app().await;
    let clock = ManualClock::now();
    verify.clock = Box::new(clock.clone());
    let (device_code, user_code) = env.issue("tv", None).await;
    clock.advance(Duration::from_secs(601));

    let alice = user_token("alice");
    assert_grpc(
        &decide(&verify, &record_id(&device_code), approve_body(), &alice).await,
        404,
        5,
    );
    assert_grpc(&lookup(&verify, &user_code, &alice).await, 404, 5);
    let record = env
        .store()
        .get_device_authorization(&DeviceCode::parse(&device_code).unwrap().id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state, DeviceState::Pending);
}

#[tokio::test]
async fn decisions_on_unknown_or_decided_requests() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let alice = user_token("alice");
    let unknown = DeviceCode::generate().id();
    assert_grpc(
        &decide(&verify, unknown.as_str(), approve_body(), &alice).await,
        404,
        5,
    );

    let (device_code, _) = env.issue("tv", None).await;
    let id = record_id(&device_code);
    assert_eq!(
        decide(&verify, &id, json!({"deny": {}}), &alice)
            .await
            .status(),
        200
    );
    assert_grpc(&decide(&verify, &id, approve_body(), &alice).await, 400, 9);
    assert_grpc(
        &decide(&verify, &id, json!({"deny": {}}), &alice).await,
        400,
        9,
    );
}

/// An approval whose answer was lost (a timeout, a killed instance, a page posted twice)
/// is sent again by the same person: it is answered as the first was, and changes nothing.
/// Anyone else, or another decision, still meets "already decided".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_approval_of_the_same_person_is_answered_as_the_first() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = Arc::new(env.verify_app().await);
    let alice = user_token("alice");
    let (device_code, _) = env.issue("tv", None).await;
    let id = record_id(&device_code);
    // The same approval five times at once: all answered 200, one write.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (verify, id, token) = (Arc::clone(&verify), id.clone(), alice.clone());
            tokio::spawn(async move { decide(&verify, &id, approve_body(), &token).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().status(), 200);
    }
    let first = env.record(&device_code).await;
    let DeviceState::Approved(approval) = &first.state else {
        panic!("{:?}", first.state);
    };
    assert_eq!(approval.account_id, "alice");
    assert_eq!(
        decide(&verify, &id, approve_body(), &alice).await.status(),
        200
    );
    assert_eq!(env.record(&device_code).await, first, "nothing changed");
    // Someone else, or a change of mind: already decided.
    let bob = user_token("bob");
    assert_grpc(&decide(&verify, &id, approve_body(), &bob).await, 400, 9);
    assert_grpc(
        &decide(&verify, &id, json!({"deny": {}}), &alice).await,
        400,
        9,
    );
    // After the device got its token, the same retry still stands.
    let token = token::handle(&env.token_app().await, token_request("tv", &device_code)).await;
    assert_eq!(token.status(), 200);
    assert_eq!(
        decide(&verify, &id, approve_body(), &alice).await.status(),
        200
    );
}

#[tokio::test]
async fn bad_decision_bodies_are_400_and_foreign_sessions_403() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let alice = user_token("alice");
    let (device_code, _) = env.issue("tv", None).await;
    let id = record_id(&device_code);

    for body in [
        json!({}),
        json!({"session": {}, "deny": {}}),
        json!({"deny": true}),
        json!({"session": "x"}),
        json!({"session": {"sessionId": 42}}),
        json!({"session": {"sessionId": "x".repeat(300)}}),
        json!([1, 2]),
    ] {
        assert_grpc(&decide(&verify, &id, body.clone(), &alice).await, 400, 3);
    }
    let not_json = verification_request(Method::POST, &id, Body::from("{not json"), Some(&alice));
    assert_grpc(&handle(&verify, not_json).await, 400, 3);

    // A sessionToken must be a valid token of the caller's own subject.
    for session_token in [user_token("mallory"), "garbage".to_owned()] {
        let body = json!({"session": {"sessionId": "s", "sessionToken": session_token}});
        assert_grpc(&decide(&verify, &id, body, &alice).await, 403, 7);
    }
    let own = json!({"session": {"sessionId": "s", "sessionToken": user_token("alice")}});
    assert_eq!(decide(&verify, &id, own, &alice).await.status(), 200);
}

#[tokio::test]
async fn the_sixth_failed_lookup_is_429_even_for_a_correct_code_until_the_window_passes() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut verify = env.verify_app().await;
    let clock = ManualClock::now();
    verify.clock = Box::new(clock.clone());
    let (_, user_code) = env.issue("tv", None).await;
    let attacker = user_token("attacker");

    for _ in 0..5 {
        assert_grpc(&lookup(&verify, "BCDF-GHJK", &attacker).await, 404, 5);
    }
    let throttled = lookup(&verify, "BCDF-GHJK", &attacker).await;
    assert_grpc(&throttled, 429, 8);
    let retry_after: u64 = throttled.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry_after), "{retry_after}");
    // Even the right code.
    assert_grpc(&lookup(&verify, &user_code, &attacker).await, 429, 8);
    // Another account is unaffected.
    assert_eq!(
        lookup(&verify, &user_code, &user_token("someone-else"))
            .await
            .status(),
        200
    );

    // After the window, the attacker's account works again.
    clock.advance(Duration::from_secs(retry_after));
    assert_eq!(lookup(&verify, &user_code, &attacker).await.status(), 200);
}

#[tokio::test]
async fn failed_lookups_are_also_limited_per_source_ip() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let mut config: VerifyConfig = env.config();
    config.lookup_limits.per_ip = Some(3);
    let verify = env.verify_app_with(&config).await;
    let (_, user_code) = env.issue("tv", None).await;

    // Three accounts from one address, one failure each.
    for i in 0..3 {
        let request = verification_request(
            Method::GET,
            "BCDF-GHJK",
            Body::Empty,
            Some(&user_token(&format!("a{i}"))),
        );
        assert_eq!(
            handle(&verify, from_ip(request, "203.0.113.7"))
                .await
                .status(),
            404
        );
    }
    let fresh = user_token("fresh-account");
    let same_ip = verification_request(Method::GET, &user_code, Body::Empty, Some(&fresh));
    assert_grpc(
        &handle(&verify, from_ip(same_ip, "203.0.113.7")).await,
        429,
        8,
    );
    let other_ip = verification_request(Method::GET, &user_code, Body::Empty, Some(&fresh));
    assert_eq!(
        handle(&verify, from_ip(other_ip, "198.51.100.1"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn bad_user_tokens_are_401_in_the_seeds_format() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let (_, user_code) = env.issue("tv", None).await;
    let with = |key: &str, value: Value| {
        let mut claims = user_claims("alice");
        claims[key] = value;
        sign_user_claims(&claims)
    };
    let unsigned = {
        use base64::Engine as _;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(&user_claims("alice").to_string())
        )
    };
    let wrong_signature = {
        let token = user_token("alice");
        let (rest, _) = token.rsplit_once('.').unwrap();
        format!("{rest}.AAAA")
    };
    let cases = [
        (
            "expired",
            with("exp", json!(integration_tests::unix_now() - 120)),
        ),
        ("wrong issuer", with("iss", json!("https://evil.example"))),
        ("wrong audience", with("aud", json!("another-api"))),
        ("wrong signature", wrong_signature),
        ("alg none", unsigned),
    ];
    for (case, token) in cases {
        let response = lookup(&verify, &user_code, &token).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_grpc(&response, 401, 16);
    }
    let missing = verification_request(Method::GET, &user_code, Body::Empty, None);
    assert_grpc(&handle(&verify, missing).await, 401, 16);
    assert_eq!(
        env.requests.take(),
        Vec::<String>::new(),
        "refused before any store request"
    );

    // An HS256 token where RS256 is configured (the classic key-confusion attack).
    let mut rs256: VerifyConfig = env.config();
    rs256.user_tokens.key = UserTokenKey::PublicKeyPem {
        algorithm: UserTokenAlgorithm::Rs256,
        pem: TEST_RSA_PUBLIC_PEM.to_owned(),
    };
    let rs_verify = env.verify_app_with(&rs256).await;
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &user_claims("alice"),
        &jsonwebtoken::EncodingKey::from_secret(TEST_RSA_PUBLIC_PEM.as_bytes()),
    )
    .unwrap();
    assert_grpc(&lookup(&rs_verify, &user_code, &confused).await, 401, 16);
    assert_grpc(
        &lookup(&rs_verify, &user_code, &user_token("alice")).await,
        401,
        16,
    );
}

#[tokio::test]
async fn odd_path_parameters_get_clean_4xx() {
    let env = TestEnv::new().await;
    env.public_client("tv").await;
    let verify = env.verify_app().await;
    let alice = user_token("alice");

    let long = "B".repeat(100);
    assert_grpc(&lookup(&verify, &long, &alice).await, 400, 3);
    assert_grpc(
        &lookup(&verify, "%C3%A9%E2%82%AC-%F0%9F%98%80", &alice).await,
        404,
        5,
    );
    assert_grpc(&lookup(&verify, "%FF%FE", &alice).await, 400, 3);
    for id in ["a/b", "..%2F..%2Fadmin", "%2e%2e", "x%00y"] {
        let response = decide(&verify, id, approve_body(), &alice).await;
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{id}: {status}");
    }
    let nested = verification_request(Method::GET, "a/b/c", Body::Empty, Some(&alice));
    assert_grpc(&handle(&verify, nested).await, 404, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_wrong_look_ups_at_once_get_at_most_the_budget_of_answers() {
    let env = TestEnv::new().await;
    let mut config: VerifyConfig = env.config();
    config.lookup_limits.per_ip = Some(7);
    let verify = std::sync::Arc::new(env.verify_app_with(&config).await);
    let fire = |account: String, ip: &'static str| {
        let verify = std::sync::Arc::clone(&verify);
        tokio::spawn(async move {
            let request =
                verification_request(Method::GET, "BCDF-GHJK", Body::Empty, Some(&account));
            handle(&verify, from_ip(request, ip))
                .await
                .status()
                .as_u16()
        })
    };
    let count = |statuses: &[u16], status: u16| statuses.iter().filter(|s| **s == status).count();

    // One account, one address: the account's budget (5) decides.
    let attacker = user_token("attacker");
    let shots: Vec<_> = (0..30)
        .map(|_| fire(attacker.clone(), "203.0.113.7"))
        .collect();
    let mut statuses = Vec::new();
    for shot in shots {
        statuses.push(shot.await.unwrap());
    }
    assert_eq!(count(&statuses, 404), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 25, "{statuses:?}");

    // Thirty accounts from one other address: the address's budget (7) decides.
    let shots: Vec<_> = (0..30)
        .map(|i| fire(user_token(&format!("bot-{i}")), "198.51.100.9"))
        .collect();
    let mut statuses = Vec::new();
    for shot in shots {
        statuses.push(shot.await.unwrap());
    }
    assert_eq!(count(&statuses, 404), 7, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 23, "{statuses:?}");

    // Refused look-ups gave their account's share back: the bots' accounts are not spent.
    let counters = env.items_of_kind("RATE").await;
    // Keys are RATE#<ACCOUNT|IP>#<window>#<subject>.
    let failures = |kind: &str, subject: &str| -> u64 {
        counters
            .iter()
            .filter(|item| {
                let pk = item["pk"].as_s().unwrap();
                pk.contains(kind) && pk.ends_with(subject)
            })
            .map(|item| item["failures"].as_n().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        failures("#ACCOUNT#", "") - 5,
        7,
        "only the bots' answered look-ups count"
    );
    assert_eq!(failures("#IP#", "#203.0.113.7"), 5);
    assert_eq!(failures("#IP#", "#198.51.100.9"), 7);
}

#[tokio::test]
async fn without_a_per_address_budget_only_the_account_counts() {
    // Behind a CDN every request comes from the CDN's few addresses.
    let env = TestEnv::new().await;
    let mut config: VerifyConfig = env.config();
    config.lookup_limits.per_ip = None;
    let verify = env.verify_app_with(&config).await;
    for i in 0..12 {
        let request = verification_request(
            Method::GET,
            "BCDF-GHJK",
            Body::Empty,
            Some(&user_token(&format!("viewer-{i}"))),
        );
        let response = handle(&verify, from_ip(request, "192.0.2.1")).await;
        assert_eq!(response.status(), 404, "no address budget runs out");
    }
    let counters = env.items_of_kind("RATE").await;
    assert_eq!(counters.len(), 12, "one counter per account");
    assert!(
        counters
            .iter()
            .all(|item| item["pk"].as_s().unwrap().contains("#ACCOUNT#")),
        "no per-address counter"
    );
}
