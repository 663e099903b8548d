//! The crate's internals, for the loom models in `loom-tests/` only.
//!
//! Compiled only in the model-checking build (`cfg(loom)`, see `sync.rs`); normal builds have
//! no such module and keep [`Ref`], [`EpochCell`] and [`Tree`] private. Every item here is a
//! thin wrapper that calls the crate's own code — the reference counting of `counted.rs`, the
//! cell of `cell.rs`, the path-copying tree of `tree/` — so the models check that code, not a
//! copy of it. The wrappers add no synchronisation of their own.

use crate::{cell, counted, tree};

/// crossbeam-epoch as the crate sees it: on loom's atomics in this build.
pub use crossbeam_epoch as epoch;

/// Objects created and not yet destroyed in the current model (see `counted.rs`, quarantine).
pub fn live_objects() -> usize {
    counted::live_objects()
}

/// Objects retired to the epoch collector and not yet destroyed, in the current model.
pub fn pending_reclamation() -> usize {
    counted::pending_reclamation()
}

/// Drives reclamation until every retired object is destroyed (nested ones included: a node
/// destroyed releases its children, which are retired in turn). Panics if that does not happen
/// within a bound, which means some thread still holds a guard or a retirement was lost.
///
/// Call it only when no other model thread is running (after joining them): it pins and
/// flushes repeatedly, which is cheap single-threaded and a state explosion otherwise.
pub fn drain() {
    for _ in 0..64 {
        if pending_reclamation() == 0 {
            return;
        }
        epoch::pin().flush();
        // A joined loom thread may not have run its thread-local destructors yet (loom signals
        // the join first), and those hand its epoch bag to the collector: let it.
        loom::thread::yield_now();
    }
    panic!("reclamation stalled: {} retired objects not destroyed", pending_reclamation());
}

/// A raw pointer to a counted object, as a shared structure stores it.
pub struct Raw<T>(*const counted::Counted<T>);

impl<T> Clone for Raw<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Raw<T> {}

impl<T> PartialEq for Raw<T> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl<T> std::fmt::Debug for Raw<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Raw({:p})", self.0)
    }
}

/// One counted reference: `counted::Ref`.
pub struct Ref<T: Send + Sync + 'static>(counted::Ref<T>);

impl<T: Send + Sync + 'static> Ref<T> {
    /// `Ref::new`: a new object with a count of 1.
    #[track_caller]
    pub fn new(value: T) -> Self {
        Ref(counted::Ref::new(value))
    }

    /// The object's raw pointer.
    pub fn as_raw(&self) -> Raw<T> {
        Raw(self.0.as_ptr())
    }

    /// `Ref::ptr_eq`.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        counted::Ref::ptr_eq(&a.0, &b.0)
    }

    /// `Ref::try_acquire`: a new reference to an object found under `guard`, unless it is being
    /// retired.
    ///
    /// # Safety
    ///
    /// `raw` must have been read under `guard` from a structure that held a reference to it
    /// after `guard` was pinned (invariant 5 of `counted.rs`).
    pub unsafe fn try_acquire(raw: Raw<T>, guard: &epoch::Guard) -> Option<Self> {
        // SAFETY: the caller's contract is `try_acquire`'s.
        unsafe { counted::Ref::try_acquire(raw.0, guard) }.map(Ref)
    }
}

impl<T: Send + Sync + 'static> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref(self.0.clone())
    }
}

impl<T: Send + Sync + 'static> std::ops::Deref for Ref<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// `cell::EpochCell`: an atomically replaced counted value.
pub struct EpochCell<T: Send + Sync + 'static>(cell::EpochCell<T>);

impl<T: Send + Sync + 'static> EpochCell<T> {
    /// A cell holding `value`.
    pub fn new(value: Ref<T>) -> Self {
        EpochCell(cell::EpochCell::new(value.0))
    }

    /// The current value, readable while `guard` is pinned.
    pub fn load<'g>(&self, guard: &'g epoch::Guard) -> &'g T {
        self.0.load(guard)
    }

    /// The current value's raw pointer.
    pub fn load_raw(&self, guard: &epoch::Guard) -> Raw<T> {
        Raw(self.0.load_raw(guard))
    }

    /// A counted reference to the current value (through `try_acquire`).
    pub fn load_ref(&self, guard: &epoch::Guard) -> Ref<T> {
        Ref(self.0.load_ref(guard))
    }

    /// Replaces the value if it is still `current`; gives `new` back otherwise.
    pub fn compare_swap(&self, current: Raw<T>, new: Ref<T>, guard: &epoch::Guard) -> Result<(), Ref<T>> {
        self.0.compare_swap(current.0, new.0, guard).map_err(Ref)
    }

    /// Replaces the value and returns the old one's reference.
    pub fn swap(&self, new: Ref<T>) -> Ref<T> {
        Ref(self.0.swap(new.0))
    }
}

/// `tree::Tree`: the persistent radix tree under one atomic root.
pub struct Tree<V: Send + Sync + 'static>(tree::Tree<V>);

impl<V: Send + Sync + 'static> Default for Tree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Send + Sync + 'static> Tree<V> {
    /// An empty tree.
    pub fn new() -> Self {
        Tree(tree::Tree::new())
    }

    /// The value at exactly `key/len`, readable while `guard` is pinned.
    pub fn get<'g>(&self, key: u128, len: u8, guard: &'g epoch::Guard) -> Option<&'g V> {
        self.0.get(key, len, guard).map(|r| &**r)
    }

    /// The raw pointer of the value at exactly `key/len`.
    pub fn get_raw(&self, key: u128, len: u8, guard: &epoch::Guard) -> Option<Raw<V>> {
        self.0.get(key, len, guard).map(|r| Raw(r.as_ptr()))
    }

    /// A reference to the value at exactly `key/len`, taken the way the table takes one from an
    /// object found under a guard: by cloning the node's reference (which the guard keeps alive).
    pub fn get_ref(&self, key: u128, len: u8, guard: &epoch::Guard) -> Option<Ref<V>> {
        self.0.get(key, len, guard).map(|r| Ref(r.clone()))
    }

    /// `Tree::compare_replace`: sets (or removes, with `None`) the value at `key/len` if it is
    /// still `expected` (`None`: no value).
    pub fn compare_replace(
        &self,
        key: u128,
        len: u8,
        expected: Option<Raw<V>>,
        new: Option<Ref<V>>,
        guard: &epoch::Guard,
    ) -> Result<(), Option<Ref<V>>> {
        let expected = expected.map_or(std::ptr::null(), |r| r.0);
        self.0.compare_replace(key, len, expected, new.map(|r| r.0), guard).map_err(|back| back.map(Ref))
    }

    /// `Tree::snapshot`: one counted reference to the current version.
    pub fn snapshot(&self, guard: &epoch::Guard) -> Snapshot<V> {
        Snapshot(self.0.snapshot(guard))
    }
}

/// One version of a [`Tree`], kept whole by a counted reference to its root.
pub struct Snapshot<V: Send + Sync + 'static>(counted::Ref<tree::Node<V>>);

impl<V: Send + Sync + 'static> Snapshot<V> {
    /// The value at exactly `key/len` in this version.
    pub fn get(&self, key: u128, len: u8) -> Option<&V> {
        tree::Tree::get_in(&self.0, key, len).map(|r| &**r)
    }

    /// Every value of this version, in address order then prefix length.
    pub fn values(&self) -> Vec<&V> {
        tree::Iter::all(&self.0).map(|r| &**r).collect()
    }
}
