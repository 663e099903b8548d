#!/usr/bin/env bash
# Shared by tsan.sh and asan.sh: the test targets a sanitizer run covers — the crate's unit
# tests plus the multi-threaded stress and teardown tests that exist (found by file name, so a
# file added or renamed later needs no change here).
sanitizer_test_args() {
    local args=(--lib) f
    for f in tests/stress*.rs tests/teardown*.rs; do
        [ -e "$f" ] && args+=(--test "$(basename "$f" .rs)")
    done
    echo "${args[@]}"
}
