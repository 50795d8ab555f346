//! The signing keys over their life: the token function reads its key set (at cold start
//! and again every [`KEY_SET_REFRESH`]), publishes the public half for discovery and
//! introspection before it signs anything, and signs with a new key only once every cache
//! of the older set has expired ([`KEY_PUBLISH_LEAD`]).
//!
//! The bounds, all measured from the moment an operator stores a new key set:
//! - a warm token instance reads it within [`KEY_SET_REFRESH`] (5 minutes) and publishes it;
//! - a new key signs [`KEY_PUBLISH_LEAD`] (6 minutes) after its first publication, longer
//!   than any cache of the published set: discovery's instance cache
//!   ([`JWKS_INSTANCE_CACHE`], 10 s) plus the `max-age` it sends ([`JWKS_MAX_AGE`], 5
//!   minutes); until then the instance signs with the newest key that is old enough;
//! - introspection re-reads the published set every [`KEY_SET_REFRESH`] (and at once, at
//!   most every [`KEY_REFETCH_INTERVAL`], for a key id it does not know), so a key removed
//!   from the set stops verifying there within 5 minutes of its removal's publication.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::OnceCell;

use super::{Context as _, Internal};
use crate::domain::{Grant, OPENID, ScopeSet};
use crate::store::{PublishedKeys, Store};
use crate::time::Timestamp;
use crate::token::{AccessTokenClaims, IdTokenClaims, KeyError, KeySet};

/// The `max-age` discovery sends with the JWKS.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// How long a discovery instance serves the JWKS from memory.
pub const JWKS_INSTANCE_CACHE: Duration = Duration::from_secs(10);
/// How long a new key is published before it signs: longer than the JWKS can be cached
/// anywhere ([`JWKS_INSTANCE_CACHE`] + [`JWKS_MAX_AGE`]), with a margin for clocks.
pub const KEY_PUBLISH_LEAD: Duration = Duration::from_secs(360);
/// How often a warm instance reads its key set again: the token function the secret, the
/// introspection function the published set.
pub const KEY_SET_REFRESH: Duration = Duration::from_secs(300);
/// How often an unknown key id may make introspection read the published set at once.
pub const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// The published JWKS document, `None` before the token function first started.
pub async fn published_keys_if_any(store: &Store) -> Result<Option<String>, Internal> {
    store.get_jwks().await.context("reading the JWKS failed")
}

/// Publishes `keys`' JWKS as of `now`, unless that version or a newer one is published;
/// returns the set as published.
pub async fn publish_keys(
    store: &Store,
    keys: &KeySet,
    now: Timestamp,
) -> Result<PublishedKeys, Internal> {
    let kids: Vec<&str> = keys.kids().collect();
    let published = store
        .publish_jwks(&keys.jwks_json(), keys.version(), &kids, now)
        .await
        .context("publishing the JWKS failed")?;
    tracing::info!(
        version = keys.version(),
        published_version = published.version,
        "signing keys published"
    );
    Ok(published)
}

/// Which key of `keys` signs at `now`, given when each key id was first published: the
/// active key once it has been published for [`KEY_PUBLISH_LEAD`]; until then the most
/// recently published key of the set that has been; the active key when none has (a key
/// set of keys all new to the table, which nobody can have cached an older set of).
pub fn signing_kid<'a>(
    keys: &'a KeySet,
    published: &BTreeMap<String, Timestamp>,
    now: Timestamp,
) -> &'a str {
    let ready = |kid: &str| {
        published
            .get(kid)
            .is_some_and(|at| at.plus(KEY_PUBLISH_LEAD) <= now)
    };
    if ready(keys.active_kid()) {
        return keys.active_kid();
    }
    keys.kids()
        .filter(|kid| ready(kid))
        .max_by_key(|kid| published.get(*kid).copied())
        .unwrap_or(keys.active_kid())
}

/// Reads the key set document again (the token function: its secret).
pub type KeySource =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// One key set and its publication.
struct Loaded {
    keys: KeySet,
    published: OnceCell<PublishedKeys>,
}

/// Mints access tokens: the signing keys and the deployment's issuer and audience, built
/// once per cold start and kept current (see the module's bounds). Clones share the keys.
#[derive(Clone)]
pub struct TokenMinter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    issuer: String,
    audience: String,
    id_token_lifetime: Duration,
    source: Option<KeySource>,
    current: RwLock<Arc<Loaded>>,
    /// When the source was last read (`None`: not since the cold start's read).
    read_at: tokio::sync::Mutex<Option<Timestamp>>,
}

impl TokenMinter {
    /// A minter for `keys`, read at cold start at `now`; its publication is still to do
    /// (the first signature waits for it, see [`TokenMinter::ready`]).
    pub fn new(
        config: &crate::config::TokenConfig,
        store: Store,
        keys: KeySet,
        now: Timestamp,
    ) -> Self {
        Self::reading(config, store, keys, now, None)
    }

