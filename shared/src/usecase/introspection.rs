//! Token revocation (RFC 7009) and introspection (RFC 7662).
//!
//! A presented token is one of ours if it is a refresh token of the form this service
//! issues, or an access token whose signature verifies with the published key set, whose
//! `iss` is this deployment's, and that names its grant (`sid`). Its `aud` (the default
//! audience, or the resources of RFC 8707) is judged by each caller: introspection answers
//! only resource servers of one of them; UserInfo only the default audience. Both lead to
//! the grant: revoking revokes the grant; introspection says whether the grant (and, for a
//! refresh token, the token itself) is still active.
//!
//! DynamoDB cost: introspection is one strongly consistent `BatchGetItem` (the calling
//! client, the grant, and the refresh token's record); revocation is one `BatchGetItem`
//! and one conditional `UpdateItem`. The published key set is read at the first access
//! token, again every 5 minutes (so a removed key stops verifying within that bound), and
//! at once when a token names a key id it does not know (at most once a minute): see
//! [`super::signing_keys`].

use std::collections::HashMap;
use std::sync::RwLock;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::signing_keys::{KEY_REFETCH_INTERVAL, KEY_SET_REFRESH};
use super::{Context as _, Internal, Outcome, in_span};
use crate::config::IntrospectionConfig;
use crate::domain::{
    ClientCredentials, GrantId, GrantStatus, OAuthClient, RefreshToken, RefreshTokenHash,
    RevokeReason, ScopeSet,
};
use crate::store::{Owner, RevokeOutcome, Store, StoreError};
use crate::time::{Clock, Timestamp};
use crate::token::{ACCESS_TOKEN_TYPE, AccessTokenClaims, Audience};

pub const REVOKE: &str = "revoke";
pub const INTROSPECT: &str = "introspect";

/// The longest token looked at; anything longer is nobody's token.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The published verification keys and the deployment's issuer and audience, built once
/// per cold start.
pub struct AccessTokens {
    issuer: String,
    audience: String,
    keys: RwLock<Keys>,
}

#[derive(Default)]
struct Keys {
    by_kid: HashMap<String, (Algorithm, DecodingKey)>,
    fetched: Option<Timestamp>,
}

impl AccessTokens {
    pub fn new(config: &IntrospectionConfig) -> Self {
        Self {
            issuer: config.issuer.clone(),
            audience: config.access_token_audience.clone(),
            keys: RwLock::new(Keys::default()),
        }
    }

    /// The deployment's default audience: the `aud` of a token whose login named no
    /// resource.
    pub fn default_audience(&self) -> &str {
        &self.audience
    }

    /// Reads the published key set: at the first access token, every
    /// [`KEY_SET_REFRESH`], and when a token names an unknown kid.
    pub async fn load(&self, store: &Store, now: Timestamp) -> Result<(), StoreError> {
        let json = store.get_jwks().await?.unwrap_or_default();
        let set: JwkSet = serde_json::from_str(&json).unwrap_or(JwkSet { keys: Vec::new() });
        let by_kid = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let alg = match jwk.common.key_algorithm? {
                    jsonwebtoken::jwk::KeyAlgorithm::RS256 => Algorithm::RS256,
                    jsonwebtoken::jwk::KeyAlgorithm::ES256 => Algorithm::ES256,
                    jsonwebtoken::jwk::KeyAlgorithm::EdDSA => Algorithm::EdDSA,
                    _ => return None,
                };
                Some((kid, (alg, DecodingKey::from_jwk(jwk).ok()?)))
            })
            .collect();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        *keys = Keys {
            by_kid,
            fetched: Some(now),
        };
        Ok(())
    }

    /// The claims of `token` if it is an access token this deployment signed, whether or
    /// not it has expired (the caller compares `exp` with its clock).
    pub(crate) async fn verify(
        &self,
        store: &Store,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<AccessTokenClaims>, StoreError> {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Ok(None);
        }
        let Some(kid) = header.kid else {
            return Ok(None);
        };
        let due = {
            let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
            let since = |interval| keys.fetched.is_none_or(|at| at.plus(interval) <= now);
            since(KEY_SET_REFRESH)
                || (!keys.by_kid.contains_key(&kid) && since(KEY_REFETCH_INTERVAL))
        };
        if due {
            self.load(store, now).await?;
        }
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let Some((alg, key)) = keys.by_kid.get(&kid) else {
            return Ok(None);
        };
        if header.alg != *alg {
            return Ok(None);
        }
        let mut validation = Validation::new(*alg);
        validation.set_issuer(&[&self.issuer]);
        // Every caller judges the audience itself (see the module's notes).
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = false;
        Ok(
            jsonwebtoken::decode::<AccessTokenClaims>(token, key, &validation)
                .ok()
                .map(|data| data.claims),
        )
    }
}

