//! Enumerations: the snapshot guarantee under churn on the real tables, the filters against a
//! reference model, batch limits, end-of-enumeration reporting, and the RTMv1 layer.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rtmgr::v1::Criteria;
use rtmgr::{
    AddMode, DestFilter, DestOptions, EntityConfig, EntityId, EnumStart, Error, Family, Ipv4, Ipv6, NextHop,
    NextHopData, Preference, Prefix, Registration, RouteData, RouteFlags, RouteMatch, RouteOptions,
    RouteScope, Selector, Table, TableConfig, ViewSet,
};

/// The prefixes of a shipped table file, in file order (with the duplicate kept).
fn real_prefixes<F: Family>(file: &str) -> Vec<Prefix<F>> {
    let path = format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let reader = BufReader::new(flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()));
    reader.lines().map(|l| l.unwrap().split(' ').next().unwrap().parse().unwrap()).collect()
}

fn next_hop<F: Family>(reg: &Registration<F>, addr: &str) -> NextHop<F> {
    let addr = addr.parse().ok().expect("address of the table's family");
    reg.add_next_hop(addr, 1, NextHopData::default()).unwrap().0
}

/// Loads `prefixes` as routes of one entity; returns the registration and the route handles.
fn load<F: Family>(table: &Table<F>, prefixes: &[Prefix<F>], nh_addr: &str) -> (Registration<F>, NextHop<F>) {
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170)).unwrap();
    let nh = next_hop(&reg, nh_addr);
    for p in prefixes {
        reg.add_route_with(*p, RouteData::new(vec![nh.clone()]), AddMode::New).unwrap();
    }
    (reg, nh)
}

