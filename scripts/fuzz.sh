#!/usr/bin/env bash
# The fuzz targets in fuzz/ (cargo fuzz, libFuzzer), one per parser that takes outside input.
#
#   scripts/fuzz.sh               every target for FUZZ_SECONDS (default 3) each, built
#                                 unoptimised: make test's bounded run, so no target rots
#   scripts/fuzz.sh form 600      one target for ten minutes, built optimised (make fuzz)
#
# fuzz/seeds/<target> is the committed seed corpus; the inputs a run finds are kept in
# .local/fuzz/corpus/<target> for the next run, and a crashing input is written to
# .local/fuzz/artifacts/ (replay it with `cargo fuzz run <target> <file>`). Safe Rust with
# no sanitizer: what the fuzzer looks for is a panic (an abort in a Lambda function),
# an endless loop or unbounded memory.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_cargo_fuzz

build=(--dev)
seconds=${FUZZ_SECONDS:-3}
targets=$(cargo fuzz list)
if [ $# -ge 1 ]; then
  targets=$1
  seconds=${2:-60}
  build=(--release)
fi

common=(-s none --target-dir target/fuzz "${build[@]}")
cargo fuzz build "${common[@]}" 2>&1 | grep -vE '^\s*(Compiling|Finished)' >&2 || true
mkdir -p .local/fuzz/artifacts
for target in $targets; do
  corpus=.local/fuzz/corpus/$target
  mkdir -p "$corpus"
  log=.local/fuzz/$target.log
  if ! cargo fuzz run "${common[@]}" "$target" "$corpus" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -max_len=20000 -print_final_stats=1 \
      -artifact_prefix=".local/fuzz/artifacts/$target-" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $target failed: the input is in .local/fuzz/artifacts/" >&2
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  echo "$target: $runs inputs in ${seconds}s, no failure ($(ls "$corpus" | wc -l) in the corpus)"
done
