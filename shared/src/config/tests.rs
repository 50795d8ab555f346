//! The configuration read from a lookup, every variable and every refusal.

use super::*;
use std::collections::HashMap;

fn load<C: FromEnv>(vars: &[(&str, &str)]) -> Result<C, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    C::from_lookup(|k| map.get(k).cloned())
}

const BASE: [(&str, &str); 2] = [("TABLE_NAME", "t"), ("ISSUER", "https://a")];
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = BASE.to_vec();
    vars.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    vars.extend_from_slice(extra);
    vars
}

#[test]
fn minimal_configuration_gets_the_defaults() {
    let c: DeviceConfig =
        load(&[("TABLE_NAME", "t"), ("ISSUER", "https://auth.example.com/")]).unwrap();
    assert_eq!(c.verification_uri, "https://auth.example.com/device");
    assert_eq!(c.defaults.device_code_lifetime, Duration::from_secs(600));
    assert_eq!(c.defaults.poll_interval, Duration::from_secs(5));
    assert_eq!(c.defaults.access_token_lifetime, Duration::from_secs(3600));
    let d: DiscoveryConfig =
        load(&[("TABLE_NAME", "t"), ("ISSUER", "https://auth.example.com/")]).unwrap();
    assert_eq!(d.issuer, "https://auth.example.com");
}

#[test]
fn missing_and_empty_variables_are_named() {
    assert_eq!(
        load::<DiscoveryConfig>(&[("ISSUER", "https://a")]),
        Err(ConfigError::Missing("TABLE_NAME"))
    );
    assert_eq!(
        load::<DeviceConfig>(&[("TABLE_NAME", "t"), ("ISSUER", " ")]),
        Err(ConfigError::Missing("ISSUER"))
    );
}

#[test]
fn each_function_fails_at_start_without_what_it_needs() {
    assert_eq!(
        load::<TokenConfig>(&BASE),
        Err(ConfigError::Missing("SIGNING_KEYS_SECRET_ID"))
    );
    assert_eq!(
        load::<VerifyConfig>(&BASE),
        Err(ConfigError::Missing("USER_TOKEN_ISSUER"))
    );
    let user_tokens = with(&[
        ("USER_TOKEN_ISSUER", "https://idp"),
        ("USER_TOKEN_AUDIENCE", "api"),
        ("USER_TOKEN_HS256_SECRET", SECRET),
    ]);
    assert!(load::<VerifyConfig>(&user_tokens).is_ok());
    assert_eq!(
        load::<AdminConfig>(&user_tokens),
        Err(ConfigError::Missing("ADMIN_CURSOR_SECRET"))
    );
    let mut admin = user_tokens.clone();
    admin.push(("ADMIN_CURSOR_SECRET", "short"));
    assert!(matches!(
        load::<AdminConfig>(&admin),
        Err(ConfigError::Invalid {
            name: "ADMIN_CURSOR_SECRET",
            ..
        })
    ));
    admin.pop();
    admin.push(("ADMIN_CURSOR_SECRET", SECRET));
    let c: AdminConfig = load(&admin).unwrap();
    assert_eq!(c.admin_permission, "ADMINISTRATOR");
    assert!(!format!("{c:?}").contains(SECRET));
}

