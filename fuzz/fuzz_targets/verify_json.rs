//! The verification API's decision body: `{"session":{...}}` or `{"deny":{}}`.
#![no_main]

use device_flow::http::verification_api::parse_decision;
use lambda_http::Body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_decision(&Body::from(data.to_vec())) {
        let _ = e.into_response();
    }
});
