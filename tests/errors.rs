//! One test per error case of spec §3 that the current API can reach: each checks the error
//! variant, its Win32 code where it matters, that the message says what was wrong, and that the
//! failed call changed nothing.
//!
//! Covered: malformed prefixes (host bits, length beyond the family, wrong family — through
//! `parse`, `Prefix::new`/`truncate` and `Prefix::try_from(ipnet::IpNet)`), duplicate
//! registration, next-hop count out of range, another entity's next hop / neighbour / route,
//! handles of another table, deleted next hops, double deletes, missing next hops, unsupported
//! view ids, zero table limits, and walking past the default route.

use std::net::{Ipv4Addr, Ipv6Addr};

use rtmgr::{
    AddMode, EntityConfig, EntityId, Error, Ipv4, Ipv6, NextHop, NextHopData, Preference, Prefix,
    Registration, RouteData, Selector, Table, TableConfig, ViewSet,
};

fn p4(s: &str) -> Prefix<Ipv4> {
    s.parse().unwrap()
}

fn a4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A table with one entity (protocol `protocol`) owning one next hop.
fn setup(table: &Table<Ipv4>, protocol: u32) -> (Registration<Ipv4>, NextHop<Ipv4>) {
    let reg = table.register(EntityConfig::new(EntityId::new(protocol, 0))).unwrap();
    let (nh, _) =
        reg.add_next_hop(Ipv4Addr::new(192, 0, 2, protocol as u8), 1, NextHopData::default()).unwrap();
    (reg, nh)
}

/// Asserts `InvalidParameter` whose message contains every one of `words`.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Error>, words: &[&str]) {
    let err = result.expect_err("expected InvalidParameter");
    assert!(matches!(err, Error::InvalidParameter(_)), "expected InvalidParameter, got {err:?}");
    assert_eq!(err.win32_code(), 87);
    let msg = err.to_string();
    for w in words {
        assert!(msg.contains(w), "message {msg:?} should mention {w:?}");
    }
}

fn assert_access_denied<T: std::fmt::Debug>(result: Result<T, Error>, word: &str) {
    let err = result.expect_err("expected AccessDenied");
    assert!(matches!(err, Error::AccessDenied(_)), "expected AccessDenied, got {err:?}");
    assert_eq!(err.win32_code(), 5);
    let msg = err.to_string();
    assert!(msg.contains(word), "message {msg:?} should mention {word:?}");
}

fn assert_invalid_handle<T: std::fmt::Debug>(result: Result<T, Error>, word: &str) {
    let err = result.expect_err("expected InvalidHandle");
    assert!(matches!(err, Error::InvalidHandle(_)), "expected InvalidHandle, got {err:?}");
    assert_eq!(err.win32_code(), 6);
    let msg = err.to_string();
    assert!(msg.contains(word), "message {msg:?} should mention {word:?}");
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>) {
    let err = result.expect_err("expected NotFound");
    assert_eq!(err, Error::NotFound);
    assert_eq!(err.win32_code(), 1168);
    assert!(err.to_string().contains("not found"));
}

// ----- prefixes ------------------------------------------------------------------------------

#[test]
fn prefix_with_host_bits_is_invalid_parameter() {
    assert_invalid("10.0.0.1/8".parse::<Prefix<Ipv4>>(), &["host bits", "10.0.0.1/8"]);
    assert_invalid("192.168.1.128/24".parse::<Prefix<Ipv4>>(), &["host bits"]);
    assert_invalid("2001:db8::1/64".parse::<Prefix<Ipv6>>(), &["host bits"]);
    assert_invalid(Prefix::<Ipv4>::new(a4("10.0.0.1"), 31), &["host bits"]);
    // The same addresses with room for them are fine.
    assert_eq!(p4("10.0.0.1/32").len(), 32);
    assert_eq!(Prefix::<Ipv4>::new(a4("10.0.0.0"), 31).unwrap().len(), 31);
}

#[test]
fn prefix_length_beyond_the_family_is_invalid_parameter() {
    assert_invalid("10.0.0.0/33".parse::<Prefix<Ipv4>>(), &["33", "32"]);
    assert_invalid("::/129".parse::<Prefix<Ipv6>>(), &["129", "128"]);
    assert_invalid(Prefix::<Ipv4>::new(Ipv4Addr::UNSPECIFIED, 40), &["40"]);
    assert_invalid(Prefix::<Ipv6>::new(Ipv6Addr::UNSPECIFIED, 200), &["200"]);
    assert_invalid(Prefix::<Ipv4>::truncate(a4("10.1.2.3"), 33), &["33"]);
    // A length that does not even fit the length type.
    assert_invalid("10.0.0.0/300".parse::<Prefix<Ipv4>>(), &["300"]);
    assert_eq!(Prefix::<Ipv4>::truncate(a4("10.1.2.3"), 32).unwrap().to_string(), "10.1.2.3/32");
}

