//! One level of the forwarding table below the root: a [`Chunk`] covers 8 bits of address
//! under a fixed path and stores, compressed, the best route of every prefix whose length ends
//! inside those 8 bits, plus links to the chunks one level down.
//!
//! # Layout
//!
//! The 256 positions of a chunk are compressed twice with 256-bit maps and a rank (a population
//! count of the bits up to a position, Poptrie's trick):
//! - `leaf_bits` has a bit where the leaf value changes (a run starts), so a run of positions
//!   that share a value — most of them, since a short prefix covers many positions — is stored
//!   once in `leaves`;
//! - `child_bits` has a bit where a chunk one level down exists; `children` holds them in
//!   position order.
//!
//! Each map carries, per 64-bit word, the count of bits in the words before it, so a rank is one
//! population count.
//!
//! # Invariants
//!
//! 1. A chunk is immutable once published, except for its child slots, which only the writer
//!    that holds the forwarding table's lock stores to.
//! 2. Every non-null pointer in `leaves` points into the `Arc<RouteData>` of one of the chunk's
//!    own `sources`, so it is valid as long as the chunk is.
//! 3. A child slot holds one unit of the counted reference to its chunk (as [`EpochCell`] does):
//!    replacing or dropping it releases that unit, and a chunk whose count reaches 0 is reclaimed
//!    through the epoch collector (`counted.rs`), so a reader that loaded a chunk pointer under a
//!    guard may read the chunk until the guard is dropped.
//!
//! [`EpochCell`]: crate::cell::EpochCell

use crate::counted::{Counted, Ref};
use crate::sync::{Arc, AtomicPtr, Ordering, epoch::Guard};
use crate::{Family, RouteData};

/// Bits of address one chunk covers.
pub(crate) const STRIDE: u32 = 8;
const POSITIONS: usize = 1 << STRIDE;

/// The best route, in the table's view, of one prefix that ends inside a chunk.
pub(crate) struct Source<F: Family> {
    /// The prefix's first position (its bits inside the chunk, left-aligned in 8 bits).
    pub(crate) pos: u8,
    /// The prefix's length inside the chunk, 1 to 8.
    pub(crate) len: u8,
    /// Its best route's data: the pointer the leaves hold, and what keeps it alive.
    pub(crate) data: Arc<RouteData<F>>,
}

impl<F: Family> Source<F> {
    fn positions(&self) -> std::ops::Range<usize> {
        let start = self.pos as usize;
        start..start + (1 << (STRIDE - self.len as u32))
    }
}

impl<F: Family> Clone for Source<F> {
    fn clone(&self) -> Self {
        Source { pos: self.pos, len: self.len, data: self.data.clone() }
    }
}

/// A 256-bit map with the rank of each 64-bit word's first bit.
#[derive(Default)]
struct Bitmap {
    words: [u64; 4],
    before: [u16; 4],
}

impl Bitmap {
    fn from_fn(mut bit: impl FnMut(usize) -> bool) -> Self {
        let mut map = Bitmap::default();
        for i in 0..POSITIONS {
            if bit(i) {
                map.words[i / 64] |= 1 << (i % 64);
            }
        }
        for w in 1..4 {
            map.before[w] = map.before[w - 1] + map.words[w - 1].count_ones() as u16;
        }
        map
    }

    #[inline(always)]
    fn contains(&self, pos: usize) -> bool {
        self.words[pos / 64] & (1 << (pos % 64)) != 0
    }

    /// The number of set bits at positions `0..=pos`.
    #[inline(always)]
    fn rank(&self, pos: usize) -> usize {
        let word = self.words[pos / 64] << (63 - pos % 64);
        self.before[pos / 64] as usize + word.count_ones() as usize
    }
}

/// A nullable link to a chunk that owns one unit of its count (invariant 3).
pub(crate) struct ChildSlot<F: Family> {
    ptr: AtomicPtr<Counted<Chunk<F>>>,
}

