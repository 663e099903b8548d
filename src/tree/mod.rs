//! The concurrent radix tree of destinations: a persistent (path-copying) multibit trie under
//! one atomic root.
//!
//! # Layout
//!
//! Every [`Node`] covers a 4-bit stride of the address (the node at level `d` consumes bits
//! `4d..4d+4`). It holds the prefixes whose length ends inside its stride — relative lengths 1 to
//! 4, plus the default route (relative length 0) at the root: 31 positions numbered heap-style
//! `(1 << rel) - 1 + bits` — and up to 16 children, both as popcount-compressed arrays: a bitmap
//! says which positions are present and the rank of a position's bit is its index in the array.
//! Keeping relative length 4 in the parent (rather than 0 in the child) means the prefixes that
//! end on a nibble boundary, the bulk of real tables (/16, /24, /32, /48), share their parent
//! node instead of each needing a node of their own: 16 /24s fit in one node.
//!
//! A /24 lives in the sixth node from the root, a /48 in the twelfth: an IPv4 lookup touches at
//! most 8 nodes, an IPv6 lookup at most 32. Which prefixes of a node cover an address nibble is
//! one table lookup ([`COVERING`]), so a longest match is one mask-and-count per node visited.
//!
//! # Concurrency: why path copying
//!
//! Nodes are immutable once published. A writer copies the nodes on the path from the root to
//! the changed position (at most 8 small nodes for IPv4), then publishes the new root with one
//! compare-and-swap on the [`EpochCell`]; if another writer published first it rebuilds on the
//! new root and tries again. So:
//!
//! - readers take no lock and never wait: they load the root under an epoch guard and walk
//!   immutable nodes;
//! - writers take no lock either; they synchronise only through the root CAS (lock-free: a
//!   failed CAS means another writer succeeded);
//! - a **snapshot is one reference count increment on the root** ([`Tree::snapshot`]): the
//!   version it names stays whole while writers go on, whatever the table's size. It holds only
//!   counted references, never a pinned guard, so it does not stop reclamation elsewhere.
//!
//! Costs, stated plainly: every structural write (a destination created or removed) allocates
//! depth-many nodes and retires as many; concurrent structural writes on any prefixes contend on
//! the root (route changes on an existing destination do not touch the tree at all: they swap the
//! destination's route set). A snapshot keeps alive the nodes of its version that writers have
//! replaced since, until it is dropped.
//!
//! # Reclamation
//!
//! Children and prefixes are held by [`Ref`]s, so a node shared by several versions lives until
//! the last version that holds it goes. The root's replaced version is released by the
//! [`EpochCell`] through the epoch collector, which keeps it readable for readers that loaded it.
//!
//! A node's destructor releases its child nodes with [`Ref::release_unreachable`]: a child it
//! held the last unit of is freed at once, not handed to the collector again (invariant 6 of
//! `counted.rs`). That is sound because a node is destroyed only once no reader can reach it,
//! and nodes are reachable only from nodes, from the root cell (which releases through the
//! collector) and from snapshots and iterators (which hold their own unit). So the path a write
//! replaced is freed in one deferred call after one grace period, instead of one node per
//! grace period (a path of 8 nodes took 8 collections to free), and a dropped table frees its
//! tree in one pass. Prefixes (destinations) are released the usual way: handles and routes
//! hold them too.

mod iter;

pub(crate) use iter::Iter;

use crate::cell::EpochCell;
use crate::counted::{Counted, Ref};
use crate::sync::epoch::Guard;

/// Bits of the address consumed by one node.
pub(crate) const STRIDE: u8 = 4;

/// `COVERING[n]`: the prefix positions of a node that cover the address nibble `n`.
const COVERING: [u32; 16] = covering_table();

const fn covering_table() -> [u32; 16] {
    let mut table = [0u32; 16];
    let mut n = 0;
    while n < 16 {
        let mut rel = 0;
        while rel <= STRIDE {
            table[n] |= 1 << position(rel, (n >> (STRIDE - rel)) as u8);
            rel += 1;
        }
        n += 1;
    }
    table
}

/// `UP_TO[rel]`: the positions of relative length at most `rel`.
const UP_TO: [u32; 5] = [0x1, 0x7, 0x7F, 0x7FFF, 0x7FFF_FFFF];

