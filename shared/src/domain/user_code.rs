//! The user code a person types on their phone (RFC 8628 §6.1), in the format its client
//! chose: base-20 letters (the default, `XXXX-XXXX`) or digits (`XXX-XXX-XXX`), of a length
//! no weaker than RFC 8628 §6.1's own examples.

use std::fmt;

use crate::bearer_secret::fill_random;

/// The RFC 8628 §6.1 alphabet: consonants only, so that no code spells a word, and no
/// two letters are easily confused.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const DIGITS: &[u8; 10] = b"0123456789";

/// Characters in a default user code (20^8 ≈ 2^34.6 codes).
pub const LEN: usize = 8;
/// The longest user code of any format.
pub const MAX_LEN: usize = 12;

/// Longest raw input accepted for normalisation. A user code with generous punctuation
/// fits easily; anything longer is not a user code and is rejected before any work.
pub const MAX_INPUT_LEN: usize = 64;

/// Which characters a user code is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// [`ALPHABET`]'s 20 consonants, shown in groups of four.
    Letters,
    /// The ten digits, shown in groups of three: a phone's number pad.
    Digits,
}

impl Charset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Letters => "letters",
            Self::Digits => "digits",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "letters" => Some(Self::Letters),
            "digits" => Some(Self::Digits),
            _ => None,
        }
    }

    fn symbols(self) -> &'static [u8] {
        match self {
            Self::Letters => ALPHABET,
            Self::Digits => DIGITS,
        }
    }

    /// The shortest length allowed: RFC 8628 §6.1's examples (8 base-20 letters, about
    /// 34.6 bits; 9 digits, about 29.9 bits). Anything shorter is refused.
    pub fn min_len(self) -> usize {
        match self {
            Self::Letters => 8,
            Self::Digits => 9,
        }
    }

    /// Characters per group when shown.
    fn group(self) -> usize {
        match self {
            Self::Letters => 4,
            Self::Digits => 3,
        }
    }
}

/// A client's user-code format: its characters and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserCodeFormat {
    charset: Charset,
    len: usize,
}

impl Default for UserCodeFormat {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl UserCodeFormat {
    /// Eight base-20 letters, `XXXX-XXXX`.
    pub const DEFAULT: Self = Self {
        charset: Charset::Letters,
        len: LEN,
    };

    /// `charset` codes of `len` characters (its shortest when `None`), if that is within
    /// [`Charset::min_len`] to [`MAX_LEN`].
    pub fn new(charset: Charset, len: Option<usize>) -> Result<Self, UserCodeError> {
        let len = len.unwrap_or(charset.min_len());
        if !(charset.min_len()..=MAX_LEN).contains(&len) {
            return Err(UserCodeError::WeakFormat);
        }
        Ok(Self { charset, len })
    }

    pub fn charset(self) -> Charset {
        self.charset
    }

    pub fn length(self) -> usize {
        self.len
    }

    /// How many codes the format has.
    pub fn space(self) -> f64 {
        (self.charset.symbols().len() as f64).powi(self.len as i32)
    }
}

/// A syntactically valid user code: letters of [`ALPHABET`] or digits, of a length some
/// format has.
///
/// It can only be made by [`UserCode::generate`] or by [`UserCode::parse`], so any value
/// of this type is well-formed. `Display` shows it as people read it, in groups
/// (`XXXX-XXXX`, `XXX-XXX-XXX`); [`UserCode::as_str`] is the compact form used as the store
/// key. Letters and digits never make the same key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

/// Why some input is not a user code, or a format is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserCodeError {
    #[error("the user code is too long")]
    TooLong,
    #[error("a user code has eight to twelve letters, or nine to twelve digits")]
    WrongLength,
    #[error("a user code format has 8 to 12 letters or 9 to 12 digits")]
    WeakFormat,
}

impl UserCode {
    /// Draws a uniformly random code of the default format.
    pub fn generate() -> Self {
        Self::generate_in(UserCodeFormat::DEFAULT)
    }

    /// Draws a uniformly random code of `format` from the operating system's CSPRNG.
    ///
    /// Each character comes from one random byte by rejection sampling: bytes at or above
    /// the largest multiple of the charset's size (240 for letters, 250 for digits) are
    /// discarded, so every character has exactly the same probability and there is no
    /// modulo bias.
    pub fn generate_in(format: UserCodeFormat) -> Self {
        let symbols = format.charset.symbols();
        let mut code = String::with_capacity(format.len);
        let mut pool = [0u8; 16];
        while code.len() < format.len {
            fill_random(&mut pool);
            for &byte in &pool {
                if code.len() == format.len {
                    break;
                }
                if let Some(symbol) = symbol_for(symbols, byte) {
                    code.push(char::from(symbol));
                }
            }
        }
        Self(code)
    }

