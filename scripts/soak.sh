#!/usr/bin/env bash
# `make soak` (SOAK_SECONDS=600 by default): the release binaries of the functions, several
# instances each, through the benchmark's Lambda Runtime API stand-in, against a local
# DynamoDB-compatible server behind a fault proxy, driven by simulated devices, people (on the
# verification API and on the hosted page, signing in at the local OpenID provider), a
# guesser and an administrator; then the proof that nothing was lost or issued twice
# (scripts/soak.py says what it checks). `scripts/soak.sh --quick` runs it for about 40
# seconds on debug builds (make test does). SOAK_SEED=N replays a run. The report goes to
# .local/soak.json; the last line is `soak: N logins, N faults injected, N invariants broken`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds=${SOAK_SECONDS:-600}
ensure_venv
functions=(-p device-authorization -p token -p verify -p verification-page -p admin -p introspection
  -p discovery)
if [ "${1:-}" = "--quick" ]; then
  seconds=${SOAK_SECONDS:-40}
  cargo build --quiet "${functions[@]}"
  bin_dir=target/debug
else
  echo "==> building the release binaries" >&2
  cargo build --release --quiet "${functions[@]}"
  bin_dir=target/release
fi
cargo build --quiet -p xtask

start_local_stack "soak-$$"
# The hosted page's people sign in at the local OpenID provider.
oidc_port=$(free_port)
start_oidc_provider "$oidc_port"
trap 'stop_moto; stop_oidc_provider' EXIT
export OIDC_ISSUER="http://127.0.0.1:$oidc_port"
export SOAK_SERVICE_SECRET=$DEMO_SERVICE_SECRET
# User tokens (HS256): the people, the guesser and the administrator.
people="{"
for name in alice bob carol dave; do
  people+="\"$name\": \"$(target/debug/xtask dev-token --sub "soak-$name")\","
done
SOAK_PEOPLE="${people%,}}"
SOAK_GUESSER_TOKEN=$(target/debug/xtask dev-token --sub soak-guesser)
SOAK_ADMIN_TOKEN=$(target/debug/xtask dev-token --sub soak-admin --permissions ADMINISTRATOR)
export SOAK_PEOPLE SOAK_GUESSER_TOKEN SOAK_ADMIN_TOKEN

mkdir -p .local
rm -rf .local/soak
"$VENV/bin/python" scripts/soak.py --bin-dir "$bin_dir" --dynamodb "$AWS_ENDPOINT_URL_DYNAMODB" \
  --seconds "$seconds" ${SOAK_SEED:+--seed "$SOAK_SEED"} --json .local/soak.json
