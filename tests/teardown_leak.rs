//! Teardown without leaks: a table, its registrations and the handles users hold can be dropped
//! in any order — handles may outlive the table — and once everything is gone, a counting global
//! allocator (installed by this file) shows exactly the live bytes of before. Along the way,
//! every surviving handle stays readable and reads as deleted.
//!
//! The scenarios run one after another inside a single test, each measured on its own: a second
//! test in this file would allocate concurrently and blur the counts.

#![cfg(not(miri))]

mod common;

use std::net::Ipv6Addr;

use rtmgr::{
    AddMode, Destination, Entity, EntityConfig, EntityId, Error, Family, Ipv4, Ipv6, NextHop, NextHopData,
    Prefix, Registration, Route, RouteData, RouteInfo, Selector, Table, ViewSet,
};

#[global_allocator]
static GLOBAL: common::CountingAlloc = common::CountingAlloc;

/// What users typically hold on to: handles of every kind, to live and deleted objects.
struct Held<F: Family> {
    route: Route<F>,
    deleted_route: Route<F>,
    dest: Destination<F>,
    old_dest: Destination<F>,
    next_hop: NextHop<F>,
    deleted_next_hop: NextHop<F>,
    entity: Entity<F>,
    info: RouteInfo<F>,
    entities: Vec<Entity<F>>,
}

/// A table with two entities and nested routes; returns the table, the registrations and the
/// handles.
fn build<F: Family>(
    prefixes: &[&str],
    addr: impl Fn(u8) -> F::Addr,
) -> (Table<F>, Registration<F>, Registration<F>, Held<F>) {
    let table = Table::<F>::new();
    let a = table.register(EntityConfig::new(EntityId::new(13, 0)).default_preference(110)).unwrap();
    let b = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170)).unwrap();
    let (nh_a, _) = a.add_next_hop(addr(1), 1, NextHopData::default()).unwrap();
    let (nh_a2, _) = a.add_next_hop(addr(2), 2, NextHopData::default()).unwrap();
    let (nh_b, _) = b.add_next_hop(addr(3), 3, NextHopData::default()).unwrap();
    let prefixes: Vec<Prefix<F>> = prefixes.iter().map(|p| p.parse().unwrap()).collect();
    let mut first = None;
    for (i, &p) in prefixes.iter().enumerate() {
        let (r, _) = a.add_route(p, RouteData::new(vec![nh_a.clone(), nh_a2.clone()])).unwrap();
        b.add_route_with(p, RouteData::new(vec![nh_b.clone()]).neighbour(Some(nh_b.clone())), AddMode::New)
            .unwrap();
        if i % 2 == 0 {
            a.update_route(&r, |d| d.preference.metric = 5).unwrap();
        }
        first.get_or_insert(r);
    }
    let route = first.unwrap();
    // A route deleted and its destination emptied and made again: the old destination handle
    // and the deleted route's handle outlive both.
    let (gone, _) = a.add_route(Prefix::default_route(), RouteData::new(vec![nh_a.clone()])).unwrap();
    let old_dest = gone.destination();
    a.delete_route(gone.clone()).unwrap();
    a.add_route(Prefix::default_route(), RouteData::new(vec![nh_a2.clone()])).unwrap();
    assert!(old_dest.is_deleted());
    // A deleted next hop still listed by a route.
    let (doomed, _) = b.add_next_hop(addr(4), 4, NextHopData::default()).unwrap();
    b.add_route(prefixes[0], RouteData::new(vec![doomed.clone()])).unwrap();
    b.delete_next_hop(&doomed).unwrap();
    let m = table.exact(prefixes[0], ViewSet::UNICAST, Selector::Best).unwrap();
    let held = Held {
        info: m.route.unwrap(),
        dest: m.destination,
        route,
        deleted_route: gone,
        old_dest,
        next_hop: nh_a,
        deleted_next_hop: doomed,
        entity: b.entity(),
        entities: table.entities(),
    };
    (table, a, b, held)
}

/// Reads every handle; after the table is gone they all read as deleted.
fn read_all<F: Family>(h: &Held<F>, table_gone: bool) {
    let _ =
        (h.route.prefix(), h.route.owner().id(), h.dest.prefix(), h.dest.routes(), h.dest.info(ViewSet::ALL));
    let _ = (h.next_hop.address(), h.next_hop.interface(), h.next_hop.data(), h.entity.id());
    let _ = (h.info.prefix(), h.info.next_hops.len(), h.info.route.is_deleted());
    assert_eq!(h.deleted_route.info().unwrap_err(), Error::NotFound);
    assert!(h.old_dest.is_deleted() && h.old_dest.routes().is_empty());
    assert!(h.deleted_next_hop.is_deleted());
    for e in &h.entities {
        let _ = (e.id(), e.is_registered(), e.default_preference());
    }
    if table_gone {
        assert!(h.route.is_deleted());
        assert_eq!(h.route.info().unwrap_err(), Error::NotFound);
        assert!(h.dest.is_deleted() && h.dest.routes().is_empty());
        assert!(h.next_hop.is_deleted());
        assert!(!h.entity.is_registered());
        assert!(h.entities.iter().all(|e| !e.is_registered()));
        assert!(h.info.route.is_deleted());
    }
}

