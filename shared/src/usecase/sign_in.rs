//! A person signs in to the verification page with the deployment's OpenID provider:
//! [`begin_sign_in`] says where to send them, [`finish_sign_in`] checks what they bring
//! back (state, then the code exchange and the ID token) and names the account.

use super::{Outcome, in_span};
use crate::oidc::{Challenge, OidcError, RelyingParty, SignedIn};

/// The use cases' names in the metrics: sending the person to sign in, and their return.
pub const BEGIN: &str = "begin_sign_in";
pub const FINISH: &str = "finish_sign_in";

/// Why nobody is signed in.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider could not be reached or is misconfigured: try again later.
    #[error("the identity provider is unavailable")]
    Unavailable(#[source] OidcError),
    /// The provider sent the person back with an error (they cancelled, say).
    #[error("the identity provider did not sign the person in")]
    Refused,
    /// The `state` that came back is not the one this browser was sent with.
    #[error("the sign-in response does not belong to this browser")]
    StateMismatch,
    /// The code exchange or the ID token failed verification.
    #[error("the sign-in could not be verified")]
    Invalid(#[source] OidcError),
}

impl Outcome for SignInError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unavailable",
            Self::Refused => "refused",
            Self::StateMismatch => "state_mismatch",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// Where to send the person, and what their browser must remember until they return.
pub async fn begin_sign_in(provider: &RelyingParty) -> Result<(String, Challenge), SignInError> {
    let span = tracing::info_span!("begin_sign_in", outcome = tracing::field::Empty);
    in_span(BEGIN, span, async {
        provider.begin().await.map_err(SignInError::Unavailable)
    })
    .await
}

/// What the provider sent back to the callback.
pub enum Callback<'a> {
    Code {
        state: &'a str,
        code: &'a str,
    },
    /// `error=...`: the provider did not sign the person in.
    Error,
}

/// The account that signed in (and what its provider said of the person), if `callback`
/// completes the sign-in `challenge` began.
pub async fn finish_sign_in(
    provider: &RelyingParty,
    challenge: &Challenge,
    callback: Callback<'_>,
) -> Result<SignedIn, SignInError> {
    let span = tracing::info_span!(
        "finish_sign_in",
        account_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(FINISH, span, async {
        let Callback::Code { state, code } = callback else {
            return Err(SignInError::Refused);
        };
        if !crate::bearer_secret::constant_time_eq(state, &challenge.state) {
            return Err(SignInError::StateMismatch);
        }
        let signed_in = provider
            .finish(challenge, code)
            .await
            .map_err(|e| match e {
                OidcError::Discovery(_) | OidcError::Configuration(_) => {
                    SignInError::Unavailable(e)
                }
                _ => SignInError::Invalid(e),
            })?;
        tracing::Span::current().record("account_id", signed_in.subject.as_str());
        tracing::info!(profile = ?signed_in.profile, "signed in");
        Ok(signed_in)
    })
    .await
}
