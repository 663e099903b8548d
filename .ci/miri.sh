#!/usr/bin/env bash
# miri over the crate's unit tests: undefined behaviour in the unsafe code (the counted
# references, the epoch cell, the tree's raw pointers) under Tree Borrows.
#
# -Zmiri-tree-borrows: crossbeam-epoch 0.9 itself violates Stacked Borrows.
# -Zmiri-ignore-leaks: crossbeam-epoch's global collector still holds garbage when the test
#   process exits (memory reclaimed through epochs lags by design); the leak tests elsewhere
#   (tests/teardown*.rs with a counting allocator, LeakSanitizer in .ci/asan.sh) cover leaks.
# Tests too slow to interpret (thousands of epoch flushes, thousands of random tree operations)
# are skipped here: MIRI_SKIP lists them; they run natively and under the sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup component add miri rust-src --toolchain nightly >/dev/null
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks}"
skip=()
default_skip="reclaim::tests::retiring_during_thread_exit_does_not_recurse reclaim::tests::parked_destructors_run_after_adoption
    tree::tests::matches_a_reference_model tree::tests::resume_matches_the_model"
for t in ${MIRI_SKIP:-$default_skip}; do
    skip+=(--skip "$t")
done
cargo +nightly miri setup
cargo +nightly miri test -p rtmgr --lib -- "${skip[@]}" "$@"