/// The position of the prefix of relative length `rel` (0..=4) with leading bits `bits`.
#[inline]
const fn position(rel: u8, bits: u8) -> u32 {
    (1u32 << rel) - 1 + bits as u32
}

/// The nibble of `key` consumed by a node at `level`.
#[inline]
fn nibble(key: u128, level: u8) -> usize {
    ((key >> (124 - STRIDE as u32 * level as u32)) & 0xF) as usize
}

/// The leading `rel` bits of the nibble at `level`.
#[inline]
fn rel_bits(key: u128, level: u8, rel: u8) -> u8 {
    (nibble(key, level) >> (STRIDE - rel)) as u8
}

/// The rank of bit `bit` in `bitmap`: the index of its entry in the compressed array.
#[inline]
fn rank(bitmap: u32, bit: u32) -> usize {
    (bitmap & ((1u32 << bit) - 1)).count_ones() as usize
}

/// One immutable node of the tree.
pub(crate) struct Node<V: Send + Sync + 'static> {
    /// Which of the 31 prefix positions are present.
    prefix_bits: u32,
    /// Which of the 16 children are present.
    child_bits: u32,
    /// The present prefixes, in position order.
    prefixes: Box<[Ref<V>]>,
    /// The present children, in nibble order.
    children: Box<[Ref<Node<V>>]>,
}

impl<V: Send + Sync + 'static> Drop for Node<V> {
    fn drop(&mut self) {
        for child in std::mem::take(&mut self.children) {
            // SAFETY: a node is destroyed only once no reader can reach it, and a child whose
            // last unit it holds is reachable only through it (see "Reclamation" above).
            unsafe { Ref::release_unreachable(child) };
        }
    }
}

impl<V: Send + Sync + 'static> Node<V> {
    fn empty() -> Self {
        Node { prefix_bits: 0, child_bits: 0, prefixes: Box::new([]), children: Box::new([]) }
    }

    fn is_empty(&self) -> bool {
        self.prefix_bits == 0 && self.child_bits == 0
    }

    #[inline]
    fn prefix(&self, pos: u32) -> Option<&Ref<V>> {
        if self.prefix_bits & (1 << pos) == 0 {
            return None;
        }
        Some(&self.prefixes[rank(self.prefix_bits, pos)])
    }

    #[inline]
    fn child(&self, idx: usize) -> Option<&Node<V>> {
        self.child_ref(idx).map(|c| &**c)
    }

    #[inline]
    fn child_ref(&self, idx: usize) -> Option<&Ref<Node<V>>> {
        if self.child_bits & (1 << idx) == 0 {
            return None;
        }
        Some(&self.children[rank(self.child_bits, idx as u32)])
    }

    /// A copy with the prefix at `pos` set to `value` (or removed).
    fn with_prefix(&self, pos: u32, value: Option<Ref<V>>) -> Node<V> {
        let (prefix_bits, prefixes) = splice(self.prefix_bits, &self.prefixes, pos, value);
        Node { prefix_bits, prefixes, child_bits: self.child_bits, children: self.children.clone() }
    }

    /// A copy with the child at `idx` set to `child` (or removed).
    fn with_child(&self, idx: usize, child: Option<Ref<Node<V>>>) -> Node<V> {
        let (child_bits, children) = splice(self.child_bits, &self.children, idx as u32, child);
        Node { prefix_bits: self.prefix_bits, prefixes: self.prefixes.clone(), child_bits, children }
    }
}

/// A compressed array with the entry at `bit` set to `value` or removed.
fn splice<T: Clone>(bitmap: u32, items: &[T], bit: u32, value: Option<T>) -> (u32, Box<[T]>) {
    let at = rank(bitmap, bit);
    let present = bitmap & (1 << bit) != 0;
    // The exact length: a spare slot would make `into_boxed_slice` reallocate to shrink (a
    // replacement — every node on a path copy above the changed one — is the common case).
    let len = items.len() + usize::from(value.is_some()) - usize::from(present);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&items[..at]);
    let rest = if present { &items[at + 1..] } else { &items[at..] };
    let bitmap = match value {
        Some(v) => {
            out.push(v);
            bitmap | (1 << bit)
        }
        None => bitmap & !(1 << bit),
    };
    out.extend_from_slice(rest);
    (bitmap, out.into_boxed_slice())
}

