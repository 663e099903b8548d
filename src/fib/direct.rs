//! The direct layout of an IPv4 forwarding table: DIR-24-8, as in DPDK's LPM.
//!
//! - **first**: one 4-byte entry per /24 (`2^FIRST_BITS` entries, 64 MiB of address space,
//!   allocated zeroed so that only the pages under routes become resident);
//! - **chunks**: 256 entries, one per address of the next 8 bits, for the /24s (in the miri
//!   build, with a smaller first level, also the /16s…) that hold longer prefixes;
//! - **leaves**: one slot per prefix with a best route in the view, holding that route's data.
//!
//! An entry is 0 (no route), a leaf index, or [`CHUNK`] with a chunk index. Indices, not
//! pointers, keep the first level at 4 bytes an entry; a leaf index per *prefix* (not per route
//! data) means that a change of a prefix's best route — the common write — stores one leaf slot
//! and repaints nothing. Adding a prefix paints its index over the entries where nothing longer
//! is; removing it paints its parent's index (the longest shorter prefix, found through the
//! covering-prefix index of `covers.rs`) where its own was.
//!
//! A lookup reads one first-level entry (one chunk entry more below a /24 that holds longer
//! prefixes) and one leaf slot. Leaf and chunk slots live in segments that never move
//! ([`Slots`]), so that readers need no lock while writers add slots.
//!
//! # Invariants
//!
//! 1. Only the holder of `writer` stores to entries, leaf slots, chunk slots and segment links.
//! 2. An index is published (stored in an entry) only after its slot holds its value: a leaf
//!    slot its route data, a chunk slot a fully painted chunk (Release stores, Acquire loads).
//! 3. Route data in a leaf slot is borrowed from the routing tree's route sets, which retire it
//!    through the epoch collector only after the refresh that took it out of the table (see
//!    the module docs of `fib`): a reader may read it until its guard is dropped.
//! 4. An index leaves the table (no entry holds it any more) before it is released, and it is
//!    released — its chunk freed, the index handed back for reuse — through the epoch
//!    collector (`reclaim::retire`). So a reader that loaded an index under a guard finds, until
//!    the guard is dropped, its chunk alive and its slot not yet reused for another prefix.
//! 5. Segments are allocated by the writer, linked before any index in them is published, and
//!    freed only when the table is dropped (no reader is left then).

#[cfg(not(loom))]
use std::alloc::{Layout, alloc_zeroed, handle_alloc_error};
use std::collections::HashMap;

use crossbeam_utils::CachePadded;

use super::covers::{self, Covers};
use super::prefetch;
use crate::sync::{Arc, AtomicPtr, AtomicU32, Mutex, MutexGuard, Ordering, epoch::Guard};
use crate::{Family, RouteData};

/// How many keys ahead `lookup_batch` requests a first-level entry: enough to cover a miss to
/// memory at the rate the loop resolves keys.
const AHEAD: usize = 16;

/// Bits of address the first level covers: one entry per /24. Smaller under miri, where
/// painting a short prefix over 16 Mi entries would take hours; the chunks below then nest
/// (8 + 8 + 8 + 8), which the tests exercise there. Smaller under the sanitizers too, where
/// every store is an instrumented call (a /0 took over a second under ThreadSanitizer): 16 bits,
/// chunks nesting 16 + 8 + 8. The code is the same for every width.
#[cfg(not(any(miri, loom, rtmgr_sanitizer)))]
pub(super) const FIRST_BITS: u32 = 24;
#[cfg(all(rtmgr_sanitizer, not(any(miri, loom))))]
pub(super) const FIRST_BITS: u32 = 16;
#[cfg(all(miri, not(loom)))]
pub(super) const FIRST_BITS: u32 = 8;
/// Under loom, where every atomic access is a scheduling point, 4-bit levels throughout.
#[cfg(loom)]
pub(super) const FIRST_BITS: u32 = 4;

/// Bits of address one chunk covers.
#[cfg(not(loom))]
const STRIDE: u32 = 8;
#[cfg(loom)]
const STRIDE: u32 = 4;

/// The tag of an entry that links to a chunk; the other bits are the chunk's index.
const CHUNK: u32 = 1 << 31;

/// Keys a batched lookup resolves to entries before it reads their leaf slots.
const BATCH: usize = 256;

/// An entry that no route covers (leaf index 0 is never handed out).
const NONE: u32 = 0;

