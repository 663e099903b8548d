//! The compact layout of a forwarding table, for both families (IPv6 tables always use it):
//! Poptrie-like, a few bytes per prefix.
//!
//! - a direct **root** array of `2^ROOT_BITS` slots (65,536: one per /16 for IPv4, 1 MiB), each
//!   holding the best route of the longest prefix of length `0..=ROOT_BITS` over it and a link to
//!   a chunk;
//! - **chunks** (`chunk.rs`) of 8 bits each below, compressed with bitmaps and ranks.
//!
//! A lookup reads one root slot and two cache lines per chunk, remembering the last non-empty
//! leaf as it goes down: a chunk stores only the prefixes that end inside it, so no route is
//! copied into the levels below it and a change touches one chunk.
//!
//! # Invariants
//!
//! 1. Leaves (root slots, chunk leaves, fallbacks) point at route data borrowed from the
//!    routing tree's route sets, not counted: a writer retires a replaced route set only after
//!    its refresh has taken every pointer into it out of the published table (see
//!    `table/write.rs`, "Forwarding tables"), and retirement goes through the epoch collector.
//!    So a reader that loaded a leaf under a guard may read the route data until the guard is
//!    dropped; and a chunk rebuild copies plain pointers, with no count to touch.
//! 2. Chunks are counted objects, each link holding one unit (chunk.rs invariant 3), retired
//!    through the epoch collector when their last link goes.
//! 3. Only the holder of `writer` stores to root slots and child slots.

use std::collections::HashMap;

use crossbeam_utils::CachePadded;

use super::chunk::{self, ChildSlot, Chunk, Entry, Found, STRIDE, Source};
use super::{mask, prefetch};

use crate::counted::Ref;
use crate::sync::{AtomicPtr, Mutex, Ordering, epoch::Guard};
use crate::{Family, RouteData};

/// Lookups a batch runs in lockstep. Each level is two dependent reads (chunk header, then
/// entry) and every lane waits for the slowest at each level, so more lanes keep more misses in
/// flight: on the IPv6 table, addresses inside prefixes (paths of 2–5 chunks), 64 lanes took
/// 57 µs per 1,024 lookups against 77 µs with 32 and 96 µs with 16 (medians of 3–5 alternated
/// runs of `benches/compare.rs`, docs/BENCHMARKS.md); the state (two arrays of 64 pointers)
/// stays in L1.
const LANES: usize = 64;

/// Bits of address the root array covers. Smaller in the model-checking and miri builds, where
/// each atomic is costly; the code is the same.
#[cfg(not(any(loom, miri)))]
pub(crate) const ROOT_BITS: u32 = 16;
#[cfg(all(miri, not(loom)))]
pub(crate) const ROOT_BITS: u32 = 8;
#[cfg(loom)]
pub(crate) const ROOT_BITS: u32 = 4;

/// One root slot: the best route of the longest prefix of length `0..=ROOT_BITS` over it, and
/// the chunk for the next 8 bits.
pub(super) struct RootSlot<F: Family> {
    pub(super) leaf: AtomicPtr<RouteData<F>>,
    pub(super) child: ChildSlot<F>,
}

/// What only the writer holding the lock touches.
struct Writer<F: Family> {
    /// Best routes of the prefixes of length `0..=ROOT_BITS`, by (key, length).
    root_sources: HashMap<(u128, u8), *const RouteData<F>>,
    /// The length of the source painted in each root slot, [`NO_SOURCE`] if none.
    root_lens: Box<[u8]>,
}

/// A root slot that no source covers.
const NO_SOURCE: u8 = u8::MAX;

/// The compact layout of a forwarding table (see the module docs).
pub(crate) struct Compact<F: Family> {
    pub(super) root: Box<[RootSlot<F>]>,
    /// Padded away from `root`, which every lookup reads (see `Direct::writer`).
    writer: CachePadded<Mutex<Writer<F>>>,
}

/// The 8 bits of `key` below its first `base` bits (`base < 128`).
#[inline(always)]
fn position(key: u128, base: u32) -> usize {
    ((key << base) >> (128 - STRIDE)) as usize
}

