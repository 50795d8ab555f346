//! Clients in the admin API: their view (with the overrides and a deletion under way),
//! the create and `PATCH` bodies, and the answers to a `DELETE`.

use super::*;

/// A client as the admin API shows it. The secret hash never appears.
#[derive(Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub allowed_grant_types: Vec<&'static str>,
    pub allowed_scopes: Vec<String>,
    /// `device_code_lifetime_seconds` and the other overrides, each a number or `null`.
    #[serde(flatten)]
    pub overrides: OverridesView,
    pub created_at: String,
    pub updated_at: String,
    /// Non-empty: a resource server, which may introspect tokens for these audiences.
    pub resource_server_audiences: Vec<String>,
    /// The resources (RFC 8707) its access tokens may be for.
    pub allowed_resources: Vec<String>,
    /// `letters` or `digits`; `null`: the deployment's format.
    pub user_code_charset: Option<&'static str>,
    /// `null`: the deployment's format.
    pub user_code_length: Option<usize>,
    /// `active`, or `deleting` from the first `DELETE` until the last.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion: Option<DeletionView>,
}

/// A client's overrides as the admin API shows them: each [`Setting::field`] with its
/// seconds, or `null` where the deployment's value applies.
pub struct OverridesView(PerSetting<Option<u64>>);

impl Serialize for OverridesView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(Setting::ALL.len()))?;
        for (setting, seconds) in self.0.iter() {
            map.serialize_entry(setting.field(), seconds)?;
        }
        map.end()
    }
}

/// How far a client's deletion has got.
#[derive(Serialize)]
pub struct DeletionView {
    pub started_at: String,
    /// `codes`, `grants` or `settle`.
    pub phase: &'static str,
    pub codes_withdrawn: u64,
    pub grants_revoked: u64,
}

impl From<&Deletion> for DeletionView {
    fn from(d: &Deletion) -> Self {
        Self {
            started_at: d.started_at.to_rfc3339(),
            phase: d.phase.as_str(),
            codes_withdrawn: d.codes_withdrawn,
            grants_revoked: d.grants_revoked,
        }
    }
}

impl From<&OAuthClient> for ClientView {
    fn from(c: &OAuthClient) -> Self {
        Self {
            client_id: c.id.as_str().to_owned(),
            name: c.name.clone(),
            kind: match c.kind {
                ClientKind::Public => "public",
                ClientKind::Confidential { .. } => "confidential",
            },
            allowed_grant_types: c.allowed_grants.iter().map(|g| g.as_str()).collect(),
            allowed_scopes: c.allowed_scopes.iter().map(str::to_owned).collect(),
            overrides: OverridesView(c.overrides.seconds()),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
            resource_server_audiences: c.resource_server_audiences.clone(),
            allowed_resources: c.allowed_resources.clone(),
            user_code_charset: c.user_code_format.map(|f| f.charset().as_str()),
            user_code_length: c.user_code_format.map(|f| f.length()),
            status: if c.deletion.is_some() {
                "deleting"
            } else {
                "active"
            },
            deletion: c.deletion.as_ref().map(DeletionView::from),
        }
    }
}

/// The answer to a `DELETE` of a client: 204 when it is gone; 202 with the progress and
/// `Retry-After` while the clean-up goes on (repeat the `DELETE`).
pub fn client_deletion_response(id: &ClientId, outcome: &DeleteOutcome) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        client_id: &'a str,
        status: &'static str,
        deletion: DeletionView,
    }
    match outcome {
        DeleteOutcome::Deleted => no_content(),
        DeleteOutcome::InProgress {
            deletion,
            retry_after,
        } => {
            let mut response = json_response(
                StatusCode::ACCEPTED,
                &Wire {
                    client_id: id.as_str(),
                    status: "deleting",
                    deletion: DeletionView::from(deletion),
                },
            );
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(
                lambda_http::http::header::RETRY_AFTER,
                lambda_http::http::HeaderValue::from(seconds.max(1)),
            );
            response
        }
    }
}

/// One client.
pub fn client_response(client: &OAuthClient) -> Response<Body> {
    json_response(StatusCode::OK, &ClientView::from(client))
}

/// A client with its secret, which is shown this once; never cached.
pub fn client_with_secret_response(status: StatusCode, created: &WithSecret) -> Response<Body> {
    #[derive(Serialize)]
    struct Wire<'a> {
        #[serde(flatten)]
        client: ClientView,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_secret: Option<&'a str>,
    }
    no_store(json_response(
        status,
        &Wire {
            client: ClientView::from(&created.client),
            client_secret: created.secret.as_ref().map(|s| s.expose()),
        },
    ))
}

/// `{"clients": [...], "next_cursor": ...}`.
pub fn client_list_response(page: &ListPage<OAuthClient>) -> Response<Body> {
    list_response::<_, ClientView>("clients", page)
}

