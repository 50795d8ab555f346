//! `device-login`: signs a device in with the OAuth 2.0 Device Authorization Grant
//! (RFC 8628), the way a well-made TV or command-line login does, through the standard
//! `oauth2` crate, so that it also proves the service works with clients we did not write.
//!
//! Everything for the person goes to standard error; standard output carries only the token
//! response when `--print-token` asks for it, so scripts can capture it.
//!
//! Exit codes: 0 signed in, 2 denied, 3 expired, 130 cancelled (Ctrl-C), 1 any other error.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use oauth2::basic::BasicClient;
use oauth2::reqwest;
use oauth2::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, DeviceCodeErrorResponseType, RequestTokenError,
    Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use serde::Deserialize;

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
    /// Space-separated scopes to ask for.
    #[arg(long, default_value = "read write")]
    scope: String,
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

/// How a login can end, each with its own message and exit code.
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
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::select! {
        outcome = login(&args) => outcome,
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

async fn login(args: &Args) -> Result<(), Failure> {
    let http = reqwest::ClientBuilder::new()
        // RFC 8628 endpoints never redirect; following one could leak credentials.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| Failure::Other(format!("Could not set up HTTP: {e}")))?;

    let metadata = discover(&http, &args.issuer).await?;
    let mut client = BasicClient::new(ClientId::new(args.client_id.clone()))
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

    let details: StandardDeviceAuthorizationResponse = retrying("asking for a code", || {
        client
            .exchange_device_code()
            .add_scopes(
                args.scope
                    .split_whitespace()
                    .map(|s| Scope::new(s.to_owned())),
            )
            .request_async(&http)
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

    show_code(&details, !args.no_qr);
    let deadline = Instant::now() + details.expires_in();
    let spinner = spinner(deadline);

    // Poll until the user decides. The oauth2 crate honours `interval` and `slow_down`;
    // a network failure restarts polling with back-off until the code's deadline.
    let mut backoff = Duration::from_secs(1);
    let token = loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let result = client
            .exchange_device_access_token(&details)
            .request_async(&http, tokio::time::sleep, Some(remaining))
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

    let response_json = serde_json::to_string_pretty(&token)
        .map_err(|e| Failure::Other(format!("Could not encode the token response: {e}")))?;
    let access_token = token.access_token().secret();
    describe_token(&http, metadata.jwks_uri.as_deref(), access_token).await;

    if let Some(path) = &args.output {
        write_private(path, &response_json)
            .map_err(|e| Failure::Other(format!("Could not write {}: {e}", path.display())))?;
        eprintln!(
            "The token response is in {} (readable by you only).",
            path.display()
        );
    }
    if args.print_token {
        println!("{response_json}");
    }
    Ok(())
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

/// Shows the code large and clear, where to enter it, and a QR code of the direct link.
fn show_code(details: &StandardDeviceAuthorizationResponse, qr: bool) {
    let code = details.user_code().secret();
    let spaced = code.chars().map(String::from).collect::<Vec<_>>().join(" ");
    let uri = details.verification_uri().as_str();
    let mut out = std::io::stderr().lock();
    let _ = writeln!(
        out,
        "\nTo sign in, open\n\n    {uri}\n\nand enter the code\n"
    );
    let width = spaced.chars().count() + 4;
    let _ = writeln!(out, "    ┌{}┐", "─".repeat(width));
    let _ = writeln!(out, "    │  {spaced}  │");
    let _ = writeln!(out, "    └{}┘", "─".repeat(width));
    let _ = writeln!(out, "\n    user code: {code}");
    if let Some(complete) = details.verification_uri_complete() {
        let complete = complete.secret();
        if qr {
            if let Ok(qr) = qrcode::QrCode::new(complete.as_bytes()) {
                let image = qr
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .quiet_zone(true)
                    .build();
                let _ = writeln!(
                    out,
                    "\nor scan this to open it with the code filled in:\n\n{image}"
                );
            }
        } else {
            let _ = writeln!(out, "\nor open {complete}");
        }
    }
    let _ = writeln!(out);
}

/// A spinner with the time left, drawn only on a terminal.
fn spinner(deadline: Instant) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} waiting for approval… {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let ticker = bar.clone();
    tokio::spawn(async move {
        while !ticker.is_finished() {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            ticker.set_message(format!("{}:{:02} left", left / 60, left % 60));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    bar
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    exp: u64,
    #[serde(default)]
    client_id: Option<String>,
}

/// Prints who signed in, with which scopes, until when; verifying the signature against
/// the server's JWKS when it publishes one.
async fn describe_token(http: &reqwest::Client, jwks_uri: Option<&str>, token: &str) {
    let verified = match jwks_uri {
        Some(uri) => verify(http, uri, token).await,
        None => Err("the server publishes no JWKS".to_owned()),
    };
    let claims = verified.as_ref().ok();
    let unverified;
    let claims = match claims {
        Some(claims) => claims,
        None => {
            unverified = token
                .split('.')
                .nth(1)
                .and_then(|p| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(p)
                        .ok()
                })
                .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok());
            match &unverified {
                Some(claims) => claims,
                None => {
                    eprintln!("Signed in. (The access token is not a JWT this tool can read.)");
                    return;
                }
            }
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let minutes = claims.exp.saturating_sub(now) / 60;
    eprintln!("✔ Signed in as {}", claims.sub);
    eprintln!("  scopes:  {}", claims.scope.as_deref().unwrap_or("(none)"));
    if let Some(client) = &claims.client_id {
        eprintln!("  client:  {client}");
    }
    eprintln!("  expires: in {minutes} minutes");
    match verified {
        Ok(_) => eprintln!("  signature verified with the server's published keys"),
        Err(why) => eprintln!("  signature NOT verified: {why}"),
    }
}

async fn verify(http: &reqwest::Client, jwks_uri: &str, token: &str) -> Result<Claims, String> {
    let bytes = http
        .get(jwks_uri)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| short(&e.to_string()))?
        .bytes()
        .await
        .map_err(|e| short(&e.to_string()))?;
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_slice(&bytes).map_err(|_| "the JWKS is malformed".to_owned())?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("the token has no kid")?;
    let jwk = jwks.find(&kid).ok_or("the token's key is not published")?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// Writes `contents` to a new or truncated file that only the current user can read.
fn write_private(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its old mode on open: tighten it as well.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())
    }
}