#[test]
fn prefix_of_the_wrong_family_is_invalid_parameter_via_parse() {
    assert_invalid("2001:db8::/32".parse::<Prefix<Ipv4>>(), &["family", "IPv4"]);
    assert_invalid("10.0.0.0/8".parse::<Prefix<Ipv6>>(), &["family", "IPv6"]);
    assert_invalid("::1".parse::<Prefix<Ipv4>>(), &["family"]);
    assert_invalid("not-an-address/8".parse::<Prefix<Ipv4>>(), &["not-an-address"]);
    assert_invalid("10.0.0.0/x".parse::<Prefix<Ipv4>>(), &["\"x\""]);
}

#[test]
fn prefix_of_the_wrong_family_or_with_host_bits_is_invalid_parameter_via_ipnet() {
    let v6: ipnet::IpNet = "2001:db8::/32".parse().unwrap();
    assert_invalid(Prefix::<Ipv4>::try_from(v6), &["family", "IPv4"]);
    let v4: ipnet::IpNet = "10.0.0.0/8".parse().unwrap();
    assert_invalid(Prefix::<Ipv6>::try_from(v4), &["family", "IPv6"]);
    // ipnet keeps host bits; the prefix refuses them.
    let host_bits: ipnet::IpNet = "10.0.0.1/8".parse().unwrap();
    assert_invalid(Prefix::<Ipv4>::try_from(host_bits), &["host bits"]);
    let ok = Prefix::<Ipv4>::try_from(v4).unwrap();
    assert_eq!(ok, p4("10.0.0.0/8"));
    assert_eq!(ipnet::Ipv4Net::from(ok).to_string(), "10.0.0.0/8");
}

// ----- registration --------------------------------------------------------------------------

#[test]
fn duplicate_registration_is_already_exists() {
    let table = Table::<Ipv4>::new();
    let first = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170)).unwrap();
    let err = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap_err();
    assert_eq!(err, Error::AlreadyExists);
    assert_eq!(err.win32_code(), 183);
    assert!(err.to_string().contains("exists"));
    // Another instance of the same protocol is another identity.
    let other = table.register(EntityConfig::new(EntityId::new(14, 1))).unwrap();
    assert_eq!(table.entities().len(), 2);
    // The failed registration did not replace the first one.
    assert!(first.entity().is_registered());
    assert_eq!(first.entity().default_preference(), 170);
    drop(first);
    let again = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    assert_eq!(again.id(), EntityId::new(14, 0));
    drop(other);
}

// ----- route data ----------------------------------------------------------------------------

#[test]
fn route_without_next_hops_is_invalid_parameter() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    assert_invalid(reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![])), &["next hops", "0 given"]);
    assert_eq!(table.route_count(), 0);
    assert_eq!(table.destination_count(), 0);
    // Nor may an update take them all away.
    let (route, _) = reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh.clone()])).unwrap();
    assert_invalid(reg.update_route(&route, |d| d.next_hops.clear()), &["next hops"]);
    assert_eq!(route.info().unwrap().next_hops, vec![nh]);
}

#[test]
fn route_with_too_many_next_hops_is_invalid_parameter() {
    let table =
        Table::<Ipv4>::with_config(TableConfig { max_next_hops: 2, max_batch: 8, ..TableConfig::default() })
            .unwrap();
    let reg = table.register(EntityConfig::new(EntityId::new(2, 0))).unwrap();
    assert_eq!(reg.profile().max_next_hops, 2);
    let hops: Vec<_> = (1..=3)
        .map(|i| reg.add_next_hop(Ipv4Addr::new(192, 0, 2, i), 1, NextHopData::default()).unwrap().0)
        .collect();
    assert_invalid(reg.add_route(p4("10.0.0.0/8"), RouteData::new(hops.clone())), &["1 to 2", "3 given"]);
    assert_eq!(table.route_count(), 0);
    // The limit itself is fine, and an update past it is refused and changes nothing.
    let (route, _) = reg.add_route(p4("10.0.0.0/8"), RouteData::new(hops[..2].to_vec())).unwrap();
    assert_invalid(reg.update_route(&route, |d| d.next_hops = hops.clone()), &["3 given"]);
    assert_eq!(route.info().unwrap().next_hops.len(), 2);
}

