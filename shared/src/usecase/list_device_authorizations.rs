//! An administrator lists device authorizations (the admin API): newest first, filtered by
//! status and client, one `Query` of the listing index per page, never a scan.

use super::page_token::InvalidPageToken;
use super::{Context as _, Internal, ListPage, Outcome, PageSize, PageTokens, in_span};
use crate::domain::{ClientId, DeviceAuthorization, Status};
use crate::store::{DeviceFilter, Page, Store};
use crate::time::Clock;
use crate::user_auth::Administrator;

/// The use case's name in the metrics.
pub const NAME: &str = "list_device_authorizations";

/// Which page of which records.
#[derive(Debug, Clone, Default)]
pub struct DeviceListQuery {
    pub status: Option<Status>,
    pub client_id: Option<ClientId>,
    pub size: Option<PageSize>,
    /// The `next_page_token` of the previous page, with the same filters.
    pub page_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    InvalidPageToken(#[from] InvalidPageToken),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl Outcome for ListError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidPageToken(_) => "invalid_page_token",
            Self::Internal(_) => "internal",
        }
    }
}

/// One page of device authorizations. A filtered page may hold fewer items than asked
/// for, even none, and still have a next page: the size bounds what the store reads.
pub async fn list_device_authorizations(
    store: &Store,
    tokens: &PageTokens,
    clock: &dyn Clock,
    admin: &Administrator,
    query: DeviceListQuery,
) -> Result<ListPage<DeviceAuthorization>, ListError> {
    let span = tracing::info_span!(
        "list_device_authorizations",
        admin = %admin.account_id,
        outcome = tracing::field::Empty,
    );
    in_span(NAME, span, async {
        let scope = format!(
            "device:{}:{}",
            query.status.map_or("", Status::as_str),
            query.client_id.as_ref().map_or("", ClientId::as_str)
        );
        let start = query
            .page_token
            .map(|token| tokens.open(&scope, &token))
            .transpose()?;
        let filter = DeviceFilter {
            status: query.status,
            client_id: query.client_id,
        };
        let size = query.size.unwrap_or(PageSize::DEFAULT).get();
        let Page { items, next } = store
            .list_device_authorizations(&filter, size, start, clock.now())
            .await
            .context("listing device authorizations failed")?;
        Ok(ListPage {
            items,
            next_page_token: next.and_then(|key| tokens.sign(&scope, &key)),
        })
    })
    .await
}
