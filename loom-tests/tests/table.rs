//! Models of the table through its public API: the whole write path (route sets swapped by
//! compare-and-swap, destinations linked into and unlinked from the tree, deregistration's
//! sweep) runs on loom's atomics and loom's crossbeam-epoch, with the quarantine of `counted.rs`
//! catching any object destroyed too early.
//!
//! Each model builds its table single-threaded first (deterministic, so it costs loom no
//! branching), then races two threads. Next hops are only ever touched by one thread at a time:
//! an entity's next-hop map is a `DashMap`, whose locks loom cannot see (see
//! docs/VERIFICATION.md).

#![cfg(loom)]

use rtmgr::{
    EntityConfig, EntityId, Error, Ipv4, NextHopData, Preference, Prefix, Registration, Route, RouteData,
    Selector, Table, ViewSet,
};
use rtmgr_loom_tests::loom::thread;
use rtmgr_loom_tests::{check, reclaim};

fn prefix() -> Prefix<Ipv4> {
    "10.0.0.0/8".parse().unwrap()
}

/// Registers entity `protocol` with one next hop and returns the registration and route data
/// with preference `preference` through that next hop.
fn entity(table: &Table<Ipv4>, protocol: u32, preference: u32) -> (Registration<Ipv4>, RouteData<Ipv4>) {
    let reg = table.register(EntityConfig::new(EntityId::new(protocol, 0))).unwrap();
    let (nh, _) = reg.add_next_hop([192, 0, 2, protocol as u8].into(), 1, NextHopData::default()).unwrap();
    let data = RouteData::new(vec![nh]).preference(Preference::new(preference, 0));
    (reg, data)
}

/// A route handle outlives its entity and its table: the entity deregisters (withdrawing the
/// route) and the table is dropped and reclaimed while another thread reads the route through the
/// handle (its prefix: the route and destination objects; its owner: the entity object) and then
/// releases it.
///
/// Proves: a handle keeps every object it reaches readable after the table is gone, and they
/// are destroyed once, after its last read, with no guard involved (catches `relaxed_release`
/// at the table level).
#[test]
fn route_handle_outlives_table() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let (reg, data) = entity(&table, 1, 10);
        let (route, _) = reg.add_route(prefix(), data).unwrap();
        let user = thread::spawn(move || {
            assert_eq!(route.prefix(), prefix());
            assert_eq!(route.owner().id(), EntityId::new(1, 0));
            drop(route);
        });
        drop(reg);
        drop(table);
        reclaim(6);
        user.join().unwrap();
    });
}

/// An entity deregisters while another thread finds one of its routes through a query, takes
/// a reference to it, reads through it and releases it.
///
/// Proves: the reader either misses the route or gets a handle that stays readable (reporting
/// the route deleted once the sweep has passed); nothing is destroyed under it; afterwards the
/// table is empty and, once everything is released, every object was destroyed exactly once.
/// Catches `free_immediately` (the sweep releases route sets and tree nodes that the reader may
/// be walking).
#[test]
fn deregistration_races_route_reference() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let (reg, data) = entity(&table, 1, 10);
        let (route, _) = reg.add_route(prefix(), data).unwrap();
        let reader = {
            let table = table.clone();
            thread::spawn(move || match table.exact(prefix(), ViewSet::UNICAST, Selector::Best) {
                Ok(found) => {
                    // The destination was returned because it had a route in the views, judged
                    // from the same read of its route set as the route reported (`dest_match`):
                    // the route is there.
                    let info = found.route.expect("a destination found with a route in the views reports it");
                    let taken: Route<Ipv4> = info.route.clone();
                    drop(info);
                    assert_eq!(taken.prefix(), prefix());
                    assert_eq!(taken.owner().id(), EntityId::new(1, 0));
                    drop(taken);
                    assert_eq!(found.destination.prefix(), prefix());
                }
                Err(e) => assert_eq!(e, Error::NotFound),
            })
        };
        reg.deregister();
        reader.join().unwrap();
        assert!(route.is_deleted());
        assert_eq!(table.route_count(), 0);
        assert_eq!(table.destination_count(), 0);
        assert!(table.entities().is_empty());
        assert_eq!(table.exact(prefix(), ViewSet::ALL, Selector::Best).unwrap_err(), Error::NotFound);
    });
}

/// The best route's owner on the prefix and the number of routes there.
fn best_and_count(table: &Table<Ipv4>) -> (EntityId, usize) {
    let found = table.exact(prefix(), ViewSet::UNICAST, Selector::Best).expect("the destination exists");
    let best = found.route.expect("it has a best route").owner;
    (best, found.destination.routes().len())
}

