//! A device polls the token endpoint (RFC 8628 §3.4-3.5) until the user decides, then
//! exchanges its device code for an access token, exactly once.
//!
//! DynamoDB cost: a public client's pending poll is one conditional `UpdateItem`; a
//! confidential client's adds the `GetItem` that authenticates it, once per instance and
//! cache lifetime (`CLIENT_CACHE_SECONDS`); a too-early poll adds
//! the `UpdateItem` that grows the interval; the poll that gets the token adds one
//! `TransactWriteItems` that consumes the record and writes the login's grant (and its
//! first refresh token). A consumed code presented again adds the `UpdateItem` that
//! revokes its grant (tried again while a transaction holds the grant; still held: 503).

use std::time::Duration;

use super::{Context as _, Internal, Outcome, in_span};
use crate::domain::{
    ClientCredentials, ClientKind, DeviceAuthorization, DeviceCode, DeviceState, Grant, GrantId,
    GrantType, PollDecision, REPLAY_GRACE, RefreshRecord, RefreshToken, RevokeReason, decide_poll,
};

use super::signing_keys::{Minted, TokenMinter};
use crate::store::{ClientCheck, ConsumeOutcome, Owner, PollWrite, RevokeOutcome, Store};
use crate::time::{Clock, Timestamp};

/// The use case's name in the metrics.
pub const NAME: &str = "poll";

/// A poll: who asks, and for what.
#[derive(Debug)]
pub struct PollRequest {
    pub credentials: ClientCredentials,
    pub grant: GrantRequest,
}

/// The grant the request asks for, as far as the form says. It is judged only after a
/// client that presented a secret has been authenticated (RFC 6749 §5.2: wrong
/// credentials are `invalid_client`, whatever the rest of the request holds).
#[derive(Debug)]
pub enum GrantRequest {
    /// The device grant with its code; `None` when the code is malformed (it cannot name
    /// any record).
    DeviceCode(Option<DeviceCode>),
    /// No `grant_type`, or no `device_code`: `invalid_request` naming it.
    Missing(&'static str),
    /// Another `grant_type`.
    Unsupported,
}

/// The tokens this request won. No `Debug`: it holds them.
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: Duration,
    /// Space-separated; `None` when no scope was granted.
    pub scope: Option<String>,
    /// When the grant has refresh tokens: the new one (the only copy).
    pub refresh_token: Option<RefreshToken>,
    /// With the `openid` scope: the ID token about the person who approved.
    pub id_token: Option<String>,
}

impl IssuedToken {
    pub fn new(minted: Minted, refresh_token: Option<RefreshToken>) -> Self {
        Self {
            access_token: minted.access_token,
            expires_in: minted.claims.lifetime(),
            scope: minted.claims.scope,
            refresh_token,
            id_token: minted.id_token,
        }
    }
}

/// Every answer but a token (RFC 8628 §3.5, RFC 6749 §5.2).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The client failed to authenticate, or polled without a secret for a code issued
    /// to a confidential client.
    #[error("client authentication failed")]
    InvalidClient { used_basic: bool },
    #[error("the client may not use the device authorization grant")]
    UnauthorizedClient,
    /// The client was deleted, or lost the grant, after the user approved.
    #[error("the client no longer exists or may not use this grant")]
    ClientGone,
    /// Not decided yet, or the record was busy: poll again after the interval.
    #[error("the user has not decided yet")]
    Pending,
    /// Polled sooner than the interval; the interval is now `interval` (persisted). Also
    /// the answer when the store is throttled or the record was busy (`interval`
    /// `None`): the device backs off instead of failing.
    #[error("polling too fast, slow down")]
    SlowDown { interval: Option<Duration> },
    #[error("the user denied the request")]
    Denied,
    #[error("the device code has expired")]
    Expired,
    /// Unknown, malformed, another client's, or already exchanged.
    #[error("the device code is invalid")]
    InvalidGrant,
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("only urn:ietf:params:oauth:grant-type:device_code and refresh_token are supported")]
    UnsupportedGrantType,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for PollError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient { .. } | Self::ClientGone => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::Pending => "authorization_pending",
            Self::SlowDown { .. } => "slow_down",
            Self::Denied => "access_denied",
            Self::Expired => "expired_token",
            Self::InvalidGrant => "invalid_grant",
            Self::Missing(_) => "invalid_request",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::Internal(_) => "internal",
        }
    }
}

