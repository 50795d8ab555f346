//! The verification page's cookies: sealed (AES-256-GCM, so encrypted and authenticated)
//! with a key derived from the deployment's `PAGE_SESSION_SECRET`, each bound to its
//! purpose, each carrying its own expiry; and the CSRF tokens bound to a session.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bearer_secret;
use crate::config::SecretKey;
use crate::domain::Profile;
use crate::oidc::Challenge;
use crate::time::Timestamp;

/// A signed-in person, for as long as the session cookie lives. Holds only what the page
/// needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The ID token's `sub`: the account that approves.
    pub sub: String,
    /// Random; the CSRF tokens of this session are bound to it.
    pub sid: String,
    /// Epoch seconds after which the cookie is refused, whatever the browser keeps.
    pub exp: u64,
    /// What the provider said about the person (bounded claims), kept with an approval
    /// for the device's ID token.
    #[serde(default)]
    pub profile: Profile,
}

/// A sign-in under way: what the page must check when the provider sends the person back.
#[derive(Serialize, Deserialize)]
pub struct Login {
    pub challenge: Challenge,
    /// The code from `verification_uri_complete`, to fill in after signing in.
    pub user_code: Option<String>,
    /// Return to the device list instead of the code form.
    #[serde(default)]
    pub devices: bool,
    pub exp: u64,
}

/// What a sealed value may be used for; a value sealed for one purpose never opens for
/// another.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    Session,
    Login,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Self::Session => b"device-page-session-v1",
            Self::Login => b"device-page-login-v1",
        }
    }
}

/// Seals and opens the page's cookies; built once per cold start. No `Debug`: it holds keys.
pub struct CookieKeys {
    seal: LessSafeKey,
    csrf: hmac::Key,
}

/// A sealed value that carries an expiry.
pub trait Expiring {
    fn expires(&self) -> u64;
}

impl Expiring for Session {
    fn expires(&self) -> u64 {
        self.exp
    }
}

impl Expiring for Login {
    fn expires(&self) -> u64 {
        self.exp
    }
}

fn derive(secret: &SecretKey, label: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

impl CookieKeys {
    pub fn new(secret: &SecretKey) -> Self {
        let seal = UnboundKey::new(&AES_256_GCM, &derive(secret, "device-page-seal"))
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is a valid AES-256 key"));
        Self {
            seal,
            csrf: hmac::Key::new(hmac::HMAC_SHA256, &derive(secret, "device-page-csrf")),
        }
    }

    /// `value` as cookie text: base64url of nonce, ciphertext and tag.
    pub fn seal<T: Serialize>(&self, purpose: Purpose, value: &T) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        bearer_secret::fill_random(&mut nonce);
        let mut data = serde_json::to_vec(value).unwrap_or_default();
        let sealed = self.seal.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(purpose.aad()),
            &mut data,
        );
        if sealed.is_err() {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The value sealed in `text` for `purpose`, if it opens and has not expired at `now`.
    pub fn open<T: DeserializeOwned + Expiring>(
        &self,
        purpose: Purpose,
        text: &str,
        now: Timestamp,
    ) -> Option<T> {
        let mut bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        if bytes.len() <= NONCE_LEN {
            return None;
        }
        let mut data = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(purpose.aad()), &mut data)
            .ok()?;
        let value: T = serde_json::from_slice(plain).ok()?;
        (now.as_secs() < value.expires()).then_some(value)
    }

    /// The CSRF token of the session `sid`: a MAC, so it cannot be forged or moved to
    /// another session.
    pub fn csrf_token(&self, sid: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, sid.as_bytes()))
    }

    /// Whether `token` is the CSRF token of `sid` (compared in constant time).
    pub fn csrf_ok(&self, sid: &str, token: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(token)
            .is_ok_and(|tag| hmac::verify(&self.csrf, sid.as_bytes(), &tag).is_ok())
    }
}

/// A fresh random session id.
pub fn new_sid() -> String {
    bearer_secret::random_token()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> CookieKeys {
        CookieKeys::new(&SecretKey::for_tests(secret))
    }

    fn session(exp: u64) -> Session {
        Session {
            sub: "alice".into(),
            sid: new_sid(),
            exp,
            profile: Default::default(),
        }
    }

    const NOW: Timestamp = Timestamp::from_millis(1_000_000_000);

    #[test]
    fn a_sealed_session_opens_until_it_expires() {
        let keys = keys("0123456789abcdef0123456789abcdef");
        let s = session(NOW.as_secs() + 60);
        let text = keys.seal(Purpose::Session, &s);
        assert!(!text.contains("alice"), "encrypted, not just signed");
        assert_eq!(keys.open::<Session>(Purpose::Session, &text, NOW), Some(s));
        let later = Timestamp::from_millis(NOW.as_millis() + 61_000);
        assert_eq!(keys.open::<Session>(Purpose::Session, &text, later), None);
    }

    #[test]
    fn a_tampered_foreign_or_misused_cookie_never_opens() {
        let keys1 = keys("0123456789abcdef0123456789abcdef");
        let keys2 = keys("fedcba9876543210fedcba9876543210");
        let text = keys1.seal(Purpose::Session, &session(NOW.as_secs() + 60));
        let mut bytes = URL_SAFE_NO_PAD.decode(&text).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        assert_eq!(
            keys1.open::<Session>(Purpose::Session, &tampered, NOW),
            None
        );
        assert_eq!(keys2.open::<Session>(Purpose::Session, &text, NOW), None);
        assert!(keys1.open::<Login>(Purpose::Login, &text, NOW).is_none());
        for junk in ["", "x", "!!!", &"A".repeat(20)] {
            assert_eq!(keys1.open::<Session>(Purpose::Session, junk, NOW), None);
        }
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let keys = keys("0123456789abcdef0123456789abcdef");
        let (a, b) = (new_sid(), new_sid());
        let token = keys.csrf_token(&a);
        assert!(keys.csrf_ok(&a, &token));
        assert!(!keys.csrf_ok(&b, &token));
        assert!(!keys.csrf_ok(&a, ""));
        assert!(!keys.csrf_ok(&a, "not base64 !"));
    }
}
