//! A browser, as far as the verification page's tests need one: cookies kept between
//! requests, `Origin` on form posts, redirects to the OpenID provider followed over HTTP.

use std::collections::BTreeMap;

use device_flow::outbound::Outbound;
use lambda_http::http::{Method, header};
use lambda_http::{Body, Request, Response};

use crate::env::ISSUER;

/// The cookies a browser holds for the page, and what it sends with each request.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    pub cookies: BTreeMap<String, String>,
    /// The `Origin` it sends on posts (the service's own unless a test changes it).
    pub origin: Option<String>,
}

/// The body of a response as text.
pub fn text(response: &Response<Body>) -> String {
    String::from_utf8_lossy(response.body().as_ref()).into_owned()
}

/// The value of the first hidden field `name` in a page.
pub fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

impl Browser {
    pub fn new() -> Self {
        Self {
            cookies: BTreeMap::new(),
            origin: Some(ISSUER.to_owned()),
        }
    }

    /// A request to the page, with this browser's cookies (and `Origin` on a post).
    pub fn request(&self, method: Method, path: &str, form: &[(&str, &str)]) -> Request {
        let body = form
            .iter()
            .map(|(name, value)| {
                let value = percent_encoding::utf8_percent_encode(
                    value,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("&");
        let post = method == Method::POST;
        let mut request = Request::new(if post { Body::from(body) } else { Body::Empty });
        *request.method_mut() = method;
        *request.uri_mut() = path.parse().expect("a valid path");
        let headers = request.headers_mut();
        if post {
            headers.insert(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded"
                    .parse()
                    .expect("a header"),
            );
            if let Some(origin) = &self.origin {
                headers.insert(header::ORIGIN, origin.parse().expect("a header"));
            }
        }
        if !self.cookies.is_empty() {
            let cookies = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            headers.insert(header::COOKIE, cookies.parse().expect("a header"));
        }
        request
    }

    /// Keeps (or drops) the cookies a response sets.
    pub fn absorb(&mut self, response: &Response<Body>) {
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("an ASCII cookie");
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// Follows `started` (the page's redirect to the provider) to the provider, which
    /// signs in whoever it is told to, and brings its answer back to the page's callback;
    /// returns the callback's response, its cookies kept.
    pub async fn through_provider(
        &mut self,
        page: &verification_page::App,
        started: &Response<Body>,
    ) -> Response<Body> {
        assert_eq!(started.status(), 303, "{}", text(started));
        self.absorb(started);
        let back = Outbound::new()
            .get(&location(started))
            .await
            .expect("the provider answers");
        assert_eq!(back.status(), 302);
        let callback = back.headers()[header::LOCATION]
            .to_str()
            .expect("a location")
            .strip_prefix(ISSUER)
            .expect("back to the page")
            .to_owned();
        let returned =
            verification_page::handle(page, self.request(Method::GET, &callback, &[])).await;
        self.absorb(&returned);
        returned
    }

    /// Signs in through `page` at its OpenID provider; returns the CSRF token of the new
    /// session.
    pub async fn sign_in(&mut self, page: &verification_page::App) -> String {
        let started =
            verification_page::handle(page, self.request(Method::GET, "/device", &[])).await;
        let signed_in = self.through_provider(page, &started).await;
        assert_eq!(signed_in.status(), 303, "{}", text(&signed_in));
        let form = verification_page::handle(page, self.request(Method::GET, "/device", &[])).await;
        assert_eq!(form.status(), 200, "{}", text(&form));
        hidden(&text(&form), "csrf").expect("a CSRF token on the form")
    }
}

/// A redirect's target.
pub fn location(response: &Response<Body>) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .expect("a location")
        .to_owned()
}
