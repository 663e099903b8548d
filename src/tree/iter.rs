//! Ordered iteration over one version of the tree: address order, then prefix length.
//!
//! Within a node this is a pre-order walk of the binary positions (a prefix before the longer
//! prefixes inside it, the 0 branch before the 1 branch); after a position of relative length 4
//! the walk descends into the child of that nibble.

use super::{Node, STRIDE, level_of, nibble, position, rel_bits};
use crate::counted::Ref;

/// A point of the walk still to visit: the binary position (`rel`, `bits`) of `node`, or, with
/// `rel == DESCEND`, the child of `node` at nibble `bits`.
struct Frame<'a, V: Send + Sync + 'static> {
    node: &'a Node<V>,
    rel: u8,
    bits: u8,
}

/// The `rel` of a frame that stands for "the child at `bits`".
const DESCEND: u8 = STRIDE + 1;

/// An iterator over the values of a subtree, in address order then prefix length.
pub(crate) struct Iter<'a, V: Send + Sync + 'static> {
    /// A value to yield before the stack (the starting prefix of an inclusive seek).
    first: Option<&'a Ref<V>>,
    stack: Vec<Frame<'a, V>>,
}

impl<'a, V: Send + Sync + 'static> Iter<'a, V> {
    /// An iterator over nothing.
    pub(crate) fn empty() -> Self {
        Iter { first: None, stack: Vec::new() }
    }

    /// Every value of the version rooted at `root`.
    pub(crate) fn all(root: &'a Node<V>) -> Self {
        Iter { first: None, stack: vec![Frame { node: root, rel: 0, bits: 0 }] }
    }

    /// The values inside `key/len`, where `node` is the node at `len`'s level on `key`'s path.
    pub(crate) fn at(node: &'a Node<V>, key: u128, len: u8) -> Self {
        let (rel, bits) = rel_and_bits(key, len);
        Iter { first: None, stack: vec![Frame { node, rel, bits }] }
    }

    /// The values inside `range` (a `(key, len)` prefix) that come after `from` in iteration
    /// order — and `from` itself first when `inclusive` and present. `from` must lie inside
    /// `range`. This is how enumerations resume: the work is one walk down `from`'s path,
    /// pushing the branches to its right, whatever the number of values before it.
    pub(crate) fn resume(root: &'a Node<V>, range: (u128, u8), from: (u128, u8), inclusive: bool) -> Self {
        let (key, from_len) = from;
        debug_assert!(from_len >= range.1 && key & crate::family::mask(range.1) == range.0);
        let mut iter = Iter::empty();
        // The node holding the range's position.
        let mut node = root;
        for level in 0..level_of(range.1) {
            match node.child(nibble(key, level)) {
                Some(child) => node = child,
                None => return iter,
            }
        }
        // Walk the binary positions from the range down to `from`; wherever the path takes the
        // 0 branch, the 1 branch comes later in the order: push it.
        let (mut rel, mut bits) = rel_and_bits(key, range.1);
        for len in range.1..from_len {
            let bit = ((key >> (127 - len as u32)) & 1) as u8;
            if rel == STRIDE {
                // The next position is in the child of this nibble, at relative length 1.
                match node.child(bits as usize) {
                    Some(child) => node = child,
                    None => return iter, // nothing at or under `from`
                }
                (rel, bits) = (0, 0);
            }
            if bit == 0 {
                iter.stack.push(Frame { node, rel: rel + 1, bits: (bits << 1) | 1 });
            }
            (rel, bits) = (rel + 1, (bits << 1) | bit);
        }
        // At `from`'s position: its subtree comes next, after `from` itself.
        iter.push_below(node, rel, bits);
        if inclusive {
            iter.first = node.prefix(position(rel, bits));
        }
        iter
    }

    /// Pushes what lies strictly below position (`rel`, `bits`) of `node`, 0 branch on top.
    fn push_below(&mut self, node: &'a Node<V>, rel: u8, bits: u8) {
        if rel == STRIDE {
            self.stack.push(Frame { node, rel: DESCEND, bits });
        } else {
            self.stack.push(Frame { node, rel: rel + 1, bits: (bits << 1) | 1 });
            self.stack.push(Frame { node, rel: rel + 1, bits: bits << 1 });
        }
    }
}

/// The relative length and leading bits of `key/len` in the node at its level.
fn rel_and_bits(key: u128, len: u8) -> (u8, u8) {
    let level = level_of(len);
    let rel = len - level * STRIDE;
    (rel, if rel == 0 { 0 } else { rel_bits(key, level, rel) })
}

impl<'a, V: Send + Sync + 'static> Iterator for Iter<'a, V> {
    type Item = &'a Ref<V>;

    fn next(&mut self) -> Option<&'a Ref<V>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        while let Some(Frame { node, rel, bits }) = self.stack.pop() {
            if rel == DESCEND {
                if let Some(child) = node.child(bits as usize) {
                    // Relative length 0 of a child is never used: start at 1.
                    self.push_below(child, 0, 0);
                }
                continue;
            }
            // Skip a branch with nothing under it.
            if !has_anything_under(node, rel, bits) {
                continue;
            }
            self.push_below(node, rel, bits);
            if let Some(value) = node.prefix(position(rel, bits)) {
                return Some(value);
            }
        }
        None
    }
}

/// Whether position (`rel`, `bits`) of `node` has a prefix at or below it, or a child under it.
fn has_anything_under<V: Send + Sync + 'static>(node: &Node<V>, rel: u8, bits: u8) -> bool {
    let span = STRIDE - rel; // nibble bits below this position
    let children = ((1u32 << (1u32 << span)) - 1) << ((bits as u32) << span);
    if node.child_bits & children != 0 {
        return true;
    }
    let mut prefixes = 0u32;
    for depth in 0..=span {
        let start = position(rel + depth, bits << depth);
        prefixes |= ((1u32 << (1u32 << depth)) - 1) << start;
    }
    node.prefix_bits & prefixes != 0
}