/// `POST /admin/oauth/clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateClientRequest {
    /// Generated when absent.
    #[serde(default)]
    pub client_id: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ClientType,
    pub allowed_grant_types: Vec<String>,
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
    #[serde(default)]
    pub device_code_lifetime_seconds: Option<u64>,
    #[serde(default)]
    pub poll_interval_seconds: Option<u64>,
    #[serde(default)]
    pub access_token_lifetime_seconds: Option<u64>,
    #[serde(default)]
    pub refresh_token_idle_lifetime_seconds: Option<u64>,
    #[serde(default)]
    pub refresh_token_absolute_lifetime_seconds: Option<u64>,
    /// Makes a confidential client a resource server for these audiences.
    #[serde(default)]
    pub resource_server_audiences: Vec<String>,
    /// The resources (RFC 8707) its access tokens may be for.
    #[serde(default)]
    pub allowed_resources: Vec<String>,
    /// `letters` or `digits`; absent: the deployment's format.
    #[serde(default)]
    pub user_code_charset: Option<String>,
    /// Absent: the charset's shortest (or the deployment's format, without a charset).
    #[serde(default)]
    pub user_code_length: Option<usize>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Public,
    Confidential,
}

fn scopes(scopes: &[String]) -> Result<ScopeSet, ClientError> {
    Ok(ScopeSet::from_tokens(scopes.iter().map(String::as_str))?)
}

impl CreateClientRequest {
    /// The registration this body asks for, every field checked by the client's own rules.
    pub fn into_new_client(self) -> Result<NewClient, ClientError> {
        let id = match &self.client_id {
            Some(id) => ClientId::parse(id).ok_or(ClientError::ClientId)?,
            None => ClientId::generate(),
        };
        Ok(NewClient {
            id,
            name: ClientName::parse(&self.name)?,
            confidential: matches!(self.kind, ClientType::Confidential),
            allowed_grants: parse_grants(self.allowed_grant_types.iter().map(String::as_str))?,
            allowed_scopes: scopes(&self.allowed_scopes)?,
            overrides: ClientOverrides::from_seconds(PerSetting {
                device_code_lifetime: self.device_code_lifetime_seconds,
                poll_interval: self.poll_interval_seconds,
                access_token_lifetime: self.access_token_lifetime_seconds,
                refresh_token_idle_lifetime: self.refresh_token_idle_lifetime_seconds,
                refresh_token_absolute_lifetime: self.refresh_token_absolute_lifetime_seconds,
            })?,
            resource_server_audiences: match parse_audiences(&self.resource_server_audiences)? {
                audiences if !audiences.is_empty() && matches!(self.kind, ClientType::Public) => {
                    return Err(ClientError::PublicResourceServer);
                }
                audiences => audiences,
            },
            allowed_resources: parse_allowed_resources(&self.allowed_resources)?,
            user_code_format: match (self.user_code_charset.as_deref(), self.user_code_length) {
                (None, None) => None,
                (charset, len) => Some(user_code_format(
                    charset
                        .map(charset_of)
                        .transpose()?
                        .unwrap_or(Charset::Letters),
                    len,
                )?),
            },
        })
    }
}

fn charset_of(name: &str) -> Result<Charset, ClientError> {
    Charset::parse(name).ok_or(ClientError::UserCodeCharset)
}

/// `PATCH /admin/oauth/clients/{id}`: absent fields stay; `null` clears a lifetime.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchClientRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    allowed_grant_types: Option<Vec<String>>,
    #[serde(default)]
    allowed_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    device_code_lifetime_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    poll_interval_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    access_token_lifetime_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    refresh_token_idle_lifetime_seconds: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    refresh_token_absolute_lifetime_seconds: Option<Option<u64>>,
    #[serde(default)]
    resource_server_audiences: Option<Vec<String>>,
    #[serde(default)]
    allowed_resources: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    user_code_charset: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    user_code_length: Option<Option<usize>>,
    #[serde(default)]
    rotate_secret: bool,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

impl PatchClientRequest {
    /// The changes this body asks for, every field checked by the client's own rules.
    pub fn into_changes(self) -> Result<ClientChanges, ClientError> {
        let seconds = PerSetting {
            device_code_lifetime: self.device_code_lifetime_seconds,
            poll_interval: self.poll_interval_seconds,
            access_token_lifetime: self.access_token_lifetime_seconds,
            refresh_token_idle_lifetime: self.refresh_token_idle_lifetime_seconds,
            refresh_token_absolute_lifetime: self.refresh_token_absolute_lifetime_seconds,
        };
        Ok(ClientChanges {
            name: self.name.as_deref().map(ClientName::parse).transpose()?,
            allowed_grants: self
                .allowed_grant_types
                .as_ref()
                .map(|g| parse_grants(g.iter().map(String::as_str)))
                .transpose()?,
            allowed_scopes: self.allowed_scopes.as_deref().map(scopes).transpose()?,
            overrides: PerSetting::try_from_fn(|setting| {
                seconds
                    .get(setting)
                    .map(|v| setting.parse_optional(v))
                    .transpose()
            })?,
            resource_server_audiences: self
                .resource_server_audiences
                .as_deref()
                .map(parse_audiences)
                .transpose()?,
            allowed_resources: self
                .allowed_resources
                .as_deref()
                .map(parse_allowed_resources)
                .transpose()?,
            user_code_charset: self
                .user_code_charset
                .map(|charset| charset.as_deref().map(charset_of).transpose())
                .transpose()?,
            user_code_length: self.user_code_length,
            rotate_secret: self.rotate_secret,
        })
    }
}
