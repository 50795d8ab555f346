//! `device-login`: signs a device in with the OAuth 2.0 Device Authorization Grant
//! (RFC 8628), the way a well-made TV or command-line login does, through the standard
//! `oauth2` crate, so that it also proves the service works with clients we did not write.
//! With `openid` (asked for by default) it verifies the ID token with the `openidconnect`
//! crate and greets the person by name.
//!
//! A granted refresh token is saved (readable by the current user only), so the next run
//! refreshes the sign-in instead of showing a new code; `--logout` revokes it at the server
//! (RFC 7009) and forgets it.
//!
//! Everything for the person goes to standard error; standard output carries only the token
//! response when `--print-token` asks for it, so scripts can capture it.
//!
//! Exit codes: 0 signed in (or out), 2 denied, 3 expired, 130 cancelled (Ctrl-C), 1 any
//! other error.

mod saved;
mod show;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::reqwest;
use oauth2::url::form_urlencoded;
use oauth2::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, DeviceCodeErrorResponseType, EndpointNotSet,
    EndpointSet, ExtraTokenFields, RefreshToken, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, StandardRevocableToken, StandardTokenResponse,
    TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

use saved::{Saved, Session, write_private};
use show::{describe_token, show_code, spinner, verify_id_token};

/// The scope asked for when `--scope` is not given: `openid profile email` ask who signs
/// in (an ID token with their name and address), `offline_access` asks for a refresh
/// token, so the next run needs no code.
const DEFAULT_SCOPE: &str = "openid profile email read write offline_access";

/// Sign this device in with a code shown on screen.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The authorization server's issuer URL; its endpoints are discovered (RFC 8414).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    issuer: String,
    /// The OAuth client id of this device.
    #[arg(long, default_value = "demo-cli")]
    client_id: String,
    /// The client secret of a confidential client. Prefer the environment variable: a
    /// command line is visible to other users of the machine.
    #[arg(long, env = "DEVICE_LOGIN_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Space-separated scopes to ask for [default: "openid profile email read write
    /// offline_access"]. With a
    /// saved sign-in, a narrower scope is asked of the refresh; a wider one needs a new
    /// sign-in.
    #[arg(long)]
    scope: Option<String>,
    /// Where sign-ins are saved (a JSON file readable by you only) [default:
    /// $XDG_CONFIG_HOME/device-login/credentials.json, else ~/.config/...].
    #[arg(long, env = "DEVICE_LOGIN_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Sign this device out: revoke the saved sign-in at the server and forget it.
    #[arg(long)]
    logout: bool,
    /// Write the token response to this file, readable by the current user only.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print the token response as JSON on standard output, for scripts.
    #[arg(long)]
    print_token: bool,
    /// Do not draw the QR code.
    #[arg(long)]
    no_qr: bool,
}

/// How a run can end, each with its own message and exit code.
#[derive(Debug)]
enum Failure {
    Denied,
    Expired,
    Cancelled,
    /// Anything else, already phrased for a person.
    Other(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Denied => 2,
            Self::Expired => 3,
            Self::Cancelled => 130,
            Self::Other(_) => 1,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Denied => "The request was denied. Nothing was signed in.".into(),
            Self::Expired => {
                "The code expired before it was approved. Run the command again for a new one."
                    .into()
            }
            Self::Cancelled => "Cancelled.".into(),
            Self::Other(message) => message.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Metadata {
    device_authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: Option<String>,
    revocation_endpoint: Option<String>,
}

/// The token response: RFC 6749's, with OpenID Connect's `id_token` when `openid` was
/// granted.
type BasicTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;

/// The `id_token` of a token response. `Debug` never shows it.
#[derive(Clone, Serialize, Deserialize)]
struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

impl std::fmt::Debug for IdTokenField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.id_token.is_some() {
            "IdTokenField(..)"
        } else {
            "IdTokenField(None)"
        })
    }
}

impl ExtraTokenFields for IdTokenField {}

/// The `oauth2` client with the device and token endpoints set.
type Client = oauth2::Client<
    BasicErrorResponse,
    BasicTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What a run works with: the server, this client, and where sign-ins are saved.
