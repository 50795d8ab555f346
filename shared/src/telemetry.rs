//! Logging for the functions: the Lambda runtime's format (JSON when Lambda asks for it
//! with `AWS_LAMBDA_LOG_FORMAT`, the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`),
//! with one difference that keeps secrets out of the logs: the AWS SDK and the HTTP
//! stack under it never log below INFO, whatever level is configured, because at DEBUG
//! and TRACE they write whole request and response bodies (user codes, stored hashes).

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{Directive, LevelFilter};

/// Targets capped at INFO (see the module documentation).
pub const QUIET_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sdk_dynamodb",
    "aws_sdk_secretsmanager",
    "aws_config",
    "aws_runtime",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter for `level` (`error` to `trace`; anything else means `info`).
pub fn filter(level: &str) -> EnvFilter {
    let level = LevelFilter::from_str(level.trim()).unwrap_or(LevelFilter::INFO);
    let mut filter = EnvFilter::default().add_directive(level.into());
    for target in QUIET_TARGETS {
        if let Ok(directive) = Directive::from_str(&format!("{target}=info")) {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the subscriber for a function; call once, first thing in `main`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(&level));
    // `try_init` fails only if a subscriber is already installed, which is then kept.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_stays_at_info_even_at_trace() {
        let rendered = filter("trace").to_string();
        assert!(rendered.contains("trace"));
        for target in QUIET_TARGETS {
            assert!(rendered.contains(&format!("{target}=info")), "{rendered}");
        }
    }

    #[test]
    fn unknown_levels_mean_info() {
        assert!(filter("loud").to_string().contains("info"));
        assert!(!filter("").to_string().contains("trace"));
    }
}
