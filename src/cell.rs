//! [`EpochCell`]: an atomic pointer to a counted, immutable value, replaced by compare-and-swap.
//!
//! This is how rtmgr publishes every copy-on-write structure: the radix tree's root, each
//! destination's route set, the entity list. Writers build a new immutable value and swap it in;
//! readers load it under a pinned epoch guard and read it without writing anything.
//!
//! # Invariants
//!
//! 1. The cell always holds exactly one [`Ref`] to its current value (the pointer stored in
//!    `ptr` carries one unit of the count, taken with [`Ref::into_raw`]).
//! 2. A value replaced in the cell has its unit released only after the swap, and a released
//!    object is reclaimed through the epoch collector (see `counted.rs`), so a reader that loaded
//!    the pointer under a guard may read it until that guard is dropped.
//! 3. Stores are `Release` (the value was fully built before it is published) and loads are
//!    `Acquire` (the reader sees everything the publisher wrote).

use crate::counted::{Counted, Ref};
use crate::sync::{AtomicPtr, Ordering, epoch::Guard, spin_loop};

/// An atomically replaceable counted value.
pub(crate) struct EpochCell<T: Send + Sync + 'static> {
    /// Carries one unit of the current value's count (invariant 1).
    ptr: AtomicPtr<Counted<T>>,
}

impl<T: Send + Sync + 'static> EpochCell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: Ref<T>) -> Self {
        Self { ptr: AtomicPtr::new(Ref::into_raw(value) as *mut _) }
    }

    /// The current value, readable while `guard` is pinned.
    #[inline]
    pub(crate) fn load<'g>(&self, guard: &'g Guard) -> &'g T {
        self.load_both(guard).1
    }

    /// The current value's raw pointer (for a later [`EpochCell::compare_swap`]) and the value
    /// it points to, from one load.
    #[inline]
    pub(crate) fn load_both<'g>(&self, guard: &'g Guard) -> (*const Counted<T>, &'g T) {
        let raw = self.load_raw(guard);
        // SAFETY: the pointer was read under `guard` while the cell held a unit of it
        // (invariants 1 and 2), so it stays allocated until `guard` is dropped.
        (raw, unsafe { Counted::value(raw) })
    }

    /// The current value's raw pointer.
    #[inline]
    pub(crate) fn load_raw(&self, _guard: &Guard) -> *const Counted<T> {
        // Acquire pairs with the Release of the store that published the value (invariant 3).
        self.ptr.load(Ordering::Acquire)
    }

    /// A counted reference to the current value, which outlives any guard.
    pub(crate) fn load_ref(&self, guard: &Guard) -> Ref<T> {
        loop {
            let raw = self.load_raw(guard);
            // SAFETY: `raw` was read under `guard` from the cell, which held a unit of it.
            if let Some(r) = unsafe { Ref::try_acquire(raw, guard) } {
                return r;
            }
            // The value was replaced and its last reference released between our load and the
            // increment: the cell now holds a newer value.
            spin_loop();
        }
    }

    /// Replaces the value if it is still `current`; gives `new` back if another writer got
    /// there first.
    pub(crate) fn compare_swap(
        &self,
        current: *const Counted<T>,
        new: Ref<T>,
        _guard: &Guard,
    ) -> Result<(), Ref<T>> {
        let new_raw = Ref::into_raw(new) as *mut Counted<T>;
        // AcqRel: Release publishes the new value; Acquire orders our later release of the old
        // value after every reader that loaded it... through the epoch, see invariant 2.
        match self.ptr.compare_exchange(current as *mut _, new_raw, Ordering::AcqRel, Ordering::Acquire) {
            Ok(old) => {
                // SAFETY: the cell's unit of `old` moves to us (invariant 1); releasing it
                // reclaims through the epoch (invariant 2).
                drop(unsafe { Ref::from_raw(old) });
                Ok(())
            }
            // SAFETY: the exchange failed, so the unit of `new_raw` is still ours.
            Err(_) => Err(unsafe { Ref::from_raw(new_raw) }),
        }
    }

    /// Replaces the value unconditionally and returns the old one's reference.
    /// [`EpochCell::compare_swap`] that hands the replaced value's unit to the caller instead of
    /// releasing it, so the caller decides when it is retired.
    pub(crate) fn compare_swap_take(
        &self,
        current: *const Counted<T>,
        new: Ref<T>,
        _guard: &Guard,
    ) -> Result<Ref<T>, Ref<T>> {
        let new_raw = Ref::into_raw(new) as *mut Counted<T>;
        match self.ptr.compare_exchange(current as *mut _, new_raw, Ordering::AcqRel, Ordering::Acquire) {
            // SAFETY: the cell's unit of `old` moves to the caller (invariant 1).
            Ok(old) => Ok(unsafe { Ref::from_raw(old) }),
            // SAFETY: the exchange failed, so the unit of `new_raw` is still ours.
            Err(_) => Err(unsafe { Ref::from_raw(new_raw) }),
        }
    }

    pub(crate) fn swap(&self, new: Ref<T>) -> Ref<T> {
        let old = self.ptr.swap(Ref::into_raw(new) as *mut _, Ordering::AcqRel);
        // SAFETY: the cell's unit of `old` moves to the caller (invariant 1).
        unsafe { Ref::from_raw(old) }
    }
}

impl<T: Send + Sync + 'static> Drop for EpochCell<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self` means no other access to the cell; its unit moves to this `Ref`,
        // whose drop releases it through the epoch protocol.
        drop(unsafe { Ref::from_raw(self.ptr.load(Ordering::Relaxed)) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn compare_swap_publishes_or_returns_the_value() {
        let cell = EpochCell::new(Ref::new(1u32));
        let guard = crate::reclaim::pin();
        let first = cell.load_raw(&guard);
        assert_eq!(*cell.load(&guard), 1);
        assert!(cell.compare_swap(first, Ref::new(2), &guard).is_ok());
        assert_eq!(*cell.load(&guard), 2);
        // `first` is stale now: the swap must fail and hand the value back.
        let back = cell.compare_swap(first, Ref::new(3), &guard).unwrap_err();
        assert_eq!(*back, 3);
        assert_eq!(*cell.load(&guard), 2);
    }

    #[test]
    fn a_loaded_reference_outlives_replacement() {
        let cell = EpochCell::new(Ref::new(String::from("old")));
        let snapshot = cell.load_ref(&crate::reclaim::pin());
        let previous = cell.swap(Ref::new(String::from("new")));
        drop(previous);
        assert_eq!(&*snapshot, "old");
        assert_eq!(cell.load(&crate::reclaim::pin()), "new");
    }
}
