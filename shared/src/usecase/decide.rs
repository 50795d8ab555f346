//! The signed-in person approves or denies the request they looked up: one conditional
//! write from `pending`, so that of two racing decisions exactly one wins.

use super::{Context as _, Internal, Outcome, in_span};
use crate::domain::{Approval, DeviceAuthorizationId};
use crate::store::{DecideOutcome, Store};
use crate::time::Clock;
use crate::user_auth::{User, UserTokenVerifier};

/// The use case's names in the metrics, one for each decision.
pub const APPROVE: &str = "approve";
pub const DENY: &str = "deny";

/// What the person decided. `Debug` never prints the session token.
#[derive(Clone, PartialEq, Eq)]
pub enum Decision {
    Approve {
        /// The verification page's own session id, recorded with the approval.
        session_id: Option<String>,
        /// When given, it must be a valid user token of the same person.
        session_token: Option<String>,
    },
    Deny,
}

impl std::fmt::Debug for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Approve {
                session_id,
                session_token,
            } => f
                .debug_struct("Approve")
                .field("session_id", session_id)
                .field("session_token", &session_token.as_ref().map(|_| ".."))
                .finish(),
            Self::Deny => f.write_str("Deny"),
        }
    }
}

/// Why nothing was decided. Nothing was written in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// Unknown or expired.
    #[error("device authorization not found")]
    NotFound,
    #[error("the device authorization was already decided")]
    AlreadyDecided,
    /// A concurrent transaction was changing the record; try again.
    #[error("the device authorization is being changed, try again")]
    Busy,
    /// The `sessionToken` is not a valid token of the signed-in person.
    #[error("the session does not belong to the signed-in user")]
    ForeignSession,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for DecideError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyDecided => "already_decided",
            Self::Busy => "busy",
            Self::ForeignSession => "foreign_session",
            Self::Internal(_) => "internal",
        }
    }
}

/// Records `user`'s decision on the request `id`. `users` checks a session token, where
/// the caller accepts them (the verification API); without it, one is refused.
pub async fn decide(
    store: &Store,
    users: Option<&UserTokenVerifier>,
    clock: &dyn Clock,
    user: &User,
    id: &DeviceAuthorizationId,
    decision: Decision,
) -> Result<(), DecideError> {
    let span = tracing::info_span!(
        "decide",
        account_id = %user.account_id,
        record_id = %id,
        outcome = tracing::field::Empty,
    );
    let metric = match decision {
        Decision::Approve { .. } => APPROVE,
        Decision::Deny => DENY,
    };
    in_span(metric, span, async {
        let now = clock.now();
        let verb = match decision {
            Decision::Approve { .. } => "approved",
            Decision::Deny => "denied",
        };
        let approving = matches!(decision, Decision::Approve { .. });
        let outcome = match decision {
            Decision::Approve {
                session_id,
                session_token,
            } => {
                if let Some(token) = session_token {
                    let same_user = match users {
                        Some(users) => users
                            .verify(&token)
                            .await
                            .is_ok_and(|session_user| session_user.account_id == user.account_id),
                        None => false,
                    };
                    if !same_user {
                        return Err(DecideError::ForeignSession);
                    }
                }
                let approval = Approval {
                    account_id: user.account_id.clone(),
                    approved_at: now,
                    session_id,
                    profile: user.profile.clone(),
                };
                store.approve(id, &approval, now).await
            }
            Decision::Deny => store.deny(id, now).await,
        }
        .context("recording the decision failed")?;
        match outcome {
            DecideOutcome::Decided => {
                tracing::info!("device authorization {verb}");
                Ok(())
            }
            DecideOutcome::NotFound | DecideOutcome::Expired => Err(DecideError::NotFound),
            // The same person's approval already stands: their retry (an answer lost to a
            // timeout, a page posted twice) is answered as the first request was.
            DecideOutcome::AlreadyDecided {
                approved_by: Some(account),
            } if approving && account == user.account_id => {
                tracing::info!("the same person's approval already stands");
                Ok(())
            }
            DecideOutcome::AlreadyDecided { .. } => Err(DecideError::AlreadyDecided),
            DecideOutcome::Busy => Err(DecideError::Busy),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_session_token() {
        let decision = Decision::Approve {
            session_id: Some("s1".into()),
            session_token: Some("eyJ.secret.token".into()),
        };
        let printed = format!("{decision:?}");
        assert!(
            printed.contains("s1") && !printed.contains("secret"),
            "{printed}"
        );
    }
}
