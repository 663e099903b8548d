//! Random operation sequences on a table and on a small reference model, every answer compared.
//!
//! The model is the specification written as plainly as possible: vectors of entities, next
//! hops and routes, the best route found by sorting. Operations: register, deregister, add and
//! delete next hops, add (all three modes, one route or a batch), update and delete routes, clone and drop route
//! handles, exact / most-specific queries with every selector, the forwarding fast path,
//! is-best, route info, and the table's counts after every step. Prefixes, addresses and next
//! hops come from small pools so that operations collide.

#![no_main]

use std::net::Ipv4Addr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtmgr::{
    AddMode, EntityConfig, EntityId, Error, Ipv4, NextHop, NextHopData, Preference, Prefix, Registration,
    Route, RouteData, RouteFlags, Selector, Table, TableConfig, ViewSet,
};

const SLOTS: usize = 4;
const MAX_NEXT_HOPS: usize = 3;

const PREFIXES: [(u32, u8); 8] = [
    (0x0000_0000, 0),
    (0x0a00_0000, 8),
    (0x0a01_0000, 16),
    (0x0a01_0000, 17),
    (0x0a01_0200, 24),
    (0x0a01_0203, 32),
    (0x0a80_0000, 9),
    (0xc0a8_0000, 16),
];
const ADDRS: [u32; 6] = [0x0a01_0203, 0x0a01_0204, 0x0ac8_0001, 0xc0a8_0101, 0x0808_0808, 0x0a01_8001];

#[derive(Arbitrary, Debug)]
enum Op {
    Register { slot: u8, preference: u8 },
    Deregister { slot: u8 },
    AddNextHop { slot: u8, host: u8, interface: u8 },
    DeleteNextHop { slot: u8, nh: u8 },
    AddRoute { slot: u8, prefix: u8, hops: Vec<u8>, neighbour: Option<u8>, data: Data, mode: u8 },
    AddRoutes { slot: u8, routes: Vec<(u8, Vec<u8>, Option<u8>, Data)>, mode: u8 },
    UpdateRoute { slot: u8, handle: u8, data: Data },
    DeleteRoute { slot: u8, handle: u8 },
    CloneHandle { handle: u8 },
    DropHandle { handle: u8 },
    Exact { prefix: u8, views: u8, selector: u8 },
    MostSpecific { addr: u8, views: u8, selector: u8 },
    Lookup { addr: u8, view: u8 },
    IsBest { handle: u8 },
    Info { handle: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Data {
    preference: u8,
    metric: u8,
    views: u8,
    inactive: bool,
}

impl Data {
    fn views(&self) -> ViewSet {
        ViewSet::from_bits((self.views & 3) as u32)
    }
}

struct MEntity {
    id: EntityId,
    default_preference: u32,
    registered: bool,
}

struct MNextHop {
    owner: usize,
    host: u8,
    interface: u32,
    deleted: bool,
}

#[derive(Clone)]
struct MRoute {
    owner: usize,
    prefix: usize,
    neighbour: Option<usize>,
    preference: Preference,
    views: u32,
    inactive: bool,
    hops: Vec<usize>,
    /// Creation order (the last tie-break).
    serial: usize,
    /// Bumped on every update: a new version of the best route counts as a best-route change.
    version: usize,
    deleted: bool,
}

#[derive(Default)]
struct Model {
    entities: Vec<MEntity>,
    /// Registration slot → entity index.
    slots: [Option<usize>; SLOTS],
    hops: Vec<MNextHop>,
    routes: Vec<MRoute>,
    versions: usize,
}

fn kind(e: &Error) -> std::mem::Discriminant<Error> {
    std::mem::discriminant(e)
}

fn prefix(i: usize) -> Prefix<Ipv4> {
    let (a, l) = PREFIXES[i];
    Prefix::new(Ipv4Addr::from(a), l).unwrap()
}

fn covers(p: usize, addr: u32) -> bool {
    let (a, l) = PREFIXES[p];
    let mask = if l == 0 { 0 } else { u32::MAX << (32 - l) };
    addr & mask == a
}

impl Model {
    /// The live routes on prefix `p`, in best order.
    fn set(&self, p: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.routes.len())
            .filter(|&r| !self.routes[r].deleted && self.routes[r].prefix == p)
            .collect();
        v.sort_by_key(|&r| {
            let x = &self.routes[r];
            (x.preference, self.entities[x.owner].id, x.serial)
        });
        v
    }

    fn best_in(&self, set: &[usize], views: u32, sel: Selector) -> Option<usize> {
        set.iter().copied().find(|&r| {
            let x = &self.routes[r];
            x.views & views != 0
                && !x.inactive
                && match sel {
                    Selector::Best => true,
                    Selector::Entity(id) => self.entities[x.owner].id == id,
                    Selector::Protocol(p) => self.entities[x.owner].id.protocol == p,
                }
        })
    }

    /// Whether the best route of some view differs between two versions of a set (the route,
    /// or its data version).
    fn best_differs(&self, before: &[(usize, MRoute)], after: &[(usize, MRoute)]) -> bool {
        let best = |set: &[(usize, MRoute)], view: u32| {
            let mut s: Vec<&(usize, MRoute)> = set.iter().collect();
            s.sort_by_key(|(_, x)| (x.preference, self.entities[x.owner].id, x.serial));
            s.into_iter().find(|(_, x)| x.views & view != 0 && !x.inactive).map(|(r, x)| (*r, x.version))
        };
        (0..32).any(|v| best(before, 1 << v) != best(after, 1 << v))
    }

    fn snapshot(&self, p: usize) -> Vec<(usize, MRoute)> {
        self.set(p).into_iter().map(|r| (r, self.routes[r].clone())).collect()
    }

    fn dest_count(&self) -> usize {
        (0..PREFIXES.len()).filter(|&p| !self.set(p).is_empty()).count()
    }
}

struct Harness {
    table: Table<Ipv4>,
    regs: [Option<Registration<Ipv4>>; SLOTS],
    /// Parallel to `model.hops`.
    hops: Vec<NextHop<Ipv4>>,
    /// Held route handles and the model route each names.
    handles: Vec<(usize, Route<Ipv4>)>,
    model: Model,
}

impl Harness {
    fn new() -> Self {
        let config = TableConfig { max_next_hops: MAX_NEXT_HOPS, ..TableConfig::default() };
        Harness {
            table: Table::with_config(config).unwrap(),
            regs: Default::default(),
            hops: Vec::new(),
            handles: Vec::new(),
            model: Model::default(),
        }
    }

