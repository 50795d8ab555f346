//! Development tasks for the local stack, driven by `make run`, `make test` and
//! `make dev-token`. Not deployed.
//!
//! The local configuration lives once, in the workspace `Cargo.toml` under
//! `[workspace.metadata.lambda.env]` (which `cargo lambda watch` also reads); a variable
//! set in the process environment overrides it.
//!
//! - `xtask env`: prints the local configuration as `KEY=VALUE` lines.
//! - `xtask setup`: waits for the DynamoDB endpoint, creates the table, seeds the demo
//!   clients and prints their credentials.
//! - `xtask dev-token --sub ACCOUNT [--permissions A,B] [--ttl SECONDS]`: prints a
//!   development user token, alone on standard output.
//! - `xtask signing-keys [--rotate [--retire KID]...]`: prints a fresh signing key set (one
//!   RS256 key), or rotates the set read on standard input (see docs/deploy.md).
//! - `xtask approve USER_CODE [--sub ACCOUNT]`, `xtask deny USER_CODE`: decide a pending
//!   request from the command line, as the verification page would.
//! - `xtask capacity [--option value]...`: the DynamoDB capacity model (`make capacity`).

mod capacity;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer as _;
use base64::Engine as _;
use device_flow::domain::{
    Approval, ClientId, ClientName, GrantType, NewClient, Profile, ScopeSet, UserCode,
};
use device_flow::store::{DecideOutcome, create_table};
use device_flow::time::{Clock, SystemClock};
use device_flow::usecase::manage_clients::{ClientAdminError, create_client};
use device_flow::user_auth::Administrator;
use device_flow::{DeviceConfig, FromEnv, IntrospectionConfig, Store};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

