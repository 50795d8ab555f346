//! Page tokens of the admin listings: where the next page starts, signed (HS256 with the
//! deployment's cursor secret) and bound to the listing and its filters, so that a token
//! cannot be forged, edited or replayed against another listing or other filters.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::SecretKey;
use crate::store::PageKey;

/// How many items a page may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(i32);

impl PageSize {
    pub const DEFAULT: Self = Self(50);
    pub const MAX: i32 = 200;

    /// A size from 1 to [`PageSize::MAX`].
    pub fn new(size: i32) -> Option<Self> {
        (1..=Self::MAX).contains(&size).then_some(Self(size))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// One page of a listing, and the token of the next (`None`: this was the last page).
#[derive(Debug)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub next_page_token: Option<String>,
}

/// The page token is not one this deployment issued for this listing and these filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the page token is invalid")]
pub struct InvalidPageToken;

/// Signs and opens page tokens; built once per cold start.
pub struct PageTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// What a page token says, signed.
#[derive(Serialize, Deserialize)]
struct Claims {
    /// The listing and its filters; a token is valid only for the same ones.
    scope: String,
    /// The store's page key, as text.
    key: String,
}

impl PageTokens {
    pub fn new(secret: &SecretKey) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        }
    }

    /// The token for the page that starts at `key`, valid for `scope` only.
    pub(crate) fn sign(&self, scope: &str, key: &PageKey) -> Option<String> {
        let claims = Claims {
            scope: scope.to_owned(),
            key: key.encode(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).ok()
    }

    /// The page key inside `token`, if this deployment signed it for `scope`.
    pub fn open(&self, scope: &str, token: &str) -> Result<PageKey, InvalidPageToken> {
        PageKey::decode(&self.open_text(scope, token)?).ok_or(InvalidPageToken)
    }

    fn open_text(&self, scope: &str, token: &str) -> Result<String, InvalidPageToken> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| InvalidPageToken)?
            .claims;
        if claims.scope != scope {
            return Err(InvalidPageToken);
        }
        Ok(claims.key)
    }
}
