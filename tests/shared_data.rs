//! Route data shared by many routes (`SharedRouteData`): one allocation serves every route
//! given it, each route still changes and goes on its own, the owner's default preference still
//! applies, and the next hops are checked per route as for plain data. On the real IPv4 table,
//! a load with one shared data per origin AS answers every lookup like a load with data per
//! route.

mod common;

use std::net::Ipv4Addr;

use rtmgr::{
    EntityConfig, EntityId, Error, Ipv4, NextHopData, Preference, Prefix, RouteData, SharedRouteData, Table,
    ViewSet,
};

fn p4(s: &str) -> Prefix<Ipv4> {
    s.parse().unwrap()
}

#[test]
fn routes_given_one_shared_data_share_it_and_change_on_their_own() {
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    let (nh, _) = reg.add_next_hop(Ipv4Addr::new(192, 0, 2, 1), 1, NextHopData::default()).unwrap();
    let shared = SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, 5)));
    let (a, _) = reg.add_route(p4("10.0.0.0/8"), shared.clone()).unwrap();
    let (b, _) = reg.add_route(p4("11.0.0.0/8"), shared.clone()).unwrap();
    assert_eq!((table.route_count(), table.destination_count()), (2, 2));
    // One RouteData behind both routes and behind the forwarding table's answers.
    assert!(std::ptr::eq(&*a.info().unwrap(), &*shared));
    assert!(std::ptr::eq(&*b.info().unwrap(), &*shared));
    let guard = table.pin();
    let at = |addr: [u8; 4]| {
        table.lookup_data(Ipv4Addr::from(addr), ViewSet::UNICAST, &guard).map(|d| d as *const _)
    };
    assert_eq!(at([10, 1, 1, 1]), Some(&*shared as *const _));
    assert_eq!(at([11, 1, 1, 1]), Some(&*shared as *const _));
    drop(guard);

    // Changing one route gives it data of its own; the other keeps the shared data.
    reg.update_route(&a, |d| d.preference.metric = 9).unwrap();
    assert_eq!(a.info().unwrap().preference.metric, 9);
    assert_eq!(b.info().unwrap().preference.metric, 5);
    assert!(std::ptr::eq(&*b.info().unwrap(), &*shared));

    // Deleting one leaves the other's data whole.
    assert!(reg.delete_route(b).unwrap());
    assert_eq!(shared.preference.metric, 5);
    assert_eq!((table.route_count(), table.destination_count()), (1, 1));
}

#[test]
fn shared_data_with_preference_zero_takes_the_owners_default_per_route() {
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170)).unwrap();
    let (nh, _) = reg.add_next_hop(Ipv4Addr::new(192, 0, 2, 1), 1, NextHopData::default()).unwrap();
    let shared = SharedRouteData::new(RouteData::new(vec![nh]));
    let (a, _) = reg.add_route(p4("10.0.0.0/8"), shared.clone()).unwrap();
    let info = a.info().unwrap();
    assert_eq!(info.preference.preference, 170);
    // The shared data itself is not changed: the route got a copy.
    assert_eq!(shared.preference.preference, 0);
    assert!(!std::ptr::eq(&*info, &*shared));
}

#[test]
fn shared_data_with_another_entitys_next_hop_is_refused_and_changes_nothing() {
    let table = Table::<Ipv4>::new();
    let mine = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    let theirs = table.register(EntityConfig::new(EntityId::new(8, 0))).unwrap();
    let (nh, _) = theirs.add_next_hop(Ipv4Addr::new(192, 0, 2, 8), 1, NextHopData::default()).unwrap();
    let shared = SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, 0)));
    // The owner may use it; another entity may not.
    theirs.add_route(p4("10.0.0.0/8"), shared.clone()).unwrap();
    let err = mine.add_route(p4("11.0.0.0/8"), shared).unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    assert_eq!((table.route_count(), table.destination_count()), (1, 1));
}

#[test]
fn real_table_loaded_with_shared_data_answers_like_data_per_route() {
    let anns = common::load::<Ipv4>(common::IPV4_FILE);
    let anns = &anns[..anns.len().min(100_000)];
    let load = |share: bool| {
        let table = Table::<Ipv4>::new();
        let reg = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
        let mut per_origin = std::collections::HashMap::new();
        for a in anns {
            let data = per_origin.entry(a.origin).or_insert_with(|| {
                let addr = Ipv4Addr::from(a.origin.max(1));
                let (nh, _) = reg.add_next_hop(addr, 1, NextHopData::default()).unwrap();
                SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, a.origin)))
            });
            let data = if share { data.clone() } else { SharedRouteData::new((**data).clone()) };
            reg.add_route(a.prefix, data).unwrap();
        }
        (table, reg)
    };
    let (shared, _reg_shared) = load(true);
    let (plain, _reg_plain) = load(false);
    assert_eq!(shared.route_count(), plain.route_count());
    assert_eq!(shared.destination_count(), plain.destination_count());
    let (gs, gp) = (shared.pin(), plain.pin());
    for addr in common::random_ipv4(200_000) {
        let s = shared.lookup_route(addr, ViewSet::UNICAST, &gs).map(|(p, d)| (p, d.preference));
        let p = plain.lookup_route(addr, ViewSet::UNICAST, &gp).map(|(p, d)| (p, d.preference));
        assert_eq!(s, p, "{addr}");
    }
}
