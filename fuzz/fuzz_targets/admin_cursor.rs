//! The admin API's signed page cursors: a token as sent, and (signed here with the
//! deployment's key, as only the service could) a cursor whose page key is anything.
#![no_main]

use std::sync::LazyLock;

use device_flow::store::PageKey;
use device_flow::usecase::PageTokens;
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "fuzzing-page-token-secret-32byte";

/// Page tokens signed with `SECRET` (a configuration's 32-byte key).
static TOKENS: LazyLock<PageTokens> = LazyLock::new(|| {
    let config = device_flow_fuzz::page_config(SECRET);
    PageTokens::new(&config.session_secret)
});

fn open(token: &str) {
    if let Ok(key) = TOKENS.open("scope", token) {
        // Whatever opens is a sort-key bound that encodes back to itself.
        assert_eq!(PageKey::decode(&key.encode()), Some(key));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    open(text);
    let claims = serde_json::json!({"scope": "scope", "key": text});
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    if let Ok(signed) = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key) {
        open(&signed);
    }
});
