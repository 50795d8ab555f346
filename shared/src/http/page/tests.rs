//! The page's wire format without I/O: cookies, headers, escaping and the refusal pages.

use super::screens::minutes;
use super::*;
use crate::config::FromEnv;

fn site(issuer: &str) -> Site {
    let config = PageConfig::from_lookup(|name| {
        Some(
            match name {
                "TABLE_NAME" => "t",
                "ISSUER" => issuer,
                "OIDC_ISSUER" => "https://idp.example",
                "OIDC_CLIENT_ID" => "page",
                "PAGE_SESSION_SECRET" => "0123456789abcdef0123456789abcdef",
                "SCOPE_DESCRIPTIONS" => r#"{"read": "See your <files>"}"#,
                _ => return None,
            }
            .to_owned(),
        )
    })
    .unwrap();
    Site::new(&config)
}

#[test]
fn the_origin_and_cookie_security_follow_the_issuer() {
    let deployed = site("https://auth.example.com/prod");
    assert_eq!(deployed.origin, "https://auth.example.com");
    assert!(deployed.secure_cookies);
    let local = site("http://127.0.0.1:9000");
    assert_eq!(local.origin, "http://127.0.0.1:9000");
    assert!(!local.secure_cookies);
    assert!(deployed.session_cookie(None).contains("; Secure"));
    assert!(
        deployed
            .session_cookie(None)
            .contains("HttpOnly; SameSite=Lax")
    );
}

/// Rule 8 of the sign-out promises: over HTTPS the cookies are `__Host-` cookies (a
/// sibling host cannot plant them), and only those are read; plain names only on
/// plain-HTTP loopback.
#[test]
fn rule8_cookies_over_https_carry_the_host_prefix() {
    let session = Session {
        sub: "alice".into(),
        sid: "s".into(),
        exp: u64::MAX,
        profile: Default::default(),
    };
    let deployed = site("https://auth.example.com/prod");
    for cookie in [
        deployed.session_cookie(Some(&session)),
        deployed.session_cookie(None),
        deployed.login_cookie(Some(&"login")),
        deployed.login_cookie::<()>(None),
    ] {
        assert!(cookie.starts_with("__Host-device_"), "{cookie}");
        assert!(cookie.contains("; Path=/;"), "{cookie}");
        assert!(cookie.ends_with("; Secure"), "{cookie}");
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    }
    let local = site("http://127.0.0.1:9000");
    for cookie in [
        local.session_cookie(Some(&session)),
        local.login_cookie::<()>(None),
    ] {
        assert!(cookie.starts_with("device_"), "{cookie}");
        assert!(cookie.contains(&format!("; Path={PAGE_PATH};")), "{cookie}");
        assert!(!cookie.contains("Secure"), "{cookie}");
    }

    // A planted plain-named cookie is not read over HTTPS; the prefixed one is.
    let sealed = |site: &Site| site.keys.seal(Purpose::Session, &session);
    let request_with = |cookie: String| {
        let mut request = Request::default();
        request.headers_mut().insert(
            header::COOKIE,
            HeaderValue::from_str(&cookie).expect("a header"),
        );
        request
    };
    let planted = request_with(format!("device_session={}", sealed(&deployed)));
    assert!(
        deployed
            .session(&planted, Timestamp::from_millis(0))
            .is_none()
    );
    let own = request_with(format!("__Host-device_session={}", sealed(&deployed)));
    assert!(deployed.session(&own, Timestamp::from_millis(0)).is_some());
    let local_own = request_with(format!("device_session={}", sealed(&local)));
    assert!(
        local
            .session(&local_own, Timestamp::from_millis(0))
            .is_some()
    );
}

#[test]
fn every_page_carries_the_security_headers_and_escapes_text() {
    let site = site("https://auth.example.com");
    let session = Session {
        sub: "<script>alert(1)</script>".into(),
        sid: "s".into(),
        exp: u64::MAX,
        profile: Default::default(),
    };
    let response = code_entry(&site, &session, Some("bcdf ghjk"), None);
    let headers = response.headers();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"));
    let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
    assert!(!body.contains("<script>"), "text is escaped");
    assert!(
        body.contains(r#"value="bcdf ghjk""#),
        "the code is prefilled"
    );
    assert!(!body.contains("<script"), "no script at all");
}

#[test]
fn only_the_services_own_pages_may_post() {
    let site = site("https://auth.example.com/prod");
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    };
    let ours = "https://auth.example.com";
    assert!(site.same_origin(&headers(&[("origin", ours)])));
    // What a browser sends under Referrer-Policy: no-referrer.
    assert!(site.same_origin(&headers(&[
        ("origin", "null"),
        ("sec-fetch-site", "same-origin")
    ])));
    for refused in [
        headers(&[]),
        headers(&[("origin", "https://evil.example")]),
        headers(&[("origin", "https://auth.example.com.evil.example")]),
        headers(&[("origin", "null")]),
        headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
        headers(&[("origin", "null"), ("sec-fetch-site", "same-site")]),
        headers(&[("sec-fetch-site", "same-origin")]),
        headers(&[("origin", ours), ("origin", "https://evil.example")]),
    ] {
        assert!(!site.same_origin(&refused), "{refused:?}");
    }
}

#[test]
fn cookies_are_read_only_when_there_is_exactly_one() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::COOKIE,
        HeaderValue::from_static("a=1; device_session=x"),
    );
    assert_eq!(cookie(&headers, SESSION_COOKIE), Some("x"));
    headers.append(header::COOKIE, HeaderValue::from_static("device_session=y"));
    assert_eq!(cookie(&headers, SESSION_COOKIE), None);
}

#[test]
fn scopes_are_described_in_words_or_by_name() {
    let site = site("https://auth.example.com");
    assert_eq!(site.describe("read"), "See your <files>");
    assert_eq!(site.describe("write"), "write");
    assert_eq!(site.describe("profile"), "Know your name");
    assert_eq!(site.describe("email"), "See your e-mail address");
    assert_eq!(site.describe("openid"), "Know who you are");
    assert_eq!(minutes(59), "less than a minute");
    assert_eq!(minutes(61), "1 minute");
    assert_eq!(minutes(600), "10 minutes");
}

#[test]
fn the_code_form_offers_a_number_pad_for_digit_codes() {
    let session = Session {
        sub: "alice".into(),
        sid: "s".into(),
        exp: u64::MAX,
        profile: Default::default(),
    };
    let form = |site: &Site, prefill: Option<&str>| {
        let response = code_entry(site, &session, prefill, None);
        String::from_utf8(crate::http::body_bytes(response.body()).unwrap().to_vec()).unwrap()
    };
    let mut site = site("https://auth.example.com");
    let letters = form(&site, None);
    assert!(letters.contains(r#"inputmode="text""#), "{letters}");
    assert!(letters.contains("8 letters"), "{letters}");
    // A digit code in the link: the number pad, whatever the deployment's format.
    let linked = form(&site, Some("123 456 789"));
    assert!(linked.contains(r#"inputmode="numeric""#), "{linked}");
    assert!(linked.contains("9 digits"), "{linked}");
    site.user_code_format =
        crate::domain::UserCodeFormat::new(crate::domain::Charset::Digits, Some(10)).unwrap();
    let digits = form(&site, None);
    assert!(digits.contains(r#"inputmode="numeric""#), "{digits}");
    assert!(
        digits.contains("10 digits") && digits.contains("123-456-789"),
        "{digits}"
    );
    assert!(form(&site, Some("BCDF-GHJK")).contains(r#"inputmode="text""#));
}
