//! What the person's identity provider said about them when they signed in: the claims a
//! device's ID token and UserInfo carry (OpenID Connect Core §5.1, §5.4). Taken at sign-in
//! (from the provider's ID token on the hosted page, from the user token on the
//! verification API), kept with the approval and the grant, never put into access tokens.
//!
//! Each value is bounded and printable; one that is not is dropped, never truncated (a cut
//! e-mail address would be someone else's).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ScopeSet;

/// The longest claim value kept (RFC 5321 bounds an e-mail address at 254).
pub const MAX_CLAIM_LEN: usize = 256;

/// The scopes of OpenID Connect Core §5.4 this service serves, and the claims each allows.
pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";

/// The person's claims, as their identity provider gave them. `Debug` shows which claims
/// are present, never their values (they are personal data).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// When the person signed in at their provider (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |value: bool| if value { "present" } else { "absent" };
        f.debug_struct("Profile")
            .field("name", &present(self.name.is_some()))
            .field(
                "preferred_username",
                &present(self.preferred_username.is_some()),
            )
            .field("email", &present(self.email.is_some()))
            .field("email_verified", &self.email_verified)
            .field("auth_time", &self.auth_time)
            .finish()
    }
}

impl Profile {
    /// The profile an identity provider's claims make, each value kept only if it is
    /// bounded and printable.
    pub fn from_claims(
        name: Option<&str>,
        preferred_username: Option<&str>,
        email: Option<&str>,
        email_verified: Option<bool>,
        auth_time: Option<u64>,
    ) -> Self {
        let email = clean(email).filter(|e| e.contains('@') && !e.contains(char::is_whitespace));
        Self {
            name: clean(name),
            preferred_username: clean(preferred_username),
            email_verified: email.as_ref().and(email_verified),
            email,
            auth_time,
        }
    }

    /// The profile read from a JSON object of claims (a user token's, a provider's
    /// UserInfo answer): only the claims above, of the right types.
    pub fn from_json(claims: &Map<String, Value>) -> Self {
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        Self::from_claims(
            text("name"),
            text("preferred_username"),
            text("email"),
            claims.get("email_verified").and_then(Value::as_bool),
            claims
                .get("auth_time")
                .or_else(|| claims.get("iat"))
                .and_then(Value::as_u64),
        )
    }

    /// Fills in, from `other`, the claims this profile lacks.
    pub fn or(mut self, other: Profile) -> Self {
        if self.name.is_none() {
            self.name = other.name;
        }
        if self.preferred_username.is_none() {
            self.preferred_username = other.preferred_username;
        }
        if self.email.is_none() {
            self.email = other.email;
            self.email_verified = other.email_verified;
        }
        self.auth_time = self.auth_time.or(other.auth_time);
        self
    }

    /// Whether the provider gave none of the claims a scope can ask for.
    pub fn lacks_claims(&self) -> bool {
        self.name.is_none() && self.preferred_username.is_none() && self.email.is_none()
    }

    /// The claims `scope` allows (OpenID Connect Core §5.4): `profile` the names, `email`
    /// the address and whether it was verified. Absent claims are left out.
    pub fn claims_for(&self, scope: &ScopeSet) -> Map<String, Value> {
        let mut claims = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                claims.insert(name.to_owned(), value);
            }
        };
        if scope.contains(PROFILE) {
            put("name", self.name.clone().map(Value::String));
            put(
                "preferred_username",
                self.preferred_username.clone().map(Value::String),
            );
        }
        if scope.contains(EMAIL) {
            put("email", self.email.clone().map(Value::String));
            put("email_verified", self.email_verified.map(Value::Bool));
        }
        claims
    }

    /// The stored form: compact JSON, `None` when there is nothing to keep.
    pub fn to_stored(&self) -> Option<String> {
        (*self != Self::default())
            .then(|| serde_json::to_string(self).ok())
            .flatten()
    }

    /// Reads the stored form back; `None` when it is not one.
    pub fn from_stored(json: &str) -> Option<Self> {
        let stored: Self = serde_json::from_str(json).ok()?;
        // What was stored passed the checks; check again, as for anything read back.
        let again = Self::from_claims(
            stored.name.as_deref(),
            stored.preferred_username.as_deref(),
            stored.email.as_deref(),
            stored.email_verified,
            stored.auth_time,
        );
        (again == stored).then_some(stored)
    }
}

