//! Model-based property test of the whole single-threaded API.
//!
//! Random sequences of operations — registering and deregistering a few entities with varied
//! default preferences, adding and deleting next hops, adding routes in all three [`AddMode`]s
//! with random preference, metric, views, `INACTIVE` flag, neighbour and next hops, updating and
//! deleting routes (including routes already deleted and routes of other entities), and every
//! query (exact, most/less specific, more/less specifics, exact route, is-best, lookup, counts) —
//! are applied both to a [`Table`] and to a plain reference model: a `BTreeMap` from prefix to the
//! routes there, with the best route computed by the rule of the spec (lowest preference, then
//! metric, then lower (protocol, instance), then the route created first; `INACTIVE` never best;
//! preference 0 replaced by the owner's default).
//!
//! Every answer must be equal: results, errors (by variant), [`ChangeOutcome`] (`created`, and
//! `best_changed`: in some view the best route is another route or the same route with new data),
//! the routes of each destination in best order, the best route per view, the counts. The prefix
//! space is small and deeply nested (every supernet of a region prefix, all its subnets four bits
//! down, and a few far or very long prefixes), so covering and covered routes meet constantly.
//! It runs for IPv4 and, with fewer cases, for IPv6; `RTMGR_MODEL_CASES=<n>` runs `n` cases of
//! each for a longer search.
//!
//! Points the spec leaves to the implementation, as the model encodes them: `AddMode::First`
//! (and `Neighbour`) update the caller's first matching route in best order (inactive and
//! view-less routes included); an update validates the whole new data, so a route listing a
//! next hop deleted since can only be updated by replacing it; a destination whose routes are in
//! no view exists (it counts) but no query in any view reports it; updates and deletes check
//! the owner (`AccessDenied`), then existence (`NotFound`), then the data (count, ownership,
//! liveness).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use rtmgr::{
    AddMode, ChangeOutcome, DestMatch, EntityConfig, EntityId, Error, Family, ForwardingLayout, Ipv4, Ipv6,
    NextHop, NextHopData, Preference, Prefix, Registration, Route, RouteData, RouteFlags, RouteInfo,
    RouteMatch, Selector, Table, TableConfig, ViewSet,
};

// ---------------------------------------------------------------------------------------------
// Families
// ---------------------------------------------------------------------------------------------

/// What the test needs to know about a family, computed independently of the crate.
trait TestFamily: Family {
    /// The address as a left-aligned 128-bit key.
    fn bits(addr: Self::Addr) -> u128;
    /// The address of a left-aligned key.
    fn from_bits(bits: u128) -> Self::Addr;
    /// The nested region the prefix space is built around, and a few extra prefixes.
    fn region() -> (&'static str, &'static [&'static str]);
    /// `HOT` nested prefixes that operations pick more often than the rest of the space, so
    /// that routes meet on the same destinations.
    fn hot() -> [&'static str; HOT];
    /// The address of next hop number `i`.
    fn next_hop_addr(i: u8) -> Self::Addr;
}

impl TestFamily for Ipv4 {
    fn bits(addr: Ipv4Addr) -> u128 {
        (u32::from(addr) as u128) << 96
    }
    fn from_bits(bits: u128) -> Ipv4Addr {
        Ipv4Addr::from((bits >> 96) as u32)
    }
    fn region() -> (&'static str, &'static [&'static str]) {
        (
            "10.0.0.0/8",
            &[
                "10.0.0.0/16",
                "10.0.0.0/24",
                "10.1.2.0/24",
                "10.1.2.3/32",
                "10.0.0.0/32",
                "10.255.255.255/32",
                "11.0.0.0/8",
                "128.0.0.0/1",
                "192.168.0.0/16",
                "255.255.255.255/32",
            ],
        )
    }
    fn hot() -> [&'static str; HOT] {
        [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.0.0.0/9",
            "10.0.0.0/11",
            "10.0.0.0/12",
            "10.0.0.0/16",
            "10.1.2.0/24",
            "10.1.2.3/32",
        ]
    }
    fn next_hop_addr(i: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, i + 1)
    }
}

impl TestFamily for Ipv6 {
    fn bits(addr: Ipv6Addr) -> u128 {
        u128::from(addr)
    }
    fn from_bits(bits: u128) -> Ipv6Addr {
        Ipv6Addr::from(bits)
    }
    fn region() -> (&'static str, &'static [&'static str]) {
        (
            "2001:db8::/32",
            &[
                "2001:db8::/48",
                "2001:db8::/64",
                "2001:db8::/127",
                "2001:db8::/128",
                "2001:db8::1/128",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128",
                "2001:db9::/32",
                "8000::/1",
                "ff00::/8",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
            ],
        )
    }
    fn hot() -> [&'static str; HOT] {
        [
            "::/0",
            "2001:db8::/32",
            "2001:db8::/33",
            "2001:db8::/35",
            "2001:db8::/36",
            "2001:db8::/48",
            "2001:db8::/64",
            "2001:db8::1/128",
        ]
    }
    fn next_hop_addr(i: u8) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i as u16 + 1)
    }
}

/// A prefix as the model sees it: left-aligned key and length. Ordered as the crate orders
/// enumerations (address, then length).
type Key = (u128, u8);

fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - len as u32) }
}

fn key_covers(outer: Key, inner: Key) -> bool {
    inner.1 >= outer.1 && inner.0 & mask(outer.1) == outer.0
}

fn prefix_of<F: TestFamily>(k: Key) -> Prefix<F> {
    Prefix::new(F::from_bits(k.0), k.1).expect("model keys are valid prefixes")
}

fn key_of<F: TestFamily>(p: Prefix<F>) -> Key {
    (F::bits(p.addr()), p.len())
}

