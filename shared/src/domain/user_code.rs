//! The user code a person types on their phone (RFC 8628 §6.1).

use std::fmt;

use crate::bearer_secret::fill_random;

/// The RFC 8628 §6.1 alphabet: consonants only, so that no code spells a word, and no
/// two letters are easily confused.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code (20^8 ≈ 2^34.6 codes).
pub const LEN: usize = 8;

/// Longest raw input accepted for normalisation. A user code with generous punctuation
/// fits easily; anything longer is not a user code and is rejected before any work.
pub const MAX_INPUT_LEN: usize = 64;

/// A syntactically valid user code: exactly eight characters of [`ALPHABET`].
///
/// It can only be made by [`UserCode::generate`] or by [`UserCode::parse`], so any value
/// of this type is well-formed. `Display` shows it as people read it, `XXXX-XXXX`;
/// [`UserCode::as_str`] is the compact form used as the store key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode([u8; LEN]);

/// Why some input is not a user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserCodeError {
    #[error("the user code is too long")]
    TooLong,
    #[error("a user code has eight letters")]
    WrongLength,
}

impl UserCode {
    /// Draws a uniformly random code from the operating system's CSPRNG.
    ///
    /// Each character comes from one random byte by rejection sampling: bytes of 240 and
    /// above (240 = 12 × 20) are discarded, so every letter has probability exactly 1/20
    /// and there is no modulo bias.
    pub fn generate() -> Self {
        let mut code = [0u8; LEN];
        let mut filled = 0;
        let mut pool = [0u8; 16];
        while filled < LEN {
            fill_random(&mut pool);
            for &byte in &pool {
                if filled == LEN {
                    break;
                }
                if let Some(letter) = letter_for(byte) {
                    code[filled] = letter;
                    filled += 1;
                }
            }
        }
        Self(code)
    }

    /// Normalises what a person typed, as RFC 8628 §6.1 suggests: letters are
    /// case-folded and every character outside the alphabet (dashes, spaces, and anything
    /// else) is dropped; the rest must be exactly eight letters.
    pub fn parse(input: &str) -> Result<Self, UserCodeError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(UserCodeError::TooLong);
        }
        let mut code = [0u8; LEN];
        let mut len = 0;
        for byte in input.bytes().map(|b| b.to_ascii_uppercase()) {
            if !ALPHABET.contains(&byte) {
                continue;
            }
            if len == LEN {
                return Err(UserCodeError::WrongLength);
            }
            code[len] = byte;
            len += 1;
        }
        if len != LEN {
            return Err(UserCodeError::WrongLength);
        }
        Ok(Self(code))
    }

    /// The compact form, eight letters without the dash.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters from ALPHABET are ever stored in the array.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Maps a random byte to a letter, or `None` for the bytes that would bias the draw.
fn letter_for(byte: u8) -> Option<u8> {
    const LIMIT: u8 = (256 / ALPHABET.len() * ALPHABET.len()) as u8;
    (byte < LIMIT).then(|| ALPHABET[usize::from(byte) % ALPHABET.len()])
}

impl fmt::Display for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.as_str();
        write!(f, "{}-{}", &s[..4], &s[4..])
    }
}

/// A user code is a short-lived credential: keep it out of logs.
impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_use_only_the_alphabet() {
        for _ in 0..1000 {
            let code = UserCode::generate();
            assert_eq!(code.as_str().len(), LEN);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn every_byte_maps_uniformly_or_is_rejected() {
        let mut counts = [0usize; 20];
        for byte in 0..=255u8 {
            if let Some(letter) = letter_for(byte) {
                let i = ALPHABET.iter().position(|&l| l == letter).unwrap();
                counts[i] += 1;
            }
        }
        // Exactly 12 bytes per letter: 240 accepted, 16 rejected.
        assert!(counts.iter().all(|&c| c == 12), "{counts:?}");
    }

    #[test]
    fn display_groups_in_fours_and_parse_round_trips() {
        let code = UserCode::parse("BCDFGHJK").unwrap();
        assert_eq!(code.to_string(), "BCDF-GHJK");
        assert_eq!(UserCode::parse(&code.to_string()).unwrap(), code);
    }

    #[test]
    fn parse_normalises_case_dashes_and_spaces() {
        let want = UserCode::parse("WDJBMJHT").unwrap();
        for input in ["wdjb-mjht", " WDJB MJHT ", "wDjB--mJhT", "W.D.J.B/M.J.H.T"] {
            assert_eq!(UserCode::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn parse_rejects_wrong_lengths_and_long_input() {
        assert_eq!(UserCode::parse(""), Err(UserCodeError::WrongLength));
        assert_eq!(UserCode::parse("BCDF-GHJ"), Err(UserCodeError::WrongLength));
        assert_eq!(
            UserCode::parse("BCDF-GHJKL"),
            Err(UserCodeError::WrongLength)
        );
        // Vowels are not in the alphabet, so they are dropped and the length is short.
        assert_eq!(
            UserCode::parse("AEIOU-BCD"),
            Err(UserCodeError::WrongLength)
        );
        let long = "B".repeat(MAX_INPUT_LEN + 1);
        assert_eq!(UserCode::parse(&long), Err(UserCodeError::TooLong));
    }

    #[test]
    fn debug_does_not_print_the_code() {
        let code = UserCode::parse("BCDFGHJK").unwrap();
        assert!(!format!("{code:?}").contains("BCDF"));
    }
}