const WORKSPACE_MANIFEST: &str = include_str!("../../Cargo.toml");

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("env") => print_env(),
        Some("setup") => setup().await,
        Some("dev-token") => dev_token(&args[1..]).await,
        Some("signing-keys") => signing_keys(&args[1..]),
        Some("approve") => decide(&args[1..], true).await,
        Some("deny") => decide(&args[1..], false).await,
        Some("capacity") => capacity::run(&args[1..]),
        Some("local-person") => {
            println!("{LOCAL_PERSON}");
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The one person the local OpenID provider knows by name (`make run` starts it with these
/// claims; its form offers them with one click), so that a local login shows what a device
/// learns with `openid profile email`.
const LOCAL_PERSON: &str = r#"{"sub": "alice", "name": "Alice Liddell", "preferred_username": "alice", "email": "alice@example.com", "email_verified": true}"#;

/// [`LOCAL_PERSON`]'s claims.
fn local_person() -> serde_json::Value {
    serde_json::from_str(LOCAL_PERSON).unwrap_or_default()
}

const USAGE: &str = "usage: xtask env | setup | local-person \
    | dev-token --sub ACCOUNT [--permissions A,B] [--ttl SECONDS] \
    | signing-keys [--rotate [--retire KID]...] \
    | approve USER_CODE [--sub ACCOUNT] | deny USER_CODE \
    | capacity [--logins-per-second N] [--polls-per-login N] [--confidential-share S] ... (see xtask/src/capacity.rs)";

/// The local configuration: the manifest's values, overridden by the process environment.
fn local_env() -> Result<BTreeMap<String, String>, String> {
    let manifest: toml::Table = WORKSPACE_MANIFEST
        .parse()
        .map_err(|e| format!("the workspace Cargo.toml does not parse: {e}"))?;
    let env = manifest
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("lambda"))
        .and_then(|l| l.get("env"))
        .and_then(toml::Value::as_table)
        .ok_or("the workspace Cargo.toml has no [workspace.metadata.lambda.env]")?;
    Ok(env
        .iter()
        .filter_map(|(name, value)| {
            let value = std::env::var(name)
                .ok()
                .or_else(|| value.as_str().map(str::to_owned))?;
            Some((name.clone(), value))
        })
        .collect())
}

fn print_env() -> Result<(), String> {
    for (name, value) in local_env()? {
        println!("{name}={value}");
    }
    Ok(())
}

/// The demo clients of the local stack: a public one and a confidential one, both allowed
/// the device and refresh grants and `openid profile email read write offline_access`, and `demo-api`, a
/// resource server that may introspect access tokens of the local audience (`audience`).
fn demo_clients(audience: &str) -> Result<Vec<NewClient>, String> {
    let client = |id: &str, name: &str, confidential: bool| {
        Ok::<_, String>(NewClient {
            allowed_resources: Vec::new(),
            user_code_format: None,
            id: ClientId::parse(id).ok_or("a demo client id is invalid")?,
            name: ClientName::parse(name).map_err(|e| e.to_string())?,
            confidential,
            allowed_grants: vec![GrantType::DeviceCode, GrantType::RefreshToken],
            allowed_scopes: ScopeSet::parse("openid profile email read write offline_access")
                .map_err(|e| e.to_string())?,
            overrides: Default::default(),
            resource_server_audiences: Vec::new(),
        })
    };
    let resource_server = NewClient {
        allowed_grants: Vec::new(),
        allowed_scopes: ScopeSet::default(),
        resource_server_audiences: vec![audience.to_owned()],
        ..client("demo-api", "Demo API (resource server)", true)?
    };
    Ok(vec![
        client("demo-cli", "Demo CLI", false)?,
        client("demo-service", "Demo service", true)?,
        resource_server,
    ])
}

/// The local table name, from the local configuration.
fn local_table(env: &BTreeMap<String, String>) -> Result<String, String> {
    let config =
        DeviceConfig::from_lookup(|name| env.get(name).cloned()).map_err(|e| e.to_string())?;
    Ok(config.table_name)
}

async fn setup() -> Result<(), String> {
    let env = local_env()?;
    let table_name = local_table(&env)?;
    let sdk = aws_config::load_from_env().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);

    // Wait for the local server to answer (it may still be starting).
    let mut waited = Duration::ZERO;
    while let Err(e) = client.list_tables().limit(1).send().await {
        if waited >= Duration::from_secs(60) {
            return Err(format!(
                "DynamoDB at {} does not answer: {}",
                env.get("AWS_ENDPOINT_URL_DYNAMODB")
                    .map_or("?", String::as_str),
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += Duration::from_millis(200);
    }

    match create_table(&client, &table_name).await {
        Ok(()) => eprintln!("created table {table_name}"),
        Err(e) => {
            // An existing table (a persistent local server) is fine.
            let exists = client
                .describe_table()
                .table_name(&table_name)
                .send()
                .await
                .is_ok();
            if !exists {
                return Err(format!("creating the table failed: {e}"));
            }
            eprintln!("table {table_name} exists");
        }
    }

    // Seeded through the admin API's own use case.
    let store = Store::new(client, table_name);
    let operator = Administrator::operator("xtask");
    let audience = IntrospectionConfig::from_lookup(|name| env.get(name).cloned())
        .map_err(|e| e.to_string())?
        .access_token_audience;
    for new in demo_clients(&audience)? {
        let id = new.id.clone();
        match create_client(&store, &operator, new, SystemClock.now()).await {
            Ok(created) => match created.secret {
                Some(secret) => println!(
                    "demo client {id} (confidential), client_secret: {}",
                    secret.expose()
                ),
                None => println!("demo client {id} (public)"),
            },
            Err(ClientAdminError::AlreadyExists) => {
                println!("demo client {id} exists (its secret was printed when it was created)")
            }
            Err(e) => return Err(format!("seeding {id} failed: {e}")),
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct UserClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    permissions: Vec<&'a str>,
}

/// Prints a user token for `--sub` holding `--permissions`: minted here when an HS256 secret
/// is configured (`USER_TOKEN_HS256_SECRET`, as the benchmark does), otherwise the ID token
/// the local OpenID provider (`OIDC_ISSUER`, started by `make run`) issues after signing the
/// account in, the same kind of token the page's sign-in yields.
async fn dev_token(args: &[String]) -> Result<(), String> {
    let mut sub = None;
    let mut permissions = String::new();
    let mut ttl: u64 = 12 * 3600;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--sub" => sub = Some(value.clone()),
            "--permissions" => permissions = value.clone(),
            "--ttl" => {
                ttl = value
                    .parse()
                    .map_err(|_| "--ttl takes seconds".to_owned())?
            }
            _ => return Err(USAGE.to_owned()),
        }
    }
    let sub = sub.filter(|s| !s.is_empty()).ok_or(USAGE)?;
    let permissions: Vec<&str> = permissions.split(',').filter(|p| !p.is_empty()).collect();
    let env = local_env()?;
    // The process environment wins, also for variables the local configuration lacks.
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .or_else(|| env.get(name).cloned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{name} is not configured"))
    };
    let token = match var("USER_TOKEN_HS256_SECRET") {
        Ok(secret) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| "the system clock is before 1970")?
                .as_secs();
            let claims = UserClaims {
                iss: &var("USER_TOKEN_ISSUER")?,
                aud: &var("USER_TOKEN_AUDIENCE")?,
                sub: &sub,
                iat: now,
                nbf: now,
                exp: now + ttl,
                permissions,
            };
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(secret.as_bytes()),
            )
            .map_err(|e| format!("signing failed: {e}"))?
        }
        Err(_) => {
            let provider = var("OIDC_ISSUER")?;
            let client = (var("OIDC_CLIENT_ID")?, var("OIDC_CLIENT_SECRET")?);
            let redirect = format!("{}/device/callback", var("ISSUER")?);
            provider_id_token(&provider, &client, &redirect, &sub, &permissions)
                .await
                .map_err(|e| {
                    format!("{e} (is `make run` running? it starts the provider at {provider})")
                })?
        }
    };
    println!("{token}");
    Ok(())
}

