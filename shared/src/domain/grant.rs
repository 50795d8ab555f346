//! A grant: what a completed device login leaves behind (the account, the client, the
//! scopes, the device), and the refresh tokens that keep it alive.
//!
//! A grant is written in the same conditional write that consumes its device
//! authorization. Access tokens name it as `sid`; refresh tokens belong to it; revoking
//! it (the user, an administrator, a reused refresh token, a replayed device code, a
//! deleted client) ends every refresh token of it and makes its access tokens inactive
//! at introspection.

use std::fmt;
use std::time::Duration;

use super::{
    Approval, ClientGeneration, ClientId, DeviceAuthorization, DeviceAuthorizationId,
    DeviceDetails, Profile, ScopeSet,
};
use crate::bearer_secret;
use crate::time::Timestamp;

/// The scope that asks for a refresh token (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A refresh token not used for this long dies (sliding: every use renews it).
pub const DEFAULT_REFRESH_IDLE_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// No refresh token of a grant outlives the grant's creation by more than this.
pub const DEFAULT_REFRESH_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(365 * 86_400);

/// How soon after a refresh token was rotated, or a device code consumed, it may be
/// presented again without counting as stolen. Two requests of one device racing with one
/// secret (a retried request, a CLI run twice at once, concurrent polls) are not theft:
/// the loser gets `invalid_grant` and the grant lives. Later than this, the used secret in
/// anyone's hands revokes the grant (RFC 9700 §4.14.2, RFC 10027).
pub const REPLAY_GRACE: Duration = Duration::from_secs(5);

/// The id of a grant: 256 random bits, unpadded base64url. Not a secret (access tokens
/// carry it as `sid`), but unguessable, so that it tells nobody else's grants apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantId(String);

impl GrantId {
    pub fn generate() -> Self {
        Self(bearer_secret::random_token())
    }

    /// Accepts only well-formed ids (43 base64url characters).
    pub fn parse(input: &str) -> Option<Self> {
        bearer_secret::is_encoded_secret(input).then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const REFRESH_HASH_DOMAIN: &str = "refresh-token";

/// A refresh token: `<grant id>.<256 random bits>`, opaque to the client. The grant id in
/// front lets one request fetch the token's record and its grant together; the random
/// part makes it a bearer secret. Only its hash is stored. No `Debug` of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    text: String,
}

impl RefreshToken {
    /// A fresh refresh token of `grant`.
    pub fn generate(grant: &GrantId) -> Self {
        Self {
            text: format!("{grant}.{}", bearer_secret::random_token()),
        }
    }

    /// Accepts only what [`RefreshToken::generate`] can produce.
    pub fn parse(input: &str) -> Option<Self> {
        let (grant, random) = input.split_once('.')?;
        (bearer_secret::is_encoded_secret(grant) && bearer_secret::is_encoded_secret(random)).then(
            || Self {
                text: input.to_owned(),
            },
        )
    }

    /// The grant this token claims to belong to (its stored record must agree).
    pub fn grant_id(&self) -> GrantId {
        GrantId(self.text[..bearer_secret::ENCODED_SECRET_LEN].to_owned())
    }

