//! The compiled forwarding table of one view (spec §5): longest-prefix match in one to a few
//! cache lines, kept in step with the routing tree by the writers.
//!
//! The routing tree (`tree/`) is built for updates, snapshots and queries; a lookup through it
//! reads a node chain, then the destination, its route set and the best route. A [`Fib`] stores
//! only what forwarding needs — for every address, the data of the best route in its view — in
//! one of two layouts ([`ForwardingLayout`]):
//! - **direct** (`direct.rs`, IPv4 only, the default there): DIR-24-8 as in DPDK's LPM, a
//!   `2^24`-entry array of 4-byte leaf indices (64 MiB of address space, touched only where
//!   routes are) with 256-entry arrays below for the few prefixes longer than /24. A lookup
//!   reads one array entry and one leaf slot.
//! - **compact** (`compact.rs`, both families; IPv6 always): Poptrie-like, a 16-bit root array
//!   and bitmap-compressed 8-bit chunks, a few bytes per prefix; a lookup reads one root slot
//!   and two cache lines per chunk.
//!
//! # Writers
//!
//! Every write to the routing tree that may change a destination's best route calls
//! [`Fib::refresh`] afterwards (see `table/write.rs`). A refresh takes the table's forwarding
//! lock, reads the destination's *current* best route from the tree, and updates the entries its
//! prefix covers. Reading the current state under the lock, rather than applying the writer's
//! own result, makes the refreshes commute: whichever runs last has read the tree after every
//! change that preceded it, so the table converges to the tree no matter how refreshes of
//! concurrent writers interleave. Lookups never take the lock and never wait; writers wait only
//! for each other's refreshes (microseconds), never for readers.
//!
//! Between a change to the tree and its refresh, a lookup may still return the previous best
//! route (still valid memory: see each layout's invariants). Once the writing call returns,
//! lookups see the change.
//!
//! Both layouts share one rule: route data is *borrowed* from the routing tree's route sets,
//! which a writer retires only after the refresh that takes the data out of the table, through
//! the epoch collector; so a reader may read what it found until its guard is dropped.

mod chunk;
mod compact;
mod covers;
mod direct;

use compact::Compact;
use direct::Direct;

use crate::sync::epoch::Guard;
use crate::{Family, RouteData, ViewSet};

/// How a table lays out its compiled forwarding tables ([`TableConfig::forwarding_layout`]).
///
/// IPv6 tables always use [`ForwardingLayout::Compact`] (a direct array over 128-bit
/// addresses has no sensible first level).
///
/// ```
/// use rtmgr::{ForwardingLayout, Ipv4, Table, TableConfig};
/// let small = TableConfig { forwarding_layout: ForwardingLayout::Compact, ..TableConfig::default() };
/// let table = Table::<Ipv4>::with_config(small)?;
/// assert_eq!(table.config().forwarding_layout, ForwardingLayout::Compact);
/// # Ok::<(), rtmgr::Error>(())
/// ```
///
/// [`TableConfig::forwarding_layout`]: crate::TableConfig::forwarding_layout
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ForwardingLayout {
    /// IPv4: DIR-24-8 (the layout of DPDK's LPM). One array read and one leaf read per
    /// lookup, several times faster than [`ForwardingLayout::Compact`] on a full table; costs
    /// 64 MiB of address space per view, of which the pages under routes are resident (all of
    /// them for a full Internet table), plus about 30 bytes per prefix. A change of a
    /// prefix's best route stores one word; adding or removing a prefix repaints the entries it
    /// covers (65,536 for a /8). At most 2^28 prefixes per view.
    #[default]
    Direct,
    /// Poptrie-like bitmap-compressed chunks under a 16-bit root: about 34 bytes per IPv4
    /// prefix and 82 per IPv6 prefix on the real tables (the 1 MiB root included), one chunk
    /// rebuilt per change.
    Compact,
}

/// The compiled forwarding table of one view.
pub(crate) struct Fib<F: Family> {
    view: ViewSet,
    layout: Layout<F>,
}

enum Layout<F: Family> {
    Compact(Compact<F>),
    Direct(Direct<F>),
}

/// Asks the CPU to start loading `value`'s cache line (a hint: no effect on correctness).
#[inline(always)]
pub(crate) fn prefetch<T>(value: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(value as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The mask of a prefix length on a left-aligned key.
fn mask(len: u32) -> u128 {
    if len == 0 { 0 } else { !0u128 << (128 - len) }
}

impl<F: Family> Fib<F> {
    /// An empty forwarding table for `view` (a single view) in `layout` (IPv6 always gets the
    /// compact one).
    pub(crate) fn new(view: ViewSet, layout: ForwardingLayout) -> Self {
        if layout == ForwardingLayout::Direct && F::BITS == 32 {
            return Fib { view, layout: Layout::Direct(Direct::new()) };
        }
        Fib { view, layout: Layout::Compact(Compact::new()) }
    }

    /// The view this table forwards for.
    pub(crate) fn view(&self) -> ViewSet {
        self.view
    }

    /// The best route's data for the longest prefix that covers `key` (left-aligned).
    #[inline]
    pub(crate) fn lookup<'g>(&self, key: u128, guard: &'g Guard) -> Option<&'g RouteData<F>> {
        match &self.layout {
            Layout::Direct(direct) => direct.lookup(key, guard),
            Layout::Compact(compact) => compact.lookup(key, guard),
        }
    }

    /// [`Fib::lookup`] for many keys at once, appended to `out`, with the memory reads of
    /// different keys overlapped (a single lookup is a chain of dependent reads that the CPU
    /// cannot start early): the compact layout walks a group of keys in lockstep, the direct
    /// layout pipelines its two reads (see each layout).
    pub(crate) fn lookup_batch_extend<'g>(
        &self,
        keys: &[u128],
        guard: &'g Guard,
        out: &mut Vec<Option<&'g RouteData<F>>>,
    ) {
        match &self.layout {
            Layout::Direct(direct) => direct.lookup_batch_extend(keys, guard, out),
            Layout::Compact(compact) => compact.lookup_batch_extend(keys, guard, out),
        }
    }

    /// Brings the entries of the prefix (`key`, `len`) up to date: takes the lock, asks `best`
    /// for the prefix's current best route in this view (reading the routing tree under the
    /// lock is what makes concurrent refreshes converge, see the module docs) and stores it.
    pub(crate) fn refresh(&self, key: u128, len: u8, best: impl Fn(&Guard) -> Option<*const RouteData<F>>) {
        match &self.layout {
            Layout::Direct(direct) => direct.refresh(key, len, best),
            Layout::Compact(compact) => compact.refresh(key, len, best),
        }
    }

    /// [`Fib::refresh`] for every item of `items` (`prefix` gives its prefix, `best` reads its
    /// current best route under the lock), taking the lock once: a bulk add's refreshes. Other
    /// writers' refreshes wait for the whole batch; lookups never wait.
    pub(crate) fn refresh_each<T>(
        &self,
        items: &[T],
        prefix: impl Fn(&T) -> (u128, u8),
        best: impl Fn(&T, &Guard) -> Option<*const RouteData<F>>,
    ) {
        match &self.layout {
            Layout::Direct(direct) => direct.refresh_each(items, prefix, best),
            Layout::Compact(compact) => compact.refresh_each(items, prefix, best),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