/// The prefix space: every supernet of the region, the region, all its subnets down to four
/// more bits, and the extras.
fn prefix_space<F: TestFamily>() -> Vec<Key> {
    let (region, extras) = F::region();
    let region: Prefix<F> = region.parse().unwrap();
    let (rkey, rlen) = key_of(region);
    let mut space = Vec::new();
    for len in 0..=rlen {
        space.push((rkey & mask(len), len));
    }
    for extra in 1..=4u8 {
        let len = rlen + extra;
        for i in 0..(1u128 << extra) {
            space.push((rkey | (i << (128 - len as u32)), len));
        }
    }
    for e in extras.iter().chain(F::hot().iter()) {
        space.push(key_of(e.parse::<Prefix<F>>().unwrap()));
    }
    space.sort();
    space.dedup();
    space
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

/// The entity slots: identity and default preference. Two share protocol 13 so that the
/// protocol selector and the instance tie-break matter; one has default preference 0.
const SLOTS: [(u32, u32, u32); 4] = [(8, 0, 120), (13, 0, 110), (13, 1, 110), (14, 0, 0)];
const MAX_NEXT_HOPS: usize = 3;

/// A next hop to use: one of the acting entity's live next hops, or any next hop ever made
/// (possibly another entity's, or deleted).
#[derive(Clone, Copy, Debug)]
enum NhPick {
    Own(usize),
    Any(usize),
}

/// A route to act on: one of the acting entity's live routes, or any route ever made.
#[derive(Clone, Copy, Debug)]
enum RoutePick {
    Own(usize),
    Any(usize),
}

#[derive(Clone, Copy, Debug)]
enum SelPick {
    Best,
    Entity(usize),
    Protocol(u32),
}

#[derive(Clone, Copy, Debug)]
enum AddrPick {
    /// The first or last address of a prefix of the space.
    Edge(usize, bool),
    /// A random address inside the region.
    Region(u128),
    /// A random address.
    Any(u128),
}

#[derive(Clone, Debug)]
struct RouteSpec {
    preference: u32,
    metric: u32,
    views: u32,
    inactive: bool,
    neighbour: Option<NhPick>,
    next_hops: Vec<NhPick>,
    private: u64,
}

#[derive(Clone, Debug)]
struct UpdateSpec {
    preference: Option<u32>,
    metric: Option<u32>,
    views: Option<u32>,
    inactive: Option<bool>,
    neighbour: Option<Option<NhPick>>,
    next_hops: Option<Vec<NhPick>>,
    private: Option<u64>,
}

#[derive(Clone, Debug)]
struct CriteriaSpec {
    owner: Option<usize>,
    protocol: Option<u32>,
    neighbour: Option<Option<NhPick>>,
    preference: Option<(u32, u32)>,
    /// Match the next-hop list of this route (as the model last knew it).
    next_hops_of: Option<RoutePick>,
    interface: Option<u32>,
    views: u32,
}

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Deregister(usize),
    AddNextHop { slot: usize, addr: u8, interface: u32, private: u64 },
    DeleteNextHop { slot: usize, pick: NhPick },
    AddRoute { slot: usize, prefix: PrefixPick, mode: AddMode, spec: RouteSpec },
    UpdateRoute { slot: usize, route: RoutePick, change: UpdateSpec },
    DeleteRoute { slot: usize, route: RoutePick },
    Exact { prefix: PrefixPick, views: u32, selector: SelPick },
    MostSpecific { addr: AddrPick, views: u32, selector: SelPick },
    LessSpecific { route: RoutePick, views: u32, selector: SelPick },
    MoreSpecifics { prefix: PrefixPick, views: u32, selector: SelPick },
    LessSpecifics { prefix: PrefixPick, views: u32, selector: SelPick },
    ExactRoute { prefix: PrefixPick, criteria: CriteriaSpec },
    IsBest { route: RoutePick },
    Lookup { addr: AddrPick, views: u32 },
}

const HOT: usize = 8;

/// A prefix: below `HOT`, one of the family's hot prefixes; else any prefix of the space.
fn prefix_index() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0..HOT, 2 => HOT..usize::MAX]
}

/// A destination to act on or ask about.
#[derive(Clone, Copy, Debug)]
enum PrefixPick {
    /// See [`prefix_index`].
    Index(usize),
    /// The prefix of a route (one of the acting entity's if it has any), so that routes are
    /// added again where they already are: updates in place, and several routes of one owner.
    OfRoute(RoutePick),
}

fn prefix_pick() -> impl Strategy<Value = PrefixPick> {
    prop_oneof![
        3 => prefix_index().prop_map(PrefixPick::Index),
        2 => route_pick().prop_map(PrefixPick::OfRoute),
    ]
}

fn slot() -> impl Strategy<Value = usize> {
    0..SLOTS.len()
}

fn nh_pick() -> impl Strategy<Value = NhPick> {
    prop_oneof![
        12 => any::<usize>().prop_map(NhPick::Own),
        1 => any::<usize>().prop_map(NhPick::Any),
    ]
}

fn route_pick() -> impl Strategy<Value = RoutePick> {
    prop_oneof![
        4 => any::<usize>().prop_map(RoutePick::Own),
        1 => any::<usize>().prop_map(RoutePick::Any),
    ]
}

fn selector() -> impl Strategy<Value = SelPick> {
    prop_oneof![
        3 => Just(SelPick::Best),
        1 => slot().prop_map(SelPick::Entity),
        1 => prop::sample::select(vec![8u32, 13, 14, 99]).prop_map(SelPick::Protocol),
    ]
}

/// Views of routes: unicast, multicast, both, none, or unicast and view 5.
fn route_views() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => Just(1u32),
        2 => Just(2u32),
        3 => Just(3u32),
        1 => Just(0u32),
        1 => Just(0x21u32),
    ]
}

/// Views asked by queries.
fn query_views() -> impl Strategy<Value = u32> {
    prop_oneof![
        5 => Just(1u32),
        2 => Just(2u32),
        2 => Just(3u32),
        1 => Just(0x20u32),
        1 => Just(0x10u32),
        2 => Just(u32::MAX),
    ]
}

/// Preferences: 0 (the owner's default) often, so defaults and ties matter.
fn preference() -> impl Strategy<Value = u32> {
    prop::sample::select(vec![0u32, 0, 100, 110, 120, 1])
}

fn next_hop_list() -> impl Strategy<Value = Vec<NhPick>> {
    prop_oneof![
        12 => prop::collection::vec(nh_pick(), 1..=2),
        1 => Just(Vec::new()),
        1 => prop::collection::vec(nh_pick(), MAX_NEXT_HOPS + 1..=MAX_NEXT_HOPS + 1),
        1 => prop::collection::vec(nh_pick(), MAX_NEXT_HOPS..=MAX_NEXT_HOPS),
    ]
}

fn route_spec() -> impl Strategy<Value = RouteSpec> {
    (
        preference(),
        0u32..3,
        route_views(),
        prop::bool::weighted(0.2),
        prop::option::weighted(0.4, nh_pick()),
        next_hop_list(),
        0u64..4,
    )
        .prop_map(|(preference, metric, views, inactive, neighbour, next_hops, private)| RouteSpec {
            preference,
            metric,
            views,
            inactive,
            neighbour,
            next_hops,
            private,
        })
}

fn update_spec() -> impl Strategy<Value = UpdateSpec> {
    (
        prop::option::weighted(0.5, preference()),
        prop::option::weighted(0.5, 0u32..3),
        prop::option::weighted(0.3, route_views()),
        prop::option::weighted(0.3, prop::bool::weighted(0.4)),
        prop::option::weighted(0.15, prop::option::weighted(0.5, nh_pick())),
        prop::option::weighted(0.3, next_hop_list()),
        prop::option::weighted(0.3, 0u64..4),
    )
        .prop_map(|(preference, metric, views, inactive, neighbour, next_hops, private)| UpdateSpec {
            preference,
            metric,
            views,
            inactive,
            neighbour,
            next_hops,
            private,
        })
}

