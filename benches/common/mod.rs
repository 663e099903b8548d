//! Shared code of the benchmarks (`benches/*.rs` each include it with `#[path]`): reading the
//! shipped tables, the address workloads, and one wrapper per implementation behind the same
//! small traits, so that every workload runs every implementation on the same data.
//!
//! Every address is a left-aligned `u128` key (an IPv4 address in the top 32 bits), as inside
//! rtmgr; the wrappers convert to what each crate takes.

#![allow(dead_code)] // each bench binary uses a part of it

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::Duration;

use flate2::read::GzDecoder;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtmgr::{
    AddMode, EntityConfig, EntityId, Family, Ipv4, Ipv6, NextHop, NextHopData, Preference, Prefix,
    Registration, Route, RouteData, SharedRouteData, Table, TableConfig, ViewSet,
};

// ----- configuration -------------------------------------------------------------------------

/// `RTMGR_BENCH_QUICK=1`: shorter measurements (a full `cargo bench` in a few minutes).
pub fn quick() -> bool {
    std::env::var("RTMGR_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Criterion's settings for these benchmarks: few samples, short windows (the workloads are
/// large and the machine is shared), shorter still with `RTMGR_BENCH_QUICK=1`.
pub fn criterion() -> criterion::Criterion {
    let (warm, measure) = if quick() { (0.2, 0.8) } else { (1.0, 3.0) };
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs_f64(warm))
        .measurement_time(Duration::from_secs_f64(measure))
        .configure_from_args()
}

/// Where the result files go: `benches/results/` in the crate, or `RTMGR_RESULTS_DIR` (for a
/// bench binary copied to another machine, where the crate's path does not exist).
pub fn results_dir() -> PathBuf {
    let dir = std::env::var_os("RTMGR_RESULTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches").join("results"));
    std::fs::create_dir_all(&dir).expect("create benches/results");
    dir
}

// ----- data ----------------------------------------------------------------------------------

pub const IPV4_FILE: &str = "ipv4-prefixes.txt.gz";
pub const IPV6_FILE: &str = "ipv6-prefixes.txt.gz";

/// One line of a data file.
#[derive(Clone, Copy, Debug)]
pub struct Ann<F: Family> {
    pub prefix: Prefix<F>,
    /// The prefix's left-aligned key.
    pub key: u128,
    pub len: u8,
    pub asn: u32,
}

impl<F: Family> Ann<F> {
    pub fn v4(&self) -> u32 {
        (self.key >> 96) as u32
    }
}

/// The shipped tables: the crate's `data/`, or `RTMGR_DATA_DIR` (as for `results_dir`).
pub fn data_dir() -> PathBuf {
    std::env::var_os("RTMGR_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data"))
}

/// Reads a gzipped `prefix/len asn` file of the data directory, in file order.
pub fn load<F: Family>(name: &str) -> Vec<Ann<F>> {
    let path = data_dir().join(name);
    let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let reader = BufReader::with_capacity(1 << 16, GzDecoder::new(file));
    reader
        .lines()
        .map(|line| {
            let line = line.expect("read data");
            let (p, asn) = line.split_once(' ').expect("`prefix/len asn`");
            let prefix: Prefix<F> = p.parse().expect("prefix");
            Ann { prefix, key: F::key(prefix.addr()), len: prefix.len(), asn: asn.parse().expect("asn") }
        })
        .collect()
}

/// The first `n` lines of a table, in a random order (a 10k-prefix table drawn from the real
/// one).
pub fn sample<F: Family>(anns: &[Ann<F>], n: usize, seed: u64) -> Vec<Ann<F>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut v = anns.to_vec();
    for i in 0..n.min(v.len()) {
        let j = rng.random_range(i..v.len());
        v.swap(i, j);
    }
    v.truncate(n);
    v
}

/// Addresses inside table prefixes: a prefix drawn uniformly, its host bits random.
pub fn addresses_inside<F: Family>(anns: &[Ann<F>], n: usize, seed: u64) -> Vec<u128> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let a = &anns[rng.random_range(0..anns.len())];
            let host = u128::MAX.checked_shr(u32::from(a.len)).unwrap_or(0);
            let width = mask_bits(F::BITS);
            a.key | (rng.random::<u128>() & host & width)
        })
        .collect()
}

