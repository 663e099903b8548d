//! One level of the forwarding table below the root: a [`Chunk`] covers 8 bits of address
//! under a fixed path and stores, compressed, the best route of every prefix whose length ends
//! inside those 8 bits, plus links to the chunks one level down.
//!
//! # Layout
//!
//! The 256 positions of a chunk are run-length compressed with a 256-bit map and a rank (a
//! population count of the bits up to a position, Poptrie's trick): a bit is set where a run
//! starts, and `entries` holds one word per run. A run is a stretch of positions with the same
//! leaf (the data of the best route of the longest prefix in this chunk over them, or null), or
//! a single position with a chunk below it (the word is then the child's pointer, tagged with
//! bit 0). The child carries the leaf of its position as its `fallback`, so a lookup reads one
//! entry per level. The map, its per-word ranks, the fallback and the entry pointer share the
//! chunk's first cache line: a level costs two dependent reads.
//!
//! # Invariants
//!
//! 1. A chunk is immutable once published, except for its child entries and its fallback, which
//!    only the writer holding the forwarding table's lock stores to.
//! 2. Leaves and fallbacks point at route data borrowed from the routing tree's route sets,
//!    which a writer retires only after the refresh that takes the pointer out of every
//!    published chunk (`table/write.rs`, "Forwarding tables"); so a reader that loaded the
//!    pointer under a guard may read the data until the guard is dropped.
//! 3. A child entry, like a [`ChildSlot`], holds one unit of the counted reference to its chunk
//!    (as [`EpochCell`] does): replacing or dropping it releases that unit, and a chunk whose
//!    count reaches 0 is reclaimed through the epoch collector (`counted.rs`), so a reader that
//!    loaded a chunk pointer under a guard may read the chunk until the guard is dropped.
//!
//! [`EpochCell`]: crate::cell::EpochCell

use std::ptr::NonNull;

use crate::counted::{Counted, Ref};
use crate::sync::{AtomicPtr, Ordering, epoch::Guard};
use crate::{Family, RouteData};

/// Bits of address one chunk covers.
pub(crate) const STRIDE: u32 = 8;
const POSITIONS: usize = 1 << STRIDE;
/// The tag (address bit 0) of an entry that links to a child chunk.
const CHILD: usize = 1;

/// One entry: a leaf (route data, possibly null) or a tagged link to a child chunk. A pointer
/// with its tag in the address bits (strict provenance: no integer round trips).
pub(crate) type Entry = AtomicPtr<u8>;

fn is_child(word: *mut u8) -> bool {
    word.addr() & CHILD != 0
}

fn child_word<F: Family>(chunk: *const Counted<Chunk<F>>) -> *mut u8 {
    (chunk as *mut u8).map_addr(|a| a | CHILD)
}

fn as_child<F: Family>(word: *mut u8) -> *const Counted<Chunk<F>> {
    word.map_addr(|a| a & !CHILD).cast()
}

/// The best route, in the table's view, of one prefix that ends inside a chunk.
pub(crate) struct Source<F: Family> {
    /// The prefix's length inside the chunk, 1 to 8.
    pub(crate) len: u8,
    /// The prefix's first position (its bits inside the chunk, left-aligned in 8 bits).
    pub(crate) pos: u8,
    /// Its best route's data, borrowed from the routing tree (invariant 2).
    pub(crate) data: *const RouteData<F>,
}

impl<F: Family> Source<F> {
    fn positions(&self) -> std::ops::Range<usize> {
        let start = self.pos as usize;
        start..start + (1 << (STRIDE - self.len as u32))
    }
}

impl<F: Family> Clone for Source<F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<F: Family> Copy for Source<F> {}

/// The leaf that `sources` (a chunk's, sorted by length) paint at `pos` (null: none covers it).
pub(crate) fn painted_at<F: Family>(sources: &[Source<F>], pos: usize) -> *const RouteData<F> {
    // Sorted by length: the last one that covers `pos` is the longest.
    sources.iter().rev().find(|s| s.positions().contains(&pos)).map_or(std::ptr::null(), |s| s.data)
}