    fn selector(&self, s: u8) -> Selector {
        match s % 3 {
            0 => Selector::Best,
            1 => Selector::Entity(EntityId::new(1 + (s as u32 / 3) % SLOTS as u32, 0)),
            _ => Selector::Protocol(1 + (s as u32 / 3) % SLOTS as u32),
        }
    }

    fn hop_index(&self, nh: &NextHop<Ipv4>) -> usize {
        self.hops.iter().position(|h| h == nh).expect("a next hop the harness made")
    }

    /// Route data for entity `e` from fuzz input, and the model's view of it: the next hops
    /// chosen among all next hops ever made (so other owners' and deleted ones occur too).
    fn data(
        &self,
        e: usize,
        hops: &[u8],
        neighbour: Option<u8>,
        d: Data,
    ) -> Option<(RouteData<Ipv4>, MRoute)> {
        if self.hops.is_empty() {
            return None;
        }
        let pick = |i: u8| i as usize % self.hops.len();
        let hop_ids: Vec<usize> = hops.iter().take(MAX_NEXT_HOPS + 1).map(|&i| pick(i)).collect();
        let nb = neighbour.map(pick);
        let data = RouteData::new(hop_ids.iter().map(|&i| self.hops[i].clone()).collect())
            .neighbour(nb.map(|i| self.hops[i].clone()))
            .preference(Preference::new(d.preference as u32, d.metric as u32))
            .views(d.views())
            .flags(if d.inactive { RouteFlags::INACTIVE } else { RouteFlags::NONE });
        let pref =
            if d.preference == 0 { self.model.entities[e].default_preference } else { d.preference as u32 };
        let m = MRoute {
            owner: e,
            prefix: 0,
            neighbour: nb,
            preference: Preference::new(pref, d.metric as u32),
            views: d.views().bits(),
            inactive: d.inactive,
            hops: hop_ids,
            serial: 0,
            version: 0,
            deleted: false,
        };
        Some((data, m))
    }

