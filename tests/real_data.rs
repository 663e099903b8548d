//! The real routing tables shipped in `data/` (564,580 IPv4 and 167,903 IPv6 announcements,
//! `prefix/len origin-asn`), loaded through the public API and checked against a naive
//! reference.
//!
//! One entity announces every line: a next hop per origin AS (address derived from the AS
//! number, interface = the AS number) and one route per line with metric = the AS number and the
//! origin's next hop as neighbour, so the doubly announced `215.0.0.0/16` becomes one destination
//! with two routes (AS721 best: lower metric). A second entity adds covering routes over half of
//! the address space (the data's prefixes do not nest), so that lookups also fall back to
//! shorter prefixes, and miss elsewhere.
//!
//! Checked: every add's outcome, the destination and route counts, the ordered enumeration of
//! the whole table, every exact match, `less_specific` on a sample, and for 1,000,000 seeded
//! random addresses per family (half inside random table prefixes, half uniform — in `2000::/3`
//! for IPv6) that `lookup`, `lookup_route` and `most_specific` give exactly the answer of a
//! reference that scans one hash map per prefix length from the longest to the shortest. Then
//! both entities deregister and the table must be empty.

#![cfg(not(miri))]

mod common;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

use common::Announcement;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtmgr::{
    AddMode, EntityConfig, EntityId, Error, Family, Ipv4, Ipv6, NextHop, NextHopData, Preference, Prefix,
    RouteData, Selector, Table, ViewSet,
};

/// Random addresses checked per family.
const ADDRESSES: usize = 1_000_000;
/// Destinations whose less-specific destination is checked.
const LESS_SPECIFIC_SAMPLE: usize = 20_000;
/// The interface of the covering routes' next hop (no AS number is this large in the data).
const COVER_INTERFACE: u32 = u32::MAX;

trait RealFamily: Family {
    const FILE: &'static str;
    const LINES: usize;
    /// The address as a left-aligned 128-bit key.
    fn bits(addr: Self::Addr) -> u128;
    fn from_bits(bits: u128) -> Self::Addr;
    /// The next-hop address of an origin AS.
    fn origin_address(asn: u32) -> Self::Addr;
    /// Covering prefixes added by the second entity.
    fn covering() -> Vec<Prefix<Self>>;
    /// A uniformly random address of the part of the space worth probing (left-aligned key).
    fn uniform(rng: &mut StdRng) -> u128;
}

impl RealFamily for Ipv4 {
    const FILE: &'static str = common::IPV4_FILE;
    const LINES: usize = common::IPV4_LINES;
    fn bits(addr: Ipv4Addr) -> u128 {
        (u32::from(addr) as u128) << 96
    }
    fn from_bits(bits: u128) -> Ipv4Addr {
        Ipv4Addr::from((bits >> 96) as u32)
    }
    fn origin_address(asn: u32) -> Ipv4Addr {
        Ipv4Addr::from(asn)
    }
    /// Every other /6 (the data's shortest prefixes are /8s).
    fn covering() -> Vec<Prefix<Ipv4>> {
        (0..64u32).step_by(2).map(|i| Prefix::new(Ipv4Addr::from(i << 26), 6).unwrap()).collect()
    }
    fn uniform(rng: &mut StdRng) -> u128 {
        (rng.random::<u32>() as u128) << 96
    }
}

impl RealFamily for Ipv6 {
    const FILE: &'static str = common::IPV6_FILE;
    const LINES: usize = common::IPV6_LINES;
    fn bits(addr: Ipv6Addr) -> u128 {
        u128::from(addr)
    }
    fn from_bits(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }
    fn origin_address(asn: u32) -> Ipv6Addr {
        Ipv6Addr::from((0xfe80u128 << 112) | asn as u128)
    }
    /// Every other /12 of 2000::/3 (the data's shortest prefix is a /16).
    fn covering() -> Vec<Prefix<Ipv6>> {
        (0..512u128)
            .step_by(2)
            .map(|i| Prefix::new(Ipv6Addr::from((1u128 << 125) | (i << 116)), 12).unwrap())
            .collect()
    }
    fn uniform(rng: &mut StdRng) -> u128 {
        (1u128 << 125) | (rng.random::<u128>() >> 3)
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - len as u32) }
}

