//! Multi-threaded stress test of the lock-free table, with a leak check.
//!
//! Reader threads look up random addresses (`lookup`, `lookup_route`, `most_specific`,
//! `less_specific`, `more_specifics`), clone the `Route`, `Destination` and `NextHop` handles
//! they find, keep some of them for a while (so handles outlive the deletion of their objects)
//! and read them (`info()`, `is_deleted()`, `prefix()`, `routes()`), while writer threads of two
//! entities — each `Registration` shared by several threads — add routes in all three modes on
//! overlapping nested prefixes, update and delete them, delete and re-add next hops, and one
//! entity is deregistered and registered again over and over.
//!
//! Invariants checked while it runs: a lookup never answers with a prefix that does not cover
//! the address; a destination found covers the address and its best route is on it; a route's
//! next hops belong to the route's owner; every handle stays readable, and deletion is
//! permanent (a deleted route, destination or next hop never reads live again); writers get only
//! the errors their races allow.
//!
//! At the end, after dropping everything, the table must be empty, and a counting global
//! allocator (installed by this file: `common::CountingAlloc`, wrapping `System`) must show
//! exactly as many live bytes as before the table was made: nothing leaked. Reclamation goes
//! through crossbeam-epoch's global collector, so the count is read once every worker has been
//! joined and the collector has been flushed many times (`common::settled_live_bytes`, which
//! also runs `rtmgr::collect_garbage`); the test thread itself only orchestrates, so that no
//! garbage waits in a per-thread bag of its own. This must
//! stay the only test in this file: another test's allocations would blur the count.

#![cfg(not(miri))]

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtmgr::{
    AddMode, Destination, EntityConfig, EntityId, Error, Ipv4, NextHop, NextHopData, Preference, Prefix,
    Registration, Route, RouteData, RouteFlags, Selector, Table, ViewSet,
};

#[global_allocator]
static GLOBAL: common::CountingAlloc = common::CountingAlloc;

// ----- the workload --------------------------------------------------------------------------

/// How long the threads run (a bound, not a measurement: nothing is asserted about time).
const RUN_FOR: Duration = Duration::from_millis(2500);
/// Upper bound on each worker's iterations, whatever the machine's speed.
const MAX_ITERATIONS: usize = 400_000;
/// Handles each reader keeps alive across iterations.
const KEPT_HANDLES: usize = 32;
/// Deregister/re-register cycles of entity B.
const MAX_CHURN_CYCLES: usize = 200;

/// Threads of the stress run: 2 readers, 2 writers per entity, 1 re-registering B.
const WORKERS: usize = 7;

const ENTITY_A: EntityId = EntityId::new(13, 0);
const ENTITY_B: EntityId = EntityId::new(14, 0);

