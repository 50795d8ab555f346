//! User tokens of the tests' identity provider, and signing keys.

use device_flow::UserTokenConfig;
use device_flow::time::{Clock, SystemClock};
use device_flow::user_auth::UserTokenVerifier;

/// The trusted user-token issuer of the tests.
pub const USER_TOKEN_ISSUER: &str = "https://idp.example.test";
pub const USER_TOKEN_AUDIENCE: &str = "device-flow-tests";
pub const USER_TOKEN_SECRET: &str = "test-user-token-secret-0123456789abcdef";

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    SystemClock.now().as_secs()
}

/// Valid user-token claims for `sub`, valid for five minutes.
pub fn user_claims(sub: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": USER_TOKEN_ISSUER, "aud": USER_TOKEN_AUDIENCE, "sub": sub,
        "iat": unix_now(), "nbf": unix_now(), "exp": unix_now() + 300,
    })
}

/// Signs `claims` as the tests' identity provider does (HS256).
pub fn sign_user_claims(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(USER_TOKEN_SECRET.as_bytes()),
    )
    .expect("signing a user token")
}

/// A valid user token for `sub`.
pub fn user_token(sub: &str) -> String {
    sign_user_claims(&user_claims(sub))
}

/// A user token that holds the administrator permission.
pub fn admin_token(sub: &str) -> String {
    let mut claims = user_claims(sub);
    claims["permissions"] = serde_json::json!(["ADMINISTRATOR"]);
    sign_user_claims(&claims)
}

/// RSA, EC and Ed25519 keys for tests only (the shared crate's test keys).
pub const TEST_RSA_PEM: &str = include_str!("../../shared/testdata/rsa-2048.pem");
pub const TEST_EC_PEM: &str = include_str!("../../shared/testdata/ec-p256.pem");
pub const TEST_ED_PEM: &str = include_str!("../../shared/testdata/ed25519.pem");
pub const TEST_RSA_PUBLIC_PEM: &str = include_str!("../../shared/testdata/rsa-2048.pub.pem");

/// A key set document: `(kid, alg, pem)` for each key.
pub fn key_set(version: u64, active: &str, keys: &[(&str, &str, &str)]) -> String {
    let keys: Vec<_> = keys
        .iter()
        .map(|(kid, alg, pem)| serde_json::json!({"kid": kid, "alg": alg, "private_key_pem": pem}))
        .collect();
    serde_json::json!({"version": version, "active": active, "keys": keys}).to_string()
}

/// The user-token verifier `config` describes, as the verify and admin functions build it.
pub async fn user_verifier(config: &UserTokenConfig) -> UserTokenVerifier {
    UserTokenVerifier::new(config)
        .await
        .expect("a user-token verifier")
}