/// A presented token, as far as its form says.
enum Presented {
    Refresh(RefreshToken),
    Access(AccessTokenClaims),
    Unknown,
}

impl Presented {
    /// The grant the token names, and the hash of a refresh token's record.
    fn keys(&self) -> (Option<GrantId>, Option<RefreshTokenHash>) {
        match self {
            Self::Refresh(token) => (Some(token.grant_id()), Some(token.hash())),
            Self::Access(claims) => (claims.sid.as_deref().and_then(GrantId::parse), None),
            Self::Unknown => (None, None),
        }
    }
}

async fn classify(
    store: &Store,
    keys: &AccessTokens,
    token: &str,
    now: Timestamp,
) -> Result<Presented, StoreError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(Presented::Unknown);
    }
    if let Some(refresh) = RefreshToken::parse(token) {
        return Ok(Presented::Refresh(refresh));
    }
    Ok(match keys.verify(store, token, now).await? {
        Some(claims) => Presented::Access(claims),
        None => Presented::Unknown,
    })
}

/// A revocation or introspection request.
#[derive(Debug)]
pub struct TokenRequest {
    pub credentials: ClientCredentials,
    /// `None`: the `token` parameter is missing.
    pub token: Option<String>,
}

impl TokenRequest {
    /// The presented token, read: a refresh token, an access token of ours, or neither.
    async fn presented(
        &self,
        store: &Store,
        keys: &AccessTokens,
        now: Timestamp,
    ) -> Result<Presented, TokenRequestError> {
        let token = self
            .token
            .as_deref()
            .ok_or(TokenRequestError::MissingToken)?;
        Ok(classify(store, keys, token, now)
            .await
            .context("reading the published keys failed")?)
    }

    /// The calling client, authenticated against its record (`None`: no such client).
    fn authenticate(&self, client: Option<OAuthClient>) -> Result<OAuthClient, TokenRequestError> {
        let used_basic = self.credentials.used_basic;
        self.credentials
            .authenticate(client)
            .map_err(|_| TokenRequestError::InvalidClient { used_basic })
    }
}

/// Every answer but success.
#[derive(Debug, thiserror::Error)]
pub enum TokenRequestError {
    #[error("client authentication failed")]
    InvalidClient { used_basic: bool },
    /// Introspection is for resource servers: confidential clients an administrator made
    /// one (RFC 7662 §2.1 leaves the choice between 401 and 403; 401 `invalid_client`
    /// here, as for failed authentication, so the answer tells a TV app nothing more).
    #[error("introspection is for resource servers")]
    NotResourceServer { used_basic: bool },
    #[error("token is required")]
    MissingToken,
    /// The grant was busy; nothing was written. Try again.
    #[error("the token is busy, try again")]
    Busy,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for TokenRequestError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient { .. } | Self::NotResourceServer { .. } => "invalid_client",
            Self::MissingToken => "invalid_request",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }
}

/// Revokes the grant behind a refresh or access token the calling client was issued
/// (RFC 7009 §2.1); an access token only while it is unexpired. Unknown, invalid,
/// expired, already revoked and other clients' tokens change nothing and are answered as
/// success, so that the answer tells nothing.
pub async fn revoke(
    store: &Store,
    keys: &AccessTokens,
    clock: &dyn Clock,
    request: TokenRequest,
) -> Result<(), TokenRequestError> {
    let span = tracing::info_span!(
        "revoke",
        client_id = %request.credentials.client_id,
        grant_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(REVOKE, span, async {
        let presented = request.presented(store, keys, clock.now()).await?;
        let (grant_id, refresh) = presented.keys();
        // The grant is not read: the revoking write checks that it is this client's.
        let found = store
            .find(Some(&request.credentials.client_id), None, refresh.as_ref())
            .await
            .context("reading the token failed")?;
        let client = request.authenticate(found.client)?;
        let ours = match &presented {
            Presented::Refresh(_) => found.refresh.is_some_and(|r| {
                r.client_id == client.id && Some(&r.grant_id) == grant_id.as_ref()
            }),
            // An access token ends its grant only while it is itself valid: an expired
            // one (found in a log, a crash dump, an old backup) is nobody's key to the
            // device's sign-in any more, and changes nothing (RFC 7009 §2.2).
            Presented::Access(claims) => {
                claims.client_id == client.id.as_str() && clock.now().as_secs() < claims.exp
            }
            Presented::Unknown => false,
        };
        let Some(grant_id) = grant_id.filter(|_| ours) else {
            tracing::info!("nothing of this client's to revoke");
            return Ok(());
        };
        tracing::Span::current().record("grant_id", grant_id.as_str());
        match store
            .revoke_grant(
                &grant_id,
                Owner::Client(&client.id),
                RevokeReason::Client,
                clock.now(),
            )
            .await
            .context("revoking the grant failed")?
        {
            RevokeOutcome::Revoked => tracing::info!("grant revoked"),
            RevokeOutcome::AlreadyRevoked | RevokeOutcome::NotFound => {}
            RevokeOutcome::Busy => return Err(TokenRequestError::Busy),
        }
        Ok(())
    })
    .await
}

/// An access token's scope as its grant holds it now: the token's scopes that the grant
/// still has (an administrator may have narrowed the client since, and the next refresh
/// narrowed the grant). `None` when nothing is left.
fn current_scope(token: Option<&str>, grant: &ScopeSet) -> Option<String> {
    let token = ScopeSet::parse(token.unwrap_or_default()).unwrap_or_default();
    let scope = token.intersection(grant);
    (!scope.is_empty()).then(|| scope.to_string())
}

/// What introspection says about an active token (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveToken {
    pub scope: Option<String>,
    pub client_id: String,
    pub sub: String,
    pub exp: u64,
    pub iat: u64,
    pub iss: String,
    /// Access tokens only.
    pub aud: Option<Audience>,
    /// `Bearer` for access tokens, `refresh_token` for refresh tokens.
    pub token_type: &'static str,
    /// Access tokens only.
    pub jti: Option<String>,
    pub sid: String,
}