struct Context<'a> {
    args: &'a Args,
    issuer: String,
    http: reqwest::Client,
    metadata: Metadata,
    client: Client,
    saved: Option<Saved>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::select! {
        outcome = run(&args) => outcome,
        _ = tokio::signal::ctrl_c() => Err(Failure::Cancelled),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("\n{}", failure.message());
            ExitCode::from(failure.exit_code())
        }
    }
}

async fn run(args: &Args) -> Result<(), Failure> {
    let context = Context::new(args).await?;
    if args.logout {
        return context.logout().await;
    }
    let scope = args.scope.as_deref().unwrap_or(DEFAULT_SCOPE);
    let mut replaced = None;
    // Twice at most: another run of this command may have rotated the saved token while
    // this one presented the old one; then its successor is in the file.
    let mut presented: Option<String> = None;
    while let Some(session) = context.saved_session() {
        if presented.as_deref() == Some(session.refresh_token.as_str()) {
            break;
        }
        if args.scope.is_some() && !within(scope, &session.scope) {
            replaced = Some(session);
            break;
        }
        match context.refresh(&session).await {
            Ok(token) => {
                eprintln!("Refreshed the saved sign-in; no code needed.");
                return context.finish(&token, scope).await;
            }
            Err(None) if presented.is_none() => presented = Some(session.refresh_token),
            Err(None) => break,
            Err(Some(failure)) => return Err(failure),
        }
    }
    if let Some(dead) = presented {
        context.forget_if(&dead);
        eprintln!(
            "The saved sign-in has ended (expired, or signed out elsewhere). Signing in again."
        );
    }
    let token = context.device_login(scope).await?;
    context.finish(&token, scope).await?;
    if let Some(old) = replaced {
        // The new sign-in replaces the old one, which nothing will use again: end it.
        if context.revoke(&old.refresh_token).await.is_err() {
            eprintln!("(The replaced sign-in could not be revoked; it expires on its own.)");
        }
    }
    Ok(())
}