    /// The model's validation of route data given by entity `e`.
    /// Checks what adding route `m` on prefix `p` with `mode` did (`route`, `outcome`) against
    /// the model, and applies it there.
    fn added(
        &mut self,
        e: usize,
        p: usize,
        mut m: MRoute,
        mode: AddMode,
        route: Route<Ipv4>,
        outcome: rtmgr::ChangeOutcome,
    ) {
        let before = self.model.snapshot(p);
        let set = self.model.set(p);
        let existing = match mode {
            AddMode::New => None,
            AddMode::First => set.iter().copied().find(|&r| self.model.routes[r].owner == e),
            AddMode::Neighbour => set
                .iter()
                .copied()
                .find(|&r| self.model.routes[r].owner == e && self.model.routes[r].neighbour == m.neighbour),
        };
        self.model.versions += 1;
        m.prefix = p;
        m.version = self.model.versions;
        let r = match existing {
            Some(r) => {
                m.serial = self.model.routes[r].serial;
                self.model.routes[r] = m;
                r
            }
            None => {
                m.serial = self.model.routes.len();
                self.model.routes.push(m);
                self.model.routes.len() - 1
            }
        };
        let after = self.model.snapshot(p);
        assert_eq!(outcome.created, existing.is_none(), "add_route created");
        assert_eq!(outcome.best_changed, self.model.best_differs(&before, &after), "add_route best_changed");
        if let Some(old) = existing {
            let (_, held) =
                self.handles.iter().find(|(i, _)| *i == old).cloned().unwrap_or((old, route.clone()));
            assert!(held == route, "add_route updated another route");
        }
        self.handles.push((r, route));
    }

    fn validate(&self, e: usize, m: &MRoute) -> Result<(), Error> {
        if m.hops.is_empty() || m.hops.len() > MAX_NEXT_HOPS {
            return Err(Error::InvalidParameter(String::new()));
        }
        for &h in m.hops.iter().chain(m.neighbour.iter()) {
            if self.model.hops[h].owner != e {
                return Err(Error::AccessDenied(""));
            }
            if self.model.hops[h].deleted {
                return Err(Error::InvalidHandle(""));
            }
        }
        Ok(())
    }

