# Shared by scripts/run-local.sh and scripts/test.sh: the Python virtual environment
# and the local DynamoDB-compatible server (moto).

VENV=.venv

# Creates .venv and installs requirements-dev.txt, again whenever that file changes.
ensure_venv() {
  local stamp="$VENV/.requirements-dev.txt"
  if [ -x "$VENV/bin/moto_server" ] && [ -x "$VENV/bin/cargo-lambda" ] \
    && [ -x "$VENV/bin/schemathesis" ] && [ -x "$VENV/bin/cfn-lint" ] \
    && [ -x "$VENV/bin/oidc-provider-mock" ] \
    && cmp -s requirements-dev.txt "$stamp"; then
    return
  fi
  echo "==> installing local tools into $VENV (moto, cargo-lambda, cfn-lint, schemathesis, oidc-provider-mock, playwright)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt >&2
  cp requirements-dev.txt "$stamp"
}

# cargo-fuzz (the fuzz targets' runner, from crates.io), installed into .local/cargo on
# first use; puts it on PATH.
CARGO_FUZZ_VERSION=0.13.2
ensure_cargo_fuzz() {
  export PATH="$PWD/.local/cargo/bin:$PATH"
  if cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
    return
  fi
  echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION into .local/cargo (once)" >&2
  cargo install --quiet --locked --root .local/cargo --version "$CARGO_FUZZ_VERSION" cargo-fuzz >&2
}

# Prints a free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts the local DynamoDB-compatible server (moto, each request atomic: see
# scripts/dynamodb_server.py) on 127.0.0.1:$1, logging to .local/moto-$1.log, and waits
# until it accepts connections. Sets MOTO_PID.
start_moto() {
  local port=$1
  mkdir -p .local
  "$VENV/bin/python" scripts/dynamodb_server.py 127.0.0.1 "$port" >".local/moto-$port.log" 2>&1 &
  MOTO_PID=$!
  python3 - "$port" <<'PY' || { echo "moto_server did not start; see .local/moto-$port.log" >&2; return 1; }
import socket, sys, time
deadline = time.time() + 60
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
    MOTO_PID=
  fi
}

# Starts the local OpenID provider (oidc-provider-mock: its login form takes any subject) on
# 127.0.0.1:$1, ID tokens valid for 12 hours, knowing one person by name (`xtask
# local-person`: anyone else typed in signs in with their subject alone), logging to
# .local/oidc-$1.log; waits until it answers. Sets OIDC_PID. Needs target/debug/xtask.
start_oidc_provider() {
  local port=$1
  mkdir -p .local
  "$VENV/bin/oidc-provider-mock" --host 127.0.0.1 --port "$port" --require-nonce true \
    --token-max-age 43200 --user-claims "$(target/debug/xtask local-person)" >".local/oidc-$port.log" 2>&1 &
  OIDC_PID=$!
  python3 - "$port" <<'PY' || { echo "the OpenID provider did not start; see .local/oidc-$port.log" >&2; return 1; }
import sys, time, urllib.request
deadline = time.time() + 60
while time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/.well-known/openid-configuration", timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
PY
}

stop_oidc_provider() {
  if [ -n "${OIDC_PID:-}" ]; then
    kill "$OIDC_PID" 2>/dev/null || true
    wait "$OIDC_PID" 2>/dev/null || true
    OIDC_PID=
  fi
}

# The local stack a harness runs the functions' binaries against (make bench, make soak): a
# moto server on a free port (stopped on exit), the local configuration with a table of its
# own named $1, user tokens minted by xtask with an HS256 secret (so that no identity
# provider has to run: its key fetch would be in every cold start), the demo clients, and a
# fresh signing key set. Exports the configuration, SIGNING_KEYS and DEMO_SERVICE_SECRET
# (the confidential demo client's secret). Needs target/debug/xtask.
start_local_stack() {
  local port setup_out
  port=$(free_port)
  start_moto "$port"
  trap stop_moto EXIT
  while IFS= read -r line; do export "$line"; done < <(target/debug/xtask env)
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  export TABLE_NAME="$1"
  export USER_TOKEN_ISSUER=https://harness-idp.example USER_TOKEN_JWKS_URL=
  export USER_TOKEN_HS256_SECRET=harness-user-token-secret-0123456789abcdef
  setup_out=$(target/debug/xtask setup)
  DEMO_SERVICE_SECRET=$(printf '%s\n' "$setup_out" | sed -n 's/^demo client demo-service (confidential), client_secret: //p')
  SIGNING_KEYS=$(target/debug/xtask signing-keys)
  export DEMO_SERVICE_SECRET SIGNING_KEYS
}
