#!/usr/bin/env bash
# `make test`: every check and every test, against a DynamoDB-compatible server (moto)
# that this script starts on a free loopback port and stops again.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv
started=$(date +%s)
port=$(free_port)
start_moto "$port"
trap stop_moto EXIT

# The tests reach the server only through the AWS SDK's own settings (moto serves both
# DynamoDB and Secrets Manager on the one port).
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
unset AWS_PROFILE AWS_SESSION_TOKEN

# The contract test (tests/api/contract.rs) runs schemathesis from the virtual environment;
# the browser tests (examples/device-login/tests/page.rs) its Playwright and local OpenID
# provider, with Debian's chromium.
export SCHEMATHESIS="$PWD/$VENV/bin/schemathesis"
export PLAYWRIGHT_PYTHON="$PWD/$VENV/bin/python"
export OIDC_PROVIDER_MOCK="$PWD/$VENV/bin/oidc-provider-mock"
if ! command -v chromium >/dev/null 2>&1; then
  echo "Debian's chromium is needed for the browser tests: apt-get install -y chromium" >&2
  exit 1
fi
if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind is needed for the benchmark harness's instruction counts: apt-get install -y valgrind" >&2
  exit 1
fi

echo "==> cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml
echo "==> openapi-spec-validator openapi.yaml"
"$VENV/bin/openapi-spec-validator" openapi.yaml
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test (DynamoDB at $AWS_ENDPOINT_URL_DYNAMODB)"
cargo test --workspace
echo "==> the fuzz targets, a few seconds each (scripts/fuzz.sh; make fuzz for long runs)"
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
scripts/fuzz.sh
echo "==> the benchmark harness, quick mode: a login through the real Lambda runtime at TRACE, whose"
echo "    output must hold no secret (make bench's code; its figures mean nothing here)"
scripts/bench.sh --quick >/dev/null
cargo test --quiet -p device-flow --bench hot_paths >/dev/null
echo "==> the soak, quick mode: whole logins through the real runtime for about 40 seconds while the"
echo "    store fails and instances die, then the proof from the table (make soak runs 10 minutes)"
mkdir -p .local
scripts/soak.sh --quick >.local/soak-quick.txt 2>&1 || { cat .local/soak-quick.txt; exit 1; }
tail -n 1 .local/soak-quick.txt
echo "==> all checks and tests passed in $(( $(date +%s) - started ))s"
