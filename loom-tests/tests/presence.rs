//! Models of lazy removal (`src/table/presence.rs`): an emptied destination stays in the tree,
//! a route added to it revives it in place, a sweep takes emptied destinations out, and an
//! enumeration snapshot still sees exactly the destinations present at one instant.
//!
//! Under loom a sweep starts at 3 emptied destinations (`SWEEP_MIN`), so a model can hold two
//! without one. Like `table.rs`, each model builds its table single-threaded first, then races.

#![cfg(loom)]

use rtmgr::{
    DestOptions, EntityConfig, EntityId, Ipv4, NextHopData, Prefix, Registration, Route, RouteData, Selector,
    Table, ViewSet,
};
use rtmgr_loom_tests::loom::thread;
use rtmgr_loom_tests::{check, check_bounded};

fn p(s: &str) -> Prefix<Ipv4> {
    s.parse().unwrap()
}

/// A table with one entity and a route on each prefix.
fn table_with(prefixes: &[&str]) -> (Table<Ipv4>, Registration<Ipv4>, Vec<Route<Ipv4>>) {
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(1, 0))).unwrap();
    let routes = prefixes.iter().map(|s| add(&reg, s)).collect();
    (table, reg, routes)
}

/// Adds a route to `prefix` through the entity's one next hop.
fn add(reg: &Registration<Ipv4>, prefix: &str) -> Route<Ipv4> {
    let (nh, _) = reg.add_next_hop([192, 0, 2, 1].into(), 1, NextHopData::default()).unwrap();
    reg.add_route(p(prefix), RouteData::new(vec![nh])).unwrap().0
}

/// Whether the writer of a snapshot model empties `b` or revives `c` first.
#[derive(Clone, Copy, PartialEq)]
enum First {
    Emptying,
    Revival,
}

/// A destination enumeration is created and read while a writer empties one destination and
/// revives another, in the order `first` says; returns what the enumeration yielded (prefix,
/// whether it had a best route) after checking the table's final state.
///
/// Setup: routes on 10.0.0.0/8 (`a`, kept), 10.1.0.0/16 (`b`, present) and 10.2.0.0/16 (`c`,
/// emptied: still in the tree, absent). The writer deletes `b`'s route and adds one to `c` —
/// a revival in place if no snapshot is open, a fresh destination otherwise. The main thread
/// creates an enumeration of every destination and reads it all.
fn snapshot_race(first: First) -> Vec<String> {
    let (table, reg, mut routes) = table_with(&["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"]);
    reg.delete_route(routes.pop().unwrap()).unwrap();
    let b = routes.pop().unwrap();

    let writer = thread::spawn(move || {
        let c = if first == First::Revival { Some(add(&reg, "10.2.0.0/16")) } else { None };
        reg.delete_route(b).unwrap();
        let c = c.unwrap_or_else(|| add(&reg, "10.2.0.0/16"));
        (reg, c)
    });
    let seen: Vec<(String, bool)> = table
        .enumerate_destinations(DestOptions::default())
        .unwrap()
        .map(|m| (m.destination.prefix().to_string(), m.route.is_some()))
        .collect();
    let (reg, c) = writer.join().unwrap();

    assert_eq!(seen[0], ("10.0.0.0/8".to_string(), true), "the kept destination, with its route");
    let m = table.exact(p("10.2.0.0/16"), ViewSet::ALL, Selector::Best).unwrap();
    assert_eq!(m.route.map(|r| r.route), Some(c.clone()));
    assert!(!c.destination().is_deleted());
    assert_eq!((table.destination_count(), table.route_count()), (2, 2));
    drop((c, routes, reg));
    assert_eq!((table.destination_count(), table.route_count()), (0, 0));
    seen.into_iter().map(|(prefix, _)| prefix).collect()
}

/// `snapshot_race` with the emptying first: the table goes through {a, b} → {a} → {a, c}.
///
/// Proves: the enumeration yields one of those three sets — never {a, b, c}, which a revival in
/// place under the open snapshot (or one whose CAS lands after the snapshot's instant unseen)
/// would give — however the snapshot's clock readings and wait and the writer's CASes and ticks
/// interleave; the revived route is in the table once, the counts are right, and everything is
/// destroyed once.
#[test]
fn snapshot_races_emptying_then_revival() {
    check(|| {
        let seen = snapshot_race(First::Emptying);
        assert!(
            seen == ["10.0.0.0/8", "10.1.0.0/16"]
                || seen == ["10.0.0.0/8"]
                || seen == ["10.0.0.0/8", "10.2.0.0/16"],
            "not a state the table went through: {seen:?}"
        );
    });
}

/// `snapshot_race` with the revival first: the table goes through {a, b} → {a, b, c} → {a, c}.
///
/// Proves: the enumeration yields one of those three sets — never {a}, which an emptying whose
/// tick is read before its CAS would give (the snapshot would leave `b` out as emptied before
/// its instant while its tree, taken before the revival, also lacks `c`).
#[test]
fn snapshot_races_revival_then_emptying() {
    check(|| {
        let seen = snapshot_race(First::Revival);
        assert!(
            seen == ["10.0.0.0/8", "10.1.0.0/16"]
                || seen == ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"]
                || seen == ["10.0.0.0/8", "10.2.0.0/16"],
            "not a state the table went through: {seen:?}"
        );
    });
}

