//! The integration-test harness: every test gets its own table on the real
//! DynamoDB-compatible server that `make test` starts, a DynamoDB client that records
//! every request it sends, and helpers to build API Gateway requests.
//!
//! - [`env`]: the test's table, configuration and each function's state;
//! - [`faults`]: a proxy that makes DynamoDB throttle, fail, conflict, stall or hang up;
//! - [`interceptors`]: what a DynamoDB client sent (operations, IAM actions);
//! - [`server`]: every function over real HTTP on a loopback port;
//! - [`requests`]: requests as API Gateway hands them over, and responses read back;
//! - [`tokens`]: user tokens of the tests' identity provider, and signing keys;
//! - [`browser`]: cookies and form posts as a browser sends them to the page;
//! - [`provider`]: an OpenID provider the tests control (for the verification page);
//! - [`clock`]: a clock the test moves by hand;
//! - [`logs`]: capturing everything logged, to search it for secrets.

pub mod browser;
pub mod clock;
pub mod env;
pub mod faults;
pub mod interceptors;
pub mod logs;
pub mod provider;
pub mod requests;
pub mod server;
pub mod tokens;

pub use browser::*;
pub use clock::*;
pub use env::*;
pub use faults::*;
pub use interceptors::*;
pub use logs::*;
pub use provider::*;
pub use requests::*;
pub use tokens::*;
