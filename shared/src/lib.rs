//! The crate every function of the device-flow service uses: domain types, the
//! DynamoDB store, configuration, OAuth client authentication, HTTP helpers and the
//! three error formats.

pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod oauth;
pub mod permissions;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod token;
pub mod user_auth;

pub use config::{
    Config, CursorSecret, LookupLimits, SigningKeysSource, UserTokenAlgorithm, UserTokenConfig,
    UserTokenKey,
};
pub use store::Store;
