//! The `Authorization: Basic` header of client authentication (RFC 6749 §2.3.1): base64,
//! then a form-encoded id and secret on each side of the first colon.
#![no_main]

use device_flow::http::oauth::client_credentials;
use device_flow::http::{Authorization, Form, basic_credentials};
use lambda_http::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    // Two headers when the input holds a newline: a repeated header is its own case.
    for value in data.split(|&b| b == b'\n').take(2) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(header::AUTHORIZATION, value);
        }
    }
    if let Authorization::Basic { username, password } = basic_credentials(&headers) {
        let _ = (username.len(), password.len());
    }
    if let Err(e) = client_credentials(&headers, &Form::default()) {
        let _ = e.into_response();
    }
});
