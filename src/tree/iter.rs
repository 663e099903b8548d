//! Ordered iteration over one version of the tree: address order, then prefix length.
//!
//! Within a node this is a pre-order walk of the binary positions (a prefix before the longer
//! prefixes inside it, the 0 branch before the 1 branch), descending into the child of a nibble
//! when the walk reaches relative length 4.

use super::{Node, STRIDE, position};
use crate::counted::Ref;

/// A point of the walk still to visit.
struct Frame<'a, V: Send + Sync + 'static> {
    node: &'a Node<V>,
    /// Relative length (0..=4; 4 means "the child at `bits`").
    rel: u8,
    /// The `rel` leading bits of the node's nibble.
    bits: u8,
}

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
        let rel = len % STRIDE;
        let bits = if rel == 0 { 0 } else { super::rel_bits(key, len / STRIDE, rel) };
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
        for level in 0..range.1 / STRIDE {
            match node.child(super::nibble(key, level)) {
                Some(child) => node = child,
                None => return iter,
            }
        }
        // Walk the binary positions from the range down to `from`; wherever the path takes the
        // 0 branch, the 1 branch comes later in the order: push it.
        for len in range.1..from_len {
            let level = len / STRIDE;
            let rel = len % STRIDE;
            let bits = if rel == 0 { 0 } else { super::rel_bits(key, level, rel) };
            let bit = (key >> (127 - len as u32)) & 1;
            if bit == 0 {
                iter.stack.push(Frame { node, rel: rel + 1, bits: (bits << 1) | 1 });
            }
            if rel + 1 == STRIDE {
                match node.child(super::nibble(key, level)) {
                    Some(child) => node = child,
                    None => return iter, // nothing at or under `from`
                }
            }
        }
        // At `from`'s position: its subtree comes next (0 branch first), after `from` itself.
        let rel = from_len % STRIDE;
        let bits = if rel == 0 { 0 } else { super::rel_bits(key, from_len / STRIDE, rel) };
        iter.stack.push(Frame { node, rel: rel + 1, bits: (bits << 1) | 1 });
        iter.stack.push(Frame { node, rel: rel + 1, bits: bits << 1 });
        if inclusive {
            iter.first = node.prefix(position(rel, bits));
        }
        iter
    }
}

impl<'a, V: Send + Sync + 'static> Iterator for Iter<'a, V> {
    type Item = &'a Ref<V>;

    fn next(&mut self) -> Option<&'a Ref<V>> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        while let Some(Frame { node, rel, bits }) = self.stack.pop() {
            if rel == STRIDE {
                if let Some(child) = node.child(bits as usize) {
                    self.stack.push(Frame { node: child, rel: 0, bits: 0 });
                }
                continue;
            }
            // Skip a branch with nothing under it: no prefix at or below this position and no
            // child under its nibbles.
            if !has_anything_under(node, rel, bits) {
                continue;
            }
            // Pushed in reverse: the 0 branch must come out first.
            self.stack.push(Frame { node, rel: rel + 1, bits: (bits << 1) | 1 });
            self.stack.push(Frame { node, rel: rel + 1, bits: bits << 1 });
            if let Some(value) = node.prefix(position(rel, bits)) {
                return Some(value);
            }
        }
        None
    }
}

/// Whether the binary position (`rel`, `bits`) of `node` has a prefix or a child at or below it.
fn has_anything_under<V: Send + Sync + 'static>(node: &Node<V>, rel: u8, bits: u8) -> bool {
    let span = STRIDE - rel; // nibble bits below this position
    let first = (bits as u32) << span;
    let count = 1u32 << span;
    let children = (((1u32 << count) - 1) << first) as u16;
    if node.child_bits & children != 0 {
        return true;
    }
    let mut prefixes = 0u16;
    for r in rel..STRIDE {
        let depth = r - rel;
        let start = position(r, bits << depth);
        prefixes |= (((1u32 << (1u32 << depth)) - 1) << start) as u16;
    }
    node.prefix_bits & prefixes != 0
}