/// Two entities add a route to the same new destination at once (preference 10 beats 20).
///
/// Proves: the outcome is one of the two serial orders — one destination with both routes,
/// entity 1's best; both report `created`; entity 1's add always changes the best route, entity
/// 2's only if it came first.
#[test]
fn two_adds_same_destination() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let (one, data1) = entity(&table, 1, 10);
        let (two, data2) = entity(&table, 2, 20);
        let other = thread::spawn(move || {
            let (route, outcome) = two.add_route(prefix(), data2).unwrap();
            (two, route, outcome)
        });
        let (route1, outcome1) = one.add_route(prefix(), data1).unwrap();
        let (two, route2, outcome2) = other.join().unwrap();

        assert!(outcome1.created && outcome2.created);
        // Serial orders: 1 then 2 gives (true, false); 2 then 1 gives (true, true).
        assert!(outcome1.best_changed, "the better route always changes the best route");
        assert_eq!(best_and_count(&table), (EntityId::new(1, 0), 2));
        assert_eq!(table.destination_count(), 1);
        assert_eq!(table.route_count(), 2);
        assert!(!route1.is_deleted() && !route2.is_deleted());
        drop((one, two, route1, route2));
        assert_eq!(table.route_count(), 0);
    });
}

/// One entity adds a batch of two routes (`add_routes`: both new destinations linked in one tree
/// version) while another adds a route to one of the batch's prefixes.
///
/// Proves: whichever links the shared prefix first, the other's route lands on the same
/// destination (the batch hands back the insertion it lost and adds that route one by one):
/// two destinations, three routes, every route created, entity 1's route best on the shared
/// prefix, and everything destroyed once at the end.
#[test]
fn batch_races_add_same_destination() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let (one, data1) = entity(&table, 1, 10);
        let (two, data2) = entity(&table, 2, 20);
        let other: Prefix<Ipv4> = "11.0.0.0/8".parse().unwrap();
        let adder = thread::spawn(move || {
            let (route, outcome) = two.add_route(prefix(), data2).unwrap();
            (two, route, outcome)
        });
        let batch = one.add_routes([(prefix(), data1.clone()), (other, data1)], rtmgr::AddMode::New).unwrap();
        let (two, route2, outcome2) = adder.join().unwrap();

        let batch: Vec<_> = batch.into_iter().map(Result::unwrap).collect();
        assert!(batch.iter().all(|(_, outcome)| outcome.created) && outcome2.created);
        assert_eq!(best_and_count(&table), (EntityId::new(1, 0), 2));
        assert_eq!(table.destination_count(), 2);
        assert_eq!(table.route_count(), 3);
        assert!(batch.iter().all(|(route, _)| !route.is_deleted()) && !route2.is_deleted());
        drop((one, two, batch, route2));
        assert_eq!(table.route_count(), 0);
    });
}

/// One entity deletes its route — the destination's last, so the destination leaves the tree —
/// while another adds a route to the same prefix.
///
/// Proves: the outcome is one of the two serial orders — afterwards exactly one destination
/// holds exactly the added route, and the delete changed the best route (in both orders). The
/// destination leaving the tree (the removed marker, then the unlink) and the add replacing it
/// with a fresh destination never lose the new route or resurrect the deleted one.
#[test]
fn add_races_delete_same_destination() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let (one, data1) = entity(&table, 1, 10);
        let (two, data2) = entity(&table, 2, 20);
        let (route1, _) = one.add_route(prefix(), data1).unwrap();
        let adder = thread::spawn(move || {
            let (route, outcome) = two.add_route(prefix(), data2).unwrap();
            (two, route, outcome)
        });
        let delete_changed_best = one.delete_route(route1).unwrap();
        let (two, route2, outcome2) = adder.join().unwrap();

        assert!(delete_changed_best);
        // Add first: entity 1's better route was still there, so the add did not change the best
        // route; delete first: the add made a new destination and its route is best. Either way
        // it created a route.
        assert!(outcome2.created);
        assert_eq!(best_and_count(&table), (EntityId::new(2, 0), 1));
        assert_eq!(table.destination_count(), 1);
        assert_eq!(table.route_count(), 1);
        assert!(!route2.is_deleted());
        drop((one, two, route2));
        assert_eq!(table.route_count(), 0);
        assert_eq!(table.destination_count(), 0);
    });
}