/// Creates an enumeration at a quiescent point, then lets writers delete prefixes that existed
/// and add new ones while the enumeration is read in batches: it must yield exactly the
/// creation-time set, in order, once each, and hold no epoch guard between batches.
fn snapshot_under_churn<F: Family>(
    file: &str,
    nh_addr: &str,
    new_prefix: fn(&mut rand::rngs::StdRng) -> Prefix<F>,
) {
    let mut prefixes: Vec<Prefix<F>> = real_prefixes(file);
    if cfg!(miri) {
        prefixes.truncate(200);
    }
    let table = Table::<F>::new();
    let (reg, nh) = load(&table, &prefixes, nh_addr);
    let expected: Vec<Prefix<F>> = prefixes.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
    assert_eq!(table.destination_count(), expected.len());

    let mut dests = table.enumerate_destinations(DestOptions::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reg = Arc::new(reg);
    let writers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (table, reg, nh, stop, prefixes) =
                (table.clone(), reg.clone(), nh.clone(), stop.clone(), prefixes.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut changes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Delete a prefix that existed at creation…
                    let p = prefixes[rng.random_range(0..prefixes.len())];
                    if let Ok(found) = table.exact(p, ViewSet::ALL, Selector::Best) {
                        for r in found.destination.routes() {
                            let _ = reg.delete_route(r.route);
                        }
                    }
                    // …and add one that did not.
                    let _ = reg.add_route(new_prefix(&mut rng), RouteData::new(vec![nh.clone()]));
                    changes += 1;
                }
                changes
            })
        })
        .collect();

    let mut seen = Vec::with_capacity(expected.len());
    let max = table.config().max_batch;
    loop {
        match dests.next_batch(max) {
            Ok(batch) => seen.extend(batch.iter().map(|m| m.destination.prefix())),
            Err(Error::NoMoreItems) => break,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(
            !rtmgr::is_pinned() && !crossbeam_epoch::is_pinned(),
            "an open enumeration must not keep the thread pinned"
        );
        // Let the writers make progress between batches.
        if seen.len() % (max * 64) == 0 {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let changes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(changes > 0, "the writers must have run during the enumeration");
    assert_eq!(seen.len(), expected.len(), "each destination exactly once");
    assert!(seen == expected, "the creation-time set, in order");
    assert!(dests.next_batch(1).is_err(), "the end is reported once");
}

#[test]
fn ipv4_enumeration_is_a_snapshot_under_churn() {
    snapshot_under_churn::<Ipv4>("ipv4-prefixes.txt.gz", "192.0.2.1", |rng| {
        // /25–/32 prefixes inside 240.0.0.0/4, which the real table does not use.
        let len = rng.random_range(25..=32u8);
        let addr = std::net::Ipv4Addr::from(0xF000_0000 | rng.random::<u32>() >> 4);
        Prefix::truncate(addr, len).unwrap()
    });
}

#[test]
fn ipv6_enumeration_is_a_snapshot_under_churn() {
    snapshot_under_churn::<Ipv6>("ipv6-prefixes.txt.gz", "2001:db8::1", |rng| {
        // /56–/64 prefixes inside fc00::/7, which the real table does not use.
        let len = rng.random_range(56..=64u8);
        let addr = std::net::Ipv6Addr::from(0xFC00u128 << 112 | (rng.random::<u128>() >> 7));
        Prefix::truncate(addr, len).unwrap()
    });
}

/// One route of the reference model.
#[derive(Clone, Debug)]
struct ModelRoute {
    owner: EntityId,
    preference: Preference,
    views: ViewSet,
    inactive: bool,
    serial: usize,
}

fn model_best(routes: &[ModelRoute], views: ViewSet, selector: Selector) -> Option<&ModelRoute> {
    routes
        .iter()
        .filter(|r| r.views.intersects(views) && !r.inactive)
        .filter(|r| match selector {
            Selector::Best => true,
            Selector::Entity(id) => id == r.owner,
            Selector::Protocol(p) => p == r.owner.protocol,
        })
        .min_by_key(|r| (r.preference, r.owner, r.serial))
}

fn prefix_strategy() -> impl Strategy<Value = Prefix<Ipv4>> {
    // Nested prefixes inside 10.0.0.0/8 and a few outside it.
    (0u32..64, 6u8..=14).prop_map(|(bits, len)| {
        let addr = std::net::Ipv4Addr::from(0x0A00_0000 | bits << 18);
        Prefix::truncate(addr, len).unwrap()
    })
}

#[derive(Clone, Debug)]
struct RouteSpec {
    prefix: Prefix<Ipv4>,
    owner: usize,
    preference: u32,
    metric: u32,
    views: u32,
    inactive: bool,
}

fn route_strategy() -> impl Strategy<Value = RouteSpec> {
    (prefix_strategy(), 0usize..3, 1u32..4, 0u32..3, 1u32..4, proptest::bool::weighted(0.2)).prop_map(
        |(prefix, owner, preference, metric, views, inactive)| RouteSpec {
            prefix,
            owner,
            preference,
            metric,
            views,
            inactive,
        },
    )
}

fn start_strategy() -> impl Strategy<Value = EnumStart<Ipv4>> {
    prop_oneof![
        Just(EnumStart::All),
        prefix_strategy().prop_map(EnumStart::From),
        prefix_strategy().prop_map(EnumStart::Within),
    ]
}

fn in_start(p: &Prefix<Ipv4>, start: EnumStart<Ipv4>) -> bool {
    match start {
        EnumStart::All => true,
        EnumStart::From(f) => *p >= f,
        EnumStart::Within(w) => w.covers(p),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 96 }, .. ProptestConfig::default() })]

    /// Destination and route enumerations with every start, view set, selector and filter
    /// against a reference model of the same routes.
    #[test]
    fn enumerations_match_the_model(
        routes in proptest::collection::vec(route_strategy(), 1..40),
        start in start_strategy(),
        views in 1u32..4,
        selector_kind in 0usize..3,
        own_only in proptest::bool::ANY,
        batch in 1usize..5,
    ) {
        let table = Table::<Ipv4>::with_config(TableConfig { max_next_hops: 4, max_batch: 4, ..TableConfig::default() }).unwrap();
        let ids = [EntityId::new(8, 0), EntityId::new(13, 0), EntityId::new(13, 1)];
        let regs: Vec<_> = ids.iter().map(|id| table.register(EntityConfig::new(*id)).unwrap()).collect();
        let hops: Vec<_> = regs.iter().map(|r| next_hop(r, "192.0.2.1")).collect();
        let mut model: BTreeMap<Prefix<Ipv4>, Vec<ModelRoute>> = BTreeMap::new();
        for (serial, spec) in routes.iter().enumerate() {
            let mut flags = RouteFlags::NONE;
            if spec.inactive { flags = RouteFlags::INACTIVE; }
            let data = RouteData::new(vec![hops[spec.owner].clone()])
                .preference(Preference::new(spec.preference, spec.metric))
                .views(ViewSet::from_bits(spec.views))
                .flags(flags);
            regs[spec.owner].add_route_with(spec.prefix, data, AddMode::New).unwrap();
            model.entry(spec.prefix).or_default().push(ModelRoute {
                owner: ids[spec.owner],
                preference: Preference::new(spec.preference, spec.metric),
                views: ViewSet::from_bits(spec.views),
                inactive: spec.inactive,
                serial,
            });
        }
        let views = ViewSet::from_bits(views);
        let selector = [Selector::Best, Selector::Entity(ids[1]), Selector::Protocol(13)][selector_kind];
        let filter = if own_only { DestFilter::BestOwnedBy(ids[1]) } else { DestFilter::All };

        // Destinations.
        let options = DestOptions::default().start(start).views(views).selector(selector).filter(filter);
        let expected: Vec<(Prefix<Ipv4>, Option<EntityId>)> = model
            .iter()
            .filter(|(p, _)| in_start(p, start))
            .filter(|(_, rs)| rs.iter().any(|r| r.views.intersects(views)))
            .filter(|(_, rs)| !own_only || model_best(rs, views, Selector::Best).is_some_and(|b| b.owner == ids[1]))
            .map(|(p, rs)| (*p, model_best(rs, views, selector).map(|r| r.owner)))
            .collect();
        let mut e = table.enumerate_destinations(options).unwrap();
        let mut got = Vec::new();
        loop {
            match e.next_batch(batch) {
                Ok(b) => {
                    prop_assert!(b.len() <= batch);
                    got.extend(b.into_iter().map(|m| (m.destination.prefix(), m.route.map(|r| r.owner))));
                }
                Err(Error::NoMoreItems) => break,
                Err(err) => return Err(TestCaseError::fail(err.to_string())),
            }
        }
        prop_assert_eq!(&got, &expected);
        let iterated: Vec<_> = table.enumerate_destinations(options).unwrap()
            .map(|m| (m.destination.prefix(), m.route.map(|r| r.owner))).collect();
        prop_assert_eq!(&iterated, &expected);

        // Routes: address order, then best order; optionally only one owner's.
        let mut criteria = RouteMatch::default().views(views);
        if own_only { criteria = criteria.owner(ids[1]); }
        let expected: Vec<(Prefix<Ipv4>, EntityId, Preference)> = model
            .iter()
            .filter(|(p, _)| in_start(p, start))
            .flat_map(|(p, rs)| {
                let mut rs: Vec<_> = rs.iter()
                    .filter(|r| r.views.intersects(views) && (!own_only || r.owner == ids[1]))
                    .collect();
                rs.sort_by_key(|r| (r.preference, r.owner, r.serial));
                rs.into_iter().map(move |r| (*p, r.owner, r.preference))
            })
            .collect();
        let mut e = table.enumerate_routes(RouteOptions::default().scope(RouteScope::Destinations(start)).criteria(criteria)).unwrap();
        let mut got = Vec::new();
        while let Ok(b) = e.next_batch(batch) {
            got.extend(b.into_iter().map(|r| (r.prefix(), r.owner, r.preference)));
        }
        prop_assert_eq!(got, expected);
    }
}