/// Says whether a token is active (RFC 7662). `None`: inactive, for whatever reason
/// (unknown, malformed, expired, revoked, rotated, another issuer's), never said which.
pub async fn introspect(
    store: &Store,
    keys: &AccessTokens,
    clock: &dyn Clock,
    request: TokenRequest,
) -> Result<Option<ActiveToken>, TokenRequestError> {
    let span = tracing::info_span!(
        "introspect",
        client_id = %request.credentials.client_id,
        active = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    in_span(INTROSPECT, span, async {
        let presented = request.presented(store, keys, clock.now()).await?;
        let (grant_id, refresh) = presented.keys();
        let found = store
            .find(
                Some(&request.credentials.client_id),
                grant_id.as_ref(),
                refresh.as_ref(),
            )
            .await
            .context("reading the token failed")?;
        let client = request.authenticate(found.client)?;
        if !client.is_resource_server() {
            let used_basic = request.credentials.used_basic;
            return Err(TokenRequestError::NotResourceServer { used_basic });
        }
        let now = clock.now();
        let Some(grant) = found.grant.filter(|g| g.revoked.is_none()) else {
            tracing::Span::current().record("active", false);
            return Ok(None);
        };
        let active = match presented {
            // A refresh token is active only to the client it was issued to.
            Presented::Refresh(_) => found
                .refresh
                .filter(|r| {
                    r.grant_id == grant.id
                        && r.client_id == client.id
                        && grant.client_id == client.id
                        && r.rotated_at.is_none()
                        && now < r.expires_at
                        && grant.status(now) == GrantStatus::Active
                })
                .map(|r| ActiveToken {
                    scope: (!grant.scope.is_empty()).then(|| grant.scope.to_string()),
                    client_id: grant.client_id.as_str().to_owned(),
                    sub: grant.account_id.clone(),
                    exp: r.expires_at.as_secs(),
                    iat: r.issued_at.as_secs(),
                    iss: keys.issuer.clone(),
                    aud: None,
                    token_type: "refresh_token",
                    jti: None,
                    sid: grant.id.as_str().to_owned(),
                }),
            // An access token is active only to a resource server of its audience (any
            // other is scanning, RFC 7662 §4), with the scope its grant still holds.
            Presented::Access(claims) => (now.as_secs() < claims.exp
                && claims
                    .aud
                    .values()
                    .iter()
                    .any(|aud| client.resource_server_audiences.contains(aud))
                && claims.client_id == grant.client_id.as_str()
                && claims.sub == grant.account_id)
                .then(|| ActiveToken {
                    scope: current_scope(claims.scope.as_deref(), &grant.scope),
                    client_id: claims.client_id,
                    sub: claims.sub,
                    exp: claims.exp,
                    iat: claims.iat,
                    iss: claims.iss,
                    aud: Some(claims.aud),
                    token_type: "Bearer",
                    jti: Some(claims.jti),
                    sid: grant.id.as_str().to_owned(),
                }),
            Presented::Unknown => None,
        };
        tracing::Span::current().record("active", active.is_some());
        Ok(active)
    })
    .await
}
