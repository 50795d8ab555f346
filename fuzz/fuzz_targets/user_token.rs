//! User tokens: the `Authorization: Bearer` header, a token as sent (header, signature),
//! and (signed here with the deployment's HS256 key) claims that are anything at all.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use device_flow::user_auth::{UserTokenVerifier, bearer_token};
use device_flow::{UserTokenConfig, UserTokenKey};
use lambda_http::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing-user-token-secret";

/// Runs a future that never waits (an HS256 verifier does no I/O).
fn now<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an HS256 verifier never waits"),
    }
}

static VERIFIER: LazyLock<UserTokenVerifier> = LazyLock::new(|| {
    let config = UserTokenConfig {
        issuer: "https://idp.example".into(),
        audience: "device-flow".into(),
        key: UserTokenKey::Hs256Secret(SECRET.into()),
        permissions_claim: "permissions".into(),
    };
    now(UserTokenVerifier::new(&config)).expect("an HS256 verifier")
});

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(header::AUTHORIZATION, value);
        if let Ok(token) = bearer_token(&headers) {
            let _ = now(VERIFIER.verify(token));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = now(VERIFIER.verify(text));
    }
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(data) {
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
        let header = jsonwebtoken::Header::default();
        if let Ok(signed) = jsonwebtoken::encode(&header, &claims, &key) {
            let _ = now(VERIFIER.verify(&signed));
        }
    }
});
