//! `Registration::add_routes`: a batch of routes whose new destinations go into the tree in one
//! version. It must leave the table exactly as adding the routes one by one would (on the real
//! IPv4 table too), give each route its own outcome in the order given, refuse the whole batch
//! on invalid data, appear at once to an enumeration, and stay right when two writers batch the
//! same prefixes at the same time.

mod common;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use rtmgr::{
    AddMode, DestOptions, EntityConfig, EntityId, Error, Family, ForwardingLayout, Ipv4, Ipv6, NextHop,
    NextHopData, Preference, Prefix, Registration, RouteData, SharedRouteData, Table, TableConfig, ViewSet,
};

fn p4(s: &str) -> Prefix<Ipv4> {
    s.parse().unwrap()
}

fn entity(table: &Table<Ipv4>, protocol: u32) -> (Registration<Ipv4>, NextHop<Ipv4>) {
    let reg = table.register(EntityConfig::new(EntityId::new(protocol, 0))).unwrap();
    let (nh, _) =
        reg.add_next_hop(Ipv4Addr::new(192, 0, 2, protocol as u8), 1, NextHopData::default()).unwrap();
    (reg, nh)
}

/// The real table's routes (one next hop per origin AS, metric = origin), as pairs to add.
fn real_routes(reg: &Registration<Ipv4>, lines: usize) -> Vec<(Prefix<Ipv4>, SharedRouteData<Ipv4>)> {
    let anns = common::load::<Ipv4>(common::IPV4_FILE);
    let mut per_origin = HashMap::new();
    anns.iter()
        .take(lines)
        .map(|a| {
            let data = per_origin.entry(a.origin).or_insert_with(|| {
                let (nh, _) =
                    reg.add_next_hop(Ipv4Addr::from(a.origin.max(1)), 1, NextHopData::default()).unwrap();
                SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, a.origin)))
            });
            (a.prefix, data.clone())
        })
        .collect()
}

#[test]
fn real_table_added_in_batches_matches_one_by_one() {
    let (batched, one_by_one) = (Table::<Ipv4>::new(), Table::<Ipv4>::new());
    let reg_b = batched.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    let reg_o = one_by_one.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    let (routes_b, routes_o) = (real_routes(&reg_b, 150_000), real_routes(&reg_o, 150_000));
    for (prefix, data) in &routes_o {
        reg_o.add_route_with(*prefix, data.clone(), AddMode::New).unwrap();
    }
    let mut created = 0;
    for chunk in routes_b.chunks(4096) {
        let outcomes = reg_b.add_routes(chunk.iter().cloned(), AddMode::New).unwrap();
        assert_eq!(outcomes.len(), chunk.len());
        for ((prefix, _), outcome) in chunk.iter().zip(outcomes) {
            let (route, outcome) = outcome.unwrap();
            assert_eq!(route.prefix(), *prefix, "outcomes come back in the order given");
            created += usize::from(outcome.created);
        }
    }
    assert_eq!(created, routes_b.len());
    assert_eq!(batched.route_count(), one_by_one.route_count());
    assert_eq!(batched.destination_count(), one_by_one.destination_count());
    let (gb, go) = (batched.pin(), one_by_one.pin());
    for addr in common::random_ipv4(200_000) {
        let b = batched.lookup_route(addr, ViewSet::UNICAST, &gb).map(|(p, d)| (p, d.preference));
        let o = one_by_one.lookup_route(addr, ViewSet::UNICAST, &go).map(|(p, d)| (p, d.preference));
        assert_eq!(b, o, "{addr}");
        // The forwarding table agrees with the tree.
        let fib = batched.lookup_data(addr, ViewSet::UNICAST, &gb).map(|d| d.preference);
        assert_eq!(fib, b.map(|(_, pref)| pref), "{addr}");
    }
    let prefixes = |t: &Table<Ipv4>| {
        t.enumerate_destinations(DestOptions::default())
            .unwrap()
            .map(|d| d.destination.prefix())
            .collect::<Vec<_>>()
    };
    assert_eq!(prefixes(&batched), prefixes(&one_by_one));
}

/// Loads the first `lines` of a real table in batches of 4,096 (plain per-route data, the
/// owner's default preference) and checks the compiled forwarding table against the tree at
/// the first and the last address of every prefix loaded: the batch's forwarding refreshes
/// (one lock per batch) must leave it as one refresh per route would.
fn batched_forwarding_agrees_with_the_tree<F: Family>(
    table: Table<F>,
    file: &str,
    lines: usize,
    hop: impl Fn(u32) -> F::Addr,
    last: impl Fn(&Prefix<F>) -> F::Addr,
) {
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170)).unwrap();
    let anns: Vec<_> = common::load::<F>(file).into_iter().take(lines).collect();
    let mut hops = HashMap::new();
    let routes: Vec<(Prefix<F>, RouteData<F>)> = anns
        .iter()
        .map(|a| {
            let nh = hops
                .entry(a.origin)
                .or_insert_with(|| reg.add_next_hop(hop(a.origin), 1, NextHopData::default()).unwrap().0);
            (a.prefix, RouteData::new(vec![nh.clone()]).private(u64::from(a.origin)))
        })
        .collect();
    for chunk in routes.chunks(4096) {
        for outcome in reg.add_routes(chunk.iter().cloned(), AddMode::New).unwrap() {
            assert_eq!(outcome.unwrap().0.info().unwrap().preference.preference, 170);
        }
    }
    let guard = table.pin();
    for a in &anns {
        for addr in [a.prefix.addr(), last(&a.prefix)] {
            let tree = table.lookup_route(addr, ViewSet::UNICAST, &guard).map(|(_, d)| d.private);
            assert!(tree.is_some(), "{addr:?} is inside {:?}", a.prefix);
            let fib = table.lookup_data(addr, ViewSet::UNICAST, &guard).map(|d| d.private);
            assert_eq!(fib, tree, "{addr:?}");
        }
    }
}

