//! The verification page's wire format: HTML screens (compiled `maud` templates, no
//! script), the headers every page carries, its cookies, the checks every form post must
//! pass, and the one place where each outcome of the look-up, decide and sign-in use cases
//! becomes a page.

use std::time::Duration;

use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use maud::{DOCTYPE, Markup, html};

use super::Form;
use crate::config::PageConfig;
use crate::domain::{DeviceAuthorization, DeviceDetails, Grant, ScopeSet, user_code};
use crate::oidc::Challenge;
use crate::session::{CookieKeys, Expiring, Login, Purpose, Session, new_sid};
use crate::time::Timestamp;
use crate::usecase::decide::{DecideError, Decision};
use crate::usecase::grants::GrantError;
use crate::usecase::look_up::LookUpError;
use crate::usecase::sign_in::{Callback, SignInError};

/// The page's paths (the route of each is in the SAM template and the watch router).
pub const PAGE_PATH: &str = "/device";
pub const CALLBACK_PATH: &str = "/device/callback";
pub const DECIDE_PATH: &str = "/device/decide";
pub const SIGN_OUT_PATH: &str = "/device/logout";
pub const STYLE_PATH: &str = "/device/style.css";
/// The signed-in person's devices: `GET` lists them, `POST` signs one out.
pub const DEVICES_PATH: &str = "/device/devices";

/// How long a signed-in session lasts: long enough to type a code and decide.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// How long a sign-in at the provider may take.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// What a query value must escape: all but RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const SESSION_COOKIE: &str = "device_session";
const LOGIN_COOKIE: &str = "device_login";

/// Over HTTPS the cookies carry the `__Host-` prefix, which browsers accept only with
/// `Secure`, `Path=/` and no `Domain`: a sibling host (`evil.example.com` beside
/// `auth.example.com`) cannot plant or overwrite them (RFC 6265bis §4.1.3.2).
const HOST_PREFIX: &str = "__Host-";

/// No script at all; styles only from the page's own stylesheet; forms post only here;
/// never framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, small and served by the page's own function.
pub const STYLE: &str = include_str!("page.css");

/// What every page shows and needs: the deployment's branding and where it lives.
pub struct Site {
    pub service_name: String,
    pub support_url: Option<String>,
    /// `scheme://host[:port]` of the service: the only `Origin` a form post may carry.
    pub origin: String,
    /// Cookies are `Secure` unless the service runs on plain-http loopback (development).
    pub secure_cookies: bool,
    pub scope_descriptions: Vec<(String, String)>,
    pub keys: CookieKeys,
}

