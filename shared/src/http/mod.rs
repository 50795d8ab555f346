//! The HTTP layer the functions' handlers use: strict form bodies, HTTP Basic
//! credentials, JSON responses, and the three error formats of the API, each with the one
//! mapping of every use-case outcome into it.
//!
//! - [`oauth`]: RFC 6749 §5.2 (and RFC 8628 §3.5) for `/oauth2/v1/*`.
//! - [`verification_api`]: the verification API, in Zitadel's `{code, message, details}`.
//! - [`admin_api`]: the admin API, in Storyden's `{error, message, suggested, metadata}`.
//! - [`page`]: plain HTML pages for the person in a browser (the verification page).
//!
//! Server-side failures are logged here with their cause chain, and the client sees only
//! a generic message. Client-facing messages are fixed strings chosen by the code, so no
//! secret, code or token can reach them.

pub mod admin_api;
pub mod oauth;
pub mod page;
pub mod verification_api;

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::str::Utf8Error;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::{HeaderMap, HeaderValue, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt as _, Response};
use percent_encoding::{percent_decode, percent_decode_str};
use serde::Serialize;

/// Largest form body accepted. A device or token request is a few hundred bytes; this
/// leaves room for long scopes while bounding the work any request can cause.
pub const MAX_FORM_BYTES: usize = 8 * 1024;

/// Most parameters accepted in one form body.
pub const MAX_FORM_FIELDS: usize = 32;

/// Runs a function on the Lambda runtime: `app` is what its cold start built (kept for the
/// instance's life), `handle` answers each request with it, one at a time, as Lambda sends
/// them.
///
/// `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances; `cargo lambda watch` always sets
/// it) is not used: serving several requests at once on an instance would take the Lambda
/// runtime's concurrent mode, about 20 kB more in every binary, for a deployment model the
/// template does not use. [`crate::telemetry`] keeps the runtime's warning about it out of
/// the logs.
pub async fn serve<A, H, F>(app: A, handle: H) -> Result<(), lambda_http::Error>
where
    A: Sync + 'static,
    H: Fn(&'static A, Request) -> F + Copy + Send + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let app: &'static A = Box::leak(Box::new(app));
    // The handler's future is made inside the runtime's own: made outside and moved in, a
    // future of several kilobytes (the SDK's) is copied once more per request, which
    // callgrind counts at about 18,000 instructions per pending poll.
    lambda_http::run(lambda_http::service_fn(move |request| async move {
        Ok::<_, std::convert::Infallible>(handle(app, request).await)
    }))
    .await
}

/// Logs an internal failure with its whole source chain.
pub fn log_internal(context: &str, error: &(dyn StdError + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "{context}");
}

/// A request body's bytes (`None` for a body kind API Gateway never sends).
pub fn body_bytes(body: &Body) -> Option<&[u8]> {
    match body {
        Body::Empty => Some(&[]),
        Body::Text(text) => Some(text.as_bytes()),
        Body::Binary(bytes) => Some(bytes),
        _ => None,
    }
}

/// The route's path parameter `name`, as API Gateway (and `cargo lambda watch`) hands it
/// over: `None` when the route has none by that name; `Some(Err(_))` when it does not
/// percent-decode to UTF-8.
///
/// API Gateway passes parameters already decoded and `cargo lambda watch` as sent;
/// decoding once more is safe because no valid user code, record id or client id
/// contains `%`.
pub fn path_parameter(request: &Request, name: &str) -> Option<Result<String, Utf8Error>> {
    let raw = request.path_parameters_ref()?.first(name)?.to_owned();
    Some(percent_decode_str(&raw).decode_utf8().map(Cow::into_owned))
}