/// What a lookup finds at a position of a chunk.
pub(crate) enum Found<'g, F: Family> {
    /// The leaf (null: no prefix of this chunk covers the position).
    Leaf(*const RouteData<F>),
    /// The chunk one level down.
    Child(&'g Chunk<F>),
}

/// A nullable link to a chunk that owns one unit of its count (invariant 3): the root's.
pub(crate) struct ChildSlot<F: Family> {
    ptr: AtomicPtr<Counted<Chunk<F>>>,
}

impl<F: Family> ChildSlot<F> {
    pub(crate) fn new() -> Self {
        ChildSlot { ptr: AtomicPtr::new(std::ptr::null_mut()) }
    }

    /// The chunk, for a reader under `guard`.
    #[inline(always)]
    pub(crate) fn load<'g>(&self, _guard: &'g Guard) -> Option<&'g Chunk<F>> {
        // Acquire pairs with the Release of `store`: the chunk was fully built before.
        let raw = self.ptr.load(Ordering::Acquire);
        // SAFETY: read under `_guard` from a slot that held a unit of it (invariant 3), so the
        // allocation outlives the guard.
        (!raw.is_null()).then(|| unsafe { Counted::value(raw) })
    }

    /// Publishes `chunk` (or empties the slot) and releases the unit of the chunk it replaces.
    pub(crate) fn store(&self, chunk: Option<Chunk<F>>) {
        let new = chunk.map_or(std::ptr::null_mut(), |c| Ref::into_raw(Ref::new(c)) as *mut _);
        let old = self.ptr.swap(new, Ordering::AcqRel);
        if !old.is_null() {
            // SAFETY: the slot's unit of `old` moves to us (invariant 3); dropping it releases the
            // unit through the epoch protocol.
            drop(unsafe { Ref::from_raw(old) });
        }
    }
}

impl<F: Family> Drop for ChildSlot<F> {
    fn drop(&mut self) {
        self.store(None);
    }
}

/// A 256-bit map with the rank of each 64-bit word's first bit.
#[derive(Default)]
struct Runs {
    words: [u64; 4],
    before: [u8; 4],
}

impl Runs {
    /// The number of set bits at positions `0..=pos`.
    #[inline(always)]
    fn rank(&self, pos: usize) -> usize {
        let word = self.words[pos / 64] << (63 - pos % 64);
        self.before[pos / 64] as usize + word.count_ones() as usize
    }

    fn contains(&self, pos: usize) -> bool {
        self.words[pos / 64] & (1 << (pos % 64)) != 0
    }

    /// The set positions, in order.
    fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..4).flat_map(move |w| {
            let mut word = self.words[w];
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros() as usize;
                    word &= word - 1;
                    w * 64 + bit
                })
            })
        })
    }
}

/// One 8-bit level of the forwarding table under a fixed path (see the module docs).
#[repr(C, align(64))]
pub(crate) struct Chunk<F: Family> {
    // The first cache line: all a lookup reads besides one entry.
    runs: Runs,
    entry_count: u32,
    fallback: AtomicPtr<RouteData<F>>,
    entries: NonNull<Entry>,
    // What a writer rebuilds the chunk from.
    /// How many entries link to children.
    child_count: u16,
    /// The prefixes ending in this chunk and their best routes, sorted by (len, pos).
    pub(crate) sources: Vec<Source<F>>,
}

// SAFETY: the chunk owns its entries array; its raw leaf and fallback pointers point at route
// data the routing tree keeps alive (invariant 2) and are never written through; `RouteData<F>`
// is `Send + Sync`, so sharing or sending the chunk shares or sends only what the route sets and
// the counted child references already allow.
unsafe impl<F: Family> Send for Chunk<F> {}
// SAFETY: as above; all shared mutation is through atomics.
unsafe impl<F: Family> Sync for Chunk<F> {}

