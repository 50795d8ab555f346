//! The device authorization record and the life it moves through.

use std::time::Duration;

use super::{
    ClientGeneration, ClientId, ClientKind, DeviceAuthorizationId, GrantId, OAuthClient, Profile,
    RefreshPolicy, ScopeSet, UserCode, UserCodeFormat,
};
use crate::time::Timestamp;

/// How much earlier than the interval a poll may arrive and still count as compliant:
/// network jitter must never turn a well-behaved client's poll into `slow_down`.
pub const POLL_TOLERANCE: Duration = Duration::from_secs(1);

/// By how much each `slow_down` grows the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What the device endpoint saw of the device, shown to the person who approves (RFC 8628
/// §5.4, RFC 10027: "is this really your TV?") and to administrators, never to anyone else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceDetails {
    /// The source address API Gateway saw.
    pub ip: Option<String>,
    /// The `User-Agent` the device sent, cut to [`DeviceDetails::MAX_USER_AGENT`]
    /// characters, control characters removed.
    pub user_agent: Option<String>,
}

impl DeviceDetails {
    pub const MAX_USER_AGENT: usize = 256;
    pub const MAX_IP: usize = 64;

    /// Details as received, bounded and made printable.
    pub fn new(ip: Option<&str>, user_agent: Option<&str>) -> Self {
        let clean = |value: &str, max: usize| {
            let value: String = value
                .chars()
                .filter(|c| !c.is_control())
                .take(max)
                .collect();
            let value = value.trim().to_owned();
            (!value.is_empty()).then_some(value)
        };
        Self {
            ip: ip.and_then(|ip| clean(ip, Self::MAX_IP)),
            user_agent: user_agent.and_then(|ua| clean(ua, Self::MAX_USER_AGENT)),
        }
    }
}

/// What an authenticated client gets for a device authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub scope: ScopeSet,
    /// How long the device code and user code live.
    pub lifetime: Duration,
    /// The minimum polling interval the device starts with.
    pub interval: Duration,
    /// The lifetime of the access token the request will yield.
    pub access_token_lifetime: Duration,
    /// `Some` when the login will come with refresh tokens: the client may use the
    /// `refresh_token` grant and the scope includes `offline_access`.
    pub refresh: Option<RefreshPolicy>,
    /// The resources (RFC 8707) the access tokens will be for; empty: the deployment's
    /// default audience.
    pub resources: Vec<String>,
    /// The format of the user code to draw.
    pub user_code_format: UserCodeFormat,
}

/// What a poll of the token endpoint means, given the record it names (RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollDecision {
    /// Pending and on time: record the poll; `authorization_pending`.
    Pending,
    /// Pending but sooner than the interval: grow the interval; `slow_down`.
    SlowDown,
    /// Approved and unexpired: consume the record and issue the token.
    Issue,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// `invalid_grant`: no such record, another client's, or already exchanged
    /// (`replay`, a security event).
    InvalidGrant { replay: bool },
}

/// Decides what a poll by `client_id` at `now` means for `record` (`None`: unknown code).
///
/// The checks run in this order: existence, ownership, the final states (consumed,
/// denied), expiry, then approval and the interval.
pub fn decide_poll(
    record: Option<&DeviceAuthorization>,
    client_id: &ClientId,
    now: Timestamp,
) -> PollDecision {
    let Some(record) = record.filter(|r| &r.client_id == client_id) else {
        return PollDecision::InvalidGrant { replay: false };
    };
    match record.state {
        DeviceState::Consumed { .. } => PollDecision::InvalidGrant { replay: true },
        DeviceState::Denied { .. } => PollDecision::Denied,
        _ if record.is_expired(now) => PollDecision::Expired,
        DeviceState::Approved(_) => PollDecision::Issue,
        DeviceState::Pending => match record.next_poll_at() {
            Some(next) if now < next => PollDecision::SlowDown,
            _ => PollDecision::Pending,
        },
    }
}

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
        /// The grant the login created (absent on records consumed before grants existed).
        grant_id: Option<GrantId>,
    },
}