fn small_table() -> (Table<Ipv4>, Registration<Ipv4>, Registration<Ipv4>) {
    let table =
        Table::<Ipv4>::with_config(TableConfig { max_next_hops: 4, max_batch: 3, ..TableConfig::default() })
            .unwrap();
    let rip = table.register(EntityConfig::new(EntityId::new(8, 0)).default_preference(120)).unwrap();
    let ospf = table.register(EntityConfig::new(EntityId::new(13, 0)).default_preference(110)).unwrap();
    let (a, _) = rip.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default()).unwrap();
    let (b, _) = ospf.add_next_hop("192.0.2.9".parse().unwrap(), 2, NextHopData::default()).unwrap();
    for p in ["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "12.0.0.0/8"] {
        rip.add_route(p.parse().unwrap(), RouteData::new(vec![a.clone()])).unwrap();
    }
    for p in ["10.1.0.0/16", "12.0.0.0/8"] {
        ospf.add_route(p.parse().unwrap(), RouteData::new(vec![b.clone()])).unwrap();
    }
    (table, rip, ospf)
}

#[test]
fn batch_sizes_outside_the_limit_are_invalid() {
    let (table, _rip, _ospf) = small_table();
    let mut e = table.enumerate_destinations(DestOptions::default()).unwrap();
    assert!(matches!(e.next_batch(0), Err(Error::InvalidParameter(_))));
    assert!(matches!(e.next_batch(4), Err(Error::InvalidParameter(_))));
    assert_eq!(e.next_batch(3).unwrap().len(), 3);
    let mut r = table.enumerate_routes(RouteOptions::default()).unwrap();
    assert!(matches!(r.next_batch(4), Err(Error::InvalidParameter(_))));
    let mut n = table.enumerate_next_hops(Prefix::default_route(), None).unwrap();
    assert!(matches!(n.next_batch(4), Err(Error::InvalidParameter(_))));
}

