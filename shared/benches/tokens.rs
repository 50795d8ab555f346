//! Micro-benchmarks of the token path: signing one access token with each algorithm, and
//! the pure poll decision. `cargo bench -p device-flow --bench tokens`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use device_flow::domain::{
    Approval, ClientId, DeviceAuthorization, DeviceCode, DeviceState, GrantType, NewClient,
    ScopeSet, Terms, UserCode, decide,
};
use device_flow::time::Timestamp;
use device_flow::token::{AccessTokenClaims, KeySet};

fn key_set(alg: &str, pem: &str) -> KeySet {
    let json = serde_json::json!({
        "version": 1, "active": "k",
        "keys": [{"kid": "k", "alg": alg, "private_key_pem": pem}],
    });
    KeySet::from_json(&json.to_string()).expect("bench key")
}

fn approved_record(now: Timestamp) -> (DeviceAuthorization, Approval) {
    let (client, _) = NewClient {
        id: ClientId::parse("tv").expect("id"),
        name: "TV".into(),
        confidential: false,
        allowed_grants: vec![GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("read write").expect("scopes"),
        device_code_lifetime: None,
        poll_interval: None,
        access_token_lifetime: None,
    }
    .register(now);
    let terms = Terms {
        scope: client.allowed_scopes.clone(),
        lifetime: Duration::from_secs(600),
        interval: Duration::from_secs(5),
        access_token_lifetime: Duration::from_secs(3600),
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
    };
    record.state = DeviceState::Approved(approval.clone());
    (record, approval)
}

fn signing(c: &mut Criterion) {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let (record, approval) = approved_record(now);
    for (alg, pem) in [
        ("RS256", include_str!("../testdata/rsa-2048.pem")),
        ("ES256", include_str!("../testdata/ec-p256.pem")),
        ("EdDSA", include_str!("../testdata/ed25519.pem")),
    ] {
        let keys = key_set(alg, pem);
        c.bench_function(&format!("mint and sign one access token ({alg})"), |b| {
            b.iter(|| {
                let claims =
                    AccessTokenClaims::for_grant("https://issuer", "aud", &record, &approval, now);
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
        b.iter(|| decide(black_box(Some(&record)), black_box(&client), black_box(now)))
    });
}

criterion_group!(benches, signing, polling);
criterion_main!(benches);
