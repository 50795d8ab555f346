//! What outsiders hand the service about a person and an API: the `resource` values of a
//! request (RFC 8707) and the claims of an identity provider's token. Resources parse to a
//! sorted set of valid URIs or a clean refusal; claims become a profile whose values are
//! bounded and printable, whose stored form reads back as itself, and that never fails.
#![no_main]

use device_flow::domain::resource::{MAX_RESOURCES, is_resource, parse_resources};
use device_flow::domain::{MAX_CLAIM_LEN, Profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let values: Vec<String> = text.split('\n').map(str::to_owned).collect();
    if let Ok(resources) = parse_resources(&values) {
        assert!(resources.len() <= MAX_RESOURCES);
        assert!(resources.iter().all(|r| is_resource(r)));
        assert!(
            resources.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
    }
    if let Ok(serde_json::Value::Object(claims)) = serde_json::from_str(text) {
        let profile = Profile::from_json(&claims);
        for value in [&profile.name, &profile.preferred_username, &profile.email]
            .into_iter()
            .flatten()
        {
            assert!(value.len() <= MAX_CLAIM_LEN && !value.chars().any(char::is_control));
        }
        if let Some(stored) = profile.to_stored() {
            assert_eq!(Profile::from_stored(&stored), Some(profile));
        }
    }
});
