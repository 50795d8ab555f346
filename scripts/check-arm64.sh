#!/usr/bin/env bash
# `make check-arm64`: the artifact we deploy is the artifact we test. Builds every function
# for Lambda's arm64 exactly as `sam build` does (its rust-cargolambda builder runs
# `cargo lambda build --release --arm64`, cross-linked with the zig that cargo-lambda brings
# from PyPI), checks that no binary needs a glibc symbol newer than Lambda's provided.al2023
# offers, then runs the benchmark harness's quick login on those binaries under qemu-user
# (Debian's qemu-user-static, with libc6-arm64-cross as the arm64 system root), which fails
# unless the whole login completes with no secret in the TRACE logs. callgrind cannot run
# under qemu-user, so the harness skips its instruction counts here.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# Amazon Linux 2023's glibc: no binary may need a newer symbol version.
LAMBDA_GLIBC=2.34
SYSROOT=/usr/aarch64-linux-gnu

need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || need+=(libc6-arm64-cross)
[ -e "$SYSROOT/lib/libgcc_s.so.1" ] || need+=(libgcc-s1-arm64-cross)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} (Debian)" >&2
  sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >&2
fi

scripts/bench.sh --arm64

functions=(device-authorization token verify admin discovery introspection verification-page)
echo "==> glibc: every binary needs at most GLIBC_$LAMBDA_GLIBC (provided.al2023)" >&2
bin_dir=.local/arm64
rm -rf "$bin_dir"
mkdir -p "$bin_dir"
for name in "${functions[@]}"; do
  binary="target/lambda/$name/bootstrap"
  machine=$(readelf -h "$binary" | sed -n 's/^ *Machine: *//p')
  if [ "$machine" != "AArch64" ]; then
    echo "$binary is built for $machine, not AArch64" >&2
    exit 1
  fi
  newest=$(readelf -V --wide "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ "$(printf '%s\n%s\n' "$newest" "$LAMBDA_GLIBC" | sort -V | tail -1)" != "$LAMBDA_GLIBC" ]; then
    echo "$name needs GLIBC_$newest, newer than Lambda's $LAMBDA_GLIBC" >&2
    exit 1
  fi
  echo "    $name: GLIBC_$newest" >&2
  ln -s "$PWD/$binary" "$bin_dir/$name"
done

echo "==> the quick login on the arm64 binaries, under qemu-user, at TRACE" >&2
BENCH_BIN_DIR="$bin_dir" BENCH_LAUNCHER="qemu-aarch64-static -L $SYSROOT" \
  scripts/bench.sh --quick >/dev/null
echo "==> the arm64 build completes a login" >&2
