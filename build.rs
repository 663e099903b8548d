//! Build-time cfgs for the verification builds; a normal build sets nothing.
//!
//! - `rtmgr_tsan` when ThreadSanitizer is on (`-Zsanitizer=thread`): TSan does not model fences,
//!   so the release path uses an `Acquire` load instead of `fence(Acquire)`, as std's `Arc` does
//!   (`counted.rs`).
//! - `rtmgr_sanitizer` under any sanitizer (ThreadSanitizer, AddressSanitizer), where every
//!   memory access is an instrumented call: the direct forwarding layout's first level is 16 bits
//!   instead of 24 (`src/fib/direct.rs`) and the randomized forwarding tests run fewer rounds
//!   (they run in full in the plain test build).
//! - `rtmgr_mutant="NAME"` from the environment variable `RTMGR_MUTANT`, only in the loom build
//!   (`--cfg loom`): the planted bugs of `.ci/loom-mutants.sh`. Taking it from the environment
//!   rebuilds only this crate per mutant, not every dependency as a `RUSTFLAGS` change would;
//!   `--cfg rtmgr_mutant="NAME"` in `RUSTFLAGS` works as well.

use std::env;

const MUTANTS: [&str; 7] = [
    "plain_increment",
    "free_immediately",
    "relaxed_release",
    "stale_refresh",
    "eager_reuse",
    "tick_before_cas",
    "revive_under_snapshot",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RTMGR_MUTANT");

    // `cfg(sanitize = "..")` is unstable; cargo passes the target's cfgs to build scripts.
    let sanitizers = env::var("CARGO_CFG_SANITIZE").unwrap_or_default();
    if sanitizers.contains("thread") {
        println!("cargo:rustc-cfg=rtmgr_tsan");
    }
    if !sanitizers.is_empty() {
        println!("cargo:rustc-cfg=rtmgr_sanitizer");
    }

    let mutant = env::var("RTMGR_MUTANT").unwrap_or_default();
    if !mutant.is_empty() && env::var_os("CARGO_CFG_LOOM").is_some() {
        assert!(MUTANTS.contains(&mutant.as_str()), "RTMGR_MUTANT={mutant:?}: not one of {MUTANTS:?}");
        println!("cargo:rustc-cfg=rtmgr_mutant=\"{mutant}\"");
    }
}
