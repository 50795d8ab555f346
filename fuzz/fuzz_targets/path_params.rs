//! Path parameters as API Gateway hands them over (percent-decoded once more), and every
//! id a path or a form may name: user codes, record ids, client ids, grant ids, tokens.
#![no_main]

use std::collections::HashMap;

use device_flow::domain::{
    ClientId, DeviceAuthorizationId, DeviceCode, GrantId, RefreshToken, UserCode,
};
use device_flow::http::path_parameter;
use lambda_http::{Request, RequestExt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let parameters = HashMap::from([("id".to_owned(), vec![raw.to_owned()])]);
    let request = Request::default().with_path_parameters(parameters);
    let decoded = match path_parameter(&request, "id") {
        Some(Ok(decoded)) => decoded,
        Some(Err(_)) => return,
        None => panic!("the parameter was set"),
    };
    for text in [raw, decoded.as_str()] {
        let _ = UserCode::parse(text);
        let _ = DeviceAuthorizationId::parse(text);
        let _ = ClientId::parse(text);
        let _ = GrantId::parse(text);
        let _ = DeviceCode::parse(text);
        if let Some(token) = RefreshToken::parse(text) {
            let _ = (token.grant_id(), token.hash());
        }
    }
});
