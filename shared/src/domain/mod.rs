//! Domain types. Each validates on construction, so an invalid value cannot exist.

mod client;
mod device_authorization;
mod device_code;
mod grant;
mod profile;
pub mod resource;
mod scope;
pub mod user_code;

#[cfg(test)]
pub(crate) use client::test_client;
pub use client::{
    AuthenticationFailed, ClientChanges, ClientCredentials, ClientError, ClientGeneration,
    ClientId, ClientKind, ClientName, ClientOverrides, ClientSecret, Deletion, DeletionPhase,
    GrantType, MAX_DEVICE_CODE_LIFETIME, NewClient, OAuthClient, PerSetting, SecretHash, Setting,
    parse_allowed_resources, parse_audiences, parse_grants, user_code_format,
};
pub use device_authorization::{
    Approval, DeviceAuthorization, DeviceDetails, DeviceState, POLL_TOLERANCE, PollDecision,
    SLOW_DOWN_STEP, Status, Terms, decide_poll,
};
pub use device_code::{DeviceAuthorizationId, DeviceCode};
pub use grant::{
    DEFAULT_REFRESH_ABSOLUTE_LIFETIME, DEFAULT_REFRESH_IDLE_LIFETIME, Grant, GrantId, GrantStatus,
    OFFLINE_ACCESS, REPLAY_GRACE, RefreshDecision, RefreshPolicy, RefreshRecord, RefreshToken,
    RefreshTokenHash, Revocation, RevokeReason, decide_refresh,
};
pub use profile::{EMAIL, MAX_CLAIM_LEN, OPENID, PROFILE, Profile};
pub use scope::{ScopeError, ScopeSet, ScopeToken};
pub use user_code::{Charset, UserCode, UserCodeError, UserCodeFormat};
