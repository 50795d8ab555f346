//! RFC 8707 resource indicators (what a client may ask for, what the token's `aud` says,
//! narrowing on refresh, who may introspect it) and per-client user-code formats (digits,
//! normalisation, the look-up budget, uniqueness under concurrency).

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use device_flow::domain::{
    Charset, GrantType, NewClient, ScopeSet, UserCode, UserCodeFormat, user_code_format,
};
use integration_tests::{
    ISSUER, TestEnv, admin_request, admin_token, forced_user_codes, form_post, json, new_client,
    resource_server, token_request, user_token, verification_request, with_basic,
};
use lambda_http::http::Method;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

const PHOTOS: &str = "https://photos.example.com";
const MUSIC: &str = "https://music.example.com/api";

async fn client_with_resources(env: &TestEnv, id: &str) {
    env.register(NewClient {
        allowed_grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
        allowed_scopes: ScopeSet::parse("openid read offline_access").unwrap(),
        allowed_resources: vec![MUSIC.to_owned(), PHOTOS.to_owned()],
        ..new_client(id, false)
    })
    .await;
}

fn encode(value: &str) -> String {
    value.replace(':', "%3A").replace('/', "%2F")
}

async fn ask(env: &TestEnv, client_id: &str, resources: &[&str]) -> Response<Body> {
    let mut body = format!("client_id={client_id}&scope=openid%20read%20offline_access");
    for resource in resources {
        body.push_str(&format!("&resource={}", encode(resource)));
    }
    device_authorization::handle(&env.device_app(), form_post("/oauth2/v1/device", body)).await
}

/// A whole login naming `resources`; returns the token response.
async fn login(env: &TestEnv, client_id: &str, resources: &[&str]) -> Value {
    let issued = ask(env, client_id, resources).await;
    let issued = json(&issued);
    let device_code = issued["device_code"].as_str().expect("a device code");
    env.approve(device_code, "alice").await;
    let response = token::handle(
        &env.token_app().await,
        token_request(client_id, device_code),
    )
    .await;
    assert_eq!(response.status(), 200, "{}", json(&response));
    json(&response)
}

async fn refresh(
    env: &TestEnv,
    client_id: &str,
    tokens: &Value,
    resources: &[&str],
) -> Response<Body> {
    let mut body = format!(
        "grant_type=refresh_token&client_id={client_id}&refresh_token={}",
        tokens["refresh_token"].as_str().unwrap()
    );
    for resource in resources {
        body.push_str(&format!("&resource={}", encode(resource)));
    }
    token::handle(&env.token_app().await, form_post("/oauth2/v1/token", body)).await
}

fn aud(tokens: &Value) -> Value {
    let payload = tokens["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["aud"].clone()
}

fn assert_oauth_error(response: &Response<Body>, status: u16, error: &str) {
    let body = json(response);
    assert_eq!(response.status(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
}

#[tokio::test]
async fn a_token_is_for_the_resources_asked_for_and_never_for_others() {
    let env = TestEnv::new().await;
    client_with_resources(&env, "tv").await;

    // None asked for: the deployment's default audience.
    assert_eq!(aud(&login(&env, "tv", &[]).await), ISSUER);
    // One: a string; two (in any order, repeated): an array.
    assert_eq!(aud(&login(&env, "tv", &[PHOTOS]).await), PHOTOS);
    let both = login(&env, "tv", &[PHOTOS, MUSIC, PHOTOS]).await;
    assert_eq!(aud(&both), json!([MUSIC, PHOTOS]));

    // Not allowed, malformed, a fragment: invalid_target, and nothing written.
    let records = env.items_of_kind("DEVICE").await.len();
    for bad in [
        &["https://evil.example.com"][..],
        &[PHOTOS, "https://evil.example.com"],
        &["photos.example.com"],
        &["https://photos.example.com#top"],
        &[""],
    ] {
        assert_oauth_error(&ask(&env, "tv", bad).await, 400, "invalid_target");
    }
    assert_eq!(env.items_of_kind("DEVICE").await.len(), records);

    // A refresh may narrow the resources (for that token: the grant keeps them) ...
    let music = refresh(&env, "tv", &both, &[MUSIC]).await;
    assert_eq!(music.status(), 200, "{}", json(&music));
    let music = json(&music);
    assert_eq!(aud(&music), MUSIC);
    let again = json(&refresh(&env, "tv", &music, &[]).await);
    assert_eq!(aud(&again), json!([MUSIC, PHOTOS]));
    // ... never widen them: not another resource, nor one for a default-audience grant.
    assert_oauth_error(
        &refresh(&env, "tv", &again, &["https://evil.example.com"]).await,
        400,
        "invalid_target",
    );
    let plain = login(&env, "tv", &[]).await;
    assert_oauth_error(
        &refresh(&env, "tv", &plain, &[PHOTOS]).await,
        400,
        "invalid_target",
    );
}

#[tokio::test]
async fn a_resource_server_sees_only_tokens_meant_for_it_and_userinfo_only_the_default() {
    let env = TestEnv::new().await;
    client_with_resources(&env, "tv").await;
    let (_, photos_secret) = env
        .register(NewClient {
            resource_server_audiences: vec![PHOTOS.to_owned()],
            ..resource_server(new_client("photos-api", true))
        })
        .await;
    let (_, default_secret) = env.resource_server("default-api").await;
    let photos = login(&env, "tv", &[PHOTOS]).await;
    let plain = login(&env, "tv", &[]).await;
    let app = env.introspection_app().await;
    let introspect = |id: &'static str, secret: String, tokens: &Value| {
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let app = &app;
        async move {
            let request = with_basic(
                form_post("/oauth2/v1/introspect", format!("token={token}")),
                id,
                &secret,
            );
            json(&introspection::handle(app, request).await)
        }
    };
    let photos_secret = photos_secret.unwrap().expose().to_owned();
    let default_secret = default_secret.expose().to_owned();
    let seen = introspect("photos-api", photos_secret.clone(), &photos).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["aud"], PHOTOS);
    assert_eq!(
        introspect("photos-api", photos_secret, &plain).await["active"],
        false
    );
    assert_eq!(
        introspect("default-api", default_secret.clone(), &photos).await["active"],
        false
    );
    assert_eq!(
        introspect("default-api", default_secret, &plain).await["active"],
        true
    );

    // UserInfo is the default audience's: a token for the photos API is not its.
    let userinfo = |tokens: &Value| {
        let mut request = lambda_http::Request::new(Body::Empty);
        *request.uri_mut() = "/oauth2/v1/userinfo".parse().unwrap();
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {}", tokens["access_token"].as_str().unwrap())
                .parse()
                .unwrap(),
        );
        request
    };
    assert_eq!(
        introspection::handle(&app, userinfo(&photos))
            .await
            .status(),
        401
    );
    assert_eq!(
        introspection::handle(&app, userinfo(&plain)).await.status(),
        200
    );
}