/// A multiplicative hasher: the reference does millions of lookups of random keys, and SipHash
/// at the tests' optimisation level would dominate the run time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u128(&mut self, v: u128) {
        let folded = (v as u64) ^ ((v >> 64) as u64).rotate_left(29);
        self.0 = (folded ^ (folded >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 ^= self.0 >> 29;
    }
}

type KeyMap<V> = HashMap<u128, V, BuildHasherDefault<KeyHasher>>;

/// What a prefix should answer: its best route's metric and next-hop interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Expected {
    metric: u32,
    interface: u32,
}

/// The naive reference: one map per prefix length.
struct Reference {
    by_len: Vec<KeyMap<Expected>>,
    /// The lengths present, longest first.
    lengths: Vec<u8>,
}

impl Reference {
    fn new(width: u8) -> Self {
        Reference { by_len: (0..=width).map(|_| KeyMap::default()).collect(), lengths: Vec::new() }
    }

    /// Records a route; returns whether it is now the prefix's best (lowest metric; ties keep
    /// the older route).
    fn insert(&mut self, key: u128, len: u8, route: Expected) -> bool {
        let map = &mut self.by_len[len as usize];
        if map.is_empty() {
            self.lengths.push(len);
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
        match map.get(&key) {
            Some(old) if old.metric <= route.metric => false,
            _ => {
                map.insert(key, route);
                true
            }
        }
    }

    /// The longest prefix of at most `max_len` bits covering `key`.
    fn longest(&self, key: u128, max_len: u8) -> Option<(u128, u8, Expected)> {
        self.lengths.iter().filter(|&&len| len <= max_len).find_map(|&len| {
            let k = key & mask(len);
            self.by_len[len as usize].get(&k).map(|e| (k, len, *e))
        })
    }

    fn destinations(&self) -> usize {
        self.by_len.iter().map(HashMap::len).sum()
    }
}

fn check_family<F: RealFamily>(seed: u64) {
    let lines: Vec<Announcement<F>> = common::load(F::FILE);
    assert_eq!(lines.len(), F::LINES, "lines in {}", F::FILE);

    let table = Table::<F>::new();
    let origin = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(20)).unwrap();
    let cover = table.register(EntityConfig::new(EntityId::new(3, 0)).default_preference(1)).unwrap();
    let mut reference = Reference::new(F::BITS);

    // The covering routes.
    let (cover_nh, _) =
        cover.add_next_hop(F::origin_address(0), COVER_INTERFACE, NextHopData::default()).unwrap();
    let covering = F::covering();
    for &p in &covering {
        let (_, outcome) = cover.add_route(p, RouteData::new(vec![cover_nh.clone()])).unwrap();
        assert!(outcome.created && outcome.best_changed);
        reference.insert(F::bits(p.addr()), p.len(), Expected { metric: 0, interface: COVER_INTERFACE });
    }

    // One next hop per origin, one route per line.
    let mut hops: HashMap<u32, NextHop<F>> = HashMap::new();
    for a in &lines {
        let nh = hops
            .entry(a.origin)
            .or_insert_with(|| {
                let (nh, created) = origin
                    .add_next_hop(F::origin_address(a.origin), a.origin, NextHopData::default())
                    .unwrap();
                assert!(created, "next hop of AS{} already existed", a.origin);
                nh
            })
            .clone();
        let data =
            RouteData::new(vec![nh.clone()]).neighbour(Some(nh)).preference(Preference::new(0, a.origin));
        let (route, outcome) = origin.add_route_with(a.prefix, data, AddMode::Neighbour).unwrap();
        let now_best = reference.insert(
            F::bits(a.prefix.addr()),
            a.prefix.len(),
            Expected { metric: a.origin, interface: a.origin },
        );
        assert!(outcome.created, "{} AS{}: a new neighbour must create a route", a.prefix, a.origin);
        assert_eq!(outcome.best_changed, now_best, "{} AS{}: best_changed", a.prefix, a.origin);
        assert_eq!(route.prefix(), a.prefix);
    }