/// One insertion of [`Tree::insert_batch`]: `value` at `key/len` where the tree holds
/// `expected` (a null pointer: nothing).
pub(crate) struct Insert<V: Send + Sync + 'static> {
    pub(crate) key: u128,
    pub(crate) len: u8,
    pub(crate) expected: *const Counted<V>,
    pub(crate) value: Ref<V>,
}

/// The copy of `node` (at `level`) with every value of `items` in it: the items are sorted by
/// key then length and all lie under `node`, so those of one child are contiguous, and each
/// node on their paths is built once.
fn merge<V: Send + Sync + 'static>(node: &Node<V>, items: &[&Insert<V>], level: u8) -> Node<V> {
    // The prefixes that end in this node's stride.
    let mut prefix_bits = node.prefix_bits;
    let mut here = [None::<&Ref<V>>; 31];
    for item in items.iter().filter(|item| level_of(item.len) == level) {
        let pos = slot(item.key, item.len).pos;
        prefix_bits |= 1 << pos;
        here[pos as usize] = Some(&item.value);
    }
    let mut prefixes = Vec::with_capacity(prefix_bits.count_ones() as usize);
    let mut bits = prefix_bits;
    while bits != 0 {
        let pos = bits.trailing_zeros();
        bits &= bits - 1;
        let value = here[pos as usize].or_else(|| node.prefix(pos)).expect("a set bit has a value");
        prefixes.push(value.clone());
    }
    // The children: the items below this stride, grouped by their nibble here.
    let deeper: Vec<&Insert<V>> = items.iter().copied().filter(|item| level_of(item.len) > level).collect();
    let mut child_bits = node.child_bits;
    let mut children = Vec::with_capacity(16);
    let mut rest = &deeper[..];
    for idx in 0..16usize {
        let under = rest.iter().take_while(|item| nibble(item.key, level) == idx).count();
        let (mine, others) = rest.split_at(under);
        rest = others;
        if mine.is_empty() {
            if let Some(child) = node.child_ref(idx) {
                children.push(child.clone());
            }
        } else {
            let empty = Node::empty();
            let child = node.child(idx).unwrap_or(&empty);
            children.push(Ref::new(merge(child, mine, level + 1)));
            child_bits |= 1 << idx;
        }
    }
    Node {
        prefix_bits,
        child_bits,
        prefixes: prefixes.into_boxed_slice(),
        children: children.into_boxed_slice(),
    }
}

/// A prefix located in the tree: the node at its level and its position there.
struct Slot {
    level: u8,
    pos: u32,
}

/// The node level that holds prefixes of length `len` (the default route is at the root).
#[inline]
fn level_of(len: u8) -> u8 {
    len.saturating_sub(1) / STRIDE
}

fn slot(key: u128, len: u8) -> Slot {
    let level = level_of(len);
    let rel = len - level * STRIDE;
    let bits = if rel == 0 { 0 } else { rel_bits(key, level, rel) };
    Slot { level, pos: position(rel, bits) }
}

/// The radix tree: an atomic root over immutable nodes.
pub(crate) struct Tree<V: Send + Sync + 'static> {
    root: EpochCell<Node<V>>,
}