/// One chunk: an entry per value of its bits.
type ChunkEntries = [AtomicU32; 1 << STRIDE];

/// Bytes of a transparent huge page (x86-64 and aarch64 with 4 KiB base pages).
#[cfg(not(loom))]
const HUGE_PAGE: usize = 1 << 21;

/// Asks the kernel to back the whole huge pages inside `[ptr, ptr + len)` with transparent huge
/// pages (`madvise(MADV_HUGEPAGE)`; Linux's default THP mode, `madvise`, grants them only on
/// request). A lookup then finds its page in the TLB: the first level spans 32 huge pages
/// instead of 16,384 small ones (random reads over 64 MiB were 1.4× faster on huge pages on an
/// Intel Xeon; on an AMD EPYC the gain was within the noise: `docs/BENCHMARKS.md`). Must run
/// before the pages are first touched.
#[cfg(not(loom))]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        let start = ptr.addr().next_multiple_of(HUGE_PAGE);
        let end = (ptr.addr() + len) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside the caller's allocation; MADV_HUGEPAGE changes
            // neither its contents nor its validity, only how the kernel backs it. Its result
            // is advice: a refusal changes nothing.
            unsafe { libc::madvise(ptr.with_addr(start).cast(), end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(all(target_os = "linux", not(miri))))]
    let _ = (ptr, len);
}

/// `n` empty entries (`NONE`), on huge pages where they span some.
fn empty_entries(n: usize) -> Box<[AtomicU32]> {
    #[cfg(not(loom))]
    // SAFETY: a zeroed `AtomicU32` is 0, `NONE`.
    return unsafe { zeroed(n) };
    // loom's atomics are objects of the model, not plain memory: made one by one.
    #[cfg(loom)]
    (0..n).map(|_| AtomicU32::new(NONE)).collect()
}

/// `n` null pointer slots.
fn null_slots<P>(n: usize) -> Box<[AtomicPtr<P>]> {
    #[cfg(not(loom))]
    // SAFETY: a zeroed `AtomicPtr` is null.
    return unsafe { zeroed(n) };
    #[cfg(loom)]
    (0..n).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect()
}

/// A zeroed boxed slice of `n` values, on huge pages where it spans some.
///
/// # Safety
///
/// All-zero bytes must be a valid `T` (atomics of integers and pointers: 0 and null).
#[cfg(not(loom))]
unsafe fn zeroed<T>(n: usize) -> Box<[T]> {
    let layout = Layout::array::<T>(n).expect("the table sizes are constants that fit");
    if layout.size() == 0 {
        return Vec::new().into_boxed_slice();
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) } as *mut T;
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    // A large zeroed allocation is fresh zero pages from the kernel (calloc maps it), not yet
    // touched: the advice takes effect at the first touch.
    advise_huge_pages(ptr.cast(), layout.size());
    // SAFETY: `ptr` is an allocation of `n` zeroed `T`s made with the layout `Box<[T]>` frees
    // with, and zero bytes are a valid `T` (the caller's contract).
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, n)) }
}

/// Index-addressed atomic pointer slots in segments of `2^BITS` that never move, at most
/// `SEGMENTS` of them: a reader finds slot `i` with two loads and no lock while the writer adds
/// segments (invariant 5).
struct Slots<P, const BITS: u32, const SEGMENTS: usize> {
    segments: Box<[AtomicPtr<AtomicPtr<P>>]>,
}

/// Leaf slots: 2 MiB segments (one huge page each: the real IPv4 table's 565 k leaves sit in
/// three), 2^28 leaves at most.
#[cfg(not(any(miri, loom)))]
type LeafSlots<F> = Slots<RouteData<F>, 18, { 1 << 10 }>;
/// Chunk slots: 32 KiB segments (chunks are few: 4,760 in the real IPv4 table), 2^24 chunks
/// at most, one per first-level entry.
#[cfg(not(any(miri, loom)))]
type ChunkSlots = Slots<ChunkEntries, 12, { 1 << 12 }>;
#[cfg(any(miri, loom))]
type LeafSlots<F> = Slots<RouteData<F>, 4, { 1 << 6 }>;
#[cfg(any(miri, loom))]
type ChunkSlots = Slots<ChunkEntries, 4, { 1 << 6 }>;

impl<P, const BITS: u32, const SEGMENTS: usize> Slots<P, BITS, SEGMENTS> {
    /// The most slots: indices are below it.
    const CAPACITY: usize = SEGMENTS << BITS;