/// The source IP API Gateway saw, when there is a request context.
pub fn source_ip(request: &Request) -> Option<&str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Marks a response as never to be stored by a cache (it carries a code, a secret, a token
/// or a person's data).
pub fn no_store(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The request's `User-Agent`, when it is one valid header.
pub fn user_agent(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
}

/// A JSON response with the given status.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    // Serialising our own response types cannot fail (no maps with non-string keys, no
    // failing `Serialize` impls); the fallback keeps even that case a valid answer.
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Why a form body was refused. Every variant is the client's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("the body must be application/x-www-form-urlencoded (UTF-8)")]
    WrongContentType,
    #[error("the body is too large")]
    TooLarge,
    #[error("the body is not valid UTF-8")]
    NotUtf8,
    #[error("the body has too many parameters")]
    TooManyFields,
    #[error("a parameter is repeated")]
    Repeated(String),
}

/// A parsed `application/x-www-form-urlencoded` body (RFC 6749 Appendix B), strict:
/// - the `Content-Type` must say so (any `charset` must be UTF-8);
/// - every name and value must percent-decode to valid UTF-8 (no silent replacement);
/// - a parameter may appear at most once (RFC 6749 §3.1, §3.2), except `resource`, which
///   RFC 8707 §2 lets a client repeat (see [`Form::resources`]);
/// - a parameter sent without a value is treated as omitted (RFC 6749 §3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form(HashMap<String, String>, Vec<String>);

/// The one parameter that may be repeated (RFC 8707 §2).
pub const RESOURCE_PARAMETER: &str = "resource";

impl Form {
    ///
    /// A request with no body and no `Content-Type` (`curl -u id:secret -X POST ...`) is
    /// an empty form: there is nothing to misread.
    pub fn parse(headers: &HeaderMap, body: &Body) -> Result<Self, FormError> {
        let bytes = body_bytes(body).ok_or(FormError::WrongContentType)?;
        let untyped_empty = bytes.is_empty() && !headers.contains_key(header::CONTENT_TYPE);
        if !untyped_empty && !is_form_content_type(headers) {
            return Err(FormError::WrongContentType);
        }
        Self::parse_bytes(bytes)
    }

    /// Parses the body bytes alone.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, FormError> {
        if bytes.len() > MAX_FORM_BYTES {
            return Err(FormError::TooLarge);
        }
        let mut fields = HashMap::new();
        let mut resources = Vec::new();
        let mut seen = 0usize;
        for pair in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            seen += 1;
            if seen > MAX_FORM_FIELDS {
                return Err(FormError::TooManyFields);
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if name == RESOURCE_PARAMETER {
                resources.push(value);
                continue;
            }
            // A name seen before is repeated even if one of the two values is empty.
            if fields.insert(name.clone(), value).is_some() {
                return Err(FormError::Repeated(name));
            }
        }
        fields.retain(|_, value: &mut String| !value.is_empty());
        Ok(Self(fields, resources))
    }

    /// Every `resource` value (RFC 8707 §2), in the order sent, empty ones included (an
    /// empty one is no absolute URI, which the use case refuses).
    pub fn resources(&self) -> &[String] {
        &self.1
    }

    /// The parameter's value; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// `application/x-www-form-urlencoded`, optionally with `charset=utf-8`, case-insensitive.
fn is_form_content_type(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|media| media.eq_ignore_ascii_case("application/x-www-form-urlencoded"))
    {
        return false;
    }
    parts.all(|param| match param.split_once('=') {
        Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => {
            let charset = charset.trim().trim_matches('"');
            charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    })
}

/// Decodes one form component: `+` is a space, `%XX` a byte, and the result must be UTF-8.
fn decode_component(raw: &[u8]) -> Result<String, FormError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| FormError::NotUtf8)
}

/// What the `Authorization` header holds, as far as client authentication cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    None,
    /// HTTP Basic with the form-decoded client id and secret (RFC 6749 §2.3.1).
    Basic {
        username: String,
        password: String,
    },
    /// A header that is present but not usable Basic credentials (another scheme,
    /// bad base64, no colon, repeated header).
    Malformed,
}