impl<F: Family> ChildSlot<F> {
    pub(crate) fn new(chunk: Option<Ref<Chunk<F>>>) -> Self {
        ChildSlot { ptr: AtomicPtr::new(chunk.map_or(std::ptr::null_mut(), |c| Ref::into_raw(c) as *mut _)) }
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

    /// Another counted reference to the chunk, for a writer (which holds the table's lock, so the
    /// slot cannot be emptied meanwhile).
    pub(crate) fn get_ref(&self, guard: &Guard) -> Option<Ref<Chunk<F>>> {
        let raw = self.ptr.load(Ordering::Acquire);
        // SAFETY: read under `guard` from a slot that holds a unit of it (invariant 3).
        (!raw.is_null()).then(|| unsafe { Ref::try_acquire(raw, guard) }).flatten()
    }

    /// Publishes `chunk` (or empties the slot) and releases the unit of the chunk it replaces.
    pub(crate) fn store(&self, chunk: Option<Ref<Chunk<F>>>) {
        let new = chunk.map_or(std::ptr::null_mut(), |c| Ref::into_raw(c) as *mut _);
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

/// One 8-bit level of the forwarding table under a fixed path (see the module docs).
pub(crate) struct Chunk<F: Family> {
    leaf_bits: Bitmap,
    child_bits: Bitmap,
    leaves: Box<[*const RouteData<F>]>,
    children: Box<[ChildSlot<F>]>,
    /// The prefixes ending in this chunk and their best routes, sorted by (pos, len): what a
    /// writer rebuilds the chunk from.
    pub(crate) sources: Vec<Source<F>>,
}

// SAFETY: the raw pointers in `leaves` point into `Arc<RouteData<F>>`s that the chunk owns
// (invariant 2) and never writes through; `RouteData<F>` is `Send + Sync`, so sharing or sending
// the chunk shares or sends only what the `Arc`s already allow.
unsafe impl<F: Family> Send for Chunk<F> {}
// SAFETY: as above; every other field is `Sync`.
unsafe impl<F: Family> Sync for Chunk<F> {}

impl<F: Family> Chunk<F> {
    /// Builds a chunk from its sources (sorted by (pos, len)) and its children (sorted by
    /// position, one at most per position).
    pub(crate) fn build(sources: Vec<Source<F>>, children: Vec<(u8, Ref<Chunk<F>>)>) -> Self {
        // Paint shorter prefixes first so that longer ones overwrite them.
        let mut by_len: Vec<&Source<F>> = sources.iter().collect();
        by_len.sort_by_key(|s| s.len);
        let mut painted: [*const RouteData<F>; POSITIONS] = [std::ptr::null(); POSITIONS];
        for source in by_len {
            let ptr = Arc::as_ptr(&source.data);
            painted[source.positions()].fill(ptr);
        }
        let leaf_bits = Bitmap::from_fn(|i| i == 0 || painted[i] != painted[i - 1]);
        let leaves = (0..POSITIONS).filter(|&i| leaf_bits.contains(i)).map(|i| painted[i]).collect();
        let child_bits = Bitmap::from_fn(|i| children.iter().any(|(pos, _)| *pos as usize == i));
        let children = children.into_iter().map(|(_, c)| ChildSlot::new(Some(c))).collect();
        Chunk { leaf_bits, child_bits, leaves, children, sources }
    }

    /// Whether the chunk has neither sources nor children (its parent drops it).
    pub(crate) fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.children.is_empty()
    }

    /// The leaf at `pos`: the best route of the longest prefix in this chunk that covers it.
    #[inline(always)]
    pub(crate) fn leaf(&self, pos: usize) -> *const RouteData<F> {
        // Position 0 always starts a run, so the rank is at least 1.
        self.leaves[self.leaf_bits.rank(pos) - 1]
    }

    /// The slot of the child at `pos`, if there is one.
    #[inline(always)]
    pub(crate) fn child(&self, pos: usize) -> Option<&ChildSlot<F>> {
        if self.child_bits.contains(pos) { Some(&self.children[self.child_bits.rank(pos) - 1]) } else { None }
    }

    /// Counted references to every child with its position, for a rebuild (the writer holds the
    /// table's lock).
    pub(crate) fn children(&self, guard: &Guard) -> Vec<(u8, Ref<Chunk<F>>)> {
        let mut out = Vec::with_capacity(self.children.len());
        for pos in 0..POSITIONS {
            if let Some(child) = self.child(pos).and_then(|slot| slot.get_ref(guard)) {
                out.push((pos as u8, child));
            }
        }
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::Ipv4;

    fn data(private: u64) -> Arc<RouteData<Ipv4>> {
        Arc::new(RouteData::new(Vec::new()).private(private))
    }

    fn private(ptr: *const RouteData<Ipv4>) -> Option<u64> {
        // SAFETY: test pointers come from `Arc`s the chunk under test owns.
        unsafe { ptr.as_ref() }.map(|d| d.private)
    }

    #[test]
    fn longer_prefixes_win_and_runs_compress() {
        let sources = vec![
            Source { pos: 0, len: 1, data: data(1) },   // positions 0..128
            Source { pos: 64, len: 2, data: data(2) },  // 64..128
            Source { pos: 65, len: 8, data: data(3) },  // 65
            Source { pos: 200, len: 8, data: data(4) }, // 200
        ];
        let chunk = Chunk::build(sources, Vec::new());
        let expect = |pos: usize| match pos {
            65 => Some(3),
            200 => Some(4),
            64..128 => Some(2),
            0..128 => Some(1),
            _ => None,
        };
        for pos in 0..POSITIONS {
            assert_eq!(private(chunk.leaf(pos)), expect(pos), "position {pos}");
        }
        // Runs: [0,64) 1, [64,65) 2, 65 3, [66,128) 2, [128,200) none, 200 4, [201,256) none.
        assert_eq!(chunk.leaves.len(), 7);
    }

    #[test]
    fn children_are_found_by_rank() {
        let guard = crate::reclaim::pin();
        let child =
            |p| (p, Ref::new(Chunk::build(vec![Source { pos: 0, len: 8, data: data(p as u64) }], vec![])));
        let chunk = Chunk::<Ipv4>::build(Vec::new(), vec![child(3), child(64), child(255)]);
        for pos in 0..POSITIONS {
            let found =
                chunk.child(pos).and_then(|slot| slot.load(&guard)).map(|c| private(c.leaf(0)).unwrap());
            let expected = [3, 64, 255].contains(&pos).then_some(pos as u64);
            assert_eq!(found, expected, "position {pos}");
        }
        assert_eq!(chunk.children(&guard).len(), 3);
        assert!(!chunk.is_empty());
        assert!(Chunk::<Ipv4>::build(Vec::new(), Vec::new()).is_empty());
    }
}
