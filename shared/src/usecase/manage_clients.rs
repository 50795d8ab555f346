//! An administrator manages OAuth clients: create (a confidential client's secret is
//! returned once and stored only as a hash), read, list, change, and delete (which also
//! revokes the client's pending requests, so that none can be approved afterwards).

use super::page_token::InvalidPageToken;
use super::{Context as _, Internal, ListPage, Outcome, PageSize, PageTokens, in_span};
use crate::domain::{
    ClientChanges, ClientError, ClientId, ClientSecret, MAX_DEVICE_CODE_LIFETIME, NewClient,
    OAuthClient,
};
use crate::store::{ChangeClientError, CreateClientError, Page, Store};
use crate::time::{Clock, Timestamp};
use crate::user_auth::Administrator;

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
    #[error("a client with this client_id exists")]
    AlreadyExists,
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
        "manage_clients",
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
    in_span(
        "manage_clients",
        span("create", admin, Some(&new.id)),
        async {
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
        },
    )
    .await
}

/// One client.
pub async fn read_client(
    store: &Store,
    admin: &Administrator,
    id: &ClientId,
) -> Result<OAuthClient, ClientAdminError> {
    in_span(
        "manage_clients",
        span("read", admin, Some(id)),
        read(store, id),
    )
    .await
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
    in_span("manage_clients", span("list", admin, None), async {
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
    in_span("manage_clients", span("update", admin, Some(id)), async {
        let mut client = read(store, id).await?;
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

/// Deletes the client, denies its pending requests (none is older than the longest code
/// lifetime, so only that slice of the listing is read) and revokes its grants (its own
/// partition of the client index). Returns how many requests it denied.
pub async fn delete_client(
    store: &Store,
    clock: &dyn Clock,
    admin: &Administrator,
    id: &ClientId,
) -> Result<usize, ClientAdminError> {
    in_span("manage_clients", span("delete", admin, Some(id)), async {
        match store.delete_client(id).await {
            Ok(()) => {}
            // Deleting checks only existence, so a conflict cannot happen here.
            Err(ChangeClientError::NotFound | ChangeClientError::Conflict) => {
                return Err(ClientAdminError::NotFound);
            }
            Err(ChangeClientError::Store(e)) => {
                return Err(Internal::new("deleting a client failed", e).into());
            }
        }
        let now = clock.now();
        let since = Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(MAX_DEVICE_CODE_LIFETIME.as_millis() as u64),
        );
        let revoked = store
            .revoke_pending(id, since, now)
            .await
            .context("revoking the client's pending requests failed")?;
        let grants_revoked = store
            .revoke_client_grants(id, now)
            .await
            .context("revoking the client's grants failed")?;
        tracing::info!(revoked, grants_revoked, "client deleted");
        Ok(revoked)
    })
    .await
}
