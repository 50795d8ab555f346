//! The discovery function: metadata and JWKS.

use integration_tests::{ISSUER, TestEnv, get, json};
use lambda_http::http::{Method, header};

#[tokio::test]
async fn metadata_is_served_at_both_well_known_locations() {
    let env = TestEnv::new().await;
    let app = env.discovery_app();
    let oauth = discovery::handle(&app, get("/.well-known/oauth-authorization-server")).await;
    let oidc = discovery::handle(&app, get("/.well-known/openid-configuration")).await;
    assert_eq!(oauth.status(), 200);
    // The OpenID Connect document is RFC 8414's plus OpenID Connect Discovery's fields.
    let openid_only = [
        "userinfo_endpoint",
        "id_token_signing_alg_values_supported",
        "subject_types_supported",
        "claims_supported",
    ];
    let mut plain = json(&oidc);
    for field in openid_only {
        assert!(json(&oauth).get(field).is_none(), "{field}");
        plain.as_object_mut().unwrap().remove(field).expect(field);
    }
    assert_eq!(json(&oauth), plain);
    let o = json(&oidc);
    assert_eq!(
        o["userinfo_endpoint"],
        format!("{ISSUER}/oauth2/v1/userinfo")
    );
    assert!(
        o["id_token_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&"RS256".into()),
        "OpenID Connect Discovery §3 requires RS256"
    );
    assert_eq!(o["subject_types_supported"], serde_json::json!(["public"]));
    for claim in ["sub", "auth_time", "name", "email", "email_verified"] {
        assert!(
            o["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&claim.into()),
            "{claim}"
        );
    }
    assert_eq!(
        oauth.headers()[header::CACHE_CONTROL],
        "public, max-age=3600"
    );

    let m = json(&oauth);
    let issuer = ISSUER;
    assert_eq!(m["issuer"], *issuer);
    assert_eq!(
        m["device_authorization_endpoint"],
        format!("{issuer}/oauth2/v1/device")
    );
    assert_eq!(m["token_endpoint"], format!("{issuer}/oauth2/v1/token"));
    assert_eq!(m["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token"
        ])
    );
    assert_eq!(
        m["revocation_endpoint"],
        format!("{issuer}/oauth2/v1/revoke")
    );
    assert_eq!(
        m["introspection_endpoint"],
        format!("{issuer}/oauth2/v1/introspect")
    );
    assert_eq!(
        m["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none", "client_secret_basic", "client_secret_post"])
    );
    assert!(m["response_types_supported"].is_array());
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["openid", "profile", "email", "offline_access"]),
        "the scopes every deployment has"
    );
}

#[tokio::test]
async fn configured_scopes_are_advertised() {
    let mut env = TestEnv::new().await;
    env.set_var("SCOPES_SUPPORTED", "read write");
    let response = discovery::handle(
        &env.discovery_app(),
        get("/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(
        json(&response)["scopes_supported"],
        serde_json::json!([
            "read",
            "write",
            "openid",
            "profile",
            "email",
            "offline_access"
        ])
    );
}

#[tokio::test]
async fn the_jwks_is_what_the_token_function_published() {
    let env = TestEnv::new().await;
    let app = env.discovery_app();
    let empty = discovery::handle(&app, get("/.well-known/jwks.json")).await;
    assert_eq!(json(&empty), serde_json::json!({"keys": []}));

    env.token_app().await;
    let response = discovery::handle(&app, get("/.well-known/jwks.json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=300"
    );
    let jwks = json(&response);
    let key = &jwks["keys"][0];
    assert_eq!(key["kid"], "test-rsa");
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert!(key["n"].is_string() && key["e"].is_string());
    assert!(key.get("d").is_none(), "no private parameter is published");

    // The instance serves the set it read for a few seconds: the one item never runs hot.
    env.requests.take();
    for _ in 0..5 {
        let again = discovery::handle(&app, get("/.well-known/jwks.json")).await;
        assert_eq!(json(&again), jwks);
    }
    assert_eq!(env.requests.take(), Vec::<String>::new());
}

#[tokio::test]
async fn other_paths_and_methods_are_not_found() {
    let env = TestEnv::new().await;
    let app = env.discovery_app();
    assert_eq!(
        discovery::handle(&app, get("/.well-known/other"))
            .await
            .status(),
        404
    );
    let mut post = get("/.well-known/jwks.json");
    *post.method_mut() = Method::POST;
    assert_eq!(discovery::handle(&app, post).await.status(), 404);
}
