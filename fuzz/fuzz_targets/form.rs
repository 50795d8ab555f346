//! Form bodies (device, token, revoke, introspect, the page's posts) and what is read
//! from them: the first line is the `Content-Type`, the rest the body.
#![no_main]

use device_flow::domain::{DeviceCode, RefreshToken, ScopeSet};
use device_flow::http::oauth::{OAuthError, client_credentials};
use device_flow::http::{Form, page};
use lambda_http::Body;
use lambda_http::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"application/x-www-form-urlencoded"[..], data),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let form = match Form::parse(&headers, &Body::from(body.to_vec())) {
        Ok(form) => form,
        Err(e) => {
            let _ = OAuthError::from_form(&e, &["client_id", "scope"]).into_response();
            return;
        }
    };
    if let Err(e) = client_credentials(&headers, &form) {
        let _ = e.into_response();
    }
    if let Some(scope) = form.get("scope") {
        let _ = ScopeSet::parse(scope);
    }
    if let Some(code) = form.get("device_code") {
        let _ = DeviceCode::parse(code);
    }
    for name in ["refresh_token", "token"] {
        if let Some(token) = form.get(name) {
            let _ = RefreshToken::parse(token);
        }
    }
    let _ = page::decision(&form);
    let _ = page::callback(&form);
});