impl<'a> Context<'a> {
    async fn new(args: &'a Args) -> Result<Self, Failure> {
        let http = reqwest::ClientBuilder::new()
            // RFC 8628 endpoints never redirect; following one could leak credentials.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Failure::Other(format!("Could not set up HTTP: {e}")))?;
        let issuer = args.issuer.trim_end_matches('/').to_owned();
        let metadata = discover(&http, &issuer).await?;
        let mut client = oauth2::Client::<
            BasicErrorResponse,
            BasicTokenResponse,
            BasicTokenIntrospectionResponse,
            StandardRevocableToken,
            BasicRevocationErrorResponse,
        >::new(ClientId::new(args.client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(metadata.device_authorization_endpoint.clone()).map_err(
                |_| Failure::Other("The server advertises an invalid device endpoint.".into()),
            )?,
        )
        .set_token_uri(TokenUrl::new(metadata.token_endpoint.clone()).map_err(|_| {
            Failure::Other("The server advertises an invalid token endpoint.".into())
        })?);
        if let Some(secret) = &args.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        let saved = args
            .credentials
            .clone()
            .or_else(Saved::default_path)
            .map(Saved::at);
        Ok(Self {
            args,
            issuer,
            http,
            metadata,
            client,
            saved,
        })
    }

    fn saved_session(&self) -> Option<Session> {
        self.saved.as_ref()?.get(&self.issuer, &self.args.client_id)
    }

    fn forget(&self) {
        if let Some(saved) = &self.saved {
            let _ = saved.remove(&self.issuer, &self.args.client_id, None);
        }
    }

    /// Forgets the saved sign-in only if it still holds `refresh_token`: a newer one that
    /// another run saved meanwhile stays.
    fn forget_if(&self, refresh_token: &str) {
        if let Some(saved) = &self.saved {
            let _ = saved.remove(&self.issuer, &self.args.client_id, Some(refresh_token));
        }
    }

    /// Exchanges the saved refresh token for new tokens. `Err(None)`: the server says the
    /// sign-in has ended, so a new one is needed; `Err(Some(_))`: anything else.
    async fn refresh(&self, session: &Session) -> Result<BasicTokenResponse, Option<Failure>> {
        let token = RefreshToken::new(session.refresh_token.clone());
        let scopes = self.args.scope.iter().flat_map(|s| s.split_whitespace());
        let scopes: Vec<Scope> = scopes.map(|s| Scope::new(s.to_owned())).collect();
        retrying("refreshing the sign-in", || {
            self.client
                .exchange_refresh_token(&token)
                .add_scopes(scopes.clone())
                .request_async(&self.http)
        })
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r)
                if *r.error() == BasicErrorResponseType::InvalidGrant =>
            {
                None
            }
            RequestTokenError::ServerResponse(r) => Some(Failure::Other(format!(
                "The server refused to refresh the sign-in: {}{}",
                r.error(),
                r.error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ))),
            other => Some(Failure::Other(format!(
                "Could not refresh the sign-in: {}",
                describe(&other)
            ))),
        })
    }

    /// Shows a code and polls until the person decides, the code expires, or Ctrl-C.
    async fn device_login(&self, scope: &str) -> Result<BasicTokenResponse, Failure> {
        let (client, http) = (&self.client, &self.http);
        let details: StandardDeviceAuthorizationResponse = retrying("asking for a code", || {
            client
                .exchange_device_code()
                .add_scopes(scope.split_whitespace().map(|s| Scope::new(s.to_owned())))
                .request_async(http)
        })
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(response) => Failure::Other(format!(
                "The server refused to issue a code: {}{}",
                response.error(),
                response
                    .error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
            other => Failure::Other(format!("Could not get a code: {}", describe(&other))),
        })?;

        show_code(&details, !self.args.no_qr);
        let deadline = Instant::now() + details.expires_in();
        let spinner = spinner(deadline);

        // Poll until the user decides. The oauth2 crate honours `interval` and `slow_down`;
        // a network failure restarts polling with back-off until the code's deadline.
        let mut backoff = Duration::from_secs(1);
        let token = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = client
                .exchange_device_access_token(&details)
                .request_async(http, tokio::time::sleep, Some(remaining))
                .await;
            match result {
                Ok(token) => break token,
                Err(RequestTokenError::ServerResponse(response)) => {
                    spinner.finish_and_clear();
                    return Err(match response.error() {
                        DeviceCodeErrorResponseType::AccessDenied => Failure::Denied,
                        DeviceCodeErrorResponseType::ExpiredToken => Failure::Expired,
                        other => Failure::Other(format!(
                            "The server refused the login: {other}{}",
                            response
                                .error_description()
                                .map(|d| format!(" ({d})"))
                                .unwrap_or_default()
                        )),
                    });
                }
                Err(RequestTokenError::Request(e)) if Instant::now() + backoff < deadline => {
                    spinner.set_message(format!(
                        "network trouble ({}), retrying",
                        short(&e.to_string())
                    ));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(other) => {
                    spinner.finish_and_clear();
                    return Err(match other {
                        RequestTokenError::Request(_) => Failure::Expired,
                        other => Failure::Other(format!("The login failed: {}", describe(&other))),
                    });
                }
            }
        };
        spinner.finish_and_clear();
        Ok(token)
    }

    /// Describes the new tokens, saves the refresh token for the next run, and writes or
    /// prints the token response as asked.
    async fn finish(&self, token: &BasicTokenResponse, asked: &str) -> Result<(), Failure> {
        let response_json = serde_json::to_string_pretty(token)
            .map_err(|e| Failure::Other(format!("Could not encode the token response: {e}")))?;
        let access_token = token.access_token().secret();
        let jwks_uri = self.metadata.jwks_uri.as_deref();
        let id_token = token.extra_fields().id_token.as_deref();
        let person = match id_token {
            Some(id_token) => Some(
                verify_id_token(
                    &self.http,
                    jwks_uri,
                    &self.issuer,
                    &self.args.client_id,
                    id_token,
                    access_token,
                )
                .await,
            ),
            None => None,
        };
        describe_token(&self.http, jwks_uri, access_token, person).await;
        self.save(token, asked);

        if let Some(path) = &self.args.output {
            write_private(path, &response_json)
                .map_err(|e| Failure::Other(format!("Could not write {}: {e}", path.display())))?;
            eprintln!(
                "The token response is in {} (readable by you only).",
                path.display()
            );
        }
        if self.args.print_token {
            println!("{response_json}");
        }
        Ok(())
    }
    /// Saves the refresh token, if the server granted one, for the next run; a response
    /// without one (no `offline_access`) leaves nothing saved.
    fn save(&self, token: &BasicTokenResponse, asked: &str) {
        let Some(saved) = &self.saved else {
            return;
        };
        let Some(refresh_token) = token.refresh_token() else {
            self.forget();
            return;
        };
        let scope = match token.scopes() {
            Some(scopes) => scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            None => asked.to_owned(),
        };
        let session = Session {
            issuer: self.issuer.clone(),
            client_id: self.args.client_id.clone(),
            refresh_token: refresh_token.secret().clone(),
            scope,
        };
        match saved.put(session) {
            Ok(()) => eprintln!(
                "  saved in {} (readable by you only): the next run refreshes instead of \
                 asking for a code; --logout signs this device out",
                saved.path().display()
            ),
            Err(e) => eprintln!(
                "  (could not save the sign-in in {}: {e}; the next run asks for a code)",
                saved.path().display()
            ),
        }
    }

    /// Revokes the saved sign-in at the server, then forgets it.
    async fn logout(&self) -> Result<(), Failure> {
        let Some(session) = self.saved_session() else {
            eprintln!(
                "No saved sign-in for {} at {}: nothing to sign out.",
                self.args.client_id, self.issuer
            );
            return Ok(());
        };
        self.revoke(&session.refresh_token).await?;
        self.forget();
        eprintln!(
            "Signed out: the server revoked this device's sign-in, and it is no longer saved."
        );
        Ok(())
    }

    /// RFC 7009 revocation of a refresh token, which ends its whole sign-in at the server.
    /// (The `oauth2` crate insists on HTTPS for this endpoint, which a local server does
    /// not have, so the request is made here.)
    async fn revoke(&self, refresh_token: &str) -> Result<(), Failure> {
        let Some(endpoint) = &self.metadata.revocation_endpoint else {
            return Err(Failure::Other(
                "The server offers no revocation endpoint; the saved sign-in was kept.".into(),
            ));
        };
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", refresh_token)
            .append_pair("token_type_hint", "refresh_token");
        let basic = match &self.args.client_secret {
            // RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
            Some(secret) => Some((encode(&self.args.client_id), encode(secret))),
            None => {
                form.append_pair("client_id", &self.args.client_id);
                None
            }
        };
        let body = form.finish();
        let response = retrying("signing out", || {
            let mut request = self
                .http
                .post(endpoint)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone());
            if let Some((id, secret)) = &basic {
                request = request.basic_auth(id, Some(secret));
            }
            request.send()
        })
        .await
        .map_err(|e| {
            Failure::Other(format!(
                "Could not reach the server to sign out: {}",
                short(&e.to_string())
            ))
        })?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let error = response
            .bytes()
            .await
            .ok()
            .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .and_then(|body| body["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        Err(Failure::Other(format!(
            "The server did not sign this device out ({error}); the saved sign-in was kept."
        )))
    }
}

