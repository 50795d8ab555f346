//! The device code (the device's bearer secret) and the record id derived from it.

use std::fmt;

use crate::bearer_secret;

const HASH_DOMAIN: &str = "device-code";

/// The secret the device polls with (RFC 8628 §3.2 `device_code`): 256 random bits,
/// unpadded base64url. It is never stored; the store keys the record by its hash, the
/// [`DeviceAuthorizationId`].
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCode(String);

impl DeviceCode {
    /// A fresh device code from the OS CSPRNG.
    pub fn generate() -> Self {
        Self(bearer_secret::random_token())
    }

    /// Accepts only what [`DeviceCode::generate`] can produce, so anything else is known
    /// to be unknown without a store request.
    pub fn parse(input: &str) -> Option<Self> {
        bearer_secret::is_encoded_secret(input).then(|| Self(input.to_owned()))
    }

    /// The value handed to the device, once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The id of the record this code belongs to: a domain-separated SHA-256 of the code.
    ///
    /// The id is as unguessable as the code, yet knowing it (an admin, the verification
    /// page) does not let anyone poll for the token.
    pub fn id(&self) -> DeviceAuthorizationId {
        DeviceAuthorizationId(bearer_secret::hash(HASH_DOMAIN, &self.0))
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCode(..)")
    }
}

/// The id of a device authorization record: the hash of its device code.
///
/// This is what the verification API (`POST .../{id}`) and the admin listing call `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeviceAuthorizationId(String);

impl DeviceAuthorizationId {
    /// Accepts only well-formed ids (43 base64url characters).
    pub fn parse(input: &str) -> Option<Self> {
        bearer_secret::is_encoded_secret(input).then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceAuthorizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_a_stable_hash_not_the_code() {
        let code = DeviceCode::generate();
        let id = code.id();
        assert_ne!(id.as_str(), code.expose());
        assert_eq!(id, DeviceCode::parse(code.expose()).unwrap().id());
        assert_eq!(DeviceAuthorizationId::parse(id.as_str()), Some(id));
    }

    #[test]
    fn parse_rejects_what_generate_cannot_make() {
        assert!(DeviceCode::parse("").is_none());
        assert!(DeviceCode::parse("short").is_none());
        assert!(DeviceCode::parse(&"a".repeat(44)).is_none());
        assert!(DeviceCode::parse(&format!("{}=", "a".repeat(42))).is_none());
        assert!(DeviceCode::parse(&"a".repeat(43)).is_some());
    }

    #[test]
    fn debug_is_redacted() {
        let code = DeviceCode::generate();
        assert!(!format!("{code:?}").contains(code.expose()));
    }
}