fn criteria() -> impl Strategy<Value = CriteriaSpec> {
    (
        prop::option::weighted(0.3, slot()),
        prop::option::weighted(0.2, prop::sample::select(vec![8u32, 13, 14, 99])),
        prop::option::weighted(0.15, prop::option::weighted(0.5, nh_pick())),
        prop::option::weighted(0.15, (preference(), 0u32..3)),
        prop::option::weighted(0.15, route_pick()),
        prop::option::weighted(0.2, 0u32..3),
        query_views(),
    )
        .prop_map(|(owner, protocol, neighbour, preference, next_hops_of, interface, views)| {
            CriteriaSpec { owner, protocol, neighbour, preference, next_hops_of, interface, views }
        })
}

fn addr_pick() -> impl Strategy<Value = AddrPick> {
    prop_oneof![
        2 => (prefix_index(), any::<bool>()).prop_map(|(p, last)| AddrPick::Edge(p, last)),
        2 => any::<u128>().prop_map(AddrPick::Region),
        1 => any::<u128>().prop_map(AddrPick::Any),
    ]
}

fn add_mode() -> impl Strategy<Value = AddMode> {
    prop_oneof![
        3 => Just(AddMode::Neighbour),
        2 => Just(AddMode::First),
        2 => Just(AddMode::New),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => slot().prop_map(Op::Register),
        1 => slot().prop_map(Op::Deregister),
        4 => (slot(), 0u8..4, 0u32..3, 0u64..3).prop_map(|(slot, addr, interface, private)| {
            Op::AddNextHop { slot, addr, interface, private }
        }),
        1 => (slot(), nh_pick()).prop_map(|(slot, pick)| Op::DeleteNextHop { slot, pick }),
        14 => (slot(), prefix_pick(), add_mode(), route_spec())
            .prop_map(|(slot, prefix, mode, spec)| Op::AddRoute { slot, prefix, mode, spec }),
        4 => (slot(), route_pick(), update_spec())
            .prop_map(|(slot, route, change)| Op::UpdateRoute { slot, route, change }),
        5 => (slot(), route_pick()).prop_map(|(slot, route)| Op::DeleteRoute { slot, route }),
        2 => (prefix_pick(), query_views(), selector())
            .prop_map(|(prefix, views, selector)| Op::Exact { prefix, views, selector }),
        3 => (addr_pick(), query_views(), selector())
            .prop_map(|(addr, views, selector)| Op::MostSpecific { addr, views, selector }),
        2 => (route_pick(), query_views(), selector())
            .prop_map(|(route, views, selector)| Op::LessSpecific { route, views, selector }),
        2 => (prefix_pick(), query_views(), selector())
            .prop_map(|(prefix, views, selector)| Op::MoreSpecifics { prefix, views, selector }),
        2 => (prefix_pick(), query_views(), selector())
            .prop_map(|(prefix, views, selector)| Op::LessSpecifics { prefix, views, selector }),
        2 => (prefix_pick(), criteria())
            .prop_map(|(prefix, criteria)| Op::ExactRoute { prefix, criteria }),
        2 => route_pick().prop_map(|route| Op::IsBest { route }),
        3 => (addr_pick(), query_views()).prop_map(|(addr, views)| Op::Lookup { addr, views }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

/// The kind of an error, for comparing results (messages are free text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrKind {
    InvalidHandle,
    AccessDenied,
    InvalidParameter,
    NotFound,
    AlreadyExists,
    Other,
}

fn kind(e: &Error) -> ErrKind {
    match e {
        Error::InvalidHandle(_) => ErrKind::InvalidHandle,
        Error::AccessDenied(_) => ErrKind::AccessDenied,
        Error::InvalidParameter(_) => ErrKind::InvalidParameter,
        Error::NotFound => ErrKind::NotFound,
        Error::AlreadyExists => ErrKind::AlreadyExists,
        _ => ErrKind::Other,
    }
}

#[derive(Clone, Debug)]
struct MNextHop {
    /// The registration (model generation) that owns it.
    owner_gen: u64,
    addr: u8,
    interface: u32,
    private: u64,
    deleted: bool,
}

/// The changeable data of a model route.
#[derive(Clone, Debug, PartialEq)]
struct MData {
    preference: u32,
    metric: u32,
    views: u32,
    inactive: bool,
    neighbour: Option<usize>,
    next_hops: Vec<usize>,
    private: u64,
}

#[derive(Clone, Debug)]
struct MRoute {
    prefix: Key,
    owner_slot: usize,
    owner_gen: u64,
    data: MData,
    /// Bumped on every update: a best route with new data counts as a best-route change.
    version: u64,
    alive: bool,
}

#[derive(Default)]
struct Model {
    /// Per slot, the generation of its current registration.
    regs: [Option<u64>; SLOTS.len()],
    next_gen: u64,
    next_hops: Vec<MNextHop>,
    /// Every route ever made, by creation order (the index is the creation order).
    routes: Vec<MRoute>,
    /// The live routes of each destination, in creation order.
    dests: BTreeMap<Key, Vec<usize>>,
}

fn entity_id(slot: usize) -> EntityId {
    EntityId::new(SLOTS[slot].0, SLOTS[slot].1)
}

fn selector_of(s: SelPick) -> Selector {
    match s {
        SelPick::Best => Selector::Best,
        SelPick::Entity(slot) => Selector::Entity(entity_id(slot)),
        SelPick::Protocol(p) => Selector::Protocol(p),
    }
}

fn accepts(s: SelPick, owner: usize) -> bool {
    match s {
        SelPick::Best => true,
        SelPick::Entity(slot) => entity_id(slot) == entity_id(owner),
        SelPick::Protocol(p) => p == SLOTS[owner].0,
    }
}

impl Model {
    /// The live routes at a prefix in best order: preference, metric, owner identity,
    /// creation order.
    fn ordered(&self, key: Key) -> Vec<usize> {
        let mut ids = self.dests.get(&key).cloned().unwrap_or_default();
        ids.sort_by_key(|&id| {
            let r = &self.routes[id];
            (r.data.preference, r.data.metric, entity_id(r.owner_slot), id)
        });
        ids
    }

    fn best(&self, key: Key, views: u32, sel: SelPick) -> Option<usize> {
        self.ordered(key).into_iter().find(|&id| {
            let r = &self.routes[id];
            r.data.views & views != 0 && !r.data.inactive && accepts(sel, r.owner_slot)
        })
    }

    /// The best route (and its data version) of each of the 32 views.
    fn best_per_view(&self, key: Key) -> Vec<Option<(usize, u64)>> {
        (0..32)
            .map(|v| self.best(key, 1 << v, SelPick::Best).map(|id| (id, self.routes[id].version)))
            .collect()
    }

    fn has_route_in(&self, key: Key, views: u32) -> bool {
        self.dests.get(&key).is_some_and(|ids| ids.iter().any(|&id| self.routes[id].data.views & views != 0))
    }

    fn route_count(&self) -> usize {
        self.dests.values().map(Vec::len).sum()
    }

    fn live_next_hops(&self, generation: u64) -> Vec<usize> {
        (0..self.next_hops.len())
            .filter(|&i| self.next_hops[i].owner_gen == generation && !self.next_hops[i].deleted)
            .collect()
    }

    fn live_routes(&self, generation: u64) -> Vec<usize> {
        (0..self.routes.len())
            .filter(|&i| self.routes[i].owner_gen == generation && self.routes[i].alive)
            .collect()
    }

    /// Resolves a next-hop pick for the entity of generation `generation`.
    fn resolve_nh(&self, generation: u64, pick: NhPick) -> Option<usize> {
        let own = self.live_next_hops(generation);
        match pick {
            NhPick::Own(i) if !own.is_empty() => Some(own[i % own.len()]),
            NhPick::Own(i) | NhPick::Any(i) => (!self.next_hops.is_empty()).then(|| i % self.next_hops.len()),
        }
    }

    fn resolve_route(&self, generation: Option<u64>, pick: RoutePick) -> Option<usize> {
        let own = generation.map(|g| self.live_routes(g)).unwrap_or_default();
        match pick {
            RoutePick::Own(i) if !own.is_empty() => Some(own[i % own.len()]),
            RoutePick::Own(i) | RoutePick::Any(i) => (!self.routes.is_empty()).then(|| i % self.routes.len()),
        }
    }

    /// The validation of route data: next-hop count, then each next hop and the neighbour
    /// (another entity's: AccessDenied; deleted: InvalidHandle). Fills in the default.
    fn validate(&self, generation: u64, slot: usize, mut data: MData) -> Result<MData, ErrKind> {
        if data.next_hops.is_empty() || data.next_hops.len() > MAX_NEXT_HOPS {
            return Err(ErrKind::InvalidParameter);
        }
        for &nh in data.next_hops.iter().chain(data.neighbour.iter()) {
            let nh = &self.next_hops[nh];
            if nh.owner_gen != generation {
                return Err(ErrKind::AccessDenied);
            }
            if nh.deleted {
                return Err(ErrKind::InvalidHandle);
            }
        }
        if data.preference == 0 {
            data.preference = SLOTS[slot].2;
        }
        Ok(data)
    }

    fn add_route(
        &mut self,
        slot: usize,
        key: Key,
        data: MData,
        mode: AddMode,
    ) -> Result<(usize, ChangeOutcome), ErrKind> {
        let generation = self.regs[slot].expect("acting entity is registered");
        let data = self.validate(generation, slot, data)?;
        let before = self.best_per_view(key);
        let existing = match mode {
            AddMode::New => None,
            AddMode::First => {
                self.ordered(key).into_iter().find(|&id| self.routes[id].owner_gen == generation)
            }
            AddMode::Neighbour => self.ordered(key).into_iter().find(|&id| {
                self.routes[id].owner_gen == generation && self.routes[id].data.neighbour == data.neighbour
            }),
        };
        let (id, created) = match existing {
            Some(id) => {
                let r = &mut self.routes[id];
                r.data = data;
                r.version += 1;
                (id, false)
            }
            None => {
                let id = self.routes.len();
                self.routes.push(MRoute {
                    prefix: key,
                    owner_slot: slot,
                    owner_gen: generation,
                    data,
                    version: 0,
                    alive: true,
                });
                self.dests.entry(key).or_default().push(id);
                (id, true)
            }
        };
        let best_changed = before != self.best_per_view(key);
        Ok((id, ChangeOutcome { created, best_changed }))
    }

    fn update_route(
        &mut self,
        slot: usize,
        id: usize,
        change: impl FnOnce(&mut MData),
    ) -> Result<ChangeOutcome, ErrKind> {
        let generation = self.regs[slot].expect("acting entity is registered");
        if self.routes[id].owner_gen != generation {
            return Err(ErrKind::AccessDenied);
        }
        if !self.routes[id].alive {
            return Err(ErrKind::NotFound);
        }
        let mut data = self.routes[id].data.clone();
        change(&mut data);
        let data = self.validate(generation, slot, data)?;
        let key = self.routes[id].prefix;
        let before = self.best_per_view(key);
        self.routes[id].data = data;
        self.routes[id].version += 1;
        Ok(ChangeOutcome { created: false, best_changed: before != self.best_per_view(key) })
    }

    fn remove_route(&mut self, id: usize) {
        let key = self.routes[id].prefix;
        self.routes[id].alive = false;
        let list = self.dests.get_mut(&key).expect("live route has a destination");
        list.retain(|&r| r != id);
        if list.is_empty() {
            self.dests.remove(&key);
        }
    }

    fn delete_route(&mut self, slot: usize, id: usize) -> Result<bool, ErrKind> {
        let generation = self.regs[slot].expect("acting entity is registered");
        if self.routes[id].owner_gen != generation {
            return Err(ErrKind::AccessDenied);
        }
        if !self.routes[id].alive {
            return Err(ErrKind::NotFound);
        }
        let key = self.routes[id].prefix;
        let before = self.best_per_view(key);
        self.remove_route(id);
        Ok(before != self.best_per_view(key))
    }

    fn deregister(&mut self, slot: usize) {
        let generation = self.regs[slot].take().expect("registered");
        for id in self.live_routes(generation) {
            self.remove_route(id);
        }
        for nh in self.next_hops.iter_mut().filter(|n| n.owner_gen == generation) {
            nh.deleted = true;
        }
    }

    /// The longest prefix covering `key` with a route in `views`.
    fn most_specific(&self, key: Key, views: u32) -> Option<Key> {
        self.dests
            .keys()
            .filter(|&&d| key_covers(d, key) && self.has_route_in(d, views))
            .max_by_key(|d| d.1)
            .copied()
    }

    /// The longest prefix covering `addr` whose best route in `views` exists.
    fn lookup(&self, addr: Key, views: u32) -> Option<(Key, usize)> {
        self.dests
            .keys()
            .filter(|&&d| key_covers(d, addr))
            .filter_map(|&d| self.best(d, views, SelPick::Best).map(|id| (d, id)))
            .max_by_key(|(d, _)| d.1)
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test, and the comparison
// ---------------------------------------------------------------------------------------------

struct Harness<F: TestFamily> {
    space: Vec<Key>,
    model: Model,
    table: Table<F>,
    regs: Vec<Option<Registration<F>>>,
    /// The table's handle for each model next hop and route, by model index.
    next_hops: Vec<NextHop<F>>,
    routes: Vec<Route<F>>,
}

/// Which forwarding layout the next harness gets (they alternate).
static LAYOUT_TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl<F: TestFamily> Harness<F> {
    fn new() -> Self {
        let table = Table::<F>::with_config(TableConfig {
            max_next_hops: MAX_NEXT_HOPS,
            max_batch: 16,
            // Two compiled forwarding tables, so `lookup` is checked on both paths.
            forwarding: ViewSet::UNICAST | ViewSet::MULTICAST,
            // Both layouts, every other case (IPv6 tables are compact either way).
            forwarding_layout: if LAYOUT_TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2 == 0 {
                ForwardingLayout::Direct
            } else {
                ForwardingLayout::Compact
            },
        })
        .unwrap();
        let mut h = Harness {
            space: prefix_space::<F>(),
            model: Model::default(),
            table,
            regs: (0..SLOTS.len()).map(|_| None).collect(),
            next_hops: Vec::new(),
            routes: Vec::new(),
        };
        for slot in 0..SLOTS.len() {
            h.register(slot);
        }
        h
    }

    fn register(&mut self, slot: usize) {
        let (p, i, pref) = SLOTS[slot];
        let got = self
            .table
            .register(EntityConfig::new(EntityId::new(p, i)).default_preference(pref).views(ViewSet::ALL));
        if self.model.regs[slot].is_some() {
            assert_eq!(got.map(|_| ()).unwrap_err(), Error::AlreadyExists);
            return;
        }
        let reg = got.expect("registering a free identity succeeds");
        assert_eq!(reg.id(), EntityId::new(p, i));
        assert_eq!(reg.entity().default_preference(), pref);
        self.model.regs[slot] = Some(self.model.next_gen);
        self.model.next_gen += 1;
        self.regs[slot] = Some(reg);
        // Two next hops to start with, so that most route additions can succeed.
        for addr in 0..2 {
            self.apply(&Op::AddNextHop { slot, addr, interface: addr as u32, private: 0 });
        }
    }

    fn prefix_key(&self, generation: Option<u64>, pick: PrefixPick) -> Key {
        match pick {
            PrefixPick::Index(i) => self.key_at(i),
            PrefixPick::OfRoute(r) => match self.model.resolve_route(generation, r) {
                Some(id) => self.model.routes[id].prefix,
                None => self.key_at(0),
            },
        }
    }

    fn key_at(&self, i: usize) -> Key {
        if i < HOT {
            key_of(F::hot()[i].parse::<Prefix<F>>().unwrap())
        } else {
            self.space[(i - HOT) % self.space.len()]
        }
    }

    fn addr(&self, pick: AddrPick) -> u128 {
        let width = mask(F::BITS);
        match pick {
            AddrPick::Edge(p, last) => {
                let (k, len) = self.key_at(p);
                if last { (k | !mask(len)) & width } else { k }
            }
            AddrPick::Region(r) => {
                let region: Prefix<F> = F::region().0.parse().unwrap();
                let (k, len) = key_of(region);
                (k | (r & !mask(len))) & width
            }
            AddrPick::Any(r) => r & width,
        }
    }

    fn nh_handles(&self, ids: &[usize]) -> Vec<NextHop<F>> {
        ids.iter().map(|&i| self.next_hops[i].clone()).collect()
    }

    /// Checks a route's data as the table reports it against the model.
    fn check_info(&self, info: &RouteInfo<F>, id: usize, what: &str) {
        let m = &self.model.routes[id];
        assert!(info.route == self.routes[id], "{what}: expected model route {id} ({m:?}), got {info:?}");
        assert_eq!(info.owner, entity_id(m.owner_slot), "{what}: owner");
        assert_eq!(info.prefix(), prefix_of::<F>(m.prefix), "{what}: prefix");
        assert_eq!(
            info.preference,
            Preference::new(m.data.preference, m.data.metric),
            "{what}: preference of route {id}"
        );
        assert_eq!(info.views, ViewSet::from_bits(m.data.views), "{what}: views");
        assert_eq!(info.flags.contains(RouteFlags::INACTIVE), m.data.inactive, "{what}: INACTIVE flag");
        assert_eq!(info.private, m.data.private, "{what}: private");
        assert!(info.next_hops == self.nh_handles(&m.data.next_hops), "{what}: next hops of route {id}");
        assert!(
            info.neighbour == m.data.neighbour.map(|n| self.next_hops[n].clone()),
            "{what}: neighbour of route {id}"
        );
    }

    fn check_opt_info(&self, got: Option<&RouteInfo<F>>, want: Option<usize>, what: &str) {
        match (got, want) {
            (None, None) => {}
            (Some(info), Some(id)) => self.check_info(info, id, what),
            (got, want) => panic!("{what}: table says {got:?}, model says route {want:?}"),
        }
    }

    fn check_match(&self, got: &DestMatch<F>, key: Key, views: u32, sel: SelPick, what: &str) {
        assert_eq!(got.destination.prefix(), prefix_of::<F>(key), "{what}: prefix");
        assert!(!got.destination.is_deleted(), "{what}: destination deleted");
        let want = self.model.best(key, views, sel);
        self.check_opt_info(got.route.as_ref(), want, what);
    }

    fn check_match_result(
        &self,
        got: Result<DestMatch<F>, Error>,
        want: Option<Key>,
        views: u32,
        sel: SelPick,
        what: &str,
    ) {
        match (got, want) {
            (Ok(m), Some(k)) => self.check_match(&m, k, views, sel, what),
            (Err(Error::NotFound), None) => {}
            (got, want) => panic!("{what}: table says {got:?}, model says {want:?}"),
        }
    }

    fn check_match_list(&self, got: Vec<DestMatch<F>>, want: Vec<Key>, views: u32, sel: SelPick, what: &str) {
        let got_prefixes: Vec<Prefix<F>> = got.iter().map(|m| m.destination.prefix()).collect();
        let want_prefixes: Vec<Prefix<F>> = want.iter().map(|&k| prefix_of::<F>(k)).collect();
        assert_eq!(got_prefixes, want_prefixes, "{what}: destinations");
        for (m, &k) in got.iter().zip(&want) {
            self.check_match(m, k, views, sel, what);
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Register(slot) => self.register(*slot),
            Op::Deregister(slot) => {
                let Some(reg) = self.regs[*slot].take() else {
                    return;
                };
                let entity = reg.entity();
                let generation = self.model.regs[*slot].unwrap();
                reg.deregister();
                assert!(!entity.is_registered());
                self.model.deregister(*slot);
                for (i, nh) in self.model.next_hops.iter().enumerate() {
                    if nh.owner_gen == generation {
                        assert!(self.next_hops[i].is_deleted(), "next hop {i} of deregistered");
                    }
                }
            }
            Op::AddNextHop { slot, addr, interface, private } => {
                let Some(reg) = &self.regs[*slot] else { return };
                let generation = self.model.regs[*slot].unwrap();
                let data = NextHopData { private: *private, ..Default::default() };
                let (nh, created) = reg
                    .add_next_hop(F::next_hop_addr(*addr), *interface, data)
                    .expect("add_next_hop of a registered entity succeeds");
                let existing = self.model.live_next_hops(generation).into_iter().find(|&i| {
                    let n = &self.model.next_hops[i];
                    n.addr == *addr && n.interface == *interface
                });
                match existing {
                    Some(i) => {
                        assert!(!created, "add_next_hop of an existing next hop creates");
                        assert!(nh == self.next_hops[i], "add_next_hop returned another");
                        self.model.next_hops[i].private = *private;
                    }
                    None => {
                        assert!(created, "add_next_hop of a new next hop does not create");
                        self.model.next_hops.push(MNextHop {
                            owner_gen: generation,
                            addr: *addr,
                            interface: *interface,
                            private: *private,
                            deleted: false,
                        });
                        self.next_hops.push(nh.clone());
                    }
                }
                assert_eq!(nh.address(), F::next_hop_addr(*addr));
                assert_eq!(nh.interface(), *interface);
                assert_eq!(nh.owner(), entity_id(*slot));
                assert_eq!(
                    reg.find_next_hop(F::next_hop_addr(*addr), *interface)
                        .expect("find_next_hop finds what was just added"),
                    nh
                );
            }
            Op::DeleteNextHop { slot, pick } => {
                let Some(reg) = &self.regs[*slot] else { return };
                let generation = self.model.regs[*slot].unwrap();
                let Some(i) = self.model.resolve_nh(generation, *pick) else {
                    return;
                };
                let got = reg.delete_next_hop(&self.next_hops[i]);
                let m = &mut self.model.next_hops[i];
                let want = if m.owner_gen != generation {
                    Err(ErrKind::AccessDenied)
                } else if m.deleted {
                    Err(ErrKind::NotFound)
                } else {
                    m.deleted = true;
                    Ok(())
                };
                assert_eq!(got.map_err(|e| kind(&e)), want, "delete_next_hop {i}");
                let (addr, interface) = (F::next_hop_addr(m.addr), m.interface);
                if want.is_ok() {
                    assert!(self.next_hops[i].is_deleted());
                    assert_eq!(reg.find_next_hop(addr, interface).unwrap_err(), Error::NotFound);
                }
            }
            Op::AddRoute { slot, prefix, mode, spec } => {
                let Some(generation) = self.model.regs[*slot] else {
                    return;
                };
                let key = self.prefix_key(Some(generation), *prefix);
                let data = MData {
                    preference: spec.preference,
                    metric: spec.metric,
                    views: spec.views,
                    inactive: spec.inactive,
                    neighbour: spec.neighbour.and_then(|p| self.model.resolve_nh(generation, p)),
                    next_hops: spec
                        .next_hops
                        .iter()
                        .filter_map(|&p| self.model.resolve_nh(generation, p))
                        .collect(),
                    private: spec.private,
                };
                let route_data = self.route_data(&data);
                let reg = self.regs[*slot].as_ref().unwrap();
                let got = reg.add_route_with(prefix_of::<F>(key), route_data, *mode);
                let want = self.model.add_route(*slot, key, data, *mode);
                match (got, want) {
                    (Ok((route, outcome)), Ok((id, want_outcome))) => {
                        assert_eq!(outcome, want_outcome, "outcome of {op:?}");
                        if want_outcome.created {
                            assert_eq!(id, self.routes.len());
                            self.routes.push(route.clone());
                        } else {
                            assert!(route == self.routes[id], "{op:?} updated another route");
                        }
                        self.check_info(&route.info().unwrap(), id, "added route");
                    }
                    (Err(e), Err(k)) => assert_eq!(kind(&e), k, "error of {op:?}: {e}"),
                    (got, want) => {
                        panic!("{op:?}: table says {got:?}, model says {want:?}")
                    }
                }
            }
            Op::UpdateRoute { slot, route, change } => {
                let Some(generation) = self.model.regs[*slot] else {
                    return;
                };
                let Some(id) = self.model.resolve_route(Some(generation), *route) else {
                    return;
                };
                let neighbour =
                    change.neighbour.map(|n| n.and_then(|p| self.model.resolve_nh(generation, p)));
                let next_hops: Option<Vec<usize>> = change
                    .next_hops
                    .as_ref()
                    .map(|l| l.iter().filter_map(|&p| self.model.resolve_nh(generation, p)).collect());
                let nb_handle = neighbour.map(|n| n.map(|i| self.next_hops[i].clone()));
                let nh_handles = next_hops.as_ref().map(|l| self.nh_handles(l));
                let reg = self.regs[*slot].as_ref().unwrap();
                let got = reg.update_route(&self.routes[id], |d| {
                    if let Some(p) = change.preference {
                        d.preference.preference = p;
                    }
                    if let Some(m) = change.metric {
                        d.preference.metric = m;
                    }
                    if let Some(v) = change.views {
                        d.views = ViewSet::from_bits(v);
                    }
                    if let Some(i) = change.inactive {
                        d.flags = if i { RouteFlags::INACTIVE } else { RouteFlags::NONE };
                    }
                    if let Some(n) = &nb_handle {
                        d.neighbour = n.clone();
                    }
                    if let Some(l) = &nh_handles {
                        d.next_hops = l.clone();
                    }
                    if let Some(p) = change.private {
                        d.private = p;
                    }
                });
                let want = self.model.update_route(*slot, id, |d| {
                    if let Some(p) = change.preference {
                        d.preference = p;
                    }
                    if let Some(m) = change.metric {
                        d.metric = m;
                    }
                    if let Some(v) = change.views {
                        d.views = v;
                    }
                    if let Some(i) = change.inactive {
                        d.inactive = i;
                    }
                    if let Some(n) = neighbour {
                        d.neighbour = n;
                    }
                    if let Some(l) = next_hops {
                        d.next_hops = l;
                    }
                    if let Some(p) = change.private {
                        d.private = p;
                    }
                });
                assert_eq!(got.map_err(|e| kind(&e)), want, "update of route {id} by slot {slot}: {op:?}");
            }
            Op::DeleteRoute { slot, route } => {
                let Some(generation) = self.model.regs[*slot] else {
                    return;
                };
                let Some(id) = self.model.resolve_route(Some(generation), *route) else {
                    return;
                };
                let reg = self.regs[*slot].as_ref().unwrap();
                let got = reg.delete_route(self.routes[id].clone());
                let want = self.model.delete_route(*slot, id);
                assert_eq!(got.map_err(|e| kind(&e)), want, "delete of route {id} by slot {slot}");
                if want.is_ok() {
                    assert!(self.routes[id].is_deleted());
                    assert_eq!(self.routes[id].info().unwrap_err(), Error::NotFound);
                }
            }
            Op::Exact { prefix, views, selector } => {
                let key = self.prefix_key(None, *prefix);
                let got =
                    self.table.exact(prefix_of::<F>(key), ViewSet::from_bits(*views), selector_of(*selector));
                let want = self.model.has_route_in(key, *views).then_some(key);
                self.check_match_result(got, want, *views, *selector, "exact");
            }
            Op::MostSpecific { addr, views, selector } => {
                let a = self.addr(*addr);
                let got = self.table.most_specific(
                    F::from_bits(a),
                    ViewSet::from_bits(*views),
                    selector_of(*selector),
                );
                let want = self.model.most_specific((a, F::BITS), *views);
                self.check_match_result(got, want, *views, *selector, "most_specific");
            }
            Op::LessSpecific { route, views, selector } => {
                let Some(id) = self.model.resolve_route(None, *route) else {
                    return;
                };
                let dest = self.routes[id].destination();
                let (k, len) = self.model.routes[id].prefix;
                let got = self.table.less_specific(&dest, ViewSet::from_bits(*views), selector_of(*selector));
                let want = if len == 0 {
                    None
                } else {
                    self.model.most_specific((k & mask(len - 1), len - 1), *views)
                };
                self.check_match_result(got, want, *views, *selector, "less_specific");
            }
            Op::MoreSpecifics { prefix, views, selector } => {
                let key = self.prefix_key(None, *prefix);
                let got = self.table.more_specifics(
                    prefix_of::<F>(key),
                    ViewSet::from_bits(*views),
                    selector_of(*selector),
                );
                let want: Vec<Key> = self
                    .model
                    .dests
                    .keys()
                    .filter(|&&d| key_covers(key, d) && self.model.has_route_in(d, *views))
                    .copied()
                    .collect();
                self.check_match_list(got, want, *views, *selector, "more_specifics");
            }
            Op::LessSpecifics { prefix, views, selector } => {
                let key = self.prefix_key(None, *prefix);
                let got = self.table.less_specifics(
                    prefix_of::<F>(key),
                    ViewSet::from_bits(*views),
                    selector_of(*selector),
                );
                let mut want: Vec<Key> = self
                    .model
                    .dests
                    .keys()
                    .filter(|&&d| key_covers(d, key) && self.model.has_route_in(d, *views))
                    .copied()
                    .collect();
                want.sort_by_key(|k| k.1);
                self.check_match_list(got, want, *views, *selector, "less_specifics");
            }
            Op::ExactRoute { prefix, criteria } => {
                let key = self.prefix_key(None, *prefix);
                // Picks of next hops resolve as for the first registered slot.
                let generation = self.model.regs.iter().flatten().next().copied().unwrap_or(0);
                let neighbour =
                    criteria.neighbour.map(|n| n.and_then(|p| self.model.resolve_nh(generation, p)));
                let next_hops = criteria
                    .next_hops_of
                    .and_then(|p| self.model.resolve_route(None, p))
                    .map(|id| self.model.routes[id].data.next_hops.clone());
                let mut m = RouteMatch::<F>::default().views(ViewSet::from_bits(criteria.views));
                if let Some(o) = criteria.owner {
                    m = m.owner(entity_id(o));
                }
                if let Some(p) = criteria.protocol {
                    m = m.protocol(p);
                }
                if let Some(n) = neighbour {
                    m = m.neighbour(n.map(|i| self.next_hops[i].clone()));
                }
                if let Some((p, metric)) = criteria.preference {
                    m = m.preference(Preference::new(p, metric));
                }
                if let Some(l) = &next_hops {
                    m = m.next_hops(self.nh_handles(l));
                }
                if let Some(i) = criteria.interface {
                    m = m.interface(i);
                }
                let got = self.table.exact_route(prefix_of::<F>(key), &m);
                let want = self.model.ordered(key).into_iter().find(|&id| {
                    let r = &self.model.routes[id];
                    r.data.views & criteria.views != 0
                        && criteria.owner.is_none_or(|o| entity_id(o) == entity_id(r.owner_slot))
                        && criteria.protocol.is_none_or(|p| p == SLOTS[r.owner_slot].0)
                        && neighbour.is_none_or(|n| n == r.data.neighbour)
                        && criteria
                            .preference
                            .is_none_or(|(p, m)| (p, m) == (r.data.preference, r.data.metric))
                        && next_hops.as_ref().is_none_or(|l| *l == r.data.next_hops)
                        && criteria.interface.is_none_or(|i| {
                            r.data.next_hops.iter().any(|&n| self.model.next_hops[n].interface == i)
                        })
                });
                match (got, want) {
                    (Ok(info), Some(id)) => self.check_info(&info, id, "exact_route"),
                    (Err(Error::NotFound), None) => {}
                    (got, want) => {
                        panic!("exact_route {criteria:?}: table {got:?}, model {want:?}")
                    }
                }
            }
            Op::IsBest { route } => {
                let Some(id) = self.model.resolve_route(None, *route) else {
                    return;
                };
                let got = self.table.is_best(&self.routes[id]);
                let r = &self.model.routes[id];
                if !r.alive {
                    assert_eq!(got.unwrap_err(), Error::NotFound, "is_best of deleted");
                } else {
                    let want = self
                        .model
                        .best_per_view(r.prefix)
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.is_some_and(|(bid, _)| bid == id))
                        .fold(0u32, |acc, (v, _)| acc | 1 << v);
                    assert_eq!(got.unwrap(), ViewSet::from_bits(want), "is_best {id}");
                }
            }
            Op::Lookup { addr, views } => {
                let a = self.addr(*addr);
                let want = self.model.lookup((a, F::BITS), *views);
                let guard = self.table.pin();
                let view = ViewSet::from_bits(*views);
                let hops = self.table.lookup(F::from_bits(a), view, &guard);
                let route = self.table.lookup_route(F::from_bits(a), view, &guard);
                match (hops, route, want) {
                    (None, None, None) => {}
                    (Some(hops), Some((prefix, data)), Some((k, id))) => {
                        let m = &self.model.routes[id];
                        assert_eq!(prefix, prefix_of::<F>(k), "lookup_route prefix");
                        assert!(hops == self.nh_handles(&m.data.next_hops).as_slice(), "lookup next hops");
                        assert!(data.next_hops == hops, "lookup_route next hops");
                        assert_eq!(data.private, m.data.private);
                    }
                    (hops, route, want) => panic!(
                        "lookup {:?} in {view:?}: table {hops:?} / {:?}, model {want:?}",
                        F::from_bits(a),
                        route.map(|r| r.0)
                    ),
                }
            }
        }
    }

    fn route_data(&self, d: &MData) -> RouteData<F> {
        RouteData::new(self.nh_handles(&d.next_hops))
            .preference(Preference::new(d.preference, d.metric))
            .views(ViewSet::from_bits(d.views))
            .flags(if d.inactive { RouteFlags::INACTIVE } else { RouteFlags::NONE })
            .neighbour(d.neighbour.map(|i| self.next_hops[i].clone()))
            .private(d.private)
    }

    /// Whole-table comparison: counts, entities, every destination of the space with its
    /// routes in best order and its per-view information, every handle.
    fn check_everything(&self) {
        assert_eq!(self.table.route_count(), self.model.route_count(), "route_count");
        assert_eq!(self.table.destination_count(), self.model.dests.len(), "destination_count");
        let mut ids: Vec<EntityId> = self.table.entities().iter().map(|e| e.id()).collect();
        ids.sort();
        let want: Vec<EntityId> =
            (0..SLOTS.len()).filter(|&s| self.model.regs[s].is_some()).map(entity_id).collect();
        assert_eq!(ids, want, "registered entities");
        let all: Vec<Key> = self.model.dests.keys().copied().collect();
        let listed: Vec<Prefix<F>> = self
            .table
            .more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best)
            .iter()
            .map(|m| m.destination.prefix())
            .collect();
        // Destinations whose routes are all in no view are not listed for any view.
        let want_listed: Vec<Prefix<F>> = all
            .iter()
            .filter(|&&k| self.model.has_route_in(k, u32::MAX))
            .map(|&k| prefix_of::<F>(k))
            .collect();
        assert_eq!(listed, want_listed, "more_specifics of the default route");
        for &key in &self.space {
            let got = self.table.exact(prefix_of::<F>(key), ViewSet::ALL, Selector::Best);
            let want = self.model.has_route_in(key, u32::MAX).then_some(key);
            self.check_match_result(got, want, u32::MAX, SelPick::Best, "sweep exact");
        }
        for &key in self.model.dests.keys() {
            let order = self.model.ordered(key);
            let dest = self.routes[order[0]].destination();
            assert!(!dest.is_deleted(), "destination {key:?} reads deleted");
            let routes = dest.routes();
            assert_eq!(routes.len(), order.len(), "routes at {key:?}");
            for (info, &id) in routes.iter().zip(&order) {
                self.check_info(info, id, "routes in best order");
            }
            let info = dest.info(ViewSet::from_bits(0b10_0011));
            let belongs = order.iter().fold(0, |acc, &id| acc | self.model.routes[id].data.views);
            assert_eq!(info.belongs_to, ViewSet::from_bits(belongs), "belongs_to");
            assert!(!info.deleted);
            for vi in &info.views {
                let count = order
                    .iter()
                    .filter(|&&id| self.model.routes[id].data.views & (1 << vi.view) != 0)
                    .count();
                assert_eq!(vi.route_count, count, "route count of view {}", vi.view);
                let best = self.model.best(key, 1 << vi.view, SelPick::Best);
                self.check_opt_info(vi.best.as_ref(), best, "dest info best");
            }
        }
        for (id, r) in self.model.routes.iter().enumerate() {
            let handle = &self.routes[id];
            assert_eq!(handle.is_deleted(), !r.alive, "is_deleted of route {id}");
            assert_eq!(handle.prefix(), prefix_of::<F>(r.prefix));
            assert_eq!(handle.owner().id(), entity_id(r.owner_slot));
            match handle.info() {
                Ok(info) => self.check_info(&info, id, "route info"),
                Err(e) => assert!(!r.alive && e == Error::NotFound, "info of {id}: {e}"),
            }
        }
        for (i, n) in self.model.next_hops.iter().enumerate() {
            let handle = &self.next_hops[i];
            assert_eq!(handle.is_deleted(), n.deleted, "is_deleted of next hop {i}");
            assert_eq!(handle.data().private, n.private, "private of next hop {i}");
        }
    }

    /// Deregisters everyone and checks that the table is empty and every handle reads deleted.
    fn tear_down(mut self) {
        for slot in 0..SLOTS.len() {
            if self.regs[slot].is_some() {
                self.apply(&Op::Deregister(slot));
            }
        }
        self.check_everything();
        assert_eq!(self.table.route_count(), 0);
        assert_eq!(self.table.destination_count(), 0);
        assert!(self.table.more_specifics(Prefix::default_route(), ViewSet::ALL, Selector::Best).is_empty());
        assert!(self.routes.iter().all(|r| r.is_deleted()));
        assert!(self.next_hops.iter().all(|n| n.is_deleted()));
    }
}

fn run<F: TestFamily>(ops: &[Op]) {
    let mut h = Harness::<F>::new();
    h.check_everything();
    for op in ops {
        h.apply(op);
        h.check_everything();
    }
    h.tear_down();
}

/// The number of cases: `default`, or `RTMGR_MODEL_CASES` for longer runs (both families).
fn cases(default: u32) -> u32 {
    if cfg!(miri) {
        return 2;
    }
    std::env::var("RTMGR_MODEL_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(1536),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ipv4_table_matches_the_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        run::<Ipv4>(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(384),
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    #[test]
    fn ipv6_table_matches_the_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        run::<Ipv6>(&ops);
    }
}

/// The test itself must be able to fail: a model that forgets the tie-break on the owner
/// identity disagrees with the table on a sequence the generator can produce.
#[test]
fn model_detects_a_wrong_best_route() {
    let mut h = Harness::<Ipv4>::new();
    for slot in [1, 2] {
        h.apply(&Op::AddNextHop { slot, addr: 0, interface: 0, private: 0 });
    }
    let add = |slot| Op::AddRoute {
        slot,
        prefix: PrefixPick::Index(0),
        mode: AddMode::New,
        spec: RouteSpec {
            preference: 0,
            metric: 0,
            views: 1,
            inactive: false,
            neighbour: None,
            next_hops: vec![NhPick::Own(0)],
            private: 0,
        },
    };
    // (13,1) first, then (13,0): same preference and metric; (13,0) wins on the owner although
    // it was created second.
    h.apply(&add(2));
    h.apply(&add(1));
    h.check_everything();
    let key = h.key_at(0);
    assert_eq!(h.model.best(key, 1, SelPick::Best), Some(1));
    // Corrupt the model: make (13,0)'s route look worse. The sweep must now fail.
    h.model.routes[1].data.metric = 1;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.check_everything()));
    assert!(caught.is_err(), "a wrong model went unnoticed");
}
