//! Client identification and authentication at the OAuth endpoints (RFC 6749 §2.3.1,
//! §3.2.1): public clients send `client_id`; confidential clients use
//! `client_secret_basic` or `client_secret_post`.

use lambda_http::http::HeaderMap;

use crate::domain::{ClientId, ClientKind, ClientSecret, OAuthClient};
use crate::error::OAuthError;
use crate::http::{Authorization, Form, basic_credentials};

/// How a request says which client it comes from, before the client is looked up.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: ClientId,
    pub secret: Option<ClientSecret>,
    /// The credentials came in an `Authorization: Basic` header, so a 401 must challenge.
    pub used_basic: bool,
}

impl ClientCredentials {
    /// Extracts the client's identity from the `Authorization` header or the form.
    ///
    /// Refused: more than one authentication method (RFC 6749 §2.3: "MUST NOT use more
    /// than one"), a form `client_id` that differs from the Basic one, a malformed
    /// `Authorization` header, and no client identification at all.
    pub fn from_request(headers: &HeaderMap, form: &Form) -> Result<Self, OAuthError> {
        let form_id = form.get("client_id");
        let form_secret = form.get("client_secret");
        match basic_credentials(headers) {
            Authorization::Malformed => Err(OAuthError::invalid_client(
                "the Authorization header is not valid HTTP Basic client credentials",
            )
            .with_basic_challenge(true)),
            Authorization::Basic { username, password } => {
                if form_secret.is_some() {
                    return Err(OAuthError::invalid_request(
                        "use either HTTP Basic or client_secret in the body, not both",
                    ));
                }
                if form_id.is_some_and(|id| id != username) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the HTTP Basic client",
                    ));
                }
                let client_id = ClientId::parse(&username).ok_or_else(|| {
                    OAuthError::invalid_client("client authentication failed")
                        .with_basic_challenge(true)
                })?;
                Ok(Self {
                    client_id,
                    secret: (!password.is_empty()).then(|| ClientSecret::new(password)),
                    used_basic: true,
                })
            }
            Authorization::None => {
                let Some(id) = form_id else {
                    return Err(OAuthError::invalid_request("client_id is required"));
                };
                let client_id = ClientId::parse(id)
                    .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
                Ok(Self {
                    client_id,
                    secret: form_secret.map(|s| ClientSecret::new(s.to_owned())),
                    used_basic: false,
                })
            }
        }
    }

    /// Checks these credentials against the client found in the store (`None`: no such
    /// client). A public client must not present a secret; a confidential one must
    /// present the right one. Every failure is the same `invalid_client`, so the answer
    /// does not tell which part was wrong.
    pub fn authenticate(self, client: Option<OAuthClient>) -> Result<OAuthClient, OAuthError> {
        let failed = || {
            OAuthError::invalid_client("client authentication failed")
                .with_basic_challenge(self.used_basic)
        };
        let client = client.ok_or_else(failed)?;
        let ok = match (&client.kind, &self.secret) {
            (ClientKind::Public, None) => true,
            (ClientKind::Confidential { secret_hash }, Some(secret)) => secret_hash.verify(secret),
            _ => false,
        };
        if ok { Ok(client) } else { Err(failed()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::OAuthErrorCode;
    use base64::Engine as _;
    use lambda_http::http::{HeaderValue, header};

    fn client(kind: ClientKind) -> OAuthClient {
        OAuthClient {
            kind,
            ..crate::domain::test_client("c1")
        }
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        h
    }

    fn form(body: &str) -> Form {
        Form::parse_bytes(body.as_bytes()).unwrap()
    }

    #[test]
    fn public_client_by_id() {
        let creds =
            ClientCredentials::from_request(&HeaderMap::new(), &form("client_id=c1")).unwrap();
        assert!(!creds.used_basic);
        assert!(creds.authenticate(Some(client(ClientKind::Public))).is_ok());
    }

    #[test]
    fn confidential_client_by_post_and_by_basic() {
        let secret = ClientSecret::generate();
        let kind = ClientKind::Confidential {
            secret_hash: secret.hash(),
        };
        let post = form(&format!("client_id=c1&client_secret={}", secret.expose()));
        let creds = ClientCredentials::from_request(&HeaderMap::new(), &post).unwrap();
        assert!(creds.authenticate(Some(client(kind.clone()))).is_ok());

        let creds =
            ClientCredentials::from_request(&basic("c1", secret.expose()), &form("")).unwrap();
        assert!(creds.used_basic);
        assert!(creds.authenticate(Some(client(kind))).is_ok());
    }

    #[test]
    fn every_authentication_failure_is_invalid_client() {
        let secret = ClientSecret::generate();
        let confidential = client(ClientKind::Confidential {
            secret_hash: secret.hash(),
        });
        let cases = [
            // Unknown client.
            (HeaderMap::new(), "client_id=c1", None),
            // Confidential client without a secret.
            (HeaderMap::new(), "client_id=c1", Some(confidential.clone())),
            // Wrong secret.
            (basic("c1", "wrong"), "", Some(confidential.clone())),
            // A public client presenting a secret.
            (
                basic("c1", "anything"),
                "",
                Some(client(ClientKind::Public)),
            ),
        ];
        for (headers, body, stored) in cases {
            let creds = ClientCredentials::from_request(&headers, &form(body)).unwrap();
            let used_basic = creds.used_basic;
            let err = creds.authenticate(stored).unwrap_err();
            assert_eq!(err.code, OAuthErrorCode::InvalidClient);
            assert_eq!(err.basic_challenge, used_basic);
        }
    }

    #[test]
    fn ambiguous_or_missing_identification_is_refused() {
        let err = ClientCredentials::from_request(&HeaderMap::new(), &form("")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        let err = ClientCredentials::from_request(&basic("c1", "s"), &form("client_secret=s"))
            .unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        let err =
            ClientCredentials::from_request(&basic("c1", "s"), &form("client_id=c2")).unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidRequest);
        // Same id in both places is fine.
        assert!(ClientCredentials::from_request(&basic("c1", "s"), &form("client_id=c1")).is_ok());
        let err = ClientCredentials::from_request(&HeaderMap::new(), &form("client_id=bad%20id"))
            .unwrap_err();
        assert_eq!(err.code, OAuthErrorCode::InvalidClient);
    }
}