impl Site {
    pub fn new(config: &PageConfig) -> Self {
        let origin = match config.issuer.find("://") {
            Some(i) => match config.issuer[i + 3..].find('/') {
                Some(j) => config.issuer[..i + 3 + j].to_owned(),
                None => config.issuer.clone(),
            },
            None => config.issuer.clone(),
        };
        let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|prefix| {
                origin == *prefix
                    || origin
                        .strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with(':'))
            });
        Self {
            service_name: config.service_name.clone(),
            support_url: config.support_url.clone(),
            secure_cookies: !local,
            origin,
            scope_descriptions: config.scope_descriptions.clone(),
            keys: CookieKeys::new(&config.session_secret),
        }
    }

    /// The words the page shows for `scope`.
    fn describe<'a>(&'a self, scope: &'a str) -> &'a str {
        self.scope_descriptions
            .iter()
            .find(|(name, _)| name == scope)
            .map_or(scope, |(_, words)| words.as_str())
    }

    /// A cookie's name as this deployment sends it: with the `__Host-` prefix over HTTPS,
    /// plain on plain-HTTP loopback (where browsers refuse `Secure` cookies).
    fn cookie_name(&self, name: &str) -> String {
        if self.secure_cookies {
            format!("{HOST_PREFIX}{name}")
        } else {
            name.to_owned()
        }
    }

    /// The signed-in session the request's cookie holds, if it is valid at `now`.
    pub fn session(&self, request: &Request, now: Timestamp) -> Option<Session> {
        self.keys.open(
            Purpose::Session,
            cookie(request.headers(), &self.cookie_name(SESSION_COOKIE))?,
            now,
        )
    }

    /// The sign-in under way, from the login cookie.
    pub fn login<T: serde::de::DeserializeOwned + Expiring>(
        &self,
        request: &Request,
        now: Timestamp,
    ) -> Option<T> {
        self.keys.open(
            Purpose::Login,
            cookie(request.headers(), &self.cookie_name(LOGIN_COOKIE))?,
            now,
        )
    }

    /// A `Set-Cookie` value: sealed `value`, or removal when `None`. Over HTTPS:
    /// `__Host-name`, `Path=/` and `Secure`; on plain-HTTP loopback: `name` and the
    /// page's own path.
    fn set_cookie(&self, name: &str, sealed: Option<String>, max_age: Duration) -> String {
        let name = self.cookie_name(name);
        let (path, secure) = if self.secure_cookies {
            ("/", "; Secure")
        } else {
            (PAGE_PATH, "")
        };
        let (value, max_age) = match &sealed {
            Some(value) => (value.as_str(), max_age.as_secs()),
            None => ("", 0),
        };
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    pub fn session_cookie(&self, session: Option<&Session>) -> String {
        let sealed = session.map(|s| self.keys.seal(Purpose::Session, s));
        self.set_cookie(SESSION_COOKIE, sealed, SESSION_LIFETIME)
    }

    pub fn login_cookie<T: serde::Serialize>(&self, login: Option<&T>) -> String {
        let sealed = login.map(|l| self.keys.seal(Purpose::Login, l));
        self.set_cookie(LOGIN_COOKIE, sealed, LOGIN_LIFETIME)
    }

    /// Checks a form post: it comes from the service's own origin, from a signed-in
    /// session, and carries that session's CSRF token. Returns the session.
    pub fn check_post(
        &self,
        request: &Request,
        csrf: Option<&str>,
        now: Timestamp,
    ) -> Result<Session, Refusal> {
        if !self.same_origin(request.headers()) {
            return Err(Refusal::ForeignOrigin);
        }
        let session = self.session(request, now).ok_or(Refusal::SignedOut)?;
        match csrf {
            Some(token) if self.keys.csrf_ok(&session.sid, token) => Ok(session),
            _ => Err(Refusal::Csrf),
        }
    }

    /// Whether a post comes from this service's own pages. Browsers send the page's
    /// `Origin`, except that under `Referrer-Policy: no-referrer` (which these pages set,
    /// so that the code in a URL goes nowhere) they send `Origin: null`; then the
    /// browser's own `Sec-Fetch-Site` (which no script can set) must say `same-origin`.
    /// Anything else, or neither header, is refused.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let one = |name: header::HeaderName| {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (Some(value), None) => value.to_str().ok(),
                _ => None,
            }
        };
        match one(header::ORIGIN) {
            Some("null") => {
                one(header::HeaderName::from_static("sec-fetch-site")) == Some("same-origin")
            }
            Some(origin) => origin == self.origin,
            None => false,
        }
    }
}

/// Why a form post was refused before anything was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ForeignOrigin,
    SignedOut,
    Csrf,
}

/// The value of cookie `name`, if the request carries exactly one.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, value)| value);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// Where a sign-in returns to: the code form (filled in with the code from
/// `verification_uri_complete`, if the person came with one), or the device list.
#[derive(Debug, Clone, Copy)]
pub enum Then<'a> {
    EnterCode(Option<&'a str>),
    Devices,
}