/// Addresses uniform over the whole address space of the family.
pub fn addresses_uniform<F: Family>(n: usize, seed: u64) -> Vec<u128> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random::<u128>() & mask_bits(F::BITS)).collect()
}

fn mask_bits(bits: u8) -> u128 {
    if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) }
}

// ----- the common interface ------------------------------------------------------------------

/// A longest-prefix-match structure loaded from a table.
pub trait Lpm: Send + Sync {
    /// The name in reports.
    fn name(&self) -> &'static str;
    /// The timed lookup: something cheap that depends on the answer (the location of the
    /// value, or the value itself where the structure stores it inline).
    fn probe(&self, key: u128) -> usize;
    /// The matched prefix length, for the cross-check (`None`: no match).
    fn matched_len(&self, key: u128) -> Option<u8>;
}

/// Sum of matched lengths plus the number of matches: equal answers give equal checksums.
pub fn checksum(lpm: &dyn Lpm, keys: &[u128]) -> u64 {
    keys.iter().map(|&k| lpm.matched_len(k).map_or(0, |l| 1000 + u64::from(l))).sum()
}

/// A mutable single-threaded peer: one prefix at a time.
pub trait Peer: Send + Sync + Sized {
    const NAME: &'static str;
    fn new() -> Self;
    fn insert(&mut self, key: u128, len: u8, value: u32);
    fn remove(&mut self, key: u128, len: u8);
    fn probe(&self, key: u128) -> usize;
    fn matched_len(&self, key: u128) -> Option<u8>;
    /// Called once after the load (e.g. to compress).
    fn finish(self) -> Self {
        self
    }
}

/// Loads a peer by inserting every line one by one.
pub fn load_peer<P: Peer, F: Family>(anns: &[Ann<F>]) -> P {
    let mut p = P::new();
    for a in anns {
        p.insert(a.key, a.len, a.asn);
    }
    p.finish()
}

/// A peer behind `std::sync::RwLock`: what users of a single-threaded structure do today.
pub struct Locked<P: Peer>(pub RwLock<P>);

impl<P: Peer> Locked<P> {
    #[inline]
    pub fn probe(&self, key: u128) -> usize {
        self.0.read().expect("poisoned").probe(key)
    }
    pub fn withdraw(&self, a: (u128, u8)) {
        self.0.write().expect("poisoned").remove(a.0, a.1);
    }
    pub fn announce(&self, a: (u128, u8, u32)) {
        self.0.write().expect("poisoned").insert(a.0, a.1, a.2);
    }
}

/// A plain peer as an [`Lpm`].
pub struct AsLpm<P: Peer>(pub P);

impl<P: Peer> Lpm for AsLpm<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.probe(key)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.matched_len(key)
    }
}

#[inline]
fn v4(key: u128) -> u32 {
    (key >> 96) as u32
}

#[inline]
fn addr_of<T>(v: &T) -> usize {
    v as *const T as usize
}

// ----- rtmgr -----------------------------------------------------------------------------------

/// Families the benchmarks load into rtmgr: where the next hop of an origin AS lives.
pub trait BenchFamily: Family {
    /// The address of the next hop standing for `asn` (one next hop per origin AS).
    fn next_hop(asn: u32) -> Self::Addr;
}

impl BenchFamily for Ipv4 {
    fn next_hop(asn: u32) -> Ipv4Addr {
        Ipv4Addr::from(0x0A00_0000 | (asn & 0x00FF_FFFF))
    }
}

impl BenchFamily for Ipv6 {
    fn next_hop(asn: u32) -> Ipv6Addr {
        Ipv6Addr::from((0x2001_0db8_u128 << 96) | u128::from(asn))
    }
}

/// rtmgr loaded through its full add-route path: one BGP-like entity, a next hop per origin AS,
/// one route per line (`AddMode::New`).
pub struct Rtmgr<F: BenchFamily> {
    // Field order: the registration goes before the table.
    pub routes: Vec<Route<F>>,
    pub hops: HashMap<u32, NextHop<F>>,
    /// With [`Rtmgr::sharing_data`]: one [`SharedRouteData`] per origin AS, given to each of
    /// its routes (as a routing daemon shares a path's attributes).
    pub shared: Option<HashMap<u32, SharedRouteData<F>>>,
    pub reg: Registration<F>,
    pub table: Table<F>,
}