impl<F: Family> Chunk<F> {
    /// Builds a chunk from its sources (sorted by (len, pos)), its children (sorted by
    /// position, one at most per position) and the leaf its parent has over it. Sets each
    /// child's fallback to this chunk's leaf at the child's position: the caller must publish
    /// the chunk.
    pub(crate) fn build(
        sources: Vec<Source<F>>,
        children: Vec<(u8, Ref<Chunk<F>>)>,
        fallback: *const RouteData<F>,
    ) -> Self {
        // Sorted by length: longer prefixes overwrite shorter ones.
        let mut painted: [*const RouteData<F>; POSITIONS] = [std::ptr::null(); POSITIONS];
        for source in &sources {
            painted[source.positions()].fill(source.data);
        }
        // Run starts: where the leaf changes, at each child and right after it.
        let mut runs = Runs::default();
        let mut start = |i: usize| runs.words[i / 64] |= 1 << (i % 64);
        start(0);
        for i in 1..POSITIONS {
            if painted[i] != painted[i - 1] {
                start(i);
            }
        }
        for (pos, _) in &children {
            start(*pos as usize);
            if (*pos as usize) < POSITIONS - 1 {
                start(*pos as usize + 1);
            }
        }
        for w in 1..4 {
            runs.before[w] = runs.before[w - 1] + runs.words[w - 1].count_ones() as u8;
        }
        let count = runs.before[3] as usize + runs.words[3].count_ones() as usize;
        let mut entries = Vec::with_capacity(count);
        let child_count = children.len() as u16;
        let mut children = children.into_iter().peekable();
        for i in runs.positions() {
            let word = match children.next_if(|(pos, _)| *pos as usize == i) {
                Some((_, child)) => {
                    // Stored before the chunk is published; readers of the previous parent
                    // may see it early, which is harmless (both are the tree's data).
                    child.fallback.store(painted[i] as *mut _, Ordering::Release);
                    child_word(Ref::into_raw(child))
                }
                None => painted[i] as *mut u8,
            };
            entries.push(Entry::new(word));
        }
        debug_assert_eq!(entries.len(), count);
        let entries = Box::into_raw(entries.into_boxed_slice()) as *mut Entry;
        Chunk {
            runs,
            entry_count: count as u32,
            fallback: AtomicPtr::new(fallback as *mut _),
            // SAFETY: `Box::into_raw` never returns null.
            entries: unsafe { NonNull::new_unchecked(entries) },
            child_count,
            sources,
        }
    }