    fn new() -> Self {
        Slots { segments: null_slots(SEGMENTS) }
    }

    /// One segment's layout: aligned to its size up to a huge page, so that a 2 MiB segment
    /// is exactly one.
    #[cfg(not(loom))]
    fn segment_layout() -> Layout {
        let size = std::mem::size_of::<AtomicPtr<P>>() << BITS;
        Layout::from_size_align(size, size.min(HUGE_PAGE)).expect("a power of two")
    }

    /// Slot `index`, which must be in a linked segment (an index published by the writer, or one
    /// it [`Slots::ensure`]d).
    #[inline(always)]
    fn get(&self, index: u32) -> &AtomicPtr<P> {
        // Acquire pairs with the Release in `ensure`: the segment was initialised before.
        let segment = self.segments[(index >> BITS) as usize].load(Ordering::Acquire);
        debug_assert!(!segment.is_null(), "slot {index} has no segment");
        // SAFETY: the segment is linked (the caller's contract), holds `1 << BITS` slots and
        // lives as long as `self` (invariant 5).
        unsafe { &*segment.add((index & ((1 << BITS) - 1)) as usize) }
    }

    /// Links the segment of `index` if it is not yet (the writer only).
    fn ensure(&self, index: u32) {
        let link = &self.segments[(index >> BITS) as usize];
        if link.load(Ordering::Relaxed).is_null() {
            // Release publishes the initialised segment (Acquire in `get`).
            link.store(Self::new_segment(), Ordering::Release);
        }
    }

    /// A segment of null slots, aligned to its size (up to a huge page).
    #[cfg(not(loom))]
    fn new_segment() -> *mut AtomicPtr<P> {
        let layout = Self::segment_layout();
        // SAFETY: the layout has a non-zero size.
        let segment = unsafe { std::alloc::alloc(layout) };
        if segment.is_null() {
            handle_alloc_error(layout);
        }
        // Advice first, then the first touch (the zeroing).
        advise_huge_pages(segment, layout.size());
        // SAFETY: `segment` is `layout.size()` writable bytes; zero bytes are null `AtomicPtr`s.
        unsafe { segment.write_bytes(0, layout.size()) };
        segment.cast()
    }

    #[cfg(loom)]
    fn new_segment() -> *mut AtomicPtr<P> {
        Box::into_raw(null_slots::<P>(1 << BITS)).cast()
    }

    /// Frees a segment made by [`Slots::new_segment`].
    ///
    /// # Safety
    ///
    /// `segment` came from `new_segment` and is freed once; nobody reads it any more.
    unsafe fn free_segment(segment: *mut AtomicPtr<P>) {
        #[cfg(not(loom))]
        // SAFETY: allocated in `new_segment` with this layout (the caller's contract).
        unsafe {
            std::alloc::dealloc(segment.cast(), Self::segment_layout())
        };
        #[cfg(loom)]
        // SAFETY: a boxed slice of `1 << BITS` slots made in `new_segment` (the caller's contract).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(segment, 1 << BITS)) });
    }
}

impl<P, const BITS: u32, const SEGMENTS: usize> Drop for Slots<P, BITS, SEGMENTS> {
    fn drop(&mut self) {
        for link in self.segments.iter() {
            let segment = link.load(Ordering::Relaxed);
            if !segment.is_null() {
                // SAFETY: linked by `ensure`, freed once, here; the table is being dropped.
                unsafe { Self::free_segment(segment) };
            }
        }
    }
}

/// Indices handed back by the epoch collector (invariant 4), for the writer to reuse. Shared
/// with the deferred releases, which may run after the table is gone.
#[derive(Default)]
struct Released {
    leaves: Vec<u32>,
    chunks: Vec<u32>,
}

/// An index allocator over a [`Slots`]: free indices and the next never-used one.
struct Indices {
    free: Vec<u32>,
    next: u32,
}

impl Indices {
    fn new() -> Self {
        // Index 0 is never handed out: a zero entry means "no route".
        Indices { free: Vec::new(), next: 1 }
    }

