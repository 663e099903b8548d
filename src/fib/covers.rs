//! Which IPv4 prefixes of length 0 to 24 the direct layout holds, arranged so that "the longest
//! held prefix shorter than this one that covers it" reads at most four cache lines.
//!
//! The direct layout's writer needs that answer whenever a prefix leaves the table: its entries
//! go back to that prefix (its *parent*). Asking the prefix map once per shorter length cost up
//! to 24 hash probes per removal, about a sixth of a churn writer's time
//! (`examples/write_profile.rs`, withdraw + re-announce pairs: 249 k/s with the probes, 300 k/s
//! with none).
//!
//! The lengths come in three levels of 8: lengths 0..=8 in one block, 9..=16 in one block per
//! /8, 17..=24 in one block per /16. A block is 512 bits (one cache line): the prefixes of up to
//! 8 more bits below the block's own prefix, numbered as in a binary heap (bit `2^d - 1 + b` for
//! the prefix `d` bits longer with those bits `b`). So the prefixes that cover an address inside
//! a block all sit in that block, and the three blocks of an address (and the index entry of
//! its /16) are all that a search reads. The last level has a block only for the /16s that ever
//! held a prefix of length 17 to 24 (18,265 of the 65,536 in the shipped table: 1.1 MiB, plus a
//! 256 KiB index); the first two levels have all 257 of theirs.
//!
//! Only the writer holding the direct layout's lock touches this (it lives in its `Writer`).

/// Longest prefix length this index holds.
pub(super) const MAX_LEN: u32 = 24;

/// Bits of address per level.
const LEVEL_BITS: u32 = 8;

/// One block: a complete binary tree of depth 8 below the block's prefix, 511 of its 512 bits.
type Block = [u64; 8];

/// The held prefixes of length `0..=MAX_LEN`.
pub(super) struct Covers {
    /// Level 0 (lengths 0..=8, length 0 at bit 0) in block 0, level 1 (lengths 9..=16) in
    /// blocks `1 + /8`.
    upper: Box<[Block]>,
    /// Level 2 (lengths 17..=24): the block of each /16 in `lower`, as `1 + position` (0: none
    /// yet). A block stays once made: a /16 that held long prefixes is likely to again.
    lower_of: Box<[u32]>,
    lower: Vec<Block>,
}

/// Where a prefix's bit is: in `upper` (block index) or in `lower` (by /16).
enum Place {
    Upper(usize),
    Lower(usize),
}

impl Covers {
    /// No prefix held.
    pub(super) fn new() -> Self {
        Covers {
            upper: vec![[0u64; 8]; 1 + (1 << LEVEL_BITS)].into_boxed_slice(),
            lower_of: vec![0u32; 1 << (2 * LEVEL_BITS)].into_boxed_slice(),
            lower: Vec::new(),
        }
    }

    /// The block and bit of the prefix (`key`, `len`), `len <= MAX_LEN`.
    #[inline]
    fn position(key: u32, len: u32) -> (Place, usize) {
        debug_assert!(len <= MAX_LEN);
        // Length 0 is level 0's root; lengths 8 i + 1 ..= 8 i + 8 are level i, depth 1..=8.
        let level = len.saturating_sub(1) / LEVEL_BITS;
        let base = level * LEVEL_BITS;
        let depth = len - base;
        let below = if depth == 0 { 0 } else { (key << base >> (32 - depth)) as usize };
        let bit = (1 << depth) - 1 + below;
        let place = match level {
            0 => Place::Upper(0),
            1 => Place::Upper(1 + (key >> 24) as usize),
            _ => Place::Lower((key >> 16) as usize),
        };
        (place, bit)
    }

    /// The block at `place`, if it exists.
    fn block(&self, place: Place) -> Option<&Block> {
        match place {
            Place::Upper(i) => Some(&self.upper[i]),
            Place::Lower(slash16) => match self.lower_of[slash16] {
                0 => None,
                n => Some(&self.lower[n as usize - 1]),
            },
        }
    }

