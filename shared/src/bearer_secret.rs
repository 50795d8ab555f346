//! Random secrets, their one-way hashes, and constant-time comparison.
//!
//! Everything the service hands out as a bearer secret (device codes, client secrets) is
//! 256 bits from the operating system's CSPRNG, encoded as unpadded base64url, and only a
//! SHA-256 hash of it is ever stored. A fast hash is the right tool here: these secrets
//! have full entropy, so there is nothing for a slow password hash to protect.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of entropy in every generated secret (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Length of a generated secret once encoded: 32 bytes as unpadded base64url.
pub const ENCODED_SECRET_LEN: usize = 43;

/// A fresh 256-bit secret from the OS CSPRNG, as unpadded base64url.
pub fn random_token() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Fills `bytes` from the operating system's CSPRNG.
///
/// # Panics
/// If the OS cannot provide randomness. Nothing safe can be issued without it, and it
/// does not depend on request data; the runtime turns the abort into a failed invocation.
pub fn fill_random(bytes: &mut [u8]) {
    rand::rngs::SysRng
        .try_fill_bytes(bytes)
        .expect("the operating system's random number generator failed");
}

/// SHA-256 of `domain || 0x00 || value`, as unpadded base64url (43 characters).
///
/// The domain string separates the uses (a device code hash can never equal a client
/// secret hash of the same text).
pub fn hash(domain: &str, value: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(domain.as_bytes());
    digest.update([0u8]);
    digest.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

/// Compares two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// True if `s` looks like something [`random_token`] or [`hash`] produced.
pub fn is_encoded_secret(s: &str) -> bool {
    s.len() == ENCODED_SECRET_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_have_256_bits_and_differ() {
        let a = random_token();
        let b = random_token();
        assert!(is_encoded_secret(&a));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_domain_separated_and_not_the_input() {
        let value = random_token();
        let h = hash("device-code", &value);
        assert!(is_encoded_secret(&h));
        assert_ne!(h, value);
        assert_ne!(h, hash("client-secret", &value));
        assert_eq!(h, hash("device-code", &value));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
