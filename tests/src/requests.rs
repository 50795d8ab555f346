//! Requests as API Gateway hands them to a function, and reading responses.

use std::collections::HashMap;
use std::sync::OnceLock;

use base64::Engine as _;
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, RequestExt as _, Response};

/// The route templates of the deployment (`[workspace.metadata.lambda.watch.router]`, which
/// the deployment tests hold equal to the SAM template's routes).
fn route_templates() -> &'static [String] {
    static TEMPLATES: OnceLock<Vec<String>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let manifest: toml::Table = include_str!("../../Cargo.toml")
            .parse()
            .expect("the workspace manifest parses");
        manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
            .as_table()
            .expect("the watch router")
            .keys()
            .cloned()
            .collect()
    })
}

/// Sets the path parameters of the route `request`'s path matches, as API Gateway does
/// before it invokes the function (values as sent: `cargo lambda watch` does not decode).
pub fn routed(request: Request) -> Request {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').collect();
    for template in route_templates() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut parameters = HashMap::new();
        let matched = parts.iter().zip(&segments).all(|(part, segment)| {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) if !segment.is_empty() => {
                    parameters.insert(name.to_owned(), segment.to_string());
                    true
                }
                Some(_) => false,
                None => part == segment,
            }
        });
        if matched {
            return if parameters.is_empty() {
                request
            } else {
                request.with_path_parameters(parameters)
            };
        }
    }
    request
}

/// A `POST` with a form body, as API Gateway hands it to the function.
pub fn form_post(path: &str, body: impl Into<Body>) -> Request {
    let mut request = Request::new(body.into());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = path.parse().expect("a valid path");
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().expect("header"),
    );
    request
}

/// Adds `Authorization: Basic` with RFC 6749 §2.3.1 encoding of id and secret.
pub fn with_basic(mut request: Request, id: &str, secret: &str) -> Request {
    let encode = |s: &str| percent_encode_form(s);
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(id),
        encode(secret)
    ));
    request.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Basic {credentials}").parse().expect("header"),
    );
    request
}

fn percent_encode_form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The response body as JSON.
pub fn json(response: &Response<Body>) -> serde_json::Value {
    serde_json::from_slice(response.body().as_ref()).unwrap_or_else(|e| {
        panic!(
            "the body is not JSON ({e}): {}",
            String::from_utf8_lossy(response.body().as_ref())
        )
    })
}

/// A token request for `device_code` by the public client `client_id`.
pub fn token_request(client_id: &str, device_code: &str) -> Request {
    form_post(
        "/oauth2/v1/token",
        format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code\
             &client_id={client_id}&device_code={device_code}"
        ),
    )
}

/// A request to a discovery route.
pub fn get(path: &str) -> Request {
    let mut request = Request::new(Body::Empty);
    *request.uri_mut() = path.parse().expect("a valid path");
    request
}

/// A request to the admin API.
pub fn admin_request(
    method: Method,
    path_and_query: &str,
    body: Option<serde_json::Value>,
    token: Option<&str>,
) -> Request {
    let mut request = Request::new(body.map_or(Body::Empty, |b| Body::from(b.to_string())));
    *request.method_mut() = method;
    *request.uri_mut() = path_and_query.parse().expect("a valid path");
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    routed(request)
}

/// An administrator's request to delete `client_id` (with its codes and grants).
pub fn delete_client_request(client_id: &str) -> Request {
    let token = crate::admin_token("root");
    admin_request(
        Method::DELETE,
        &format!("/admin/oauth/clients/{client_id}"),
        None,
        Some(&token),
    )
}

/// A request to the verification API with `token` as bearer (if any).
pub fn verification_request(
    method: Method,
    path_rest: &str,
    body: Body,
    token: Option<&str>,
) -> Request {
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = format!("/v2/oidc/device_authorization/{path_rest}")
        .parse()
        .expect("a valid path");
    if let Some(token) = token {
        request.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("header"),
    );
    routed(request)
}

/// Sets the source IP API Gateway would report.
pub fn from_ip(request: Request, ip: &str) -> Request {
    use lambda_http::RequestExt as _;
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.http.source_ip = Some(ip.to_owned());
    request.with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context))
}