/// Signs `sub` in at the local OpenID provider (`oidc-provider-mock`: its login form takes
/// any subject, and `PUT /users/{sub}` sets the claims its ID tokens carry) and returns the
/// ID token.
async fn provider_id_token(
    issuer: &str,
    (client_id, client_secret): &(String, String),
    redirect_uri: &str,
    sub: &str,
    permissions: &[&str],
) -> Result<String, String> {
    use device_flow::outbound::Outbound;
    use lambda_http::http;
    let http = Outbound::new();
    let send = |method: http::Method, url: String, content_type: &str, body: String| {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", content_type)
            .body(body.into_bytes());
        let http = http.clone();
        async move {
            let request = request.map_err(|e| e.to_string())?;
            http.send(request).await.map_err(|e| e.to_string())
        }
    };
    let metadata = http
        .get(&format!("{issuer}/.well-known/openid-configuration"))
        .await
        .map_err(|e| format!("the provider does not answer: {e}"))?;
    let metadata: serde_json::Value =
        serde_json::from_slice(metadata.body()).map_err(|_| "no discovery document")?;
    let endpoint = |name: &str| {
        metadata[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("the provider has no {name}"))
    };
    // The provider's claims for `sub` are replaced: the local person keeps theirs.
    let mut claims = serde_json::json!({ "permissions": permissions });
    let person = local_person();
    if person["sub"] == sub {
        for (name, value) in person.as_object().into_iter().flatten() {
            if name != "sub" {
                claims[name] = value.clone();
            }
        }
    }
    let claims = claims.to_string();
    send(
        http::Method::PUT,
        format!("{issuer}/users/{sub}"),
        "application/json",
        claims,
    )
    .await?;
    let query = form(&[
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("scope", "openid profile email"),
        ("state", "dev-token"),
        ("nonce", "dev-token"),
    ]);
    let authorized = send(
        http::Method::POST,
        format!("{}?{query}", endpoint("authorization_endpoint")?),
        "application/x-www-form-urlencoded",
        form(&[("sub", sub)]),
    )
    .await?;
    let location = authorized
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .ok_or("the provider did not sign the account in")?;
    let code = location
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("code="))
        .ok_or("the provider returned no code")?;
    let tokens = send(
        http::Method::POST,
        endpoint("token_endpoint")?,
        "application/x-www-form-urlencoded",
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ]),
    )
    .await?;
    let tokens: serde_json::Value =
        serde_json::from_slice(tokens.body()).map_err(|_| "the token response is not JSON")?;
    tokens["id_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the provider returned no ID token".to_owned())
}

/// `application/x-www-form-urlencoded`.
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let value =
                percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Prints a key set as `SIGNING_KEYS` (or the deployed secret) expects it.