/// Overlapping nested prefixes: the chains above three addresses, at lengths on both sides of
/// the tree's stride boundaries.
fn prefixes() -> Vec<Prefix<Ipv4>> {
    let mut out = Vec::new();
    for anchor in ["10.1.2.3", "10.1.3.200", "10.129.0.1"] {
        let addr: Ipv4Addr = anchor.parse().unwrap();
        for len in [0, 4, 7, 8, 9, 12, 15, 16, 17, 20, 23, 24, 25, 28, 31, 32] {
            out.push(Prefix::truncate(addr, len).unwrap());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An address near one of the anchors (low bits random), or anywhere in 10.0.0.0/8.
fn random_address(rng: &mut SmallRng) -> Ipv4Addr {
    const ANCHORS: [u32; 3] = [0x0a01_0203, 0x0a01_03c8, 0x0a81_0001];
    if rng.random_bool(0.8) {
        let anchor = ANCHORS[rng.random_range(0..ANCHORS.len())];
        let low_bits = rng.random_range(0..=12);
        Ipv4Addr::from(anchor ^ (rng.random::<u32>() & ((1 << low_bits) - 1)))
    } else {
        Ipv4Addr::from(0x0a00_0000 | (rng.random::<u32>() & 0x00ff_ffff))
    }
}

/// The next hops of one writer thread: distinct addresses per (entity, thread), so that only
/// this thread deletes them.
fn next_hop_address(entity: u32, thread: u32, k: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, entity as u8, thread as u8, k as u8 + 1)
}

struct Shared {
    table: Table<Ipv4>,
    prefixes: Vec<Prefix<Ipv4>>,
    stop: AtomicBool,
    entity_a: Arc<Registration<Ipv4>>,
    /// Entity B's current registration; `None` while it is being replaced.
    entity_b: RwLock<Option<Arc<Registration<Ipv4>>>>,
    /// Handles writers publish for readers to pick up.
    published: Mutex<Vec<Route<Ipv4>>>,
    reads: AtomicUsize,
    writes: AtomicUsize,
    churn_cycles: AtomicUsize,
}

/// Reads every part of a route handle; checks the invariants that hold at any time.
fn read_route(route: &Route<Ipv4>) {
    let prefix = route.prefix();
    let owner = route.owner().id();
    assert!(owner == ENTITY_A || owner == ENTITY_B, "unknown owner {owner:?}");
    match route.info() {
        Ok(info) => {
            assert_eq!(info.prefix(), prefix);
            assert_eq!(info.owner, owner);
            assert!(!info.next_hops.is_empty());
            for nh in &info.next_hops {
                assert_eq!(nh.owner(), owner, "a route uses only its owner's next hops");
                let _ = (nh.address(), nh.interface(), nh.is_deleted(), nh.data());
            }
        }
        Err(e) => assert_eq!(e, Error::NotFound, "info() of {route:?}"),
    }
    let dest = route.destination();
    assert_eq!(dest.prefix(), prefix);
    let _ = dest.routes().len();
}

/// Deletion is permanent: once a handle reads deleted it never reads live again.
fn check_stays_deleted(route: &Route<Ipv4>, dest: &Destination<Ipv4>, nh: &NextHop<Ipv4>) {
    if route.is_deleted() {
        assert_eq!(route.info().unwrap_err(), Error::NotFound);
        assert!(route.is_deleted(), "a deleted route came back");
    }
    if dest.is_deleted() {
        assert!(dest.routes().is_empty(), "a deleted destination has routes");
        assert!(dest.info(ViewSet::ALL).deleted);
        assert!(dest.is_deleted(), "a deleted destination came back");
    }
    if nh.is_deleted() {
        assert!(nh.is_deleted(), "a deleted next hop came back");
    }
}

fn reader(shared: &Shared, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let table = &shared.table;
    let mut kept_routes: Vec<Route<Ipv4>> = Vec::new();
    let mut kept_dests: Vec<Destination<Ipv4>> = Vec::new();
    let mut kept_hops: Vec<NextHop<Ipv4>> = Vec::new();
    for _ in 0..MAX_ITERATIONS {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let addr = random_address(&mut rng);
        let view = if rng.random_bool(0.8) { ViewSet::UNICAST } else { ViewSet::MULTICAST };
        {
            let guard = table.pin();
            if let Some(hops) = table.lookup(addr, view, &guard) {
                assert!(!hops.is_empty() && hops.len() <= 2, "lookup gave {} next hops", hops.len());
                for nh in hops {
                    let _ = (nh.address(), nh.interface());
                }
            }
            if let Some((prefix, data)) = table.lookup_route(addr, view, &guard) {
                assert!(prefix.contains(addr), "lookup_route of {addr} answered {prefix}");
                assert!(!data.flags.contains(RouteFlags::INACTIVE), "an inactive route was used");
                assert!(data.views.intersects(view));
            }
        }
        match table.most_specific(addr, view, Selector::Best) {
            Ok(m) => {
                let dest = m.destination.clone();
                assert!(dest.prefix().contains(addr), "most_specific of {addr} answered {}", dest.prefix());
                if let Some(info) = &m.route {
                    assert_eq!(info.prefix(), dest.prefix());
                    assert!(info.views.intersects(view));
                    let route = info.route.clone();
                    read_route(&route);
                    let nh = info.next_hops[0].clone();
                    assert_eq!(nh.owner(), info.owner);
                    keep(&mut kept_routes, route, &mut rng);
                    keep(&mut kept_hops, nh, &mut rng);
                }
                if rng.random_bool(0.1) {
                    match table.less_specific(&dest, view, Selector::Best) {
                        Ok(up) => assert!(
                            up.destination.prefix().covers(&dest.prefix())
                                && up.destination.prefix() != dest.prefix()
                        ),
                        Err(e) => assert_eq!(e, Error::NotFound),
                    }
                }
                keep(&mut kept_dests, dest, &mut rng);
            }
            Err(e) => assert_eq!(e, Error::NotFound, "most_specific of {addr}"),
        }
        if rng.random_bool(0.02) {
            let within: Prefix<Ipv4> = Prefix::truncate(addr, 16).unwrap();
            for m in table.more_specifics(within, ViewSet::ALL, Selector::Best) {
                assert!(within.covers(&m.destination.prefix()));
            }
        }
        if rng.random_bool(0.05) {
            let picked = {
                let published = shared.published.lock().unwrap();
                (!published.is_empty()).then(|| published[rng.random_range(0..published.len())].clone())
            };
            if let Some(route) = picked {
                read_route(&route);
                keep(&mut kept_routes, route, &mut rng);
            }
        }
        if !kept_routes.is_empty() && !kept_dests.is_empty() && !kept_hops.is_empty() {
            let r = &kept_routes[rng.random_range(0..kept_routes.len())];
            let d = &kept_dests[rng.random_range(0..kept_dests.len())];
            let n = &kept_hops[rng.random_range(0..kept_hops.len())];
            check_stays_deleted(r, d, n);
            read_route(r);
        }
        shared.reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// Keeps `item` in a bounded set, dropping a random older one when full.
fn keep<T>(kept: &mut Vec<T>, item: T, rng: &mut SmallRng) {
    if kept.len() < KEPT_HANDLES {
        kept.push(item);
    } else {
        let i = rng.random_range(0..kept.len());
        kept[i] = item;
    }
}

/// One writer thread of an entity. `registration` gives the entity's current registration (for
/// B it changes as B is re-registered). Returns when told to stop.
fn writer(
    shared: &Shared,
    entity: u32,
    thread_no: u32,
    seed: u64,
    registration: impl Fn() -> Option<Arc<Registration<Ipv4>>>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    // The routes this thread made through the registration it holds now.
    let mut mine: Vec<Route<Ipv4>> = Vec::new();
    let mut current: Option<Arc<Registration<Ipv4>>> = None;
    for _ in 0..MAX_ITERATIONS {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let Some(reg) = registration() else {
            thread::yield_now();
            continue;
        };
        if !current.as_ref().is_some_and(|c| Arc::ptr_eq(c, &reg)) {
            // A new registration: the old one's routes are not ours to change any more.
            mine.clear();
            current = Some(reg.clone());
        }
        // Two next hops; add_next_hop returns the live one if it exists.
        let hops: Vec<NextHop<Ipv4>> = (0..2)
            .map(|k| {
                let addr = next_hop_address(entity, thread_no, k);
                reg.add_next_hop(addr, entity * 10 + thread_no, NextHopData::default()).unwrap().0
            })
            .collect();
        let action = rng.random_range(0..100);
        if action < 50 || mine.is_empty() {
            let prefix = shared.prefixes[rng.random_range(0..shared.prefixes.len())];
            let count = rng.random_range(1..=2);
            let data = RouteData::new(hops[..count].to_vec())
                .preference(Preference::new(rng.random_range(0..3) * 10, rng.random_range(0..3)))
                .views(if rng.random_bool(0.7) {
                    ViewSet::UNICAST
                } else {
                    ViewSet::UNICAST | ViewSet::MULTICAST
                })
                .flags(if rng.random_bool(0.1) { RouteFlags::INACTIVE } else { RouteFlags::NONE })
                .neighbour(rng.random_bool(0.5).then(|| hops[rng.random_range(0..2)].clone()))
                .private(thread_no as u64);
            let mode = [AddMode::Neighbour, AddMode::First, AddMode::New][rng.random_range(0..3)];
            let (route, outcome) = reg.add_route_with(prefix, data, mode).unwrap();
            assert_eq!(route.prefix(), prefix);
            if outcome.created {
                if rng.random_bool(0.05) {
                    shared.published.lock().unwrap().push(route.clone());
                }
                mine.push(route);
            }
        } else if action < 75 {
            let route = &mine[rng.random_range(0..mine.len())];
            let metric = rng.random_range(0..3);
            let inactive = rng.random_bool(0.1);
            match reg.update_route(route, |d| {
                d.preference.metric = metric;
                d.next_hops = vec![hops[0].clone()];
                d.neighbour = None;
                d.flags = if inactive { RouteFlags::INACTIVE } else { RouteFlags::NONE };
            }) {
                Ok(outcome) => assert!(!outcome.created),
                // Another thread of the same entity deleted it.
                Err(e) => assert_eq!(e, Error::NotFound, "update_route"),
            }
        } else if action < 97 {
            let route = mine.swap_remove(rng.random_range(0..mine.len()));
            match reg.delete_route(route) {
                Ok(_) => {}
                Err(e) => assert_eq!(e, Error::NotFound, "delete_route"),
            }
        } else {
            // Delete a next hop: routes that list it keep a handle that reads deleted.
            let nh = &hops[rng.random_range(0..2)];
            reg.delete_next_hop(nh).unwrap();
            assert!(nh.is_deleted());
        }
        shared.writes.fetch_add(1, Ordering::Relaxed);
    }
    drop(mine);
    drop(current);
}

/// Deregisters entity B and registers it again, until told to stop.
fn churn(shared: &Shared) {
    for cycle in 0..MAX_CHURN_CYCLES {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        thread::sleep(Duration::from_millis(if cycle % 2 == 0 { 5 } else { 20 }));
        let old = shared.entity_b.write().unwrap().take();
        // Dropping the last reference deregisters; writers may still hold one for a moment.
        drop(old);
        let new = loop {
            match shared.table.register(EntityConfig::new(ENTITY_B).default_preference(10)) {
                Ok(reg) => break reg,
                Err(Error::AlreadyExists) => thread::yield_now(),
                Err(e) => panic!("re-registering B: {e}"),
            }
        };
        *shared.entity_b.write().unwrap() = Some(Arc::new(new));
        shared.churn_cycles.fetch_add(1, Ordering::Relaxed);
    }
}

/// A short round of the same calls from as many threads, so that lazily initialised
/// process-wide state (the epoch collector and its per-thread records) exists before the
/// baseline is taken.
fn warm_up() {
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(ENTITY_A)).unwrap();
    let (nh, _) = reg.add_next_hop(next_hop_address(1, 1, 1), 1, NextHopData::default()).unwrap();
    let (route, _) = reg.add_route(prefixes()[3], RouteData::new(vec![nh])).unwrap();
    thread::scope(|s| {
        let threads: Vec<_> = (0..WORKERS)
            .map(|_| {
                s.spawn(|| {
                    let _ = table.most_specific(Ipv4Addr::new(10, 1, 2, 3), ViewSet::UNICAST, Selector::Best);
                })
            })
            .collect();
        common::join_all(threads);
    });
    make_a_thread_park(&reg);
    reg.delete_route(route).unwrap();
}

/// The next-hop map's locks park contended threads through `parking_lot_core`, which allocates
/// a global table (about 1 KiB, grown only past five parked threads) the first time any thread
/// parks, and never frees it. Writers contend in the stress run, so that must happen before the
/// baseline, for sure: a few slow destructors are queued on the epoch collector, and two threads
/// update one next hop until they have all run. Replacing a next hop's data retires the old data
/// while the map's lock is held, and a retirement now and then runs a collection — so a slow
/// destructor runs while one thread holds the lock, and the other has to park.
fn make_a_thread_park(reg: &Registration<Ipv4>) {
    const SLOW: usize = 16;
    let slow_left = Arc::new(AtomicUsize::new(SLOW));
    {
        let guard = crossbeam_epoch::pin();
        for _ in 0..SLOW {
            let left = slow_left.clone();
            guard.defer(move || {
                thread::sleep(Duration::from_millis(2));
                left.fetch_sub(1, Ordering::SeqCst);
            });
        }
        guard.flush();
    }
    thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut private = 0;
                    while slow_left.load(Ordering::SeqCst) > 0 {
                        private += 1;
                        let data = NextHopData { private, ..Default::default() };
                        reg.add_next_hop(next_hop_address(1, 1, 1), 1, data).unwrap();
                    }
                })
            })
            .collect();
        common::join_all(threads);
    });
}

