//! The verification page (RFC 8628 §3.3, §5.4): the address a device shows. A person signs
//! in with the deployment's OpenID provider, types the code, sees what they are about to
//! allow, and approves or denies, through the same [`look_up`] and [`decide`] use cases
//! as the verification API, in-process.
//!
//! `GET /device` (sign in, then the code form), `GET /device/callback` (back from the
//! provider), `POST /device` (the code), `POST /device/decide`, `POST /device/logout`,
//! `GET /device/style.css`, and the person's own devices through the [`list_my_grants`]
//! and [`revoke_my_grant`] use cases: `GET /device/devices` (the list) and
//! `POST /device/devices` (sign one out). Every page: no script, a strict CSP, never
//! framed or cached.

use device_flow::domain::{DeviceAuthorizationId, GrantId};
use device_flow::http::page::{self, CALLBACK_PATH, DECIDE_PATH, PAGE_PATH, SIGN_OUT_PATH};
use device_flow::http::page::{DEVICES_PATH, Refusal, STYLE_PATH, Site, Then};
use device_flow::http::{Form, source_ip};
use device_flow::oidc::{OidcError, RelyingParty};
use device_flow::permissions::Permissions;
use device_flow::session::{Login, Session};
use device_flow::store::Requester;
use device_flow::time::{Clock, SystemClock, Timestamp};
use device_flow::usecase::decide::{DecideError, decide};
use device_flow::usecase::grants::{list_my_grants, revoke_my_grant};
use device_flow::usecase::look_up::look_up;
use device_flow::usecase::sign_in::{begin_sign_in, finish_sign_in};
use device_flow::user_auth::User;
use device_flow::{PageConfig, Store};
use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};

/// The AWS permissions this function needs, no more: the deployment template grants exactly these,
/// and the tests check that the code uses each of them. The verification API's (look-up counters,
/// claims, records), the person's grants (listed from the listing index, revoked by one
/// update) and the OpenID client secret at cold start.
pub const PERMISSIONS: Permissions = Permissions {
    table: &[
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ],
    writes: &["DEVICE#", "GRANT#", "RATE#"],
    index: &["dynamodb:Query"],
    client_index: &[],
    signing_key_secret: &[],
    page_client_secret: &["secretsmanager:GetSecretValue"],
};

/// Everything a request needs, built once per cold start.
pub struct App {
    pub config: PageConfig,
    pub store: Store,
    pub site: Site,
    pub provider: RelyingParty,
    pub clock: Box<dyn Clock>,
}

impl App {
    /// `client_secret`: the OpenID client's secret, read at cold start, if it has one.
    pub fn new(
        config: PageConfig,
        store: Store,
        client_secret: Option<String>,
    ) -> Result<Self, OidcError> {
        let callback = format!("{}{CALLBACK_PATH}", config.issuer);
        let (issuer, client_id) = (&config.provider.issuer, &config.provider.client_id);
        let provider = RelyingParty::new(issuer, client_id, client_secret, &callback)?;
        Ok(Self {
            site: Site::new(&config),
            config,
            store,
            provider,
            clock: Box::new(SystemClock),
        })
    }
}

