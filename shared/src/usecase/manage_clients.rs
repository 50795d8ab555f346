//! An administrator manages OAuth clients: create (a confidential client's secret is
//! returned once and stored only as a hash), read, list, change, and delete (in bounded,
//! resumable steps that withdraw the client's codes and revoke its grants before the
//! client item goes: [`delete_client`]).

use std::time::{Duration, Instant};

use super::page_token::InvalidPageToken;
use super::{Context as _, Internal, ListPage, Outcome, PageSize, PageTokens, in_span};
use crate::config::ClientDeletion;
use crate::domain::{
    ClientChanges, ClientError, ClientId, ClientSecret, Deletion, DeletionPhase,
    MAX_DEVICE_CODE_LIFETIME, NewClient, OAuthClient,
};
use crate::store::{ChangeClientError, CreateClientError, Page, Store};
use crate::time::{Clock, Timestamp};
use crate::user_auth::Administrator;

/// The use cases' name in the metrics (one for every operation on clients).
pub const NAME: &str = "manage_clients";

/// A client with its secret, which is shown this once (at creation or rotation). No
/// `Debug`: it holds the secret.
pub struct WithSecret {
    pub client: OAuthClient,
    pub secret: Option<ClientSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientAdminError {
    #[error("no such client")]
    NotFound,
    /// The id is taken: by a client, or by one whose deletion is unfinished.
    #[error("a client with this client_id exists, or is still being deleted")]
    AlreadyExists,
    /// The client is being deleted; only another `DELETE` goes on with it.
    #[error("the client is being deleted")]
    BeingDeleted,
    /// Someone else changed the client since it was read.
    #[error("the client was changed by another request")]
    Conflict,
    #[error(transparent)]
    Invalid(#[from] ClientError),
    #[error(transparent)]
    InvalidPageToken(#[from] InvalidPageToken),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for ClientAdminError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::BeingDeleted => "being_deleted",
            Self::Conflict => "conflict",
            Self::Invalid(_) => "invalid",
            Self::InvalidPageToken(_) => "invalid_page_token",
            Self::Internal(_) => "internal",
        }
    }
}

fn span(
    action: &'static str,
    admin: &Administrator,
    client_id: Option<&ClientId>,
) -> tracing::Span {
    tracing::info_span!(
        NAME,
        action,
        admin = %admin.account_id,
        client_id = client_id.map(ClientId::as_str),
        outcome = tracing::field::Empty,
    )
}

/// Registers `new`; the one path for the admin API and for seeding the local demo clients.
pub async fn create_client(
    store: &Store,
    admin: &Administrator,
    new: NewClient,
    now: Timestamp,
) -> Result<WithSecret, ClientAdminError> {
    in_span(NAME, span("create", admin, Some(&new.id)), async {
        let (client, secret) = new.register(now);
        match store.create_client(&client).await {
            Ok(()) => {}
            Err(CreateClientError::AlreadyExists) => {
                return Err(ClientAdminError::AlreadyExists);
            }
            Err(CreateClientError::Store(e)) => {
                return Err(Internal::new("creating a client failed", e).into());
            }
        }
        tracing::info!("client created");
        Ok(WithSecret { client, secret })
    })
    .await
}

/// One client.
pub async fn read_client(
    store: &Store,
    admin: &Administrator,
    id: &ClientId,
) -> Result<OAuthClient, ClientAdminError> {
    in_span(NAME, span("read", admin, Some(id)), read(store, id)).await
}

async fn read(store: &Store, id: &ClientId) -> Result<OAuthClient, ClientAdminError> {
    store
        .get_client(id)
        .await
        .context("reading a client failed")?
        .ok_or(ClientAdminError::NotFound)
}

/// One page of clients, newest first.
pub async fn list_clients(
    store: &Store,
    tokens: &PageTokens,
    admin: &Administrator,
    size: Option<PageSize>,
    page_token: Option<String>,
) -> Result<ListPage<OAuthClient>, ClientAdminError> {
    const SCOPE: &str = "clients";
    in_span(NAME, span("list", admin, None), async {
        let start = page_token
            .map(|token| tokens.open(SCOPE, &token))
            .transpose()?;
        let Page { items, next } = store
            .list_clients(size.unwrap_or(PageSize::DEFAULT).get(), start)
            .await
            .context("listing clients failed")?;
        Ok(ListPage {
            items,
            next_page_token: next.and_then(|key| tokens.sign(SCOPE, &key)),
        })
    })
    .await
}

/// Applies `changes` to the client, unless someone else changed it since it was read
/// (then [`ClientAdminError::Conflict`]: read it again and repeat). The changes affect
/// only future operations.
pub async fn update_client(
    store: &Store,
    clock: &dyn Clock,
    admin: &Administrator,
    id: &ClientId,
    changes: ClientChanges,
) -> Result<WithSecret, ClientAdminError> {
    in_span(NAME, span("update", admin, Some(id)), async {
        let mut client = read(store, id).await?;
        if client.deletion.is_some() {
            return Err(ClientAdminError::BeingDeleted);
        }
        let previous_update = client.updated_at;
        let rotated = changes.rotate_secret;
        let secret = client.apply(changes, clock.now())?;
        match store.replace_client(&client, previous_update).await {
            Ok(()) => {}
            Err(ChangeClientError::NotFound) => return Err(ClientAdminError::NotFound),
            Err(ChangeClientError::Conflict) => return Err(ClientAdminError::Conflict),
            Err(ChangeClientError::Store(e)) => {
                return Err(Internal::new("updating a client failed", e).into());
            }
        }
        if rotated {
            tracing::info!("client secret rotated");
        } else {
            tracing::info!("client updated");
        }
        Ok(WithSecret { client, secret })
    })
    .await
}

/// Where a deletion stands after a `DELETE`.
#[derive(Debug)]
pub enum DeleteOutcome {
    /// Everything is withdrawn and revoked and the client item is gone (204).
    Deleted,
    /// The client is marked and gets nothing; the clean-up has more to do. Repeat the
    /// `DELETE` (202, with this progress), after `retry_after` at the earliest.
    InProgress {
        deletion: Deletion,
        retry_after: Duration,
    },
}

/// Deletes a client, in bounded steps across repeated `DELETE`s:
///
/// 1. The first marks the client as being deleted (one conditional `UpdateItem`). From
///    then on it authenticates nowhere and may use no grant; every instance sees that
///    within the client cache's lifetime (`CLIENT_CACHE_SECONDS`), and a code exchange
///    that checks the client in its transaction at once.
/// 2. Each `DELETE` then runs up to `steps_per_request` steps (and stops after 5 s): a
///    step withdraws one page of the client's live codes, or revokes one page of its
///    grants, and saves where it got to on the client item, so a `DELETE` cut off by a
///    fault or a timeout loses at most one step, which the next one repeats.
/// 3. Once `settle` has passed since the mark (no instance can still act on the client
///    as it was, and no request in flight at the mark can still write), a last sweep ends
///    what was created since just before the mark, and the client item is removed: 204.
///
/// Until then the `DELETE` answers 202 with the progress. While the client item exists,
/// its id cannot be registered again (409); a client registered later is a new
/// incarnation ([`crate::domain::ClientGeneration`]) and inherits nothing.
pub async fn delete_client(
    store: &Store,
    clock: &dyn Clock,
    settings: &ClientDeletion,
    admin: &Administrator,
    id: &ClientId,
) -> Result<DeleteOutcome, ClientAdminError> {
    in_span(NAME, span("delete", admin, Some(id)), async {
        let started = Instant::now();
        let mut deletion = mark(store, clock, id).await?;
        let step = i32::try_from(settings.step).unwrap_or(i32::MAX);
        for _ in 0..settings.steps_per_request {
            let now = clock.now();
            let mut next = deletion.clone();
            let (done, counter, then) = match deletion.phase {
                DeletionPhase::Codes => {
                    // No live code is older than the longest code lifetime.
                    let since = deletion.started_at.minus(MAX_DEVICE_CODE_LIFETIME);
                    let cursor = deletion.cursor.as_deref();
                    let done = store
                        .withdraw_codes_step(id, since, cursor, step, now)
                        .await
                        .context("withdrawing the client's codes failed")?;
                    (done, &mut next.codes_withdrawn, DeletionPhase::Grants)
                }
                DeletionPhase::Grants => {
                    let done = store
                        .revoke_grants_step(id, deletion.cursor.as_deref(), step, now)
                        .await
                        .context("revoking the client's grants failed")?;
                    (done, &mut next.grants_revoked, DeletionPhase::Settle)
                }
                DeletionPhase::Settle => {
                    let settled_at = deletion.started_at.plus(settings.settle);
                    if now < settled_at {
                        let wait = Duration::from_millis(settled_at.as_millis() - now.as_millis());
                        return Ok(DeleteOutcome::InProgress {
                            deletion,
                            retry_after: wait,
                        });
                    }
                    let since = deletion.started_at.minus(settings.settle);
                    let (codes, grants) = store
                        .sweep_client_since(id, since, now)
                        .await
                        .context("the last sweep of the client's records failed")?;
                    store
                        .remove_deleted_client(id, deletion.started_at)
                        .await
                        .context("removing the deleted client failed")?;
                    tracing::info!(
                        codes_withdrawn = deletion.codes_withdrawn + codes,
                        grants_revoked = deletion.grants_revoked + grants,
                        "client deleted"
                    );
                    return Ok(DeleteOutcome::Deleted);
                }
            };
            *counter += done.done;
            next.cursor = done.next;
            if next.cursor.is_none() {
                next.phase = then;
            }
            let saved = store
                .save_deletion(id, &deletion, &next)
                .await
                .context("saving the deletion's progress failed")?;
            if !saved {
                // Another DELETE got further; it goes on from there.
                return match read(store, id).await {
                    Ok(client) => Ok(DeleteOutcome::InProgress {
                        deletion: client.deletion.unwrap_or(next),
                        retry_after: Duration::from_secs(1),
                    }),
                    Err(ClientAdminError::NotFound) => Ok(DeleteOutcome::Deleted),
                    Err(e) => Err(e),
                };
            }
            deletion = next;
            if started.elapsed() >= STEP_BUDGET {
                break;
            }
        }
        tracing::info!(
            phase = deletion.phase.as_str(),
            codes_withdrawn = deletion.codes_withdrawn,
            grants_revoked = deletion.grants_revoked,
            "client deletion under way"
        );
        Ok(DeleteOutcome::InProgress {
            deletion,
            retry_after: Duration::from_secs(1),
        })
    })
    .await
}

/// The client's deletion: the one under way, or a new one (the mark). A `PATCH` between
/// the read and the mark makes the mark fail; it is read and tried again, 3 times in all.
async fn mark(
    store: &Store,
    clock: &dyn Clock,
    id: &ClientId,
) -> Result<Deletion, ClientAdminError> {
    for _ in 0..3 {
        let client = read(store, id).await?;
        if let Some(deletion) = client.deletion {
            return Ok(deletion);
        }
        let marked = store
            .mark_client_deleting(&client, clock.now())
            .await
            .context("marking the client as being deleted failed")?;
        if let Some(deletion) = marked.and_then(|client| client.deletion) {
            tracing::info!("client marked as being deleted");
            return Ok(deletion);
        }
    }
    Err(ClientAdminError::Conflict)
}

/// How long one `DELETE` keeps stepping: well inside the function's 10-second timeout,
/// leaving room for one more step and the answer.
const STEP_BUDGET: Duration = Duration::from_secs(5);