    /// Normalises what a person typed, as RFC 8628 §6.1 suggests: letters are
    /// case-folded and every character outside the code's characters (dashes, spaces,
    /// and anything else) is dropped. Input with any letter of [`ALPHABET`] is a letter
    /// code (digits dropped too); otherwise it is a digit code. The rest must have a
    /// length some format has.
    pub fn parse(input: &str) -> Result<Self, UserCodeError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(UserCodeError::TooLong);
        }
        let upper = || input.bytes().map(|b| b.to_ascii_uppercase());
        let charset = if upper().any(|b| ALPHABET.contains(&b)) {
            Charset::Letters
        } else {
            Charset::Digits
        };
        let symbols = charset.symbols();
        let code: String = upper()
            .filter(|b| symbols.contains(b))
            .map(char::from)
            .collect();
        if !(charset.min_len()..=MAX_LEN).contains(&code.len()) {
            return Err(UserCodeError::WrongLength);
        }
        Ok(Self(code))
    }

    /// The compact form, without dashes.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code's format.
    pub fn format(&self) -> UserCodeFormat {
        let charset = if self.0.bytes().all(|b| b.is_ascii_digit()) {
            Charset::Digits
        } else {
            Charset::Letters
        };
        UserCodeFormat {
            charset,
            len: self.0.len(),
        }
    }
}

/// Maps a random byte to a symbol, or `None` for the bytes that would bias the draw.
fn symbol_for(symbols: &[u8], byte: u8) -> Option<u8> {
    let limit = 256 / symbols.len() * symbols.len();
    (usize::from(byte) < limit).then(|| symbols[usize::from(byte) % symbols.len()])
}

/// Shown in as many whole groups of the charset's size as fit, the rest spread over the
/// first groups: `BCDF-GHJK`, `BCDFG-HJKLM`, `123-456-789`, `1234-567-890`.
impl fmt::Display for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = self.format();
        let groups = (format.len / format.charset.group()).max(1);
        let (base, larger) = (format.len / groups, format.len % groups);
        let mut rest = self.as_str();
        for i in 0..groups {
            let size = base + usize::from(i < larger);
            let (group, tail) = rest.split_at(size.min(rest.len()));
            if i > 0 {
                f.write_str("-")?;
            }
            f.write_str(group)?;
            rest = tail;
        }
        Ok(())
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
            assert_eq!(code.format(), UserCodeFormat::DEFAULT);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn every_byte_maps_uniformly_or_is_rejected() {
        for (symbols, per_symbol) in [(&ALPHABET[..], 12), (&DIGITS[..], 25)] {
            let mut counts = vec![0usize; symbols.len()];
            for byte in 0..=255u8 {
                if let Some(symbol) = symbol_for(symbols, byte) {
                    let i = symbols.iter().position(|&s| s == symbol).unwrap();
                    counts[i] += 1;
                }
            }
            // Letters: 240 bytes accepted, 12 each; digits: 250, 25 each.
            assert!(counts.iter().all(|&c| c == per_symbol), "{counts:?}");
        }
    }

    #[test]
    fn every_format_generates_its_own_characters_and_length() {
        for charset in [Charset::Letters, Charset::Digits] {
            for len in charset.min_len()..=MAX_LEN {
                let format = UserCodeFormat::new(charset, Some(len)).unwrap();
                for _ in 0..50 {
                    let code = UserCode::generate_in(format);
                    assert_eq!(code.as_str().len(), len);
                    assert!(
                        code.as_str()
                            .bytes()
                            .all(|b| charset.symbols().contains(&b))
                    );
                    assert_eq!(code.format(), format);
                    assert_eq!(UserCode::parse(&code.to_string()).unwrap(), code);
                }
            }
        }
    }

    #[test]
    fn formats_weaker_than_rfc_8628s_examples_are_refused() {
        assert_eq!(
            UserCodeFormat::new(Charset::Letters, Some(7)),
            Err(UserCodeError::WeakFormat)
        );
        assert_eq!(
            UserCodeFormat::new(Charset::Digits, Some(8)),
            Err(UserCodeError::WeakFormat)
        );
        assert_eq!(
            UserCodeFormat::new(Charset::Digits, Some(13)),
            Err(UserCodeError::WeakFormat)
        );
        let digits = UserCodeFormat::new(Charset::Digits, None).unwrap();
        assert_eq!(digits.length(), 9);
        assert_eq!(digits.space(), 1e9);
        assert!(UserCodeFormat::DEFAULT.space() > 2.5e10);
    }

    #[test]
    fn digits_show_in_threes_and_parse_from_what_a_person_types() {
        let code = UserCode::parse("123 456 789").unwrap();
        assert_eq!(code.to_string(), "123-456-789");
        for typed in ["123-456-789", "123456789", " 123.456.789 ", "(123) 456 789"] {
            assert_eq!(UserCode::parse(typed).unwrap(), code, "{typed}");
        }
        assert_eq!(
            UserCode::parse("1234567890").unwrap().to_string(),
            "1234-567-890"
        );
        assert_eq!(
            UserCode::parse("123456789012").unwrap().to_string(),
            "123-456-789-012"
        );
        assert_eq!(UserCode::parse("12345678"), Err(UserCodeError::WrongLength));
        // Letters and digits never make the same key.
        assert_ne!(UserCode::parse("BCDFGHJK").unwrap().as_str(), code.as_str());
        assert_eq!(
            UserCode::parse("BCDFGHJKLM").unwrap().to_string(),
            "BCDFG-HJKLM"
        );
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
            UserCode::parse("BCDF-GHJKL-MNPQR"),
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
