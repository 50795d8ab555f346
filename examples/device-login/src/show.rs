//! What the person sees: the code, large and with a QR code, the spinner while they
//! decide, and the signed-in token's claims, verified against the published keys.

use super::*;

/// Shows the code large and clear, where to enter it, and a QR code of the direct link.
pub(crate) fn show_code(details: &StandardDeviceAuthorizationResponse, qr: bool) {
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
pub(crate) fn spinner(deadline: Instant) -> ProgressBar {
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

/// Who signed in, from a verified ID token.
pub(crate) struct Person {
    name: Option<String>,
    email: Option<String>,
}

/// Verifies an ID token (OpenID Connect Core §3.1.3.7) with the `openidconnect` crate:
/// signed by a published key, issued by `issuer` for `client_id`, unexpired, and bound to
/// `access_token` by its `at_hash`. The device flow sends no nonce, so none is checked.
pub(crate) async fn verify_id_token(
    http: &reqwest::Client,
    jwks_uri: Option<&str>,
    issuer: &str,
    client_id: &str,
    id_token: &str,
    access_token: &str,
) -> Result<Person, String> {
    use openidconnect::core::{
        CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    };
    use openidconnect::{AccessToken, AccessTokenHash, IssuerUrl, Nonce};
    let jwks_uri = jwks_uri.ok_or("the server publishes no JWKS")?;
    let jwks: CoreJsonWebKeySet = serde_json::from_slice(&fetch(http, jwks_uri).await?)
        .map_err(|_| "the JWKS is malformed".to_owned())?;
    let id_token: CoreIdToken = id_token
        .parse()
        .map_err(|_| "the ID token is malformed".to_owned())?;
    let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|e| e.to_string())?;
    let verifier = CoreIdTokenVerifier::new_public_client(
        openidconnect::ClientId::new(client_id.to_owned()),
        issuer,
        jwks,
    )
    .set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let no_nonce = |_: Option<&Nonce>| Ok(());
    let claims = id_token
        .claims(&verifier, no_nonce)
        .map_err(|e| short(&e.to_string()))?;
    let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
    let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
    let expected =
        AccessTokenHash::from_token(&AccessToken::new(access_token.to_owned()), alg, key)
            .map_err(|e| e.to_string())?;
    if claims.access_token_hash() != Some(&expected) {
        return Err("its at_hash does not match the access token".to_owned());
    }
    Ok(Person {
        name: claims
            .name()
            .and_then(|name| name.get(None))
            .map(|name| name.to_string())
            .or_else(|| claims.preferred_username().map(|name| name.to_string())),
        email: claims.email().map(|email| email.to_string()),
    })
}

/// Prints who signed in (by name, from the verified ID token when there is one), with
/// which scopes, until when; verifying the access token's signature against the server's
/// JWKS when it publishes one.
pub(crate) async fn describe_token(
    http: &reqwest::Client,
    jwks_uri: Option<&str>,
    token: &str,
    person: Option<Result<Person, String>>,
) {
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
    match &person {
        Some(Ok(Person {
            name: Some(name),
            email: Some(email),
        })) => eprintln!("✔ Signed in as {name} ({email})"),
        Some(Ok(Person {
            name: Some(name), ..
        })) => eprintln!("✔ Signed in as {name}"),
        Some(Ok(Person {
            email: Some(email), ..
        })) => eprintln!("✔ Signed in as {} ({email})", claims.sub),
        _ => eprintln!("✔ Signed in as {}", claims.sub),
    }
    eprintln!("  scopes:  {}", claims.scope.as_deref().unwrap_or("(none)"));
    if let Some(client) = &claims.client_id {
        eprintln!("  client:  {client}");
    }
    eprintln!("  expires: in {minutes} minutes");
    match verified {
        Ok(_) => eprintln!("  signature verified with the server's published keys"),
        Err(why) => eprintln!("  signature NOT verified: {why}"),
    }
    match person {
        Some(Ok(_)) => {
            eprintln!("  ID token verified (openidconnect): issuer, audience, keys, at_hash")
        }
        Some(Err(why)) => eprintln!("  ID token NOT verified: {why}"),
        None => {}
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    Ok(http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| short(&e.to_string()))?
        .bytes()
        .await
        .map_err(|e| short(&e.to_string()))?
        .to_vec())
}

async fn verify(http: &reqwest::Client, jwks_uri: &str, token: &str) -> Result<Claims, String> {
    let bytes = fetch(http, jwks_uri).await?;
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