const V4: &[&str] =
    &["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "0.0.0.0/1", "192.168.0.0/16"];
const V6: &[&str] = &["2001:db8::/32", "2001:db8::/48", "2001:db8::1/128", "::/1", "fe80::/10"];

fn v4(i: u8) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(192, 0, 2, i)
}

fn v6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i as u16)
}

/// Runs one scenario and asserts that it leaves no byte behind. The scenario runs on a thread
/// of its own, gone before the count is read (see `common::on_fresh_thread`).
fn leak_free(name: &str, scenario: impl FnOnce() + Send) {
    let before = common::settled_live_bytes();
    common::on_fresh_thread(scenario);
    let after = common::settled_live_bytes();
    assert_eq!(after, before, "{name}: {before} live bytes before, {after} after");
}

#[test]
fn teardown_in_any_order_leaks_nothing() {
    // Warm-up: lazily initialised process-wide state (the epoch collector, thread-locals).
    common::on_fresh_thread(|| drop(build::<Ipv4>(V4, v4)));
    common::on_fresh_thread(|| drop(build::<Ipv6>(V6, v6)));

    leak_free("registrations, then table, then handles", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        read_all(&held, false);
        drop(a);
        drop(b);
        assert_eq!(table.route_count(), 0);
        assert_eq!(table.destination_count(), 0);
        drop(table);
        read_all(&held, true);
        drop(held);
    });

    leak_free("table, then registrations, then handles", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        drop(table);
        // The registrations still work: they keep the table alive.
        let (nh, _) = a.add_next_hop(v4(9), 9, NextHopData::default()).unwrap();
        let (r, _) = a.add_route("172.16.0.0/12".parse().unwrap(), RouteData::new(vec![nh])).unwrap();
        assert_eq!(a.table().is_best(&r).unwrap(), ViewSet::UNICAST);
        drop(b);
        drop(a);
        assert!(r.is_deleted());
        read_all(&held, true);
        drop(held);
        drop(r);
    });

    leak_free("handles, then table, then registrations", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        read_all(&held, false);
        drop(held);
        drop(table);
        drop(b);
        drop(a);
    });

    leak_free("handles between the registrations", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        drop(b);
        read_all(&held, false);
        assert!(!held.entity.is_registered());
        drop(held);
        drop(a);
        drop(table);
    });

    leak_free("explicit deletes, then everything", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        for m in table.more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best) {
            for info in m.destination.routes() {
                let owner = if info.owner == a.id() { &a } else { &b };
                owner.delete_route(info.route).unwrap();
            }
        }
        assert_eq!(table.route_count(), 0);
        assert_eq!(table.destination_count(), 0);
        a.delete_next_hop(&held.next_hop).unwrap();
        drop((table, a));
        read_all(&held, false);
        drop(b);
        read_all(&held, true);
        drop(held);
    });

    leak_free("a lookup guard and query results outliving the table", || {
        let (table, a, b, held) = build::<Ipv4>(V4, v4);
        let found =
            table.most_specific("10.1.2.3".parse().unwrap(), ViewSet::UNICAST, Selector::Best).unwrap();
        assert_eq!(found.destination.prefix().to_string(), "10.1.2.3/32");
        let more = table.more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best);
        let clone = table.clone();
        drop((a, b, table));
        {
            let guard = clone.pin();
            assert!(clone.lookup("10.1.2.3".parse().unwrap(), ViewSet::UNICAST, &guard).is_none());
        }
        drop(clone);
        assert!(more.iter().all(|m| m.destination.is_deleted()));
        drop((found, more, held));
    });

    leak_free("IPv6, registrations then handles", || {
        let (table, a, b, held) = build::<Ipv6>(V6, v6);
        read_all(&held, false);
        drop((a, b, table));
        read_all(&held, true);
        drop(held);
    });

    leak_free("IPv6, handles first", || {
        let (table, a, b, held) = build::<Ipv6>(V6, v6);
        drop(held);
        drop(table);
        drop((b, a));
    });
}
