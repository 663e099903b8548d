#!/usr/bin/env bash
# The mutant check: every loom model must be able to fail. For each planted bug in
# src/counted.rs (RTMGR_MUTANT, see build.rs) this runs every model alone and records whether
# loom caught it with a memory-safety signature (use after free, double destruction, a read not
# ordered before the destructor, a leak). The fourth mutant, `stale_refresh` in
# src/table/write.rs (a forwarding refresh that reads the best route before taking the lock),
# runs on the forwarding models only, whose signature is their convergence check ("diverged
# from the tree"); `eager_reuse` in src/fib/direct.rs runs on the direct-layout models; and
# `revive_under_snapshot` in src/table/write.rs (lazy removal's presence protocol, see
# src/table/presence.rs) runs on the snapshot models of presence.rs, whose signature is their
# exactness check ("not a state the table went through"). It fails unless
#   - each mutant is caught by at least one model, and
#   - each model catches at least one mutant (a model that can never fail proves nothing).
# To keep CI short it runs a (mutant, model) pair only while it can still tell something: when
# the model has caught no mutant yet, or the mutant has not been caught yet (models that caught
# it in the full matrix of docs/VERIFICATION.md are tried first: FIRST). LOOM_MUTANTS_FULL=1
# runs every pair (the matrix in docs/VERIFICATION.md).
# The clean run must pass too: .ci/run runs .ci/loom.sh first; by hand, this script runs it
# unless LOOM_SKIP_CLEAN=1.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${LOOM_SKIP_CLEAN:-0}" != 1 ]; then
    .ci/loom.sh
fi

export RUSTFLAGS="--cfg loom --cfg crossbeam_loom"
# One target dir for all mutants: RTMGR_MUTANT rebuilds only rtmgr and the models.
export CARGO_TARGET_DIR="${LOOM_MUTANT_TARGET_DIR:-target/loom-mutant}"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
export RUST_BACKTRACE=0
# free_immediately first: it is caught by 13 of the 16 models, relaxed_release by the other three.
MUTANTS=(free_immediately relaxed_release plain_increment stale_refresh eager_reuse revive_under_snapshot)
# `tick_before_cas` (also planted) is caught only by `presence::snapshot_races_emptying_and_link`,
# a three-thread model too slow for CI (`#[ignore]`d; docs/VERIFICATION.md gives the run by hand).
# Ignored models are left out here as in the clean run.
# A mutant that only some models can meet runs on those only (a prefix of the model key).
declare -A ONLY=([stale_refresh]="forwarding::" [eager_reuse]="forwarding::direct" [tick_before_cas]="presence::snapshot" [revive_under_snapshot]="presence::snapshot")
# A model known (docs/VERIFICATION.md) to catch the mutant, tried before the others; if it stops
# catching it, the remaining models are tried in turn and the check still decides.
declare -A FIRST=([relaxed_release]="handles::last_two_releases" [plain_increment]="handles::load_ref_races_replacement" [stale_refresh]="forwarding::concurrent_refreshes_converge" [revive_under_snapshot]="presence::snapshot_races_emptying_then_revival")
FULL="${LOOM_MUTANTS_FULL:-0}"
# What a real catch looks like (a mutant that merely hangs or trips loom's branch limit is not):
# a memory-safety failure, the forwarding models' convergence check, or a lookup answering with
# another prefix's route (a reused index).
SIGNATURES='use after free|destroyed twice|Causality violation|leaked|read after its destruction|diverged from the tree|data of another prefix|not a state the table went through'
LOGS="$CARGO_TARGET_DIR/mutant-logs"
mkdir -p "$LOGS"

declare -A caught_by_mutant caught_by_model
models=()
status=0
for mutant in "${MUTANTS[@]}"; do
    echo "--- mutant $mutant: building"
    bins=$(RTMGR_MUTANT="$mutant" cargo test -p rtmgr-loom-tests --features loom --release --tests --no-run 2>&1 \
        | tee "$LOGS/build-$mutant.log" | sed -n 's/^ *Executable tests\/.*(\(.*\))$/\1/p')
    [ -n "$bins" ] || { cat "$LOGS/build-$mutant.log"; echo "no model binaries built"; exit 1; }
    # Every (binary, model, key) of this build, the FIRST model in front.
    runs=()
    for bin in $bins; do
        ignored=" $("$bin" --list --format terse --ignored 2>/dev/null | sed -n 's/: test$//p' | tr '\n' ' ') "
        for model in $("$bin" --list --format terse 2>/dev/null | sed -n 's/: test$//p'); do
            [[ "$ignored" == *" $model "* ]] && continue
            key="$(basename "${bin%-*}")::$model"
            [ "$mutant" = "${MUTANTS[0]}" ] && models+=("$key")
            if [ "$key" = "${FIRST[$mutant]:-}" ]; then
                runs=("$bin $model $key" "${runs[@]}")
            else
                runs+=("$bin $model $key")
            fi
        done
    done
    for run in "${runs[@]}"; do
        read -r bin model key <<<"$run"
        if [ -n "${ONLY[$mutant]:-}" ] && [[ "$key" != "${ONLY[$mutant]}"* ]]; then
            continue
        fi
        if [ "$FULL" != 1 ] && [ -n "${caught_by_model[$key]:-}" ] && [ -n "${caught_by_mutant[$mutant]:-}" ]; then
            continue   # nothing left to learn from this pair
        fi
        log="$LOGS/$mutant-${key//::/-}.log"
        start=$SECONDS
        set +e
        # The subshell keeps bash's "Aborted" job notice (a failing model may abort after
        # loom's report, while unwinding) out of the output; the log has everything. (`exit`
        # keeps bash from exec'ing timeout in place of the subshell, which would move the
        # notice to this shell.)
        (timeout "${LOOM_MUTANT_TIMEOUT:-900}" "$bin" --exact "$model" --test-threads 1 >"$log" 2>&1; exit $?) 2>/dev/null
        rc=$?
        set -e
        if [ $rc -eq 0 ]; then
            verdict="survived"
        elif grep -Eq "$SIGNATURES" "$log"; then
            verdict="CAUGHT ($(grep -Eo "$SIGNATURES" "$log" | head -1))"
            caught_by_mutant[$mutant]=1
            caught_by_model[$key]=1
        else
            verdict="failed without a memory-safety signature (rc $rc): see $log"
            status=1
        fi
        printf '    %-17s %-55s %4ss  %s\n' "$mutant" "$key" $((SECONDS - start)) "$verdict"
    done
done

echo "--- summary"
for mutant in "${MUTANTS[@]}"; do
    if [ -n "${caught_by_mutant[$mutant]:-}" ]; then echo "    mutant $mutant: caught"; else echo "    mutant $mutant: NOT CAUGHT by any model"; status=1; fi
done
for key in "${models[@]}"; do
    if [ -z "${caught_by_model[$key]:-}" ]; then echo "    model $key catches no mutant"; status=1; fi
done
[ $status -eq 0 ] && echo "    every mutant caught, every model catches one"
exit $status