/// Routes added between two epoch flushes during a load, as the project's example does: it
/// frees the replaced tree nodes while they are still in cache.
pub const ROUTES_PER_FLUSH: usize = 16;

/// Lines per [`Registration::add_routes`] call in the batched load.
pub const ADD_ROUTES_BATCH: usize = 4096;

impl<F: BenchFamily> Rtmgr<F> {
    pub fn new() -> Self {
        Self::with_forwarding(TableConfig::default().forwarding)
    }

    /// A table with compiled forwarding tables for `forwarding` only (`ViewSet::NONE`: none).
    pub fn with_forwarding(forwarding: ViewSet) -> Self {
        Self::with_config(TableConfig { forwarding, ..TableConfig::default() })
    }

    /// A table made with `config`.
    pub fn with_config(config: TableConfig) -> Self {
        let table = Table::<F>::with_config(config).expect("config");
        let reg = table
            .register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170))
            .expect("register");
        Rtmgr { routes: Vec::new(), hops: HashMap::new(), shared: None, reg, table }
    }

    /// This table, loaded with one shared route data per origin AS instead of one per route.
    pub fn sharing_data(mut self) -> Self {
        self.shared = Some(HashMap::new());
        self
    }

    /// The route data of one line: shared per origin AS with [`Rtmgr::sharing_data`], else
    /// its own.
    #[inline]
    fn data_for(&mut self, a: &Ann<F>) -> SharedRouteData<F> {
        let nh = self.next_hop(a);
        match &mut self.shared {
            // The entity's default preference given explicitly: data with preference 0 is
            // copied per route (see `SharedRouteData`).
            Some(shared) => shared
                .entry(a.asn)
                .or_insert_with(|| {
                    SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(170, 0)))
                })
                .clone(),
            None => RouteData::new(vec![nh]).into(),
        }
    }

    /// Adds one line: its origin's next hop (created on first use), then the route.
    #[inline]
    pub fn announce(&mut self, a: &Ann<F>) -> Route<F> {
        let data = self.data_for(a);
        self.reg.add_route_with(a.prefix, data, AddMode::New).expect("add_route").0
    }

    /// The next hop of a line's origin, created on first use.
    #[inline]
    fn next_hop(&mut self, a: &Ann<F>) -> NextHop<F> {
        match self.hops.get(&a.asn) {
            Some(nh) => nh.clone(),
            None => {
                let (nh, _) = self
                    .reg
                    .add_next_hop(F::next_hop(a.asn), 1 + (a.asn >> 24), NextHopData::default())
                    .expect("add_next_hop");
                self.hops.insert(a.asn, nh.clone());
                nh
            }
        }
    }

    /// Loads every line, keeping the route handles.
    pub fn load(anns: &[Ann<F>]) -> Self {
        let mut t = Self::new();
        t.routes.reserve(anns.len());
        for chunk in anns.chunks(ROUTES_PER_FLUSH) {
            for a in chunk {
                let r = t.announce(a);
                t.routes.push(r);
            }
            rtmgr::collect_garbage();
        }
        t
    }

    /// Loads every line with [`Registration::add_routes`], [`ADD_ROUTES_BATCH`] lines a call,
    /// without keeping the handles.
    pub fn load_batched_into(mut t: Self, anns: &[Ann<F>]) -> Self {
        for chunk in anns.chunks(ADD_ROUTES_BATCH) {
            let batch: Vec<_> = chunk.iter().map(|a| (a.prefix, t.data_for(a))).collect();
            for outcome in t.reg.add_routes(batch, AddMode::New).expect("add_routes") {
                drop(outcome.expect("add_routes"));
            }
            rtmgr::collect_garbage();
        }
        t
    }

    /// Loads every line without keeping the handles (the load benchmark).
    pub fn load_only(anns: &[Ann<F>]) -> Self {
        Self::load_only_into(Self::new(), anns)
    }

    /// [`Rtmgr::load_only`] into a table made by the caller.
    pub fn load_only_into(mut t: Self, anns: &[Ann<F>]) -> Self {
        for chunk in anns.chunks(ROUTES_PER_FLUSH) {
            for a in chunk {
                drop(t.announce(a));
            }
            rtmgr::collect_garbage();
        }
        t
    }
}