/// Off to the provider to sign in, remembering the sign-in (and where to go next) in the
/// login cookie.
pub fn go_sign_in(
    site: &Site,
    url: &str,
    challenge: Challenge,
    then: Then<'_>,
    now: Timestamp,
) -> Response<Body> {
    let user_code = match then {
        Then::EnterCode(code) => code.filter(|code| code.len() <= user_code::MAX_INPUT_LEN),
        Then::Devices => None,
    };
    let login = Login {
        challenge,
        user_code: user_code.map(str::to_owned),
        devices: matches!(then, Then::Devices),
        exp: now.plus(LOGIN_LIFETIME).as_secs(),
    };
    redirect(url, &[site.login_cookie(Some(&login))])
}

/// What the provider sent back to the callback's query string.
pub fn callback(query: &Form) -> Callback<'_> {
    match (query.get("error"), query.get("state"), query.get("code")) {
        (None, Some(state), Some(code)) => Callback::Code { state, code },
        _ => Callback::Error,
    }
}

/// Signed in as `sub`: a fresh session, and back to the code form (filled in, if the
/// person came with a code) or the device list.
pub fn signed_in(site: &Site, login: &Login, sub: String, now: Timestamp) -> Response<Body> {
    let session = Session {
        sub,
        sid: new_sid(),
        exp: now.plus(SESSION_LIFETIME).as_secs(),
    };
    let location = match &login.user_code {
        _ if login.devices => DEVICES_PATH.to_owned(),
        Some(code) => format!(
            "{PAGE_PATH}?user_code={}",
            percent_encoding::utf8_percent_encode(code, QUERY_VALUE)
        ),
        None => PAGE_PATH.to_owned(),
    };
    let cookies = [
        site.session_cookie(Some(&session)),
        site.login_cookie::<Login>(None),
    ];
    redirect(&location, &cookies)
}

/// The callback came without a live sign-in of this browser.
pub fn sign_in_expired(site: &Site) -> Response<Body> {
    message(
        site,
        None,
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "The sign-in took too long or was started elsewhere. Start again.",
    )
}

/// The decide form's choice: approve (`true`) or deny.
pub fn decision(form: &Form) -> Option<(bool, Decision)> {
    match form.get("decision")? {
        "approve" => Some((
            true,
            Decision::Approve {
                session_id: None,
                session_token: None,
            },
        )),
        "deny" => Some((false, Decision::Deny)),
        _ => None,
    }
}

/// A page with the headers every page carries.
pub fn page(status: StatusCode, markup: Markup) -> Response<Body> {
    let mut response = Response::new(Body::from(markup.into_string()));
    *response.status_mut() = status;
    secure_headers(response.headers_mut());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The user code can be in the URL: no page may pass it on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A redirect (`303 See Other`) with the page headers and the given cookies.
pub fn redirect(location: &str, cookies: &[String]) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::SEE_OTHER;
    secure_headers(response.headers_mut());
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    with_cookies(response, cookies)
}

/// Adds `Set-Cookie` headers.
pub fn with_cookies(mut response: Response<Body>, cookies: &[String]) -> Response<Body> {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The stylesheet.
pub fn stylesheet() -> Response<Body> {
    let mut response = Response::new(Body::from(STYLE));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The frame of every screen.
fn layout(site: &Site, title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site.service_name) }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header { p.brand { (site.service_name) } }
                main { (body) }
                footer {
                    @if let Some(session) = session {
                        form method="post" action=(SIGN_OUT_PATH) {
                            input type="hidden" name="csrf" value=(site.keys.csrf_token(&session.sid));
                            span { "Signed in as " strong { (session.sub) } }
                            " · "
                            a href=(DEVICES_PATH) { "Your devices" }
                            " · "
                            button.link type="submit" { "Sign out" }
                        }
                    }
                    @if let Some(url) = &site.support_url {
                        p { a href=(url) rel="noopener" { "Help" } }
                    }
                }
            }
        }
    }
}

