//! Micro-benchmarks of the pure hot paths, without I/O: form parsing, user-code generation
//! and normalisation, the poll decision, access-token signing with each algorithm, and
//! user-token verification. `cargo bench -p device-flow --bench hot_paths` (`make bench`
//! runs it too).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use device_flow::domain::{
    Approval, ClientId, ClientName, DeviceAuthorization, DeviceCode, DeviceState, Grant, GrantId,
    GrantType, NewClient, ScopeSet, Terms, UserCode, decide_poll,
};
use device_flow::http::Form;
use device_flow::time::Timestamp;
use device_flow::token::{AccessTokenClaims, KeySet};
use device_flow::user_auth::UserTokenVerifier;
use device_flow::{FromEnv, VerifyConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

fn key_set(alg: &str, pem: &str) -> KeySet {
    let json = serde_json::json!({
        "version": 1, "active": "k",
        "keys": [{"kid": "k", "alg": alg, "private_key_pem": pem}],
    });
    KeySet::from_json(&json.to_string()).expect("bench key")
}

fn approved_record(now: Timestamp) -> (DeviceAuthorization, Approval) {
    let (client, _) = NewClient {
        allowed_resources: Vec::new(),
        user_code_format: None,
        id: ClientId::parse("tv").expect("id"),
        name: ClientName::parse("TV").expect("a name"),
        confidential: false,
        allowed_grants: vec![GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("read write").expect("scopes"),
        overrides: Default::default(),
        resource_server_audiences: Vec::new(),
    }
    .register(now);
    let terms = Terms {
        resources: Vec::new(),
        user_code_format: Default::default(),
        scope: client.allowed_scopes.clone(),
        lifetime: Duration::from_secs(600),
        interval: Duration::from_secs(5),
        access_token_lifetime: Duration::from_secs(3600),
        refresh: None,
    };
    let mut record = DeviceAuthorization::new(
        DeviceCode::generate().id(),
        &client,
        &terms,
        UserCode::generate(),
        now,
    );
    let approval = Approval {
        account_id: "account-1".into(),
        approved_at: now,
        session_id: None,
        profile: Default::default(),
    };
    record.state = DeviceState::Approved(approval.clone());
    (record, approval)
}

fn signing(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let (record, approval) = approved_record(now);
    let grant = Grant::from_login(GrantId::generate(), &record, &approval, now);
    for (alg, pem) in [
        ("RS256", include_str!("../testdata/rsa-2048.pem")),
        ("ES256", include_str!("../testdata/ec-p256.pem")),
        ("EdDSA", include_str!("../testdata/ed25519.pem")),
    ] {
        let keys = key_set(alg, pem);
        c.bench_function(&format!("mint and sign one access token ({alg})"), |b| {
            b.iter(|| {
                let claims = AccessTokenClaims::for_grant(
                    "https://issuer",
                    "aud",
                    &grant,
                    (&grant.scope, &[]),
                    now,
                );
                black_box(keys.sign(black_box(&claims)).expect("sign"))
            })
        });
    }
}

fn polling(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let (mut record, _) = approved_record(now);
    record.state = DeviceState::Pending;
    record.last_polled_at = Some(now);
    let client = record.client_id.clone();
    c.bench_function("poll decision", |b| {
        b.iter(|| decide_poll(black_box(Some(&record)), black_box(&client), black_box(now)))
    });
}

fn forms(c: &mut Criterion) {
    let poll = b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
                 &device_code=4c8VqZ2p0Xq0c7KQmN3GkS1r8YtUoP5wJvLbHdEaFiA&client_id=demo-cli";
    c.bench_function("parse a token request form", |b| {
        b.iter(|| Form::parse_bytes(black_box(poll)).expect("a form"))
    });
}

fn user_codes(c: &mut Criterion) {
    c.bench_function("generate a user code", |b| b.iter(UserCode::generate));
    c.bench_function("normalise a typed user code", |b| {
        b.iter(|| UserCode::parse(black_box(" wlld cjvf ")).expect("a code"))
    });
}

fn user_tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let claims = serde_json::json!({
        "iss": "https://idp.example", "aud": "device-flow", "sub": "alice",
        "iat": now, "exp": now + 3600, "permissions": ["ADMINISTRATOR"],
    });
    let hs_secret = "bench-user-token-secret-0123456789abcdef";
    let rsa_private = include_str!("../testdata/rsa-2048.pem");
    let rsa_public = include_str!("../testdata/rsa-2048.pub.pem");
    let cases = [
        (
            "HS256",
            [("USER_TOKEN_HS256_SECRET", hs_secret)],
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(hs_secret.as_bytes()),
            ),
        ),
        (
            "RS256",
            [("USER_TOKEN_PUBLIC_KEY_PEM", rsa_public)],
            jsonwebtoken::encode(
                &Header::new(Algorithm::RS256),
                &claims,
                &EncodingKey::from_rsa_pem(rsa_private.as_bytes()).expect("an RSA key"),
            ),
        ),
    ];
    for (alg, [(key_name, key)], token) in cases {
        let token = token.expect("a user token");
        let config = VerifyConfig::from_lookup(|name| match name {
            "TABLE_NAME" => Some("bench".into()),
            "ISSUER" => Some("https://auth.example".into()),
            "USER_TOKEN_ISSUER" => Some("https://idp.example".into()),
            "USER_TOKEN_AUDIENCE" => Some("device-flow".into()),
            name if name == key_name => Some(key.into()),
            _ => None,
        })
        .expect("a configuration");
        let verifier = runtime
            .block_on(UserTokenVerifier::new(&config.user_tokens))
            .expect("a verifier");
        c.bench_function(&format!("verify a user token ({alg})"), |b| {
            b.iter(|| {
                runtime
                    .block_on(verifier.verify(black_box(&token)))
                    .expect("a valid token")
            })
        });
    }
}

criterion_group!(benches, forms, user_codes, polling, signing, user_tokens);
criterion_main!(benches);
