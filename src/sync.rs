//! The one place that names the synchronisation primitives.
//!
//! Every atomic, `Arc` and fence in rtmgr comes from here. A normal build re-exports `std`'s;
//! the model-checking build (`--features loom` with `RUSTFLAGS="--cfg loom --cfg
//! crossbeam_loom"`) re-exports loom's, so the loom models in `loom-tests/` check the crate's
//! own code, not a copy of it. Call sites never change between the two builds.
//!
//! crossbeam-epoch is re-exported from here as well: built with its `loom` feature and
//! `--cfg crossbeam_loom` it runs on loom's atomics; with `--cfg loom` alone it would use the
//! real collector and the models would prove nothing, hence the `compile_error!` below.

#[cfg(all(loom, not(crossbeam_loom)))]
compile_error!(
    "a loom build of rtmgr needs `--cfg crossbeam_loom` too (RUSTFLAGS=\"--cfg loom --cfg crossbeam_loom\"), \
     otherwise crossbeam-epoch runs its real collector and the models check nothing"
);

#[cfg(all(loom, not(feature = "loom")))]
compile_error!("a loom build of rtmgr needs the `loom` feature (cargo test --features loom)");

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};

pub(crate) use crossbeam_epoch as epoch;

#[cfg(loom)]
pub(crate) use loom::hint::spin_loop;
/// The hint for a retry loop that waits on another thread's store. Under loom it is also what
/// lets the model make progress: loom may keep returning a stale value to a thread that only
/// loads, until that thread yields.
#[cfg(not(loom))]
pub(crate) use std::hint::spin_loop;

/// A plain process-wide counter (serial numbers): it orders nothing, so it stays `std`'s even
/// under loom, where a `static` loom atomic would outlive the model that created it.
pub(crate) use std::sync::atomic::AtomicU64 as SerialCounter;
