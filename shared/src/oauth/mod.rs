//! OAuth protocol logic shared by the OAuth endpoints.

pub mod client_auth;

pub use client_auth::ClientCredentials;
