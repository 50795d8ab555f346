#!/usr/bin/env bash
# Runs a command with the local configuration ([workspace.metadata.lambda.env]) exported,
# so that it reaches the local DynamoDB that `make run` started.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p xtask
while IFS= read -r line; do export "$line"; done < <(target/debug/xtask env)
exec "$@"
