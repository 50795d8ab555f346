//! What the fuzz targets share: a configuration built the way a deployment's is.

use device_flow::{FromEnv, PageConfig};

/// The verification page's configuration, with `secret` as its 32-byte key.
pub fn page_config(secret: &str) -> PageConfig {
    PageConfig::from_lookup(|name| {
        Some(
            match name {
                "TABLE_NAME" => "fuzz",
                "ISSUER" => "https://auth.example",
                "OIDC_ISSUER" => "https://idp.example",
                "OIDC_CLIENT_ID" => "page",
                "PAGE_SESSION_SECRET" => secret,
                _ => return None,
            }
            .to_owned(),
        )
    })
    .expect("a page configuration")
}
