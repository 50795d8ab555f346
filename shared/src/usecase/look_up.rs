//! A signed-in person types the code from their TV: find the pending request it names,
//! under the brute-force budget of RFC 8628 §5.1 (failed look-ups counted per account and
//! per source IP in fixed windows).
//!
//! DynamoDB cost: one conditional `UpdateItem` per budget (account, source IP) that takes a
//! look-up before the code is read; the claim's `GetItem`; on a hit the record's `GetItem`
//! and one `UpdateItem` per budget that gives the look-up back (only failures count).

use std::time::Duration;

use super::{Context as _, Internal, Outcome, in_span};
use crate::config::LookupLimits;
use crate::domain::{DeviceAuthorization, Status, UserCode, user_code};
use crate::store::{Budget, Requester, Store, Window};
use crate::time::{Clock, Timestamp};

/// The use case's name in the metrics.
pub const NAME: &str = "look_up";

/// Why no request is shown.
#[derive(Debug, thiserror::Error)]
pub enum LookUpError {
    /// Longer than any way of typing a code; refused before it costs anything.
    #[error("the user code is too long")]
    TooLong,
    /// Unknown, malformed, expired or already decided: one answer for all, so that the
    /// answer leaks nothing. Counted against the budget.
    #[error("device authorization not found")]
    NotFound,
    /// The budget of failed look-ups is spent until the window ends.
    #[error("too many failed look-ups, try again later")]
    RateLimited { retry_after: Duration },
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for LookUpError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::NotFound => "not_found",
            Self::RateLimited { .. } => "rate_limited",
            Self::Internal(_) => "internal",
        }
    }
}

/// The pending request behind `typed` (the code as the person typed it: any case, with or
/// without the dash or spaces), for `requester`.
pub async fn look_up(
    store: &Store,
    limits: &LookupLimits,
    clock: &dyn Clock,
    requester: Requester<'_>,
    typed: &str,
) -> Result<DeviceAuthorization, LookUpError> {
    let span = tracing::info_span!(
        "look_up",
        account_id = %requester.account_id,
        record_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(NAME, span, async {
        if typed.len() > user_code::MAX_INPUT_LEN {
            return Err(LookUpError::TooLong);
        }
        let now = clock.now();
        let window = Window::containing(now, limits.window);
        // Take from both budgets before the code is read, so that of any number of
        // concurrent look-ups at most the budget are answered (a code read after the
        // budget is spent would tell a hit from a miss). One after the other, the account
        // first: a look-up its account refuses never spends the address's budget, which
        // everyone behind one NAT or CDN address shares.
        let limited = || {
            tracing::warn!(
                security_event = "user_code_lookup_throttled",
                "too many failed user-code look-ups"
            );
            Err(LookUpError::RateLimited {
                retry_after: retry_after(now, window.end),
            })
        };
        let take = |budget, limit| store.take_lookup(requester, budget, window, limit);
        if !take(Budget::Account, limits.per_account)
            .await
            .context("counting a look-up failed")?
        {
            return limited();
        }
        let budgets: &[Budget] = match limits.per_ip {
            Some(per_ip) => {
                if !take(Budget::Ip, per_ip)
                    .await
                    .context("counting a look-up failed")?
                {
                    give_back(store, requester, &[Budget::Account], window).await;
                    return limited();
                }
                &[Budget::Account, Budget::Ip]
            }
            None => &[Budget::Account],
        };
        // A malformed code costs a look-up like any other.
        let claimed_by = match UserCode::parse(typed) {
            Ok(code) => store
                .find_user_code(&code, now)
                .await
                .context("reading the user code failed")?,
            Err(_) => None,
        };
        let record = match &claimed_by {
            Some(id) => store
                .get_device_authorization(id)
                .await
                .context("reading the device authorization failed")?
                .filter(|r| r.status(now) == Status::Pending),
            None => None,
        };
        let Some(record) = record else {
            return Err(LookUpError::NotFound);
        };
        // Found: only failures count, so the look-up is given back.
        give_back(store, requester, budgets, window).await;
        tracing::Span::current().record("record_id", record.id.as_str());
        Ok(record)
    })
    .await
}

/// Gives look-ups back; a failure only costs the requester one look-up of its budget, so
/// it is logged, not answered.
async fn give_back(store: &Store, requester: Requester<'_>, budgets: &[Budget], window: Window) {
    for budget in budgets {
        if let Err(e) = store.return_lookup(requester, *budget, window).await {
            tracing::warn!(error = %e, "giving a look-up back failed");
        }
    }
}

/// Whole seconds until `end`, rounded up and at least one: a client that waits exactly
/// this long must find the window over.
fn retry_after(now: Timestamp, end: Timestamp) -> Duration {
    Duration::from_secs(
        end.as_millis()
            .saturating_sub(now.as_millis())
            .div_ceil(1000)
            .max(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        let end = Timestamp::from_millis(600_000);
        let secs = |now| retry_after(Timestamp::from_millis(now), end).as_secs();
        assert_eq!(secs(123_456), 477);
        assert_eq!(secs(599_999), 1);
        assert_eq!(secs(0), 600);
        assert_eq!(secs(600_000), 1);
    }
}
