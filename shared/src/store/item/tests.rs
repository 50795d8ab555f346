//! Items and back: every record kind round-trips, keys, TTLs and sizes.

use super::*;
use crate::domain::{ClientSecret, DeviceCode, Terms};

fn record() -> DeviceAuthorization {
    let terms = Terms {
        resources: Vec::new(),
        user_code_format: Default::default(),
        scope: ScopeSet::parse("read write").unwrap(),
        lifetime: Duration::from_secs(600),
        interval: Duration::from_secs(5),
        access_token_lifetime: Duration::from_secs(3600),
        refresh: None,
    };
    DeviceAuthorization::new(
        DeviceCode::generate().id(),
        &crate::domain::test_client("demo-cli"),
        &terms,
        UserCode::generate(),
        Timestamp::from_millis(1_700_000_000_123),
    )
}

#[test]
fn every_device_state_round_trips() {
    let approval = Approval {
        account_id: "acct-1".into(),
        approved_at: Timestamp::from_millis(1_700_000_001_000),
        session_id: Some("sess".into()),
        profile: Default::default(),
    };
    let states = [
        DeviceState::Pending,
        DeviceState::Approved(approval.clone()),
        DeviceState::Denied {
            denied_at: Timestamp::from_millis(1_700_000_002_000),
        },
        DeviceState::Consumed {
            approval: approval.clone(),
            consumed_at: Timestamp::from_millis(1_700_000_003_000),
            grant_id: Some(GrantId::generate()),
        },
        DeviceState::Consumed {
            approval,
            consumed_at: Timestamp::from_millis(1_700_000_003_000),
            grant_id: None,
        },
    ];
    for state in states {
        let mut r = record();
        r.state = state;
        r.last_polled_at = Some(Timestamp::from_millis(1_700_000_000_900));
        r.device = DeviceDetails::new(Some("203.0.113.7"), Some("TV/1.0"));
        let item = device_to_item(&r, Duration::from_secs(86_400));
        assert_eq!(device_from_item(&item).unwrap(), r);
    }
}

#[test]
fn device_items_carry_ttl_and_index_keys_but_no_code() {
    let r = record();
    let item = device_to_item(&r, Duration::from_secs(100));
    let ttl: u64 = item[TTL_ATTRIBUTE].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, r.expires_at.as_secs() + 100 + 1);
    let shard = shard_of(r.id.as_str());
    assert!(shard < INDEX_SHARDS);
    assert_eq!(
        item[LIST_INDEX_PARTITION_KEY].as_s().unwrap(),
        &format!("DEVICE#{shard:02}")
    );
    assert_eq!(
        item[CLIENT_INDEX_PARTITION_KEY].as_s().unwrap(),
        &format!("DEVICE#CLIENT#{}#{shard:02}", r.client_id)
    );
    assert_eq!(item[LIST_INDEX_SORT_KEY], item[CLIENT_INDEX_SORT_KEY]);
    assert!(
        item[LIST_INDEX_SORT_KEY]
            .as_s()
            .unwrap()
            .starts_with("001700000000123#")
    );

    let claim = user_code_claim_item(&r);
    assert_eq!(
        claim[attr::DEVICE_AUTHORIZATION_ID].as_s().unwrap(),
        r.id.as_str()
    );
    let ttl: u64 = claim[TTL_ATTRIBUTE].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, r.expires_at.as_secs() + 1);
}

#[test]
fn clients_round_trip() {
    let base = OAuthClient {
        name: "Demo service".into(),
        updated_at: Timestamp::from_millis(2),
        ..crate::domain::test_client("demo-service")
    };
    let confidential = OAuthClient {
        kind: ClientKind::Confidential {
            secret_hash: ClientSecret::generate().hash(),
        },
        allowed_grants: vec![],
        allowed_scopes: ScopeSet::default(),
        overrides: crate::domain::PerSetting {
            device_code_lifetime: Some(Duration::from_secs(300)),
            poll_interval: Some(Duration::from_secs(10)),
            access_token_lifetime: Some(Duration::from_secs(900)),
            refresh_token_idle_lifetime: Some(Duration::from_secs(7200)),
            refresh_token_absolute_lifetime: Some(Duration::from_secs(86_400)),
        },
        ..base.clone()
    };
    for client in [base, confidential] {
        assert_eq!(client_from_item(&client_to_item(&client)).unwrap(), client);
    }
}

