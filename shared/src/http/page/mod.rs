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
use crate::domain::{
    DeviceAuthorization, DeviceDetails, Grant, ScopeSet, UserCode, UserCodeFormat, user_code,
};
use crate::oidc::{Challenge, SignedIn};
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

/// What the page says OpenID Connect's scopes allow, unless `SCOPE_DESCRIPTIONS` says
/// otherwise.
const OPENID_SCOPE_WORDS: [(&str, &str); 3] = [
    (crate::domain::OPENID, "Know who you are"),
    (crate::domain::PROFILE, "Know your name"),
    (crate::domain::EMAIL, "See your e-mail address"),
];

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
    /// The deployment's user-code format: the code form's keyboard and hint.
    pub user_code_format: UserCodeFormat,
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
            user_code_format: config.user_code_format,
        }
    }

    /// The words the page shows for `scope`: the deployment's, else the built-in words of
    /// OpenID Connect's scopes, else its name.
    fn describe<'a>(&'a self, scope: &'a str) -> &'a str {
        self.scope_descriptions
            .iter()
            .map(|(name, words)| (name.as_str(), words.as_str()))
            .chain(OPENID_SCOPE_WORDS)
            .find(|(name, _)| *name == scope)
            .map_or(scope, |(_, words)| words)
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

/// Signed in: a fresh session, and back to the code form (filled in, if the person came
/// with a code) or the device list.
pub fn signed_in(site: &Site, login: &Login, person: SignedIn, now: Timestamp) -> Response<Body> {
    let mut profile = person.profile;
    profile.auth_time = profile.auth_time.or(Some(now.as_secs()));
    let session = Session {
        sub: person.subject,
        sid: new_sid(),
        exp: now.plus(SESSION_LIFETIME).as_secs(),
        profile,
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

mod screens;
#[cfg(test)]
mod tests;

pub use screens::*;
