//! The use cases: one module per thing a device, a person or an administrator does. Each
//! takes typed input (parsed newtypes, the requester, the clock) and returns a typed
//! outcome; none of them knows HTTP. The functions' handlers call them, and the HTTP layer
//! ([`crate::http`]) renders each outcome in its endpoint's own format, in one place each.
//!
//! Each runs in a `tracing` span with safe fields only (client id, record id, outcome),
//! never a code, a secret or a token.

pub mod decide;
pub mod discovery;
pub mod grants;
pub mod introspection;
pub mod issue_device_code;
pub mod list_device_authorizations;
pub mod look_up;
pub mod manage_clients;
mod page_token;
pub mod poll;
pub mod refresh;
pub mod sign_in;
pub mod signing_keys;
pub mod userinfo;

pub use page_token::{ListPage, PageSize, PageTokens};

use std::error::Error as StdError;

use tracing::Instrument as _;

/// A failure of the store (or of signing) while doing `context`: a 5xx in every format,
/// logged with its whole cause chain, never shown to the caller.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct Internal {
    pub context: &'static str,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl Internal {
    /// What kind of failure it is: the store's classification, or [`Fault::Other`].
    pub fn fault(&self) -> crate::store::Fault {
        self.source
            .downcast_ref::<crate::store::StoreError>()
            .map_or(crate::store::Fault::Other, crate::store::StoreError::fault)
    }

    /// A passing failure (throttled or unavailable): the caller may try again.
    pub fn is_transient(&self) -> bool {
        self.fault() != crate::store::Fault::Other
    }

    pub(crate) fn new(
        context: &'static str,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self {
            context,
            source: Box::new(source),
        }
    }
}

/// Names what was being done when a store call failed.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, Internal>;
}

impl<T, E: StdError + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, context: &'static str) -> Result<T, Internal> {
        self.map_err(|e| Internal::new(context, e))
    }
}

/// A use case's outcome, as its span records it.
pub trait Outcome {
    /// A short, fixed name: `ok`, or the refusal (`authorization_pending`, `not_found`, ...).
    fn outcome(&self) -> &'static str;
}

/// Runs a use case's body inside `span`, records its outcome there (field `outcome`) and
/// counts it.
/// `name` is the use case's name in the metrics (CloudWatch embedded metric format, one line
/// per use case run: [`crate::metrics`]).
///
/// The body is instrumented before the returned future captures it, so that the future holds
/// it once: an `async fn` would hold the argument and its instrumented move side by side
/// (twice a use case's size, copied on every request).
pub(crate) fn in_span<T, E: Outcome>(
    name: &'static str,
    span: tracing::Span,
    body: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    let body = body.instrument(span.clone());
    async move {
        let result = body.await;
        let outcome = result.as_ref().err().map_or("ok", Outcome::outcome);
        span.record("outcome", outcome);
        crate::metrics::count(name, outcome);
        // One event inside the span, so that its fields reach the log at DEBUG.
        span.in_scope(|| tracing::debug!(outcome, "finished"));
        result
    }
}
