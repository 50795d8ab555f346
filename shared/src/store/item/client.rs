//! OAuth clients as items: settings, generation, resource-server audiences and a
//! deletion under way.

use super::*;
use crate::domain::{Charset, UserCodeFormat};

/// A client as an item, listed in the clients partition of `gsi1`.
pub fn client_to_item(client: &OAuthClient) -> Item {
    let mut item = client_key(&client.id);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::CLIENT_ID, s(client.id.as_str()));
    put(attr::NAME, s(client.name.clone()));
    match &client.kind {
        ClientKind::Public => put(attr::CLIENT_TYPE, s("public")),
        ClientKind::Confidential { secret_hash } => {
            put(attr::CLIENT_TYPE, s("confidential"));
            put(attr::SECRET_HASH, s(secret_hash.as_str()));
        }
    }
    put(
        attr::ALLOWED_GRANTS,
        AttributeValue::L(
            client
                .allowed_grants
                .iter()
                .map(|g| s(g.as_str()))
                .collect(),
        ),
    );
    if !client.allowed_scopes.is_empty() {
        put(attr::ALLOWED_SCOPES, s(client.allowed_scopes.to_string()));
    }
    for (setting, seconds) in client.overrides.seconds().iter() {
        if let Some(seconds) = seconds {
            put(override_attribute(setting), n(*seconds));
        }
    }
    put(attr::CREATED_AT, time(client.created_at));
    put(attr::UPDATED_AT, time(client.updated_at));
    if !client.generation.is_empty() {
        put(attr::GENERATION, s(client.generation.as_str()));
    }
    if !client.resource_server_audiences.is_empty() {
        put(
            attr::RESOURCE_SERVER_AUDIENCES,
            AttributeValue::L(
                client
                    .resource_server_audiences
                    .iter()
                    .map(|a| s(a.clone()))
                    .collect(),
            ),
        );
    }
    if !client.allowed_resources.is_empty() {
        put(
            attr::ALLOWED_RESOURCES,
            super::string_list(&client.allowed_resources),
        );
    }
    if let Some(format) = client.user_code_format {
        put(attr::USER_CODE_CHARSET, s(format.charset().as_str()));
        put(attr::USER_CODE_LENGTH, n(format.length() as u64));
    }
    if let Some(deletion) = &client.deletion {
        put(attr::DELETING_AT, time(deletion.started_at));
        put(attr::DELETION_PHASE, s(deletion.phase.as_str()));
        if let Some(cursor) = &deletion.cursor {
            put(attr::DELETION_CURSOR, s(cursor.clone()));
        }
        put(attr::CODES_WITHDRAWN, n(deletion.codes_withdrawn));
        put(attr::GRANTS_REVOKED, n(deletion.grants_revoked));
    }
    put(LIST_INDEX_PARTITION_KEY, s(clients_partition()));
    put(
        LIST_INDEX_SORT_KEY,
        s(list_sort_key(client.created_at, client.id.as_str())),
    );
    item
}

/// The attribute that holds a client's override of `setting`, in whole seconds.
fn override_attribute(setting: Setting) -> &'static str {
    match setting {
        Setting::DeviceCodeLifetime => attr::DEVICE_CODE_LIFETIME,
        Setting::PollInterval => attr::POLL_INTERVAL,
        Setting::AccessTokenLifetime => attr::ACCESS_TOKEN_LIFETIME,
        Setting::RefreshTokenIdleLifetime => attr::REFRESH_IDLE,
        Setting::RefreshTokenAbsoluteLifetime => attr::REFRESH_ABSOLUTE,
    }
}

pub fn client_from_item(item: &Item) -> Result<OAuthClient, StoreError> {
    let r = Reader(item);
    let kind = match r.string(attr::CLIENT_TYPE)? {
        "public" => ClientKind::Public,
        "confidential" => ClientKind::Confidential {
            secret_hash: SecretHash::from_stored(r.string(attr::SECRET_HASH)?.to_owned()),
        },
        _ => return Err(StoreError::Corrupt(attr::CLIENT_TYPE)),
    };
    let allowed_grants = match item.get(attr::ALLOWED_GRANTS) {
        Some(AttributeValue::L(values)) => values
            .iter()
            .map(|v| v.as_s().ok().and_then(|g| GrantType::parse(g)))
            .collect::<Option<Vec<_>>>()
            .ok_or(StoreError::Corrupt(attr::ALLOWED_GRANTS))?,
        _ => return Err(StoreError::Corrupt(attr::ALLOWED_GRANTS)),
    };
    Ok(OAuthClient {
        id: ClientId::parse(r.string(attr::CLIENT_ID)?)
            .ok_or(StoreError::Corrupt(attr::CLIENT_ID))?,
        name: r.string(attr::NAME)?.to_owned(),
        kind,
        allowed_grants,
        allowed_scopes: ScopeSet::parse(r.opt_string(attr::ALLOWED_SCOPES)?.unwrap_or_default())
            .map_err(|_| StoreError::Corrupt(attr::ALLOWED_SCOPES))?,
        overrides: ClientOverrides::try_from_fn(|setting| {
            let seconds = r.opt_number(override_attribute(setting))?;
            Ok::<_, StoreError>(seconds.map(Duration::from_secs))
        })?,
        created_at: r.time(attr::CREATED_AT)?,
        updated_at: r.time(attr::UPDATED_AT)?,
        resource_server_audiences: match item.get(attr::RESOURCE_SERVER_AUDIENCES) {
            None => Vec::new(),
            Some(AttributeValue::L(values)) => values
                .iter()
                .map(|v| v.as_s().ok().cloned())
                .collect::<Option<Vec<_>>>()
                .ok_or(StoreError::Corrupt(attr::RESOURCE_SERVER_AUDIENCES))?,
            Some(_) => return Err(StoreError::Corrupt(attr::RESOURCE_SERVER_AUDIENCES)),
        },
        allowed_resources: r.string_list(attr::ALLOWED_RESOURCES)?,
        user_code_format: match r.opt_string(attr::USER_CODE_CHARSET)? {
            None => None,
            Some(charset) => {
                let charset =
                    Charset::parse(charset).ok_or(StoreError::Corrupt(attr::USER_CODE_CHARSET))?;
                let len = r.number(attr::USER_CODE_LENGTH)?;
                Some(
                    UserCodeFormat::new(charset, Some(len as usize))
                        .map_err(|_| StoreError::Corrupt(attr::USER_CODE_LENGTH))?,
                )
            }
        },
        generation: r.generation(attr::GENERATION)?,
        deletion: match r.opt_time(attr::DELETING_AT)? {
            None => None,
            Some(started_at) => Some(Deletion {
                started_at,
                phase: DeletionPhase::parse(r.string(attr::DELETION_PHASE)?)
                    .ok_or(StoreError::Corrupt(attr::DELETION_PHASE))?,
                cursor: r.opt_string(attr::DELETION_CURSOR)?.map(str::to_owned),
                codes_withdrawn: r.opt_number(attr::CODES_WITHDRAWN)?.unwrap_or(0),
                grants_revoked: r.opt_number(attr::GRANTS_REVOKED)?.unwrap_or(0),
            }),
        },
    })
}
