//! The deployment descriptions agree with the code, offline: the SAM template
//! (`infra/template.yaml`), the `cargo lambda watch` router and deploy metadata
//! (`Cargo.toml`), and the API document (`openapi.yaml`).
//!
//! - the table the template declares is the table `table::create_table` makes;
//! - the routes are one set, served by the same functions, in all three places;
//! - each function's IAM policy grants exactly its crate's `PERMISSIONS` (which the
//!   `permissions` tests hold to the calls the code makes), on the right resources.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use device_flow::permissions::Permissions;
use device_flow::store::{CLIENT_INDEX, LIST_INDEX, TTL_ATTRIBUTE};
use integration_tests::TestEnv;
use serde_yaml::Value;

fn workspace_file(path: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

pub(crate) fn template() -> Value {
    serde_yaml::from_str(&workspace_file("infra/template.yaml")).expect("the template is YAML")
}

fn openapi() -> Value {
    serde_yaml::from_str(&workspace_file("openapi.yaml")).expect("openapi.yaml is YAML")
}

fn cargo_manifest(path: &str) -> toml::Table {
    workspace_file(path).parse().expect("a TOML manifest")
}

/// A scalar, or an intrinsic function in short form written as `Tag argument`
/// (`GetAtt Table.Arn`, `Ref SigningKeysSecret`, `Sub integrations/${X}`).
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(tagged) => format!(
            "{} {}",
            tagged.tag.to_string().trim_start_matches('!'),
            text(&tagged.value)
        ),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

fn resources(template: &Value) -> &serde_yaml::Mapping {
    template["Resources"].as_mapping().expect("Resources")
}

fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    resources(template)
        .iter()
        .filter(|(_, resource)| resource["Type"].as_str() == Some(kind))
        .map(|(name, resource)| (text(name), resource))
        .collect()
}

/// The functions of the template by binary (package) name, with their resource names.
pub(crate) fn functions(template: &Value) -> BTreeMap<String, (String, &Value)> {
    resources_of_type(template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, resource)| {
            let binary = text(&resource["Metadata"]["BuildProperties"]["Binary"]);
            (binary, (name, resource))
        })
        .collect()
}

type Routes = BTreeSet<(String, String, String)>;
/// An index: its name, key schema `(attribute, key type)` and projection type.
type Index = (String, Vec<(String, String)>, String);

#[test]
fn the_routes_are_one_set_in_the_template_the_router_and_the_api_document() {
    // cargo lambda watch: [workspace.metadata.lambda.watch.router].
    let manifest = cargo_manifest("Cargo.toml");
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("the router");
    let mut watched = Routes::new();
    for (path, targets) in router {
        for target in targets.as_array().expect("an array of targets") {
            watched.insert((
                target["method"].as_str().expect("a method").to_owned(),
                path.clone(),
                target["function"].as_str().expect("a function").to_owned(),
            ));
        }
    }

    // The template: route -> integration -> function -> binary.
    let template = template();
    let binary_of_resource: BTreeMap<String, String> = functions(&template)
        .into_iter()
        .map(|(binary, (resource, _))| (resource, binary))
        .collect();
    let mut deployed = Routes::new();
    for (name, route) in resources_of_type(&template, "AWS::ApiGatewayV2::Route") {
        let key = text(&route["Properties"]["RouteKey"]);
        let (method, path) = key.split_once(' ').expect("METHOD /path");
        let target = text(&route["Properties"]["Target"]);
        let integration = target
            .strip_prefix("Sub integrations/${")
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or_else(|| panic!("{name}: unexpected target {target}"));
        let uri = text(&resources(&template)[integration]["Properties"]["IntegrationUri"]);
        let function = uri
            .strip_prefix("GetAtt ")
            .and_then(|u| u.strip_suffix(".Arn"))
            .unwrap_or_else(|| panic!("{integration}: unexpected URI {uri}"));
        deployed.insert((
            method.to_owned(),
            path.to_owned(),
            binary_of_resource[function].clone(),
        ));
    }
    assert_eq!(deployed, watched, "template routes vs. the watch router");

    // The API document: every path and method, and nothing else.
    let document = openapi();
    let mut documented = BTreeSet::new();
    for (path, item) in document["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("a path item") {
            let method = text(method);
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                documented.insert((method.to_uppercase(), text(path)));
            }
        }
    }
    let deployed: BTreeSet<_> = deployed.into_iter().map(|(m, p, _)| (m, p)).collect();
    assert_eq!(documented, deployed, "openapi.yaml routes vs. the template");
}