/// Step 3: type the code shown on the device. `prefill` comes from
/// `verification_uri_complete`; nothing is approved until the person confirms.
pub fn code_entry(
    site: &Site,
    session: &Session,
    prefill: Option<&str>,
    problem: Option<&str>,
) -> Response<Body> {
    let prefill = prefill.filter(|code| code.len() <= user_code::MAX_INPUT_LEN);
    let body = html! {
        h1 { "Connect a device" }
        p { "Enter the code shown on your TV, computer or other device." }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        form method="post" action=(PAGE_PATH) {
            input type="hidden" name="csrf" value=(site.keys.csrf_token(&session.sid));
            label for="user_code" { "Code" }
            input #user_code.code type="text" name="user_code" value=[prefill]
                required autofocus autocomplete="one-time-code" autocapitalize="characters"
                spellcheck="false" inputmode="text" maxlength="20" placeholder="BCDF-GHJK"
                aria-describedby="code-help";
            p #code-help.hint { "8 letters; the dash and spaces are optional." }
            button.primary type="submit" { "Continue" }
        }
    };
    let status = if problem.is_some() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    page(status, layout(site, "Enter your code", Some(session), body))
}

/// `13:17 UTC`.
fn clock_time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    format!("{} UTC", text.get(11..16).unwrap_or(&text))
}

