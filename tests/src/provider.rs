//! A small OpenID provider the tests control: discovery, keys, an authorization endpoint
//! that signs in a chosen subject at once (no form), and a token endpoint that checks PKCE
//! and returns an RS256 ID token, correct or, on request, wrong in one way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use device_flow::token::KeySet;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use sha2::{Digest, Sha256};

use crate::tokens::{TEST_RSA_PEM, key_set, unix_now};

/// How the next ID tokens are wrong, if at all.
#[derive(Debug, Clone, Default)]
pub struct Misbehaviour {
    pub wrong_nonce: bool,
    pub wrong_audience: bool,
    pub wrong_issuer: bool,
    pub expired: bool,
}

#[derive(Default)]
struct State {
    subject: Option<String>,
    misbehaviour: Misbehaviour,
    /// Claims about the person: in the ID token, or (`userinfo_only`) only at UserInfo.
    person: serde_json::Map<String, serde_json::Value>,
    userinfo_only: bool,
    /// code -> (client_id, nonce, code_challenge, subject)
    codes: HashMap<String, (String, String, String, String)>,
}

/// The provider, serving on a loopback port until the test's runtime ends.
#[derive(Clone)]
pub struct TestProvider {
    pub issuer: String,
    state: Arc<Mutex<State>>,
}

type Response = hyper::Response<Full<Bytes>>;

