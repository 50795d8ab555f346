//! The deployment template's options, evaluated offline as CloudFormation would for a set
//! of parameters: the custom domain (and without one), the throttles, tracing.
//!
//! A small evaluator of the intrinsic functions the template uses (`!Ref`, `!Sub`, `!If`,
//! `!Equals`, `!Not`, `!And`, `!Condition`, `!GetAtt`) over the parsed template; resources
//! and attributes evaluate to placeholders (`<HttpApi>`), pseudo parameters to a region.

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::deployment::{functions, template, text};

/// One stack's parameters over the template's defaults.
struct Stack {
    template: Value,
    parameters: BTreeMap<String, String>,
}

impl Stack {
    fn with(parameters: &[(&str, &str)]) -> Self {
        let template = template();
        let mut values = BTreeMap::new();
        for (name, parameter) in template["Parameters"].as_mapping().expect("Parameters") {
            let default = &parameter["Default"];
            if !default.is_null() {
                values.insert(text(name), text(default));
            }
        }
        for (name, value) in parameters {
            assert!(
                template["Parameters"].get(*name).is_some(),
                "no parameter {name}"
            );
            values.insert((*name).to_owned(), (*value).to_owned());
        }
        Self {
            template,
            parameters: values,
        }
    }

    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Region" => "eu-west-1".to_owned(),
            "AWS::URLSuffix" => "amazonaws.com".to_owned(),
            "AWS::StackName" => "device-flow".to_owned(),
            _ => self
                .parameters
                .get(name)
                .cloned()
                .unwrap_or_else(|| format!("<{name}>")),
        }
    }

    fn substitute(&self, pattern: &str, variables: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        let mut rest = pattern;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("a closing brace") + start;
            let name = &rest[start + 2..end];
            out.push_str(
                &variables
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| self.reference(name)),
            );
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, name: &str) -> bool {
        self.truth(&self.template["Conditions"][name])
    }

    fn truth(&self, value: &Value) -> bool {
        let Value::Tagged(tagged) = value else {
            panic!("a condition, found {value:?}")
        };
        let arguments = tagged.value.as_sequence();
        match tagged.tag.to_string().as_str() {
            "!Equals" => {
                let pair = arguments.expect("two values");
                self.eval(&pair[0]) == self.eval(&pair[1])
            }
            "!Not" => !self.truth(&arguments.expect("one condition")[0]),
            "!And" => arguments.expect("conditions").iter().all(|c| self.truth(c)),
            "!Or" => arguments.expect("conditions").iter().any(|c| self.truth(c)),
            "!Condition" => self.condition(&text(&tagged.value)),
            other => panic!("an unknown condition function {other}"),
        }
    }

    fn eval(&self, value: &Value) -> String {
        let Value::Tagged(tagged) = value else {
            return text(value);
        };
        match tagged.tag.to_string().as_str() {
            "!Ref" => self.reference(&text(&tagged.value)),
            "!GetAtt" => format!("<{}>", text(&tagged.value)),
            "!Sub" => match &tagged.value {
                Value::Sequence(pair) => {
                    let variables = pair[1]
                        .as_mapping()
                        .expect("Sub's variables")
                        .iter()
                        .map(|(name, value)| (text(name), self.eval(value)))
                        .collect();
                    self.substitute(&text(&pair[0]), &variables)
                }
                pattern => self.substitute(&text(pattern), &BTreeMap::new()),
            },
            "!If" => {
                let branches = tagged.value.as_sequence().expect("If's three values");
                let chosen = if self.condition(&text(&branches[0])) {
                    &branches[1]
                } else {
                    &branches[2]
                };
                self.eval(chosen)
            }
            other => panic!("an unknown function {other}"),
        }
    }

    /// Whether the stack has this resource (its condition holds, or it has none).
    fn has(&self, resource: &str) -> bool {
        let resource = &self.template["Resources"][resource];
        assert!(!resource.is_null(), "no such resource");
        resource
            .get("Condition")
            .is_none_or(|condition| self.condition(&text(condition)))
    }

    fn output(&self, name: &str) -> String {
        self.eval(&self.template["Outputs"][name]["Value"])
    }

    /// Every environment variable of every function: the globals and its own.
    fn environments(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let globals = &self.template["Globals"]["Function"]["Environment"]["Variables"];
        functions(&self.template)
            .into_iter()
            .map(|(binary, (_, function))| {
                let own = &function["Properties"]["Environment"]["Variables"];
                let variables = [globals, own]
                    .into_iter()
                    .filter_map(Value::as_mapping)
                    .flatten()
                    .map(|(name, value)| (text(name), self.eval(value)))
                    .collect();
                (binary, variables)
            })
            .collect()
    }
}

const CERTIFICATE: &str =
    "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-0123456789ab";

#[test]
fn without_a_domain_the_issuer_is_the_apis_own_url() {
    let stack = Stack::with(&[]);
    for resource in ["ApiDomain", "ApiDomainMapping", "ApiDomainRecord"] {
        assert!(!stack.has(resource), "{resource}");
    }
    let issuer = "https://<HttpApi>.execute-api.eu-west-1.amazonaws.com";
    for variables in stack.environments().values() {
        assert_eq!(variables["ISSUER"], issuer);
    }
    assert_eq!(stack.output("IssuerUrl"), issuer);
    assert_eq!(
        stack.output("VerificationPageCallbackUrl"),
        format!("{issuer}/device/callback")
    );
}

