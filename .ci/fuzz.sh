#!/usr/bin/env bash
# Each cargo-fuzz target for a fixed time (FUZZ_SECONDS, 60 by default), starting from the
# committed seed corpus (fuzz/corpus/TARGET, only read) with new inputs kept in a scratch
# folder. A finding fails the run and leaves its input under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
seconds="${FUZZ_SECONDS:-60}"
scratch="${FUZZ_SCRATCH:-target/fuzz-scratch}"
cd fuzz
cargo +nightly fuzz build
for target in $(cargo +nightly fuzz list); do
    mkdir -p "../$scratch/$target" "corpus/$target"
    log="../$scratch/$target.log"
    echo "--- fuzz $target for ${seconds}s"
    set +e
    cargo +nightly fuzz run "$target" "../$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" || true
    if [ $rc -ne 0 ]; then
        grep -E -B2 -A30 'panicked|ERROR: libFuzzer|SUMMARY|^==' "$log" | head -80
        echo "fuzz target $target found a failure (rc $rc): input under fuzz/artifacts/$target/"
        exit 1
    fi
done