/// `value`, trimmed, if it is non-empty, at most [`MAX_CLAIM_LEN`] bytes and free of control
/// characters.
fn clean(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    (!value.is_empty() && value.len() <= MAX_CLAIM_LEN && !value.chars().any(char::is_control))
        .then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Profile {
        Profile::from_claims(
            Some("Alice Liddell"),
            Some("alice"),
            Some("alice@example.com"),
            Some(true),
            Some(1_700_000_000),
        )
    }

    #[test]
    fn each_scope_allows_its_claims_only() {
        let profile = alice();
        let none = profile.claims_for(&ScopeSet::parse("openid read").unwrap());
        assert!(none.is_empty());
        let names = profile.claims_for(&ScopeSet::parse("openid profile").unwrap());
        assert_eq!(names["name"], "Alice Liddell");
        assert_eq!(names["preferred_username"], "alice");
        assert!(!names.contains_key("email"));
        let email = profile.claims_for(&ScopeSet::parse("openid email").unwrap());
        assert_eq!(email["email"], "alice@example.com");
        assert_eq!(email["email_verified"], true);
        assert!(!email.contains_key("name"));
    }

    #[test]
    fn unprintable_oversized_or_malformed_values_are_dropped_not_cut() {
        let long = "a".repeat(MAX_CLAIM_LEN + 1);
        let profile = Profile::from_claims(
            Some("Mallory\u{1b}[31m"),
            Some(&long),
            Some("not an address"),
            Some(true),
            None,
        );
        assert_eq!(profile, Profile::default());
        let spaced = Profile::from_claims(Some("  Bob  "), Some(""), None, Some(true), None);
        assert_eq!(spaced.name.as_deref(), Some("Bob"));
        assert_eq!(spaced.preferred_username, None);
        // `email_verified` says something only of an address that is kept.
        assert_eq!(spaced.email_verified, None);
    }

    #[test]
    fn json_claims_of_the_wrong_type_are_ignored() {
        let claims = serde_json::json!({
            "name": 42, "email": "bob@example.com", "email_verified": "yes", "iat": 1_700_000_100u64
        });
        let profile = Profile::from_json(claims.as_object().unwrap());
        assert_eq!(profile.name, None);
        assert_eq!(profile.email.as_deref(), Some("bob@example.com"));
        assert_eq!(profile.email_verified, None);
        assert_eq!(profile.auth_time, Some(1_700_000_100));
    }

    #[test]
    fn the_stored_form_round_trips_and_refuses_what_it_never_writes() {
        let profile = alice();
        let stored = profile.to_stored().unwrap();
        assert_eq!(Profile::from_stored(&stored), Some(profile));
        assert_eq!(Profile::default().to_stored(), None);
        assert_eq!(Profile::from_stored(r#"{"name":"\u0007"}"#), None);
        assert_eq!(Profile::from_stored("not json"), None);
    }

    #[test]
    fn debug_shows_no_personal_data() {
        let debug = format!("{:?}", alice());
        assert!(
            !debug.contains("Alice") && !debug.contains("example.com"),
            "{debug}"
        );
    }

    #[test]
    fn a_second_source_fills_only_what_is_missing() {
        let partial = Profile::from_claims(None, Some("alice"), None, None, Some(5));
        let merged = partial.or(alice());
        assert_eq!(merged.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(merged.preferred_username.as_deref(), Some("alice"));
        assert_eq!(merged.email.as_deref(), Some("alice@example.com"));
        assert_eq!(merged.auth_time, Some(5));
    }
}