/// Runs the workers until `RUN_FOR` has passed (or they hit their iteration bounds).
fn run_workers(shared: &Shared) {
    thread::scope(|s| {
        let mut workers = Vec::new();
        for r in 0..2u64 {
            workers.push(s.spawn(move || reader(shared, 100 + r)));
        }
        for t in 0..2u32 {
            workers.push(
                s.spawn(move || writer(shared, 1, t, 200 + t as u64, || Some(shared.entity_a.clone()))),
            );
        }
        for t in 0..2u32 {
            workers.push(s.spawn(move || {
                writer(shared, 2, t, 300 + t as u64, || shared.entity_b.read().unwrap().clone());
            }));
        }
        workers.push(s.spawn(move || churn(shared)));
        assert_eq!(workers.len(), WORKERS);
        let start = Instant::now();
        while start.elapsed() < RUN_FOR && !workers.iter().all(|w| w.is_finished()) {
            thread::sleep(Duration::from_millis(20));
        }
        shared.stop.store(true, Ordering::Relaxed);
        common::join_all(workers);
    });
}

/// Drops everything the run made, checking on the way that the table ends empty and that
/// handles outlive their objects.
fn tear_down(shared: Shared) {
    // Something actually happened (bounded by iteration counts, not by time).
    assert!(shared.reads.load(Ordering::Relaxed) > 100, "readers did too little");
    assert!(shared.writes.load(Ordering::Relaxed) > 100, "writers did too little");
    assert!(shared.churn_cycles.load(Ordering::Relaxed) >= 1, "B was never re-registered");

    let Shared { table, prefixes, entity_a, entity_b, published, .. } = shared;
    drop(prefixes);
    let published = published.into_inner().unwrap();
    assert!(!published.is_empty());
    drop(Arc::into_inner(entity_a).expect("every writer is joined"));
    drop(entity_b.into_inner().unwrap());
    // Published handles outlive their routes' deletion and the deregistrations.
    for route in &published {
        assert!(route.is_deleted());
        assert_eq!(route.info().unwrap_err(), Error::NotFound);
        assert!(route.destination().is_deleted());
        assert!(!route.owner().is_registered());
    }
    drop(published);

    assert_eq!(table.route_count(), 0);
    assert_eq!(table.destination_count(), 0);
    assert!(table.more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best).is_empty());
    assert!(table.entities().is_empty());
    drop(table);
}

#[test]
fn concurrent_readers_and_writers_keep_invariants_and_leak_nothing() {
    // This thread only orchestrates: everything that may retire rtmgr objects runs on threads
    // that are gone before the live bytes are read (see `common::on_fresh_thread`).
    common::on_fresh_thread(warm_up);
    let baseline = common::settled_live_bytes();

    let shared = common::on_fresh_thread(|| {
        let table = Table::<Ipv4>::new();
        Shared {
            prefixes: prefixes(),
            stop: AtomicBool::new(false),
            entity_a: Arc::new(table.register(EntityConfig::new(ENTITY_A).default_preference(10)).unwrap()),
            entity_b: RwLock::new(Some(Arc::new(
                table.register(EntityConfig::new(ENTITY_B).default_preference(10)).unwrap(),
            ))),
            published: Mutex::new(Vec::new()),
            reads: AtomicUsize::new(0),
            writes: AtomicUsize::new(0),
            churn_cycles: AtomicUsize::new(0),
            table,
        }
    });
    run_workers(&shared);
    common::on_fresh_thread(move || tear_down(shared));

    let after = common::settled_live_bytes();
    assert_eq!(
        after, baseline,
        "live heap bytes: {baseline} before the table, {after} after dropping everything"
    );
}
