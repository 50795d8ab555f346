//! Grants and their refresh tokens' records as items.

use super::*;

/// A grant as an item, listed by account (`gsi1`) and by client (`gsi2`), kept
/// `retention` past its expiry before TTL.
pub fn grant_to_item(grant: &Grant, retention: Duration) -> Item {
    let mut item = grant_key(&grant.id);
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put(attr::GRANT_ID, s(grant.id.as_str()));
    put(attr::ACCOUNT_ID, s(grant.account_id.clone()));
    put(attr::CLIENT_ID, s(grant.client_id.as_str()));
    if !grant.client_generation.is_empty() {
        put(attr::CLIENT_GENERATION, s(grant.client_generation.as_str()));
    }
    put(attr::CLIENT_NAME, s(grant.client_name.clone()));
    if !grant.scope.is_empty() {
        put(attr::SCOPE, s(grant.scope.to_string()));
    }
    if let Some(ip) = &grant.device.ip {
        put(attr::DEVICE_IP, s(ip.clone()));
    }
    if let Some(user_agent) = &grant.device.user_agent {
        put(attr::DEVICE_USER_AGENT, s(user_agent.clone()));
    }
    put(
        attr::DEVICE_AUTHORIZATION_ID,
        s(grant.device_authorization_id.as_str()),
    );
    put(
        attr::PUBLIC_CLIENT,
        AttributeValue::Bool(grant.public_client),
    );
    put(
        attr::ACCESS_TOKEN_LIFETIME,
        n(grant.access_token_lifetime.as_secs()),
    );
    if let Some(policy) = grant.refresh {
        put(attr::REFRESH_IDLE, n(policy.idle.as_secs()));
        put(attr::REFRESH_ABSOLUTE, n(policy.absolute.as_secs()));
    }
    if !grant.resources.is_empty() {
        put(attr::RESOURCES, string_list(&grant.resources));
    }
    if let Some(profile) = grant.profile.to_stored() {
        put(attr::PROFILE, s(profile));
    }
    put(attr::APPROVED_AT, time(grant.approved_at));
    put(attr::CREATED_AT, time(grant.created_at));
    put(attr::LAST_USED_AT, time(grant.last_used_at));
    put(attr::EXPIRES_AT, time(grant.expires_at));
    if let Some(revocation) = grant.revoked {
        put(attr::REVOKED_AT, time(revocation.at));
        put(attr::REVOKED_REASON, s(revocation.reason.as_str()));
    }
    put(TTL_ATTRIBUTE, n(ttl(grant.expires_at, retention)));
    let sort_key = list_sort_key(grant.created_at, grant.id.as_str());
    put(
        LIST_INDEX_PARTITION_KEY,
        s(account_grants_partition(&grant.account_id)),
    );
    put(LIST_INDEX_SORT_KEY, s(sort_key.clone()));
    put(
        CLIENT_INDEX_PARTITION_KEY,
        s(client_grants_partition(
            &grant.client_id,
            shard_of(grant.id.as_str()),
        )),
    );
    put(CLIENT_INDEX_SORT_KEY, s(sort_key));
    item
}

pub fn grant_from_item(item: &Item) -> Result<Grant, StoreError> {
    let r = Reader(item);
    let revoked = match r.opt_time(attr::REVOKED_AT)? {
        Some(at) => Some(Revocation {
            at,
            reason: RevokeReason::parse(r.string(attr::REVOKED_REASON)?)
                .ok_or(StoreError::Corrupt(attr::REVOKED_REASON))?,
        }),
        None => None,
    };
    Ok(Grant {
        id: r.grant_id(attr::GRANT_ID)?,
        account_id: r.string(attr::ACCOUNT_ID)?.to_owned(),
        client_id: ClientId::parse(r.string(attr::CLIENT_ID)?)
            .ok_or(StoreError::Corrupt(attr::CLIENT_ID))?,
        client_generation: r.generation(attr::CLIENT_GENERATION)?,
        client_name: r.string(attr::CLIENT_NAME)?.to_owned(),
        scope: ScopeSet::parse(r.opt_string(attr::SCOPE)?.unwrap_or_default())
            .map_err(|_| StoreError::Corrupt(attr::SCOPE))?,
        device: DeviceDetails {
            ip: r.opt_string(attr::DEVICE_IP)?.map(str::to_owned),
            user_agent: r.opt_string(attr::DEVICE_USER_AGENT)?.map(str::to_owned),
        },
        device_authorization_id: DeviceAuthorizationId::parse(
            r.string(attr::DEVICE_AUTHORIZATION_ID)?,
        )
        .ok_or(StoreError::Corrupt(attr::DEVICE_AUTHORIZATION_ID))?,
        public_client: r.boolean(attr::PUBLIC_CLIENT)?,
        access_token_lifetime: Duration::from_secs(r.number(attr::ACCESS_TOKEN_LIFETIME)?),
        refresh: r.refresh_policy()?,
        resources: r.string_list(attr::RESOURCES)?,
        profile: r.profile()?,
        // Grants written before approvals were kept on them: their creation is close.
        approved_at: match r.opt_time(attr::APPROVED_AT)? {
            Some(at) => at,
            None => r.time(attr::CREATED_AT)?,
        },
        created_at: r.time(attr::CREATED_AT)?,
        last_used_at: r.time(attr::LAST_USED_AT)?,
        expires_at: r.time(attr::EXPIRES_AT)?,
        revoked,
    })
}

/// A refresh token's record, kept `retention` past its expiry before TTL (a rotated token
/// stays that long, so that its reuse is recognised).
pub fn refresh_to_item(record: &RefreshRecord, retention: Duration) -> Item {
    let mut item = refresh_key(&record.hash);
    item.insert(attr::GRANT_ID.to_owned(), s(record.grant_id.as_str()));
    item.insert(attr::CLIENT_ID.to_owned(), s(record.client_id.as_str()));
    item.insert(attr::ISSUED_AT.to_owned(), time(record.issued_at));
    item.insert(attr::EXPIRES_AT.to_owned(), time(record.expires_at));
    if let Some(at) = record.rotated_at {
        item.insert(attr::ROTATED_AT.to_owned(), time(at));
    }
    item.insert(
        TTL_ATTRIBUTE.to_owned(),
        n(ttl(record.expires_at, retention)),
    );
    item
}

pub fn refresh_from_item(item: &Item) -> Result<RefreshRecord, StoreError> {
    let r = Reader(item);
    let hash = r
        .string(PARTITION_KEY)?
        .strip_prefix(REFRESH_KIND)
        .and_then(|rest| rest.strip_prefix('#'))
        .and_then(RefreshTokenHash::parse)
        .ok_or(StoreError::Corrupt(PARTITION_KEY))?;
    Ok(RefreshRecord {
        hash,
        grant_id: r.grant_id(attr::GRANT_ID)?,
        client_id: ClientId::parse(r.string(attr::CLIENT_ID)?)
            .ok_or(StoreError::Corrupt(attr::CLIENT_ID))?,
        issued_at: r.time(attr::ISSUED_AT)?,
        expires_at: r.time(attr::EXPIRES_AT)?,
        rotated_at: r.opt_time(attr::ROTATED_AT)?,
    })
}
