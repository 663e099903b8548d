//! Models of the compiled forwarding table (`src/fib/`) through the public API, on a table that
//! keeps one for unicast (the loom build's default has none, so that the other models stay
//! small).
//!
//! - Compact layout: the root array is 16 slots under loom (`ROOT_BITS` = 4), so a /8 and a /16
//!   below it sit in two chunk levels: every kind of link — root slot, chunk, child entry,
//!   fallback — is exercised.
//! - Direct layout: 4-bit levels under loom (a 16-entry first level, 16-entry chunks), so a /8
//!   and a /16 sit one and three chunks down; removing the /16 collapses its chunks and hands
//!   its leaf index back through the collector.

#![cfg(loom)]

use rtmgr::{
    EntityConfig, EntityId, ForwardingLayout, Ipv4, NextHopData, Preference, Prefix, Registration, Route,
    RouteData, Table, TableConfig, ViewSet,
};
use rtmgr_loom_tests::loom::thread;
use rtmgr_loom_tests::{check, reclaim};

fn table(forwarding_layout: ForwardingLayout) -> Table<Ipv4> {
    Table::with_config(TableConfig {
        forwarding: ViewSet::UNICAST,
        forwarding_layout,
        ..TableConfig::default()
    })
    .unwrap()
}

fn outer() -> Prefix<Ipv4> {
    "10.0.0.0/8".parse().unwrap()
}

fn inner() -> Prefix<Ipv4> {
    "10.1.0.0/16".parse().unwrap()
}

/// An entity with one next hop, and route data through it with `private` as its tag.
fn entity(table: &Table<Ipv4>, protocol: u32) -> (Registration<Ipv4>, impl Fn(u64, u32) -> RouteData<Ipv4>) {
    let reg = table.register(EntityConfig::new(EntityId::new(protocol, 0))).unwrap();
    let (nh, _) = reg.add_next_hop([192, 0, 2, protocol as u8].into(), 1, NextHopData::default()).unwrap();
    (reg, move |private, preference| {
        RouteData::new(vec![nh.clone()]).private(private).preference(Preference::new(preference, 0))
    })
}

/// The entity's routes on the /8 (tag 1) and on the /16 (tag 2), both of preference 10.
fn nested_routes(
    reg: &Registration<Ipv4>,
    data: &impl Fn(u64, u32) -> RouteData<Ipv4>,
) -> (Route<Ipv4>, Route<Ipv4>) {
    let (outer_route, _) = reg.add_route(outer(), data(1, 10)).unwrap();
    let (inner_route, _) = reg.add_route(inner(), data(2, 10)).unwrap();
    (outer_route, inner_route)
}

/// A thread that looks up 10.1.2.3 (under the /16) once, under its own guard, and returns the
/// tag of the route data it found.
fn spawn_lookup_under_inner(table: &Table<Ipv4>) -> thread::JoinHandle<Option<u64>> {
    let table = table.clone();
    thread::spawn(move || {
        let guard = table.pin();
        table.lookup_data([10, 1, 2, 3].into(), ViewSet::UNICAST, &guard).map(|d| d.private)
    })
}

/// What the forwarding table and the tree answer for `addr`, read under one guard.
fn answers(table: &Table<Ipv4>, addr: [u8; 4]) -> (Option<u64>, Option<u64>) {
    let guard = table.pin();
    let fib = table.lookup_data(addr.into(), ViewSet::UNICAST, &guard).map(|d| d.private);
    let tree = table.lookup_route(addr.into(), ViewSet::UNICAST, &guard).map(|(_, d)| d.private);
    (fib, tree)
}