    let destinations = reference.destinations();
    if F::BITS == 32 {
        // The one doubly announced prefix (data/README.md).
        assert_eq!(destinations, F::LINES - 1 + covering.len());
    }
    assert_eq!(table.destination_count(), destinations, "destination_count");
    assert_eq!(table.route_count(), F::LINES + covering.len(), "route_count");

    check_enumeration_and_exact(&table, &lines, &reference);
    check_less_specific(&table, &lines, &reference, seed);
    check_random_addresses(&table, &lines, &reference, seed);

    // Deregistration withdraws everything.
    drop(origin);
    assert_eq!(table.route_count(), covering.len());
    assert_eq!(table.destination_count(), covering.len());
    let guard = table.pin();
    let probe = lines[lines.len() / 2].prefix;
    let found = table.lookup(probe.addr(), ViewSet::UNICAST, &guard).map(|h| h[0].interface());
    let covered = covering.iter().any(|c| c.covers(&probe));
    assert_eq!(found, covered.then_some(COVER_INTERFACE), "lookup of {probe} after deregistration");
    drop(guard);
    drop(cover);
    assert_eq!(table.route_count(), 0);
    assert_eq!(table.destination_count(), 0);
    assert!(table.more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best).is_empty());
}

/// The whole table in enumeration order, and every announced prefix by exact match.
fn check_enumeration_and_exact<F: RealFamily>(
    table: &Table<F>,
    lines: &[Announcement<F>],
    reference: &Reference,
) {
    let mut want: Vec<(u128, u8)> = reference
        .by_len
        .iter()
        .enumerate()
        .flat_map(|(len, map)| map.keys().map(move |&k| (k, len as u8)))
        .collect();
    want.sort_unstable();
    let got: Vec<(u128, u8)> = table
        .more_specifics(Prefix::default_route(), ViewSet::UNICAST, Selector::Best)
        .iter()
        .map(|m| (F::bits(m.destination.prefix().addr()), m.destination.prefix().len()))
        .collect();
    assert_eq!(got.len(), want.len(), "destinations enumerated");
    assert!(got == want, "the enumeration is not the sorted set of prefixes");

    for (i, a) in lines.iter().enumerate() {
        let m = table.exact(a.prefix, ViewSet::UNICAST, Selector::Best).unwrap();
        assert_eq!(m.destination.prefix(), a.prefix);
        let best = m.route.expect("an announced prefix has a best route");
        let want = reference.by_len[a.prefix.len() as usize][&F::bits(a.prefix.addr())];
        assert_eq!(best.preference, Preference::new(20, want.metric), "best route of {}", a.prefix);
        assert_eq!(best.next_hops[0].interface(), want.interface);
        // Reading every route list would double the run time: a sample suffices.
        if i % 16 == 0 {
            let routes = m.destination.routes();
            assert!(routes.iter().any(|r| r.preference.metric == a.origin), "AS{} at {}", a.origin, a.prefix);
            assert!(routes.windows(2).all(|w| w[0].preference <= w[1].preference), "order at {}", a.prefix);
        }
    }
    // The doubly announced prefix: two routes, the lower AS best.
    if F::BITS == 32 {
        let p: Prefix<F> = "215.0.0.0/16".parse().unwrap();
        let m = table.exact(p, ViewSet::UNICAST, Selector::Best).unwrap();
        let metrics: Vec<u32> = m.destination.routes().iter().map(|r| r.preference.metric).collect();
        assert_eq!(metrics, [721, 749]);
        assert_eq!(table.is_best(&m.route.unwrap().route).unwrap(), ViewSet::UNICAST);
    }
}

/// `less_specific` of sampled destinations is their covering prefix, if any.
fn check_less_specific<F: RealFamily>(
    table: &Table<F>,
    lines: &[Announcement<F>],
    reference: &Reference,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1e55);
    for _ in 0..LESS_SPECIFIC_SAMPLE {
        let a = lines[rng.random_range(0..lines.len())];
        let dest = table.exact(a.prefix, ViewSet::UNICAST, Selector::Best).unwrap().destination;
        let got = table.less_specific(&dest, ViewSet::UNICAST, Selector::Best);
        let want = reference.longest(F::bits(a.prefix.addr()), a.prefix.len() - 1);
        match (got, want) {
            (Ok(m), Some((k, len, e))) => {
                assert_eq!((F::bits(m.destination.prefix().addr()), m.destination.prefix().len()), (k, len));
                assert_eq!(m.route.unwrap().next_hops[0].interface(), e.interface);
            }
            (Err(Error::NotFound), None) => {}
            (got, want) => panic!("less_specific of {}: table {got:?}, reference {want:?}", a.prefix),
        }
    }
}

