//! Signing people in with the deployment's OpenID provider (OpenID Connect Core §3.1:
//! authorization code flow with PKCE, `state` and `nonce`), on the `openidconnect` crate.
//!
//! The provider's discovery document and keys are fetched on first use and cached per
//! instance; when an ID token does not verify, they are fetched again (at most once a
//! minute), so a provider's key rotation needs no restart.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AsyncHttpClient, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::outbound::{Outbound, OutboundError};

/// The shortest time between two fetches of the provider's metadata after a failure.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);

impl<'c> AsyncHttpClient<'c> for Outbound {
    type Error = OutboundError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a sign-in needs to remember between the redirect to the provider and the return:
/// kept in the page's encrypted login cookie, never anywhere else. No `Debug`: it holds
/// the PKCE verifier.
#[derive(Serialize, Deserialize)]
pub struct Challenge {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Why a sign-in failed. The messages name no token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the provider's discovery document could not be read")]
    Discovery(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the provider is misconfigured: {0}")]
    Configuration(&'static str),
    #[error("the provider refused the code exchange")]
    Exchange(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the provider returned no ID token")]
    NoIdToken,
    /// Wrong issuer, audience, nonce, signature, or expired.
    #[error("the ID token is not valid")]
    InvalidIdToken(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The page's relying party, built once per cold start.
pub struct RelyingParty {
    issuer: IssuerUrl,
    client_id: ClientId,
    client_secret: Option<ClientSecret>,
    redirect_uri: RedirectUrl,
    http: Outbound,
    metadata: RwLock<Option<(CoreProviderMetadata, Instant)>>,
}

impl RelyingParty {
    /// `redirect_uri` is where the provider sends the person back (`{ISSUER}/device/callback`).
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<String>,
        redirect_uri: &str,
    ) -> Result<Self, OidcError> {
        Ok(Self {
            issuer: IssuerUrl::new(issuer.to_owned())
                .map_err(|_| OidcError::Configuration("OIDC_ISSUER is not a URL"))?,
            client_id: ClientId::new(client_id.to_owned()),
            client_secret: client_secret.map(ClientSecret::new),
            redirect_uri: RedirectUrl::new(redirect_uri.to_owned())
                .map_err(|_| OidcError::Configuration("the callback is not a URL"))?,
            http: Outbound::new(),
            metadata: RwLock::new(None),
        })
    }

    /// The provider's metadata: cached, or fetched when absent or when `refresh` is asked
    /// for and the last fetch is older than a minute.
    async fn metadata(&self, refresh: bool) -> Result<CoreProviderMetadata, OidcError> {
        {
            let cached = self.metadata.read().await;
            if let Some((metadata, fetched)) = cached.as_ref()
                && (!refresh || fetched.elapsed() < REFETCH_INTERVAL)
            {
                return Ok(metadata.clone());
            }
        }
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| OidcError::Discovery(Box::new(e)))?;
        *self.metadata.write().await = Some((metadata.clone(), Instant::now()));
        Ok(metadata)
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
    ) -> openidconnect::core::CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            self.client_secret.clone(),
        )
        .set_redirect_uri(self.redirect_uri.clone())
    }

    /// Where to send the person to sign in, and what to remember until they return.
    pub async fn begin(&self) -> Result<(String, Challenge), OidcError> {
        let client = self.client(self.metadata(false).await?);
        let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(pkce_challenge)
            .url();
        Ok((
            url.to_string(),
            Challenge {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: pkce_verifier.secret().clone(),
            },
        ))
    }

    /// Exchanges the provider's `code` and verifies the ID token it returns (signature,
    /// issuer, audience, expiry and the `nonce` of `challenge`); returns its subject. The
    /// caller has already checked `state`.
    pub async fn finish(&self, challenge: &Challenge, code: &str) -> Result<String, OidcError> {
        let client = self.client(self.metadata(false).await?);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| OidcError::Configuration("the provider has no token endpoint"))?
            .set_pkce_verifier(PkceCodeVerifier::new(challenge.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(Box::new(e)))?;
        let id_token = openidconnect::TokenResponse::id_token(&response)
            .ok_or(OidcError::NoIdToken)?
            .clone();
        let nonce = Nonce::new(challenge.nonce.clone());
        let verified = {
            let verifier = client.id_token_verifier();
            id_token
                .claims(&verifier, &nonce)
                .map(|claims| claims.subject().as_str().to_owned())
        };
        match verified {
            Ok(subject) => Ok(subject),
            Err(first) => {
                // Perhaps the provider rotated its keys: look once more, then give up.
                let client = self.client(self.metadata(true).await?);
                let verifier = client.id_token_verifier();
                id_token
                    .claims(&verifier, &nonce)
                    .map(|claims| claims.subject().as_str().to_owned())
                    .map_err(|_| OidcError::InvalidIdToken(Box::new(first)))
            }
        }
    }
}
