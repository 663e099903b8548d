//! The read side: exact, most-specific, less-specific and more-specific queries, exact-route
//! and is-best, and the forwarding fast path. Nothing here takes a lock or waits for a writer.

use crate::counted::Ref;
use crate::handles::{Destination, NextHop, Route, RouteInfo};
use crate::sync::epoch::Guard;
use crate::table::Table;
use crate::table::objects::{DestObj, RouteSet};
use crate::tree::Tree;
use crate::{EntityId, Error, Family, Preference, Prefix, Selector, ViewSet};

/// A destination found by a query, with the route the selector picked in the asked views.
///
/// See [`Table::exact`]'s example.
#[derive(Clone, Debug)]
pub struct DestMatch<F: Family> {
    /// The destination.
    pub destination: Destination<F>,
    /// The route the selector picked (`None` if the selected owner has no active route in the
    /// asked views there).
    pub route: Option<RouteInfo<F>>,
}

/// Criteria for [`Table::exact_route`]: every field that is set must match (RTM_MATCH_*).
///
/// ```
/// use rtmgr::{EntityId, Ipv4, RouteMatch};
/// let m = RouteMatch::<Ipv4>::default().owner(EntityId::new(14, 0)).interface(3);
/// assert_eq!(m.interface, Some(3));
/// ```
#[derive(Clone, Debug)]
pub struct RouteMatch<F: Family> {
    /// The route's owner.
    pub owner: Option<EntityId>,
    /// The route owner's protocol (any instance).
    pub protocol: Option<u32>,
    /// The route's neighbour (`Some(None)`: routes without a neighbour).
    pub neighbour: Option<Option<NextHop<F>>>,
    /// The route's preference and metric.
    pub preference: Option<Preference>,
    /// The route's next-hop list, in order.
    pub next_hops: Option<Vec<NextHop<F>>>,
    /// A next hop of the route on this interface.
    pub interface: Option<u32>,
    /// The route is in one of these views.
    pub views: ViewSet,
}

impl<F: Family> Default for RouteMatch<F> {
    fn default() -> Self {
        RouteMatch {
            owner: None,
            protocol: None,
            neighbour: None,
            preference: None,
            next_hops: None,
            interface: None,
            views: ViewSet::ALL,
        }
    }
}

impl<F: Family> RouteMatch<F> {
    /// Match the owner.
    ///
    /// See the type's example.
    pub fn owner(mut self, owner: EntityId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Match the owner's protocol, any instance.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteMatch};
    /// assert_eq!(RouteMatch::<Ipv4>::default().protocol(14).protocol, Some(14));
    /// ```
    pub fn protocol(mut self, protocol: u32) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Match the neighbour.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteMatch};
    /// assert!(RouteMatch::<Ipv4>::default().neighbour(None).neighbour.is_some());
    /// ```
    pub fn neighbour(mut self, neighbour: Option<NextHop<F>>) -> Self {
        self.neighbour = Some(neighbour);
        self
    }

    /// Match the preference and metric.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Preference, RouteMatch};
    /// assert!(RouteMatch::<Ipv4>::default().preference(Preference::new(1, 1)).preference.is_some());
    /// ```
    pub fn preference(mut self, preference: Preference) -> Self {
        self.preference = Some(preference);
        self
    }

    /// Match the next-hop list.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteMatch};
    /// assert!(RouteMatch::<Ipv4>::default().next_hops(vec![]).next_hops.is_some());
    /// ```
    pub fn next_hops(mut self, next_hops: Vec<NextHop<F>>) -> Self {
        self.next_hops = Some(next_hops);
        self
    }

    /// Match a next hop on this interface.
    ///
    /// See the type's example.
    pub fn interface(mut self, interface: u32) -> Self {
        self.interface = Some(interface);
        self
    }

    /// Match routes in one of these views.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteMatch, ViewSet};
    /// assert_eq!(RouteMatch::<Ipv4>::default().views(ViewSet::UNICAST).views, ViewSet::UNICAST);
    /// ```
    pub fn views(mut self, views: ViewSet) -> Self {
        self.views = views;
        self
    }

    pub(crate) fn matches(&self, info: &RouteInfo<F>) -> bool {
        info.views.intersects(self.views)
            && self.owner.is_none_or(|o| o == info.owner)
            && self.protocol.is_none_or(|p| p == info.owner.protocol)
            && self.neighbour.as_ref().is_none_or(|n| *n == info.neighbour)
            && self.preference.is_none_or(|p| p == info.preference)
            && self.next_hops.as_ref().is_none_or(|n| *n == info.next_hops)
            && self.interface.is_none_or(|i| info.next_hops.iter().any(|nh| nh.interface() == i))
    }
}