#[test]
fn the_end_is_reported_once_then_the_enumeration_is_spent() {
    let (table, _rip, _ospf) = small_table();
    let mut e = table.enumerate_destinations(DestOptions::default()).unwrap();
    assert_eq!(e.next_batch(3).unwrap().len(), 3);
    assert_eq!(e.next_batch(3).unwrap().len(), 1);
    assert_eq!(e.next_batch(3).unwrap_err(), Error::NoMoreItems);
    assert!(matches!(e.next_batch(3), Err(Error::InvalidHandle(_))));
    // Routes: 6 routes in batches of 3, then the end once.
    let mut r = table.enumerate_routes(RouteOptions::default()).unwrap();
    assert_eq!(r.next_batch(3).unwrap().len(), 3);
    assert_eq!(r.next_batch(3).unwrap().len(), 3);
    assert_eq!(r.next_batch(3).unwrap_err(), Error::NoMoreItems);
    assert!(matches!(r.next_batch(3), Err(Error::InvalidHandle(_))));
}

#[test]
fn a_destination_deleted_after_creation_is_still_reported_as_deleted() {
    let (table, rip, ospf) = small_table();
    let mut e = table.enumerate_destinations(DestOptions::default()).unwrap();
    drop(ospf);
    let eleven = table.exact("11.0.0.0/8".parse().unwrap(), ViewSet::ALL, Selector::Best).unwrap();
    rip.delete_route(eleven.route.unwrap().route).unwrap();
    let all: Vec<_> = std::iter::from_fn(|| e.next_batch(3).ok()).flatten().collect();
    let names: Vec<String> = all.iter().map(|m| m.destination.prefix().to_string()).collect();
    assert_eq!(names, ["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "12.0.0.0/8"]);
    assert!(all[2].destination.is_deleted() && all[2].route.is_none());
    // The route data is read when the batch is read: OSPF is gone, RIP is best at 12/8 now.
    assert_eq!(all[3].route.as_ref().unwrap().owner, EntityId::new(8, 0));
}

#[test]
fn route_enumeration_of_one_destination_and_next_hop_ranges() {
    let (table, rip, ospf) = small_table();
    let dest = table.exact("10.1.0.0/16".parse().unwrap(), ViewSet::ALL, Selector::Best).unwrap().destination;
    let routes: Vec<_> = table
        .enumerate_routes(RouteOptions::default().scope(RouteScope::Destination(dest)))
        .unwrap()
        .collect();
    let owners: Vec<_> = routes.iter().map(|r| r.owner.protocol).collect();
    assert_eq!(owners, [13, 8], "best order: OSPF's 110 before RIP's 120");
    let other = Table::<Ipv4>::new();
    let foreign = RouteOptions::default().scope(RouteScope::Destination(routes[0].route.destination()));
    assert!(matches!(other.enumerate_routes(foreign), Err(Error::InvalidHandle(_))));

    rip.add_next_hop("198.51.100.7".parse().unwrap(), 3, NextHopData::default()).unwrap();
    let in_doc: Vec<_> = table
        .enumerate_next_hops("192.0.2.0/24".parse().unwrap(), None)
        .unwrap()
        .map(|n| n.owner())
        .collect();
    assert_eq!(in_doc, [rip.id(), ospf.id()], "ordered by address");
    let mine: Vec<_> = table.enumerate_next_hops(Prefix::default_route(), Some(rip.id())).unwrap().collect();
    assert_eq!(mine.len(), 2);
}

#[test]
fn rtmv1_enumeration_criteria_and_errors() {
    let (table, _rip, _ospf) = small_table();
    let v1 = table.v1();
    let count = |c: Criteria<Ipv4>| {
        let mut e = v1.create_enumeration(c).unwrap();
        let mut n = 0;
        loop {
            match e.get_next() {
                Ok(_) => n += 1,
                Err(Error::NoMoreRoutes) => break,
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(e.get_next().unwrap_err(), Error::NoMoreRoutes, "stays at the end");
        e.close().unwrap();
        assert!(matches!(e.get_next(), Err(Error::InvalidHandle(_))), "use after close");
        assert!(matches!(e.close(), Err(Error::InvalidHandle(_))), "double close");
        n
    };
    assert_eq!(count(Criteria::default()), 6);
    assert_eq!(count(Criteria::default().best_only()), 4);
    assert_eq!(count(Criteria::default().protocol(13)), 2);
    assert_eq!(count(Criteria::default().interface(1)), 4);
    assert_eq!(count(Criteria::default().network("10.1.0.0/16".parse().unwrap())), 2);
    assert_eq!(
        count(Criteria::default().network("10.1.0.0/16".parse().unwrap()).best_only().protocol(13)),
        1
    );
    assert_eq!(
        v1.create_enumeration(Criteria::default().network("9.0.0.0/8".parse().unwrap())).unwrap_err(),
        Error::NoRoutes
    );
    assert_eq!(
        v1.create_enumeration(Criteria::default().protocol(8).interface(2)).unwrap_err(),
        Error::NoRoutes
    );

    // Ordered first/next: (network, protocol, interface, next-hop address).
    let mut order = vec![];
    let mut r = v1.get_first_route(Criteria::default()).unwrap();
    loop {
        order.push((r.prefix().to_string(), r.owner.protocol));
        match v1.get_next_route(&r, Criteria::default()) {
            Ok(next) => r = next,
            Err(Error::NoMoreRoutes) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let expect = [
        ("10.0.0.0/8", 8),
        ("10.1.0.0/16", 8),
        ("10.1.0.0/16", 13),
        ("11.0.0.0/8", 8),
        ("12.0.0.0/8", 8),
        ("12.0.0.0/8", 13),
    ];
    assert_eq!(order, expect.map(|(p, n)| (p.to_string(), n)));
    assert_eq!(v1.network_count(), 4);
    assert_eq!(v1.is_route("10.1.0.0/16".parse().unwrap()).unwrap().owner.protocol, 13);
    assert!(v1.is_route("10.2.0.0/16".parse().unwrap()).is_none());
    assert_eq!(v1.lookup_ip_destination("10.1.2.3".parse().unwrap()).unwrap().prefix().len(), 16);
    assert!(v1.lookup_ip_destination("9.9.9.9".parse().unwrap()).is_none());
}