    fn take<P, const BITS: u32, const SEGMENTS: usize>(&mut self, slots: &Slots<P, BITS, SEGMENTS>) -> u32 {
        if let Some(index) = self.free.pop() {
            return index;
        }
        let index = self.next;
        // A capacity limit like `Vec`'s: 2^28 prefixes of one view is ~500 times the Internet.
        let capacity = Slots::<P, BITS, SEGMENTS>::CAPACITY;
        assert!(
            (index as usize) < capacity,
            "a direct forwarding table holds at most {capacity} of these indices"
        );
        self.next += 1;
        slots.ensure(index);
        index
    }
}

/// What only the writer holding the lock touches.
struct Writer {
    /// The leaf index of every prefix with a best route in this view, by [`source_id`].
    /// Hashed with foldhash, randomly seeded per table: std's SipHash took half of a
    /// refresh's instructions (callgrind, `examples/write_profile.rs`), and the prefixes may
    /// come from peers, so a fixed hash would invite collisions.
    sources: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// The same prefixes up to /24, for the parent search of a removal (see `covers.rs`).
    covers: Covers,
    /// The prefix length of each leaf index.
    lens: Vec<u8>,
    leaf_indices: Indices,
    /// For each chunk index: the sources that end inside that chunk or below it (0: free).
    below: Vec<u32>,
    chunk_indices: Indices,
}

/// The key of a source in [`Writer::sources`].
fn source_id(key: u32, len: u32) -> u64 {
    (key as u64) << 8 | len as u64
}

/// The mask of a prefix length on a 32-bit address.
pub(super) fn mask32(len: u32) -> u32 {
    if len == 0 { 0 } else { !0 << (32 - len) }
}

/// The 8 bits of `addr` below its first `base` bits.
#[inline(always)]
fn position(addr: u32, base: u32) -> usize {
    ((addr >> (32 - STRIDE - base)) & ((1 << STRIDE) - 1)) as usize
}

/// The direct layout of a forwarding table (see the module docs).
pub(crate) struct Direct<F: Family> {
    /// A fixed-size array, so that indexing it with `FIRST_BITS` bits of an address needs no
    /// bounds check (the lookup loop is instruction-bound when the table is in cache).
    first: Box<[AtomicU32; 1 << FIRST_BITS]>,
    leaves: LeafSlots<F>,
    chunks: ChunkSlots,
    /// Padded away from the array pointers above, which every lookup reads: every refresh
    /// stores to the lock word and the bookkeeping.
    writer: CachePadded<Mutex<Writer>>,
    released: Arc<Mutex<Released>>,
}

impl<F: Family> Direct<F> {
    /// An empty table (`F` must be a 32-bit family).
    pub(crate) fn new() -> Self {
        debug_assert_eq!(F::BITS, 32, "the direct layout is for IPv4");
        Direct {
            first: empty_entries(1 << FIRST_BITS).try_into().expect("2^FIRST_BITS entries"),
            leaves: Slots::new(),
            chunks: Slots::new(),
            writer: CachePadded::new(Mutex::new(Writer {
                sources: HashMap::default(),
                covers: Covers::new(),
                lens: vec![0],
                leaf_indices: Indices::new(),
                below: vec![0],
                chunk_indices: Indices::new(),
            })),
            released: Arc::new(Mutex::new(Released::default())),
        }
    }

    /// The chunk of a chunk entry.
    #[inline(always)]
    fn chunk(&self, entry: u32) -> &ChunkEntries {
        // Acquire pairs with the Release that stored the chunk before its index was published.
        let chunk = self.chunks.get(entry & !CHUNK).load(Ordering::Acquire);
        // SAFETY: the entry was read from the table (under the caller's guard, or by the writer,
        // which alone unlinks chunks): its chunk was stored before it was published
        // (invariant 2) and is freed only through the epoch collector after it left the table
        // (invariant 4).
        unsafe { &*chunk }
    }

    /// The entry for `addr`: a leaf index or `NONE`.
    #[inline(always)]
    fn entry(&self, addr: u32) -> u32 {
        // Acquire pairs with the writer's Release stores (invariant 2).
        let mut entry = self.first[(addr >> (32 - FIRST_BITS)) as usize].load(Ordering::Acquire);
        let mut base = FIRST_BITS;
        while entry & CHUNK != 0 {
            entry = self.chunk(entry)[position(addr, base)].load(Ordering::Acquire);
            base += STRIDE;
        }
        entry
    }