impl<F: Family> Compact<F> {
    /// An empty table.
    pub(crate) fn new() -> Self {
        let root = (0..1usize << ROOT_BITS)
            .map(|_| RootSlot { leaf: AtomicPtr::new(std::ptr::null_mut()), child: ChildSlot::new() })
            .collect();
        Compact {
            root,
            writer: CachePadded::new(Mutex::new(Writer {
                root_sources: HashMap::new(),
                root_lens: vec![NO_SOURCE; 1 << ROOT_BITS].into_boxed_slice(),
            })),
        }
    }

    /// The best route's data for the longest prefix that covers `key` (left-aligned).
    #[inline]
    pub(crate) fn lookup<'g>(&self, key: u128, guard: &'g Guard) -> Option<&'g RouteData<F>> {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            // SAFETY: the CPU supports `popcnt`, just checked.
            return unsafe { self.lookup_popcnt(key, guard) };
        }
        self.lookup_portable(key, guard)
    }

    /// [`Compact::lookup`] compiled with the hardware population count (the default x86-64 target
    /// counts bits in software, several times slower on this path).
    ///
    /// # Safety
    ///
    /// The CPU must support `popcnt`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn lookup_popcnt<'g>(&self, key: u128, guard: &'g Guard) -> Option<&'g RouteData<F>> {
        self.lookup_portable(key, guard)
    }

    #[inline(always)]
    fn lookup_portable<'g>(&self, key: u128, guard: &'g Guard) -> Option<&'g RouteData<F>> {
        let slot = &self.root[(key >> (128 - ROOT_BITS)) as usize];
        // Acquire pairs with the writer's Release stores: the data was built before.
        let mut best = slot.leaf.load(Ordering::Acquire) as *const RouteData<F>;
        let mut next = slot.child.load(guard);
        let mut base = ROOT_BITS;
        while let Some(chunk) = next {
            let fallback = chunk.fallback();
            if !fallback.is_null() {
                best = fallback;
            }
            match chunk.find(position(key, base), guard) {
                Found::Leaf(leaf) => {
                    if !leaf.is_null() {
                        best = leaf;
                    }
                    break;
                }
                Found::Child(child) => next = Some(child),
            }
            base += STRIDE;
        }
        // SAFETY: `best` was read under `guard` from a root slot or a chunk reachable from the
        // root after `guard` was pinned; by invariant 1 the route data it points at is retired
        // only through the epoch collector, after `guard` is dropped.
        unsafe { best.as_ref() }
    }

    /// [`Compact::lookup`] for many keys at once, appended to `out`, `LANES` at a time in lockstep: each step issues
    /// the next memory read of every lookup before waiting on any, so their cache misses
    /// overlap instead of queueing (a single lookup is a chain of dependent reads that the CPU
    /// cannot start early).
    pub(crate) fn lookup_batch_extend<'g>(
        &self,
        keys: &[u128],
        guard: &'g Guard,
        out: &mut Vec<Option<&'g RouteData<F>>>,
    ) {
        out.reserve(keys.len());
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("popcnt") {
            for group in keys.chunks(LANES) {
                // SAFETY: the CPU supports `popcnt`, just checked.
                unsafe { self.lookup_lanes_popcnt(group, guard, out) };
            }
            return;
        }
        for group in keys.chunks(LANES) {
            self.lookup_lanes(group, guard, out);
        }
    }

    /// [`Compact::lookup_lanes`] compiled with the hardware population count.
    ///
    /// # Safety
    ///
    /// The CPU must support `popcnt`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn lookup_lanes_popcnt<'g>(
        &self,
        keys: &[u128],
        guard: &'g Guard,
        out: &mut Vec<Option<&'g RouteData<F>>>,
    ) {
        self.lookup_lanes(keys, guard, out)
    }

    /// Up to `LANES` lookups in lockstep (see [`Compact::lookup_batch_extend`]).
    #[inline(always)]
    fn lookup_lanes<'g>(&self, keys: &[u128], guard: &'g Guard, out: &mut Vec<Option<&'g RouteData<F>>>) {
        let n = keys.len().min(LANES);
        let mut best = [std::ptr::null::<RouteData<F>>(); LANES];
        let mut node: [Option<&'g Chunk<F>>; LANES] = [None; LANES];
        for &key in &keys[..n] {
            prefetch(&self.root[(key >> (128 - ROOT_BITS)) as usize]);
        }
        let mut active = 0;
        for (i, &key) in keys[..n].iter().enumerate() {
            let slot = &self.root[(key >> (128 - ROOT_BITS)) as usize];
            best[i] = slot.leaf.load(Ordering::Acquire);
            node[i] = slot.child.load(guard);
            if let Some(chunk) = node[i] {
                prefetch(chunk);
                active += 1;
            }
        }
        let mut base = ROOT_BITS;
        while active > 0 {
            for (i, &key) in keys[..n].iter().enumerate() {
                if let Some(chunk) = node[i] {
                    chunk.prefetch_entry(position(key, base));
                }
            }
            for (i, &key) in keys[..n].iter().enumerate() {
                let Some(chunk) = node[i] else { continue };
                let fallback = chunk.fallback();
                if !fallback.is_null() {
                    best[i] = fallback;
                }
                match chunk.find(position(key, base), guard) {
                    Found::Leaf(leaf) => {
                        if !leaf.is_null() {
                            best[i] = leaf;
                        }
                        node[i] = None;
                        active -= 1;
                    }
                    Found::Child(child) => {
                        prefetch(child);
                        node[i] = Some(child);
                    }
                }
            }
            base += STRIDE;
        }
        // SAFETY: as in `lookup_portable`: each pointer was read under `guard` from a root slot
        // or a chunk reachable from the root after `guard` was pinned (invariant 1).
        out.extend(best[..n].iter().map(|&b| unsafe { b.as_ref() }));
    }

    /// Brings the entry of the prefix (`key`, `len`) up to date: takes the lock, asks `best` for
    /// the prefix's current best route in this view (reading the routing tree under the lock is
    /// what makes concurrent refreshes converge, see the module docs) and stores it.
    pub(crate) fn refresh(
        &self,
        key: u128,
        len: u8,
        best: impl FnOnce(&Guard) -> Option<*const RouteData<F>>,
    ) {
        // A panic inside a rebuild leaves the structure valid (every store publishes a complete
        // chunk), so a poisoned lock is still usable.
        let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let guard = crate::reclaim::pin();
        let data = best(&guard);
        let len = len as u32;
        if len <= ROOT_BITS {
            self.set_root(&mut writer, key & mask(len), len, data);
        } else {
            let slot = &self.root[(key >> (128 - ROOT_BITS)) as usize];
            let current = slot.child.load(&guard);
            if let Change::Replace(chunk) =
                Self::set_in(current, ROOT_BITS, key & mask(len), len, data, std::ptr::null(), &guard)
            {
                slot.child.store(chunk);
            }
        }
    }

    /// [`Compact::refresh`] for every item of `items` (the prefix and the current best route
    /// of each), under one lock acquisition and one guard.
    pub(crate) fn refresh_each<T>(
        &self,
        items: &[T],
        prefix: impl Fn(&T) -> (u128, u8),
        best: impl Fn(&T, &Guard) -> Option<*const RouteData<F>>,
    ) {
        let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let guard = crate::reclaim::pin();
        // Every best route read under the lock first, then applied by root slot and chunk: a
        // chunk that several of them change is rebuilt once, not once per prefix.
        let mut updates: Vec<Update<F>> = items
            .iter()
            .map(|item| {
                let (key, len) = prefix(item);
                let len = len as u32;
                Update { key: key & mask(len), len, data: best(item, &guard) }
            })
            .collect();
        // Stable: a prefix given twice keeps its last data, as one refresh after the other would.
        updates.sort_by_key(|u| (u.key, u.len));
        // Root slots and chunks are apart (a chunk's fallback under the root is null), so the
        // two kinds of prefixes can go in either order.
        for u in updates.iter().filter(|u| u.len <= ROOT_BITS) {
            self.set_root(&mut writer, u.key, u.len, u.data);
        }
        updates.retain(|u| u.len > ROOT_BITS);
        let root_index = |u: &Update<F>| (u.key >> (128 - ROOT_BITS)) as usize;
        for group in updates.chunk_by(|a, b| root_index(a) == root_index(b)) {
            let slot = &self.root[root_index(&group[0])];
            let current = slot.child.load(&guard);
            if let Change::Replace(chunk) =
                Self::set_many_in(current, ROOT_BITS, group, std::ptr::null(), &guard)
            {
                slot.child.store(chunk);
            }
        }
    }

    /// Sets a prefix of length `0..=ROOT_BITS` and repaints the root slots it covers where it is
    /// (or, removed, was) the longest source.
    fn set_root(&self, writer: &mut Writer<F>, key: u128, len: u32, data: Option<*const RouteData<F>>) {
        let Writer { root_sources: sources, root_lens } = writer;
        let old = match data {
            Some(d) => sources.insert((key, len as u8), d),
            None => sources.remove(&(key, len as u8)),
        };
        if old == data {
            return;
        }
        // Added or changed: it wins wherever nothing longer is painted. Removed: where it was
        // painted, the longest shorter source over it takes over — the same for every slot.
        let to = match data {
            Some(d) => Some((len as u8, d)),
            None => {
                (0..len).rev().find_map(|l| sources.get(&(key & mask(l), l as u8)).map(|&d| (l as u8, d)))
            }
        };
        let ptr = to.map_or(std::ptr::null_mut(), |(_, d)| d as *mut RouteData<F>);
        let painted = to.map_or(NO_SOURCE, |(l, _)| l);
        let first = (key >> (128 - ROOT_BITS)) as usize;
        for index in first..first + (1usize << (ROOT_BITS - len)) {
            let current = root_lens[index];
            let replace = if data.is_some() {
                current == NO_SOURCE || current <= len as u8
            } else {
                current == len as u8
            };
            if replace {
                root_lens[index] = painted;
                // Release publishes the route data to readers (Acquire in `lookup`).
                self.root[index].leaf.store(ptr, Ordering::Release);
            }
        }
    }

    /// Sets a prefix longer than `base` bits in `current`, the chunk covering bits
    /// `base..base + 8` of `key` (none yet: `None`), or below it. Children whose chunk changes
    /// are replaced in place; what the caller must publish in `current`'s place is returned.
    /// `fallback` is the leaf of the parent over `current`.
    fn set_in(
        current: Option<&Chunk<F>>,
        base: u32,
        key: u128,
        len: u32,
        data: Option<*const RouteData<F>>,
        fallback: *const RouteData<F>,
        guard: &Guard,
    ) -> Change<F> {
        let pos = position(key, base);
        // Room for one more, so that an insertion does not double the copy's capacity.
        let sources = || {
            let mut copy = Vec::with_capacity(current.map_or(0, |c| c.sources.len()) + 1);
            copy.extend_from_slice(current.map_or(&[][..], |c| &c.sources));
            copy
        };
        let children = || current.map_or_else(Vec::new, |c| c.child_refs(guard));
        if len <= base + STRIDE {
            let mut sources = sources();
            let rel = (len - base) as u8;
            let found = sources.binary_search_by_key(&(rel, pos as u8), |s| (s.len, s.pos));
            match (found, data) {
                (Ok(i), Some(d)) if sources[i].data == d => return Change::Unchanged,
                (Ok(i), Some(d)) => sources[i].data = d,
                (Ok(i), None) => drop(sources.remove(i)),
                (Err(i), Some(d)) => sources.insert(i, Source { len: rel, pos: pos as u8, data: d }),
                (Err(_), None) => return Change::Unchanged,
            }
            return Change::rebuilt(Chunk::build(sources, children(), fallback));
        }
        let below = current.map_or(std::ptr::null(), |c| c.painted_at(pos));
        match current.and_then(|c| c.child_entry(pos)) {
            Some(entry) => {
                let child = chunk::entry_child(entry, guard);
                match Self::set_in(Some(child), base + STRIDE, key, len, data, below, guard) {
                    Change::Unchanged => Change::Unchanged,
                    Change::Replace(Some(new)) => {
                        chunk::replace_child(entry, new);
                        Change::Unchanged
                    }
                    Change::Replace(None) => {
                        // The child emptied: rebuild this chunk without it (a child entry is
                        // never emptied in place, which would hide its fallback from readers).
                        let others = children().into_iter().filter(|(p, _)| *p as usize != pos).collect();
                        Change::rebuilt(Chunk::build(sources(), others, fallback))
                    }
                }
            }
            None => match Self::set_in(None, base + STRIDE, key, len, data, below, guard) {
                Change::Replace(Some(new)) => {
                    let mut children = children();
                    let at = children.partition_point(|(p, _)| (*p as usize) < pos);
                    children.insert(at, (pos as u8, Ref::new(new)));
                    Change::rebuilt(Chunk::build(sources(), children, fallback))
                }
                _ => Change::Unchanged,
            },
        }
    }
}