/// Handles one request; every outcome is a page.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let now = app.clock.now();
    let path = match request.uri().path() {
        "/device/" => PAGE_PATH,
        path => path,
    };
    let query = Form::parse_bytes(request.uri().query().unwrap_or_default().as_bytes());
    let query = query.unwrap_or_default();
    match (request.method().clone(), path) {
        (Method::GET, PAGE_PATH) => {
            // Signed in: the code form, filled in from `verification_uri_complete` but
            // never submitted for the person. Otherwise: off to the provider.
            let prefill = query.get("user_code");
            if let Some(session) = app.site.session(&request, now) {
                return page::code_entry(&app.site, &session, prefill, None);
            }
            sign_in(app, Then::EnterCode(prefill), now).await
        }
        (Method::GET, DEVICES_PATH) => match app.site.session(&request, now) {
            Some(session) => devices(app, &session, None).await,
            None => sign_in(app, Then::Devices, now).await,
        },
        (Method::GET, CALLBACK_PATH) => {
            let Some(login) = app.site.login::<Login>(&request, now) else {
                return page::sign_in_expired(&app.site);
            };
            let callback = page::callback(&query);
            match finish_sign_in(&app.provider, &login.challenge, callback).await {
                Ok(signed_in) => page::signed_in(&app.site, &login, signed_in, now),
                Err(e) => {
                    let clear = app.site.login_cookie::<Login>(None);
                    page::with_cookies(page::sign_in_refused(&app.site, e), &[clear])
                }
            }
        }
        (Method::GET, STYLE_PATH) => page::stylesheet(),
        (Method::POST, PAGE_PATH | DECIDE_PATH | SIGN_OUT_PATH | DEVICES_PATH) => {
            post(app, &request, path, now).await
        }
        _ => page::not_found(&app.site),
    }
}

/// Off to the provider; back to `then` afterwards.
async fn sign_in(app: &App, then: Then<'_>, now: Timestamp) -> Response<Body> {
    match begin_sign_in(&app.provider).await {
        Ok((url, challenge)) => page::go_sign_in(&app.site, &url, challenge, then, now),
        Err(e) => page::sign_in_refused(&app.site, e),
    }
}

/// The person's devices, with what the last action did.
async fn devices(app: &App, session: &Session, notice: Option<&str>) -> Response<Body> {
    match list_my_grants(&app.store, app.clock.as_ref(), &user(session)).await {
        Ok(grants) => page::devices(&app.site, session, &grants, notice),
        Err(e) => page::devices_refused(&app.site, session, e),
    }
}

fn user(session: &Session) -> User {
    User {
        account_id: session.sub.clone(),
        permissions: Vec::new(),
        profile: session.profile.clone(),
    }
}

/// The four forms: each must come from this origin, a live session and its CSRF token.
async fn post(app: &App, request: &Request, path: &str, now: Timestamp) -> Response<Body> {
    let site = &app.site;
    let Ok(form) = Form::parse(request.headers(), request.body()) else {
        return page::post_refused(site, Refusal::Csrf);
    };
    let session = match site.check_post(request, form.get("csrf"), now) {
        Ok(session) => session,
        Err(Refusal::SignedOut) if path == SIGN_OUT_PATH => return page::signed_out(site),
        Err(refusal) => return page::post_refused(site, refusal),
    };
    let clock = app.clock.as_ref();
    if path == PAGE_PATH {
        let requester = Requester {
            account_id: &session.sub,
            source_ip: source_ip(request),
        };
        let typed = form.get("user_code").unwrap_or_default();
        let limits = &app.config.lookup_limits;
        return match look_up(&app.store, limits, clock, requester, typed).await {
            Ok(record) => page::confirmation(site, &session, &record, now),
            Err(e) => page::look_up_refused(site, &session, e),
        };
    }
    if path == SIGN_OUT_PATH {
        return page::signed_out(site);
    }
    if path == DEVICES_PATH {
        let id = form.get("grant").and_then(GrantId::parse);
        return match revoke_my_grant(&app.store, clock, &user(&session), id).await {
            Ok(()) => devices(app, &session, Some("The device was signed out.")).await,
            Err(e) => page::devices_refused(site, &session, e),
        };
    }
    let Some((approve, decision)) = page::decision(&form) else {
        return page::post_refused(site, Refusal::Csrf);
    };
    let Some(id) = form.get("id").and_then(DeviceAuthorizationId::parse) else {
        return page::decide_refused(site, &session, DecideError::NotFound);
    };
    match decide(&app.store, None, clock, &user(&session), &id, decision).await {
        Ok(()) => page::decided(site, &session, approve),
        Err(e) => page::decide_refused(site, &session, e),
    }
}