#[tokio::test]
async fn a_resource_the_client_lost_is_dropped_on_refresh_and_all_lost_is_refused() {
    let env = TestEnv::new().await;
    client_with_resources(&env, "tv").await;
    let both = login(&env, "tv", &[PHOTOS, MUSIC]).await;
    let admin = env.admin_app().await;
    let patch = |resources: Value| {
        admin_request(
            Method::PATCH,
            "/admin/oauth/clients/tv",
            Some(json!({"allowed_resources": resources})),
            Some(&admin_token("root")),
        )
    };
    let narrowed = admin::handle(&admin, patch(json!([PHOTOS]))).await;
    assert_eq!(narrowed.status(), 200, "{}", json(&narrowed));
    assert_eq!(json(&narrowed)["allowed_resources"], json!([PHOTOS]));
    let refreshed = json(&refresh(&env, "tv", &both, &[]).await);
    assert_eq!(aud(&refreshed), PHOTOS, "the lost one is dropped");
    admin::handle(&admin, patch(json!([]))).await;
    assert_oauth_error(
        &refresh(&env, "tv", &refreshed, &[]).await,
        400,
        "invalid_target",
    );

    // The admin API refuses what is not a set of absolute URIs.
    for bad in [
        json!(["not-a-uri"]),
        json!(["https://a.example#x"]),
        json!("https://a.example"),
    ] {
        let response = admin::handle(&admin, patch(bad)).await;
        assert_eq!(response.status(), 400, "{}", json(&response));
        assert!(json(&response)["error"].is_string());
    }
}

async fn digit_client(env: &TestEnv, id: &str, length: usize) {
    env.register(NewClient {
        user_code_format: Some(user_code_format(Charset::Digits, Some(length)).unwrap()),
        ..new_client(id, false)
    })
    .await;
}