/// Records one poll and says what it means; an approved code is consumed and its token
/// minted here, for exactly one of any number of concurrent polls.
///
/// A client that presents a secret is authenticated against its record first; one that
/// presents only its id may poll only codes issued to a public client, which the poll's
/// own conditional write checks, so that a public pending poll costs one request.
pub async fn poll(
    store: &Store,
    tokens: &TokenMinter,
    clock: &dyn Clock,
    request: PollRequest,
) -> Result<IssuedToken, PollError> {
    let span = tracing::info_span!(
        "poll",
        client_id = %request.credentials.client_id,
        record_id = tracing::field::Empty,
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(NAME, span, async {
        let credentials = &request.credentials;
        let client_id = &credentials.client_id;
        let invalid_client = || PollError::InvalidClient {
            used_basic: credentials.used_basic,
        };
        let require_public = credentials.secret.is_none();
        // The secret this poll authenticated with, as the (possibly cached) record holds
        // it: the exchange checks it against the record as stored at that moment.
        let mut secret_hash = None;
        // The incarnation of the client this poll authenticated as.
        let mut generation = None;
        if !require_public {
            let stored = Box::pin(store.cached_client(client_id, clock.now()))
                .await
                .context("reading the client failed")?;
            let client = credentials
                .authenticate(stored)
                .map_err(|_| invalid_client())?;
            if !client.may_use(GrantType::DeviceCode) {
                return Err(PollError::UnauthorizedClient);
            }
            generation = Some(client.generation.clone());
            if let ClientKind::Confidential { secret_hash: hash } = client.kind {
                secret_hash = Some(hash);
            }
        }
        let device_code = match request.grant {
            GrantRequest::Missing(what) => return Err(PollError::Missing(what)),
            GrantRequest::Unsupported => return Err(PollError::UnsupportedGrantType),
            GrantRequest::DeviceCode(code) => code,
        };
        // A public client is known only once its poll's write fails: then, and only then,
        // its record is read to tell an unknown client (invalid_client) from a bad code.
        let unknown_public_client = || async {
            let stored = Box::pin(store.cached_client(client_id, clock.now()))
                .await
                .context("reading the client failed")?;
            Ok::<_, PollError>(credentials.authenticate(stored).is_err())
        };
        let Some(device_code) = device_code else {
            if require_public && unknown_public_client().await? {
                return Err(invalid_client());
            }
            return Err(PollError::InvalidGrant);
        };
        let id = device_code.id();
        tracing::Span::current().record("record_id", id.as_str());
        let now = clock.now();
        let record = match store
            .record_poll(&id, client_id, require_public, now)
            .await
            .context("recording the poll failed")?
        {
            PollWrite::Recorded => return Err(PollError::Pending),
            // A transaction was changing the record: back off, nothing was written.
            PollWrite::Busy => return Err(PollError::SlowDown { interval: None }),
            PollWrite::Refused(record) => record,
        };
        let own = record.as_ref().filter(|r| &r.client_id == client_id);
        // A confidential client's code polled without its secret.
        if require_public && own.is_some_and(|r| !r.public_client) {
            return Err(invalid_client());
        }
        // No record of this client's: an unknown client is told so.
        if require_public && own.is_none() && unknown_public_client().await? {
            return Err(invalid_client());
        }
        match decide_poll(record.as_ref(), client_id, now) {
            // Only reachable when a concurrent write changed the record between the
            // condition and our read of it: pending is the safe answer.
            PollDecision::Pending => Err(PollError::Pending),
            PollDecision::SlowDown => {
                let Some(record) = record else {
                    return Err(PollError::Pending);
                };
                let interval = Box::pin(store.slow_down(&record, now))
                    .await
                    .context("recording slow_down failed")?;
                Err(PollError::SlowDown {
                    interval: Some(interval),
                })
            }
            PollDecision::Denied => Err(PollError::Denied),
            PollDecision::Expired => Err(PollError::Expired),
            PollDecision::InvalidGrant { replay: true } => {
                if let Some(record) = &record {
                    Box::pin(revoke_on_replay(store, record, now)).await?;
                }
                Err(PollError::InvalidGrant)
            }
            PollDecision::InvalidGrant { replay: false } => Err(PollError::InvalidGrant),
            PollDecision::Issue => match record {
                Some(record) => {
                    // With a client cache, one client's item must not take a condition
                    // check per login: the client is checked here, from a record at most
                    // the cache's lifetime old (a confidential one was, just above).
                    let check = if !store.caches_clients() {
                        ClientCheck::InTransaction {
                            secret_hash: secret_hash.as_ref(),
                        }
                    } else {
                        if require_public {
                            let client = Box::pin(store.cached_client(client_id, clock.now()))
                                .await
                                .context("reading the client failed")?;
                            let Some(client) = client.filter(|c| c.may_use(GrantType::DeviceCode))
                            else {
                                return Err(PollError::ClientGone);
                            };
                            generation = Some(client.generation);
                        }
                        // A code of an earlier incarnation of this client id: that
                        // client was deleted, and this one never issued it.
                        if generation.as_ref() != Some(&record.client_generation) {
                            return Err(PollError::ClientGone);
                        }
                        ClientCheck::Checked
                    };
                    // Boxed, as the other rare paths: a pending poll's future (moved
                    // once per request) then holds only the poll's own write.
                    Box::pin(exchange(store, tokens, clock, &record, check, now)).await
                }
                None => Err(PollError::InvalidGrant),
            },
        }
    })
    .await
}

/// An exchanged device code came back: whoever holds it now may have stolen it, so the
/// grant it produced is revoked (RFC 10027), unless the code was exchanged a moment ago by
/// a concurrent poll of the same device.
async fn revoke_on_replay(
    store: &Store,
    record: &DeviceAuthorization,
    now: Timestamp,
) -> Result<(), PollError> {
    let DeviceState::Consumed {
        consumed_at,
        grant_id: Some(grant_id),
        ..
    } = &record.state
    else {
        return Ok(());
    };
    if now < consumed_at.plus(REPLAY_GRACE) {
        tracing::warn!(
            security_event = "device_code_race_lost",
            "a concurrent poll exchanged this device code a moment ago"
        );
        return Ok(());
    }
    let outcome = store
        .revoke_grant(grant_id, Owner::Any, RevokeReason::DeviceCodeReplay, now)
        .await
        .context("revoking the grant of a replayed device code failed")?;
    tracing::warn!(
        security_event = "device_code_replay",
        grant_id = %grant_id,
        revoked = outcome == RevokeOutcome::Revoked,
        "an exchanged device code was presented again; its grant is revoked"
    );
    // Never fail open: 503 makes the code come again, and with it the detection.
    if outcome == RevokeOutcome::Busy {
        return Err(Internal::new(
            "revoking the grant of a replayed device code failed",
            crate::store::StoreError::Busy,
        )
        .into());
    }
    Ok(())
}

/// Consumes the approved record and, if this request won, mints the token.
async fn exchange(
    store: &Store,
    tokens: &TokenMinter,
    clock: &dyn Clock,
    record: &DeviceAuthorization,
    check: ClientCheck<'_>,
    now: Timestamp,
) -> Result<IssuedToken, PollError> {
    let DeviceState::Approved(approval) = &record.state else {
        return Err(PollError::InvalidGrant);
    };
    // Before the code is consumed: a token this request wins must be signable with a
    // published key.
    tokens.ready(now).await?;
    let grant = Grant::from_login(GrantId::generate(), record, approval, now);
    let refresh_token = grant.refresh.map(|_| RefreshToken::generate(&grant.id));
    let refresh_record = refresh_token.as_ref().and_then(|token| {
        Some(RefreshRecord {
            hash: token.hash(),
            grant_id: grant.id.clone(),
            client_id: grant.client_id.clone(),
            issued_at: now,
            expires_at: grant.refresh_expiry(now)?,
            rotated_at: None,
        })
    });
    match store
        .consume(record, &grant, refresh_record.as_ref(), check, now)
        .await
        .context("consuming the device code failed")?
    {
        ConsumeOutcome::Consumed => {}
        ConsumeOutcome::Lost if record.is_expired(clock.now()) => return Err(PollError::Expired),
        ConsumeOutcome::Lost => {
            tracing::warn!(
                security_event = "device_code_race_lost",
                "a concurrent request consumed this device code first"
            );
            return Err(PollError::InvalidGrant);
        }
        // Nothing was consumed and the record may still be approved: telling the device
        // to poll again (rather than invalid_grant, which ends its login) is the only
        // answer that never loses a token.
        ConsumeOutcome::Conflict => return Err(PollError::Pending),
        ConsumeOutcome::ClientGone => return Err(PollError::ClientGone),
    }
    tracing::Span::current().record("grant_id", grant.id.as_str());
    let minted = tokens
        .mint(&grant, (&grant.scope, &grant.resources), now)
        .context("signing the access token failed")?;
    tracing::info!(
        kid = minted.kid,
        refresh_token = refresh_token.is_some(),
        id_token = minted.id_token.is_some(),
        "access token issued"
    );
    Ok(IssuedToken::new(minted, refresh_token))
}
