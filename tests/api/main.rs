//! The workspace's integration tests, one binary, against a real DynamoDB-compatible
//! server (`make test` starts one).

mod admin_api;
mod contract;
mod deployment;
mod device_authorization;
mod discovery_endpoint;
mod faults;
mod grants;
mod house;
mod openid;
mod permissions;
mod resources_and_codes;
mod signed_out;
mod template_options;
mod token_endpoint;
mod user_tokens;
mod verification;
mod verification_page;