    /// Whether the chunk has neither sources nor children (its parent drops it).
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.child_count == 0
    }

    fn entries(&self) -> &[Entry] {
        // SAFETY: `entries` and `entry_count` describe the boxed slice made in `build`, freed
        // only in `drop`.
        unsafe { std::slice::from_raw_parts(self.entries.as_ptr(), self.entry_count as usize) }
    }

    /// The leaf the parent has over this chunk (null: none).
    #[inline(always)]
    pub(crate) fn fallback(&self) -> *const RouteData<F> {
        // Acquire pairs with the Release store in `build`.
        self.fallback.load(Ordering::Acquire)
    }

    /// What a lookup finds at `pos`.
    #[inline(always)]
    pub(crate) fn find<'g>(&self, pos: usize, _guard: &'g Guard) -> Found<'g, F> {
        // Position 0 always starts a run, so the rank is at least 1 and within the entries.
        let index = self.runs.rank(pos) - 1;
        // SAFETY: `index < entry_count` (one entry per set bit); see `entries`.
        let word = unsafe { &*self.entries.as_ptr().add(index) }.load(Ordering::Acquire);
        if !is_child(word) {
            Found::Leaf(word.cast())
        } else {
            // SAFETY: a child entry holds a unit of its chunk (invariant 3) and was read under
            // `_guard`, so the chunk outlives the guard.
            Found::Child(unsafe { Counted::value(as_child(word)) })
        }
    }

    /// Starts loading the entry a lookup of `pos` will read (see `Fib::lookup_batch`).
    #[inline(always)]
    pub(crate) fn prefetch_entry(&self, pos: usize) {
        let index = self.runs.rank(pos) - 1;
        // `wrapping_add`: only an address is computed, never dereferenced here.
        super::prefetch(self.entries.as_ptr().wrapping_add(index));
    }

    /// The leaf this chunk's own sources give `pos` (the fallback of a child there).
    pub(crate) fn painted_at(&self, pos: usize) -> *const RouteData<F> {
        painted_at(&self.sources, pos)
    }

    /// The child entries with their positions.
    fn children(&self) -> impl Iterator<Item = (usize, &Entry)> {
        let entries = if self.child_count == 0 { &[][..] } else { self.entries() };
        self.runs.positions().zip(entries).filter(|(_, e)| is_child(e.load(Ordering::Relaxed)))
    }

    /// The child entry at `pos`, if there is one.
    pub(crate) fn child_entry(&self, pos: usize) -> Option<&Entry> {
        let entry = &self.entries()[self.runs.rank(pos) - 1];
        (self.runs.contains(pos) && is_child(entry.load(Ordering::Relaxed))).then_some(entry)
    }

    /// Counted references to every child with its position, for a rebuild (only the writer,
    /// which holds the lock, changes child entries).
    pub(crate) fn child_refs(&self, guard: &Guard) -> Vec<(u8, Ref<Chunk<F>>)> {
        self.children()
            .map(|(pos, entry)| {
                let raw = as_child::<F>(entry.load(Ordering::Acquire));
                // SAFETY: read under `guard` from an entry that holds a unit of it (invariant 3);
                // the writer's lock keeps the entry from being released meanwhile, so the count
                // is not 0.
                let child = unsafe { Ref::try_acquire(raw, guard) }.expect("a linked chunk is alive");
                (pos as u8, child)
            })
            .collect()
    }
}

/// Replaces the child chunk of a child entry in place (the writer holds the lock) and releases
/// the unit of the chunk it replaces.
pub(crate) fn replace_child<F: Family>(entry: &Entry, chunk: Chunk<F>) {
    let new = child_word(Ref::into_raw(Ref::new(chunk)));
    // Release publishes the chunk (Acquire in `find`).
    let old = entry.swap(new, Ordering::AcqRel);
    debug_assert!(is_child(old), "replace_child on a leaf entry");
    // SAFETY: the entry's unit of the old chunk moves to us (invariant 3).
    drop(unsafe { Ref::from_raw(as_child::<F>(old)) });
}

/// The child chunk an entry links to, as the writer sees it.
pub(crate) fn entry_child<'g, F: Family>(entry: &Entry, _guard: &'g Guard) -> &'g Chunk<F> {
    let raw = as_child::<F>(entry.load(Ordering::Acquire));
    // SAFETY: the entry holds a unit of the chunk (invariant 3), read under `_guard`.
    unsafe { Counted::value(raw) }
}

