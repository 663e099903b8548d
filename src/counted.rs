//! The handle protocol: heap objects with an atomic reference count, reclaimed through epochs.
//!
//! Every table object that users can hold a handle to (entity, destination, route, next hop)
//! lives in a [`Counted`] allocation, and every owner of it — the table's own structures and
//! each user handle — holds one [`Ref`], which is one unit of the count.
//!
//! # Invariants
//!
//! 1. `refs` equals the number of live [`Ref`]s to the object. It starts at 1 (the [`Ref`]
//!    returned by [`Ref::new`]).
//! 2. Once `refs` reaches 0 it never rises again: [`Ref::try_acquire`] increments only a
//!    non-zero count (a compare-and-swap loop), so an object being retired is treated as absent.
//! 3. The thread that takes `refs` from 1 to 0 is the only one that retires the object, and it
//!    does so through the epoch collector (`defer`), never on the spot: other threads may have
//!    found the pointer in a shared structure under a pinned guard and still be reading it, or be
//!    about to call `try_acquire` on it. The object is freed only after every guard pinned before
//!    the retirement has been dropped.
//! 4. Release ordering: every decrement is a `Release` operation, and the thread that reaches 0
//!    performs an `Acquire` fence (an `Acquire` load under ThreadSanitizer, which does not model
//!    fences) before retiring, so every access made through any other `Ref` happens-before the
//!    destructor. Increments through an existing `Ref` (`Clone`) are `Relaxed`: the caller already
//!    holds a unit, so the count cannot be 0 and nothing is published by the increment.
//! 5. A raw pointer may be passed to [`Ref::try_acquire`] only if it was read, under the guard
//!    given, from a structure that held a [`Ref`] to it at some point after the guard was pinned
//!    (so by invariant 3 the allocation has not been freed yet).
//! 6. One exception to the deferral of 3: [`Ref::release_unreachable`] destroys on the spot an
//!    object whose last unit it releases. Only the routing tree's node destructor uses it, for
//!    the node's child nodes (`tree/mod.rs`, "Reclamation"): a node is destroyed only when no
//!    reader can reach it any more (by 3, or by this rule applied to its parent), and a child
//!    whose last unit it held could be reached only through it, since every other holder of a
//!    node is either a node destroyed the same way or a counted holder that read through its own
//!    unit or released it through the collector. So no reader can be inside the child, and
//!    freeing a replaced path costs one deferral (its root) instead of one per node and epoch.
//!
//! The loom models in `loom-tests/` check exactly this module; `--cfg rtmgr_mutant="..."` plants
//! one bug per protection (`plain_increment`, `free_immediately`, `relaxed_release`) so that the
//! models can be shown to catch each.
//!
//! # Under loom: quarantine and poison
//!
//! In the model-checking build (`cfg(loom)`) destroying an object drops its value in place but
//! keeps the allocation (quarantine) and marks it destroyed (poison); every later use of it — a
//! read of the value, a clone, a release, a `try_acquire` — panics with "use after free", and a
//! second destruction panics with "destroyed twice". So a wrongly retired object is a clear loom
//! failure instead of undefined behaviour. The value also sits in loom's `UnsafeCell`, so loom
//! checks that every read of it happens-before its destruction (which is what a too-weak release
//! ordering breaks), and is tracked by `loom::alloc::Track`, so an object never destroyed by the
//! end of a model is reported as leaked. Normal builds have none of this.

use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::sync::{AtomicUsize, Ordering, epoch};

/// A heap object with its reference count.
pub(crate) struct Counted<T> {
    /// The number of live [`Ref`]s (invariant 1).
    refs: AtomicUsize,
    /// The value.
    #[cfg(not(loom))]
    value: T,
    /// The value, in a quarantine slot (see the module docs).
    #[cfg(loom)]
    value: quarantine::Slot<T>,
}

impl<T> Counted<T> {
    #[inline]
    #[cfg_attr(loom, track_caller)]
    fn new(value: T) -> Self {
        #[cfg(loom)]
        let value = quarantine::Slot::new(value);
        Counted { refs: AtomicUsize::new(1), value }
    }

    /// The value.
    #[cfg(not(loom))]
    #[inline]
    fn get(&self) -> &T {
        &self.value
    }

    /// The value, checked to be alive; loom records the read.
    #[cfg(loom)]
    #[track_caller]
    fn get(&self) -> &T {
        self.value.get()
    }

    /// The count; under loom, first checks that the object was not destroyed.
    #[inline]
    #[cfg_attr(loom, track_caller)]
    fn refs(&self) -> &AtomicUsize {
        #[cfg(loom)]
        self.value.check("a reference-count operation");
        &self.refs
    }
}