impl<V: Send + Sync + 'static> Tree<V> {
    /// An empty tree.
    pub(crate) fn new() -> Self {
        Tree { root: EpochCell::new(Ref::new(Node::empty())) }
    }

    /// The current root, readable while `guard` is pinned.
    #[inline]
    pub(crate) fn root<'g>(&self, guard: &'g Guard) -> &'g Node<V> {
        self.root.load(guard)
    }

    /// A counted reference to the current version: an O(1) snapshot.
    pub(crate) fn snapshot(&self, guard: &Guard) -> Ref<Node<V>> {
        self.root.load_ref(guard)
    }

    /// The value stored at exactly `key/len`.
    #[inline]
    pub(crate) fn get<'g>(&self, key: u128, len: u8, guard: &'g Guard) -> Option<&'g Ref<V>> {
        Self::get_in(self.root(guard), key, len)
    }

    /// The value stored at exactly `key/len` in the version rooted at `root`.
    pub(crate) fn get_in(root: &Node<V>, key: u128, len: u8) -> Option<&Ref<V>> {
        let slot = slot(key, len);
        let mut node = root;
        for level in 0..slot.level {
            node = node.child(nibble(key, level))?;
        }
        node.prefix(slot.pos)
    }

    /// The longest prefix of at most `max_len` bits covering `key` whose value `accept`s.
    ///
    /// Takes no lock, writes nothing and allocates nothing.
    #[inline]
    pub(crate) fn longest_match<'g>(
        &self,
        key: u128,
        max_len: u8,
        guard: &'g Guard,
        accept: impl FnMut(&'g V) -> bool,
    ) -> Option<&'g Ref<V>> {
        Self::longest_match_in(self.root(guard), key, max_len, accept)
    }

    /// [`Tree::longest_match`] in the version rooted at `root`.
    pub(crate) fn longest_match_in<'a>(
        root: &'a Node<V>,
        key: u128,
        max_len: u8,
        mut accept: impl FnMut(&'a V) -> bool,
    ) -> Option<&'a Ref<V>> {
        // The nodes on the path, deepest last: at most 128 / 4 of them.
        let mut path: [Option<&'a Node<V>>; 32] = [None; 32];
        let last_level = level_of(max_len);
        let mut node = root;
        let mut depth = 0usize;
        loop {
            path[depth] = Some(node);
            if depth as u8 == last_level {
                break;
            }
            match node.child(nibble(key, depth as u8)) {
                Some(child) => {
                    node = child;
                    depth += 1;
                }
                None => break,
            }
        }
        for level in (0..=depth).rev() {
            let node = path[level].expect("filled on the way down");
            let mut candidates = node.prefix_bits & COVERING[nibble(key, level as u8)];
            if level as u8 == last_level {
                candidates &= UP_TO[(max_len - last_level * STRIDE) as usize];
            }
            while candidates != 0 {
                // Highest position first: positions grow with the prefix length.
                let pos = 31 - candidates.leading_zeros();
                candidates &= !(1 << pos);
                let value = &node.prefixes[rank(node.prefix_bits, pos)];
                if accept(value) {
                    return Some(value);
                }
            }
        }
        None
    }

    /// Every prefix covering `key/len` (itself included when present), shortest first, in the
    /// version rooted at `root`.
    pub(crate) fn covering_in(root: &Node<V>, key: u128, len: u8) -> Vec<&Ref<V>> {
        let mut out = Vec::new();
        let target = slot(key, len);
        let mut node = root;
        let mut level = 0u8;
        loop {
            let mut candidates = node.prefix_bits & COVERING[nibble(key, level)];
            if level == target.level {
                candidates &= UP_TO[(len - level * STRIDE) as usize];
            }
            while candidates != 0 {
                let pos = candidates.trailing_zeros();
                candidates &= !(1 << pos);
                out.push(&node.prefixes[rank(node.prefix_bits, pos)]);
            }
            if level == target.level {
                break;
            }
            match node.child(nibble(key, level)) {
                Some(child) => node = child,
                None => break,
            }
            level += 1;
        }
        out
    }

    /// The values of every prefix inside `key/len` (itself included), in address order then
    /// length, in the version rooted at `root`.
    pub(crate) fn within<'a>(root: &'a Node<V>, key: u128, len: u8) -> Iter<'a, V> {
        let slot = slot(key, len);
        let mut node = root;
        for level in 0..slot.level {
            match node.child(nibble(key, level)) {
                Some(child) => node = child,
                None => return Iter::empty(),
            }
        }
        Iter::at(node, key, len)
    }

    /// Replaces the value at `key/len` with `new` (or removes it), but only if the value there
    /// is still `expected` (a null pointer: no value). On a mismatch nothing changes and `new`
    /// is handed back.
    pub(crate) fn compare_replace(
        &self,
        key: u128,
        len: u8,
        expected: *const Counted<V>,
        new: Option<Ref<V>>,
        guard: &Guard,
    ) -> Result<(), Option<Ref<V>>> {
        let slot = slot(key, len);
        loop {
            let (root_raw, root) = self.root.load_both(guard);
            let current = Self::get_in(root, key, len).map_or(std::ptr::null(), Ref::as_ptr);
            if current != expected {
                return Err(new);
            }
            let new_root = rebuild(root, key, &slot, 0, new.clone()).unwrap_or_else(Node::empty);
            match self.root.compare_swap(root_raw, Ref::new(new_root), guard) {
                Ok(()) => return Ok(()),
                Err(_) => continue, // another writer published first: rebuild on its version
            }
        }
    }

    /// Puts every value of `batch` in the tree in one new version, published by one root CAS,
    /// each node on the way copied once for the whole batch (a single [`Tree::compare_replace`]
    /// per value would copy the path once per value). An insertion whose prefix no longer holds
    /// its `expected` value is left out; the indices of those are returned, and every other
    /// value is in the tree when this returns.
    ///
    /// `batch` must be sorted by key, then length, each prefix at most once, each key masked to
    /// its length.
    pub(crate) fn insert_batch(&self, batch: &[Insert<V>], guard: &Guard) -> Vec<usize> {
        debug_assert!(batch.windows(2).all(|w| (w[0].key, w[0].len) < (w[1].key, w[1].len)));
        loop {
            let (root_raw, root) = self.root.load_both(guard);
            let (ready, stale): (Vec<usize>, Vec<usize>) = (0..batch.len()).partition(|&i| {
                let item = &batch[i];
                Self::get_in(root, item.key, item.len).map_or(std::ptr::null(), Ref::as_ptr) == item.expected
            });
            if ready.is_empty() {
                return stale;
            }
            let items: Vec<&Insert<V>> = ready.iter().map(|&i| &batch[i]).collect();
            let new_root = merge(root, &items, 0);
            if self.root.compare_swap(root_raw, Ref::new(new_root), guard).is_ok() {
                return stale;
            }
            // Another writer published first: check and merge again on its version.
        }
    }

    /// Removes every value `dead` picks, in one new version published by one root CAS; the
    /// nodes holding none of them are shared with the current version. `Err` if another writer
    /// published first (nothing changed then). Returns whether anything was removed.
    pub(crate) fn prune(&self, guard: &Guard, mut dead: impl FnMut(&V) -> bool) -> Result<bool, ()> {
        let (root_raw, root) = self.root.load_both(guard);
        let Some(new_root) = prune_node(root, &mut dead) else {
            return Ok(false);
        };
        self.root.compare_swap(root_raw, Ref::new(new_root), guard).map(|()| true).map_err(|_| ())
    }
}