/// "9 minutes", "less than a minute".
fn minutes(seconds: u64) -> String {
    match seconds / 60 {
        0 => "less than a minute".to_owned(),
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

/// Step 4: what the person is about to allow (RFC 8628 §5.4, RFC 10027 §6).
pub fn confirmation(
    site: &Site,
    session: &Session,
    record: &DeviceAuthorization,
    now: Timestamp,
) -> Response<Body> {
    let csrf = site.keys.csrf_token(&session.sid);
    let asked = now.as_secs().saturating_sub(record.created_at.as_secs());
    let left = now.secs_until(record.expires_at);
    let body = html! {
        h1 { "Allow " (record.client_name) "?" }
        p.warning role="note" {
            strong { "Only continue if you started this on your own device just now." }
            " If someone sent you this code, or you do not recognise the device, deny it."
        }
        dl.facts {
            dt { "Application" } dd { (record.client_name) }
            dt { "Code on the device" } dd.code { (record.user_code) }
            dt { "It will be able to" }
            dd { (scope_list(site, &record.scope)) }
            dt { "Requested" }
            dd { (minutes(asked)) " ago, at " (clock_time(record.created_at)) }
            dt { "From" }
            dd { (device_facts(&record.device)) }
            dt { "Time left" } dd { (minutes(left)) }
        }
        form.decide method="post" action=(DECIDE_PATH) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="id" value=(record.id.as_str());
            button.primary type="submit" name="decision" value="approve" { "Approve" }
            button.primary.deny type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    page(
        StatusCode::OK,
        layout(site, "Confirm the device", Some(session), body),
    )
}

/// A screen that ends the flow, with a way back to the start (and, signed in, to the
/// person's devices).
pub fn message(
    site: &Site,
    session: Option<&Session>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    let body = html! {
        h1 { (title) }
        p { (text) }
        p { a href=(PAGE_PATH) { "Connect another device" } }
        @if session.is_some() {
            p { a href=(DEVICES_PATH) { "See the devices signed in with your account" } }
        }
    };
    page(status, layout(site, title, session, body))
}

/// Step 5: the decision is recorded.
pub fn decided(site: &Site, session: &Session, approved: bool) -> Response<Body> {
    if approved {
        message(
            site,
            Some(session),
            StatusCode::OK,
            "Device connected",
            "You can return to your device: it will finish signing in by itself.",
        )
    } else {
        message(
            site,
            Some(session),
            StatusCode::OK,
            "Request denied",
            "The device was not allowed. You can close this page.",
        )
    }
}

/// The one page for every look-up that finds nothing, and the rate-limited page.
pub fn look_up_refused(site: &Site, session: &Session, error: LookUpError) -> Response<Body> {
    match error {
        LookUpError::TooLong | LookUpError::NotFound => code_entry(
            site,
            session,
            None,
            Some(
                "That code is not valid or has expired. Check the code on your device and try again.",
            ),
        ),
        LookUpError::RateLimited { retry_after } => {
            let mut response = message(
                site,
                Some(session),
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &format!(
                    "Too many codes were wrong. Wait {} and try again.",
                    minutes(retry_after.as_secs().max(60))
                ),
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        LookUpError::Internal(e) => internal(site, Some(session), e),
    }
}

/// The decision was not recorded.
pub fn decide_refused(site: &Site, session: &Session, error: DecideError) -> Response<Body> {
    let (status, title, text) = match error {
        DecideError::NotFound => (
            StatusCode::NOT_FOUND,
            "Request not found",
            "That code is not valid or has expired. Start again on your device.",
        ),
        DecideError::AlreadyDecided => (
            StatusCode::CONFLICT,
            "Already decided",
            "This request was already approved or denied.",
        ),
        DecideError::Busy => (
            StatusCode::CONFLICT,
            "Please try again",
            "The request was being changed. Go back and try again.",
        ),
        DecideError::ForeignSession => (
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This session cannot decide this request.",
        ),
        DecideError::Internal(e) => return internal(site, Some(session), e),
    };
    message(site, Some(session), status, title, text)
}

/// Signing in did not work.
pub fn sign_in_refused(site: &Site, error: SignInError) -> Response<Body> {
    let (status, title, text) = match &error {
        SignInError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is unavailable",
            "The sign-in service cannot be reached right now. Try again in a minute.",
        ),
        SignInError::Refused => (
            StatusCode::BAD_REQUEST,
            "Not signed in",
            "Signing in was cancelled. Start again to connect your device.",
        ),
        SignInError::StateMismatch | SignInError::Invalid(_) => (
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The sign-in could not be verified. Start again to connect your device.",
        ),
    };
    if let SignInError::Unavailable(e) | SignInError::Invalid(e) = &error {
        super::log_internal("signing in failed", e);
    }
    message(site, None, status, title, text)
}

/// A form post refused before anything was looked at.
pub fn post_refused(site: &Site, refusal: Refusal) -> Response<Body> {
    match refusal {
        Refusal::SignedOut => message(
            site,
            None,
            StatusCode::UNAUTHORIZED,
            "Your session has ended",
            "Sign in again to connect your device.",
        ),
        Refusal::ForeignOrigin | Refusal::Csrf => message(
            site,
            None,
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form did not come from this page. Open the page again and retry.",
        ),
    }
}

/// A failure of ours: logged with its cause, shown in general words.
pub fn internal(
    site: &Site,
    session: Option<&Session>,
    error: crate::usecase::Internal,
) -> Response<Body> {
    super::log_internal(error.context, &*error.source);
    if error.is_transient() {
        let mut busy = message(
            site,
            session,
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy right now",
            "The service is busy. Go back and try again in a few seconds.",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return busy;
    }
    message(
        site,
        session,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again in a minute.",
    )
}

/// `2026-11-23 13:17 UTC`.
fn date_time(at: Timestamp) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// What the scopes allow, in the deployment's words.
fn scope_list(site: &Site, scope: &ScopeSet) -> Markup {
    html! {
        @if scope.is_empty() {
            "sign in as you"
        } @else {
            ul { @for scope in scope.iter() { li { (site.describe(scope)) } } }
        }
    }
}

fn device_facts(device: &DeviceDetails) -> Markup {
    html! {
        (device.ip.as_deref().unwrap_or("an unknown address"))
        @if let Some(agent) = &device.user_agent { br; small { (agent) } }
    }
}

/// The person's signed-in devices, newest first, each with a button that signs it out
/// (its refresh token and access tokens stop working). `notice`: what the last action did.
pub fn devices(
    site: &Site,
    session: &Session,
    grants: &[Grant],
    notice: Option<&str>,
) -> Response<Body> {
    let csrf = site.keys.csrf_token(&session.sid);
    let body = html! {
        h1 { "Your devices" }
        @if let Some(notice) = notice {
            p.notice role="status" { (notice) }
        }
        @if grants.is_empty() {
            p { "No device is signed in with your account." }
        } @else {
            p { "These devices are signed in with your account. Sign out any you do not "
                "recognise or no longer use: it will have to be connected again." }
            ul.devices {
                @for grant in grants {
                    li {
                        h2 { (grant.client_name) }
                        dl.facts {
                            dt { "Can" }
                            dd { (scope_list(site, &grant.scope)) }
                            dt { "Connected" } dd { (date_time(grant.created_at)) }
                            dt { "Last used" } dd { (date_time(grant.last_used_at)) }
                            dt { "From" } dd { (device_facts(&grant.device)) }
                        }
                        form method="post" action=(DEVICES_PATH) {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="grant" value=(grant.id.as_str());
                            button.primary.deny type="submit" {
                                "Sign out " (grant.client_name)
                            }
                        }
                    }
                }
            }
        }
        p { a href=(PAGE_PATH) { "Connect a device" } }
    };
    page(
        StatusCode::OK,
        layout(site, "Your devices", Some(session), body),
    )
}

/// The device list could not be read, or a device could not be signed out.
pub fn devices_refused(site: &Site, session: &Session, error: GrantError) -> Response<Body> {
    match error {
        GrantError::Internal(e) => internal(site, Some(session), e),
        GrantError::Busy => message(
            site,
            Some(session),
            StatusCode::CONFLICT,
            "Please try again",
            "That device was being changed. Go back and try again.",
        ),
        // Not the person's, already signed out, or no such id: one answer.
        GrantError::NotFound | GrantError::FilterRequired | GrantError::InvalidPageToken(_) => {
            message(
                site,
                Some(session),
                StatusCode::NOT_FOUND,
                "Device not found",
                "That device is not signed in with your account (it may already be signed out).",
            )
        }
    }
}

/// The person signed out.
pub fn signed_out(site: &Site) -> Response<Body> {
    let response = message(
        site,
        None,
        StatusCode::OK,
        "Signed out",
        "You are signed out of this page.",
    );
    with_cookies(response, &[site.session_cookie(None)])
}

/// An unknown path or method.
pub fn not_found(site: &Site) -> Response<Body> {
    message(
        site,
        None,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing here.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FromEnv;

    fn site(issuer: &str) -> Site {
        let config = PageConfig::from_lookup(|name| {
            Some(
                match name {
                    "TABLE_NAME" => "t",
                    "ISSUER" => issuer,
                    "OIDC_ISSUER" => "https://idp.example",
                    "OIDC_CLIENT_ID" => "page",
                    "PAGE_SESSION_SECRET" => "0123456789abcdef0123456789abcdef",
                    "SCOPE_DESCRIPTIONS" => r#"{"read": "See your <files>"}"#,
                    _ => return None,
                }
                .to_owned(),
            )
        })
        .unwrap();
        Site::new(&config)
    }

    #[test]
    fn the_origin_and_cookie_security_follow_the_issuer() {
        let deployed = site("https://auth.example.com/prod");
        assert_eq!(deployed.origin, "https://auth.example.com");
        assert!(deployed.secure_cookies);
        let local = site("http://127.0.0.1:9000");
        assert_eq!(local.origin, "http://127.0.0.1:9000");
        assert!(!local.secure_cookies);
        assert!(deployed.session_cookie(None).contains("; Secure"));
        assert!(
            deployed
                .session_cookie(None)
                .contains("HttpOnly; SameSite=Lax")
        );
    }

    /// Rule 8 of the sign-out promises: over HTTPS the cookies are `__Host-` cookies (a
    /// sibling host cannot plant them), and only those are read; plain names only on
    /// plain-HTTP loopback.
    #[test]
    fn rule8_cookies_over_https_carry_the_host_prefix() {
        let session = Session {
            sub: "alice".into(),
            sid: "s".into(),
            exp: u64::MAX,
        };
        let deployed = site("https://auth.example.com/prod");
        for cookie in [
            deployed.session_cookie(Some(&session)),
            deployed.session_cookie(None),
            deployed.login_cookie(Some(&"login")),
            deployed.login_cookie::<()>(None),
        ] {
            assert!(cookie.starts_with("__Host-device_"), "{cookie}");
            assert!(cookie.contains("; Path=/;"), "{cookie}");
            assert!(cookie.ends_with("; Secure"), "{cookie}");
            assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
        }
        let local = site("http://127.0.0.1:9000");
        for cookie in [
            local.session_cookie(Some(&session)),
            local.login_cookie::<()>(None),
        ] {
            assert!(cookie.starts_with("device_"), "{cookie}");
            assert!(cookie.contains(&format!("; Path={PAGE_PATH};")), "{cookie}");
            assert!(!cookie.contains("Secure"), "{cookie}");
        }

        // A planted plain-named cookie is not read over HTTPS; the prefixed one is.
        let sealed = |site: &Site| site.keys.seal(Purpose::Session, &session);
        let request_with = |cookie: String| {
            let mut request = Request::default();
            request.headers_mut().insert(
                header::COOKIE,
                HeaderValue::from_str(&cookie).expect("a header"),
            );
            request
        };
        let planted = request_with(format!("device_session={}", sealed(&deployed)));
        assert!(
            deployed
                .session(&planted, Timestamp::from_millis(0))
                .is_none()
        );
        let own = request_with(format!("__Host-device_session={}", sealed(&deployed)));
        assert!(deployed.session(&own, Timestamp::from_millis(0)).is_some());
        let local_own = request_with(format!("device_session={}", sealed(&local)));
        assert!(
            local
                .session(&local_own, Timestamp::from_millis(0))
                .is_some()
        );
    }

    #[test]
    fn every_page_carries_the_security_headers_and_escapes_text() {
        let site = site("https://auth.example.com");
        let session = Session {
            sub: "<script>alert(1)</script>".into(),
            sid: "s".into(),
            exp: u64::MAX,
        };
        let response = code_entry(&site, &session, Some("bcdf ghjk"), None);
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"));
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        assert!(!body.contains("<script>"), "text is escaped");
        assert!(
            body.contains(r#"value="bcdf ghjk""#),
            "the code is prefilled"
        );
        assert!(!body.contains("<script"), "no script at all");
    }

    #[test]
    fn only_the_services_own_pages_may_post() {
        let site = site("https://auth.example.com/prod");
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        let ours = "https://auth.example.com";
        assert!(site.same_origin(&headers(&[("origin", ours)])));
        // What a browser sends under Referrer-Policy: no-referrer.
        assert!(site.same_origin(&headers(&[
            ("origin", "null"),
            ("sec-fetch-site", "same-origin")
        ])));
        for refused in [
            headers(&[]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "https://auth.example.com.evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            headers(&[("origin", "null"), ("sec-fetch-site", "same-site")]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("origin", ours), ("origin", "https://evil.example")]),
        ] {
            assert!(!site.same_origin(&refused), "{refused:?}");
        }
    }

    #[test]
    fn cookies_are_read_only_when_there_is_exactly_one() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; device_session=x"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("x"));
        headers.append(header::COOKIE, HeaderValue::from_static("device_session=y"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), None);
    }

    #[test]
    fn scopes_are_described_in_words_or_by_name() {
        let site = site("https://auth.example.com");
        assert_eq!(site.describe("read"), "See your <files>");
        assert_eq!(site.describe("write"), "write");
        assert_eq!(minutes(59), "less than a minute");
        assert_eq!(minutes(61), "1 minute");
        assert_eq!(minutes(600), "10 minutes");
    }
}