impl<F: Family> Drop for Chunk<F> {
    fn drop(&mut self) {
        for (_, entry) in self.children() {
            let raw = as_child::<F>(entry.load(Ordering::Relaxed));
            // SAFETY: the entry's unit moves to this `Ref`, released through the epoch protocol
            // (invariant 3); the chunk is being destroyed, so nobody reads the entry again.
            drop(unsafe { Ref::from_raw(raw) });
        }
        let slice = std::ptr::slice_from_raw_parts_mut(self.entries.as_ptr(), self.entry_count as usize);
        // SAFETY: the boxed slice made in `build`, freed once, here.
        drop(unsafe { Box::from_raw(slice) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Ipv4;

    /// Route data for a test, owned here (chunks only borrow it) and freed with the store.
    /// Boxed so that the pointers handed out stay put when the vector grows.
    #[derive(Default)]
    #[allow(clippy::vec_box)]
    struct Store(Vec<Box<RouteData<Ipv4>>>);

    impl Store {
        fn data(&mut self, private: u64) -> *const RouteData<Ipv4> {
            self.0.push(Box::new(RouteData::new(Vec::new()).private(private)));
            &**self.0.last().expect("just pushed")
        }
    }

    fn private(ptr: *const RouteData<Ipv4>) -> Option<u64> {
        // SAFETY: test data lives in the test's `Store`, dropped after the chunks.
        unsafe { ptr.as_ref() }.map(|d| d.private)
    }

    fn leaf(chunk: &Chunk<Ipv4>, pos: usize, guard: &Guard) -> Option<u64> {
        match chunk.find(pos, guard) {
            Found::Leaf(l) => private(l),
            Found::Child(_) => panic!("a child at {pos}"),
        }
    }

    #[test]
    fn longer_prefixes_win_and_runs_compress() {
        let guard = crate::reclaim::pin();
        let mut store = Store::default();
        let sources = vec![
            Source { len: 1, pos: 0, data: store.data(1) }, // positions 0..128
            Source { len: 2, pos: 64, data: store.data(2) }, // 64..128
            Source { len: 8, pos: 65, data: store.data(3) }, // 65
            Source { len: 8, pos: 200, data: store.data(4) }, // 200
        ];
        let chunk = Chunk::build(sources, Vec::new(), std::ptr::null());
        let expect = |pos: usize| match pos {
            65 => Some(3),
            200 => Some(4),
            64..128 => Some(2),
            0..128 => Some(1),
            _ => None,
        };
        for pos in 0..POSITIONS {
            assert_eq!(leaf(&chunk, pos, &guard), expect(pos), "position {pos}");
        }
        // Runs: [0,64) 1, [64,65) 2, 65 3, [66,128) 2, [128,200) none, 200 4, [201,256) none.
        assert_eq!(chunk.entry_count, 7);
        assert_eq!(private(chunk.painted_at(65)), Some(3));
        assert_eq!(private(chunk.painted_at(100)), Some(2));
        assert_eq!(private(chunk.painted_at(255)), None);
    }

    #[test]
    fn children_are_found_by_rank_and_get_their_fallback() {
        let guard = crate::reclaim::pin();
        let mut store = Store::default();
        let mut child = |p: u8| {
            let data = store.data(p as u64);
            (p, Ref::new(Chunk::build(vec![Source { len: 8, pos: 0, data }], vec![], std::ptr::null())))
        };
        let children = vec![child(3), child(64), child(255)];
        let outer = store.data(1000);
        let chunk =
            Chunk::<Ipv4>::build(vec![Source { len: 1, pos: 0, data: outer }], children, std::ptr::null());
        for pos in 0..POSITIONS {
            match chunk.find(pos, &guard) {
                Found::Child(c) => {
                    assert!([3, 64, 255].contains(&pos), "a child at {pos}");
                    assert_eq!(leaf(c, 0, &guard), Some(pos as u64));
                    let fallback = if pos < 128 { Some(1000) } else { None };
                    assert_eq!(private(c.fallback()), fallback, "fallback at {pos}");
                }
                Found::Leaf(l) => {
                    assert!(![3, 64, 255].contains(&pos), "no child at {pos}");
                    assert_eq!(private(l), (pos < 128).then_some(1000));
                }
            }
        }
        assert_eq!(chunk.child_refs(&guard).len(), 3);
        assert!(chunk.child_entry(64).is_some() && chunk.child_entry(65).is_none());
        assert!(!chunk.is_empty());
        assert!(Chunk::<Ipv4>::build(Vec::new(), Vec::new(), std::ptr::null()).is_empty());
    }
}