#[tokio::test]
async fn a_digit_client_gets_digit_codes_that_people_can_type_loosely() {
    let env = TestEnv::new().await;
    digit_client(&env, "remote", 9).await;
    let response = device_authorization::handle(
        &env.device_app(),
        form_post("/oauth2/v1/device", "client_id=remote"),
    )
    .await;
    let issued = json(&response);
    let code = issued["user_code"].as_str().unwrap();
    assert!(
        code.len() == 11
            && code.chars().enumerate().all(|(i, c)| if i == 3 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }),
        "{code}"
    );
    assert!(
        issued["verification_uri_complete"]
            .as_str()
            .unwrap()
            .ends_with(code)
    );
    // Typed with spaces instead of dashes, found; approved; the token follows.
    let verify = env.verify_app().await;
    let typed = code.replace('-', " ");
    let request = verification_request(
        Method::GET,
        &typed.replace(' ', "%20"),
        Body::Empty,
        Some(&user_token("alice")),
    );
    let found = verify::handle(&verify, request).await;
    assert_eq!(found.status(), 200, "{}", json(&found));
    let device_code = issued["device_code"].as_str().unwrap();
    env.approve(device_code, "alice").await;
    let token = token::handle(&env.token_app().await, token_request("remote", device_code)).await;
    assert_eq!(token.status(), 200);

    // The look-up budget holds for digits as for letters: five wrong, then 429.
    let guesser = user_token("guesser");
    let mut statuses = Vec::new();
    for n in 0..7 {
        let request = verification_request(
            Method::GET,
            &format!("9{n}0-000-001"),
            Body::Empty,
            Some(&guesser),
        );
        statuses.push(verify::handle(&verify, request).await.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 404, 404, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_format_stays_unique_under_twenty_concurrent_issues() {
    for (charset, length, first) in [
        (Charset::Letters, 8, "BCDFGHJK"),
        (Charset::Letters, 12, "BCDFGHJKLMNP"),
        (Charset::Digits, 9, "123456789"),
        (Charset::Digits, 12, "123456789012"),
    ] {
        let env = TestEnv::new().await;
        env.register(NewClient {
            user_code_format: Some(user_code_format(charset, Some(length)).unwrap()),
            ..new_client("tv", false)
        })
        .await;
        let mut app = env.device_app();
        // Every request's first draw is the same code: one wins it, the rest draw again.
        app.user_codes = forced_user_codes(first, 20);
        let app = Arc::new(app);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let app = Arc::clone(&app);
                tokio::spawn(async move {
                    device_authorization::handle(
                        &app,
                        form_post("/oauth2/v1/device", "client_id=tv"),
                    )
                    .await
                })
            })
            .collect();
        let mut codes = HashSet::new();
        for task in tasks {
            let response = task.await.unwrap();
            let body = json(&response);
            assert_eq!(response.status(), 200, "{body}");
            let code = UserCode::parse(body["user_code"].as_str().unwrap()).unwrap();
            assert_eq!(code.format().charset(), charset);
            assert_eq!(code.format().length(), length);
            codes.insert(code.as_str().to_owned());
        }
        assert_eq!(codes.len(), 20, "{charset:?} {length}");
        assert!(codes.contains(first));
        assert_eq!(env.items_of_kind("USERCODE").await.len(), 20);
    }
}

#[tokio::test]
async fn the_admin_api_refuses_formats_weaker_than_rfc_8628s_examples() {
    let env = TestEnv::new().await;
    let admin = env.admin_app().await;
    let create = |extra: Value| {
        let mut body = json!({"client_id": "tv", "name": "TV", "type": "public",
                              "allowed_grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        admin_request(
            Method::POST,
            "/admin/oauth/clients",
            Some(body),
            Some(&admin_token("root")),
        )
    };
    for weak in [
        json!({"user_code_charset": "digits", "user_code_length": 8}),
        json!({"user_code_charset": "letters", "user_code_length": 7}),
        json!({"user_code_length": 13}),
        json!({"user_code_charset": "emoji"}),
        json!({"user_code_length": "nine"}),
    ] {
        let response = admin::handle(&admin, create(weak.clone())).await;
        assert_eq!(response.status(), 400, "{weak}: {}", json(&response));
    }
    let created = admin::handle(&admin, create(json!({"user_code_charset": "digits"}))).await;
    assert_eq!(created.status(), 201, "{}", json(&created));
    assert_eq!(json(&created)["user_code_charset"], "digits");
    assert_eq!(
        json(&created)["user_code_length"],
        9,
        "the charset's shortest"
    );
    let patch = |body: Value| {
        admin_request(
            Method::PATCH,
            "/admin/oauth/clients/tv",
            Some(body),
            Some(&admin_token("root")),
        )
    };
    let longer = json(&admin::handle(&admin, patch(json!({"user_code_length": 11}))).await);
    assert_eq!(
        (
            longer["user_code_charset"].clone(),
            longer["user_code_length"].clone()
        ),
        (json!("digits"), json!(11))
    );
    let letters =
        json(&admin::handle(&admin, patch(json!({"user_code_charset": "letters"}))).await);
    assert_eq!(
        letters["user_code_length"], 8,
        "a new charset starts at its shortest"
    );
    let back = json(&admin::handle(&admin, patch(json!({"user_code_charset": null}))).await);
    assert_eq!(
        (
            back["user_code_charset"].clone(),
            back["user_code_length"].clone()
        ),
        (Value::Null, Value::Null)
    );
    let weak = admin::handle(
        &admin,
        patch(json!({"user_code_charset": "digits", "user_code_length": 8})),
    )
    .await;
    assert_eq!(weak.status(), 400);
    // The format is used from the next code on.
    admin::handle(
        &admin,
        patch(json!({"user_code_charset": "digits", "user_code_length": 10})),
    )
    .await;
    let issued = json(
        &device_authorization::handle(
            &env.device_app(),
            form_post("/oauth2/v1/device", "client_id=tv"),
        )
        .await,
    );
    let code = UserCode::parse(issued["user_code"].as_str().unwrap()).unwrap();
    assert_eq!(
        code.format(),
        UserCodeFormat::new(Charset::Digits, Some(10)).unwrap()
    );
}
