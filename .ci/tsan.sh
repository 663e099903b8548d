#!/usr/bin/env bash
# ThreadSanitizer over the unit tests and the multi-threaded stress/teardown tests.
# Nightly only (-Zsanitizer, and -Zbuild-std so that std is instrumented too). build.rs sets
# `--cfg rtmgr_tsan` when it sees the sanitizer (TSan does not model fences: the release path then
# uses an Acquire load, as std's Arc does); crossbeam-epoch does the same on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/sanitizer-tests.sh

rustup component add rust-src --toolchain nightly >/dev/null
export RUSTFLAGS="-Zsanitizer=thread"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export CARGO_TARGET_DIR="${TSAN_TARGET_DIR:-target/tsan}"
# A report fails the run (exit 66) at the end; keep going to see every report.
export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1}"
export RUST_MIN_STACK=$((16 * 1024 * 1024))

# shellcheck disable=SC2046
cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu -p rtmgr $(sanitizer_test_args) "$@"
