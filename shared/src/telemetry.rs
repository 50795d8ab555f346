//! Logging for the functions: the Lambda runtime's format (JSON when Lambda asks for it
//! with `AWS_LAMBDA_LOG_FORMAT`, the level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`),
//! with one difference that keeps secrets out of the logs: the AWS SDK, the Lambda runtime,
//! the OpenID client and the HTTP stack under them never log below INFO, whatever level is
//! configured, because at DEBUG and TRACE they write whole requests, events and bodies
//! (user codes, tokens, secrets, stored hashes).

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

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
    // Request signing logs the canonical request at TRACE, session token header included.
    "aws_sigv4",
    "aws_credential_types",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    // The Lambda runtime logs whole invocation events at TRACE (Basic credentials, bearer
    // tokens, device codes and client secrets in bodies, user codes in paths).
    "lambda_runtime",
    "lambda_runtime_api_client",
    "lambda_http",
    // The verification page's OpenID client (tokens and codes in its exchanges).
    "openidconnect",
    "oauth2",
];

/// The Lambda runtime's main loop (see [`filter`]).
const RUNTIME_LOOP: &str = "lambda_runtime::runtime";

/// The filter for `level` (`error` to `trace`; anything else means `info`): that level
/// everywhere, except [`QUIET_TARGETS`], which never go below INFO.
///
/// A plain target filter, not `EnvFilter`: the level is one word, and `EnvFilter` would
/// bring a regular-expression engine into every binary for nothing.
pub fn filter(level: &str) -> Targets {
    // `LevelFilter` reads an empty string as ERROR; unset means the default here.
    let level = match level.trim() {
        "" => LevelFilter::INFO,
        level => LevelFilter::from_str(level).unwrap_or(LevelFilter::INFO),
    };
    let quiet = level.min(LevelFilter::INFO);
    Targets::new()
        .with_default(level)
        .with_targets(QUIET_TARGETS.iter().map(|target| (*target, quiet)))
        // The runtime's main loop warns once per instance that `AWS_LAMBDA_MAX_CONCURRENCY`
        // is set but not used (`http::serve` says why); it has nothing else below ERROR.
        .with_target(RUNTIME_LOOP, level.min(LevelFilter::ERROR))
}

/// Installs the subscriber for a function; call once, first thing in `main`.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let format = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time();
    let registry = tracing_subscriber::registry().with(filter(&level));
    // `try_init` fails only if a subscriber is already installed, which is then kept.
    let _ = if json {
        registry.with(format.json()).try_init()
    } else {
        registry.with(format).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    use tracing::Level;

    #[test]
    fn the_sdk_stays_at_info_even_at_trace() {
        let filter = filter("trace");
        assert!(filter.would_enable("device_flow::store", &Level::TRACE));
        for target in QUIET_TARGETS {
            assert!(filter.would_enable(target, &Level::INFO), "{target}");
            assert!(!filter.would_enable(target, &Level::DEBUG), "{target}");
            let child = format!("{target}::client::orchestrator");
            assert!(!filter.would_enable(&child, &Level::DEBUG), "{child}");
        }
    }

    #[test]
    fn a_quieter_level_holds_for_the_sdk_too() {
        let filter = filter("warn");
        assert!(!filter.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(filter.would_enable("aws_smithy_runtime", &Level::WARN));
    }

    #[test]
    fn the_runtime_loop_keeps_only_its_errors() {
        let filter = filter("trace");
        assert!(!filter.would_enable("lambda_runtime::runtime", &Level::WARN));
        assert!(filter.would_enable("lambda_runtime::runtime", &Level::ERROR));
        assert!(filter.would_enable("lambda_runtime::layers::api_response", &Level::WARN));
        assert!(!super::filter("off").would_enable("lambda_runtime::runtime", &Level::ERROR));
    }

    #[test]
    fn unknown_levels_mean_info() {
        for level in ["loud", ""] {
            let filter = filter(level);
            assert!(filter.would_enable("token", &Level::INFO), "{level}");
            assert!(!filter.would_enable("token", &Level::DEBUG), "{level}");
        }
    }
}
