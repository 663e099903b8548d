//! The forwarding table against a reference longest-prefix match over a plain map, through
//! random sets and removals on both families' key widths, and its memory release.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::sync::Ordering;
use crate::{Ipv4, Ipv6};
use std::sync::Arc;

/// The reference: best route by (key, len), longest match by trying every length.
struct Model<F: Family> {
    routes: HashMap<(u128, u8), Arc<RouteData<F>>>,
    bits: u8,
}

impl<F: Family> Model<F> {
    fn lookup(&self, key: u128) -> Option<u64> {
        (0..=self.bits).rev().find_map(|l| self.routes.get(&(key & mask(l as u32), l))).map(|d| d.private)
    }
}

/// A key near the prefixes the test uses, so lookups hit them and their edges.
fn probe(rng: &mut StdRng, prefixes: &[(u128, u8)], bits: u8) -> u128 {
    let (key, len) = prefixes[rng.random_range(0..prefixes.len())];
    let noise: u128 = rng.random::<u128>() >> len.min(127);
    let key = if rng.random_bool(0.9) { key | noise } else { rng.random() };
    key & mask(bits as u32)
}

fn run<F: Family>(seed: u64, ops: usize, layout: ForwardingLayout) {
    let bits = F::BITS;
    let mut rng = StdRng::seed_from_u64(seed);
    // A small pool of prefixes, nested on purpose: lengths around every level boundary.
    let lengths: Vec<u8> = [0, 1, 3, 4, 7, 8, 12, 15, 16, 17, 20, 23, 24, 25, 31, 32, 33, 48, 64, 127, 128]
        .into_iter()
        .filter(|&l| l <= bits)
        .collect();
    let base: u128 = rng.random();
    let pool = if cfg!(miri) { 12 } else { 48 };
    let prefixes: Vec<(u128, u8)> = (0..pool)
        .map(|_| {
            let len = lengths[rng.random_range(0..lengths.len())];
            // Mostly under one common /12 so that the prefixes nest and share chunks.
            let key = if rng.random_bool(0.8) {
                (base & mask(12)) | (rng.random::<u128>() >> 12)
            } else {
                rng.random()
            };
            (key & mask(len as u32) & mask(bits as u32), len)
        })
        .collect();
    let fib = Fib::<F>::new(ViewSet::UNICAST, layout);
    let mut model = Model::<F> { routes: HashMap::new(), bits };
    // The table borrows route data (the routing tree owns it): keep all of it to the end.
    let mut owned = Vec::new();
    for op in 0..ops {
        // One refresh, or now and then a batch of up to 12 (`refresh_each`, a bulk add's path;
        // a prefix may come twice: the last one wins, as in the model).
        let batch = if rng.random_bool(0.2) { rng.random_range(2..=12) } else { 1 };
        let mut changes = Vec::new();
        for _ in 0..batch {
            let (key, len) = prefixes[rng.random_range(0..prefixes.len())];
            let data = rng.random_bool(0.65).then(|| Arc::new(RouteData::new(Vec::new()).private(op as u64)));
            match &data {
                Some(d) => model.routes.insert((key, len), d.clone()),
                None => model.routes.remove(&(key, len)),
            };
            changes.push((key, len, data));
        }
        if let [(key, len, data)] = &changes[..] {
            fib.refresh(*key, *len, |_| data.as_ref().map(Arc::as_ptr));
        } else {
            fib.refresh_each(
                &changes,
                |(key, len, _)| (*key, *len),
                |(_, _, data), _| data.as_ref().map(Arc::as_ptr),
            );
        }
        owned.extend(changes.into_iter().filter_map(|(_, _, data)| data));
        let guard = crate::reclaim::pin();
        let keys: Vec<u128> = (0..8).map(|_| probe(&mut rng, &prefixes, bits)).collect();
        for &k in &keys {
            assert_eq!(
                fib.lookup(k, &guard).map(|d| d.private),
                model.lookup(k),
                "seed {seed} op {op} key {k:#x}"
            );
        }
        // The batched lookup (a different code path in each layout) answers alike.
        let mut batched = Vec::new();
        fib.lookup_batch_extend(&keys, &guard, &mut batched);
        let batched: Vec<_> = batched.iter().map(|d| d.map(|d| d.private)).collect();
        let single: Vec<_> = keys.iter().map(|&k| model.lookup(k)).collect();
        assert_eq!(batched, single, "seed {seed} op {op}: lookup_batch_extend");
    }
    // Emptying the table leaves no chunk and no leaf.
    for (key, len) in prefixes {
        fib.refresh(key, len, |_| None);
    }
    assert!(is_empty(&fib), "seed {seed}: something left after every prefix was removed");
}

