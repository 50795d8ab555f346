//! The device authorization record and the life it moves through.

use std::time::Duration;

use super::{ClientId, DeviceAuthorizationId, ScopeSet, UserCode};
use crate::time::Timestamp;

/// The stored, decided part of a record's life. Every move between these is one
/// conditional write that names the state it starts from (see the store).
///
/// `pending -> approved -> consumed`, or `pending -> denied`. Expiry is not a stored
/// state: it is derived from the time on every read (see [`DeviceAuthorization::status`]),
/// because DynamoDB's TTL deletes items late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceState {
    Pending,
    Approved(Approval),
    Denied {
        denied_at: Timestamp,
    },
    Consumed {
        approval: Approval,
        consumed_at: Timestamp,
    },
}

/// Who approved a request, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The `sub` of the approving user's token.
    pub account_id: String,
    pub approved_at: Timestamp,
    /// The `sessionId` the verification page sent, when it sent one.
    pub session_id: Option<String>,
}

/// What a record is, as seen at a given instant: the stored state plus derived expiry.
/// Admin filters and the token endpoint's answers are phrased in these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Consumed,
    /// Past `expires_at` without having been consumed or denied.
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Consumed => "consumed",
            Self::Expired => "expired",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Approved,
            Self::Denied,
            Self::Consumed,
            Self::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == input)
    }
}

/// One device authorization request (RFC 8628 §3.1), from issue to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub id: DeviceAuthorizationId,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub user_code: UserCode,
    pub created_at: Timestamp,
    /// The device code and user code stop working at this instant.
    pub expires_at: Timestamp,
    /// The current minimum polling interval; grows by 5 s on every `slow_down`.
    pub interval: Duration,
    pub last_polled_at: Option<Timestamp>,
    pub state: DeviceState,
}

impl DeviceAuthorization {
    /// A new pending request, valid for `lifetime` from `now`.
    pub fn new(
        id: DeviceAuthorizationId,
        client_id: ClientId,
        scope: ScopeSet,
        user_code: UserCode,
        now: Timestamp,
        lifetime: Duration,
        interval: Duration,
    ) -> Self {
        Self {
            id,
            client_id,
            scope,
            user_code,
            created_at: now,
            expires_at: now.plus(lifetime),
            interval,
            last_polled_at: None,
            state: DeviceState::Pending,
        }
    }

    /// True from `expires_at` on.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The record's status at `now`. A consumed or denied record stays so forever; a
    /// pending or approved one whose time is up is expired.
    pub fn status(&self, now: Timestamp) -> Status {
        match &self.state {
            DeviceState::Consumed { .. } => Status::Consumed,
            DeviceState::Denied { .. } => Status::Denied,
            _ if self.is_expired(now) => Status::Expired,
            DeviceState::Pending => Status::Pending,
            DeviceState::Approved(_) => Status::Approved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeviceCode;

    fn record(now: Timestamp) -> DeviceAuthorization {
        DeviceAuthorization::new(
            DeviceCode::generate().id(),
            ClientId::parse("demo-cli").unwrap(),
            ScopeSet::parse("read").unwrap(),
            UserCode::generate(),
            now,
            Duration::from_secs(600),
            Duration::from_secs(5),
        )
    }

    #[test]
    fn a_new_record_is_pending_until_it_expires() {
        let now = Timestamp::from_millis(1_000_000);
        let r = record(now);
        assert_eq!(r.status(now), Status::Pending);
        assert_eq!(
            r.status(now.plus(Duration::from_millis(599_999))),
            Status::Pending
        );
        assert_eq!(
            r.status(now.plus(Duration::from_secs(600))),
            Status::Expired
        );
    }

    #[test]
    fn approved_expires_but_denied_and_consumed_are_final() {
        let now = Timestamp::from_millis(1_000_000);
        let later = now.plus(Duration::from_secs(3600));
        let approval = Approval {
            account_id: "u1".into(),
            approved_at: now,
            session_id: None,
        };
        let mut r = record(now);
        r.state = DeviceState::Approved(approval.clone());
        assert_eq!(r.status(now), Status::Approved);
        assert_eq!(r.status(later), Status::Expired);
        r.state = DeviceState::Denied { denied_at: now };
        assert_eq!(r.status(later), Status::Denied);
        r.state = DeviceState::Consumed {
            approval,
            consumed_at: now,
        };
        assert_eq!(r.status(later), Status::Consumed);
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Consumed,
            Status::Expired,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("PENDING"), None);
    }
}
