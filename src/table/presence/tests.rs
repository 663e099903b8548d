//! Lazy removal seen from inside: emptied destinations stay in the tree yet are absent to every
//! read, revive in place with a new incarnation, never revive under an open snapshot, and leave
//! the tree in sweeps. (`SWEEP_MIN` is 2 in test builds.)

use crate::counted::Ref;
use crate::sync::Ordering;
use crate::table::objects::DestObj;
use crate::{
    DestOptions, EntityConfig, EntityId, Error, Ipv4, NextHopData, Prefix, Registration, Route, RouteData,
    Selector, Table, ViewSet,
};

fn p(s: &str) -> Prefix<Ipv4> {
    s.parse().unwrap()
}

fn table_with(prefixes: &[&str]) -> (Table<Ipv4>, Registration<Ipv4>, Vec<Route<Ipv4>>) {
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(8, 0))).unwrap();
    let routes = prefixes.iter().map(|s| readd(&reg, s)).collect();
    (table, reg, routes)
}

/// Adds a route to `prefix` through the entity's one next hop.
fn readd(reg: &Registration<Ipv4>, prefix: &str) -> Route<Ipv4> {
    let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default()).unwrap();
    reg.add_route(p(prefix), RouteData::new(vec![nh])).unwrap().0
}

/// The destination object the tree holds at `prefix`, emptied or not.
fn in_tree(table: &Table<Ipv4>, prefix: &str) -> Option<Ref<DestObj<Ipv4>>> {
    let guard = crate::reclaim::pin();
    table.inner.tree.get(p(prefix).key(), p(prefix).len(), &guard).cloned()
}

fn tree_len(table: &Table<Ipv4>) -> usize {
    let guard = crate::reclaim::pin();
    crate::tree::Iter::all(table.inner.tree.root(&guard)).count()
}

fn listed(table: &Table<Ipv4>) -> Vec<(String, bool)> {
    let e = table.enumerate_destinations(DestOptions::default()).unwrap();
    e.map(|m| (m.destination.prefix().to_string(), m.destination.is_deleted())).collect()
}

#[test]
fn an_emptied_destination_stays_in_the_tree_but_is_absent_to_every_read() {
    let (table, reg, mut routes) = table_with(&["10.0.0.0/8", "10.1.0.0/16"]);
    let handle = routes[1].destination();
    reg.delete_route(routes.remove(1)).unwrap();

    assert!(in_tree(&table, "10.1.0.0/16").is_some(), "one emptied destination is below SWEEP_MIN");
    assert!(handle.is_deleted() && handle.routes().is_empty());
    assert_eq!(table.exact(p("10.1.0.0/16"), ViewSet::ALL, Selector::Best).unwrap_err(), Error::NotFound);
    let m = table.most_specific("10.1.2.3".parse().unwrap(), ViewSet::UNICAST, Selector::Best).unwrap();
    assert_eq!(m.destination.prefix(), p("10.0.0.0/8"));
    assert_eq!(table.destination_count(), 1);
    assert_eq!(listed(&table), [("10.0.0.0/8".to_string(), false)]);
    assert_eq!(table.more_specifics(p("10.0.0.0/8"), ViewSet::ALL, Selector::Best).len(), 1);
}

#[test]
fn a_revival_reuses_the_destination_in_place_as_a_new_incarnation() {
    let (table, reg, mut routes) = table_with(&["10.0.0.0/8", "10.1.0.0/16"]);
    let old = routes[1].destination();
    let obj = in_tree(&table, "10.1.0.0/16").unwrap();
    reg.delete_route(routes.remove(1)).unwrap();
    let route = readd(&reg, "10.1.0.0/16");

    assert!(Ref::ptr_eq(&obj, &in_tree(&table, "10.1.0.0/16").unwrap()), "revived in place");
    let new = route.destination();
    assert!(!new.is_deleted() && new.routes().len() == 1);
    // The old handle belongs to the emptied incarnation: deleted for good.
    assert!(
        old.is_deleted() && old.routes().is_empty() && old.best_route(ViewSet::ALL, Selector::Best).is_none()
    );
    assert!(old.info(ViewSet::UNICAST).deleted && old.info(ViewSet::UNICAST).views[0].route_count == 0);
    assert_ne!(old, new);
    assert_eq!(new, table.exact(p("10.1.0.0/16"), ViewSet::ALL, Selector::Best).unwrap().destination);
    assert_eq!(table.destination_count(), 2);
    assert_eq!(table.inner.empty_dests.load(Ordering::Relaxed), 0);
}

