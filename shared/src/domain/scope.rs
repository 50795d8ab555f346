//! OAuth scopes (RFC 6749 §3.3).

use std::collections::BTreeSet;
use std::fmt;

/// Longest scope token accepted.
pub const MAX_TOKEN_LEN: usize = 128;
/// Most scope tokens accepted in one request or client.
pub const MAX_TOKENS: usize = 64;

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3), at most
/// [`MAX_TOKEN_LEN`] characters. No spaces, quotes, backslashes or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeToken(String);

impl ScopeToken {
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        if input.is_empty() || input.len() > MAX_TOKEN_LEN {
            return Err(ScopeError::BadToken);
        }
        let valid = input
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(ScopeError::BadToken)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A set of scope tokens. The order a client sent them in carries no meaning (RFC 6749
/// §3.3), so the set is kept sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<ScopeToken>);

/// Why a scope string is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("a scope token is empty, too long, or has a character outside RFC 6749 section 3.3")]
    BadToken,
    #[error("too many scope tokens")]
    TooMany,
}

impl ScopeSet {
    /// Parses a space-delimited scope string (RFC 6749 §3.3). Tokens are separated by
    /// single spaces; an empty token (two spaces, a leading or trailing space) or any
    /// other whitespace is malformed.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        if input.is_empty() {
            return Ok(Self::default());
        }
        Self::from_tokens(input.split(' '))
    }

    /// Builds a set from individual tokens, each validated.
    pub fn from_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in tokens {
            set.insert(ScopeToken::parse(token)?);
            if set.len() > MAX_TOKENS {
                return Err(ScopeError::TooMany);
            }
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, of: &ScopeSet) -> bool {
        self.0.is_subset(&of.0)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.iter().any(|t| t == token)
    }

    /// The tokens in both sets.
    #[must_use]
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(ScopeToken::as_str)
    }
}

/// The space-delimited form used on the wire and in the store.
impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, token) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_deduplicates() {
        let set = ScopeSet::parse("write read write").unwrap();
        assert_eq!(set.to_string(), "read write");
        assert_eq!(ScopeSet::parse(&set.to_string()).unwrap(), set);
    }

    #[test]
    fn empty_string_is_the_empty_set() {
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_malformed_tokens() {
        for bad in [
            "read  write",
            " read",
            "read ",
            "re\"ad",
            "re\\ad",
            "read\twrite",
            "a\u{7}",
            "é",
        ] {
            assert_eq!(ScopeSet::parse(bad), Err(ScopeError::BadToken), "{bad:?}");
        }
        assert_eq!(
            ScopeSet::parse(&"x".repeat(MAX_TOKEN_LEN + 1)),
            Err(ScopeError::BadToken)
        );
    }

    #[test]
    fn urls_are_valid_scope_tokens() {
        // Oracle IDCS's scopes look like this.
        assert!(ScopeSet::parse("http://abccorp.com/quote").is_ok());
    }

    #[test]
    fn rejects_too_many_tokens() {
        let many: Vec<String> = (0..=MAX_TOKENS).map(|i| format!("s{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
    }

    #[test]
    fn subset() {
        let allowed = ScopeSet::parse("read write").unwrap();
        assert!(ScopeSet::parse("read").unwrap().is_subset(&allowed));
        assert!(ScopeSet::default().is_subset(&allowed));
        assert!(!ScopeSet::parse("read admin").unwrap().is_subset(&allowed));
    }
}