/// True if every scope in `asked` is among `granted`.
fn within(asked: &str, granted: &str) -> bool {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    asked.split_whitespace().all(|s| granted.contains(&s))
}

/// Reads the issuer's metadata: RFC 8414's location, then OpenID Connect's.
async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, Failure> {
    let issuer = issuer.trim_end_matches('/');
    let mut last_error = String::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let url = format!("{issuer}{path}");
        let attempt = retrying("discovering the server", || async {
            let bytes = http
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| e.to_string())?
                .bytes()
                .await
                .map_err(|e| e.to_string())?;
            serde_json::from_slice::<Metadata>(&bytes)
                .map_err(|_| "the answer is not authorization server metadata".to_owned())
        })
        .await;
        match attempt {
            Ok(metadata) => return Ok(metadata),
            Err(e) => last_error = short(&e.to_string()),
        }
    }
    Err(Failure::Other(format!(
        "Could not reach the authorization server at {issuer}: {last_error}. Is it running?"
    )))
}

/// Runs `attempt` up to four times, backing off between tries, while the failure looks
/// transient (a connection or timeout problem rather than an answer).
async fn retrying<T, E, F, Fut>(what: &str, attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = Duration::from_millis(500);
    for _ in 0..3 {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if is_transient(&e.to_string()) => {
                eprintln!("({what}: {}; retrying)", short(&e.to_string()));
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
    attempt().await
}

fn is_transient(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    ["connect", "timed out", "timeout", "reset", "broken pipe"]
        .iter()
        .any(|m| message.contains(m))
}

fn describe<E: std::error::Error>(error: &E) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    short(&text)
}

fn short(text: &str) -> String {
    text.chars().take(160).collect()
}
