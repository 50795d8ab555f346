//! The client rules without I/O: ids, names, credentials, changes, overrides.

use super::*;

#[test]
fn client_ids() {
    assert!(ClientId::parse("demo-cli").is_some());
    assert!(ClientId::parse("a.b_c~d-1").is_some());
    for bad in ["", "has space", "semi;colon", "slash/", "é", "a\0b"] {
        assert!(ClientId::parse(bad).is_none(), "{bad:?}");
    }
    assert!(ClientId::parse(&"x".repeat(MAX_CLIENT_ID_LEN)).is_some());
    assert!(ClientId::parse(&"x".repeat(MAX_CLIENT_ID_LEN + 1)).is_none());
}

#[test]
fn secrets_verify_against_their_hash_only() {
    let secret = ClientSecret::generate();
    let hash = secret.hash();
    assert_ne!(hash.as_str(), secret.expose());
    assert!(hash.verify(&ClientSecret::new(secret.expose().to_owned())));
    assert!(!hash.verify(&ClientSecret::new("wrong".into())));
    assert!(!format!("{secret:?}{hash:?}").contains(secret.expose()));
}

#[test]
fn registering_a_confidential_client_returns_its_secret_once() {
    let new = NewClient {
        allowed_resources: Vec::new(),
        user_code_format: None,
        id: ClientId::parse("svc").unwrap(),
        name: ClientName::parse("Service").unwrap(),
        confidential: true,
        allowed_grants: vec![GrantType::DeviceCode, GrantType::DeviceCode],
        allowed_scopes: ScopeSet::parse("read").unwrap(),
        overrides: Default::default(),
        resource_server_audiences: Vec::new(),
    };
    let (client, secret) = new.clone().register(Timestamp::from_millis(5));
    let secret = secret.unwrap();
    assert_eq!(client.allowed_grants, vec![GrantType::DeviceCode]);
    match &client.kind {
        ClientKind::Confidential { secret_hash } => assert!(secret_hash.verify(&secret)),
        ClientKind::Public => panic!("expected a confidential client"),
    }
    let (public, none) = NewClient {
        confidential: false,
        ..new
    }
    .register(Timestamp::from_millis(5));
    assert_eq!(public.kind, ClientKind::Public);
    assert!(none.is_none());
}

#[test]
fn grant_types_round_trip() {
    for grant in [GrantType::DeviceCode, GrantType::RefreshToken] {
        assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
    }
    assert_eq!(GrantType::parse("password"), None);
}

#[test]
fn names_are_trimmed_bounded_and_printable() {
    assert_eq!(
        ClientName::parse("  TV app ").unwrap().into_string(),
        "TV app"
    );
    assert_eq!(ClientName::parse("   "), Err(ClientError::Name));
    assert_eq!(ClientName::parse("a\u{7}b"), Err(ClientError::Name));
    assert!(ClientName::parse(&"é".repeat(MAX_NAME_LEN)).is_ok());
    assert_eq!(
        ClientName::parse(&"é".repeat(MAX_NAME_LEN + 1)),
        Err(ClientError::Name)
    );
}

#[test]
fn settings_have_one_range_each() {
    assert_eq!(
        Setting::DeviceCodeLifetime.parse(1800),
        Ok(Duration::from_secs(1800))
    );
    assert_eq!(MAX_DEVICE_CODE_LIFETIME, Duration::from_secs(1800));
    let err = Setting::PollInterval.parse(0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "poll_interval_seconds must be from 1 to 60"
    );
    assert_eq!(Setting::AccessTokenLifetime.parse_optional(None), Ok(None));
    assert!(Setting::AccessTokenLifetime.parse(86_401).is_err());
}

#[test]
fn grant_lists_are_sorted_and_refuse_unknown_names() {
    let grants = parse_grants(["refresh_token", GrantType::DEVICE_CODE_URN, "refresh_token"]);
    assert_eq!(
        grants,
        Ok(vec![GrantType::DeviceCode, GrantType::RefreshToken])
    );
    assert_eq!(parse_grants(["password"]), Err(ClientError::UnknownGrant));
}

