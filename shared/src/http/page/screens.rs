//! The screens: compiled `maud` templates (no script), each a whole page with the
//! headers every page carries.

use super::*;
use crate::domain::Charset;

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
    // The keyboard for the code the link carried, else for the deployment's format: a
    // number pad for digits (a letter code typed on one would be hard).
    let format = prefill
        .and_then(|code| UserCode::parse(code).ok())
        .map_or(site.user_code_format, |code| code.format());
    let (inputmode, example, hint) = match format.charset() {
        Charset::Digits => (
            "numeric",
            "123-456-789",
            format!(
                "{} digits; the dashes and spaces are optional.",
                format.length()
            ),
        ),
        Charset::Letters => (
            "text",
            "BCDF-GHJK",
            format!(
                "{} letters; the dash and spaces are optional.",
                format.length()
            ),
        ),
    };
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
                spellcheck="false" inputmode=(inputmode) maxlength="20" placeholder=(example)
                aria-describedby="code-help";
            p #code-help.hint { (hint) }
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
pub(super) fn minutes(seconds: u64) -> String {
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
        crate::http::log_internal("signing in failed", e);
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
    crate::http::log_internal(error.context, &*error.source);
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
