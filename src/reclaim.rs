//! Handing destructors to the epoch collector — also while a thread is exiting.
//!
//! `crossbeam_epoch::pin()` uses a thread-local participant; once that is destroyed (thread
//! exit), it registers a fresh participant for every call, and a fresh participant collects
//! garbage on its first pin. rtmgr's destructors release references and so retire more objects
//! from inside the collector: at thread exit each of them would register another participant,
//! which collects again, recursing without bound until the stack overflows (seen as a SIGSEGV
//! when writer threads exited with much garbage queued).
//!
//! So rtmgr retires through its own thread-local participant and, when that is gone, *parks*
//! the destructor on a global lock-free list; the next retirement on a live thread hands every
//! parked destructor to the collector. Parking only delays a destruction, which is always safe.
//!
//! # Invariants
//!
//! 1. Every destructor given to [`retire`] runs exactly once, after every guard pinned before
//!    the call has been dropped (the caller's safety argument relies on this).
//! 2. The orphan list is a Treiber stack that is only pushed to and taken whole (`swap` with
//!    null), so it has no ABA problem.

/// Runs `destroy` once no guard pinned before this call is left.
///
/// # Safety
///
/// `destroy` must be safe to run on any thread once every guard pinned before this call has
/// been dropped.
#[cfg(not(loom))]
pub(crate) unsafe fn retire(destroy: impl FnOnce() + Send + 'static) {
    let mut destroy = Some(destroy);
    let retired = HANDLE.try_with(|handle| {
        let guard = handle.pin();
        adopt_orphans(&guard);
        let destroy = destroy.take().expect("taken once");
        // SAFETY: the caller's contract (invariant 1).
        unsafe { guard.defer_unchecked(destroy) };
        // crossbeam collects a few bags every 128 pins; a writer retires several objects per
        // write, faster than that. Flushing every `FLUSH_EVERY` retirements keeps reclamation
        // in step with the writers (a bulk load otherwise doubled its peak memory).
        // Not from inside a flush: the destructors it runs retire more, and flushing again
        // there would recurse.
        let retired = RETIRED.get().wrapping_add(1);
        RETIRED.set(retired);
        if retired % FLUSH_EVERY == 0 && !FLUSHING.get() {
            FLUSHING.set(true);
            guard.flush();
            FLUSHING.set(false);
        }
    });
    if retired.is_err() {
        // This thread's participant is gone: park the destructor (invariant 1 still holds since
        // it will be deferred later, after guards pinned now).
        park(Box::new(destroy.take().expect("not taken on failure")));
    }
}

/// Under loom the thread-local participant is crossbeam's own (loom's thread locals are
/// model-scoped), and models never run destructors at thread exit.
///
/// # Safety
///
/// As above.
#[cfg(loom)]
pub(crate) unsafe fn retire(destroy: impl FnOnce() + Send + 'static) {
    let guard = crate::sync::epoch::pin();
    // SAFETY: the caller's contract.
    unsafe { guard.defer_unchecked(destroy) };
}

/// Pins the current thread through rtmgr's participant (crossbeam's own when it is gone at
/// thread exit: a read then costs a fresh registration, but never recursion, since rtmgr's
/// destructors retire through [`retire`]).
#[cfg(not(loom))]
#[inline]
pub(crate) fn pin() -> Guard {
    HANDLE.try_with(|h| h.pin()).unwrap_or_else(|_| crossbeam_epoch::pin())
}

#[cfg(loom)]
pub(crate) fn pin() -> Guard {
    crate::sync::epoch::pin()
}

/// Whether the current thread holds an rtmgr guard (e.g. one from [`Table::pin`]).
///
/// Useful to check that nothing keeps the thread pinned between operations: while a guard is
/// held, memory that writers retire cannot be reclaimed.
///
/// ```
/// let table = rtmgr::Table::<rtmgr::Ipv4>::new();
/// assert!(!rtmgr::is_pinned());
/// let guard = table.pin();
/// assert!(rtmgr::is_pinned());
/// drop(guard);
/// assert!(!rtmgr::is_pinned());
/// ```
///
/// [`Table::pin`]: crate::Table::pin
#[cfg(not(loom))]
pub fn is_pinned() -> bool {
    HANDLE.try_with(|h| h.is_pinned()).unwrap_or(false)
}

/// Whether the current thread holds an rtmgr guard.
#[cfg(loom)]
pub fn is_pinned() -> bool {
    crate::sync::epoch::is_pinned()
}