#[test]
fn overrides_apply_over_the_deployments_values_and_keep_their_ranges() {
    let defaults = PerSetting::from_fn(|s| Duration::from_secs(*s.range().start()));
    let overrides = ClientOverrides {
        poll_interval: Some(Duration::from_secs(9)),
        ..ClientOverrides::default()
    };
    let applied = overrides.over(&defaults);
    assert_eq!(applied.poll_interval, Duration::from_secs(9));
    assert_eq!(applied.access_token_lifetime, Duration::from_secs(60));
    assert_eq!(
        ClientOverrides::from_seconds(overrides.seconds()),
        Ok(overrides)
    );
    let out_of_range = PerSetting {
        device_code_lifetime: Some(1),
        ..PerSetting::default()
    };
    assert_eq!(
        ClientOverrides::from_seconds(out_of_range),
        Err(ClientError::OutOfRange(Setting::DeviceCodeLifetime))
    );
    assert_eq!(
        overrides.iter().map(|(s, _)| s).collect::<Vec<_>>(),
        Setting::ALL
    );
}

#[test]
fn changes_apply_and_always_move_updated_at_forward() {
    let mut client = test_client("tv");
    client.updated_at = Timestamp::from_millis(100);
    let changes = ClientChanges {
        name: Some(ClientName::parse("Renamed").unwrap()),
        overrides: PerSetting {
            poll_interval: Some(Some(Duration::from_secs(9))),
            ..PerSetting::default()
        },
        ..ClientChanges::default()
    };
    assert!(
        client
            .apply(changes, Timestamp::from_millis(50))
            .unwrap()
            .is_none()
    );
    assert_eq!(client.name, "Renamed");
    assert_eq!(client.overrides.poll_interval, Some(Duration::from_secs(9)));
    assert_eq!(client.updated_at, Timestamp::from_millis(101));
    let rotate = ClientChanges {
        rotate_secret: true,
        ..ClientChanges::default()
    };
    assert_eq!(
        client
            .apply(rotate, Timestamp::from_millis(500))
            .unwrap_err(),
        ClientError::NoSecretToRotate
    );
}

#[test]
fn rotating_replaces_the_secret() {
    let old = ClientSecret::generate();
    let mut client = OAuthClient {
        kind: ClientKind::Confidential {
            secret_hash: old.hash(),
        },
        ..test_client("svc")
    };
    let rotate = ClientChanges {
        rotate_secret: true,
        ..ClientChanges::default()
    };
    let new = client
        .apply(rotate, Timestamp::from_millis(5))
        .unwrap()
        .unwrap();
    let credentials = |secret: &ClientSecret| ClientCredentials {
        client_id: client.id.clone(),
        secret: Some(secret.clone()),
        used_basic: false,
    };
    assert!(credentials(&new).authenticate(Some(client.clone())).is_ok());
    assert!(
        credentials(&old)
            .authenticate(Some(client.clone()))
            .is_err()
    );
}

#[test]
fn every_authentication_failure_is_the_same() {
    let secret = ClientSecret::generate();
    let confidential = OAuthClient {
        kind: ClientKind::Confidential {
            secret_hash: secret.hash(),
        },
        ..test_client("c1")
    };
    let public = test_client("c1");
    let with = |secret: Option<&str>| ClientCredentials {
        client_id: ClientId::parse("c1").unwrap(),
        secret: secret.map(|s| ClientSecret::new(s.to_owned())),
        used_basic: false,
    };
    assert!(with(None).authenticate(Some(public.clone())).is_ok());
    assert!(
        with(Some(secret.expose()))
            .authenticate(Some(confidential.clone()))
            .is_ok()
    );
    for (credentials, stored) in [
        (with(None), None),
        (with(None), Some(confidential.clone())),
        (with(Some("wrong")), Some(confidential)),
        (with(Some("anything")), Some(public)),
    ] {
        assert_eq!(credentials.authenticate(stored), Err(AuthenticationFailed));
    }
}