/// Destroys an object whose count reached 0: frees it, or under loom quarantines and poisons it.
///
/// # Safety
///
/// `ptr` must come from [`Ref::new`], its count must be 0, and no thread may reach it any more
/// (every guard pinned before it was retired has been dropped).
unsafe fn destroy<T>(ptr: *mut Counted<T>) {
    #[cfg(not(loom))]
    // SAFETY: the caller's contract: the allocation came from `Box::leak` in `Ref::new` and is
    // used by nobody else.
    drop(unsafe { Box::from_raw(ptr) });
    #[cfg(loom)]
    // SAFETY: as above; the quarantine drops the value in place and keeps the memory.
    unsafe {
        (*ptr).value.destroy()
    };
}

/// One counted reference to a [`Counted`] object: `Clone` takes another, `Drop` releases it.
pub(crate) struct Ref<T: Send + Sync + 'static> {
    ptr: NonNull<Counted<T>>,
}

// SAFETY: a `Ref<T>` gives shared access to `T` from any thread and may drop it on any thread
// (through the epoch collector), which is sound exactly when `T: Send + Sync`.
unsafe impl<T: Send + Sync + 'static> Send for Ref<T> {}
// SAFETY: as above; `&Ref<T>` only gives `&T`.
unsafe impl<T: Send + Sync + 'static> Sync for Ref<T> {}

impl<T: Send + Sync + 'static> Ref<T> {
    /// Allocates `value` with a count of 1 and returns that one reference.
    #[cfg_attr(loom, track_caller)]
    pub(crate) fn new(value: T) -> Self {
        let boxed = Box::new(Counted::new(value));
        Ref { ptr: NonNull::from(Box::leak(boxed)) }
    }

    /// Takes a new reference to an object found under `guard`, unless it is already being
    /// retired (count 0), in which case it is treated as absent.
    ///
    /// # Safety
    ///
    /// `ptr` must satisfy invariant 5: read under `guard` from a structure that held a `Ref` to
    /// it after `guard` was pinned.
    pub(crate) unsafe fn try_acquire(ptr: *const Counted<T>, _guard: &epoch::Guard) -> Option<Self> {
        // SAFETY: by the caller's contract the allocation is not freed before `_guard` is
        // dropped, so reading its count is valid.
        let refs = unsafe { (*ptr).refs() };
        #[cfg(rtmgr_mutant = "plain_increment")]
        {
            refs.fetch_add(1, Ordering::Relaxed);
            return NonNull::new(ptr as *mut Counted<T>).map(|ptr| Ref { ptr });
        }
        #[allow(unreachable_code)]
        let mut current = refs.load(Ordering::Relaxed);
        loop {
            if current == 0 {
                return None; // being retired: invariant 2
            }
            // Acquire pairs with the Release decrements, so what the previous holders wrote is
            // visible to the new holder.
            match refs.compare_exchange_weak(current, current + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return NonNull::new(ptr as *mut Counted<T>).map(|ptr| Ref { ptr }),
                Err(actual) => current = actual,
            }
        }
    }

    /// The raw pointer, for storing in shared structures and for identity comparisons.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const Counted<T> {
        self.ptr.as_ptr()
    }

    /// Whether two references point at the same object.
    #[inline]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// Turns the reference into a raw pointer without releasing it (the count keeps the unit).
    pub(crate) fn into_raw(this: Self) -> *const Counted<T> {
        let ptr = this.ptr.as_ptr();
        std::mem::forget(this);
        ptr
    }

    /// Takes back a reference given up by [`Ref::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` must come from `into_raw`, and the unit it carries must not have been taken back.
    pub(crate) unsafe fn from_raw(ptr: *const Counted<T>) -> Self {
        // SAFETY: `into_raw` produced `ptr` from a `NonNull`.
        let ptr = unsafe { NonNull::new_unchecked(ptr as *mut Counted<T>) };
        Ref { ptr }
    }

    /// The current count (for tests and debug output only: it may change at any time).
    #[cfg(test)]
    pub(crate) fn count(this: &Self) -> usize {
        this.counted().refs().load(Ordering::Relaxed)
    }

    #[inline]
    fn counted(&self) -> &Counted<T> {
        // SAFETY: we hold one unit of the count, so by invariants 1–3 the object is alive.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Counted<T> {
    /// The value of an object found under a guard.
    ///
    /// # Safety
    ///
    /// `ptr` must satisfy invariant 5 for a guard that outlives `'g`.
    #[inline]
    pub(crate) unsafe fn value<'g>(ptr: *const Counted<T>) -> &'g T {
        // SAFETY: the caller guarantees the allocation outlives `'g`.
        unsafe { (*ptr).get() }
    }
}