#[test]
fn route_with_another_entitys_next_hop_is_access_denied() {
    let table = Table::<Ipv4>::new();
    let (rip, rip_nh) = setup(&table, 8);
    let (ospf, ospf_nh) = setup(&table, 13);
    assert_access_denied(
        ospf.add_route(p4("10.0.0.0/8"), RouteData::new(vec![ospf_nh.clone(), rip_nh.clone()])),
        "another entity",
    );
    assert_eq!(table.route_count(), 0);
    let (route, _) = ospf.add_route(p4("10.0.0.0/8"), RouteData::new(vec![ospf_nh])).unwrap();
    assert_access_denied(ospf.update_route(&route, |d| d.next_hops = vec![rip_nh.clone()]), "another entity");
    assert_eq!(route.info().unwrap().next_hops[0].owner(), EntityId::new(13, 0));
    // Nor may an entity change or delete another's next hop.
    assert_access_denied(ospf.update_next_hop(&rip_nh, |d| d.private = 9), "another entity");
    assert_access_denied(ospf.delete_next_hop(&rip_nh), "another entity");
    assert!(!rip_nh.is_deleted());
    assert_eq!(rip_nh.data().private, 0);
    drop(rip);
}

#[test]
fn route_with_another_entitys_neighbour_is_access_denied() {
    let table = Table::<Ipv4>::new();
    let (_rip, rip_nh) = setup(&table, 8);
    let (ospf, ospf_nh) = setup(&table, 13);
    assert_access_denied(
        ospf.add_route(
            p4("10.0.0.0/8"),
            RouteData::new(vec![ospf_nh.clone()]).neighbour(Some(rip_nh.clone())),
        ),
        "another entity",
    );
    assert_eq!(table.route_count(), 0);
    let (route, _) = ospf.add_route(p4("10.0.0.0/8"), RouteData::new(vec![ospf_nh])).unwrap();
    assert_access_denied(ospf.update_route(&route, |d| d.neighbour = Some(rip_nh.clone())), "another entity");
    assert!(route.info().unwrap().neighbour.is_none());
}

#[test]
fn next_hop_of_a_previous_registration_of_the_same_identity_is_refused() {
    let table = Table::<Ipv4>::new();
    let (old, old_nh) = setup(&table, 8);
    drop(old);
    let (new, new_nh) = setup(&table, 8);
    assert_ne!(old_nh, new_nh);
    let err = new.add_route(p4("10.0.0.0/8"), RouteData::new(vec![old_nh])).unwrap_err();
    assert!(
        matches!(err, Error::AccessDenied(_) | Error::InvalidHandle(_)),
        "a next hop of a former registration must be refused, got {err:?}"
    );
    assert_eq!(table.route_count(), 0);
}

// ----- routes of others ----------------------------------------------------------------------

#[test]
fn update_of_another_entitys_route_is_access_denied() {
    let table = Table::<Ipv4>::new();
    let (rip, rip_nh) = setup(&table, 8);
    let (ospf, _) = setup(&table, 13);
    let (route, _) = rip
        .add_route(p4("10.0.0.0/8"), RouteData::new(vec![rip_nh]).preference(Preference::new(120, 1)))
        .unwrap();
    assert_access_denied(ospf.update_route(&route, |d| d.preference.metric = 99), "another entity");
    assert_eq!(route.info().unwrap().preference, Preference::new(120, 1));
}

#[test]
fn delete_of_another_entitys_route_is_access_denied() {
    let table = Table::<Ipv4>::new();
    let (rip, rip_nh) = setup(&table, 8);
    let (ospf, _) = setup(&table, 13);
    let (route, _) = rip.add_route(p4("10.0.0.0/8"), RouteData::new(vec![rip_nh])).unwrap();
    assert_access_denied(ospf.delete_route(route.clone()), "another entity");
    assert!(!route.is_deleted());
    assert_eq!(table.route_count(), 1);
    assert!(rip.delete_route(route).unwrap());
}

// ----- handles of another table --------------------------------------------------------------

