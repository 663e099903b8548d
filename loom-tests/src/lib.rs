//! Shared pieces of the loom models in `tests/`: the model runner and a payload that notices
//! being read after its destruction.
//!
//! The models check rtmgr's own code (its `sync` facade puts loom's atomics and loom's
//! crossbeam-epoch under it); they exist only in the model-checking build:
//!
//! ```text
//! RUSTFLAGS="--cfg loom --cfg crossbeam_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p rtmgr-loom-tests --features loom --release --tests
//! ```
//!
//! `.ci/loom.sh` runs exactly that; `.ci/loom-mutants.sh` runs it once per planted bug and
//! requires each run to fail.

#![cfg(loom)]

use std::sync::atomic::{AtomicU64, Ordering};

pub use loom;
pub use rtmgr::loom_api;

/// Runs `model` under loom, every interleaving within the preemption bound (`LOOM_MAX_PREEMPTIONS`,
/// 2 when unset), then, in each execution, drives reclamation to the end and requires that
/// every object the execution created was destroyed exactly once: nothing leaked, nothing freed
/// twice (the quarantine in rtmgr's `counted.rs` panics on a double destruction and on any use of
/// a destroyed object).
pub fn check<F>(model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    check_bounded(2, model);
}

/// [`check`] with `bound` preemptions when `LOOM_MAX_PREEMPTIONS` is unset or larger: for
/// models of three threads, whose exploration at bound 2 is out of reach.
pub fn check_bounded<F>(bound: usize, model: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(bound, |b| b.min(bound)));
    // Driving reclamation takes many steps in one execution; loom's default cap (1000) is for
    // spin-loop detection, which these models do not need that tight.
    if std::env::var_os("LOOM_MAX_BRANCHES").is_none() {
        builder.max_branches = 20_000;
    }
    let executions = std::sync::Arc::new(AtomicU64::new(0));
    let counter = executions.clone();
    let start = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
        loom_api::drain();
        assert_eq!(
            loom_api::live_objects(),
            0,
            "objects leaked: never destroyed after every reference was released"
        );
    });
    let name = std::thread::current().name().unwrap_or("model").to_owned();
    eprintln!(
        "loom: {name}: {} executions in {:.1} s (preemption bound {:?})",
        executions.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        builder.preemption_bound
    );
}

/// Drives reclamation from a model thread while others may still run: a few flushes, each of
/// which may advance the epoch and destroy what expired. (Unlike [`loom_api::drain`], it does
/// not wait for everything.)
pub fn reclaim(rounds: usize) {
    for _ in 0..rounds {
        loom_api::epoch::pin().flush();
    }
}

const ALIVE: u64 = 0xA11_7E5_A11_7E5;
const DEAD: u64 = 0xDEAD_DEAD_DEAD;

/// A value that checks, on every read, that it was not destroyed: a second line of defence
/// behind the quarantine's poison flag, for a reference obtained before the destruction and read
/// after it.
#[derive(Debug)]
pub struct Payload {
    id: u32,
    state: AtomicU64,
}

impl Payload {
    /// A live payload.
    pub fn new(id: u32) -> Self {
        Payload { id, state: AtomicU64::new(ALIVE) }
    }

    /// The id; panics if the payload was destroyed.
    #[track_caller]
    pub fn read(&self) -> u32 {
        assert_eq!(
            self.state.load(Ordering::SeqCst),
            ALIVE,
            "payload {} read after its destruction",
            self.id
        );
        self.id
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        assert_eq!(self.state.swap(DEAD, Ordering::SeqCst), ALIVE, "payload {} destroyed twice", self.id);
    }
}

/// The tree key of an IPv4 address (the address in the top bits).
pub const fn v4_key(addr: u32) -> u128 {
    (addr as u128) << 96
}
