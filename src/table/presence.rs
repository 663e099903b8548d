//! Lazy removal of emptied destinations, and what keeps enumeration snapshots exact despite it.
//!
//! # Why destinations stay in the tree when they empty
//!
//! Taking a destination out of the tree is a path copy, and a path copy is expensive in a way
//! an instruction count hides: copying a node takes a counted reference to each of its children
//! and prefixes (cold cache lines, one atomic increment each), and freeing the replaced node later
//! releases them again. A route that is withdrawn and announced again (the common churn of a BGP
//! feed) paid that twice. So a change that removes a destination's last route publishes an
//! *empty* route set and leaves the destination in the tree; every read treats an empty set as
//! an absent destination (RTM: "a destination exists while it has at least one route"). A route
//! added to it later *revives* it in place: one route-set CAS, no tree write. Emptied
//! destinations are taken out in bulk by a *sweep* ([`TableInner::sweep`]) once they are more
//! than a quarter of the table (and at least [`SWEEP_MIN`]), and when an entity deregisters.
//!
//! # Keeping snapshots exact
//!
//! A destination enumeration yields exactly the destinations present when it was created. A
//! snapshot's tree now also holds empty destinations, so presence is decided with a clock, and
//! every *presence change* (an emptying, a revival) runs inside a [`Change`] bracket:
//!
//! - a presence change counts itself in flight, publishes its route set by CAS, then reads a
//!   tick of the presence clock ([`Change::tick`]); an emptying stores that tick into its empty
//!   set (`RouteSet::gone_at`, [`PENDING`] until then), and the removed marker that later
//!   replaces the set keeps it;
//! - a snapshot reads the clock, loads the root, waits until no presence change is in flight,
//!   and reads the clock again; it retries unless the two readings are equal. Its instant is
//!   its root load. A change whose CAS came before that load ticked before the second reading
//!   (it was in flight or done by then), so either it ticked before the first reading (its tick
//!   is below the snapshot's, `at`) or the snapshot retries; a change whose CAS came after the
//!   root load ticks after the first reading (tick `>= at`), or is still [`PENDING`] (it
//!   started after the wait). So an empty set with `gone_at < at` was empty at the snapshot's
//!   instant and one with `gone_at >= at` was not;
//! - a revival in place would make a destination that was absent at some open snapshot's
//!   instant look present, so it happens only while no snapshot is open: the reviving writer
//!   counts itself in flight and then checks the count of open snapshots; a snapshot counts
//!   itself open and then waits for changes in flight (all `SeqCst`). Whichever comes second
//!   sees the other: either the snapshot waits for the revival and, the revival having ticked,
//!   takes its instant after it, or the writer sees the snapshot and replaces the destination in
//!   the tree with a fresh one instead (the old one keeps its empty state for the snapshot that
//!   holds it).
//!
//! A snapshot waits only for presence changes already in flight (a CAS and a tick each; the
//! forwarding refresh runs outside the bracket); writers never wait for snapshots. A snapshot
//! that keeps retrying is possible only under a ceaseless stream of presence changes, each try
//! being a few loads; route changes that neither empty nor revive a destination do not tick.

use crate::Family;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Ordering};
use crate::table::objects::RouteSet;

/// Fewest emptied destinations a sweep waits for (then a quarter of the table). Small in test
/// and model-checking builds, so that sweeps and revivals both happen in small tables (3 under
/// loom, so that a model can hold two emptied destinations without a sweep).
pub(crate) const SWEEP_MIN: usize = if cfg!(loom) {
    3
} else if cfg!(test) {
    2
} else {
    1024
};

/// `RouteSet::gone_at` of an empty set whose emptying has not read its tick yet: the emptying
/// is after every snapshot that can see the set (see the module docs).
pub(crate) const PENDING: u64 = u64::MAX;

/// The presence clock, the count of open snapshots and of presence changes in flight, of one
/// table.
#[derive(Debug)]
pub(crate) struct Presence {
    clock: AtomicU64,
    open: AtomicUsize,
    changing: AtomicUsize,
}

impl Presence {
    pub(crate) fn new() -> Self {
        Presence { clock: AtomicU64::new(1), open: AtomicUsize::new(0), changing: AtomicUsize::new(0) }
    }

    /// Starts a presence change (an emptying or a revival): counted in flight until the
    /// bracket is dropped.
    pub(crate) fn change(&self) -> Change<'_> {
        self.changing.fetch_add(1, Ordering::SeqCst);
        Change { presence: self }
    }

    /// Opens a snapshot: counts it open, then takes `take_root` between two equal clock
    /// readings with no presence change in flight before the second (see the module docs).
    pub(crate) fn open_snapshot<R>(this: &Arc<Self>, mut take_root: impl FnMut() -> R) -> (OpenSnapshot, R) {
        this.open.fetch_add(1, Ordering::SeqCst);
        // Made at once, so that the count is given back even if `take_root` panics.
        let mut ticket = OpenSnapshot { presence: Arc::clone(this), at: 0 };
        loop {
            ticket.at = this.clock.load(Ordering::SeqCst);
            let root = take_root();
            while this.changing.load(Ordering::SeqCst) != 0 {
                crate::sync::spin_loop();
            }
            if this.clock.load(Ordering::SeqCst) == ticket.at {
                return (ticket, root);
            }
        }
    }
}

/// A presence change in flight; dropping it ends the change.
#[must_use]
pub(crate) struct Change<'a> {
    presence: &'a Presence,
}

impl Change<'_> {
    /// Whether an enumeration snapshot is open (a revival checks this inside its bracket).
    pub(crate) fn snapshot_open(&self) -> bool {
        self.presence.open.load(Ordering::SeqCst) != 0
    }

    /// The change's tick, read after its CAS.
    pub(crate) fn tick(&self) -> u64 {
        self.presence.clock.fetch_add(1, Ordering::SeqCst)
    }
}

impl Drop for Change<'_> {
    fn drop(&mut self) {
        self.presence.changing.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An open snapshot's place on the presence clock; dropping it closes the snapshot.
#[derive(Debug)]
pub(crate) struct OpenSnapshot {
    presence: Arc<Presence>,
    /// The clock reading the snapshot was taken at.
    at: u64,
}

impl OpenSnapshot {
    /// The snapshot's instant, to judge destinations by.
    pub(crate) fn cut(&self) -> Cut {
        Cut { at: self.at }
    }
}

/// The instant of an open snapshot on the presence clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cut {
    at: u64,
}

impl Cut {
    /// Whether a destination of the snapshot whose route set is now `set` was present when the
    /// snapshot was taken: it has routes (a destination revives in place only while no
    /// snapshot is open), or it emptied after the snapshot was taken (its tick is `at` or
    /// later, or still [`PENDING`]). A set removed before it was ever published has `gone_at`
    /// 0: never present.
    pub(crate) fn was_present<F: Family>(self, set: &RouteSet<F>) -> bool {
        !set.is_absent() || set.gone_at() >= self.at
    }
}

impl Drop for OpenSnapshot {
    fn drop(&mut self) {
        self.presence.open.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
