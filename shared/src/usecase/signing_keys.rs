//! The public half of the signing keys: published by the token function at its cold start
//! (it alone reads the secret), served by discovery as the JWKS (RFC 7517).

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::{Context as _, Internal};
use crate::store::Store;
use crate::token::KeySet;

/// Publishes `keys`' JWKS, unless a newer version is already published (a stale
/// instance never rolls the published keys back). Returns whether it wrote.
pub async fn publish_keys(store: &Store, keys: &KeySet) -> Result<bool, Internal> {
    let written = store
        .publish_jwks(&keys.jwks_json(), keys.version())
        .await
        .context("publishing the JWKS failed")?;
    tracing::info!(version = keys.version(), written, "signing keys published");
    Ok(written)
}

/// The published JWKS document, `None` before the token function first started.
pub async fn published_keys_if_any(store: &Store) -> Result<Option<String>, Internal> {
    store.get_jwks().await.context("reading the JWKS failed")
}

/// The publication of one instance's key set, started at cold start without holding it up
/// (the first `next` of the Runtime API does not wait for the table) and awaited before
/// the instance's first signature, so that no token is ever signed with a key that is not
/// published. Publishing is conditional on the version, as [`publish_keys`] is: a stale
/// instance never rolls the published keys back.
pub struct KeyPublication {
    store: Store,
    jwks: String,
    version: u64,
    done: OnceCell<()>,
}

impl KeyPublication {
    pub fn new(store: &Store, keys: &KeySet) -> Arc<Self> {
        Arc::new(Self {
            store: store.clone(),
            jwks: keys.jwks_json(),
            version: keys.version(),
            done: OnceCell::new(),
        })
    }

    /// A publication already under way: spawned on the current runtime, so that it runs
    /// while the instance asks for its first request.
    pub fn start(store: &Store, keys: &KeySet) -> Arc<Self> {
        let publication = Self::new(store, keys);
        let background = Arc::clone(&publication);
        tokio::spawn(async move {
            if let Err(e) = background.ensure().await {
                tracing::warn!(
                    error = %e,
                    "publishing the signing keys failed; the first signature tries again"
                );
            }
        });
        publication
    }

    /// Publishes once; concurrent callers wait for the same attempt, and a failed attempt
    /// is tried again by the next caller.
    pub async fn ensure(&self) -> Result<(), Internal> {
        self.done
            .get_or_try_init(|| async {
                let written = self
                    .store
                    .publish_jwks(&self.jwks, self.version)
                    .await
                    .context("publishing the JWKS failed")?;
                tracing::info!(version = self.version, written, "signing keys published");
                Ok::<_, Internal>(())
            })
            .await
            .map(|_| ())
    }
}
