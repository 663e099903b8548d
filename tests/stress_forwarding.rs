//! The compiled forwarding table under concurrent writers and readers.
//!
//! Two writers change the best routes of a small set of nested prefixes non-stop (updates that
//! replace the route data, deletions, re-additions) and flush the epoch garbage often, so that a
//! replaced route set retired too early would be freed while a reader still holds a pointer into
//! it — which AddressSanitizer reports (this file runs under `.ci/asan.sh` and `.ci/tsan.sh`).
//! Two readers look up addresses inside those prefixes, one at a time and in batches, and read
//! every answer: an answer must come from a route whose prefix covers the address.
//! When the writers stop, every lookup must agree with the routing tree (the refreshes of
//! concurrent writers converge).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rtmgr::{
    EntityConfig, EntityId, ForwardingLayout, Ipv4, NextHopData, Prefix, Route, RouteData, Table,
    TableConfig, ViewSet,
};

/// Prefixes nested on purpose, across the forwarding table's levels (compact: root /0–/16, then
/// 8 bits per chunk; direct: first level /0–/24, a chunk below).
const PREFIXES: &[&str] = &[
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.0.0/17",
    "10.1.2.0/23",
    "10.1.2.0/24",
    "10.1.2.128/25",
    "10.1.2.128/32",
    "10.1.3.0/24",
    "10.2.0.0/15",
    "10.2.3.0/24",
    "10.2.3.4/30",
    "10.3.0.0/16",
];

/// How long the writers run (the sanitizers slow everything down; the window stays fixed).
const RUN: Duration = Duration::from_millis(1500);

/// Route data naming its prefix: `private` is the prefix index in the high half, a serial
/// number in the low half.
fn data(index: usize, serial: u64, nh: &rtmgr::NextHop<Ipv4>) -> RouteData<Ipv4> {
    RouteData::new(vec![nh.clone()]).private(((index as u64) << 32) | (serial & 0xffff_ffff))
}

fn prefixes() -> Vec<Prefix<Ipv4>> {
    PREFIXES.iter().map(|p| p.parse().unwrap()).collect()
}

fn random_address(rng: &mut StdRng) -> std::net::Ipv4Addr {
    // Inside 10.0.0.0/14 mostly, where the prefixes are, with some hits on their edges.
    let base = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0));
    let offset =
        if rng.random_bool(0.5) { rng.random_range(0..1 << 18) } else { rng.random_range(0..1 << 24) };
    (base + offset).into()
}

/// The answer must come from a prefix that covers `addr`.
fn check_answer(addr: std::net::Ipv4Addr, answer: Option<&RouteData<Ipv4>>, prefixes: &[Prefix<Ipv4>]) {
    if let Some(d) = answer {
        let index = (d.private >> 32) as usize;
        let prefix = prefixes.get(index).unwrap_or_else(|| panic!("answer with a corrupt index {index}"));
        assert!(prefix.contains(addr), "lookup of {addr} answered {prefix}");
        assert_eq!(d.next_hops.len(), 1, "one next hop per route");
    }
}

#[test]
fn direct_lookups_stay_valid_while_best_routes_change() {
    lookups_stay_valid_while_best_routes_change(ForwardingLayout::Direct);
}

#[test]
fn compact_lookups_stay_valid_while_best_routes_change() {
    lookups_stay_valid_while_best_routes_change(ForwardingLayout::Compact);
}

fn lookups_stay_valid_while_best_routes_change(forwarding_layout: ForwardingLayout) {
    let table =
        Table::<Ipv4>::with_config(TableConfig { forwarding_layout, ..TableConfig::default() }).unwrap();
    let reg = Arc::new(table.register(EntityConfig::new(EntityId::new(8, 0))).unwrap());
    let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default()).unwrap();
    let prefixes = prefixes();
    let stop = AtomicBool::new(false);

    thread::scope(|s| {
        for w in 0..2u64 {
            let (reg, nh, prefixes, stop) = (reg.clone(), nh.clone(), &prefixes, &stop);
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(w);
                // Each writer owns every other prefix: its routes are its own to update.
                let mine: Vec<usize> = (0..prefixes.len()).filter(|i| *i as u64 % 2 == w).collect();
                let mut routes: Vec<Option<Route<Ipv4>>> = vec![None; prefixes.len()];
                let start = Instant::now();
                let mut serial = 0u64;
                while start.elapsed() < RUN {
                    let i = mine[rng.random_range(0..mine.len())];
                    serial += 1;
                    routes[i] = match routes[i].take() {
                        None => Some(reg.add_route(prefixes[i], data(i, serial, &nh)).unwrap().0),
                        Some(route) if rng.random_bool(0.25) => {
                            reg.delete_route(route).unwrap();
                            None
                        }
                        Some(route) => {
                            reg.update_route(&route, |d| *d = data(i, serial, &nh)).unwrap();
                            Some(route)
                        }
                    };
                    if serial % 8 == 0 {
                        rtmgr::collect_garbage();
                    }
                }
                stop.store(true, Ordering::Relaxed);
                routes
            });
        }
        for r in 0..2u64 {
            let (table, prefixes, stop) = (&table, &prefixes, &stop);
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(100 + r);
                let mut lookups = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let addrs: Vec<_> = (0..64).map(|_| random_address(&mut rng)).collect();
                    let guard = table.pin();
                    for &a in &addrs[..16] {
                        check_answer(a, table.lookup_data(a, ViewSet::UNICAST, &guard), prefixes);
                    }
                    let mut answers = Vec::new();
                    table.lookup_batch(&addrs, ViewSet::UNICAST, &guard, &mut answers);
                    for (&a, answer) in addrs.iter().zip(&answers) {
                        check_answer(a, *answer, prefixes);
                    }
                    lookups += 80;
                }
                assert!(lookups > 0);
            });
        }
    });

    // Quiescent: the forwarding table agrees with the routing tree everywhere.
    let mut rng = StdRng::seed_from_u64(7);
    let guard = table.pin();
    for _ in 0..20_000 {
        let a = random_address(&mut rng);
        let fib = table.lookup_data(a, ViewSet::UNICAST, &guard).map(|d| d as *const RouteData<Ipv4>);
        let tree = table.lookup_route(a, ViewSet::UNICAST, &guard).map(|(_, d)| d as *const RouteData<Ipv4>);
        assert_eq!(fib, tree, "forwarding table and tree disagree on {a} after the writers stopped");
    }
}
