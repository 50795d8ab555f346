//! The public half of the signing keys: published by the token function at its cold start
//! (it alone reads the secret), served by discovery as the JWKS (RFC 7517).

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
