//! The crate every function of the device-flow service uses.
//!
//! Layers, top to bottom (an arrow never points up):
//! - [`http`]: the wire formats: forms, credentials, success bodies and the three error
//!   formats, each outcome rendered in one place;
//! - [`usecase`]: one module per thing a device, a person or an administrator does, typed
//!   in and typed out, no HTTP;
//! - [`domain`] (types that validate on construction, pure decisions) and [`store`] (the
//!   DynamoDB table), with [`token`] (access tokens), [`user_auth`] (user tokens),
//!   [`config`], [`time`] and [`bearer_secret`] beside them.

pub mod bearer_secret;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod oidc;
pub mod outbound;
pub mod permissions;
pub mod secrets_manager;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod token;
pub mod usecase;
pub mod user_auth;

pub use config::{
    AdminConfig, ClientDeletion, DeviceConfig, DiscoveryConfig, FromEnv, IntrospectionConfig,
    LookupLimits, PageConfig, ProviderConfig, SecretKey, SecretSource, SigningKeysSource,
    TokenConfig, UserTokenAlgorithm, UserTokenConfig, UserTokenKey, VerifyConfig,
};
pub use store::Store;
