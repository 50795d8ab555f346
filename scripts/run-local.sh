#!/usr/bin/env bash
# `make run`: the whole service on http://127.0.0.1:9000, on a local DynamoDB-compatible
# server (moto) that it starts, with the demo clients seeded. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_venv
export PATH="$PWD/$VENV/bin:$PATH"

# The local configuration, from [workspace.metadata.lambda.env] in Cargo.toml.
cargo build --quiet -p xtask
while IFS= read -r line; do export "$line"; done < <(target/debug/xtask env)

port=${AWS_ENDPOINT_URL_DYNAMODB##*:}
oidc_port=${OIDC_ISSUER##*:}
# Fail early and plainly if something (another `make run`?) holds the ports.
for p in 9000 "$port" "$oidc_port"; do
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $p)) != 0)"; then
    echo "port $p on 127.0.0.1 is in use (is another 'make run' still running?)" >&2
    exit 1
  fi
done
start_moto "$port"
trap 'stop_moto; stop_oidc_provider' EXIT INT TERM
start_oidc_provider "$oidc_port"

target/debug/xtask setup
# A signing key for the token function, unless one is configured.
if [ -z "${SIGNING_KEYS:-}" ] && [ -z "${SIGNING_KEYS_SECRET_ID:-}" ]; then
  SIGNING_KEYS=$(target/debug/xtask signing-keys)
  export SIGNING_KEYS
fi
token=$(target/debug/xtask dev-token --sub demo-user)
admin_token=$(target/debug/xtask dev-token --sub demo-admin --permissions ADMINISTRATOR)

cat <<MSG

Device-flow service on ${ISSUER} (DynamoDB: ${AWS_ENDPOINT_URL_DYNAMODB})

The verification page (the device's verification_uri): ${ISSUER}/device
  You sign in at the local OpenID provider (${OIDC_ISSUER}): type any name as the subject.
  Try it: cargo run -p device-login -- --issuer ${ISSUER} --client-id demo-cli
  then open the address it shows, sign in, type the code and approve.

User tokens for the APIs (ID tokens of the local provider, valid 12 hours):
Development user token (sub demo-user):
  ${token}
Development admin token (sub demo-admin, ADMINISTRATOR):
  ${admin_token}
More: make dev-token SUB=alice [PERMISSIONS=ADMINISTRATOR]

Or by hand, through the APIs (in another terminal):
  TOKEN=\$(make -s dev-token SUB=demo-user)
  ADMIN_TOKEN=\$(make -s dev-token SUB=demo-admin PERMISSIONS=ADMINISTRATOR)
  # the device asks for a code
  curl -s -X POST ${ISSUER}/oauth2/v1/device -d client_id=demo-cli -d 'scope=read write'
  # the signed-in user looks it up, then approves it (use the id the look-up returns)
  curl -s -H "Authorization: Bearer \$TOKEN" ${ISSUER}/v2/oidc/device_authorization/<user_code>
  curl -s -X POST -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' \\
    -d '{"session":{"sessionId":"local"}}' ${ISSUER}/v2/oidc/device_authorization/<id>
  # an administrator lists them
  curl -s -H "Authorization: Bearer \$ADMIN_TOKEN" ${ISSUER}/admin/oauth/device-authorizations
  # the device polls and gets its token
  curl -s -X POST ${ISSUER}/oauth2/v1/token -d client_id=demo-cli \\
    -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=<device_code>
  # with scope openid: who signed in (the ID token says it too)
  curl -s -H "Authorization: Bearer <access_token>" ${ISSUER}/oauth2/v1/userinfo

MSG

# Build every function now, so that the first request does not wait for a compile. The
# watch below runs `cargo run --bin <function>`, which resolves features over the
# workspace's default members: building by `--bin` (not `-p`) resolves them the same way,
# so the watch finds every binary up to date instead of rebuilding the shared crates.
echo "==> building the functions" >&2
cargo build --quiet --bin device-authorization --bin token --bin verify --bin admin \
  --bin discovery --bin verification-page --bin introspection
# The watch's own INFO lines (several per instance started) would drown the service's
# logs; the functions log at RUST_LOG from [workspace.metadata.lambda.env] all the same.
# WATCH_LOG=info brings them back.
RUST_LOG=${WATCH_LOG:-warn} cargo lambda watch --quiet -A 127.0.0.1 -P 9000 --concurrency 8
