//! OpenID Connect for the device grant: the ID token that comes with `openid` (from the
//! device-code exchange and every refresh), its claims from the person's identity
//! provider (through the verification API's user token, and through the page's sign-in),
//! and UserInfo.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use device_flow::domain::{GrantType, NewClient, ScopeSet};
use device_flow::token::{AccessTokenClaims, KeySet};
use integration_tests::{
    Browser, ISSUER, TEST_RSA_PEM, TestEnv, TestProvider, form_post, get, hidden, json, key_set,
    new_client, sign_user_claims, text, token_request, unix_now, user_claims, verification_request,
};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ALL_SCOPES: &str = "openid profile email read offline_access";

async fn openid_client(env: &TestEnv, id: &str) {
    env.register(NewClient {
        allowed_grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        allowed_scopes: ScopeSet::parse(ALL_SCOPES).unwrap(),
        ..new_client(id, false)
    })
    .await;
}

/// A device code for `client_id` with `scope`; returns the device code and user code.
async fn issue(env: &TestEnv, client_id: &str, scope: &str) -> (String, String) {
    let body = format!("client_id={client_id}&scope={}", scope.replace(' ', "%20"));
    let response =
        device_authorization::handle(&env.device_app(), form_post("/oauth2/v1/device", body)).await;
    let body = json(&response);
    assert_eq!(response.status(), 200, "{body}");
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

/// `alice`'s user token, with what her identity provider says about her.
fn alice_token(auth_time: u64) -> String {
    let mut claims = user_claims("alice");
    claims["name"] = json!("Alice Liddell");
    claims["preferred_username"] = json!("alice");
    claims["email"] = json!("alice@example.com");
    claims["email_verified"] = json!(true);
    claims["auth_time"] = json!(auth_time);
    sign_user_claims(&claims)
}

/// Looks `user_code` up and approves it through the verification API as `token`'s person.
async fn approve_through_api(env: &TestEnv, user_code: &str, token: &str) {
    let verify = env.verify_app().await;
    let request = verification_request(Method::GET, user_code, Body::Empty, Some(token));
    let found = verify::handle(&verify, request).await;
    assert_eq!(found.status(), 200, "{}", json(&found));
    let id = json(&found)["deviceAuthorizationRequest"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = Body::from(json!({"session": {}}).to_string());
    let request = verification_request(Method::POST, &id, body, Some(token));
    let decided = verify::handle(&verify, request).await;
    assert_eq!(decided.status(), 200, "{}", json(&decided));
}

/// The deployment's published keys, as a client fetches them.
async fn jwks(env: &TestEnv) -> JwkSet {
    let response = discovery::handle(&env.discovery_app(), get("/.well-known/jwks.json")).await;
    serde_json::from_value(json(&response)).unwrap()
}

/// Verifies `id_token` against the JWKS as a relying party does (signature, `iss`, `aud`,
/// `exp`) and checks its `at_hash` against `access_token`; returns its claims.
fn verify_id_token(keys: &JwkSet, id_token: &str, client_id: &str, access_token: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("JWT"), "never at+jwt");
    let jwk = keys
        .find(header.kid.as_deref().unwrap())
        .expect("its kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat"]);
    let claims =
        jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .expect("the ID token verifies")
            .claims;
    let digest = Sha256::digest(access_token.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
    claims
}

fn access_claims(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn userinfo_request(method: Method, token: Option<&str>) -> Request {
    let mut request = Request::new(Body::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = "/oauth2/v1/userinfo".parse().unwrap();
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    request
}

async fn userinfo(env: &TestEnv, request: Request) -> Response<Body> {
    introspection::handle(&env.introspection_app().await, request).await
}

fn assert_challenge(response: &Response<Body>, status: u16, challenge: &str) {
    assert_eq!(response.status(), status, "{}", json(response));
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], challenge);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert!(json(response)["error"].is_string());
}

async fn refresh(
    env: &TestEnv,
    client_id: &str,
    refresh_token: &str,
    scope: Option<&str>,
) -> Value {
    let mut body =
        format!("grant_type=refresh_token&client_id={client_id}&refresh_token={refresh_token}");
    if let Some(scope) = scope {
        body.push_str(&format!("&scope={}", scope.replace(' ', "%20")));
    }
    let response = token::handle(&env.token_app().await, form_post("/oauth2/v1/token", body)).await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    json(&response)
}

#[tokio::test]
async fn a_login_with_openid_profile_email_gets_an_id_token_refreshes_renew_it_and_userinfo_agrees()
{
    let env = TestEnv::new().await;
    openid_client(&env, "tv").await;
    let signed_in_at = unix_now() - 120;
    let (device_code, user_code) = issue(&env, "tv", ALL_SCOPES).await;
    approve_through_api(&env, &user_code, &alice_token(signed_in_at)).await;
    let token_app = env.token_app().await;
    let response = token::handle(&token_app, token_request("tv", &device_code)).await;
    let body = json(&response);
    assert_eq!(response.status(), 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap();
    let keys = jwks(&env).await;
    let claims = verify_id_token(
        &keys,
        body["id_token"].as_str().unwrap(),
        "tv",
        access_token,
    );
    let access = access_claims(access_token);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(
        claims["sub"], access["sub"],
        "the same subject as the access token"
    );
    assert_eq!(claims["sid"], access["sid"], "the grant");
    assert_eq!(claims["auth_time"], signed_in_at);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        600,
        "ten minutes by default"
    );
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    // The person's claims are the ID token's, never the access token's.
    for claim in [
        "name",
        "preferred_username",
        "email",
        "email_verified",
        "auth_time",
    ] {
        assert!(access.get(claim).is_none(), "{claim} in the access token");
    }
    let _: AccessTokenClaims = serde_json::from_value(access).expect("RFC 9068's claims only");

    let info = userinfo(&env, userinfo_request(Method::GET, Some(access_token))).await;
    assert_eq!(info.status(), 200, "{}", json(&info));
    assert_eq!(info.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        json(&info),
        json!({"sub": "alice", "name": "Alice Liddell", "preferred_username": "alice",
               "email": "alice@example.com", "email_verified": true})
    );

    // A refresh returns a new ID token for the new access token.
    let refreshed = refresh(&env, "tv", body["refresh_token"].as_str().unwrap(), None).await;
    let new_access = refreshed["access_token"].as_str().unwrap();
    let renewed = verify_id_token(
        &keys,
        refreshed["id_token"].as_str().unwrap(),
        "tv",
        new_access,
    );
    assert_eq!(renewed["sub"], "alice");
    assert_eq!(renewed["sid"], claims["sid"]);
    assert_eq!(
        renewed["auth_time"], signed_in_at,
        "still when the person signed in"
    );
    assert_eq!(renewed["email"], "alice@example.com");

    // Narrowed to `openid` alone: an ID token without the person's claims, and UserInfo
    // says only who.
    let narrowed = refresh(
        &env,
        "tv",
        refreshed["refresh_token"].as_str().unwrap(),
        Some("openid offline_access"),
    )
    .await;
    let narrow_access = narrowed["access_token"].as_str().unwrap();
    let narrow = verify_id_token(
        &keys,
        narrowed["id_token"].as_str().unwrap(),
        "tv",
        narrow_access,
    );
    assert!(
        narrow.get("name").is_none() && narrow.get("email").is_none(),
        "{narrow}"
    );
    let info = userinfo(&env, userinfo_request(Method::POST, Some(narrow_access))).await;
    assert_eq!(json(&info), json!({"sub": "alice"}));
}

#[tokio::test]
async fn without_openid_there_is_no_id_token_and_userinfo_refuses_the_token() {
    let env = TestEnv::new().await;
    openid_client(&env, "tv").await;
    let (device_code, user_code) = issue(&env, "tv", "read offline_access").await;
    approve_through_api(&env, &user_code, &alice_token(unix_now())).await;
    let token_app = env.token_app().await;
    let body = json(&token::handle(&token_app, token_request("tv", &device_code)).await);
    assert!(body.get("id_token").is_none(), "{body}");
    let refreshed = refresh(&env, "tv", body["refresh_token"].as_str().unwrap(), None).await;
    assert!(refreshed.get("id_token").is_none(), "{refreshed}");
    let access_token = body["access_token"].as_str().unwrap();
    let info = userinfo(&env, userinfo_request(Method::GET, Some(access_token))).await;
    assert_challenge(
        &info,
        403,
        r#"Bearer realm="device-flow", error="insufficient_scope", scope="openid""#,
    );
}

#[tokio::test]
async fn userinfo_refuses_no_token_a_foreign_an_expired_and_a_revoked_one() {
    let env = TestEnv::new().await;
    openid_client(&env, "tv").await;
    let (device_code, user_code) = issue(&env, "tv", ALL_SCOPES).await;
    approve_through_api(&env, &user_code, &alice_token(unix_now())).await;
    let token_app = env.token_app().await;
    let body = json(&token::handle(&token_app, token_request("tv", &device_code)).await);
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let invalid = r#"Bearer realm="device-flow", error="invalid_token""#;

    // No token: a challenge that names no error (RFC 6750 §3.1).
    let none = userinfo(&env, userinfo_request(Method::GET, None)).await;
    assert_challenge(&none, 401, r#"Bearer realm="device-flow""#);
    // Garbage, and a token that is not a bearer token at all.
    let garbage = userinfo(&env, userinfo_request(Method::GET, Some("not-a-token"))).await;
    assert_challenge(&garbage, 401, invalid);
    let oversized = "a".repeat(9000);
    let oversized = userinfo(&env, userinfo_request(Method::GET, Some(&oversized))).await;
    assert_eq!(oversized.status(), 401);

    // Signed with our key but for another issuer, and expired: the same refusal.
    let keys = KeySet::from_json(&key_set(
        1,
        "test-rsa",
        &[("test-rsa", "RS256", TEST_RSA_PEM)],
    ))
    .unwrap();
    let mut claims: AccessTokenClaims =
        serde_json::from_value(access_claims(&access_token)).unwrap();
    claims.iss = "https://another.example".into();
    let foreign = keys.sign(&claims).unwrap();
    let foreign = userinfo(&env, userinfo_request(Method::GET, Some(&foreign))).await;
    assert_challenge(&foreign, 401, invalid);
    let mut claims: AccessTokenClaims =
        serde_json::from_value(access_claims(&access_token)).unwrap();
    claims.iat -= 7200;
    claims.exp = unix_now() - 1;
    let expired = keys.sign(&claims).unwrap();
    let expired = userinfo(&env, userinfo_request(Method::GET, Some(&expired))).await;
    assert_challenge(&expired, 401, invalid);

    // The token in the header and in the body: which one? Neither.
    let mut twice = userinfo_request(Method::POST, Some(&access_token));
    *twice.body_mut() = Body::from(format!("access_token={access_token}"));
    twice.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let twice = userinfo(&env, twice).await;
    assert_challenge(
        &twice,
        400,
        r#"Bearer realm="device-flow", error="invalid_request""#,
    );
    // In the body alone (RFC 6750 §2.2) it works.
    let mut in_body = form_post(
        "/oauth2/v1/userinfo",
        format!("access_token={access_token}"),
    );
    *in_body.uri_mut() = "/oauth2/v1/userinfo".parse().unwrap();
    let in_body = userinfo(&env, in_body).await;
    assert_eq!(in_body.status(), 200, "{}", json(&in_body));

    // The client's deletion has begun (its sweep has not reached the grant yet): the
    // client gets nothing more.
    let mark = |phase: Option<&str>| {
        let update = env
            .dynamodb
            .update_item()
            .table_name(&env.table_name)
            .key("pk", AttributeValue::S("CLIENT#tv".into()))
            .key("sk", AttributeValue::S("CLIENT".into()));
        match phase {
            Some(phase) => update
                .update_expression("SET deleting_at = :at, deletion_phase = :phase")
                .expression_attribute_values(
                    ":at",
                    AttributeValue::N(unix_now().to_string() + "000"),
                )
                .expression_attribute_values(":phase", AttributeValue::S(phase.into())),
            None => update.update_expression("REMOVE deleting_at, deletion_phase"),
        }
        .send()
    };
    mark(Some("codes")).await.unwrap();
    let deleting = userinfo(&env, userinfo_request(Method::GET, Some(&access_token))).await;
    assert_challenge(&deleting, 401, invalid);
    mark(None).await.unwrap();
    let again = userinfo(&env, userinfo_request(Method::GET, Some(&access_token))).await;
    assert_eq!(
        again.status(),
        200,
        "the same token, the client back: it was the deletion"
    );

    // Signed out: the grant is revoked, and its access token with it.
    let revoke = form_post(
        "/oauth2/v1/revoke",
        format!(
            "client_id=tv&token={}",
            body["refresh_token"].as_str().unwrap()
        ),
    );
    let revoked = introspection::handle(&env.introspection_app().await, revoke).await;
    assert_eq!(revoked.status(), 200);
    let after = userinfo(&env, userinfo_request(Method::GET, Some(&access_token))).await;
    assert_challenge(&after, 401, invalid);
}

#[tokio::test]
async fn the_page_keeps_what_the_provider_says_and_the_device_learns_it() {
    for userinfo_only in [false, true] {
        let env = TestEnv::new().await;
        openid_client(&env, "tv").await;
        let provider = TestProvider::start().await;
        provider.describe_person(
            json!({"name": "Bob Dobbs", "email": "bob@example.com", "email_verified": false}),
            userinfo_only,
        );
        provider.sign_in_as("bob");
        let page = env.page_app(&provider.issuer);
        let (device_code, user_code) = issue(&env, "tv", ALL_SCOPES).await;
        let mut browser = Browser::new();
        let csrf = browser.sign_in(&page).await;
        let looked_up = verification_page::handle(
            &page,
            browser.request(
                Method::POST,
                "/device",
                &[("csrf", &csrf), ("user_code", &user_code)],
            ),
        )
        .await;
        let confirmation = text(&looked_up);
        assert!(confirmation.contains("Know your name"), "{confirmation}");
        assert!(
            confirmation.contains("See your e-mail address"),
            "{confirmation}"
        );
        let id = hidden(&confirmation, "id").expect("the record's id");
        let decided = verification_page::handle(
            &page,
            browser.request(
                Method::POST,
                "/device/decide",
                &[("csrf", &csrf), ("id", &id), ("decision", "approve")],
            ),
        )
        .await;
        assert_eq!(decided.status(), 200, "{}", text(&decided));

        let body =
            json(&token::handle(&env.token_app().await, token_request("tv", &device_code)).await);
        let access_token = body["access_token"].as_str().unwrap();
        let claims = verify_id_token(
            &jwks(&env).await,
            body["id_token"].as_str().unwrap(),
            "tv",
            access_token,
        );
        assert_eq!(claims["sub"], "bob", "userinfo_only: {userinfo_only}");
        assert_eq!(
            claims["name"], "Bob Dobbs",
            "userinfo_only: {userinfo_only}"
        );
        assert_eq!(claims["email"], "bob@example.com");
        assert_eq!(claims["email_verified"], false);
        assert!(claims["auth_time"].as_u64().unwrap() <= unix_now());
        let info = userinfo(&env, userinfo_request(Method::GET, Some(access_token))).await;
        assert_eq!(json(&info)["name"], "Bob Dobbs");
    }
}

#[tokio::test]
async fn claims_that_are_too_long_or_unprintable_never_reach_a_token() {
    let env = TestEnv::new().await;
    openid_client(&env, "tv").await;
    let (device_code, user_code) = issue(&env, "tv", ALL_SCOPES).await;
    let mut claims = user_claims("mallory");
    claims["name"] = json!("x".repeat(300));
    claims["email"] = json!("mallory@example.com\r\nBcc: everyone@example.com");
    claims["preferred_username"] = json!(["not", "a", "string"]);
    approve_through_api(&env, &user_code, &sign_user_claims(&claims)).await;
    let body =
        json(&token::handle(&env.token_app().await, token_request("tv", &device_code)).await);
    let access_token = body["access_token"].as_str().unwrap();
    let id = verify_id_token(
        &jwks(&env).await,
        body["id_token"].as_str().unwrap(),
        "tv",
        access_token,
    );
    for claim in ["name", "email", "email_verified", "preferred_username"] {
        assert!(id.get(claim).is_none(), "{claim}: {id}");
    }
    assert_eq!(id["sub"], "mallory");
}