    /// [`TokenMinter::new`], reading its key set again from `source` (when given) every
    /// [`KEY_SET_REFRESH`].
    pub fn reading(
        config: &crate::config::TokenConfig,
        store: Store,
        keys: KeySet,
        now: Timestamp,
        source: Option<KeySource>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                issuer: config.issuer.clone(),
                audience: config.access_token_audience.clone(),
                id_token_lifetime: config.id_token_lifetime,
                source,
                current: RwLock::new(Arc::new(Loaded {
                    keys,
                    published: OnceCell::new(),
                })),
                read_at: tokio::sync::Mutex::new(Some(now)),
            }),
        }
    }

    /// Starts publishing the key set in the background (at cold start: beside the first
    /// requests, not before them).
    pub fn start_publishing(&self, now: Timestamp) {
        let minter = self.clone();
        tokio::spawn(async move {
            if let Err(e) = minter.ready(now).await {
                tracing::warn!(
                    error = %e,
                    "publishing the signing keys failed; the first signature tries again"
                );
            }
        });
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.inner.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The active key id of the current key set.
    pub fn active_kid(&self) -> String {
        self.current().keys.active_kid().to_owned()
    }

    /// Makes the keys ready to sign at `now`: reads the key set again when it is due,
    /// and publishes the current set if this instance has not yet (concurrent callers
    /// wait for the same attempt; a failed one is tried again by the next). Called before
    /// every signature, so that no token carries a key id the JWKS does not have.
    pub async fn ready(&self, now: Timestamp) -> Result<(), Internal> {
        self.refresh_if_due(now).await;
        let loaded = self.current();
        loaded
            .published
            .get_or_try_init(|| publish_keys(&self.inner.store, &loaded.keys, now))
            .await?;
        Ok(())
    }

    /// Reads the key set again if [`KEY_SET_REFRESH`] has passed since the last read (one
    /// request reads; the others go on with the keys they have). A newer version replaces
    /// the current set; a failed read keeps it, and is tried again after the same time.
    async fn refresh_if_due(&self, now: Timestamp) {
        let Some(source) = &self.inner.source else {
            return;
        };
        let Ok(mut read_at) = self.inner.read_at.try_lock() else {
            return;
        };
        if read_at.is_some_and(|at| now < at.plus(KEY_SET_REFRESH)) {
            return;
        }
        *read_at = Some(now);
        let keys = match source().await {
            Ok(json) => KeySet::from_json(&json).map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match keys {
            Ok(keys) if keys.version() > self.current().keys.version() => {
                tracing::info!(version = keys.version(), "a new signing key set was read");
                *self
                    .inner
                    .current
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(Loaded {
                    keys,
                    published: OnceCell::new(),
                });
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error,
                "reading the signing keys again failed; the current set goes on signing"
            ),
        }
    }

    /// The signed tokens `grant` yields at `now` for `scope` (the grant's, or narrower)
    /// and `resources` (the grant's, or fewer; none: the default audience): the access
    /// token, with its claims and the key id that signed it, and with `openid` in `scope`
    /// an ID token signed by the same key. Call [`TokenMinter::ready`] first.
    pub fn mint(
        &self,
        grant: &Grant,
        (scope, resources): (&ScopeSet, &[String]),
        now: Timestamp,
    ) -> Result<Minted, KeyError> {
        let loaded = self.current();
        let claims = AccessTokenClaims::for_grant(
            &self.inner.issuer,
            &self.inner.audience,
            grant,
            (scope, resources),
            now,
        );
        let kid = match loaded.published.get() {
            Some(published) => signing_kid(&loaded.keys, &published.first_published, now),
            None => loaded.keys.active_kid(),
        };
        let access_token = loaded.keys.sign_with(kid, &claims)?;
        let id_token = if scope.contains(OPENID) {
            let claims = IdTokenClaims::for_grant(
                &self.inner.issuer,
                grant,
                scope,
                self.inner.id_token_lifetime,
                now,
            );
            Some(loaded.keys.sign_id_token(kid, claims, &access_token)?)
        } else {
            None
        };
        Ok(Minted {
            access_token,
            claims,
            kid: kid.to_owned(),
            id_token,
        })
    }
}

/// What [`TokenMinter::mint`] signed. No `Debug`: it holds the tokens.
pub struct Minted {
    pub access_token: String,
    pub claims: AccessTokenClaims,
    pub kid: String,
    /// With the `openid` scope.
    pub id_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::tests::{TEST_EC_PEM, TEST_RSA_PEM, key_set};

    #[test]
    fn a_new_key_signs_only_once_it_has_been_published_long_enough() {
        let keys = KeySet::from_json(&key_set(
            "new",
            &[
                ("old", "RS256", TEST_RSA_PEM),
                ("new", "ES256", TEST_EC_PEM),
            ],
        ))
        .unwrap();
        let at = |ms: u64| Timestamp::from_millis(ms);
        let published = BTreeMap::from([("old".to_owned(), at(0)), ("new".to_owned(), at(1_000))]);
        let lead = KEY_PUBLISH_LEAD.as_millis() as u64;
        assert_eq!(signing_kid(&keys, &published, at(lead)), "old");
        assert_eq!(signing_kid(&keys, &published, at(1_000 + lead - 1)), "old");
        assert_eq!(signing_kid(&keys, &published, at(1_000 + lead)), "new");
        // A first publication (everything at 0) signs with the active key at once.
        let first = BTreeMap::from([("old".to_owned(), at(0)), ("new".to_owned(), at(0))]);
        assert_eq!(signing_kid(&keys, &first, at(lead)), "new");
        // Nothing old enough: the active key.
        let fresh = BTreeMap::from([("new".to_owned(), at(1_000))]);
        assert_eq!(signing_kid(&keys, &fresh, at(1_001)), "new");
    }

    #[test]
    fn the_bounds_outlast_every_cache_of_the_published_set() {
        assert!(KEY_PUBLISH_LEAD > JWKS_MAX_AGE + JWKS_INSTANCE_CACHE);
        assert!(KEY_REFETCH_INTERVAL < KEY_SET_REFRESH);
    }
}