/// A child of a chunk that a batched refresh changed: its position, its entry in the chunk
/// (none: it is new) and what replaces it (none: it emptied).
type Replaced<'a, F> = (u8, Option<&'a Entry>, Option<Chunk<F>>);

/// One prefix of a batched refresh: its key (masked to its length), length and new best route.
#[derive(Clone, Copy)]
struct Update<F: Family> {
    key: u128,
    len: u32,
    data: Option<*const RouteData<F>>,
}

impl<F: Family> Compact<F> {
    /// [`Compact::set_in`] for several prefixes at once, each longer than `base` bits and under
    /// `current`'s path, sorted by key: `current` is rebuilt at most once, and each chunk below
    /// is visited once for all the prefixes under it.
    fn set_many_in(
        current: Option<&Chunk<F>>,
        base: u32,
        updates: &[Update<F>],
        fallback: *const RouteData<F>,
        guard: &Guard,
    ) -> Change<F> {
        if let [one] = updates {
            return Self::set_in(current, base, one.key, one.len, one.data, fallback, guard);
        }
        // The prefixes that end in this chunk change its sources.
        let mut sources = current.map_or_else(Vec::new, |c| c.sources.clone());
        let mut sources_changed = false;
        for u in updates.iter().filter(|u| u.len <= base + STRIDE) {
            let (rel, pos) = ((u.len - base) as u8, position(u.key, base) as u8);
            match (sources.binary_search_by_key(&(rel, pos), |s| (s.len, s.pos)), u.data) {
                (Ok(i), Some(d)) if sources[i].data == d => continue,
                (Ok(i), Some(d)) => sources[i].data = d,
                (Ok(i), None) => drop(sources.remove(i)),
                (Err(i), Some(d)) => sources.insert(i, Source { len: rel, pos, data: d }),
                (Err(_), None) => continue,
            }
            sources_changed = true;
        }
        // The longer ones go down, a group per position (contiguous: sorted by key).
        let deeper: Vec<Update<F>> = updates.iter().filter(|u| u.len > base + STRIDE).copied().collect();
        let mut replaced: Vec<Replaced<'_, F>> = Vec::new();
        for group in deeper.chunk_by(|a, b| position(a.key, base) == position(b.key, base)) {
            let pos = position(group[0].key, base);
            let entry = current.and_then(|c| c.child_entry(pos));
            let child = entry.map(|e| chunk::entry_child(e, guard));
            let below = chunk::painted_at(&sources, pos);
            if let Change::Replace(new) = Self::set_many_in(child, base + STRIDE, group, below, guard) {
                replaced.push((pos as u8, entry, new));
            }
        }
        // A child that appears or goes changes this chunk's runs: rebuild it. Otherwise the
        // replaced children are swapped in place, as `set_in` does.
        let reshaped = replaced.iter().any(|(_, entry, new)| entry.is_some() != new.is_some());
        if !sources_changed && !reshaped {
            for (_, entry, new) in replaced {
                if let (Some(entry), Some(new)) = (entry, new) {
                    chunk::replace_child(entry, new);
                }
            }
            return Change::Unchanged;
        }
        let mut children = current.map_or_else(Vec::new, |c| c.child_refs(guard));
        for (pos, _, new) in replaced {
            let at = children.partition_point(|(p, _)| *p < pos);
            let present = children.get(at).is_some_and(|(p, _)| *p == pos);
            match (present, new) {
                (true, Some(new)) => children[at].1 = Ref::new(new),
                (true, None) => drop(children.remove(at)),
                (false, Some(new)) => children.insert(at, (pos, Ref::new(new))),
                (false, None) => {}
            }
        }
        Change::rebuilt(Chunk::build(sources, children, fallback))
    }
}

/// What a write below the root does to a chunk.
enum Change<F: Family> {
    /// Nothing to publish in its place (no change, or only children replaced in place).
    Unchanged,
    /// Publish this instead (`None`: the chunk is empty and goes).
    Replace(Option<Chunk<F>>),
}

impl<F: Family> Change<F> {
    fn rebuilt(chunk: Chunk<F>) -> Self {
        Change::Replace((!chunk.is_empty()).then_some(chunk))
    }
}

// SAFETY: the writer state's raw pointers are route data borrowed from the routing tree
// (invariant 1), only compared and copied under the lock, never read through.
unsafe impl<F: Family> Send for Writer<F> {}
