# The two commands of the README, plus a helper. Each installs what it needs (a Python
# virtual environment with moto and cargo-lambda) on first use.
.PHONY: run test dev-token

run:
	@scripts/run-local.sh

test:
	@scripts/test.sh

# make dev-token SUB=alice [PERMISSIONS=ADMINISTRATOR]
dev-token:
	@test -n "$(SUB)" || { echo "usage: make dev-token SUB=<account> [PERMISSIONS=A,B]" >&2; exit 2; }
	@cargo run --quiet -p xtask -- dev-token --sub "$(SUB)" --permissions "$(PERMISSIONS)"