/// The copy of `node` without the values `dead` picks, or `None` if it has none of them (the
/// node is then shared as it is). The copy may be empty.
fn prune_node<V: Send + Sync + 'static>(
    node: &Node<V>,
    dead: &mut impl FnMut(&V) -> bool,
) -> Option<Node<V>> {
    let mut copy: Option<Node<V>> = None;
    for (i, child) in node.children.iter().enumerate() {
        if let Some(pruned) = prune_node(child, dead) {
            let idx = nth_set_bit(node.child_bits, i);
            let base = copy.take().unwrap_or_else(|| node.with_child(idx as usize, Some(child.clone())));
            copy = Some(base.with_child(idx as usize, (!pruned.is_empty()).then(|| Ref::new(pruned))));
        }
    }
    for (i, value) in node.prefixes.iter().enumerate() {
        if dead(value) {
            let pos = nth_set_bit(node.prefix_bits, i);
            let base = copy.take().unwrap_or_else(|| node.with_prefix(pos, Some(value.clone())));
            copy = Some(base.with_prefix(pos, None));
        }
    }
    copy
}

/// The index of the `n`th set bit of `bitmap`.
fn nth_set_bit(mut bitmap: u32, n: usize) -> u32 {
    for _ in 0..n {
        bitmap &= bitmap - 1;
    }
    bitmap.trailing_zeros()
}

/// The copy of `node` (at `level`) with the slot set to `value`; `None` if the copy is empty.
fn rebuild<V: Send + Sync + 'static>(
    node: &Node<V>,
    key: u128,
    slot: &Slot,
    level: u8,
    value: Option<Ref<V>>,
) -> Option<Node<V>> {
    let copy = if level == slot.level {
        node.with_prefix(slot.pos, value)
    } else {
        let idx = nibble(key, level);
        let empty = Node::empty();
        let child = node.child(idx).unwrap_or(&empty);
        let new_child = rebuild(child, key, slot, level + 1, value).map(Ref::new);
        node.with_child(idx, new_child)
    };
    (!copy.is_empty()).then_some(copy)
}

#[cfg(all(test, not(loom)))]
mod tests;