/// A lookup reads the route data its answer points at while a writer replaces the /8's best
/// route (its chunk is rebuilt and the /16's chunk gets a new fallback) and then deletes the
/// /16 (its chunk goes, the /8's chunk is rebuilt without the child), with reclamation driven.
///
/// Proves: the answer is one that some moment of the writes allows (the /16's route, or the /8's
/// new route once the /16 is gone — never the /8's first route, which a lookup under the /16 can
/// only see if a fallback or leaf were lost), the data and every chunk read stay alive until the
/// guard goes, and at rest the forwarding table agrees with the tree; every object is destroyed
/// exactly once (the quarantine of `counted.rs` covers chunks and route sets).
#[test]
fn lookup_races_best_route_changes() {
    check(|| {
        let table = table(ForwardingLayout::Compact);
        let (reg, data) = entity(&table, 1);
        let (outer_route, inner_route) = nested_routes(&reg, &data);
        let reader = spawn_lookup_under_inner(&table);
        reg.update_route(&outer_route, |d| *d = data(3, 10)).unwrap();
        reg.delete_route(inner_route).unwrap();
        reclaim(4);
        let found = reader.join().unwrap();
        assert!(matches!(found, Some(2 | 3)), "lookup under the /16 answered {found:?}");
        let (fib, tree) = answers(&table, [10, 1, 2, 3]);
        assert_eq!(tree, Some(3), "the tree's best route");
        assert_eq!(fib, tree, "the forwarding table diverged from the tree");
        drop(outer_route);
        drop(reg);
        drop(table);
    });
}

/// Two entities add a route to the same prefix at once: each writer refreshes the forwarding
/// table after its own compare-and-swap, in either order.
///
/// Proves: the refreshes converge — whichever runs last read the tree after both changes — so
/// at rest the forwarding table answers with the better route (preference 10), as the tree does.
/// Catches `stale_refresh` (the best route read before the forwarding lock is taken).
#[test]
fn concurrent_refreshes_converge() {
    check(|| {
        let table = table(ForwardingLayout::Compact);
        let (first, first_data) = entity(&table, 1);
        let (second, second_data) = entity(&table, 2);
        let worse = thread::spawn(move || {
            second.add_route(outer(), second_data(2, 20)).unwrap();
            second
        });
        first.add_route(outer(), first_data(1, 10)).unwrap();
        let second = worse.join().unwrap();
        let (fib, tree) = answers(&table, [10, 9, 9, 9]);
        assert_eq!(tree, Some(1), "the tree's best route");
        assert_eq!(fib, tree, "the forwarding table diverged from the tree");
        drop(first);
        drop(second);
        drop(table);
    });
}

/// Direct layout: a lookup under the /16 reads its leaf index, then the index's slot, while a
/// writer deletes the /16 (its entries repainted with the /8's index, its chunks collapsed, its
/// index handed back through the epoch collector), drives reclamation, and adds 11.0.0.0/8,
/// which takes a free index — the /16's, once the collector has released it.
///
/// Proves: the lookup answers the /16's or the /8's route, never the new prefix's — an index is
/// reused only after every reader that could have loaded it has dropped its guard — and the
/// chunks it walks stay alive meanwhile; at rest the table agrees with the tree. Catches
/// `eager_reuse` (the index handed back at once).
#[test]
fn direct_index_reuse_waits_for_readers() {
    check(|| {
        let table = table(ForwardingLayout::Direct);
        let (reg, data) = entity(&table, 1);
        let (outer_route, inner_route) = nested_routes(&reg, &data);
        let reader = spawn_lookup_under_inner(&table);
        reg.delete_route(inner_route).unwrap();
        reclaim(4);
        let (other_route, _) = reg.add_route("11.0.0.0/8".parse().unwrap(), data(3, 10)).unwrap();
        let found = reader.join().unwrap();
        assert!(
            matches!(found, Some(1 | 2)),
            "lookup under the /16 answered data of another prefix: {found:?}"
        );
        for (addr, expected) in [([10, 1, 2, 3], 1), ([11, 1, 2, 3], 3)] {
            let (fib, tree) = answers(&table, addr);
            assert_eq!(tree, Some(expected), "the tree's best route");
            assert_eq!(fib, tree, "the forwarding table diverged from the tree");
        }
        drop((outer_route, other_route));
        drop(reg);
        drop(table);
    });
}
