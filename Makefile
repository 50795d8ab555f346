# The two commands of the README, plus a helper. Each installs what it needs (a Python
# virtual environment with moto and cargo-lambda) on first use.
.PHONY: run test bench bench-arm64 check-arm64 soak capacity fuzz dev-token approve deny

run:
	@scripts/run-local.sh

test:
	@scripts/test.sh

# Release binaries measured on a local DynamoDB: sizes, init, warm CPU per request, memory,
# DynamoDB requests and capacity per login; then the Criterion micro-benchmarks.
# The tables are those of BENCHMARKS.md.
bench:
	@scripts/bench.sh
	@cargo bench --quiet -p device-flow --bench hot_paths -- --noplot 2>/dev/null | grep -E '^[a-z].*|time:'

# The release binaries as Lambda runs them (arm64, cross-built with cargo lambda and zig,
# both from PyPI): their sizes.
bench-arm64:
	@scripts/bench.sh --arm64

# The arm64 binaries as `sam build` makes them, checked against Lambda's glibc and run
# through a whole login under qemu-user (about 10 minutes cold; too slow for make test).
check-arm64:
	@scripts/check-arm64.sh

# Thousands of whole logins through the release binaries while the store fails and instances
# die, then the proof that nothing was lost or issued twice (scripts/soak.py).
# make soak [SOAK_SECONDS=600] [SOAK_SEED=N]
soak:
	@scripts/soak.sh

# The DynamoDB capacity model: per table and index, units a second, the busiest partition
# key against its limits, the monthly bill. Default profile: 10,000 logins a second.
# make capacity [PROFILE="--logins-per-second 500 --confidential-share 0"]
capacity:
	@cargo run --quiet -p xtask -- capacity $(PROFILE)

# make fuzz TARGET=form [SECONDS=600]: one fuzz target, built optimised; `cargo fuzz list`
# (or the README) names them.
fuzz:
	@test -n "$(TARGET)" || { echo "usage: make fuzz TARGET=<target> [SECONDS=600]; targets: $$(ls fuzz/fuzz_targets | sed 's/\.rs$$//' | tr '\n' ' ')" >&2; exit 2; }
	@scripts/fuzz.sh "$(TARGET)" "$(or $(SECONDS),600)"

# make dev-token SUB=alice [PERMISSIONS=ADMINISTRATOR]
dev-token:
	@test -n "$(SUB)" || { echo "usage: make dev-token SUB=<account> [PERMISSIONS=A,B]" >&2; exit 2; }
	@cargo run --quiet -p xtask -- dev-token --sub "$(SUB)" --permissions "$(PERMISSIONS)"

# Decide a pending request from the command line, without a browser or a user token:
# make approve CODE=BCDF-GHJK [SUB=demo-user], make deny CODE=...
approve:
	@test -n "$(CODE)" || { echo "usage: make approve CODE=<user code> [SUB=<account>]" >&2; exit 2; }
	@scripts/with-local-env.sh cargo run --quiet -p xtask -- approve "$(CODE)" --sub "$(or $(SUB),demo-user)"

deny:
	@test -n "$(CODE)" || { echo "usage: make deny CODE=<user code>" >&2; exit 2; }
	@scripts/with-local-env.sh cargo run --quiet -p xtask -- deny "$(CODE)"