/// Every function's declared permissions, by binary name.
pub(crate) fn declared_permissions() -> BTreeMap<&'static str, Permissions> {
    BTreeMap::from([
        ("device-authorization", device_authorization::PERMISSIONS),
        ("token", token::PERMISSIONS),
        ("verify", verify::PERMISSIONS),
        ("admin", admin::PERMISSIONS),
        ("discovery", discovery::PERMISSIONS),
        ("verification-page", verification_page::PERMISSIONS),
        ("introspection", introspection::PERMISSIONS),
    ])
}

#[test]
fn each_function_is_granted_exactly_its_declared_permissions() {
    let template = template();
    let table_arn = "GetAtt Table.Arn";
    let index_arn = format!("Sub ${{Table.Arn}}/index/{}", LIST_INDEX);
    let client_index_arn = format!("Sub ${{Table.Arn}}/index/{}", CLIENT_INDEX);
    let secret_arn = "Ref SigningKeysSecret";
    let page_secret_arn = "Ref PageClientSecret";
    let declared = declared_permissions();
    let functions = functions(&template);
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        declared.keys().copied().collect::<Vec<_>>(),
        "the template deploys exactly the workspace's functions"
    );
    for (binary, (resource, function)) in &functions {
        let mut granted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let policies = function["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{resource}: an inline policy list"));
        for policy in policies {
            // Inline statements only: no managed policies, no SAM policy templates.
            let statements = policy["Statement"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{resource}: only inline policy documents"));
            for statement in statements {
                assert_eq!(text(&statement["Effect"]), "Allow", "{resource}");
                let target = text(&statement["Resource"]);
                assert!(
                    [
                        table_arn,
                        index_arn.as_str(),
                        client_index_arn.as_str(),
                        secret_arn,
                        page_secret_arn,
                        "*"
                    ]
                    .contains(&target.as_str()),
                    "{resource}: a grant on an unexpected resource {target}"
                );
                let actions = statement["Action"].as_sequence().expect("an action list");
                granted
                    .entry(target)
                    .or_default()
                    .extend(actions.iter().map(text));
            }
        }
        let permissions = declared[binary.as_str()];
        let expect = |actions: &[&str]| -> BTreeSet<String> {
            actions.iter().map(|a| (*a).to_owned()).collect()
        };
        let on = |resource: &str| granted.get(resource).cloned().unwrap_or_default();
        assert_eq!(on(table_arn), expect(permissions.table), "{binary}: table");
        assert_eq!(on(&index_arn), expect(permissions.index), "{binary}: index");
        assert_eq!(
            on(&client_index_arn),
            expect(permissions.client_index),
            "{binary}: client index"
        );
        assert_eq!(
            on(secret_arn),
            expect(permissions.signing_key_secret),
            "{binary}: signing-key secret"
        );
        assert_eq!(
            on(page_secret_arn),
            expect(permissions.page_client_secret),
            "{binary}: the page's client secret"
        );
        assert_eq!(
            on("*"),
            expect(device_flow::permissions::TRACING),
            "{binary}: X-Ray, and nothing else on every resource"
        );
    }
}

