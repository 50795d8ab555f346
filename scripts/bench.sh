#!/usr/bin/env bash
# `make bench`: builds the release binaries and measures every function on a local
# DynamoDB-compatible server (moto) that it starts and stops: sizes, init time, warm CPU
# and latency per operation, peak memory, DynamoDB requests and capacity per login.
# `scripts/bench.sh --quick` runs the same harness for a few iterations on debug builds
# (make test does, so that the harness cannot rot); its figures mean nothing.
# BENCH_BIN_DIR=DIR measures the binaries in DIR instead of building them, and
# BENCH_LAUNCHER="qemu-aarch64-static -L /usr/aarch64-linux-gnu" runs them under that command
# (make check-arm64 does, for the arm64 build).
# `scripts/bench.sh --arm64` (make bench-arm64) builds every function for Lambda's arm64
# (Graviton) with `cargo lambda build --release --arm64`, which cross-links with zig (the
# ziglang package cargo-lambda brings from PyPI), and prints their sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ "${1:-}" = "--arm64" ]; then
  ensure_venv
  rustup target add aarch64-unknown-linux-gnu >&2
  all=(device-authorization token verify admin discovery introspection verification-page)
  echo "==> cargo lambda build --release --arm64 (${#all[@]} functions)" >&2
  PATH="$PWD/$VENV/bin:$PATH" cargo lambda build --release --arm64 --quiet \
    $(printf -- '-p %s ' "${all[@]}") >&2
  echo "| function | arm64 binary |"
  echo "|---|---:|"
  for name in "${all[@]}"; do
    bytes=$(stat -c %s "target/lambda/$name/bootstrap")
    awk -v n="$name" -v b="$bytes" 'BEGIN { printf "| %s | %.2f MB |\n", n, b / 1e6 }'
  done
  exit 0
fi

quick=
only=
if [ "${1:-}" = "--quick" ]; then quick=--quick; fi
# --instructions: only the callgrind counts, whose dumps stay in .local/callgrind-*.out.*
# for callgrind_annotate (with BENCH_BIN_DIR pointing at a build that keeps its symbols).
if [ "${1:-}" = "--instructions" ]; then only=--instructions-only; fi

ensure_venv
functions=(-p device-authorization -p token -p verify -p admin -p discovery -p introspection -p verification-page)
if [ -n "${BENCH_BIN_DIR:-}" ]; then
  bin_dir=$BENCH_BIN_DIR   # binaries built elsewhere (comparing two builds)
elif [ -n "$quick" ]; then
  cargo build --quiet "${functions[@]}"
  bin_dir=target/debug
else
  echo "==> building the release binaries" >&2
  cargo build --release --quiet "${functions[@]}"
  bin_dir=target/release
fi
cargo build --quiet -p xtask

port=$(free_port)
start_moto "$port"
trap stop_moto EXIT

# The local configuration, on this run's own server and table.
while IFS= read -r line; do export "$line"; done < <(target/debug/xtask env)
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
export TABLE_NAME="bench-$$"
# User tokens minted here (HS256), so that no identity provider has to run: the local one
# would put its key fetch into every cold start measured.
export USER_TOKEN_ISSUER=https://bench-idp.example USER_TOKEN_JWKS_URL=
export USER_TOKEN_HS256_SECRET=bench-user-token-secret-0123456789abcdef
setup_out=$(target/debug/xtask setup)
BENCH_CLIENT_SECRET=$(printf '%s\n' "$setup_out" | sed -n 's/^demo client demo-service (confidential), client_secret: //p')
export BENCH_CLIENT_SECRET
SIGNING_KEYS=$(target/debug/xtask signing-keys)
BENCH_USER_TOKEN=$(target/debug/xtask dev-token --sub bench-user)
BENCH_ADMIN_TOKEN=$(target/debug/xtask dev-token --sub bench-admin --permissions ADMINISTRATOR)
export SIGNING_KEYS BENCH_USER_TOKEN BENCH_ADMIN_TOKEN

if [ -z "$quick" ] && [ -z "$only" ]; then
  echo "# device-flow benchmarks ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo
fi
mkdir -p .local
"$VENV/bin/python" scripts/bench.py --bin-dir "$bin_dir" --dynamodb "$AWS_ENDPOINT_URL_DYNAMODB" \
  $quick $only ${BENCH_LAUNCHER:+--launcher "$BENCH_LAUNCHER"} --json .local/bench.json