    /// The route data of a leaf index (`NONE`: none).
    #[inline(always)]
    fn leaf<'g>(&self, index: u32, _guard: &'g Guard) -> Option<&'g RouteData<F>> {
        if index == NONE {
            return None;
        }
        let data = self.leaves.get(index).load(Ordering::Acquire);
        // SAFETY: the index was read from the table under `_guard`, so its slot holds route data
        // of the tree (invariants 2 and 4) that is retired only after `_guard` is dropped
        // (invariant 3).
        unsafe { data.as_ref() }
    }

    /// The best route's data for the longest prefix that covers `key` (left-aligned).
    #[inline]
    pub(crate) fn lookup<'g>(&self, key: u128, guard: &'g Guard) -> Option<&'g RouteData<F>> {
        self.leaf(self.entry((key >> 96) as u32), guard)
    }

    /// [`Direct::lookup`] for many keys, pipelined: each first-level entry is requested
    /// `AHEAD` keys ahead of its read, each leaf slot a batch ahead.
    pub(crate) fn lookup_batch_extend<'g>(
        &self,
        keys: &[u128],
        _guard: &'g Guard,
        out: &mut Vec<Option<&'g RouteData<F>>>,
    ) {
        out.reserve(keys.len());
        let first_of = |key: u128| &self.first[(key >> (128 - FIRST_BITS)) as usize];
        for batch in keys.chunks(BATCH) {
            // Software pipelining: the entry of key `i + AHEAD` is requested while key `i`'s is
            // read, and every leaf slot is requested as soon as its index is known and read
            // only after the whole batch's entries. The slot itself is kept, not its index, so
            // that the second pass does not find it again.
            let mut slots: [Option<&AtomicPtr<RouteData<F>>>; BATCH] = [None; BATCH];
            for &key in &batch[..AHEAD.min(batch.len())] {
                prefetch(first_of(key));
            }
            for (i, (slot, &key)) in slots.iter_mut().zip(batch).enumerate() {
                if let Some(&ahead) = batch.get(i + AHEAD) {
                    prefetch(first_of(ahead));
                }
                let entry = self.entry((key >> 96) as u32);
                if entry != NONE {
                    let leaf = self.leaves.get(entry);
                    prefetch(leaf);
                    *slot = Some(leaf);
                }
            }
            out.extend(slots[..batch.len()].iter().map(|slot| {
                // SAFETY: as in `leaf`: the slot's index was read from the table under `_guard`
                // (invariants 2 to 4).
                slot.and_then(|slot| unsafe { slot.load(Ordering::Acquire).as_ref() })
            }));
        }
    }

    /// Brings the entries of the prefix (`key`, `len`) up to date with its current best route,
    /// which `best` reads under the lock (see the `fib` module docs).
    pub(crate) fn refresh(&self, key: u128, len: u8, best: impl Fn(&Guard) -> Option<*const RouteData<F>>) {
        self.refresh_each(&[(key, len)], |&prefix| prefix, |_, guard| best(guard));
    }

    /// [`Direct::refresh`] for every item of `items` (the prefix and the current best route
    /// of each), under one lock acquisition and one guard: a bulk add's new destinations,
    /// which come sorted by prefix, so that the entries painted one after the other are near.
    pub(crate) fn refresh_each<T>(
        &self,
        items: &[T],
        prefix: impl Fn(&T) -> (u128, u8),
        best: impl Fn(&T, &Guard) -> Option<*const RouteData<F>>,
    ) {
        // A panic inside a refresh leaves every published entry valid, so a poisoned lock is
        // still usable.
        let mut writer = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let guard = crate::reclaim::pin();
        self.reuse_released(&mut writer);
        for item in items {
            let (key, len) = prefix(item);
            self.refresh_locked(&mut writer, key, len, best(item, &guard));
        }
    }

    /// Stores `data` as the best route's data of the prefix (`key`, `len`): the body of a
    /// refresh, under the writer's lock.
    fn refresh_locked(&self, writer: &mut Writer, key: u128, len: u8, data: Option<*const RouteData<F>>) {
        let len = len as u32;
        let key = (key >> 96) as u32 & mask32(len);
        let id = source_id(key, len);
        let Writer { sources, covers, lens, leaf_indices, below, chunk_indices } = writer;
        match (sources.get(&id).copied(), data) {
            (None, None) => {}
            (Some(index), Some(data)) => {
                // Same prefix, new best route: one store, nothing to repaint.
                let slot = self.leaves.get(index);
                if !std::ptr::eq(slot.load(Ordering::Relaxed), data) {
                    // Release publishes the data (Acquire in `leaf`).
                    slot.store(data as *mut _, Ordering::Release);
                }
            }
            (None, Some(data)) => {
                let index = leaf_indices.take(&self.leaves);
                // Invariant 2: the slot before any entry.
                self.leaves.get(index).store(data as *mut _, Ordering::Release);
                if lens.len() <= index as usize {
                    lens.resize(index as usize + 1, 0);
                }
                lens[index as usize] = len as u8;
                sources.insert(id, index);
                covers.insert(key, len);
                let lens = &*lens;
                // Where nothing longer is painted: lengths never tie, since each prefix has one
                // index.
                let paint =
                    |current: u32| (current == NONE || lens[current as usize] < len as u8).then_some(index);
                let mut chunks = ChunkBook { below, indices: chunk_indices, released: &self.released };
                self.paint_prefix(key, len, &paint, &mut chunks, Change::Add);
            }
            (Some(index), None) => {
                sources.remove(&id);
                covers.remove(key, len);
                // The longest shorter prefix over this one takes its entries back: beyond /24
                // asked of the prefix map length by length (few prefixes are that long), up to
                // /24 found in `covers` (at most three cache lines).
                let index_of = |l: u32| sources.get(&source_id(key & mask32(l), l)).copied();
                let shortest_probed = len.min(covers::MAX_LEN + 1);
                let parent = (shortest_probed..len)
                    .rev()
                    .find_map(index_of)
                    .or_else(|| index_of(covers.longest_below(key, shortest_probed)?))
                    .unwrap_or(NONE);
                let paint = |current: u32| (current == index).then_some(parent);
                let mut chunks = ChunkBook { below, indices: chunk_indices, released: &self.released };
                self.paint_prefix(key, len, &paint, &mut chunks, Change::Remove);
                // The planted bug of the loom mutant check: the index is reusable at once, so a
                // reader that loaded it may read the slot after another prefix took it over.
                #[cfg(rtmgr_mutant = "eager_reuse")]
                leaf_indices.free.push(index);
                #[cfg(not(rtmgr_mutant = "eager_reuse"))]
                {
                    let released = self.released.clone();
                    // SAFETY: the closure only hands the index back; by then no reader that
                    // could have loaded it is left (invariant 4: no entry holds it any more).
                    unsafe { crate::reclaim::retire(move || lock(&released).leaves.push(index)) };
                }
            }
        }
    }

    /// Moves the indices the collector handed back to the free lists.
    fn reuse_released(&self, writer: &mut Writer) {
        let mut released = lock(&self.released);
        writer.leaf_indices.free.append(&mut released.leaves);
        writer.chunk_indices.free.append(&mut released.chunks);
    }

    /// Applies `paint` to the entries of the prefix (`key`, `len`), adding the chunks a longer
    /// prefix needs or dropping those it leaves empty.
    fn paint_prefix(
        &self,
        key: u32,
        len: u32,
        paint: &impl Fn(u32) -> Option<u32>,
        chunks: &mut ChunkBook<'_>,
        change: Change,
    ) {
        let first = (key >> (32 - FIRST_BITS)) as usize;
        if len <= FIRST_BITS {
            self.paint_range(&self.first[first..first + (1 << (FIRST_BITS - len))], paint);
        } else {
            self.paint_below(&self.first[first], FIRST_BITS, key, len, paint, chunks, change);
        }
    }

    /// Applies `paint` to every leaf entry of `entries` and of the chunks they link to.
    fn paint_range(&self, entries: &[AtomicU32], paint: &impl Fn(u32) -> Option<u32>) {
        for entry in entries {
            // Relaxed: only this writer stores entries (invariant 1).
            let current = entry.load(Ordering::Relaxed);
            if current & CHUNK != 0 {
                self.paint_range(self.chunk(current), paint);
            } else if let Some(new) = paint(current) {
                // Release: the leaf slot was stored first (invariant 2).
                entry.store(new, Ordering::Release);
            }
        }
    }

    /// Paints a prefix longer than `base` bits below `link`, the entry (of the level above)
    /// over the chunk for bits `base..base + 8` of `key`.
    #[allow(clippy::too_many_arguments)]
    fn paint_below(
        &self,
        link: &AtomicU32,
        base: u32,
        key: u32,
        len: u32,
        paint: &impl Fn(u32) -> Option<u32>,
        chunks: &mut ChunkBook<'_>,
        change: Change,
    ) {
        let current = link.load(Ordering::Relaxed);
        let pos = position(key, base);
        match change {
            Change::Add => {
                let index = if current & CHUNK != 0 {
                    current & !CHUNK
                } else {
                    // A new chunk, every entry the leaf it replaces, linked once painted.
                    let index = chunks.indices.take(&self.chunks);
                    let chunk: Box<ChunkEntries> = Box::new(std::array::from_fn(|_| AtomicU32::new(current)));
                    self.chunks.get(index).store(Box::into_raw(chunk), Ordering::Release);
                    if chunks.below.len() <= index as usize {
                        chunks.below.resize(index as usize + 1, 0);
                    }
                    index
                };
                chunks.below[index as usize] += 1;
                let chunk = self.chunk(CHUNK | index);
                if len <= base + STRIDE {
                    self.paint_range(&chunk[pos..pos + (1 << (base + STRIDE - len))], paint);
                } else {
                    self.paint_below(&chunk[pos], base + STRIDE, key, len, paint, chunks, change);
                }
                if current & CHUNK == 0 {
                    // Invariant 2: the chunk is complete before readers can reach it.
                    link.store(CHUNK | index, Ordering::Release);
                }
            }
            Change::Remove => {
                debug_assert!(current & CHUNK != 0, "a prefix longer than {base} bits without its chunk");
                let index = current & !CHUNK;
                let chunk = self.chunk(current);
                if len <= base + STRIDE {
                    self.paint_range(&chunk[pos..pos + (1 << (base + STRIDE - len))], paint);
                } else {
                    self.paint_below(&chunk[pos], base + STRIDE, key, len, paint, chunks, change);
                }
                chunks.below[index as usize] -= 1;
                if chunks.below[index as usize] == 0 {
                    // No prefix ends inside it or below any more: every entry is now the leaf of
                    // the longest prefix over the whole chunk, which its link takes back.
                    let uniform = chunk[0].load(Ordering::Relaxed);
                    debug_assert!(chunk.iter().all(|e| e.load(Ordering::Relaxed) == uniform));
                    link.store(uniform, Ordering::Release);
                    let raw = self.chunks.get(index).load(Ordering::Relaxed);
                    // SAFETY: made by `Box::into_raw` above; unlinked just now, so this is its
                    // one owner (`below` is 0: `Drop` will not free it again).
                    let owned = unsafe { Box::from_raw(raw) };
                    let released = chunks.released.clone();
                    // SAFETY: the chunk left the table before (invariant 4): once every guard
                    // pinned now is dropped, no reader holds it.
                    unsafe {
                        crate::reclaim::retire(move || {
                            drop(owned);
                            lock(&released).chunks.push(index);
                        })
                    };
                }
            }
        }
    }

    /// The first-level entry of `key` (a test's view of what a refresh repainted).
    #[cfg(test)]
    pub(super) fn entry_for_test(&self, key: u128) -> u32 {
        self.first[(key >> (128 - FIRST_BITS)) as usize].load(Ordering::Relaxed)
    }

    /// Whether no entry holds a route or a chunk and no chunk is live (the tests' check that
    /// removing every prefix leaves nothing behind).
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        let writer = lock(&self.writer);
        self.first.iter().all(|e| e.load(Ordering::Relaxed) == NONE)
            && writer.sources.is_empty()
            && writer.below.iter().all(|&b| b == 0)
    }
}

/// Add or remove: what a painting does to the chunks on its way.
#[derive(Clone, Copy)]
enum Change {
    Add,
    Remove,
}

/// The writer's chunk bookkeeping, lent to a painting.
struct ChunkBook<'a> {
    below: &'a mut Vec<u32>,
    indices: &'a mut Indices,
    released: &'a Arc<Mutex<Released>>,
}

/// Locks a mutex whose holder cannot leave its data inconsistent (a push, a swap).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<F: Family> Drop for Direct<F> {
    fn drop(&mut self) {
        let writer = lock(&self.writer);
        for (index, &below) in writer.below.iter().enumerate() {
            if below > 0 {
                let raw = self.chunks.get(index as u32).load(Ordering::Relaxed);
                // SAFETY: a live chunk (`below` > 0), made by `Box::into_raw` and owned by the
                // table; the table is being dropped, so no reader is left.
                drop(unsafe { Box::from_raw(raw) });
            }
        }
    }
}