/// Pushes this thread's retired objects to the collector and reclaims what no guard protects
/// any more. Repeated calls (on every thread that retired objects) eventually free everything
/// released; tests use it to check that nothing leaks.
///
/// Memory released by writers is reclaimed through epochs: writers flush their garbage as
/// they go, but objects retired by a thread that then goes idle (say, the thread that dropped a
/// large table) wait in that thread's bag until it calls this, writes again, or exits. Note
/// that rtmgr's garbage is in rtmgr's own epoch participant: `crossbeam_epoch::pin().flush()`
/// does not reach it. The collector's own bookkeeping allocates and frees a little on every
/// call, so a leak check should compare with a small tolerance or take a minimum.
///
/// ```
/// rtmgr::collect_garbage();
/// ```
pub fn collect_garbage() {
    #[cfg(not(loom))]
    {
        let outer = !FLUSHING.replace(true);
        pin().flush();
        if outer {
            FLUSHING.set(false);
        }
    }
    #[cfg(loom)]
    pin().flush();
}

use crate::sync::epoch::Guard;

#[cfg(not(loom))]
pub(crate) use orphans::{HANDLE, adopt_orphans, park};

/// Retirements between two flushes of this thread's garbage to the collector.
#[cfg(not(loom))]
const FLUSH_EVERY: u32 = 64;

#[cfg(not(loom))]
thread_local! {
    /// Retirements on this thread (no destructor, so readable during thread exit).
    static RETIRED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// Set while this thread flushes (and so runs destructors).
    static FLUSHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(not(loom))]
mod orphans {
    use std::ptr;
    use std::sync::atomic::{AtomicPtr, Ordering};

    use crossbeam_epoch::{Guard, LocalHandle};

    type Destructor = Box<dyn FnOnce() + Send>;

    struct Orphan {
        destroy: Destructor,
        next: *mut Orphan,
    }

    /// Parked destructors (invariant 2). Pushes are Release and the take is Acquire, so the
    /// taker sees each orphan fully written.
    static ORPHANS: AtomicPtr<Orphan> = AtomicPtr::new(ptr::null_mut());

    thread_local! {
        /// rtmgr's participant in crossbeam's default collector, for this thread.
        pub(crate) static HANDLE: LocalHandle = crossbeam_epoch::default_collector().register();
    }

    /// Parks a destructor until a live thread retires something.
    pub(crate) fn park(destroy: Destructor) {
        let node = Box::into_raw(Box::new(Orphan { destroy, next: ptr::null_mut() }));
        let mut head = ORPHANS.load(Ordering::Relaxed);
        loop {
            // SAFETY: `node` is ours until the CAS publishes it.
            unsafe { (*node).next = head };
            match ORPHANS.compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }

    /// Defers every parked destructor under `guard`.
    pub(crate) fn adopt_orphans(guard: &Guard) {
        if ORPHANS.load(Ordering::Relaxed).is_null() {
            return; // the common case: one relaxed load
        }
        let mut node = ORPHANS.swap(ptr::null_mut(), Ordering::Acquire);
        while !node.is_null() {
            // SAFETY: the swap took the whole list, so these nodes are ours alone (invariant 2).
            let orphan = unsafe { Box::from_raw(node) };
            node = orphan.next;
            let destroy = orphan.destroy;
            // SAFETY: parked destructors were retired earlier; deferring them under a guard
            // pinned now delays them further, which invariant 1 allows.
            unsafe { guard.defer_unchecked(destroy) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn parked_destructors_run_after_adoption() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        park(Box::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        // A retirement on a live thread adopts the orphan.
        // SAFETY: the closure touches nothing shared.
        unsafe { retire(|| {}) };
        // Other tests' threads pin guards too (and may adopt the orphan themselves): retry until
        // the epoch has moved on, for up to 10 s.
        for _ in 0..10_000 {
            crossbeam_epoch::pin().flush();
            HANDLE.with(|h| h.pin().flush());
            if ran.load(Ordering::SeqCst) == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    /// A thread whose thread-locals are being destroyed retires objects whose destructors
    /// retire more: this must not recurse (it used to overflow the stack).
    #[test]
    fn retiring_during_thread_exit_does_not_recurse() {
        struct Chain(u32);
        impl Drop for Chain {
            fn drop(&mut self) {
                if self.0 > 0 {
                    let next = Chain(self.0 - 1);
                    // SAFETY: the closure owns what it drops.
                    unsafe { retire(move || drop(next)) };
                }
            }
        }
        struct OnExit;
        impl Drop for OnExit {
            fn drop(&mut self) {
                for _ in 0..2000 {
                    let chain = Chain(50);
                    // SAFETY: as above.
                    unsafe { retire(move || drop(chain)) };
                }
            }
        }
        thread_local! { static ON_EXIT: OnExit = const { OnExit }; }
        std::thread::spawn(|| ON_EXIT.with(|_| ())).join().unwrap();
        for _ in 0..512 {
            crossbeam_epoch::pin().flush();
        }
    }
}
