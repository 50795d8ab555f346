//! User-code normalisation: whatever a person types (any case, dashes, spaces, look-alike
//! letters, digits, any Unicode) becomes one canonical code, letters or digits, or a clean
//! refusal. A code that parses prints, compact or grouped, as a code that parses to itself.
#![no_main]

use device_flow::domain::UserCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(typed) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = UserCode::parse(typed) {
        let again = UserCode::parse(code.as_str()).expect("a canonical code parses");
        assert_eq!(again.as_str(), code.as_str());
        // As shown (grouped with dashes), it parses to itself, in its own format.
        let shown = UserCode::parse(&code.to_string()).expect("a shown code parses");
        assert_eq!(shown, code);
        assert_eq!(shown.format(), code.format());
    }
});