    /// The value handed to the client, once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What the store keys the token's record by: a domain-separated SHA-256.
    pub fn hash(&self) -> RefreshTokenHash {
        RefreshTokenHash(bearer_secret::hash(REFRESH_HASH_DOMAIN, &self.text))
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

/// The stored hash of a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenHash(String);

impl RefreshTokenHash {
    pub fn parse(input: &str) -> Option<Self> {
        bearer_secret::is_encoded_secret(input).then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a grant's refresh tokens live: fixed when the code is issued, from the
/// client's settings or the deployment's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// A token unused this long dies; each use issues a token with a fresh idle span.
    pub idle: Duration,
    /// No token lives past the grant's creation plus this.
    pub absolute: Duration,
}

/// Why a grant was revoked; kept on the grant for administrators and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// The signed-in user revoked it ("sign out that TV").
    User,
    Administrator,
    /// The client revoked one of its tokens (RFC 7009).
    Client,
    /// A rotated refresh token was presented again (RFC 9700 §4.14.2).
    RefreshTokenReuse,
    /// The consumed device code was presented again.
    DeviceCodeReplay,
    /// The client was deleted.
    ClientDeleted,
}

impl RevokeReason {
    pub const ALL: [Self; 6] = [
        Self::User,
        Self::Administrator,
        Self::Client,
        Self::RefreshTokenReuse,
        Self::DeviceCodeReplay,
        Self::ClientDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Administrator => "administrator",
            Self::Client => "client",
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::DeviceCodeReplay => "device_code_replay",
            Self::ClientDeleted => "client_deleted",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == input)
    }
}

/// When and why a grant was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub at: Timestamp,
    pub reason: RevokeReason,
}

/// A grant's status at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    Active,
    /// Its last access token and refresh token have expired.
    Expired,
    Revoked,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// One completed device login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: GrantId,
    /// The `sub` of the account that approved.
    pub account_id: String,
    pub client_id: ClientId,
    /// The incarnation of the client it was issued to: a client deleted and created
    /// again under the same id cannot refresh it.
    pub client_generation: ClientGeneration,
    /// The client's name at approval time, shown in the device list.
    pub client_name: String,
    pub scope: ScopeSet,
    /// What the device endpoint saw of the device.
    pub device: DeviceDetails,
    /// The device authorization it came from.
    pub device_authorization_id: DeviceAuthorizationId,
    /// The client was public, so refreshes identify it by `client_id` alone.
    pub public_client: bool,
    pub access_token_lifetime: Duration,
    /// `Some` when the grant has refresh tokens.
    pub refresh: Option<RefreshPolicy>,
    /// The resources (RFC 8707) its access tokens are for; empty: the default audience.
    pub resources: Vec<String>,
    /// The approving person's claims, for ID tokens and UserInfo (never access tokens).
    pub profile: Profile,
    /// When the person approved: an ID token's `auth_time` when their provider gave none.
    pub approved_at: Timestamp,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    /// Nothing of the grant works from this instant on: the last access token's expiry,
    /// or the current refresh token's (renewed on every refresh, never past the absolute
    /// lifetime).
    pub expires_at: Timestamp,
    pub revoked: Option<Revocation>,
}

impl Grant {
    /// The grant the consumption of `record`, approved by `approval`, creates at `now`.
    pub fn from_login(
        id: GrantId,
        record: &DeviceAuthorization,
        approval: &Approval,
        now: Timestamp,
    ) -> Self {
        let mut grant = Self {
            id,
            account_id: approval.account_id.clone(),
            client_id: record.client_id.clone(),
            client_generation: record.client_generation.clone(),
            client_name: record.client_name.clone(),
            scope: record.scope.clone(),
            device: record.device.clone(),
            device_authorization_id: record.id.clone(),
            public_client: record.public_client,
            access_token_lifetime: record.access_token_lifetime,
            refresh: record.refresh,
            resources: record.resources.clone(),
            profile: approval.profile.clone(),
            approved_at: approval.approved_at,
            created_at: now,
            last_used_at: now,
            expires_at: now.plus(record.access_token_lifetime),
            revoked: None,
        };
        if let Some(end) = grant.refresh_expiry(now) {
            grant.expires_at = end.max(grant.expires_at);
        }
        grant
    }

    /// When a refresh token issued at `now` expires: the idle span from now, never past
    /// the absolute end. `None` when the grant has no refresh tokens.
    pub fn refresh_expiry(&self, now: Timestamp) -> Option<Timestamp> {
        self.refresh.map(|policy| {
            now.plus(policy.idle)
                .min(self.created_at.plus(policy.absolute))
        })
    }

    pub fn status(&self, now: Timestamp) -> GrantStatus {
        if self.revoked.is_some() {
            GrantStatus::Revoked
        } else if now >= self.expires_at {
            GrantStatus::Expired
        } else {
            GrantStatus::Active
        }
    }
}

/// The stored record of one refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: RefreshTokenHash,
    pub grant_id: GrantId,
    pub client_id: ClientId,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    /// Set when a refresh consumed it; from then on, presenting it is reuse.
    pub rotated_at: Option<Timestamp>,
}

/// What presenting a refresh token means, given its record and its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Rotate it and issue tokens.
    Rotate,
    /// `invalid_grant`: unknown, another client's, expired, or its grant is over.
    Invalid,
    /// `invalid_grant`, and the grant must be revoked: a rotated token came back.
    Reuse,
    /// `invalid_grant` without revoking: rotated a moment ago by a concurrent request.
    LostRace,
}

