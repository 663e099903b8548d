//! Models of enumerations (spec §2.6) through the public API: an open destination enumeration
//! holds a counted reference to one version of the tree (its snapshot) and hands out
//! destination handles in batches; closing it, deleting what it holds and using what it handed
//! out may interleave in any order.
//!
//! Like `table.rs`, each model builds its table single-threaded first (deterministic, so it costs
//! loom no branching), then races the threads. The tree is the smallest one with depth: a /4
//! (a prefix of the root node) and a /8 below it (a prefix of the root's child), so taking the
//! /8 out of the tree (the sweep its emptying starts, see the model) path-copies the root and
//! drops the child node from the live version, while the enumeration's snapshot still holds
//! the old root, the old child and the destination.

#![cfg(loom)]

use rtmgr::{
    DestMatch, DestOptions, EntityConfig, EntityId, EnumStart, Error, Ipv4, NextHopData, Prefix, RouteData,
    Selector, Table, ViewSet,
};
use rtmgr_loom_tests::check;
use rtmgr_loom_tests::loom::thread;

/// The root node's prefix (relative length 4 at depth 0).
fn outer() -> Prefix<Ipv4> {
    "16.0.0.0/4".parse().unwrap()
}

/// A prefix of the root's child (depth 1): the destination the model deletes.
fn inner() -> Prefix<Ipv4> {
    "16.0.0.0/8".parse().unwrap()
}

/// A destination enumeration is closed by one thread while a second deletes the last route of a
/// destination the enumeration holds (so the destination leaves the tree and the table releases
/// it) and a third — the main thread — takes a reference to that destination from the batch the
/// enumeration returned and reads through it.
///
/// Setup: one entity with a route on the /4 (kept) and one on the /8; the enumeration starts at
/// the /8 (`EnumStart::From`), and its first batch of one is the /8's destination, with its best
/// route. At that point the /8's destination is held by the live tree (through the root's
/// child), by the snapshot (the same root) and by the batch's handle; its route by its route set,
/// the batch's route handle and the handle the deleter passes in.
///
/// Race:
/// - thread A closes the enumeration: it releases the snapshot's root, and retires it if the
///   deleter has already replaced the live root (the old root, the old child and their
///   references to the destination then go at reclamation);
/// - thread B deletes the /8's route: the route set becomes empty by compare-and-swap and the
///   old set is released; the /8 is the third emptied destination (the setup emptied two
///   others), so B sweeps: it replaces each empty set with the removed marker and takes the
///   three destinations out of the tree (a new root without the child replaces the old one,
///   which is released);
/// - the main thread clones the batch's destination handle, reads its prefix and its route set
///   (twice: `info`, which also takes and releases a reference to the best route, then
///   `is_deleted`) and releases the clone.
///
/// The main thread pins its guard (`Table::pin`, the one the forwarding fast path borrows) before
/// the threads start and holds it across the race, so its reads pin again inside it. No thread
/// drives reclamation during the race, so what the guard protects is the same whenever it was
/// pinned; pinning it inside each read as well gives the same result at three times the
/// executions (242,292 instead of 92,574), all spent permuting crossbeam-epoch's own pin
/// protocol against the other threads' — which the handle models explore.
///
/// Proves: the reader never reads a destroyed object — not the destination, nor the route set
/// the deleter replaces under it, nor the route that set holds — and what it reads is one of the
/// two states (the route present and best, or deleted with no route), never going back from
/// deleted; the delete reports a best-route change; afterwards the batch's handles still read
/// (the destination and the route deleted), the /8 has left the table, the /4 is untouched and,
/// once everything is released and reclaimed, every object (both versions' tree nodes, both route
/// sets, the destinations, the routes, the entity) was destroyed exactly once. Catches
/// `free_immediately` (the replaced route set destroyed by the deleter's compare-and-swap while
/// the reader reads it: a causality violation on the route set).
#[test]
fn close_races_delete_and_batch_reference() {
    check(|| {
        let table = Table::<Ipv4>::new();
        let reg = table.register(EntityConfig::new(EntityId::new(1, 0))).unwrap();
        let (nh, _) = reg.add_next_hop([192, 0, 2, 1].into(), 1, NextHopData::default()).unwrap();
        let (kept, _) = reg.add_route(outer(), RouteData::new(vec![nh.clone()])).unwrap();
        let (doomed, _) = reg.add_route(inner(), RouteData::new(vec![nh.clone()])).unwrap();
        // Two emptied destinations (lazy removal keeps them in the tree), so that emptying the
        // /8 in the race is the third and starts a sweep, which takes the /8 out of the tree.
        for emptied in ["32.0.0.0/8", "48.0.0.0/8"] {
            let (route, _) =
                reg.add_route(emptied.parse().unwrap(), RouteData::new(vec![nh.clone()])).unwrap();
            reg.delete_route(route).unwrap();
        }
        drop(nh);

        let mut dests =
            table.enumerate_destinations(DestOptions::default().start(EnumStart::From(inner()))).unwrap();
        let batch: Vec<DestMatch<Ipv4>> = dests.next_batch(1).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(batch[0].destination.prefix(), inner());
        assert_eq!(batch[0].route.as_ref().map(|r| r.route.clone()), Some(doomed.clone()));

        // The reader's guard, pinned for the whole race (the one `Table::lookup` borrows from):
        // its reads below pin again inside it. See the model's docs.
        let guard = table.pin();
        let closer = thread::spawn(move || dests.close().unwrap());
        let deleter = thread::spawn(move || {
            let best_changed = reg.delete_route(doomed).unwrap();
            (reg, best_changed)
        });

        // The third actor: a reference taken from the batch, read, released.
        let taken = batch[0].destination.clone();
        assert_eq!(taken.prefix(), inner());
        let info = taken.info(ViewSet::UNICAST);
        assert_eq!(info.prefix, inner());
        if info.deleted {
            assert_eq!(info.views[0].route_count, 0, "a deleted destination reads with no route");
            assert!(info.views[0].best.is_none() && info.belongs_to.is_empty());
        } else {
            assert_eq!(info.views[0].route_count, 1, "the route is in the unicast view until deleted");
            assert_eq!(info.views[0].best.as_ref().map(|b| b.owner), Some(EntityId::new(1, 0)));
        }
        let deleted_later = taken.is_deleted();
        assert!(deleted_later || !info.deleted, "a deleted destination never comes back");
        drop(info);
        drop(taken);

        closer.join().unwrap();
        let (reg, best_changed) = deleter.join().unwrap();
        assert!(best_changed, "deleting the only route changes the best route");
        drop(guard);

        // The batch's handles outlive the enumeration and the deletion.
        assert!(batch[0].destination.is_deleted());
        assert!(batch[0].destination.routes().is_empty());
        assert!(batch[0].route.as_ref().unwrap().route.is_deleted());
        drop(batch);
        assert_eq!(table.destination_count(), 1);
        assert_eq!(table.route_count(), 1);
        assert_eq!(table.exact(inner(), ViewSet::ALL, Selector::Best).unwrap_err(), Error::NotFound);
        assert_eq!(table.exact(outer(), ViewSet::ALL, Selector::Best).unwrap().destination.prefix(), outer());
        assert!(!kept.is_deleted());
        drop((kept, reg));
        assert_eq!(table.route_count(), 0);
        assert_eq!(table.destination_count(), 0);
    });
}