#[test]
fn batches_keep_the_compact_forwarding_table_in_step_ipv6() {
    let last = |p: &Prefix<Ipv6>| {
        Ipv6Addr::from(u128::from(p.addr()) | u128::MAX.checked_shr(u32::from(p.len())).unwrap_or(0))
    };
    batched_forwarding_agrees_with_the_tree(
        Table::<Ipv6>::new(),
        common::IPV6_FILE,
        common::IPV6_LINES,
        |o| Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(o)),
        last,
    );
}

#[test]
fn batches_keep_the_compact_forwarding_table_in_step_ipv4() {
    let compact = TableConfig { forwarding_layout: ForwardingLayout::Compact, ..TableConfig::default() };
    let last = |p: &Prefix<Ipv4>| {
        Ipv4Addr::from(u32::from(p.addr()) | (u32::MAX.checked_shr(u32::from(p.len())).unwrap_or(0)))
    };
    batched_forwarding_agrees_with_the_tree(
        Table::<Ipv4>::with_config(compact).unwrap(),
        common::IPV4_FILE,
        60_000,
        |o| Ipv4Addr::from(o.max(1)),
        last,
    );
}

#[test]
fn a_batch_mixes_new_prefixes_existing_ones_and_repeats() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = entity(&table, 14);
    let data = |metric| {
        RouteData::new(vec![nh.clone()]).neighbour(Some(nh.clone())).preference(Preference::new(20, metric))
    };
    let (existing, _) = reg.add_route(p4("10.0.0.0/8"), data(1)).unwrap();
    let outcomes = reg
        .add_routes(
            [
                (p4("11.0.0.0/8"), data(2)),
                (p4("10.0.0.0/8"), data(3)), // same neighbour: updates the existing route
                (p4("11.0.0.0/8"), data(4)), // named twice: the second updates the first
                (p4("10.1.0.0/16"), data(5)),
            ],
            AddMode::Neighbour,
        )
        .unwrap();
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().map(|(_, o)| o.created).collect::<Vec<_>>(), [true, false, false, true]);
    assert_eq!(outcomes[1].0, existing);
    assert_eq!(outcomes[0].0, outcomes[2].0);
    assert_eq!(existing.info().unwrap().preference.metric, 3);
    assert_eq!(outcomes[0].0.info().unwrap().preference.metric, 4);
    assert_eq!((table.route_count(), table.destination_count()), (3, 3));
}

#[test]
fn a_batch_with_invalid_data_adds_nothing() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = entity(&table, 14);
    let (_other, foreign) = entity(&table, 8);
    let err = reg
        .add_routes(
            [
                (p4("10.0.0.0/8"), RouteData::new(vec![nh.clone()])),
                (p4("11.0.0.0/8"), RouteData::new(vec![foreign])),
            ],
            AddMode::New,
        )
        .unwrap_err();
    assert!(matches!(err, Error::AccessDenied(_)), "{err:?}");
    let err = reg.add_routes([(p4("12.0.0.0/8"), RouteData::new(vec![]))], AddMode::New).unwrap_err();
    assert!(matches!(err, Error::InvalidParameter(_)), "{err:?}");
    assert_eq!((table.route_count(), table.destination_count()), (0, 0));
}

#[test]
fn an_enumeration_sees_none_or_all_of_a_batch() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = entity(&table, 14);
    reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh.clone()])).unwrap();
    let before = table.enumerate_destinations(DestOptions::default()).unwrap();
    let batch: Vec<_> = (0..=255u8)
        .map(|i| (Prefix::new(Ipv4Addr::new(20, i, 0, 0), 16).unwrap(), RouteData::new(vec![nh.clone()])))
        .collect();
    reg.add_routes(batch, AddMode::New).unwrap();
    assert_eq!(before.count(), 1);
    assert_eq!(table.enumerate_destinations(DestOptions::default()).unwrap().count(), 257);
}

#[test]
fn two_writers_batching_the_same_prefixes_both_land() {
    let table = Table::<Ipv4>::new();
    let (a, nh_a) = entity(&table, 14);
    let (b, nh_b) = entity(&table, 8);
    let prefixes: Vec<Prefix<Ipv4>> =
        (0..4096u32).map(|i| Prefix::new(Ipv4Addr::from((10 << 24) | (i << 8)), 24).unwrap()).collect();
    std::thread::scope(|s| {
        for (reg, nh) in [(&a, &nh_a), (&b, &nh_b)] {
            let prefixes = &prefixes;
            s.spawn(move || {
                for chunk in prefixes.chunks(256) {
                    let batch = chunk.iter().map(|p| (*p, RouteData::new(vec![nh.clone()])));
                    for outcome in reg.add_routes(batch, AddMode::New).unwrap() {
                        assert!(outcome.unwrap().1.created);
                    }
                }
            });
        }
    });
    assert_eq!((table.route_count(), table.destination_count()), (8192, 4096));
    let guard = table.pin();
    for p in &prefixes {
        let dest = table.exact(*p, ViewSet::UNICAST, rtmgr::Selector::Best).unwrap().destination;
        assert_eq!(dest.routes().len(), 2, "{p}");
        assert!(table.lookup_data(p.addr(), ViewSet::UNICAST, &guard).is_some());
    }
}