impl TestProvider {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let issuer = format!("http://{}", listener.local_addr().expect("an address"));
        let provider = Self {
            issuer,
            state: Arc::default(),
        };
        let served = provider.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let provider = served.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let provider = provider.clone();
                        async move { Ok::<_, std::convert::Infallible>(provider.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        provider
    }

    /// Who signs in next (default `alice`).
    pub fn sign_in_as(&self, subject: &str) {
        self.state.lock().unwrap().subject = Some(subject.to_owned());
    }

    /// What the provider says about the person from now on (`name`, `email`, ...): in
    /// its ID tokens, or only at its UserInfo endpoint (`userinfo_only`).
    pub fn describe_person(&self, claims: serde_json::Value, userinfo_only: bool) {
        let mut state = self.state.lock().unwrap();
        state.person = claims.as_object().cloned().unwrap_or_default();
        state.userinfo_only = userinfo_only;
    }

    /// Makes the following ID tokens wrong in these ways.
    pub fn misbehave(&self, misbehaviour: Misbehaviour) {
        self.state.lock().unwrap().misbehaviour = misbehaviour;
    }

    async fn answer(&self, request: hyper::Request<hyper::body::Incoming>) -> Response {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let query = parse(parts.uri.query().unwrap_or_default().as_bytes());
        match parts.uri.path() {
            "/.well-known/openid-configuration" => json(&serde_json::json!({
                "issuer": self.issuer,
                "authorization_endpoint": format!("{}/authorize", self.issuer),
                "token_endpoint": format!("{}/token", self.issuer),
                "jwks_uri": format!("{}/jwks", self.issuer),
                "userinfo_endpoint": format!("{}/userinfo", self.issuer),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            })),
            "/jwks" => {
                let keys = KeySet::from_json(&provider_keys()).expect("the provider's keys");
                let mut response = json(&serde_json::Value::Null);
                *response.body_mut() = Full::new(Bytes::from(keys.jwks_json()));
                response
            }
            "/authorize" => self.authorize(&query),
            "/token" => self.token(&parse(&body)),
            "/userinfo" => self.userinfo(&parts.headers),
            _ => status(404, "{}"),
        }
    }

    fn authorize(&self, query: &HashMap<String, String>) -> Response {
        let get = |name: &str| query.get(name).cloned().unwrap_or_default();
        let mut code = [0u8; 16];
        device_flow::bearer_secret::fill_random(&mut code);
        let code = URL_SAFE_NO_PAD.encode(code);
        let mut state = self.state.lock().unwrap();
        let subject = state.subject.clone().unwrap_or_else(|| "alice".to_owned());
        state.codes.insert(
            code.clone(),
            (
                get("client_id"),
                get("nonce"),
                get("code_challenge"),
                subject,
            ),
        );
        let location = format!(
            "{}?code={code}&state={}",
            get("redirect_uri"),
            percent_encoding::utf8_percent_encode(
                &get("state"),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        let mut response = status(302, "");
        response
            .headers_mut()
            .insert("location", location.parse().expect("a location"));
        response
    }

    fn token(&self, form: &HashMap<String, String>) -> Response {
        let mut state = self.state.lock().unwrap();
        let Some((client_id, nonce, challenge, subject)) =
            form.get("code").and_then(|code| state.codes.remove(code))
        else {
            return status(400, r#"{"error":"invalid_grant"}"#);
        };
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
            return status(400, r#"{"error":"invalid_grant"}"#);
        }
        let wrong = state.misbehaviour.clone();
        let now = unix_now();
        let mut claims = serde_json::json!({
            "iss": if wrong.wrong_issuer { "https://elsewhere.example".to_owned() } else { self.issuer.clone() },
            "sub": subject,
            "aud": if wrong.wrong_audience { "another-client".to_owned() } else { client_id },
            "iat": now,
            "exp": if wrong.expired { now - 600 } else { now + 300 },
            "nonce": if wrong.wrong_nonce { "not-the-nonce".to_owned() } else { nonce },
        });
        if !state.userinfo_only {
            for (name, value) in &state.person {
                claims[name] = value.clone();
            }
        }
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some("provider-key".to_owned());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(TEST_RSA_PEM.as_bytes()).expect("a key");
        let id_token = jsonwebtoken::encode(&header, &claims, &key).expect("signing");
        json(&serde_json::json!({
            "access_token": "provider-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }))
    }

    /// UserInfo (OpenID Connect Core §5.3), for the access token the token endpoint gave.
    fn userinfo(&self, headers: &hyper::HeaderMap) -> Response {
        let authorized = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("bearer provider-access-token"));
        if !authorized {
            return status(401, r#"{"error":"invalid_token"}"#);
        }
        let state = self.state.lock().unwrap();
        let mut claims = state.person.clone();
        let subject = state.subject.clone().unwrap_or_else(|| "alice".to_owned());
        claims.insert("sub".to_owned(), subject.into());
        json(&serde_json::Value::Object(claims))
    }
}

fn provider_keys() -> String {
    key_set(
        1,
        "provider-key",
        &[("provider-key", "RS256", TEST_RSA_PEM)],
    )
}

fn parse(bytes: &[u8]) -> HashMap<String, String> {
    device_flow::http::Form::parse_bytes(bytes)
        .map(|form| {
            [
                "client_id",
                "redirect_uri",
                "state",
                "nonce",
                "code_challenge",
                "code",
                "code_verifier",
            ]
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), form.get(name)?.to_owned())))
            .collect()
        })
        .unwrap_or_default()
}

fn status(code: u16, body: &'static str) -> Response {
    let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = hyper::StatusCode::from_u16(code).expect("a status");
    response.headers_mut().insert(
        "content-type",
        "application/json".parse().expect("a header"),
    );
    response
}

fn json(value: &serde_json::Value) -> Response {
    let mut response = status(200, "");
    *response.body_mut() = Full::new(Bytes::from(value.to_string()));
    response
}

/// The person the local OpenID provider knows (scripts/lib.sh's `LOCAL_PERSON`).
pub const LOCAL_PERSON: &str = r#"{"sub": "alice", "name": "Alice Liddell", "preferred_username": "alice", "email": "alice@example.com", "email_verified": true}"#;

/// The local OpenID provider of `make run` (`oidc-provider-mock` from PyPI, whose login
/// form takes any subject), on a free loopback port until dropped. For the browser tests.
/// It knows `alice` by name, as `make run`'s does.
pub struct LocalProvider {
    pub issuer: String,
    _child: tokio::process::Child,
}

impl LocalProvider {
    /// # Panics
    /// When `OIDC_PROVIDER_MOCK` (set by `make test`) is missing or the provider does not
    /// answer within a minute.
    pub async fn start() -> Self {
        let command = std::env::var("OIDC_PROVIDER_MOCK").expect(
            "OIDC_PROVIDER_MOCK is not set: the browser tests need the oidc-provider-mock \
             command. Run them with `make test`, which installs it.",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(command)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--require-nonce", "true"])
            .args(["--user-claims", LOCAL_PERSON])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("oidc-provider-mock starts");
        let issuer = format!("http://127.0.0.1:{port}");
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        let http = device_flow::outbound::Outbound::new();
        for _ in 0..300 {
            if http.get(&discovery).await.is_ok_and(|r| r.status() == 200) {
                return Self {
                    issuer,
                    _child: child,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("oidc-provider-mock did not answer at {issuer}");
    }
}
