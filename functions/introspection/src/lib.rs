//! `POST /oauth2/v1/revoke` (RFC 7009) and `POST /oauth2/v1/introspect` (RFC 7662): a
//! device signs out, a resource server asks whether a token is still good. And `GET` or
//! `POST /oauth2/v1/userinfo` (OpenID Connect Core §5.3): a device asks, with its access
//! token, who signed it in. All three verify access tokens the same way.
//!
//! Reads the form and the client's credentials (or the bearer token), asks [`revoke`],
//! [`introspect`] or [`userinfo`], and renders the outcome in RFC 6749's error format
//! (with RFC 6750's `WWW-Authenticate: Bearer` for UserInfo).

use device_flow::http::Form;
use device_flow::http::oauth::{
    OAuthError, client_credentials, introspection_response, revoked_response, userinfo_response,
};
use device_flow::permissions::Permissions;
use device_flow::time::{Clock, SystemClock};
use device_flow::usecase::introspection::{AccessTokens, TokenRequest, introspect, revoke};
use device_flow::usecase::userinfo::{UserInfoError, userinfo};
use device_flow::user_auth::{AuthError, bearer_token};
use device_flow::{IntrospectionConfig, Store};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The parameters these endpoints read; only these are named in error messages.
const KNOWN_PARAMETERS: [&str; 4] = ["client_id", "client_secret", "token", "token_type_hint"];

pub const REVOKE_PATH: &str = "/oauth2/v1/revoke";
pub const INTROSPECT_PATH: &str = "/oauth2/v1/introspect";
pub const USERINFO_PATH: &str = "/oauth2/v1/userinfo";

/// The AWS permissions this function needs, no more: the deployment template grants exactly
/// these, and the tests check that the code uses each of them. Reads the calling client, the
/// grant and the refresh token in one batch, reads the published JWKS, and revokes a grant.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ],
    writes: &["GRANT#"],
    index: &[],
    client_index: &[],
    signing_key_secret: &[],
    page_client_secret: &[],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub store: Store,
    pub keys: AccessTokens,
    pub clock: Box<dyn Clock>,
}

impl App {
    pub fn new(config: &IntrospectionConfig, store: Store) -> Self {
        Self {
            store,
            keys: AccessTokens::new(config),
            clock: Box::new(SystemClock),
        }
    }
}

/// Handles one request; every outcome is an HTTP response with `Cache-Control: no-store`.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    answer(app, &request)
        .await
        .unwrap_or_else(OAuthError::into_response)
}

async fn answer(app: &App, request: &Request) -> Result<Response<Body>, OAuthError> {
    let path = request.uri().path();
    if path.ends_with(USERINFO_PATH) {
        let token = userinfo_token(request)?;
        let info = userinfo(&app.store, &app.keys, app.clock.as_ref(), token.as_deref()).await?;
        return Ok(userinfo_response(info));
    }
    if request.method() != Method::POST {
        return Err(OAuthError::invalid_request("use POST"));
    }
    let form = Form::parse(request.headers(), request.body())
        .map_err(|e| OAuthError::from_form(&e, &KNOWN_PARAMETERS))?;
    let credentials = client_credentials(request.headers(), &form)?;
    // `token_type_hint` is only a hint (RFC 7009 §2.1): both kinds are recognised by form.
    let token_request = TokenRequest {
        credentials,
        token: form.get("token").map(str::to_owned),
    };
    let clock = app.clock.as_ref();
    if path.ends_with(INTROSPECT_PATH) {
        let active = introspect(&app.store, &app.keys, clock, token_request).await?;
        Ok(introspection_response(active.as_ref()))
    } else {
        revoke(&app.store, &app.keys, clock, token_request).await?;
        Ok(revoked_response())
    }
}

/// UserInfo's access token: from `Authorization: Bearer` (RFC 6750 §2.1) or, on a `POST`,
/// the form's `access_token` (§2.2); never both. `None`: no token at all.
fn userinfo_token(request: &Request) -> Result<Option<String>, UserInfoError> {
    let header = match bearer_token(request.headers()) {
        Ok(token) => Some(token.to_owned()),
        Err(AuthError::Missing) => None,
        Err(_) => return Err(UserInfoError::InvalidToken),
    };
    let body = match *request.method() {
        Method::GET => None,
        Method::POST if request.headers().contains_key("content-type") => {
            Form::parse(request.headers(), request.body())
                .map_err(|_| UserInfoError::InvalidRequest("the form body is not valid"))?
                .get("access_token")
                .map(str::to_owned)
        }
        Method::POST => None,
        _ => return Err(UserInfoError::InvalidRequest("use GET or POST")),
    };
    match (header, body) {
        (Some(_), Some(_)) => Err(UserInfoError::InvalidRequest(
            "send the access token once: in the Authorization header or the body",
        )),
        (header, body) => Ok(header.or(body)),
    }
}