impl<T: Send + Sync + 'static> Deref for Ref<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        self.counted().get()
    }
}

impl<T: Send + Sync + 'static> Clone for Ref<T> {
    fn clone(&self) -> Self {
        // Relaxed: we hold a unit, so the count is at least 1 (invariant 4).
        let old = self.counted().refs().fetch_add(1, Ordering::Relaxed);
        // A count this large can only come from leaked references; abort as `Arc` does rather
        // than risk an overflow to 0.
        if old > isize::MAX as usize {
            std::process::abort();
        }
        Ref { ptr: self.ptr }
    }
}

impl<T: Send + Sync + 'static> Ref<T> {
    /// Gives up this unit of the count; true if it was the last (invariant 3: the caller then
    /// destroys the object, and only it).
    #[inline]
    fn release_unit(&self) -> bool {
        #[cfg(not(rtmgr_mutant = "relaxed_release"))]
        let order = Ordering::Release;
        #[cfg(rtmgr_mutant = "relaxed_release")]
        let order = Ordering::Relaxed;
        if self.counted().refs().fetch_sub(1, order) != 1 {
            return false;
        }
        // We took the count to 0 (invariant 3). Acquire pairs with every other holder's Release
        // decrement so their accesses happen-before the destructor.
        #[cfg(all(not(rtmgr_tsan), not(rtmgr_mutant = "relaxed_release")))]
        crate::sync::fence(Ordering::Acquire);
        #[cfg(all(rtmgr_tsan, not(rtmgr_mutant = "relaxed_release")))]
        let _ = self.counted().refs().load(Ordering::Acquire);
        true
    }

    /// Releases this unit and, if it was the last, destroys the object at once rather than
    /// through the epoch collector (invariant 6).
    ///
    /// # Safety
    ///
    /// If this is the last unit, no thread may be able to read the object any more: every
    /// structure that could lead a reader to it without holding a unit is itself gone, after a
    /// grace period covering every guard pinned while it could (the tree's node destructor, see
    /// `tree/mod.rs`, "Reclamation").
    pub(crate) unsafe fn release_unreachable(this: Self) {
        let this = std::mem::ManuallyDrop::new(this);
        // A model already failed and is unwinding: leak, as `Drop` does.
        #[cfg(loom)]
        if std::thread::panicking() {
            return;
        }
        if this.release_unit() {
            // SAFETY: the count is 0 (no `Ref` remains, none can be made: invariant 2), and by
            // the caller's contract no thread can still read the object.
            unsafe { destroy(this.ptr.as_ptr()) };
        }
    }
}

impl<T: Send + Sync + 'static> Drop for Ref<T> {
    fn drop(&mut self) {
        // A model already failed and is unwinding, possibly outside loom's execution: leak rather
        // than touch loom's state (which would turn the failure report into an abort).
        #[cfg(loom)]
        if std::thread::panicking() {
            return;
        }
        if !self.release_unit() {
            return;
        }
        let ptr = SendPtr(self.ptr.as_ptr());
        #[cfg(rtmgr_mutant = "free_immediately")]
        {
            // SAFETY: none — this is the planted bug the loom models must catch: the object is
            // destroyed while threads that found it under a guard may still use it.
            unsafe { destroy(ptr.0) };
            return;
        }
        #[cfg(loom)]
        quarantine::retired();
        // SAFETY: the count is 0, so no `Ref` remains and none can be created (invariant 2);
        // threads that found the pointer under a guard pinned before this point are protected by
        // the deferral, and threads pinning later cannot find it because every structure that held
        // it released its `Ref` before the count reached 0.
        #[allow(unreachable_code)]
        unsafe {
            crate::reclaim::retire(move || {
                let ptr = ptr;
                destroy(ptr.0);
                #[cfg(loom)]
                quarantine::reclaimed();
            });
        }
    }
}