/// Decides what a refresh by `client_id` at `now` means (`None`: no such record or grant).
pub fn decide_refresh(
    record: Option<&RefreshRecord>,
    grant: Option<&Grant>,
    client_id: &ClientId,
    now: Timestamp,
) -> RefreshDecision {
    let (Some(record), Some(grant)) = (record, grant) else {
        return RefreshDecision::Invalid;
    };
    if record.grant_id != grant.id
        || &record.client_id != client_id
        || &grant.client_id != client_id
    {
        return RefreshDecision::Invalid;
    }
    if grant.status(now) != GrantStatus::Active || now >= record.expires_at {
        return RefreshDecision::Invalid;
    }
    match record.rotated_at {
        None => RefreshDecision::Rotate,
        Some(at) if now < at.plus(REPLAY_GRACE) => RefreshDecision::LostRace,
        Some(_) => RefreshDecision::Reuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceCode, DeviceState, Terms, UserCode};

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    fn grant(refresh: Option<RefreshPolicy>) -> Grant {
        let terms = Terms {
            resources: Vec::new(),
            user_code_format: Default::default(),
            scope: ScopeSet::parse("read offline_access").unwrap(),
            lifetime: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            access_token_lifetime: Duration::from_secs(3600),
            refresh,
        };
        let mut record = DeviceAuthorization::new(
            DeviceCode::generate().id(),
            &crate::domain::test_client("tv"),
            &terms,
            UserCode::generate(),
            at(0),
        );
        let approval = Approval {
            account_id: "acct".into(),
            approved_at: at(10),
            session_id: None,
            profile: Default::default(),
        };
        record.state = DeviceState::Approved(approval.clone());
        Grant::from_login(GrantId::generate(), &record, &approval, at(100))
    }

    const POLICY: RefreshPolicy = RefreshPolicy {
        idle: Duration::from_secs(1000),
        absolute: Duration::from_secs(2500),
    };

    #[test]
    fn refresh_tokens_round_trip_and_hide_their_secret() {
        let id = GrantId::generate();
        let token = RefreshToken::generate(&id);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.grant_id(), id);
        assert_eq!(parsed.hash(), token.hash());
        assert_ne!(token.hash(), RefreshToken::generate(&id).hash());
        assert!(!format!("{token:?}").contains(token.expose()));
        assert!(!token.hash().as_str().contains(token.expose()));
        for bad in [
            "",
            "x.y",
            &format!("{id}."),
            &format!("{id}.{id}x"),
            id.as_str(),
        ] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_grant_without_refresh_ends_with_its_access_token() {
        let g = grant(None);
        assert_eq!(g.expires_at, at(3700));
        assert_eq!(g.refresh_expiry(at(200)), None);
        assert_eq!(g.status(at(3699)), GrantStatus::Active);
        assert_eq!(g.status(at(3700)), GrantStatus::Expired);
    }

    #[test]
    fn refresh_expiry_slides_but_never_past_the_absolute_end() {
        let g = grant(Some(POLICY));
        assert_eq!(
            g.expires_at,
            at(3700),
            "the access token outlives the idle span"
        );
        assert_eq!(g.refresh_expiry(at(100)), Some(at(1100)));
        assert_eq!(g.refresh_expiry(at(2000)), Some(at(2600)));
    }

    #[test]
    fn refresh_decisions() {
        let g = grant(Some(POLICY));
        let client = g.client_id.clone();
        let token = RefreshToken::generate(&g.id);
        let record = RefreshRecord {
            hash: token.hash(),
            grant_id: g.id.clone(),
            client_id: client.clone(),
            issued_at: at(100),
            expires_at: at(1100),
            rotated_at: None,
        };
        let decide =
            |r: &RefreshRecord, g: &Grant, now| decide_refresh(Some(r), Some(g), &client, now);
        assert_eq!(decide(&record, &g, at(500)), RefreshDecision::Rotate);
        assert_eq!(
            decide(&record, &g, at(1100)),
            RefreshDecision::Invalid,
            "idle"
        );
        let other = ClientId::parse("other").unwrap();
        assert_eq!(
            decide_refresh(Some(&record), Some(&g), &other, at(500)),
            RefreshDecision::Invalid
        );
        assert_eq!(
            decide_refresh(None, Some(&g), &client, at(500)),
            RefreshDecision::Invalid
        );
        let rotated = RefreshRecord {
            rotated_at: Some(at(500)),
            ..record.clone()
        };
        assert_eq!(decide(&rotated, &g, at(504)), RefreshDecision::LostRace);
        assert_eq!(decide(&rotated, &g, at(505)), RefreshDecision::Reuse);
        let mut revoked = g.clone();
        revoked.revoked = Some(Revocation {
            at: at(400),
            reason: RevokeReason::User,
        });
        assert_eq!(decide(&record, &revoked, at(500)), RefreshDecision::Invalid);
        assert_eq!(
            decide(&rotated, &revoked, at(900)),
            RefreshDecision::Invalid
        );
        let mut foreign = record.clone();
        foreign.grant_id = GrantId::generate();
        assert_eq!(decide(&foreign, &g, at(500)), RefreshDecision::Invalid);
    }

    #[test]
    fn revoke_reasons_round_trip() {
        for reason in RevokeReason::ALL {
            assert_eq!(RevokeReason::parse(reason.as_str()), Some(reason));
        }
    }
}
