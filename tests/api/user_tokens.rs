//! User tokens verified through a JWKS URL, as with Cognito or Auth0: fetched at cold
//! start, refetched (rate limited) when a token names an unknown `kid`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use device_flow::token::KeySet;
use device_flow::user_auth::{AuthError, UserTokenVerifier};
use device_flow::{UserTokenAlgorithm, UserTokenConfig, UserTokenKey};
use integration_tests::{TEST_EC_PEM, TEST_RSA_PEM, key_set, user_claims};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A one-route HTTP server on loopback that serves `body` and counts requests.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve(body: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    let body = Arc::new(Mutex::new(body));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (Arc::clone(&body), Arc::clone(&fetches));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().clone();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    JwksServer { url, body, fetches }
}

fn jwks(kid: &str) -> String {
    KeySet::from_json(&key_set(1, kid, &[(kid, "RS256", TEST_RSA_PEM)]))
        .unwrap()
        .jwks_json()
}

fn token(kid: &str, algorithm: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &user_claims("alice"), key).unwrap()
}

fn config(url: &str) -> UserTokenConfig {
    UserTokenConfig {
        issuer: integration_tests::USER_TOKEN_ISSUER.into(),
        audience: integration_tests::USER_TOKEN_AUDIENCE.into(),
        key: UserTokenKey::JwksUrl {
            algorithm: UserTokenAlgorithm::Rs256,
            url: url.to_owned(),
        },
        permissions_claim: "permissions".into(),
    }
}

#[tokio::test]
async fn a_token_without_a_kid_verifies_only_against_a_one_key_set() {
    let rsa = EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).unwrap();
    let unnamed =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &user_claims("alice"), &rsa).unwrap();
    let one = serve(jwks("only")).await;
    let verifier = UserTokenVerifier::new(&config(&one.url)).await.unwrap();
    assert_eq!(verifier.verify(&unnamed).await.unwrap().account_id, "alice");

    // Two keys: which one signed is not said, so nothing verifies.
    let two = KeySet::from_json(&key_set(
        1,
        "a",
        &[("a", "RS256", TEST_RSA_PEM), ("b", "RS256", TEST_RSA_PEM)],
    ))
    .unwrap()
    .jwks_json();
    let two = serve(two).await;
    let verifier = UserTokenVerifier::new(&config(&two.url)).await.unwrap();
    assert_eq!(verifier.verify(&unnamed).await, Err(AuthError::Invalid));
}

#[tokio::test]
async fn tokens_verify_against_the_jwks_fetched_at_cold_start() {
    let server = serve(jwks("idp-1")).await;
    let verifier = UserTokenVerifier::new(&config(&server.url)).await.unwrap();
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "fetched at cold start"
    );

    let rsa = EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).unwrap();
    let user = verifier
        .verify(&token("idp-1", Algorithm::RS256, &rsa))
        .await
        .unwrap();
    assert_eq!(user.account_id, "alice");
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "served from the cache"
    );

    // An ES256 token is refused even with a known kid: the algorithm is pinned.
    let ec = EncodingKey::from_ec_pem(TEST_EC_PEM.as_bytes()).unwrap();
    assert_eq!(
        verifier
            .verify(&token("idp-1", Algorithm::ES256, &ec))
            .await,
        Err(AuthError::Invalid)
    );
}

#[tokio::test]
async fn an_unknown_kid_refetches_at_most_once_per_interval() {
    let server = serve(jwks("idp-1")).await;
    let rsa = EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).unwrap();

    // With the default one-minute interval, unknown kids right after the cold-start fetch
    // cause no fetch at all, however many arrive.
    let verifier = UserTokenVerifier::new(&config(&server.url)).await.unwrap();
    for _ in 0..5 {
        let unknown = token("idp-2", Algorithm::RS256, &rsa);
        assert_eq!(verifier.verify(&unknown).await, Err(AuthError::Invalid));
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);

    // Once the interval has passed, the identity provider's rotation is picked up.
    *server.body.lock().unwrap() = jwks("idp-2");
    let verifier = UserTokenVerifier::new(&config(&server.url))
        .await
        .unwrap()
        .with_jwks_refetch_interval(Duration::ZERO);
    let before = server.fetches.load(Ordering::SeqCst);
    let rotated = token("idp-2", Algorithm::RS256, &rsa);
    assert_eq!(verifier.verify(&rotated).await.unwrap().account_id, "alice");
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        before,
        "idp-2 was in the cold-start fetch"
    );

    let newer = token("idp-3", Algorithm::RS256, &rsa);
    *server.body.lock().unwrap() = jwks("idp-3");
    assert_eq!(verifier.verify(&newer).await.unwrap().account_id, "alice");
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        before + 1,
        "one refetch for the new kid"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_does_not_stop_the_cold_start_and_is_unavailable_not_invalid() {
    // Nothing listens on port 9 of loopback.
    let verifier = UserTokenVerifier::new(&config("http://127.0.0.1:9/jwks.json"))
        .await
        .expect("the function still starts");
    let rsa = EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).unwrap();
    // The token may be fine: try again (503), not "your token is bad" (401).
    assert_eq!(
        verifier
            .verify(&token("idp-1", Algorithm::RS256, &rsa))
            .await,
        Err(AuthError::Unavailable)
    );
}

#[tokio::test]
async fn requests_are_not_held_up_while_the_keys_are_fetched() {
    // A JWKS server that answers the cold start, then hangs for the refetch.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let body = jwks("idp-1");
    tokio::spawn(async move {
        let mut first = true;
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            let hang = !first;
            first = false;
            tokio::spawn(async move {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    let verifier = Arc::new(
        UserTokenVerifier::new(&config(&url))
            .await
            .unwrap()
            .with_jwks_refetch_interval(Duration::ZERO),
    );
    let rsa = EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).unwrap();
    // An unknown kid starts a refetch that hangs (up to the 5-second fetch timeout)...
    let unknown = token("idp-9", Algorithm::RS256, &rsa);
    let stuck = {
        let verifier = Arc::clone(&verifier);
        tokio::spawn(async move { verifier.verify(&unknown).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...while a token with a known key verifies at once.
    let known = token("idp-1", Algorithm::RS256, &rsa);
    assert_eq!(verifier.verify(&known).await.unwrap().account_id, "alice");
    assert!(
        !stuck.is_finished(),
        "the known key was served while the fetch was still under way"
    );
    assert_eq!(stuck.await.unwrap(), Err(AuthError::Invalid));
}
