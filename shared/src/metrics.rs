//! Metrics in CloudWatch's embedded metric format: one JSON line on standard output per
//! use case run, which Lambda's log delivery turns into the metric `Outcomes` (namespace
//! `DeviceFlow`, dimensions `UseCase` and `Outcome`) without any API call or permission.
//!
//! What an operator watches, by `UseCase`/`Outcome`: codes issued
//! (`issue_device_code`/`ok`), approved and denied (`approve`/`ok`, `deny`/`ok`), tokens
//! exchanged (`poll`/`ok`), `slow_down` sent (`poll`/`slow_down`), codes expired
//! (`poll`/`expired_token`), look-ups refused by the budget (`look_up`/`rate_limited`) and
//! store faults (any use case, `internal`). The SAM template alarms on the last two.
//!
//! Written only inside Lambda (where `AWS_LAMBDA_FUNCTION_NAME` is set), so that tests and
//! tools print nothing, and not where `METRICS=off` (`make run` sets it, to keep its
//! terminal readable).

use std::io::Write as _;
use std::sync::OnceLock;

use crate::time::{Clock, SystemClock};

/// The metrics' namespace.
pub const NAMESPACE: &str = "DeviceFlow";

/// One embedded-metric-format line: a count of one for `use_case` ending in `outcome`.
///
/// Written out directly rather than through a `serde_json::Value` tree: it is on every
/// request's path (a tree cost about 13,000 instructions a poll).
pub fn emf_line(use_case: &str, outcome: &str, timestamp_ms: u64) -> String {
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    format!(
        concat!(
            r#"{{"_aws":{{"Timestamp":{},"CloudWatchMetrics":[{{"Namespace":"{}","#,
            r#""Dimensions":[["UseCase","Outcome"]],"Metrics":[{{"Name":"Outcomes","Unit":"Count"}}]}}]}},"#,
            r#""UseCase":{},"Outcome":{},"Outcomes":1}}"#
        ),
        timestamp_ms,
        NAMESPACE,
        quoted(use_case),
        quoted(outcome)
    )
}

/// Counts one run of `use_case` that ended in `outcome` (both fixed names, never data).
pub fn count(use_case: &'static str, outcome: &'static str) {
    static IN_LAMBDA: OnceLock<bool> = OnceLock::new();
    let enabled = IN_LAMBDA.get_or_init(|| {
        std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
            && std::env::var("METRICS").map_or(true, |v| v != "off")
    });
    if !*enabled {
        return;
    }
    let mut line = emf_line(use_case, outcome, SystemClock.now().as_millis());
    line.push('\n');
    // One write of one whole line, so that log lines never interleave with it.
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_count_with_its_dimensions() {
        let line = emf_line("poll", "slow_down", 1_700_000_000_000);
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let declared = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(
            declared["Dimensions"][0],
            serde_json::json!(["UseCase", "Outcome"])
        );
        assert_eq!(declared["Metrics"][0]["Name"], "Outcomes");
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(value["UseCase"], "poll");
        assert_eq!(value["Outcome"], "slow_down");
        assert_eq!(value["Outcomes"], 1);
        let odd: serde_json::Value = serde_json::from_str(&emf_line("a\"b", "c\\d", 0)).unwrap();
        assert_eq!(odd["UseCase"], "a\"b");
        assert_eq!(odd["Outcome"], "c\\d");
    }
}