#[test]
fn grants_and_refresh_records_round_trip_without_the_token() {
    let mut r = record();
    r.refresh = Some(RefreshPolicy {
        idle: Duration::from_secs(7200),
        absolute: Duration::from_secs(86_400),
    });
    r.device = DeviceDetails::new(Some("203.0.113.7"), Some("TV/1.0"));
    let approval = Approval {
        account_id: "acct-1".into(),
        approved_at: r.created_at,
        session_id: None,
        profile: Default::default(),
    };
    let mut grant = Grant::from_login(GrantId::generate(), &r, &approval, r.created_at);
    let item = grant_to_item(&grant, Duration::from_secs(10));
    assert_eq!(grant_from_item(&item).unwrap(), grant);
    assert_eq!(
        item[TTL_ATTRIBUTE].as_n().unwrap(),
        &(grant.expires_at.as_secs() + 11).to_string()
    );
    assert_eq!(
        item[LIST_INDEX_PARTITION_KEY].as_s().unwrap(),
        "GRANT#ACCOUNT#acct-1"
    );
    assert_eq!(
        item[CLIENT_INDEX_PARTITION_KEY].as_s().unwrap(),
        &format!("GRANT#CLIENT#demo-cli#{:02}", shard_of(grant.id.as_str()))
    );
    grant.revoked = Some(Revocation {
        at: r.created_at,
        reason: RevokeReason::RefreshTokenReuse,
    });
    assert_eq!(
        grant_from_item(&grant_to_item(&grant, Duration::ZERO)).unwrap(),
        grant
    );

    let token = crate::domain::RefreshToken::generate(&grant.id);
    let mut refresh = RefreshRecord {
        hash: token.hash(),
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
        issued_at: r.created_at,
        expires_at: r.created_at.plus(Duration::from_secs(7200)),
        rotated_at: None,
    };
    for rotated_at in [None, Some(r.created_at)] {
        refresh.rotated_at = rotated_at;
        let item = refresh_to_item(&refresh, Duration::ZERO);
        assert_eq!(refresh_from_item(&item).unwrap(), refresh);
        assert!(
            item.values()
                .all(|v| v.as_s().map_or(true, |s| !s.contains(token.expose())))
        );
    }
}

#[test]
fn item_sizes_follow_dynamodb_rules() {
    let item: Item = HashMap::from([
        ("a".to_owned(), s("abc")),
        ("nn".to_owned(), n(1_700_000_000_123)),
        ("b".to_owned(), AttributeValue::Bool(true)),
    ]);
    // 1 + 3, 2 + (13 significant digits: 7 bytes + 1), 1 + 1.
    assert_eq!(item_size(&item), 4 + 10 + 2);
    assert_eq!(value_size(&n(1000)), 2);
}

#[test]
fn random_ids_fill_every_shard_evenly() {
    let mut counts = [0_u32; INDEX_SHARDS as usize];
    for _ in 0..32_000 {
        counts[shard_of(crate::domain::DeviceCode::generate().id().as_str()) as usize] += 1;
    }
    // 1,000 expected per shard; a fair hash stays well within +-20 %.
    assert!(
        counts.iter().all(|&c| (800..=1200).contains(&c)),
        "{counts:?}"
    );
    assert_eq!(shard_of("x"), shard_of("x"));
}

#[test]
fn corrupt_items_name_the_attribute() {
    let mut item = device_to_item(&record(), Duration::ZERO);
    item.insert(attr::STATUS.into(), s("weird"));
    assert!(matches!(
        device_from_item(&item),
        Err(StoreError::Corrupt(attr::STATUS))
    ));
    item.remove(attr::STATUS);
    assert!(matches!(
        device_from_item(&item),
        Err(StoreError::Corrupt(attr::STATUS))
    ));
    let mut item = device_to_item(&record(), Duration::ZERO);
    item.insert(attr::EXPIRES_AT.into(), s("soon"));
    assert!(matches!(
        device_from_item(&item),
        Err(StoreError::Corrupt(attr::EXPIRES_AT))
    ));
}