impl<T: Send + Sync + fmt::Debug + 'static> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// A raw pointer moved into a deferred destructor.
struct SendPtr<T>(*mut Counted<T>);
// SAFETY: the pointee is `Send + Sync` (bound on `Ref`), and the pointer is used once, by the
// destructor, after every other user is gone.
unsafe impl<T> Send for SendPtr<T> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;

    struct DropCounter(Arc<StdAtomicUsize>);
    impl Drop for DropCounter {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn flush_epochs() {
        for _ in 0..256 {
            crate::reclaim::pin().flush();
        }
    }

    #[test]
    fn last_release_destroys_once() {
        let drops = Arc::new(StdAtomicUsize::new(0));
        let a = Ref::new(DropCounter(drops.clone()));
        let b = a.clone();
        assert_eq!(Ref::count(&a), 2);
        drop(a);
        flush_epochs();
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 0);
        drop(b);
        flush_epochs();
        assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn try_acquire_refuses_a_dying_object() {
        let a = Ref::new(7u32);
        let guard = crate::reclaim::pin();
        let raw = a.as_ptr();
        // SAFETY: `a` is alive and held while we acquire.
        let b = unsafe { Ref::try_acquire(raw, &guard) }.expect("alive");
        assert_eq!(*b, 7);
        drop(a);
        drop(b);
        // The count is 0 now but the guard keeps the memory: acquiring must fail, not revive.
        // SAFETY: the pointer was read while a `Ref` existed and `guard` was pinned before.
        assert!(unsafe { Ref::try_acquire(raw, &guard) }.is_none());
    }

    #[test]
    fn raw_round_trip_keeps_the_unit() {
        let a = Ref::new(String::from("x"));
        let raw = Ref::into_raw(a.clone());
        assert_eq!(Ref::count(&a), 2);
        // SAFETY: `raw` came from `into_raw` and is taken back once.
        let back = unsafe { Ref::from_raw(raw) };
        assert!(Ref::ptr_eq(&a, &back));
        drop(back);
        assert_eq!(Ref::count(&a), 1);
    }
}

/// The model-checking build's quarantine: destroyed objects keep their memory and are poisoned.
#[cfg(loom)]
mod quarantine {
    use std::cell::Cell;
    use std::mem::ManuallyDrop;
    use std::sync::atomic::{AtomicBool, Ordering};

    // Per OS thread, which under loom means per model: loom runs all threads of a model as
    // coroutines on the test's own thread.
    thread_local! {
        /// Objects created and not yet destroyed.
        static LIVE: Cell<usize> = const { Cell::new(0) };
        /// Objects retired through the epoch collector and not yet destroyed.
        static RETIRED: Cell<usize> = const { Cell::new(0) };
    }

    /// A value that is dropped in place, never freed, and poisoned once dropped.
    pub(super) struct Slot<T> {
        /// loom's cell: loom checks that every read happens-before the destroying write.
        cell: loom::cell::UnsafeCell<ManuallyDrop<loom::alloc::Track<T>>>,
        /// The poison flag. A `std` atomic on purpose: checking it is not a step loom explores.
        destroyed: AtomicBool,
    }

    impl<T> Slot<T> {
        #[track_caller]
        pub(super) fn new(value: T) -> Self {
            LIVE.with(|n| n.set(n.get() + 1));
            Slot {
                cell: loom::cell::UnsafeCell::new(ManuallyDrop::new(loom::alloc::Track::new(value))),
                destroyed: AtomicBool::new(false),
            }
        }

        /// Panics if the object was destroyed.
        #[track_caller]
        pub(super) fn check(&self, what: &str) {
            if self.destroyed.load(Ordering::SeqCst) {
                panic!("rtmgr loom quarantine: use after free: {what} on an object already destroyed");
            }
        }

        /// The value, after checking that it is alive; loom records the read.
        #[track_caller]
        pub(super) fn get(&self) -> &T {
            self.check("a read");
            // SAFETY: the value is alive (checked above) and only ever dropped through
            // `destroy`, whose `with_mut` loom checks against this read.
            self.cell.with(|p| unsafe { (*p).get_ref() })
        }

        /// Drops the value in place and poisons the slot.
        ///
        /// # Safety
        ///
        /// As for `counted::destroy`.
        pub(super) unsafe fn destroy(&self) {
            if self.destroyed.swap(true, Ordering::SeqCst) {
                panic!("rtmgr loom quarantine: object destroyed twice");
            }
            // SAFETY: the caller guarantees nobody uses the value any more; loom checks that
            // every earlier read happens-before this write, and the flag keeps later uses out.
            self.cell.with_mut(|p| unsafe { ManuallyDrop::drop(&mut *p) });
            LIVE.with(|n| n.set(n.get() - 1));
        }
    }

    /// An object was handed to the epoch collector.
    pub(super) fn retired() {
        RETIRED.with(|n| n.set(n.get() + 1));
    }

    /// A retired object was destroyed by the epoch collector.
    pub(super) fn reclaimed() {
        RETIRED.with(|n| n.set(n.get() - 1));
    }

    /// Objects created and not yet destroyed, in this model.
    pub(crate) fn live_objects() -> usize {
        LIVE.with(Cell::get)
    }

    /// Objects retired and not yet destroyed by the collector, in this model.
    pub(crate) fn pending_reclamation() -> usize {
        RETIRED.with(Cell::get)
    }
}

#[cfg(loom)]
pub(crate) use quarantine::{live_objects, pending_reclamation};