impl DeviceState {
    /// The stored status of this state: the one place a state gets its name (items,
    /// condition expressions, the listing filter). Expiry is not a stored state.
    pub fn status(&self) -> Status {
        match self {
            Self::Pending => Status::Pending,
            Self::Approved(_) => Status::Approved,
            Self::Denied { .. } => Status::Denied,
            Self::Consumed { .. } => Status::Consumed,
        }
    }
}

/// Who approved a request, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The `sub` of the approving user's token.
    pub account_id: String,
    pub approved_at: Timestamp,
    /// The `sessionId` the verification page sent, when it sent one.
    pub session_id: Option<String>,
    /// What the person's identity provider said about them, for the device's ID token.
    pub profile: Profile,
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
    /// Every status, in the order of a record's life.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Consumed,
        Self::Expired,
    ];

    /// The status's name, as stored (for the four stored states) and as the admin API's
    /// `status` filter spells it.
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
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }
}

/// One device authorization request (RFC 8628 §3.1), from issue to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub id: DeviceAuthorizationId,
    pub client_id: ClientId,
    /// The incarnation of the client that asked: only it may exchange the code.
    pub client_generation: ClientGeneration,
    /// The client's name when the request was made, shown to the user as `appName`.
    pub client_name: String,
    pub scope: ScopeSet,
    pub user_code: UserCode,
    pub created_at: Timestamp,
    /// The device code and user code stop working at this instant.
    pub expires_at: Timestamp,
    /// The current minimum polling interval; grows by 5 s on every `slow_down`.
    pub interval: Duration,
    pub last_polled_at: Option<Timestamp>,
    /// The requesting client was public when the code was issued, so polls may identify
    /// it by `client_id` alone; a confidential client's polls must authenticate.
    pub public_client: bool,
    /// Lifetime of the access token this request will yield, fixed at issue (the
    /// client's override or the deployment's default).
    pub access_token_lifetime: Duration,
    /// What the device endpoint saw of the device.
    pub device: DeviceDetails,
    /// The refresh policy of the grant this request will yield, fixed at issue.
    pub refresh: Option<RefreshPolicy>,
    /// The resources (RFC 8707) its access tokens will be for; empty: the default audience.
    pub resources: Vec<String>,
    pub state: DeviceState,
}