impl<F: BenchFamily> Default for Rtmgr<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: BenchFamily> Lpm for Rtmgr<F> {
    fn name(&self) -> &'static str {
        "rtmgr"
    }
    /// The fast path, one pin per lookup. The LPM benchmarks call [`rtmgr_probe`] with a guard
    /// held over a batch instead.
    fn probe(&self, key: u128) -> usize {
        let guard = self.table.pin();
        rtmgr_probe(&self.table, key, &guard)
    }
    /// The tree walk's answer, checked equal to the compiled forwarding table's.
    fn matched_len(&self, key: u128) -> Option<u8> {
        let guard = self.table.pin();
        let tree = self.table.lookup_route(F::addr(key), ViewSet::UNICAST, &guard);
        let fib = self.table.lookup_data(F::addr(key), ViewSet::UNICAST, &guard);
        assert_eq!(
            tree.map(|(_, d)| d as *const RouteData<F>),
            fib.map(|d| d as *const RouteData<F>),
            "rtmgr's forwarding table and tree disagree on {key:#x}"
        );
        tree.map(|(p, _)| p.len())
    }
}

/// rtmgr's forwarding fast path (the compiled forwarding table) under a guard the caller holds
/// over a batch of lookups: the answer is the best route's data, like a peer's stored value.
#[inline]
pub fn rtmgr_probe<F: Family>(table: &Table<F>, key: u128, guard: &rtmgr::Guard) -> usize {
    table.lookup_data(F::addr(key), ViewSet::UNICAST, guard).map_or(0, |d| d as *const RouteData<F> as usize)
}

/// rtmgr's routing-tree walk (what `lookup` did before the forwarding table), for comparison.
#[inline]
pub fn rtmgr_tree_probe<F: Family>(table: &Table<F>, key: u128, guard: &rtmgr::Guard) -> usize {
    table
        .lookup_route(F::addr(key), ViewSet::UNICAST, guard)
        .map_or(0, |(_, d)| d as *const RouteData<F> as usize)
}

// ----- prefix-trie -----------------------------------------------------------------------------

pub struct PrefixTrie4(pub prefix_trie::PrefixMap<ipnet::Ipv4Net, u32>);
pub struct PrefixTrie6(pub prefix_trie::PrefixMap<ipnet::Ipv6Net, u32>);

fn net4(key: u128, len: u8) -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(Ipv4Addr::from(v4(key)), len).expect("prefix")
}
fn net6(key: u128, len: u8) -> ipnet::Ipv6Net {
    ipnet::Ipv6Net::new(Ipv6Addr::from(key), len).expect("prefix")
}

