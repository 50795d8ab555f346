//! OAuth clients as items: settings, generation, resource-server audiences and a
//! deletion under way.

use super::*;

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
    let seconds = |d: Duration| n(d.as_secs());
    if let Some(d) = client.device_code_lifetime {
        put(attr::DEVICE_CODE_LIFETIME, seconds(d));
    }
    if let Some(d) = client.poll_interval {
        put(attr::POLL_INTERVAL, seconds(d));
    }
    if let Some(d) = client.access_token_lifetime {
        put(attr::ACCESS_TOKEN_LIFETIME, seconds(d));
    }
    if let Some(d) = client.refresh_token_idle_lifetime {
        put(attr::REFRESH_IDLE, seconds(d));
    }
    if let Some(d) = client.refresh_token_absolute_lifetime {
        put(attr::REFRESH_ABSOLUTE, seconds(d));
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
    let seconds = |name| Ok::<_, StoreError>(r.opt_number(name)?.map(Duration::from_secs));
    Ok(OAuthClient {
        id: ClientId::parse(r.string(attr::CLIENT_ID)?)
            .ok_or(StoreError::Corrupt(attr::CLIENT_ID))?,
        name: r.string(attr::NAME)?.to_owned(),
        kind,
        allowed_grants,
        allowed_scopes: ScopeSet::parse(r.opt_string(attr::ALLOWED_SCOPES)?.unwrap_or_default())
            .map_err(|_| StoreError::Corrupt(attr::ALLOWED_SCOPES))?,
        device_code_lifetime: seconds(attr::DEVICE_CODE_LIFETIME)?,
        poll_interval: seconds(attr::POLL_INTERVAL)?,
        access_token_lifetime: seconds(attr::ACCESS_TOKEN_LIFETIME)?,
        refresh_token_idle_lifetime: seconds(attr::REFRESH_IDLE)?,
        refresh_token_absolute_lifetime: seconds(attr::REFRESH_ABSOLUTE)?,
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