fn is_empty<F: Family>(fib: &Fib<F>) -> bool {
    match &fib.layout {
        Layout::Compact(compact) => {
            let guard = crate::reclaim::pin();
            compact
                .root
                .iter()
                .all(|s| s.leaf.load(Ordering::Relaxed).is_null() && s.child.load(&guard).is_none())
        }
        Layout::Direct(direct) => direct.is_empty(),
    }
}

/// Operations per seed. Interpreted (miri), an IPv6 operation on a /127 rebuilds a chain of
/// 15 chunks: far fewer there. Under the sanitizers, where every access is an instrumented call,
/// fewer too (the plain test build runs the full count).
#[cfg(not(any(miri, rtmgr_sanitizer)))]
const OPS: [usize; 2] = [2_000, 2_000];
#[cfg(all(rtmgr_sanitizer, not(miri)))]
const OPS: [usize; 2] = [1_000, 1_000];
#[cfg(miri)]
const OPS: [usize; 2] = [60, 8];

/// Seeds per test (each a fresh pool of prefixes).
const SEEDS: u64 = if cfg!(miri) {
    1
} else if cfg!(rtmgr_sanitizer) {
    8
} else {
    20
};

#[test]
fn ipv4_direct_matches_the_reference() {
    for seed in 0..SEEDS {
        run::<Ipv4>(seed, OPS[0], ForwardingLayout::Direct);
    }
}

#[test]
fn ipv4_compact_matches_the_reference() {
    for seed in 0..SEEDS {
        run::<Ipv4>(seed, OPS[0], ForwardingLayout::Compact);
    }
}

#[test]
fn ipv6_matches_the_reference() {
    for seed in 0..SEEDS {
        // The direct layout is for IPv4: an IPv6 table gets the compact one whatever it asks.
        run::<Ipv6>(seed, OPS[1], ForwardingLayout::Direct);
    }
}

#[test]
fn refreshing_with_the_same_route_changes_nothing() {
    let fib = Fib::<Ipv4>::new(ViewSet::UNICAST, ForwardingLayout::Compact);
    let Layout::Compact(compact) = &fib.layout else { panic!("asked for the compact layout") };
    let data = RouteData::new(Vec::new()).private(7);
    let key = 0x0a01_0200u128 << 96;
    fib.refresh(key, 24, |_| Some(&data as *const _));
    let guard = crate::reclaim::pin();
    let chunk = || {
        compact.root[(key >> (128 - compact::ROOT_BITS)) as usize].child.load(&guard).unwrap()
            as *const chunk::Chunk<Ipv4>
    };
    let before = chunk();
    fib.refresh(key, 24, |_| Some(&data as *const _));
    assert!(std::ptr::eq(before, chunk()), "an unchanged route must not rebuild its chunk");
    assert_eq!(fib.lookup(key | 5 << 96, &guard).map(|d| d.private), Some(7));
}

#[test]
fn direct_new_best_route_of_a_prefix_repaints_nothing() {
    let fib = Fib::<Ipv4>::new(ViewSet::UNICAST, ForwardingLayout::Direct);
    let Layout::Direct(direct) = &fib.layout else { panic!("asked for the direct layout") };
    let (a, b, inner) = [1, 2, 3].map(|p| RouteData::<Ipv4>::new(Vec::new()).private(p)).into();
    // A prefix as long as the first level (a /24; a /8 under miri) and one 4 bits longer.
    let len = direct::FIRST_BITS as u8;
    let key = (0x0a01_0200u128 << 96) & mask(len as u32);
    let inside = key | 1 << (126 - len as u32);
    let outside = key | 1 << (127 - len as u32);
    fib.refresh(key, len, |_| Some(&a as *const _));
    fib.refresh(inside, len + 4, |_| Some(&inner as *const _));
    let entries = |k: u128| direct.entry_for_test(k);
    let before = (entries(key), entries(inside));
    fib.refresh(key, len, |_| Some(&b as *const _));
    assert_eq!((entries(key), entries(inside)), before, "a new route of the prefix must keep its entries");
    let guard = crate::reclaim::pin();
    let answer = |k: u128| fib.lookup(k, &guard).map(|d| d.private);
    assert_eq!((answer(key), answer(inside), answer(outside)), (Some(2), Some(3), Some(2)));
    // Removing the longer prefix drops its chunk: the first-level entry is a leaf again.
    fib.refresh(inside, len + 4, |_| None);
    assert_ne!(before.0 & 1 << 31, 0, "the first-level entry linked a chunk");
    assert_eq!(entries(key) & 1 << 31, 0, "the chunk is gone");
    assert_eq!(answer(inside), Some(2));
    fib.refresh(key, len, |_| None);
    assert!(direct.is_empty());
}