#[test]
fn next_hop_of_another_table_is_invalid_handle() {
    let a = Table::<Ipv4>::new();
    let b = Table::<Ipv4>::new();
    // The same identity in both tables: only the table tells them apart.
    let (reg_a, nh_a) = setup(&a, 2);
    let (reg_b, nh_b) = setup(&b, 2);
    assert_invalid_handle(
        reg_a.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh_b.clone()])),
        "another table",
    );
    assert_invalid_handle(
        reg_a.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh_a.clone()]).neighbour(Some(nh_b.clone()))),
        "another table",
    );
    assert_invalid_handle(reg_a.update_next_hop(&nh_b, |d| d.private = 1), "another table");
    assert_invalid_handle(reg_a.delete_next_hop(&nh_b), "another table");
    assert!(!nh_b.is_deleted());
    assert_eq!(a.route_count(), 0);
    drop(reg_b);
}

#[test]
fn route_of_another_table_is_invalid_handle() {
    let a = Table::<Ipv4>::new();
    let b = Table::<Ipv4>::new();
    let (reg_a, _) = setup(&a, 2);
    let (reg_b, nh_b) = setup(&b, 2);
    let (route_b, _) = reg_b.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh_b])).unwrap();
    assert_invalid_handle(reg_a.update_route(&route_b, |d| d.private = 1), "another table");
    assert_invalid_handle(reg_a.delete_route(route_b.clone()), "another table");
    assert_invalid_handle(a.is_best(&route_b), "another table");
    assert!(!route_b.is_deleted());
    assert_eq!(route_b.info().unwrap().private, 0);
    assert_eq!(b.is_best(&route_b).unwrap(), ViewSet::UNICAST);
}

#[test]
fn destination_of_another_table_is_invalid_handle() {
    let a = Table::<Ipv4>::new();
    let b = Table::<Ipv4>::new();
    let (reg_a, nh_a) = setup(&a, 2);
    let (reg_b, nh_b) = setup(&b, 2);
    reg_a.add_route(p4("0.0.0.0/0"), RouteData::new(vec![nh_a])).unwrap();
    let (route_b, _) = reg_b.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh_b])).unwrap();
    // Table `a` has a default route that would be the answer, were the handle its own.
    assert_invalid_handle(
        a.less_specific(&route_b.destination(), ViewSet::UNICAST, Selector::Best),
        "another table",
    );
}

// ----- deleted and missing objects -----------------------------------------------------------

#[test]
fn deleted_next_hop_in_a_route_is_invalid_handle() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    let (other, _) = reg.add_next_hop(a4("192.0.2.99"), 1, NextHopData::default()).unwrap();
    reg.delete_next_hop(&nh).unwrap();
    assert!(nh.is_deleted());
    assert_invalid_handle(reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh.clone()])), "deleted");
    assert_invalid_handle(
        reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![other.clone()]).neighbour(Some(nh.clone()))),
        "deleted",
    );
    assert_eq!(table.route_count(), 0);
    let (route, _) = reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![other])).unwrap();
    assert_invalid_handle(reg.update_route(&route, |d| d.next_hops = vec![nh.clone()]), "deleted");
    // Re-adding the same (address, interface) makes a new, live next hop; the old handle stays
    // deleted.
    let (again, created) = reg.add_next_hop(nh.address(), nh.interface(), NextHopData::default()).unwrap();
    assert!(created);
    assert_ne!(again, nh);
    assert!(nh.is_deleted() && !again.is_deleted());
}

#[test]
fn deleting_a_route_twice_is_not_found() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    let (route, _) = reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh.clone()])).unwrap();
    let kept = route.clone();
    assert!(reg.delete_route(route).unwrap());
    assert_not_found(reg.delete_route(kept.clone()));
    // And once a new route lives at the same prefix, the old handle still does not reach it.
    reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh])).unwrap();
    assert_not_found(reg.delete_route(kept.clone()));
    assert_not_found(reg.update_route(&kept, |d| d.private = 1));
    assert_not_found(kept.info());
    assert_not_found(table.is_best(&kept));
    assert_eq!(table.route_count(), 1);
}

#[test]
fn deleting_a_next_hop_twice_is_not_found() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    reg.delete_next_hop(&nh).unwrap();
    assert_not_found(reg.delete_next_hop(&nh));
}

#[test]
fn find_next_hop_that_does_not_exist_is_not_found() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    assert_eq!(reg.find_next_hop(nh.address(), nh.interface()).unwrap(), nh);
    assert_not_found(reg.find_next_hop(nh.address(), nh.interface() + 1));
    assert_not_found(reg.find_next_hop(a4("198.51.100.1"), nh.interface()));
    // Another entity's next hop is not in the caller's list.
    let (other, _) = setup(&table, 3);
    assert_not_found(other.find_next_hop(nh.address(), nh.interface()));
    reg.delete_next_hop(&nh).unwrap();
    assert_not_found(reg.find_next_hop(nh.address(), nh.interface()));
}