#[test]
fn bad_values_are_rejected_with_the_variable_name() {
    for (name, value) in [
        ("POLL_INTERVAL_SECONDS", "five"),
        ("POLL_INTERVAL_SECONDS", "0"),
        ("DEVICE_CODE_LIFETIME_SECONDS", "99999"),
        ("ACCESS_TOKEN_LIFETIME_SECONDS", "59"),
        ("VERIFICATION_URI", "ftp://x"),
        ("VERIFICATION_URI", "https://x/device?a=b"),
        ("ISSUER", "https:///path"),
    ] {
        match load::<DeviceConfig>(&with(&[(name, value)])) {
            Err(ConfigError::Invalid { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}={value}: {other:?}"),
        }
    }
}

#[test]
fn the_deployment_and_the_admin_api_accept_the_same_ranges() {
    for setting in [
        Setting::DeviceCodeLifetime,
        Setting::PollInterval,
        Setting::AccessTokenLifetime,
        Setting::RefreshTokenIdleLifetime,
        Setting::RefreshTokenAbsoluteLifetime,
    ] {
        let name = match setting {
            Setting::DeviceCodeLifetime => "DEVICE_CODE_LIFETIME_SECONDS",
            Setting::PollInterval => "POLL_INTERVAL_SECONDS",
            Setting::AccessTokenLifetime => "ACCESS_TOKEN_LIFETIME_SECONDS",
            Setting::RefreshTokenIdleLifetime => "REFRESH_TOKEN_IDLE_LIFETIME_SECONDS",
            Setting::RefreshTokenAbsoluteLifetime => "REFRESH_TOKEN_ABSOLUTE_LIFETIME_SECONDS",
        };
        let range = setting.range();
        for value in [
            range.start() - 1,
            *range.start(),
            *range.end(),
            range.end() + 1,
        ] {
            let text = value.to_string();
            let vars: Vec<(&str, &str)> = with(&[])
                .into_iter()
                .chain([(name, text.as_str())])
                .collect();
            assert_eq!(
                load::<DeviceConfig>(&vars).is_ok(),
                setting.parse(value).is_ok(),
                "{name}={value}"
            );
        }
    }
}

#[test]
fn signing_keys_come_from_one_source_and_never_print() {
    let c: TokenConfig = load(&with(&[("SIGNING_KEYS", "{\"secret\":1}")])).unwrap();
    assert_eq!(
        c.signing_keys,
        SigningKeysSource::Inline("{\"secret\":1}".into())
    );
    assert!(!format!("{c:?}").contains("secret\""));
    assert_eq!(c.access_token_audience, "https://a");

    let both = with(&[
        ("SIGNING_KEYS", "{\"secret\":1}"),
        ("SIGNING_KEYS_SECRET_ID", "arn:x"),
    ]);
    assert!(load::<TokenConfig>(&both).is_err());
    assert_eq!(
        load::<TokenConfig>(&with(&[("SIGNING_KEYS_SECRET_ID", "arn:x")]))
            .unwrap()
            .signing_keys,
        SigningKeysSource::SecretsManager("arn:x".into())
    );
}

#[test]
fn user_tokens_need_exactly_one_key_and_never_print_the_secret() {
    let base = with(&[
        ("USER_TOKEN_ISSUER", "https://idp"),
        ("USER_TOKEN_AUDIENCE", "api"),
    ]);
    let mut hs = base.clone();
    hs.push(("USER_TOKEN_HS256_SECRET", SECRET));
    let c: VerifyConfig = load(&hs).unwrap();
    assert_eq!(c.user_tokens.key, UserTokenKey::Hs256Secret(SECRET.into()));
    assert_eq!(c.user_tokens.permissions_claim, "permissions");
    assert!(!format!("{c:?}").contains(SECRET));

    let mut both = hs.clone();
    both.push(("USER_TOKEN_JWKS_URL", "https://idp/jwks"));
    assert!(load::<VerifyConfig>(&both).is_err());
    assert!(load::<VerifyConfig>(&base).is_err(), "no key at all");
    let mut short = base.clone();
    short.push(("USER_TOKEN_HS256_SECRET", "short"));
    assert!(load::<VerifyConfig>(&short).is_err());

    let mut jwks = base.clone();
    jwks.push(("USER_TOKEN_JWKS_URL", "https://idp/.well-known/jwks.json"));
    jwks.push(("USER_TOKEN_ALGORITHM", "ES256"));
    match load::<VerifyConfig>(&jwks).unwrap().user_tokens.key {
        UserTokenKey::JwksUrl { algorithm, .. } => {
            assert_eq!(algorithm, UserTokenAlgorithm::Es256)
        }
        other => panic!("{other:?}"),
    }
    let mut none_alg = jwks.clone();
    none_alg.push(("USER_TOKEN_ALGORITHM", "none"));
    none_alg.retain(|(k, v)| *k != "USER_TOKEN_ALGORITHM" || *v == "none");
    assert!(load::<VerifyConfig>(&none_alg).is_err());
}

#[test]
fn lookup_limits_default_to_five_per_account_per_ten_minutes() {
    let base = with(&[
        ("USER_TOKEN_ISSUER", "https://idp"),
        ("USER_TOKEN_AUDIENCE", "api"),
        ("USER_TOKEN_HS256_SECRET", SECRET),
    ]);
    let c: VerifyConfig = load(&base).unwrap();
    assert_eq!(c.lookup_limits.per_account, 5);
    assert_eq!(c.lookup_limits.per_ip, Some(20));
    assert_eq!(c.lookup_limits.window, Duration::from_secs(600));
    let mut bad = base.clone();
    bad.push(("LOOKUP_FAILURES_PER_ACCOUNT", "0"));
    assert!(load::<VerifyConfig>(&bad).is_err());
    let mut off = base.clone();
    off.push(("LOOKUP_FAILURES_PER_IP", "off"));
    assert_eq!(
        load::<VerifyConfig>(&off).unwrap().lookup_limits.per_ip,
        None
    );
    let mut zero = base.clone();
    zero.push(("LOOKUP_FAILURES_PER_IP", "0"));
    assert!(load::<VerifyConfig>(&zero).is_err());
}

#[test]
fn the_page_needs_its_provider_and_session_key() {
    assert_eq!(
        load::<PageConfig>(&BASE),
        Err(ConfigError::Missing("OIDC_ISSUER"))
    );
    let page = with(&[
        ("OIDC_ISSUER", "https://idp.example/"),
        ("OIDC_CLIENT_ID", "page"),
        ("PAGE_SESSION_SECRET", SECRET),
        ("OIDC_CLIENT_SECRET", "client-secret-value"),
        ("SCOPE_DESCRIPTIONS", r#"{"read": "See your files"}"#),
    ]);
    let c: PageConfig = load(&page).unwrap();
    assert_eq!(c.provider.issuer, "https://idp.example");
    assert_eq!(c.service_name, "Device sign-in");
    assert_eq!(
        c.scope_descriptions,
        vec![("read".to_owned(), "See your files".to_owned())]
    );
    let printed = format!("{c:?}");
    assert!(!printed.contains(SECRET) && !printed.contains("client-secret-value"));
    let mut bad = page.clone();
    bad.push(("SCOPE_DESCRIPTIONS", r#"{"bad scope": "x"}"#));
    bad.retain(|(k, v)| *k != "SCOPE_DESCRIPTIONS" || v.contains("bad"));
    assert!(load::<PageConfig>(&bad).is_err());
}

#[test]
fn messages_never_contain_values() {
    let err =
        load::<DiscoveryConfig>(&[("TABLE_NAME", "t"), ("ISSUER", "s3cr3t-value")]).unwrap_err();
    assert!(!err.to_string().contains("s3cr3t"));
}