/// Reads HTTP Basic client credentials. RFC 6749 §2.3.1 has the client id and secret
/// form-urlencoded before they are joined with `:` and base64-encoded, so each half is
/// form-decoded here.
pub fn basic_credentials(headers: &HeaderMap) -> Authorization {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Authorization::None,
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Authorization::Malformed,
    };
    let Some(decoded) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, encoded)| STANDARD.decode(encoded.trim()).ok())
    else {
        return Authorization::Malformed;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return Authorization::Malformed;
    };
    match (
        decode_component(&decoded[..colon]),
        decode_component(&decoded[colon + 1..]),
    ) {
        (Ok(username), Ok(password)) => Authorization::Basic { username, password },
        _ => Authorization::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h
    }

    #[test]
    fn parses_and_decodes_fields() {
        let form = Form::parse_bytes(b"client_id=demo-cli&scope=read+write&x=%C3%A9").unwrap();
        assert_eq!(form.get("client_id"), Some("demo-cli"));
        assert_eq!(form.get("scope"), Some("read write"));
        assert_eq!(form.get("x"), Some("é"));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let form = Form::parse_bytes(b"scope=&client_id=a&flag").unwrap();
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.get("flag"), None);
    }

    #[test]
    fn repeated_parameters_are_refused_even_when_one_is_empty() {
        for body in [&b"a=1&a=2"[..], b"a=1&a=", b"a=&a=1", b"a=1&a=1"] {
            assert_eq!(
                Form::parse_bytes(body),
                Err(FormError::Repeated("a".into()))
            );
        }
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert_eq!(Form::parse_bytes(b"a=%FF"), Err(FormError::NotUtf8));
        assert_eq!(Form::parse_bytes(b"a=\xff"), Err(FormError::NotUtf8));
        assert_eq!(Form::parse_bytes(b"%C3=1"), Err(FormError::NotUtf8));
    }

    #[test]
    fn size_and_field_count_are_bounded() {
        let big = vec![b'a'; MAX_FORM_BYTES + 1];
        assert_eq!(Form::parse_bytes(&big), Err(FormError::TooLarge));
        let many: Vec<String> = (0..=MAX_FORM_FIELDS).map(|i| format!("f{i}=1")).collect();
        assert_eq!(
            Form::parse_bytes(many.join("&").as_bytes()),
            Err(FormError::TooManyFields)
        );
    }

    #[test]
    fn content_type_must_be_a_utf8_form() {
        let body = Body::from("a=1");
        assert!(Form::parse(&form_headers(), &body).is_ok());
        for ok in [
            "Application/X-WWW-Form-Urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/x-www-form-urlencoded;charset=\"utf-8\"",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(Form::parse(&h, &body).is_ok(), "{ok}");
        }
        for bad in [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded; charset=iso-8859-1",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(bad));
            assert_eq!(
                Form::parse(&h, &body).unwrap_err(),
                FormError::WrongContentType,
                "{bad}"
            );
        }
        assert_eq!(
            Form::parse(&HeaderMap::new(), &body).unwrap_err(),
            FormError::WrongContentType
        );
        // No body and no content type is an empty form; a typed empty body too.
        assert_eq!(
            Form::parse(&HeaderMap::new(), &Body::Empty),
            Ok(Form::default())
        );
        assert_eq!(
            Form::parse(&form_headers(), &Body::Empty),
            Ok(Form::default())
        );
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        assert_eq!(
            Form::parse(&json, &Body::Empty),
            Err(FormError::WrongContentType)
        );
    }

    fn auth(value: &str) -> Authorization {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        basic_credentials(&h)
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // "my%20client:p%3Ass+word" -> client "my client", secret "p:ss word".
        let encoded = STANDARD.encode("my%20client:p%3Ass+word");
        assert_eq!(
            auth(&format!("Basic {encoded}")),
            Authorization::Basic {
                username: "my client".into(),
                password: "p:ss word".into()
            }
        );
        assert_eq!(
            auth(&format!("basic {}", STANDARD.encode("a:b"))),
            Authorization::Basic {
                username: "a".into(),
                password: "b".into()
            }
        );
    }

    #[test]
    fn malformed_authorization_headers() {
        assert_eq!(basic_credentials(&HeaderMap::new()), Authorization::None);
        for bad in [
            "Bearer abc".to_string(),
            "Basic !!!".to_string(),
            format!("Basic {}", STANDARD.encode("no-colon")),
            format!("Basic {}", STANDARD.encode(b"a:\xff")),
            "Basic".to_string(),
        ] {
            assert_eq!(auth(&bad), Authorization::Malformed, "{bad}");
        }
        let mut h = HeaderMap::new();
        let v = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("a:b"))).unwrap();
        h.append(header::AUTHORIZATION, v.clone());
        h.append(header::AUTHORIZATION, v);
        assert_eq!(basic_credentials(&h), Authorization::Malformed);
    }
}