    /// Records that the prefix (`key`, `len`) is held (`key` masked to `len`); a prefix longer
    /// than `MAX_LEN` is not recorded.
    pub(super) fn insert(&mut self, key: u32, len: u32) {
        if len > MAX_LEN {
            return;
        }
        let (place, bit) = Self::position(key, len);
        let block = match place {
            Place::Upper(i) => &mut self.upper[i],
            Place::Lower(slash16) => {
                if self.lower_of[slash16] == 0 {
                    self.lower.push([0; 8]);
                    // At most 2^16 blocks, so the count fits.
                    self.lower_of[slash16] = self.lower.len() as u32;
                }
                &mut self.lower[self.lower_of[slash16] as usize - 1]
            }
        };
        block[bit / 64] |= 1 << (bit % 64);
    }

    /// Records that the prefix (`key`, `len`) is no longer held (nothing for one longer than
    /// `MAX_LEN`).
    pub(super) fn remove(&mut self, key: u32, len: u32) {
        if len > MAX_LEN {
            return;
        }
        let (place, bit) = Self::position(key, len);
        let block = match place {
            Place::Upper(i) => &mut self.upper[i],
            Place::Lower(slash16) => match self.lower_of[slash16] {
                0 => return,
                n => &mut self.lower[n as usize - 1],
            },
        };
        block[bit / 64] &= !(1 << (bit % 64));
    }

    /// Whether the prefix (`key`, `len`) is held.
    fn contains(&self, key: u32, len: u32) -> bool {
        let (place, bit) = Self::position(key, len);
        self.block(place).is_some_and(|block| block[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// The length of the longest held prefix that covers `key` and is shorter than `limit`
    /// (`limit <= MAX_LEN + 1`), if any.
    pub(super) fn longest_below(&self, key: u32, limit: u32) -> Option<u32> {
        debug_assert!(limit <= MAX_LEN + 1);
        // The lengths of one level share a block, so after the first test of a level the rest
        // are cache hits.
        (0..limit).rev().find(|&len| self.contains(key & super::direct::mask32(len), len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fib::direct::mask32;
    use std::collections::HashSet;

    /// Against a set of prefixes, with random inserts and removals over a few /16s (so that
    /// prefixes nest at every level).
    #[test]
    fn longest_below_matches_a_set() {
        let mut covers = Covers::new();
        let mut held: HashSet<(u32, u32)> = HashSet::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let iterations = if cfg!(miri) { 300 } else { 20_000 };
        for _ in 0..iterations {
            let r = next();
            // Addresses in 10.0.0.0/15 or 10.128.0.0/16, lengths 0..=24.
            let key = 0x0a00_0000 | (r as u32 & 0x0001_ffff) << 7 | ((r >> 40) as u32 & 1) << 23;
            let len = (r >> 32) as u32 % (MAX_LEN + 1);
            let prefix = (key & mask32(len), len);
            if r >> 63 == 0 {
                covers.insert(prefix.0, prefix.1);
                held.insert(prefix);
            } else {
                covers.remove(prefix.0, prefix.1);
                held.remove(&prefix);
            }
            let probe = key ^ (next() as u32 & 0xff);
            let limit = (next() % (MAX_LEN as u64 + 2)) as u32;
            let expected = (0..limit).rev().find(|&l| held.contains(&(probe & mask32(l), l)));
            assert_eq!(covers.longest_below(probe, limit), expected, "probe {probe:#x} limit {limit}");
        }
    }

    /// Every length has its own bit: inserting all 25 prefixes over one address and removing
    /// them longest first gives every answer in turn.
    #[test]
    fn every_length_is_distinct() {
        let mut covers = Covers::new();
        let key = 0xc0a8_0101;
        for len in 0..=MAX_LEN {
            covers.insert(key & mask32(len), len);
        }
        for len in (0..=MAX_LEN).rev() {
            assert_eq!(covers.longest_below(key, MAX_LEN + 1), Some(len));
            covers.remove(key & mask32(len), len);
        }
        assert_eq!(covers.longest_below(key, MAX_LEN + 1), None);
    }
}
