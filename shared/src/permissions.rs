//! What each function may do on AWS: the IAM actions its code needs, declared next to
//! the code and compared, in the tests, both with the calls the code really makes and
//! with the policies in the deployment template (`infra/template.yaml`).
//!
//! Actions are IAM actions, not API operations: a `TransactWriteItems` is authorized
//! item by item (`PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`).

/// What every function may do on AWS X-Ray, on any resource (X-Ray has none to name):
/// send the segments of its traces when the deployment turns tracing on.
pub const TRACING: &[&str] = &["xray:PutTraceSegments", "xray:PutTelemetryRecords"];

/// The AWS permissions of one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// DynamoDB actions on the table itself.
    pub table: &'static [&'static str],
    /// The partition-key prefixes of the items it writes (`PutItem`, `UpdateItem`,
    /// `DeleteItem`, alone or in a transaction): `DEVICE#`, `JWKS`, … The template allows
    /// its writes only under these keys (`dynamodb:LeadingKeys`, `DEVICE#*`), and the
    /// tests derive them from the requests the function makes. Only admin writes
    /// `CLIENT#`.
    pub writes: &'static [&'static str],
    /// DynamoDB actions on the listing index (`gsi1`).
    pub index: &'static [&'static str],
    /// DynamoDB actions on the client index (`gsi2`).
    pub client_index: &'static [&'static str],
    /// Secrets Manager actions on the signing-key secret.
    pub signing_key_secret: &'static [&'static str],
    /// Secrets Manager actions on the verification page's OpenID client secret.
    pub page_client_secret: &'static [&'static str],
}
