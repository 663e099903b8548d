#!/usr/bin/env bash
# AddressSanitizer (with LeakSanitizer, on by default on x86_64 Linux) over the unit tests and
# the stress/teardown tests: use after free, overflows, and memory never freed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/sanitizer-tests.sh

rustup component add rust-src --toolchain nightly >/dev/null
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR="${ASAN_TARGET_DIR:-target/asan}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}"
export RUST_MIN_STACK=$((16 * 1024 * 1024))

# shellcheck disable=SC2046
cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p rtmgr $(sanitizer_test_args) "$@"