/// Whether a destination counts for a query in `views`: not leaving the tree, and with a route
/// in one of the views.
fn has_routes_in<F: Family>(set: &RouteSet<F>, views: ViewSet) -> bool {
    !set.is_removed() && set.has_route_in(views)
}

impl<F: Family> Table<F> {
    /// The match for `dest` if it has a route in `views`, judged and reported from one read of
    /// its route set (two reads could see different sets and report "has routes" with none).
    fn dest_match(
        &self,
        dest: &Ref<DestObj<F>>,
        views: ViewSet,
        selector: Selector,
        guard: &Guard,
    ) -> Option<DestMatch<F>> {
        let set = dest.routes(guard);
        has_routes_in(set, views).then(|| DestMatch {
            destination: Destination::from_ref(dest.clone(), set),
            route: set.best(views, selector).map(RouteInfo::of),
        })
    }

    /// The destination at exactly `prefix` (RtmGetExactMatchDestination); `NotFound` if there
    /// is none or it has no route in `views`.
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let m = table.exact("10.0.0.0/8".parse()?, ViewSet::UNICAST, Selector::Best)?;
    /// assert_eq!(m.route.unwrap().owner, EntityId::new(2, 0));
    /// assert_eq!(table.exact("10.0.0.0/9".parse()?, ViewSet::UNICAST, Selector::Best).unwrap_err(), Error::NotFound);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn exact(
        &self,
        prefix: Prefix<F>,
        views: ViewSet,
        selector: Selector,
    ) -> Result<DestMatch<F>, Error> {
        let guard = crate::reclaim::pin();
        self.inner
            .tree
            .get(prefix.key(), prefix.len(), &guard)
            .and_then(|dest| self.dest_match(dest, views, selector, &guard))
            .ok_or(Error::NotFound)
    }

    /// The longest prefix covering `addr` that has a route in `views`
    /// (RtmGetMostSpecificDestination); `NotFound` if none covers it.
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]))?;
    /// reg.add_route("10.1.0.0/16".parse()?, RouteData::new(vec![nh]))?;
    /// let m = table.most_specific("10.1.2.3".parse().unwrap(), ViewSet::UNICAST, Selector::Best)?;
    /// assert_eq!(m.destination.prefix().to_string(), "10.1.0.0/16");
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn most_specific(
        &self,
        addr: F::Addr,
        views: ViewSet,
        selector: Selector,
    ) -> Result<DestMatch<F>, Error> {
        self.most_specific_prefix(Prefix::host(addr), views, selector)
    }

    /// The longest prefix covering `prefix` (itself included) that has a route in `views`.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let m = table.most_specific_prefix("10.9.0.0/16".parse()?, ViewSet::UNICAST, Selector::Best)?;
    /// assert_eq!(m.destination.prefix().to_string(), "10.0.0.0/8");
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn most_specific_prefix(
        &self,
        prefix: Prefix<F>,
        views: ViewSet,
        selector: Selector,
    ) -> Result<DestMatch<F>, Error> {
        let guard = crate::reclaim::pin();
        // The route is taken from the same read of the set that accepted the destination.
        let mut route = None;
        let dest = self.inner.tree.longest_match(prefix.key(), prefix.len(), &guard, |d| {
            let set = d.routes(&guard);
            let accepted = has_routes_in(set, views);
            if accepted {
                route = Some((set, set.best(views, selector).map(RouteInfo::of)));
            }
            accepted
        });
        match (dest, route) {
            (Some(dest), Some((set, route))) => {
                Ok(DestMatch { destination: Destination::from_ref(dest.clone(), set), route })
            }
            _ => Err(Error::NotFound),
        }
    }

    /// The next shorter prefix covering `dest` that has a route in `views`
    /// (RtmGetLessSpecificDestination). Repeated, it walks up to the default route; one step
    /// past that is `NotFound`.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// reg.add_route("0.0.0.0/0".parse()?, RouteData::new(vec![nh.clone()]))?;
    /// let (r, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let up = table.less_specific(&r.destination(), ViewSet::UNICAST, Selector::Best)?;
    /// assert_eq!(up.destination.prefix().len(), 0);
    /// let past = table.less_specific(&up.destination, ViewSet::UNICAST, Selector::Best);
    /// assert_eq!(past.unwrap_err(), Error::NotFound);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn less_specific(
        &self,
        dest: &Destination<F>,
        views: ViewSet,
        selector: Selector,
    ) -> Result<DestMatch<F>, Error> {
        self.check_table(dest.obj().table_id)?;
        let prefix = dest.prefix();
        if prefix.len() == 0 {
            return Err(Error::NotFound);
        }
        let parent = Prefix::from_key(prefix.key() & crate::family::mask(prefix.len() - 1), prefix.len() - 1);
        self.most_specific_prefix(parent, views, selector)
    }

    /// Every destination inside `prefix` (itself included) that has a route in `views`, in
    /// address order then prefix length.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// for p in ["10.0.0.0/8", "10.1.0.0/16", "10.0.0.0/16", "11.0.0.0/8"] {
    ///     reg.add_route(p.parse()?, RouteData::new(vec![nh.clone()]))?;
    /// }
    /// let inside: Vec<String> = table
    ///     .more_specifics("10.0.0.0/8".parse()?, ViewSet::UNICAST, Selector::Best)
    ///     .iter()
    ///     .map(|m| m.destination.prefix().to_string())
    ///     .collect();
    /// assert_eq!(inside, ["10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16"]);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn more_specifics(&self, prefix: Prefix<F>, views: ViewSet, selector: Selector) -> Vec<DestMatch<F>> {
        let guard = crate::reclaim::pin();
        let root = self.inner.tree.root(&guard);
        Tree::within(root, prefix.key(), prefix.len())
            .filter_map(|d| self.dest_match(d, views, selector, &guard))
            .collect()
    }

    /// Every destination covering `prefix` (itself included) that has a route in `views`,
    /// shortest first.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16"] {
    ///     reg.add_route(p.parse()?, RouteData::new(vec![nh.clone()]))?;
    /// }
    /// let lens: Vec<u8> = table
    ///     .less_specifics("10.1.2.0/24".parse()?, ViewSet::UNICAST, Selector::Best)
    ///     .iter()
    ///     .map(|m| m.destination.prefix().len())
    ///     .collect();
    /// assert_eq!(lens, [0, 8, 16]);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn less_specifics(&self, prefix: Prefix<F>, views: ViewSet, selector: Selector) -> Vec<DestMatch<F>> {
        let guard = crate::reclaim::pin();
        let root = self.inner.tree.root(&guard);
        Tree::covering_in(root, prefix.key(), prefix.len())
            .into_iter()
            .filter_map(|d| self.dest_match(d, views, selector, &guard))
            .collect()
    }

    /// On the destination at `prefix`, the first route in best order matching `criteria`
    /// (RtmGetExactMatchRoute); `NotFound` if there is none.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, RouteMatch, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// let (r, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let found = table.exact_route("10.0.0.0/8".parse()?, &RouteMatch::default().interface(4))?;
    /// assert_eq!(found.route, r);
    /// assert!(table.exact_route("10.0.0.0/8".parse()?, &RouteMatch::default().interface(5)).is_err());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn exact_route(&self, prefix: Prefix<F>, criteria: &RouteMatch<F>) -> Result<RouteInfo<F>, Error> {
        let guard = crate::reclaim::pin();
        let dest = self.inner.tree.get(prefix.key(), prefix.len(), &guard).ok_or(Error::NotFound)?;
        dest.routes(&guard)
            .routes
            .iter()
            .map(RouteInfo::of)
            .find(|info| criteria.matches(info))
            .ok_or(Error::NotFound)
    }

    /// The views in which `route` is the best route now (RtmIsBestRoute).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// let (r, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]).views(ViewSet::ALL))?;
    /// assert_eq!(table.is_best(&r)?, ViewSet::ALL);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn is_best(&self, route: &Route<F>) -> Result<ViewSet, Error> {
        self.check_table(route.obj().dest.table_id)?;
        let guard = crate::reclaim::pin();
        let set = route.obj().dest.routes(&guard);
        set.find(route.obj()).ok_or(Error::NotFound)?;
        Ok(set.best_views(route.obj()))
    }

    /// The forwarding fast path: the next hops of the best route for `addr` in `view`, from the
    /// longest matching prefix that has an active route there.
    ///
    /// Takes no lock, writes no reference count and allocates nothing; the slice is valid while
    /// `guard` is held. Hold guards briefly (a packet or a batch): a pinned guard delays the
    /// reclamation of memory retired by writers. Answered from the view's compiled forwarding
    /// table when [`TableConfig::forwarding`](crate::TableConfig::forwarding) has one (unicast by
    /// default), otherwise by walking the routing tree; both give the same answers.
    ///
    /// See [`Table`]'s example.
    #[inline]
    pub fn lookup<'g>(&self, addr: F::Addr, view: ViewSet, guard: &'g Guard) -> Option<&'g [NextHop<F>]> {
        self.lookup_data(addr, view, guard).map(|data| &data.next_hops[..])
    }

    /// [`Table::lookup`] returning the best route's whole data without reading it (the pointer
    /// is the answer: forwarding code that keeps its own next-hop index in
    /// [`RouteData::private`](crate::RouteData::private) reads one field of it).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]).private(1))?;
    /// reg.add_route("10.1.0.0/16".parse()?, RouteData::new(vec![nh]).private(2))?;
    /// let guard = table.pin();
    /// let answer = |a: &str| table.lookup_data(a.parse().unwrap(), ViewSet::UNICAST, &guard).map(|d| d.private);
    /// assert_eq!((answer("10.1.2.3"), answer("10.2.3.4"), answer("11.0.0.1")), (Some(2), Some(1), None));
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    #[inline]
    pub fn lookup_data<'g>(
        &self,
        addr: F::Addr,
        view: ViewSet,
        guard: &'g Guard,
    ) -> Option<&'g crate::RouteData<F>> {
        if let Some(fib) = self.inner.forwarding(view) {
            return fib.lookup(F::key(addr), guard);
        }
        self.lookup_route(addr, view, guard).map(|(_, data)| data)
    }

    /// [`Table::lookup_data`] for a batch of addresses: `out` is cleared and receives one
    /// answer per address, in order. With a compiled forwarding table for `view`, the memory
    /// reads of many lookups are in flight at once (prefetched), which multiplies throughput
    /// when the table is larger than the caches; without one, the addresses are looked up one
    /// by one.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]).private(1))?;
    /// reg.add_route("10.1.0.0/16".parse()?, RouteData::new(vec![nh]).private(2))?;
    /// let addrs = ["10.1.2.3", "10.2.3.4", "11.0.0.1"].map(|a| a.parse().unwrap());
    /// let guard = table.pin();
    /// let mut answers = Vec::new();
    /// table.lookup_batch(&addrs, ViewSet::UNICAST, &guard, &mut answers);
    /// let privates: Vec<_> = answers.iter().map(|d| d.map(|d| d.private)).collect();
    /// assert_eq!(privates, [Some(2), Some(1), None]);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn lookup_batch<'g>(
        &self,
        addrs: &[F::Addr],
        view: ViewSet,
        guard: &'g Guard,
        out: &mut Vec<Option<&'g crate::RouteData<F>>>,
    ) {
        out.clear();
        match self.inner.forwarding(view) {
            Some(fib) => {
                // Keys in stack-sized groups: no allocation.
                let mut keys = [0u128; 256];
                for group in addrs.chunks(keys.len()) {
                    for (k, &a) in keys.iter_mut().zip(group) {
                        *k = F::key(a);
                    }
                    fib.lookup_batch_extend(&keys[..group.len()], guard, out);
                }
            }
            None => {
                out.extend(addrs.iter().map(|&a| self.lookup_data(a, view, guard)));
            }
        }
    }

    /// Like [`Table::lookup`], but returns the matched prefix and the whole best route's data.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]).private(77))?;
    /// let guard = table.pin();
    /// let (prefix, data) = table.lookup_route("10.2.3.4".parse().unwrap(), ViewSet::UNICAST, &guard).unwrap();
    /// assert_eq!((prefix.len(), data.private), (8, 77));
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    #[inline]
    pub fn lookup_route<'g>(
        &self,
        addr: F::Addr,
        view: ViewSet,
        guard: &'g Guard,
    ) -> Option<(Prefix<F>, &'g crate::RouteData<F>)> {
        let mut found = None;
        self.inner.tree.longest_match(F::key(addr), F::BITS, guard, |dest: &'g DestObj<F>| {
            match dest.routes(guard).best(view, Selector::Best) {
                Some(best) => {
                    found = Some((dest.prefix, &*best.data));
                    true
                }
                None => false,
            }
        });
        found
    }
}