#[test]
fn with_a_domain_no_token_or_page_names_the_execute_api_url() {
    let stack = Stack::with(&[
        ("DomainName", "auth.example.com"),
        ("DomainCertificateArn", CERTIFICATE),
    ]);
    assert!(stack.has("ApiDomain") && stack.has("ApiDomainMapping"));
    assert!(!stack.has("ApiDomainRecord"), "no hosted zone, no record");
    let domain = &stack.template["Resources"]["ApiDomain"]["Properties"];
    assert_eq!(stack.eval(&domain["DomainName"]), "auth.example.com");
    let configuration = &domain["DomainNameConfigurations"][0];
    assert_eq!(stack.eval(&configuration["CertificateArn"]), CERTIFICATE);
    assert_eq!(text(&configuration["EndpointType"]), "REGIONAL");
    for (function, variables) in stack.environments() {
        assert_eq!(
            variables["ISSUER"], "https://auth.example.com",
            "{function}"
        );
        for (name, value) in &variables {
            assert!(!value.contains("execute-api"), "{function}: {name}");
        }
    }
    for output in ["IssuerUrl", "DiscoveryUrl", "VerificationPageCallbackUrl"] {
        let value = stack.output(output);
        assert!(
            value.starts_with("https://auth.example.com"),
            "{output}: {value}"
        );
    }
    let mapping = &stack.template["Resources"]["ApiDomainMapping"]["Properties"];
    assert_eq!(stack.eval(&mapping["ApiId"]), "<HttpApi>");

    let with_zone = Stack::with(&[
        ("DomainName", "auth.example.com"),
        ("DomainCertificateArn", CERTIFICATE),
        ("DomainHostedZoneId", "Z0123456789ABCDEFGHIJ"),
    ]);
    assert!(with_zone.has("ApiDomainRecord"));
    let record = &with_zone.template["Resources"]["ApiDomainRecord"]["Properties"];
    assert_eq!(with_zone.eval(&record["Name"]), "auth.example.com");
    assert_eq!(
        with_zone.eval(&record["AliasTarget"]["DNSName"]),
        "<ApiDomain.RegionalDomainName>"
    );

    // An issuer of one's own (a CDN in front) still wins over the domain.
    let fronted = Stack::with(&[
        ("DomainName", "auth.example.com"),
        ("DomainCertificateArn", CERTIFICATE),
        ("IssuerUrl", "https://login.example.com"),
    ]);
    assert_eq!(fronted.output("IssuerUrl"), "https://login.example.com");
}

#[test]
fn a_domain_without_a_certificate_is_refused_before_anything_is_made() {
    let rule = &template()["Rules"]["DomainNeedsCertificate"];
    let holds = |stack: &Stack| {
        !stack.truth(&rule["RuleCondition"])
            || rule["Assertions"]
                .as_sequence()
                .expect("assertions")
                .iter()
                .all(|assertion| stack.truth(&assertion["Assert"]))
    };
    assert!(holds(&Stack::with(&[])));
    assert!(!holds(&Stack::with(&[("DomainName", "auth.example.com")])));
    assert!(holds(&Stack::with(&[
        ("DomainName", "auth.example.com"),
        ("DomainCertificateArn", CERTIFICATE)
    ])));
}

/// The token endpoint has throttles of its own, on a route that exists, and the defaults
/// stay within API Gateway's default account quotas (10,000 requests a second, a burst of
/// 5,000), which a stage cannot exceed.
#[test]
fn the_token_endpoint_has_its_own_throttle_within_the_account_quotas() {
    let stack = Stack::with(&[]);
    let stage = &stack.template["Resources"]["HttpApiStage"];
    assert_eq!(text(&stage["DependsOn"]), "TokenRoute");
    let route = &stack.template["Resources"]["TokenRoute"]["Properties"]["RouteKey"];
    let settings = &stage["Properties"]["RouteSettings"][text(route).as_str()];
    let number = |value: &Value| stack.eval(value).parse::<u32>().expect("a number");
    let (rate, burst) = (
        number(&settings["ThrottlingRateLimit"]),
        number(&settings["ThrottlingBurstLimit"]),
    );
    assert!(rate <= 10_000 && burst <= 5_000, "{rate}/{burst}");
    let default = &stage["Properties"]["DefaultRouteSettings"];
    let (default_rate, default_burst) = (
        number(&default["ThrottlingRateLimit"]),
        number(&default["ThrottlingBurstLimit"]),
    );
    assert!(default_rate < rate && default_burst <= burst);
    assert_eq!(
        Stack::with(&[("TokenThrottlingRateLimit", "20000")])
            .eval(&settings["ThrottlingRateLimit"]),
        "20000"
    );
}

/// Tracing is one parameter for every function (the X-Ray permission is in every policy:
/// the permissions test).
#[test]
fn tracing_is_one_parameter_for_every_function() {
    for (mode, expected) in [("Active", "Active"), ("PassThrough", "PassThrough")] {
        let stack = Stack::with(&[("TracingMode", mode)]);
        let tracing = &stack.template["Globals"]["Function"]["Tracing"];
        assert_eq!(stack.eval(tracing), expected);
        for (binary, (_, function)) in functions(&stack.template) {
            assert!(
                function["Properties"].get("Tracing").is_none(),
                "{binary} overrides the tracing parameter"
            );
        }
    }
}