impl Peer for PrefixTrie4 {
    const NAME: &'static str = "prefix-trie";
    fn new() -> Self {
        PrefixTrie4(prefix_trie::PrefixMap::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(net4(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(&net4(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.get_lpm(&net4(key, 32)).map_or(0, |(_, v)| addr_of(v))
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.get_lpm(&net4(key, 32)).map(|(p, _)| p.prefix_len())
    }
}

impl Peer for PrefixTrie6 {
    const NAME: &'static str = "prefix-trie";
    fn new() -> Self {
        PrefixTrie6(prefix_trie::PrefixMap::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(net6(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(&net6(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.get_lpm(&net6(key, 128)).map_or(0, |(_, v)| addr_of(v))
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.get_lpm(&net6(key, 128)).map(|(p, _)| p.prefix_len())
    }
}

// ----- ip_network_table ------------------------------------------------------------------------

pub struct IpNetworkTable4(pub ip_network_table::IpNetworkTable<u32>);
pub struct IpNetworkTable6(pub ip_network_table::IpNetworkTable<u32>);

fn ipn4(key: u128, len: u8) -> ip_network::Ipv4Network {
    ip_network::Ipv4Network::new(Ipv4Addr::from(v4(key)), len).expect("prefix")
}
fn ipn6(key: u128, len: u8) -> ip_network::Ipv6Network {
    ip_network::Ipv6Network::new(Ipv6Addr::from(key), len).expect("prefix")
}

impl Peer for IpNetworkTable4 {
    const NAME: &'static str = "ip_network_table";
    fn new() -> Self {
        IpNetworkTable4(ip_network_table::IpNetworkTable::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(ipn4(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(ipn4(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.longest_match(IpAddr::V4(Ipv4Addr::from(v4(key)))).map_or(0, |(_, v)| addr_of(v))
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.longest_match(IpAddr::V4(Ipv4Addr::from(v4(key)))).map(|(n, _)| n.netmask())
    }
}

impl Peer for IpNetworkTable6 {
    const NAME: &'static str = "ip_network_table";
    fn new() -> Self {
        IpNetworkTable6(ip_network_table::IpNetworkTable::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(ipn6(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(ipn6(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.longest_match(IpAddr::V6(Ipv6Addr::from(key))).map_or(0, |(_, v)| addr_of(v))
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.longest_match(IpAddr::V6(Ipv6Addr::from(key))).map(|(n, _)| n.netmask())
    }
}

// ----- iptrie ----------------------------------------------------------------------------------

pub struct IpTrie4(pub iptrie::map::RTrieMap<iptrie::Ipv4Prefix, u32>);
pub struct IpTrie6(pub iptrie::map::RTrieMap<iptrie::Ipv6Prefix, u32>);
/// iptrie's level-compressed trie: built by compressing a loaded `RTrieMap` (it is immutable).
pub struct LcTrie4(pub iptrie::map::LCTrieMap<iptrie::Ipv4Prefix, u32>);
pub struct LcTrie6(pub iptrie::map::LCTrieMap<iptrie::Ipv6Prefix, u32>);

fn ipt4(key: u128, len: u8) -> iptrie::Ipv4Prefix {
    iptrie::Ipv4Prefix::new(Ipv4Addr::from(v4(key)), len).expect("prefix")
}
fn ipt6(key: u128, len: u8) -> iptrie::Ipv6Prefix {
    iptrie::Ipv6Prefix::new(Ipv6Addr::from(key), len).expect("prefix")
}

/// iptrie always has a root (`/0`) entry: a match there is no match (the tables have no `/0`).
fn iptrie_len(len: u8) -> Option<u8> {
    (len != 0).then_some(len)
}

impl Peer for IpTrie4 {
    const NAME: &'static str = "iptrie RTrieMap";
    fn new() -> Self {
        IpTrie4(iptrie::map::RTrieMap::with_root(0))
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(ipt4(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(&ipt4(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        addr_of(self.0.lookup(&Ipv4Addr::from(v4(key))).1)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        use iptrie::IpPrefix;
        iptrie_len(self.0.lookup(&Ipv4Addr::from(v4(key))).0.len())
    }
}

impl Peer for IpTrie6 {
    const NAME: &'static str = "iptrie RTrieMap";
    fn new() -> Self {
        IpTrie6(iptrie::map::RTrieMap::with_root(0))
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert(ipt6(key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove(&ipt6(key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        addr_of(self.0.lookup(&Ipv6Addr::from(key)).1)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        use iptrie::IpPrefix;
        iptrie_len(self.0.lookup(&Ipv6Addr::from(key)).0.len())
    }
}

impl LcTrie4 {
    pub fn load<F: Family>(anns: &[Ann<F>]) -> Self {
        LcTrie4(load_peer::<IpTrie4, F>(anns).0.compress())
    }
}

impl LcTrie6 {
    pub fn load<F: Family>(anns: &[Ann<F>]) -> Self {
        LcTrie6(load_peer::<IpTrie6, F>(anns).0.compress())
    }
}

impl Lpm for LcTrie4 {
    fn name(&self) -> &'static str {
        "iptrie LCTrieMap"
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        addr_of(self.0.lookup(&Ipv4Addr::from(v4(key))).1)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        use iptrie::IpPrefix;
        iptrie_len(self.0.lookup(&Ipv4Addr::from(v4(key))).0.len())
    }
}

impl Lpm for LcTrie6 {
    fn name(&self) -> &'static str {
        "iptrie LCTrieMap"
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        addr_of(self.0.lookup(&Ipv6Addr::from(key)).1)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        use iptrie::IpPrefix;
        iptrie_len(self.0.lookup(&Ipv6Addr::from(key)).0.len())
    }
}

// ----- poptrie ---------------------------------------------------------------------------------

/// poptrie: built in bulk (`FromIterator`); its single inserts rebuild contiguous arrays
/// (~25 k inserts/s at 100 k prefixes by its own benchmark), too slow to load a full table.
pub struct Poptrie4(pub poptrie::Poptrie<(u32, u8), u32>);
pub struct Poptrie6(pub poptrie::Poptrie<(u128, u8), u32>);

impl Poptrie4 {
    pub fn build<F: Family>(anns: &[Ann<F>]) -> Self {
        Poptrie4(anns.iter().map(|a| ((a.v4(), a.len), a.asn)).collect())
    }
}

impl Poptrie6 {
    pub fn build<F: Family>(anns: &[Ann<F>]) -> Self {
        Poptrie6(anns.iter().map(|a| ((a.key, a.len), a.asn)).collect())
    }
}

impl Peer for Poptrie4 {
    const NAME: &'static str = "poptrie";
    fn new() -> Self {
        Poptrie4(poptrie::Poptrie::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert((v4(key), len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove((v4(key), len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.lookup(v4(key)).map_or(0, |v| *v as usize)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.lookup_with_prefix(v4(key)).map(|(p, _)| p.1)
    }
}

impl Peer for Poptrie6 {
    const NAME: &'static str = "poptrie";
    fn new() -> Self {
        Poptrie6(poptrie::Poptrie::new())
    }
    fn insert(&mut self, key: u128, len: u8, value: u32) {
        self.0.insert((key, len), value);
    }
    fn remove(&mut self, key: u128, len: u8) {
        self.0.remove((key, len));
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.lookup(key).map_or(0, |v| *v as usize)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.lookup_with_prefix(key).map(|(p, _)| p.1)
    }
}

// ----- rotonda-store -------------------------------------------------------------------------

use rotonda_store::match_options::{IncludeHistory, MatchOptions, MatchType};
use rotonda_store::prefix_record::{Record, RouteStatus};
use rotonda_store::rib::StarCastRib;
use rotonda_store::rib::config::MemoryOnlyConfig;
use rotonda_store::test_types::NoMeta;

/// rotonda-store's concurrent RIB (memory only). Its longest match never returns a default
/// route; the tables have none.
pub struct Rotonda(pub StarCastRib<NoMeta, MemoryOnlyConfig>);

const LONGEST: MatchOptions = MatchOptions {
    match_type: MatchType::LongestMatch,
    include_withdrawn: false,
    include_less_specifics: false,
    include_more_specifics: false,
    mui: None,
    include_history: IncludeHistory::None,
};

fn rotonda_prefix<F: Family>(key: u128, len: u8) -> inetnum::addr::Prefix {
    let addr =
        if F::BITS == 32 { IpAddr::V4(Ipv4Addr::from(v4(key))) } else { IpAddr::V6(Ipv6Addr::from(key)) };
    inetnum::addr::Prefix::new(addr, len).expect("prefix")
}

impl Rotonda {
    pub fn new() -> Self {
        Rotonda(StarCastRib::try_default().expect("rotonda store"))
    }
    pub fn load<F: Family>(anns: &[Ann<F>]) -> Self {
        let r = Self::new();
        for a in anns {
            r.announce::<F>(a.key, a.len);
        }
        r
    }
    #[inline]
    pub fn announce<F: Family>(&self, key: u128, len: u8) {
        self.0
            .insert(
                &rotonda_prefix::<F>(key, len),
                Record::new(1, 0, RouteStatus::Active, NoMeta::Empty),
                None,
            )
            .expect("rotonda insert");
    }
    #[inline]
    pub fn withdraw<F: Family>(&self, key: u128, len: u8) {
        self.0
            .mark_mui_as_withdrawn_for_prefix(&rotonda_prefix::<F>(key, len), 1, 0)
            .expect("rotonda withdraw");
    }
    #[inline]
    pub fn lookup<F: Family>(&self, key: u128) -> Option<u8> {
        let guard = rotonda_store::epoch::pin();
        let bits = F::BITS;
        let r =
            self.0.match_prefix(&rotonda_prefix::<F>(key, bits), &LONGEST, &guard).expect("rotonda match");
        r.prefix.map(|p| p.len())
    }
}

impl Default for Rotonda {
    fn default() -> Self {
        Self::new()
    }
}

/// [`Rotonda`] as an [`Lpm`] of one family.
pub struct RotondaLpm<F: Family>(pub Rotonda, pub std::marker::PhantomData<F>);

impl<F: Family> Lpm for RotondaLpm<F> {
    fn name(&self) -> &'static str {
        "rotonda-store"
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.0.lookup::<F>(key).map_or(0, usize::from)
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        self.0.lookup::<F>(key)
    }
}

// ----- DIR-24-8 ------------------------------------------------------------------------------

/// DIR-24-8 (Gupta, Lin, McKeown 1998): one array entry per /24 (2^24 `u32`s, 64 MiB), and
/// groups of 256 entries for the /24s that hold longer prefixes. An entry is 0 (no route), the
/// index + 1 of the matching line, or (top bit set) a group number. One or two memory reads per
/// lookup: the memory-access limit for IPv4. Built in bulk from the whole table.
pub struct Dir248 {
    tbl24: Vec<u32>,
    long: Vec<u32>,
    /// The prefix length of each line (for the cross-check).
    lens: Vec<u8>,
}

const GROUP: u32 = 1 << 31;

impl Dir248 {
    pub fn build<F: Family>(anns: &[Ann<F>]) -> Self {
        let mut order: Vec<usize> = (0..anns.len()).collect();
        order.sort_by_key(|&i| anns[i].len);
        let mut tbl24 = vec![0u32; 1 << 24];
        advise_huge_pages(&mut tbl24);
        let mut long: Vec<u32> = Vec::new();
        for i in order {
            let (addr, len) = (anns[i].v4(), anns[i].len);
            let value = i as u32 + 1;
            if len <= 24 {
                let start = (addr >> 8) as usize;
                let end = start + (1usize << (24 - len));
                tbl24[start..end].fill(value);
            } else {
                let slot = (addr >> 8) as usize;
                let group = if tbl24[slot] & GROUP != 0 {
                    (tbl24[slot] & !GROUP) as usize
                } else {
                    let g = long.len() / 256;
                    long.extend(std::iter::repeat_n(tbl24[slot], 256));
                    tbl24[slot] = GROUP | g as u32;
                    g
                };
                let start = group * 256 + (addr & 0xFF) as usize;
                let end = start + (1usize << (32 - len));
                long[start..end].fill(value);
            }
        }
        Dir248 { tbl24, long, lens: anns.iter().map(|a| a.len).collect() }
    }

    #[inline]
    pub fn get(&self, addr: u32) -> u32 {
        let e = self.tbl24[(addr >> 8) as usize];
        if e & GROUP == 0 { e } else { self.long[((e & !GROUP) as usize) * 256 + (addr & 0xFF) as usize] }
    }
}

/// Asks for transparent huge pages under `array` (still untouched, so its pages fault in huge),
/// as rtmgr's direct layout does for its own arrays: with Linux's default THP mode (`madvise`)
/// a plain allocation gets 4 KiB pages, and random reads over 64 MiB then miss the TLB on almost
/// every lookup, which made this limit swing by 2x between machines.
fn advise_huge_pages(array: &mut [u32]) {
    const HUGE: usize = 2 << 20;
    let start = (array.as_mut_ptr() as usize).next_multiple_of(HUGE);
    let end = (array.as_mut_ptr() as usize + std::mem::size_of_val(array)) / HUGE * HUGE;
    if end > start {
        // SAFETY: the range lies inside `array`'s allocation; the advice changes no contents.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

impl Lpm for Dir248 {
    fn name(&self) -> &'static str {
        "DIR-24-8 array"
    }
    #[inline]
    fn probe(&self, key: u128) -> usize {
        self.get(v4(key)) as usize
    }
    fn matched_len(&self, key: u128) -> Option<u8> {
        match self.get(v4(key)) {
            0 => None,
            i => Some(self.lens[i as usize - 1]),
        }
    }
}
