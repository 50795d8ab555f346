//! The verification page's cookies: the `Cookie` header, and the sealed session and
//! sign-in values inside it (AES-256-GCM), as any browser or attacker may send them.
#![no_main]

use std::sync::LazyLock;

use device_flow::http::page::Site;
use device_flow::session::Login;
use device_flow::time::Timestamp;
use lambda_http::http::{HeaderValue, Method, header};
use lambda_http::{Body, Request};
use libfuzzer_sys::fuzz_target;

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let config = device_flow_fuzz::page_config("0123456789abcdef0123456789abcdef");
    Site::new(&config)
});

fuzz_target!(|data: &[u8]| {
    let Ok(cookie) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut request = Request::new(Body::Empty);
    *request.method_mut() = Method::POST;
    request.headers_mut().insert(header::COOKIE, cookie);
    let now = Timestamp::from_millis(1_800_000_000_000);
    let _ = SITE.session(&request, now);
    let _ = SITE.login::<Login>(&request, now);
    let _ = SITE.check_post(&request, std::str::from_utf8(data).ok(), now);
});