/// Lookups of random addresses: half inside random announced prefixes, half uniform.
fn check_random_addresses<F: RealFamily>(
    table: &Table<F>,
    lines: &[Announcement<F>],
    reference: &Reference,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let width = mask(F::BITS);
    let (mut hits, mut misses) = (0usize, 0usize);
    let mut guard = table.pin();
    let mut batch: Vec<F::Addr> = Vec::new();
    for i in 0..ADDRESSES {
        if i % 4096 == 0 {
            // Re-pin now and then: a guard held for long delays reclamation.
            guard = table.pin();
        }
        let bits = if i % 2 == 0 {
            let a = lines[rng.random_range(0..lines.len())];
            let host = rng.random::<u128>() & !mask(a.prefix.len()) & width;
            F::bits(a.prefix.addr()) | host
        } else {
            F::uniform(&mut rng)
        };
        let addr = F::from_bits(bits);
        let want = reference.longest(bits, F::BITS);

        let hops = table.lookup(addr, ViewSet::UNICAST, &guard);
        let got = hops.map(|h| {
            assert_eq!(h.len(), 1, "one next hop per route");
            h[0].interface()
        });
        assert_eq!(got, want.map(|(_, _, e)| e.interface), "lookup of {addr}");
        if let (Some(h), Some((_, _, e))) = (hops, want) {
            let expected_addr = if e.interface == COVER_INTERFACE { 0 } else { e.interface };
            assert_eq!(h[0].address(), F::origin_address(expected_addr), "next-hop address for {addr}");
        }

        let route = table.lookup_route(addr, ViewSet::UNICAST, &guard);
        let got = route.map(|(p, d)| (F::bits(p.addr()), p.len(), d.preference.metric));
        assert_eq!(got, want.map(|(k, len, e)| (k, len, e.metric)), "lookup_route of {addr}");

        // The batched lookup answers the same, in order (a batch of 37: not a multiple of its
        // 16 lanes, so partial groups are checked too).
        batch.push(addr);
        if batch.len() == 37 {
            let mut answers = Vec::new();
            table.lookup_batch(&batch, ViewSet::UNICAST, &guard, &mut answers);
            assert_eq!(answers.len(), batch.len());
            for (a, got) in batch.iter().zip(&answers) {
                let single = table.lookup_data(*a, ViewSet::UNICAST, &guard);
                assert_eq!(
                    got.map(|d| d as *const RouteData<F>),
                    single.map(|d| d as *const RouteData<F>),
                    "lookup_batch of {a}"
                );
            }
            batch.clear();
        }

        let m = table.most_specific(addr, ViewSet::UNICAST, Selector::Best);
        match (m, want) {
            (Ok(m), Some((k, len, e))) => {
                let p = m.destination.prefix();
                assert_eq!((F::bits(p.addr()), p.len()), (k, len), "most_specific of {addr}");
                assert_eq!(m.route.unwrap().next_hops[0].interface(), e.interface);
                hits += 1;
            }
            (Err(Error::NotFound), None) => misses += 1,
            (got, want) => panic!("most_specific of {addr}: table {got:?}, reference {want:?}"),
        }
    }
    drop(guard);
    // The mix must exercise both outcomes substantially, or the check proves little.
    assert!(hits > ADDRESSES / 2 && misses > ADDRESSES / 20, "hits {hits}, misses {misses}");
}

#[test]
fn ipv4_real_table_answers_like_the_reference() {
    check_family::<Ipv4>(0x5eed_0004);
}

#[test]
fn ipv6_real_table_answers_like_the_reference() {
    check_family::<Ipv6>(0x5eed_0006);
}