    fn check_counts(&self) {
        let live = self.model.routes.iter().filter(|r| !r.deleted).count();
        assert_eq!(self.table.route_count(), live, "route count");
        assert_eq!(self.table.destination_count(), self.model.dest_count(), "destination count");
        let mut ids: Vec<EntityId> = self.table.entities().iter().map(|e| e.id()).collect();
        ids.sort();
        let mut expect: Vec<EntityId> =
            self.model.entities.iter().filter(|e| e.registered).map(|e| e.id).collect();
        expect.sort();
        assert_eq!(ids, expect, "registered entities");
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Register { slot, preference } => {
                let s = slot as usize % SLOTS;
                if self.regs[s].is_some() {
                    return;
                }
                let id = EntityId::new(1 + s as u32, 0);
                let got = self.table.register(EntityConfig::new(id).default_preference(preference as u32));
                let reg = got.expect("the slot's identity is free");
                self.regs[s] = Some(reg);
                self.model.entities.push(MEntity {
                    id,
                    default_preference: preference as u32,
                    registered: true,
                });
                self.model.slots[s] = Some(self.model.entities.len() - 1);
                // Registering a taken identity is refused.
                let again = self.table.register(EntityConfig::new(id));
                assert_eq!(again.map(|_| ()).unwrap_err(), Error::AlreadyExists);
            }
            Op::Deregister { slot } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = self.regs[s].take() else { return };
                reg.deregister();
                let e = self.model.slots[s].take().unwrap();
                self.model.entities[e].registered = false;
                for r in self.model.routes.iter_mut().filter(|r| r.owner == e) {
                    r.deleted = true;
                }
                for h in self.model.hops.iter_mut().filter(|h| h.owner == e) {
                    h.deleted = true;
                }
            }
            Op::AddNextHop { slot, host, interface } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                let e = self.model.slots[s].unwrap();
                let (host, interface) = (host % 4, (interface % 2) as u32);
                let (nh, created) = reg
                    .add_next_hop(Ipv4Addr::new(192, 0, 2, host), interface, NextHopData::default())
                    .unwrap();
                let existing =
                    self.model.hops.iter().position(|h| {
                        h.owner == e && !h.deleted && h.host == host && h.interface == interface
                    });
                assert_eq!(created, existing.is_none(), "add_next_hop created");
                match existing {
                    Some(i) => assert!(self.hops[i] == nh, "add_next_hop returned another next hop"),
                    None => {
                        self.model.hops.push(MNextHop { owner: e, host, interface, deleted: false });
                        self.hops.push(nh);
                    }
                }
            }
            Op::DeleteNextHop { slot, nh } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                if self.hops.is_empty() {
                    return;
                }
                let i = nh as usize % self.hops.len();
                let e = self.model.slots[s].unwrap();
                let got = reg.delete_next_hop(&self.hops[i]);
                let expect = if self.model.hops[i].owner != e {
                    Err(Error::AccessDenied(""))
                } else if self.model.hops[i].deleted {
                    Err(Error::NotFound)
                } else {
                    self.model.hops[i].deleted = true;
                    Ok(())
                };
                same(&got, &expect, "delete_next_hop");
                assert!(self.hops[i].is_deleted() == self.model.hops[i].deleted);
            }
            Op::AddRoute { slot, prefix: p, hops, neighbour, data, mode } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                let e = self.model.slots[s].unwrap();
                let Some((rd, m)) = self.data(e, &hops, neighbour, data) else { return };
                let p = p as usize % PREFIXES.len();
                let mode = [AddMode::Neighbour, AddMode::First, AddMode::New][mode as usize % 3];
                let got = reg.add_route_with(prefix(p), rd, mode);
                if let Err(err) = self.validate(e, &m) {
                    same(&got.map(|_| ()), &Err(err), "add_route validation");
                    return;
                }
                let (route, outcome) = got.expect("valid route data");
                self.added(e, p, m, mode, route, outcome);
            }
            Op::AddRoutes { slot, routes, mode } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                let e = self.model.slots[s].unwrap();
                let mode = [AddMode::Neighbour, AddMode::First, AddMode::New][mode as usize % 3];
                let items: Vec<(usize, RouteData<Ipv4>, MRoute)> = routes
                    .iter()
                    .filter_map(|(p, hops, neighbour, data)| {
                        let (rd, m) = self.data(e, hops, *neighbour, *data)?;
                        Some((*p as usize % PREFIXES.len(), rd, m))
                    })
                    .collect();
                let got = reg.add_routes(items.iter().map(|(p, rd, _)| (prefix(*p), rd.clone())), mode);
                // Every route is checked before any is added: the first invalid one fails all.
                if let Some(err) = items.iter().find_map(|(_, _, m)| self.validate(e, m).err()) {
                    same(&got.map(|_| ()), &Err(err), "add_routes validation");
                    return;
                }
                let got = got.expect("valid route data");
                assert_eq!(got.len(), items.len(), "add_routes: one outcome per route");
                // The outcome of a batch is that of its routes added one by one, in order.
                for ((p, _, m), outcome) in items.into_iter().zip(got) {
                    let (route, outcome) = outcome.expect("add_routes: a valid route added");
                    self.added(e, p, m, mode, route, outcome);
                }
            }
            Op::UpdateRoute { slot, handle, data } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                if self.handles.is_empty() {
                    return;
                }
                let (r, route) = self.handles[handle as usize % self.handles.len()].clone();
                let e = self.model.slots[s].unwrap();
                let got = reg.update_route(&route, |d| {
                    d.preference = Preference::new(data.preference as u32, data.metric as u32);
                    d.views = data.views();
                    d.flags = if data.inactive { RouteFlags::INACTIVE } else { RouteFlags::NONE };
                });
                let old = self.model.routes[r].clone();
                let expect: Result<(), Error> = if old.owner != e {
                    Err(Error::AccessDenied(""))
                } else if old.deleted {
                    Err(Error::NotFound)
                } else {
                    let mut m = old.clone();
                    m.preference = Preference::new(
                        if data.preference == 0 {
                            self.model.entities[e].default_preference
                        } else {
                            data.preference as u32
                        },
                        data.metric as u32,
                    );
                    m.views = data.views().bits();
                    m.inactive = data.inactive;
                    match self.validate(e, &m) {
                        Err(err) => Err(err),
                        Ok(()) => {
                            let before = self.model.snapshot(old.prefix);
                            self.model.versions += 1;
                            m.version = self.model.versions;
                            self.model.routes[r] = m;
                            let after = self.model.snapshot(old.prefix);
                            let outcome = got.as_ref().expect("a valid update");
                            assert!(!outcome.created);
                            assert_eq!(
                                outcome.best_changed,
                                self.model.best_differs(&before, &after),
                                "update best_changed"
                            );
                            Ok(())
                        }
                    }
                };
                same(&got.map(|_| ()), &expect, "update_route");
            }
            Op::DeleteRoute { slot, handle } => {
                let s = slot as usize % SLOTS;
                let Some(reg) = &self.regs[s] else { return };
                if self.handles.is_empty() {
                    return;
                }
                let (r, route) = self.handles.remove(handle as usize % self.handles.len());
                let e = self.model.slots[s].unwrap();
                let old = self.model.routes[r].clone();
                let before = self.model.snapshot(old.prefix);
                let got = reg.delete_route(route);
                let expect = if old.owner != e {
                    Err(Error::AccessDenied(""))
                } else if old.deleted {
                    Err(Error::NotFound)
                } else {
                    self.model.routes[r].deleted = true;
                    let after = self.model.snapshot(old.prefix);
                    Ok(self.model.best_differs(&before, &after))
                };
                same(&got, &expect, "delete_route");
            }
            Op::CloneHandle { handle } => {
                if self.handles.len() < 64 && !self.handles.is_empty() {
                    let h = self.handles[handle as usize % self.handles.len()].clone();
                    self.handles.push(h);
                }
            }
            Op::DropHandle { handle } => {
                if !self.handles.is_empty() {
                    self.handles.remove(handle as usize % self.handles.len());
                }
            }
            Op::Exact { prefix: p, views, selector } => {
                let p = p as usize % PREFIXES.len();
                let views = (views & 3) as u32;
                let sel = self.selector(selector);
                let got = self.table.exact(prefix(p), ViewSet::from_bits(views), sel);
                let set = self.model.set(p);
                if set.iter().any(|&r| self.model.routes[r].views & views != 0) {
                    let m = got.expect("exact: the destination has a route in the views");
                    assert_eq!(m.destination.prefix(), prefix(p));
                    let best = self.model.best_in(&set, views, sel);
                    self.same_route(m.route.as_ref().map(|i| &i.route), best, "exact best");
                } else {
                    assert_eq!(got.map(|_| ()).unwrap_err(), Error::NotFound, "exact");
                }
            }
            Op::MostSpecific { addr, views, selector } => {
                let a = ADDRS[addr as usize % ADDRS.len()];
                let views = (views & 3) as u32;
                let sel = self.selector(selector);
                let got = self.table.most_specific(Ipv4Addr::from(a), ViewSet::from_bits(views), sel);
                let found = (0..PREFIXES.len())
                    .filter(|&p| covers(p, a))
                    .filter(|&p| self.model.set(p).iter().any(|&r| self.model.routes[r].views & views != 0))
                    .max_by_key(|&p| PREFIXES[p].1);
                match found {
                    Some(p) => {
                        let m = got.expect("most_specific: a covering destination");
                        assert_eq!(m.destination.prefix(), prefix(p));
                        let best = self.model.best_in(&self.model.set(p), views, sel);
                        self.same_route(m.route.as_ref().map(|i| &i.route), best, "most_specific best");
                    }
                    None => assert_eq!(got.map(|_| ()).unwrap_err(), Error::NotFound, "most_specific"),
                }
            }
            Op::Lookup { addr, view } => {
                let a = ADDRS[addr as usize % ADDRS.len()];
                let view = 1u32 << (view % 2);
                let guard = self.table.pin();
                let got: Option<Vec<usize>> = self
                    .table
                    .lookup(Ipv4Addr::from(a), ViewSet::from_bits(view), &guard)
                    .map(|hops| hops.iter().map(|h| self.hop_index(h)).collect());
                let expect = (0..PREFIXES.len())
                    .filter(|&p| covers(p, a))
                    .filter_map(|p| {
                        self.model.best_in(&self.model.set(p), view, Selector::Best).map(|r| (p, r))
                    })
                    .max_by_key(|&(p, _)| PREFIXES[p].1)
                    .map(|(_, r)| self.model.routes[r].hops.clone());
                assert_eq!(got, expect, "lookup");
            }
            Op::IsBest { handle } => {
                if self.handles.is_empty() {
                    return;
                }
                let (r, route) = &self.handles[handle as usize % self.handles.len()];
                let got = self.table.is_best(route);
                let m = &self.model.routes[*r];
                if m.deleted {
                    assert_eq!(got.unwrap_err(), Error::NotFound, "is_best of a deleted route");
                } else {
                    let set = self.model.set(m.prefix);
                    let views = (0..32)
                        .filter(|v| self.model.best_in(&set, 1 << v, Selector::Best) == Some(*r))
                        .fold(0u32, |acc, v| acc | 1 << v);
                    assert_eq!(got.unwrap().bits(), views, "is_best");
                }
            }
            Op::Info { handle } => {
                if self.handles.is_empty() {
                    return;
                }
                let (r, route) = &self.handles[handle as usize % self.handles.len()];
                let m = &self.model.routes[*r];
                assert_eq!(route.is_deleted(), m.deleted, "is_deleted");
                assert_eq!(route.prefix(), prefix(m.prefix));
                assert_eq!(route.owner().id(), self.model.entities[m.owner].id);
                match route.info() {
                    Ok(info) => {
                        assert!(!m.deleted);
                        assert_eq!(info.preference, m.preference, "info preference");
                        assert_eq!(info.views.bits(), m.views, "info views");
                        assert_eq!(info.flags.contains(RouteFlags::INACTIVE), m.inactive);
                        let hops: Vec<usize> = info.next_hops.iter().map(|h| self.hop_index(h)).collect();
                        assert_eq!(hops, m.hops, "info next hops");
                        assert_eq!(info.neighbour.as_ref().map(|h| self.hop_index(h)), m.neighbour);
                    }
                    Err(e) => {
                        assert!(m.deleted);
                        assert_eq!(e, Error::NotFound);
                    }
                }
            }
        }
        self.check_counts();
    }

    /// Whether a route reported by the table is the model's route `expect`.
    fn same_route(&self, got: Option<&Route<Ipv4>>, expect: Option<usize>, what: &str) {
        match (got, expect) {
            (None, None) => {}
            (Some(g), Some(r)) => {
                let m = &self.model.routes[r];
                assert_eq!(g.owner().id(), self.model.entities[m.owner].id, "{what}: owner");
                let info = g.info().expect("a live route");
                assert_eq!(info.preference, m.preference, "{what}: preference");
                if let Some((_, held)) = self.handles.iter().find(|(i, _)| *i == r) {
                    assert!(held == g, "{what}: another route");
                }
            }
            (g, e) => panic!("{what}: table {:?}, model {:?}", g.map(|r| r.prefix()), e),
        }
    }
}

/// Compares results by variant (error messages are free text).
fn same<T: PartialEq + std::fmt::Debug>(got: &Result<T, Error>, expect: &Result<T, Error>, what: &str) {
    match (got, expect) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
        (Err(a), Err(b)) => assert_eq!(kind(a), kind(b), "{what}: {a:?} vs {b:?}"),
        _ => panic!("{what}: table {got:?}, model {expect:?}"),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut h = Harness::new();
    for op in ops.into_iter().take(200) {
        h.step(op);
    }
    // Everything released: the handles, then the registrations (deregistering) and the table.
    h.handles.clear();
    for s in 0..SLOTS {
        if let Some(reg) = h.regs[s].take() {
            reg.deregister();
        }
    }
    assert_eq!(h.table.route_count(), 0);
    assert_eq!(h.table.destination_count(), 0);
    drop(h);
    settle();
});

/// Runs the epoch collector until this input's garbage is freed, so that libFuzzer sees as many
/// frees as allocations per input (otherwise it runs a slow leak check after almost every input)
/// and any real leak stands out.
fn settle() {
    for _ in 0..16 {
        rtmgr::collect_garbage();
    }
}
