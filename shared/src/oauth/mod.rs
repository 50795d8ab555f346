//! OAuth protocol logic shared by the OAuth endpoints.

pub mod client_auth;
pub mod device_authorization;

pub use client_auth::ClientCredentials;