/// Rule 6 of the sign-out promises (least privilege for every write): every function's
/// `PutItem`, `UpdateItem` and `DeleteItem` on the table is allowed only under the
/// partition-key prefixes it declares (`dynamodb:LeadingKeys`), which the permissions
/// test derives from the requests it really makes; no write is granted without that
/// condition, and no function but admin may write a client.
#[test]
fn rule6_every_write_is_limited_to_the_key_prefixes_the_function_writes() {
    const WRITES: [&str; 3] = [
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ];
    let declared = declared_permissions();
    let template = template();
    for (binary, (resource, function)) in &functions(&template) {
        let permissions = declared[binary.as_str()];
        let expected: BTreeSet<String> = permissions
            .writes
            .iter()
            .map(|prefix| {
                if prefix.ends_with('#') {
                    format!("{prefix}*")
                } else {
                    (*prefix).to_owned()
                }
            })
            .collect();
        let mut written_actions = BTreeSet::new();
        for statement in function["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|policy| policy["Statement"].as_sequence().unwrap())
        {
            let actions: BTreeSet<String> = statement["Action"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(text)
                .collect();
            let writes: Vec<&String> = actions
                .iter()
                .filter(|a| WRITES.contains(&a.as_str()))
                .collect();
            if writes.is_empty() {
                continue;
            }
            assert_eq!(
                writes.len(),
                actions.len(),
                "{resource}: writes in a statement of their own"
            );
            let condition = statement["Condition"]
                .as_mapping()
                .unwrap_or_else(|| panic!("{resource}: a write without a condition"));
            assert_eq!(condition.len(), 1, "{resource}: one condition");
            let keys: BTreeSet<String> =
                statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{resource}: writes limited by dynamodb:LeadingKeys"))
                    .iter()
                    .map(text)
                    .collect();
            assert_eq!(keys, expected, "{resource}: the key prefixes it writes");
            written_actions.extend(writes.into_iter().cloned());
        }
        let declared_writes: BTreeSet<String> = permissions
            .table
            .iter()
            .filter(|a| WRITES.contains(a))
            .map(|a| (*a).to_owned())
            .collect();
        assert_eq!(
            written_actions, declared_writes,
            "{resource}: its write actions"
        );
        assert_eq!(
            expected.contains("CLIENT#*"),
            binary == "admin",
            "{resource}: only admin writes clients"
        );
    }
}

#[test]
fn the_alarms_watch_metrics_the_code_emits() {
    use device_flow::usecase::Outcome as _;
    use device_flow::usecase::look_up::{self, LookUpError};
    use device_flow::usecase::poll::{self, PollError};
    let emitted = [
        (
            look_up::NAME,
            LookUpError::RateLimited {
                retry_after: std::time::Duration::ZERO,
            }
            .outcome(),
        ),
        (poll::NAME, PollError::Internal(internal()).outcome()),
    ];
    let template = template();
    let alarms = resources_of_type(&template, "AWS::CloudWatch::Alarm");
    let ours: Vec<_> = alarms
        .iter()
        .filter(|(_, alarm)| {
            text(&alarm["Properties"]["Namespace"]) == device_flow::metrics::NAMESPACE
        })
        .collect();
    assert_eq!(ours.len(), emitted.len(), "an alarm per watched outcome");
    for (name, alarm) in ours {
        let properties = &alarm["Properties"];
        assert_eq!(text(&properties["MetricName"]), "Outcomes", "{name}");
        let dimension = |wanted: &str| {
            properties["Dimensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .find(|d| text(&d["Name"]) == wanted)
                .map(|d| text(&d["Value"]))
                .unwrap_or_default()
        };
        let pair = (dimension("UseCase"), dimension("Outcome"));
        assert!(
            emitted
                .iter()
                .any(|(u, o)| pair == ((*u).to_owned(), (*o).to_owned())),
            "{name} watches {pair:?}, which the code never emits"
        );
    }
}

fn internal() -> device_flow::usecase::Internal {
    device_flow::usecase::Internal {
        context: "test",
        source: Box::new(std::io::Error::other("test")),
    }
}

#[test]
fn the_functions_are_built_and_sized_the_same_way_everywhere() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    assert_eq!(text(&globals["Runtime"]), "provided.al2023");
    assert_eq!(text(&globals["Handler"]), "bootstrap");
    assert_eq!(globals["Architectures"][0].as_str(), Some("arm64"));
    for (binary, (resource, function)) in functions(&template) {
        assert_eq!(
            text(&function["Metadata"]["BuildMethod"]),
            "rust-cargolambda",
            "{resource}"
        );
        // cargo lambda deploy uses the template's memory and timeout.
        let manifest = cargo_manifest(&format!("functions/{binary}/Cargo.toml"));
        let deploy = &manifest["package"]["metadata"]["lambda"]["deploy"];
        let properties = &function["Properties"];
        let memory = properties
            .get("MemorySize")
            .unwrap_or(&globals["MemorySize"]);
        let timeout = properties.get("Timeout").unwrap_or(&globals["Timeout"]);
        assert_eq!(deploy["memory"].as_integer(), memory.as_i64(), "{binary}");
        assert_eq!(deploy["timeout"].as_integer(), timeout.as_i64(), "{binary}");
        assert_eq!(deploy["merge_env"].as_bool(), Some(true), "{binary}");
    }
}

#[tokio::test]
async fn the_template_declares_the_table_the_code_creates() {
    // The code's table, as DynamoDB describes it.
    let env = TestEnv::new().await;
    let described = env
        .dynamodb
        .describe_table()
        .table_name(&env.table_name)
        .send()
        .await
        .expect("describing the table")
        .table
        .expect("a table");
    let ttl = env
        .dynamodb
        .describe_time_to_live()
        .table_name(&env.table_name)
        .send()
        .await
        .expect("describing TTL")
        .time_to_live_description
        .expect("a TTL description");

    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_owned(),
                    k.key_type().as_str().to_owned(),
                )
            })
            .collect()
    };
    let code_attributes: BTreeSet<(String, String)> = described
        .attribute_definitions()
        .iter()
        .map(|a| {
            (
                a.attribute_name().to_owned(),
                a.attribute_type().as_str().to_owned(),
            )
        })
        .collect();
    let code_indexes: Vec<Index> = described
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().unwrap_or_default().to_owned(),
                keys(i.key_schema()),
                i.projection()
                    .and_then(|p| p.projection_type())
                    .map(|t| t.as_str().to_owned())
                    .unwrap_or_default(),
            )
        })
        .collect();

    // The template's table.
    let template = template();
    let table = &resources(&template)["Table"]["Properties"];
    let pairs = |list: &Value, a: &str, b: &str| -> Vec<(String, String)> {
        list.as_sequence()
            .expect("a list")
            .iter()
            .map(|item| (text(&item[a]), text(&item[b])))
            .collect()
    };
    assert_eq!(
        pairs(&table["KeySchema"], "AttributeName", "KeyType"),
        keys(described.key_schema()),
        "key schema"
    );
    assert_eq!(
        pairs(
            &table["AttributeDefinitions"],
            "AttributeName",
            "AttributeType"
        )
        .into_iter()
        .collect::<BTreeSet<_>>(),
        code_attributes,
        "attribute definitions"
    );
    let template_indexes: Vec<Index> = table["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("indexes")
        .iter()
        .map(|i| {
            (
                text(&i["IndexName"]),
                pairs(&i["KeySchema"], "AttributeName", "KeyType"),
                text(&i["Projection"]["ProjectionType"]),
            )
        })
        .collect();
    assert_eq!(template_indexes, code_indexes, "secondary indexes");
    assert_eq!(text(&table["BillingMode"]), "PAY_PER_REQUEST");
    assert_eq!(
        text(&table["TimeToLiveSpecification"]["AttributeName"]),
        ttl.attribute_name().unwrap_or_default()
    );
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert_eq!(text(&table["TimeToLiveSpecification"]["Enabled"]), "true");
    assert_eq!(
        text(&table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]),
        "true"
    );
    assert_eq!(
        text(&table["DeletionProtectionEnabled"]),
        "Ref TableDeletionProtection"
    );
}