#[test]
fn an_open_snapshot_keeps_its_instant_through_emptyings_and_blocks_revivals_in_place() {
    let (table, reg, mut routes) =
        table_with(&["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.3.0.0/16", "10.4.0.0/16"]);
    // Emptied before the snapshot: left out of it.
    let before = in_tree(&table, "10.1.0.0/16").unwrap();
    reg.delete_route(routes.remove(1)).unwrap();
    let mut e = table.enumerate_destinations(DestOptions::default()).unwrap();
    // Emptied after: yielded, reading as deleted. Re-added after: a fresh destination that the
    // snapshot does not see (it was absent at its instant).
    reg.delete_route(routes.remove(1)).unwrap();
    readd(&reg, "10.1.0.0/16");
    let fresh = in_tree(&table, "10.1.0.0/16").unwrap();
    assert!(!Ref::ptr_eq(&before, &fresh), "no revival in place under an open snapshot");
    assert!(before.routes(&crate::reclaim::pin()).is_removed());

    let seen: Vec<(String, bool)> =
        e.by_ref().map(|m| (m.destination.prefix().to_string(), m.destination.is_deleted())).collect();
    assert_eq!(
        seen,
        [
            ("10.0.0.0/8".to_string(), false),
            ("10.2.0.0/16".to_string(), true),
            ("10.3.0.0/16".to_string(), false),
            ("10.4.0.0/16".to_string(), false)
        ]
    );
    drop(e);
    // Closed: revivals happen in place again.
    let dest = in_tree(&table, "10.3.0.0/16").unwrap();
    reg.delete_route(routes.remove(1)).unwrap();
    readd(&reg, "10.3.0.0/16");
    assert!(Ref::ptr_eq(&dest, &in_tree(&table, "10.3.0.0/16").unwrap()));
    assert_eq!(table.destination_count(), 4);
}

#[test]
fn sweeps_take_emptied_destinations_out_in_bulk() {
    let prefixes: Vec<String> = (0..16).map(|i| format!("10.{i}.0.0/16")).collect();
    let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let (table, reg, mut routes) = table_with(&refs);
    for _ in 0..8 {
        reg.delete_route(routes.pop().unwrap()).unwrap();
        let empty = table.inner.empty_dests.load(Ordering::Relaxed);
        // Swept whenever they reach a quarter of the live ones (and SWEEP_MIN).
        assert!(empty < 2.max(table.destination_count() / 4), "{empty} emptied left");
        assert_eq!(tree_len(&table), table.destination_count() + empty);
    }
    assert!(tree_len(&table) < 16, "at least one sweep ran");
    // Deregistration sweeps everything it emptied.
    drop(routes);
    reg.deregister();
    assert_eq!((tree_len(&table), table.destination_count()), (0, 0));
    assert_eq!(table.inner.empty_dests.load(Ordering::Relaxed), 0);
}

#[test]
fn a_route_of_the_emptied_incarnation_stays_deleted_after_a_revival() {
    let (table, reg, mut routes) = table_with(&["10.0.0.0/8"]);
    let gone = routes.pop().unwrap();
    reg.delete_route(gone.clone()).unwrap();
    let back = readd(&reg, "10.0.0.0/8");
    assert!(gone.is_deleted() && gone.info().unwrap_err() == Error::NotFound);
    assert!(!back.is_deleted());
    assert_eq!(table.route_count(), 1);
}
