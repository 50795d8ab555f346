//! Signing people in with the deployment's OpenID provider (OpenID Connect Core §3.1:
//! authorization code flow with PKCE, `state` and `nonce`), on the `openidconnect` crate.
//!
//! The page asks the provider for `openid profile email`, and keeps the person's name and
//! e-mail address from the ID token (or from the provider's UserInfo, when the ID token
//! carries neither) for the devices they approve (see [`crate::domain::Profile`]).
//!
//! The provider's discovery document and keys are fetched on first use and cached per
//! instance; when an ID token does not verify, they are fetched again (at most once a
//! minute), so a provider's key rotation needs no restart.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreClient, CoreGenderClaim, CoreIdTokenClaims, CoreProviderMetadata, CoreResponseType,
    CoreUserInfoClaims,
};
use openidconnect::{
    AsyncHttpClient, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalClaims, HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::domain::{EMAIL, PROFILE, Profile};
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

/// A person the provider signed in: their subject, and what it said about them.
pub struct SignedIn {
    pub subject: String,
    pub profile: Profile,
}

/// The person's claims in an ID token or a UserInfo answer (both have OpenID Connect's
/// standard claims).
macro_rules! profile_of {
    ($claims:expr, $auth_time:expr) => {
        Profile::from_claims(
            $claims
                .name()
                .and_then(|name| name.get(None))
                .map(|name| name.as_str()),
            $claims.preferred_username().map(|name| name.as_str()),
            $claims.email().map(|email| email.as_str()),
            $claims.email_verified(),
            $auth_time,
        )
    };
}

fn id_token_profile(claims: &CoreIdTokenClaims) -> Profile {
    let auth_time = claims
        .auth_time()
        .or(Some(claims.issue_time()))
        .and_then(|at| u64::try_from(at.timestamp()).ok());
    profile_of!(claims, auth_time)
}

fn userinfo_profile(claims: &CoreUserInfoClaims) -> Profile {
    profile_of!(claims, None)
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
            .add_scope(Scope::new(PROFILE.to_owned()))
            .add_scope(Scope::new(EMAIL.to_owned()))
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
    /// issuer, audience, expiry and the `nonce` of `challenge`); returns its subject and
    /// the person's claims. The caller has already checked `state`.
    pub async fn finish(&self, challenge: &Challenge, code: &str) -> Result<SignedIn, OidcError> {
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
        let read =
            |claims: &CoreIdTokenClaims| (claims.subject().clone(), id_token_profile(claims));
        let verified = {
            let verifier = client.id_token_verifier();
            id_token.claims(&verifier, &nonce).map(read)
        };
        let (subject, profile) = match verified {
            Ok(read) => read,
            Err(first) => {
                // Perhaps the provider rotated its keys: look once more, then give up.
                let client = self.client(self.metadata(true).await?);
                let verifier = client.id_token_verifier();
                id_token
                    .claims(&verifier, &nonce)
                    .map(read)
                    .map_err(|_| OidcError::InvalidIdToken(Box::new(first)))?
            }
        };
        // A provider may keep the names and the address for UserInfo (OpenID Connect Core
        // §5.4): ask it then. Without them the sign-in still stands.
        let profile = if profile.lacks_claims() {
            let asked = client
                .user_info(response.access_token().clone(), Some(subject.clone()))
                .ok()
                .map(|request| {
                    request.request_async::<EmptyAdditionalClaims, _, CoreGenderClaim>(&self.http)
                });
            match asked {
                Some(request) => match request.await {
                    Ok(claims) => profile.or(userinfo_profile(&claims)),
                    // Its error may quote the answer, which is about a person: not logged.
                    Err(_) => {
                        tracing::warn!("the provider's UserInfo gave no usable answer");
                        profile
                    }
                },
                None => profile,
            }
        } else {
            profile
        };
        Ok(SignedIn {
            subject: subject.as_str().to_owned(),
            profile,
        })
    }
}