#[test]
fn queries_that_match_nothing_are_not_found() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    reg.add_route(p4("10.0.0.0/8"), RouteData::new(vec![nh])).unwrap();
    assert_not_found(table.exact(p4("10.0.0.0/9"), ViewSet::UNICAST, Selector::Best));
    // Present, but not in the asked view.
    assert_not_found(table.exact(p4("10.0.0.0/8"), ViewSet::MULTICAST, Selector::Best));
    assert_not_found(table.most_specific(a4("11.0.0.1"), ViewSet::UNICAST, Selector::Best));
    assert_not_found(table.exact_route(p4("11.0.0.0/8"), &Default::default()));
}

// ----- values and limits ---------------------------------------------------------------------

#[test]
fn view_id_past_31_is_not_supported() {
    assert_eq!(ViewSet::view(31).unwrap(), ViewSet::from_bits(1 << 31));
    for id in [32u8, 33, 255] {
        let err = ViewSet::view(id).unwrap_err();
        assert!(matches!(err, Error::NotSupported(_)), "view {id}: {err:?}");
        assert_eq!(err.win32_code(), 50);
        assert!(err.to_string().contains("view"), "message: {err}");
    }
}

#[test]
fn table_config_with_a_zero_limit_is_invalid_parameter() {
    assert_invalid(
        Table::<Ipv4>::with_config(TableConfig { max_next_hops: 0, max_batch: 16, ..TableConfig::default() }),
        &["max_next_hops"],
    );
    assert_invalid(
        Table::<Ipv6>::with_config(TableConfig { max_next_hops: 4, max_batch: 0, ..TableConfig::default() }),
        &["max_batch"],
    );
    assert_invalid(
        Table::<Ipv4>::with_config(TableConfig { max_next_hops: 0, max_batch: 0, ..TableConfig::default() }),
        &["at least 1"],
    );
    let ok =
        Table::<Ipv4>::with_config(TableConfig { max_next_hops: 1, max_batch: 1, ..TableConfig::default() })
            .unwrap();
    assert_eq!(ok.config(), TableConfig { max_next_hops: 1, max_batch: 1, ..TableConfig::default() });
}

#[test]
fn less_specific_past_the_default_route_is_not_found() {
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    reg.add_route(p4("0.0.0.0/0"), RouteData::new(vec![nh.clone()])).unwrap();
    let (r, _) = reg.add_route(p4("10.1.0.0/16"), RouteData::new(vec![nh.clone()])).unwrap();
    let up = table.less_specific(&r.destination(), ViewSet::UNICAST, Selector::Best).unwrap();
    assert_eq!(up.destination.prefix(), Prefix::default_route());
    assert_not_found(table.less_specific(&up.destination, ViewSet::UNICAST, Selector::Best));
    // Without a default route, the walk ends one step earlier.
    let table6 = Table::<Ipv6>::new();
    let reg6 = table6.register(EntityConfig::new(EntityId::new(2, 0))).unwrap();
    let (nh6, _) = reg6.add_next_hop("fe80::1".parse().unwrap(), 1, NextHopData::default()).unwrap();
    let (r6, _) = reg6.add_route("2001:db8::/32".parse().unwrap(), RouteData::new(vec![nh6])).unwrap();
    assert_not_found(table6.less_specific(&r6.destination(), ViewSet::UNICAST, Selector::Best));
}

#[test]
fn add_route_with_every_mode_validates_before_changing_anything() {
    // The validation errors do not depend on the mode, and none leaves a route or destination
    // behind.
    let table = Table::<Ipv4>::new();
    let (reg, nh) = setup(&table, 2);
    let (_other, other_nh) = setup(&table, 3);
    for mode in [AddMode::Neighbour, AddMode::First, AddMode::New] {
        assert_invalid(reg.add_route_with(p4("10.0.0.0/8"), RouteData::new(vec![]), mode), &["next hops"]);
        assert_access_denied(
            reg.add_route_with(p4("10.0.0.0/8"), RouteData::new(vec![other_nh.clone()]), mode),
            "another entity",
        );
    }
    assert_eq!(table.route_count(), 0);
    assert_eq!(table.destination_count(), 0);
    drop(nh);
}
