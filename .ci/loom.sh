#!/usr/bin/env bash
# The loom models (loom-tests/): every interleaving, within the preemption bound, of the crate's
# own handle protocol and write path, on loom's atomics and loom's crossbeam-epoch.
# Runnable by hand from anywhere; extra arguments go to the test harness (e.g. a model's name).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom --cfg crossbeam_loom"   # both: see src/sync.rs
export CARGO_TARGET_DIR="${LOOM_TARGET_DIR:-target/loom}"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-0}"
unset RTMGR_MUTANT

# --tests: the model files only (doc tests do not run under loom). --nocapture shows each
# model's execution count.
cargo test -p rtmgr-loom-tests --features loom --release --tests -- --nocapture "$@"