impl DeviceAuthorization {
    /// A new pending request for `client` under `terms`, issued at `now`.
    pub fn new(
        id: DeviceAuthorizationId,
        client: &OAuthClient,
        terms: &Terms,
        user_code: UserCode,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            client_id: client.id.clone(),
            client_generation: client.generation.clone(),
            client_name: client.name.clone(),
            scope: terms.scope.clone(),
            user_code,
            created_at: now,
            expires_at: now.plus(terms.lifetime),
            interval: terms.interval,
            last_polled_at: None,
            public_client: client.kind == ClientKind::Public,
            access_token_lifetime: terms.access_token_lifetime,
            device: DeviceDetails::default(),
            refresh: terms.refresh,
            resources: terms.resources.clone(),
            state: DeviceState::Pending,
        }
    }

    /// The earliest instant the next poll passes the interval check: the interval after
    /// the last poll, less [`POLL_TOLERANCE`] for network jitter. `None` before the first
    /// poll, which is never throttled.
    pub fn next_poll_at(&self) -> Option<Timestamp> {
        self.last_polled_at
            .map(|last| last.plus(self.interval.saturating_sub(POLL_TOLERANCE)))
    }

    /// True from `expires_at` on.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The record's status at `now`. A consumed or denied record stays so forever; a
    /// pending or approved one whose time is up is expired.
    pub fn status(&self, now: Timestamp) -> Status {
        match self.state.status() {
            Status::Pending | Status::Approved if self.is_expired(now) => Status::Expired,
            stored => stored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeviceCode;

    fn record(now: Timestamp) -> DeviceAuthorization {
        let terms = Terms {
            resources: Vec::new(),
            user_code_format: Default::default(),
            scope: ScopeSet::parse("read").unwrap(),
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            access_token_lifetime: Duration::from_secs(3600),
            refresh: None,
        };
        DeviceAuthorization::new(
            DeviceCode::generate().id(),
            &crate::domain::test_client("demo-cli"),
            &terms,
            UserCode::generate(),
            now,
        )
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_public_clients_record_remembers_it_is_public() {
        let r = record(Timestamp::from_millis(0));
        assert!(r.public_client);
        assert_eq!(r.access_token_lifetime, secs(3600));
    }

    #[test]
    fn the_first_poll_is_never_throttled() {
        let t0 = Timestamp::from_millis(1_000_000);
        let r = record(t0);
        assert_eq!(
            decide_poll(Some(&r), &r.client_id, t0),
            PollDecision::Pending
        );
    }

    #[test]
    fn a_poll_within_the_tolerance_of_the_interval_is_on_time() {
        let t0 = Timestamp::from_millis(1_000_000);
        let mut r = record(t0);
        r.last_polled_at = Some(t0);
        let id = r.client_id.clone();
        assert_eq!(
            decide_poll(Some(&r), &id, t0.plus(secs(5))),
            PollDecision::Pending
        );
        assert_eq!(
            decide_poll(Some(&r), &id, t0.plus(ms(4_000))),
            PollDecision::Pending
        );
        assert_eq!(
            decide_poll(Some(&r), &id, t0.plus(ms(3_999))),
            PollDecision::SlowDown
        );
        assert_eq!(
            decide_poll(Some(&r), &id, t0.plus(ms(2_500))),
            PollDecision::SlowDown
        );
    }

    #[test]
    fn final_states_win_over_expiry_and_expiry_over_approval() {
        let t0 = Timestamp::from_millis(1_000_000);
        let late = t0.plus(secs(601));
        let approval = Approval {
            account_id: "u".into(),
            approved_at: t0,
            session_id: None,
            profile: Default::default(),
        };
        let mut r = record(t0);
        let id = r.client_id.clone();
        assert_eq!(decide_poll(Some(&r), &id, late), PollDecision::Expired);
        r.state = DeviceState::Approved(approval.clone());
        assert_eq!(decide_poll(Some(&r), &id, t0), PollDecision::Issue);
        assert_eq!(decide_poll(Some(&r), &id, late), PollDecision::Expired);
        r.state = DeviceState::Denied { denied_at: t0 };
        assert_eq!(decide_poll(Some(&r), &id, late), PollDecision::Denied);
        r.state = DeviceState::Consumed {
            approval,
            consumed_at: t0,
            grant_id: None,
        };
        assert_eq!(
            decide_poll(Some(&r), &id, t0),
            PollDecision::InvalidGrant { replay: true }
        );
    }

    #[test]
    fn unknown_codes_and_other_clients_codes_are_invalid_grant() {
        let t0 = Timestamp::from_millis(1_000_000);
        let r = record(t0);
        let other = ClientId::parse("other").unwrap();
        let invalid = PollDecision::InvalidGrant { replay: false };
        assert_eq!(decide_poll(None, &r.client_id, t0), invalid);
        assert_eq!(decide_poll(Some(&r), &other, t0), invalid);
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
            profile: Default::default(),
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
            grant_id: None,
        };
        assert_eq!(r.status(later), Status::Consumed);
    }

    #[test]
    fn device_details_are_bounded_and_printable() {
        let details = DeviceDetails::new(Some(" 203.0.113.7 "), Some("TV/1.0\u{0}\n"));
        assert_eq!(details.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(details.user_agent.as_deref(), Some("TV/1.0"));
        let long = DeviceDetails::new(None, Some(&"é".repeat(1000)));
        assert_eq!(
            long.user_agent.unwrap().chars().count(),
            DeviceDetails::MAX_USER_AGENT
        );
        assert_eq!(
            DeviceDetails::new(Some(""), Some("\n")),
            DeviceDetails::default()
        );
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("PENDING"), None);
    }
}