/// Two writers and a snapshot: one writer (the main thread) empties `b` (10.1.0.0/16) while
/// another links a new destination `d` (10.3.0.0/16, a path copy of the tree) and then looks `b`
/// up, and a third thread creates an enumeration of every destination and reads it all. Run at
/// preemption bound 1 (three threads at bound 2 are millions of executions). Setup: routes on `a`
/// (10.0.0.0/8) and `b`.
///
/// Proves: the enumeration yields a set the table went through. If the second writer still
/// found `b` after linking `d`, the table went {a, b} → {a, b, d} → {a, d}, and {a} is not among
/// its states — the set an emptying gives whose tick is read before its CAS (the snapshot's tree,
/// taken before `d` was linked, and `b` left out as emptied before the snapshot's instant
/// although it was present when the tree was taken).
#[test]
#[ignore = "three threads: minutes even at preemption bound 1; run by hand (docs/VERIFICATION.md)"]
fn snapshot_races_emptying_and_link() {
    check_bounded(1, || {
        let (table, reg, mut routes) = table_with(&["10.0.0.0/8", "10.1.0.0/16"]);
        let b = routes.pop().unwrap();
        let reg = std::sync::Arc::new(reg);
        let enumerator = {
            let table = table.clone();
            thread::spawn(move || {
                let e = table.enumerate_destinations(DestOptions::default()).unwrap();
                e.map(|m| m.destination.prefix().to_string()).collect::<Vec<_>>()
            })
        };
        let linker = {
            let (reg, table) = (reg.clone(), table.clone());
            thread::spawn(move || {
                let d = add(&reg, "10.3.0.0/16");
                let b_still_there = table.exact(p("10.1.0.0/16"), ViewSet::ALL, Selector::Best).is_ok();
                (d, b_still_there)
            })
        };
        // The emptier is the main thread: it runs on after the spawns, so that the interleaving
        // that matters (its tick, the snapshot, the link, its CAS) needs one preemption only.
        reg.delete_route(b).unwrap();
        let seen = enumerator.join().unwrap();
        let (d, b_still_there) = linker.join().unwrap();

        let mut states = vec![
            vec!["10.0.0.0/8", "10.1.0.0/16"],
            vec!["10.0.0.0/8", "10.1.0.0/16", "10.3.0.0/16"],
            vec!["10.0.0.0/8", "10.3.0.0/16"],
        ];
        if !b_still_there {
            // `b` may have gone before `d` came.
            states.push(vec!["10.0.0.0/8"]);
        }
        assert!(states.iter().any(|s| *s == seen), "not a state the table went through: {seen:?}");
        assert_eq!((table.destination_count(), table.route_count()), (2, 2));
        drop((d, routes));
        drop(std::sync::Arc::into_inner(reg).unwrap());
        assert_eq!((table.destination_count(), table.route_count()), (0, 0));
    });
}

/// A sweep races a revival of a destination it is about to take out of the tree.
///
/// Setup: routes on 10.0.0.0/8 (kept) and on 10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16; the first two
/// /16s are emptied (two emptied destinations, below `SWEEP_MIN`). Thread A deletes 10.3's route:
/// the third emptied destination starts a sweep, which marks each emptied destination removed
/// (a CAS from its empty set) and takes the marked ones out of the tree. Thread B adds a route
/// to 10.1.0.0/16: a revival in place (a CAS from the same empty set) if it comes first, a fresh
/// destination linked in the marked one's place otherwise.
///
/// Proves: either way the route is in the table exactly once — found by an exact match, listed
/// by an enumeration, its destination live — the swept destinations are gone, the counts are
/// right, and every object is destroyed once at the end.
#[test]
fn sweep_races_revival() {
    check(|| {
        let (table, reg, mut routes) =
            table_with(&["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16"]);
        let last = routes.pop().unwrap();
        reg.delete_route(routes.pop().unwrap()).unwrap();
        reg.delete_route(routes.pop().unwrap()).unwrap();
        let reg = std::sync::Arc::new(reg);

        let sweeper = {
            let reg = reg.clone();
            thread::spawn(move || reg.delete_route(last).unwrap())
        };
        let revived = add(&reg, "10.1.0.0/16");
        sweeper.join().unwrap();

        let m = table.exact(p("10.1.0.0/16"), ViewSet::ALL, Selector::Best).unwrap();
        assert_eq!(m.route.map(|r| r.route), Some(revived.clone()));
        assert!(!revived.destination().is_deleted());
        let listed: Vec<String> = table
            .enumerate_destinations(DestOptions::default())
            .unwrap()
            .map(|m| m.destination.prefix().to_string())
            .collect();
        assert_eq!(listed, ["10.0.0.0/8", "10.1.0.0/16"]);
        assert_eq!((table.destination_count(), table.route_count()), (2, 2));
        drop((revived, routes));
        drop(std::sync::Arc::into_inner(reg).unwrap());
        assert_eq!((table.destination_count(), table.route_count()), (0, 0));
    });
}