///
/// - `signing-keys`: a new set with one fresh RSA-2048 key.
/// - `signing-keys --rotate [--retire KID]...`: reads the current set on standard input,
///   adds a fresh key, makes it active, raises `version`, and drops the keys named by
///   `--retire` (only once the tokens they signed have expired).
fn signing_keys(args: &[String]) -> Result<(), String> {
    let mut rotate = false;
    let mut retire = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--rotate" => rotate = true,
            "--retire" => retire.push(rest.next().ok_or("--retire needs a kid")?.clone()),
            other => return Err(format!("signing-keys: unknown argument {other}")),
        }
    }
    if !retire.is_empty() && !rotate {
        return Err("--retire goes with --rotate".to_owned());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970")?
        .as_secs();
    let mut suffix = [0u8; 4];
    device_flow::bearer_secret::fill_random(&mut suffix);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let kid = format!("k{now}-{suffix}");
    let key =
        serde_json::json!({"kid": kid, "alg": "RS256", "private_key_pem": rsa_private_key_pem()?});
    let set = if rotate {
        let mut current = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut current)
            .map_err(|e| format!("reading the current key set: {e}"))?;
        let mut set: serde_json::Value =
            serde_json::from_str(&current).map_err(|_| "standard input is not a key set (JSON)")?;
        // The service's own parser decides what a valid set is.
        device_flow::token::KeySet::from_json(&current)
            .map_err(|e| format!("the current key set is invalid: {e}"))?;
        let version = set["version"]
            .as_u64()
            .ok_or("the key set has no version")?;
        let keys = set["keys"]
            .as_array_mut()
            .ok_or("the key set has no keys")?;
        for retired in &retire {
            if *retired == kid || !keys.iter().any(|k| k["kid"] == retired.as_str()) {
                return Err(format!("--retire {retired}: no such key in the set"));
            }
        }
        keys.retain(|k| !retire.iter().any(|r| k["kid"] == r.as_str()));
        keys.insert(0, key);
        set["version"] = (version + 1).into();
        set["active"] = kid.into();
        set
    } else {
        serde_json::json!({"version": 1, "active": kid, "keys": [key]})
    };
    device_flow::token::KeySet::from_json(&set.to_string())
        .map_err(|e| format!("the new key set is invalid: {e}"))?;
    println!("{set}");
    Ok(())
}

/// A fresh RSA-2048 private key, PKCS#8 PEM.
fn rsa_private_key_pem() -> Result<String, String> {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| "generating an RSA key failed")?;
    let der = key.as_der().map_err(|_| "encoding the RSA key failed")?;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).map_err(|_| "base64 is ASCII")?);
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    Ok(pem)
}

/// Approves (as `--sub`, default `demo-user`) or denies the request behind a user code.
async fn decide(args: &[String], approve: bool) -> Result<(), String> {
    let usage = || USAGE.to_owned();
    let code = args.first().ok_or_else(usage)?;
    let code = UserCode::parse(code).map_err(|e| format!("{e}"))?;
    let mut account = "demo-user".to_owned();
    match &args[1..] {
        [] => {}
        [flag, value] if flag == "--sub" && approve => account = value.clone(),
        _ => return Err(usage()),
    }
    let env = local_env()?;
    let table_name = local_table(&env)?;
    let sdk = aws_config::load_from_env().await;
    let store = Store::new(aws_sdk_dynamodb::Client::new(&sdk), table_name);
    let now = SystemClock.now();
    let id = store
        .find_user_code(&code, now)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no live request has this user code")?;
    let outcome = if approve {
        // The local person's claims go with their approvals, as their sign-in's would.
        let person = local_person();
        let profile = match person.as_object() {
            Some(claims) if person["sub"] == account.as_str() => Profile::from_json(claims),
            _ => Profile::default(),
        };
        let approval = Approval {
            account_id: account.clone(),
            approved_at: now,
            session_id: None,
            profile,
        };
        store.approve(&id, &approval, now).await
    } else {
        store.deny(&id, now).await
    }
    .map_err(|e| e.to_string())?;
    match outcome {
        DecideOutcome::Decided if approve => println!("approved {code} as {account}"),
        DecideOutcome::Decided => println!("denied {code}"),
        DecideOutcome::NotFound => return Err("no such request".into()),
        DecideOutcome::Expired => return Err("the request has expired".into()),
        DecideOutcome::AlreadyDecided { .. } => {
            return Err("the request was already decided".into());
        }
        DecideOutcome::Busy => return Err("the request is being changed, try again".into()),
    }
    Ok(())
}
