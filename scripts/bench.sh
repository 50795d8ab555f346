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

# The local configuration, on this run's own server and table.
start_local_stack "bench-$$"
export BENCH_CLIENT_SECRET=$DEMO_SERVICE_SECRET
BENCH_USER_TOKEN=$(target/debug/xtask dev-token --sub bench-user)
BENCH_ADMIN_TOKEN=$(target/debug/xtask dev-token --sub bench-admin --permissions ADMINISTRATOR)
export BENCH_USER_TOKEN BENCH_ADMIN_TOKEN

if [ -z "$quick" ] && [ -z "$only" ]; then
  echo "# device-flow benchmarks ($(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo
fi
mkdir -p .local
"$VENV/bin/python" scripts/bench.py --bin-dir "$bin_dir" --dynamodb "$AWS_ENDPOINT_URL_DYNAMODB" \
  $quick $only ${BENCH_LAUNCHER:+--launcher "$BENCH_LAUNCHER"} --json .local/bench.json
