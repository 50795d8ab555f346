//! The admin API's JSON bodies (create and patch a client), every field checked by the
//! client's own rules; and its query strings (the listings' filters and page sizes).
#![no_main]

use device_flow::http::admin_api::{
    CreateClientRequest, PatchClientRequest, device_list_query, grant_list_query, json_body,
    page_size, query,
};
use lambda_http::Body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = Body::from(data.to_vec());
    match json_body::<CreateClientRequest>(&body) {
        Ok(create) => {
            let _ = create.into_new_client();
        }
        Err(e) => {
            let _ = e.into_response();
        }
    }
    match json_body::<PatchClientRequest>(&body) {
        Ok(patch) => {
            let _ = patch.into_changes();
        }
        Err(e) => {
            let _ = e.into_response();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(form) = query(Some(text)) {
            let _ = page_size(&form);
            let _ = device_list_query(&form).map_err(|e| e.into_response());
            let _ = grant_list_query(&form).map_err(|e| e.into_response());
        }
    }
});
