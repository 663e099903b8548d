//! The RTMv1 enumeration and client calls, as a thin layer over the RTMv2 API (spec §2.7).
//!
//! RTMv1 had no views: "best" here means best in the unicast view, and a route's interface and
//! next-hop address are those of its first next hop. The change-message FIFO
//! (RtmDequeueRouteChangeMessage) comes with change notification and is not here yet.
//!
//! ```
//! use rtmgr::v1::Criteria;
//! use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, Table};
//!
//! let table = Table::<Ipv4>::new();
//! let rip = table.register(EntityConfig::new(EntityId::new(8, 0)))?;
//! let (nh, _) = rip.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
//! rip.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]))?;
//! rip.add_route("11.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
//!
//! let v1 = table.v1();
//! let mut e = v1.create_enumeration(Criteria::default().protocol(8))?; // RtmCreateEnumerationHandle
//! assert_eq!(e.get_next()?.prefix().to_string(), "10.0.0.0/8"); // RtmEnumerateGetNextRoute
//! assert_eq!(e.get_next()?.prefix().to_string(), "11.0.0.0/8");
//! assert_eq!(e.get_next().unwrap_err(), Error::NoMoreRoutes);
//! e.close()?; // RtmCloseEnumerationHandle
//! assert!(matches!(e.close(), Err(Error::InvalidHandle(_))));
//! assert_eq!(v1.create_enumeration(Criteria::default().protocol(9)).unwrap_err(), Error::NoRoutes);
//! assert_eq!(v1.network_count(), 2); // RtmGetNetworkCount
//! # Ok::<(), rtmgr::Error>(())
//! ```

use std::cmp::Ordering;

use crate::enumerate::{EnumStart, RouteEnumeration, RouteOptions, RouteScope};
use crate::handles::RouteInfo;
use crate::table::{RouteMatch, Table};
use crate::tree::Iter;
use crate::{Error, Family, Prefix, Selector, ViewSet};

/// RTMv1 enumeration criteria (RTM_ONLY_THIS_NETWORK, _INTERFACE, _PROTOCOL, RTM_ONLY_BEST_ROUTES),
/// any combination; unset fields match everything.
///
/// ```
/// use rtmgr::{v1::Criteria, Ipv4};
/// let c = Criteria::<Ipv4>::default().network("10.0.0.0/8".parse()?).interface(3).best_only();
/// assert!(c.best_only && c.interface == Some(3));
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Criteria<F: Family> {
    /// Only routes to exactly this network.
    pub network: Option<Prefix<F>>,
    /// Only routes whose (first) next hop is on this interface.
    pub interface: Option<u32>,
    /// Only routes of this protocol.
    pub protocol: Option<u32>,
    /// Only the best (unicast) route of each network.
    pub best_only: bool,
}

impl<F: Family> Criteria<F> {
    /// Only this network.
    ///
    /// See the type's example.
    pub fn network(mut self, network: Prefix<F>) -> Self {
        self.network = Some(network);
        self
    }

    /// Only this interface.
    ///
    /// See the type's example.
    pub fn interface(mut self, interface: u32) -> Self {
        self.interface = Some(interface);
        self
    }

    /// Only this protocol.
    ///
    /// See the module example.
    pub fn protocol(mut self, protocol: u32) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Only best routes.
    ///
    /// See the type's example.
    pub fn best_only(mut self) -> Self {
        self.best_only = true;
        self
    }

    fn matches(&self, route: &RouteInfo<F>) -> bool {
        self.network.is_none_or(|n| n == route.prefix())
            && self.interface.is_none_or(|i| v1_interface(route) == i)
            && self.protocol.is_none_or(|p| p == route.owner.protocol)
            && (!self.best_only || is_unicast_best(route))
    }
}

/// The interface of a route in RTMv1 terms: its first next hop's.
fn v1_interface<F: Family>(route: &RouteInfo<F>) -> u32 {
    route.next_hops.first().map_or(0, |nh| nh.interface())
}

fn is_unicast_best<F: Family>(route: &RouteInfo<F>) -> bool {
    route
        .route
        .destination()
        .best_route(ViewSet::UNICAST, Selector::Best)
        .is_some_and(|b| b.route == route.route)
}

/// The RTMv1 order within a network: protocol, interface, next-hop address (then creation
/// order, so that the order is total).
fn v1_order<F: Family>(a: &RouteInfo<F>, b: &RouteInfo<F>) -> Ordering {
    let key = |r: &RouteInfo<F>| {
        (r.owner.protocol, v1_interface(r), r.next_hops.first().map(|nh| nh.address()), r.route.obj().serial)
    };
    key(a).cmp(&key(b))
}

/// The RTMv1 calls on one table; see the [module docs](self).
#[derive(Debug)]
pub struct Client<'t, F: Family> {
    table: &'t Table<F>,
}

impl<F: Family> Table<F> {
    /// The RTMv1 view of this table.
    ///
    /// See the [`v1`](crate::v1) module example.
    pub fn v1(&self) -> Client<'_, F> {
        Client { table: self }
    }
}

/// An RTMv1 enumeration handle over a snapshot of the table: each matching route once, then
/// `NoMoreRoutes`.
///
/// See the [`v1`](crate::v1) module example.
#[derive(Debug)]
pub struct Enumeration<F: Family> {
    /// `None` once closed.
    routes: Option<RouteEnumeration<F>>,
    criteria: Criteria<F>,
    /// The first match, read at creation to tell `NoRoutes`.
    first: Option<RouteInfo<F>>,
}

impl<F: Family> Client<'_, F> {
    /// RtmCreateEnumerationHandle: `NoRoutes` if no route matches now.
    ///
    /// See the module example.
    pub fn create_enumeration(&self, criteria: Criteria<F>) -> Result<Enumeration<F>, Error> {
        let scope = match criteria.network {
            Some(network) => match self.table.exact(network, ViewSet::ALL, Selector::Best) {
                Ok(found) => RouteScope::Destination(found.destination),
                Err(_) => return Err(Error::NoRoutes),
            },
            None => RouteScope::Destinations(EnumStart::All),
        };
        let prefilter = RouteMatch {
            protocol: criteria.protocol,
            interface: criteria.interface,
            ..RouteMatch::default()
        };
        let mut routes = self.table.enumerate_routes(RouteOptions { scope, criteria: prefilter })?;
        let first = routes.by_ref().find(|r| criteria.matches(r)).ok_or(Error::NoRoutes)?;
        Ok(Enumeration { routes: Some(routes), criteria, first: Some(first) })
    }

    /// RtmGetFirstRoute: the first route in (network, protocol, interface, next-hop address)
    /// order that matches `criteria`; `NoRoutes` if none.
    ///
    /// ```
    /// # use rtmgr::v1::Criteria;
    /// # use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let rip = table.register(EntityConfig::new(EntityId::new(8, 0)))?;
    /// # let (nh, _) = rip.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// rip.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]))?;
    /// rip.add_route("9.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let v1 = table.v1();
    /// let first = v1.get_first_route(Criteria::default())?;
    /// assert_eq!(first.prefix().to_string(), "9.0.0.0/8");
    /// let second = v1.get_next_route(&first, Criteria::default())?;
    /// assert_eq!(second.prefix().to_string(), "10.0.0.0/8");
    /// assert_eq!(v1.get_next_route(&second, Criteria::default()).unwrap_err(), Error::NoMoreRoutes);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn get_first_route(&self, criteria: Criteria<F>) -> Result<RouteInfo<F>, Error> {
        self.scan(Prefix::default_route(), None, criteria).ok_or(Error::NoRoutes)
    }

    /// RtmGetNextRoute: the route after `after` in (network, protocol, interface, next-hop
    /// address) order that matches `criteria`; `NoMoreRoutes` at the end. `after` may have been
    /// deleted meanwhile.
    ///
    /// See [`Client::get_first_route`]'s example.
    pub fn get_next_route(&self, after: &RouteInfo<F>, criteria: Criteria<F>) -> Result<RouteInfo<F>, Error> {
        self.table.check_table(after.route.obj().dest.table_id)?;
        self.scan(after.prefix(), Some(after), criteria).ok_or(Error::NoMoreRoutes)
    }

    /// The first matching route from network `from` on, after `after` within that network.
    fn scan(
        &self,
        from: Prefix<F>,
        after: Option<&RouteInfo<F>>,
        criteria: Criteria<F>,
    ) -> Option<RouteInfo<F>> {
        let guard = crate::reclaim::pin();
        let root = self.table.inner.tree.root(&guard);
        Iter::resume(root, (0, 0), (from.key(), from.len()), true).find_map(|dest| {
            let mut routes: Vec<RouteInfo<F>> = dest
                .routes(&guard)
                .routes
                .iter()
                .map(RouteInfo::of)
                .filter(|r| criteria.matches(r))
                .filter(|r| {
                    after.is_none_or(|a| dest.prefix != a.prefix() || v1_order(r, a) == Ordering::Greater)
                })
                .collect();
            routes.sort_by(v1_order);
            routes.into_iter().next()
        })
    }

    /// RtmIsRoute: the best (unicast) route to exactly `network`, if it has one.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let rip = table.register(EntityConfig::new(EntityId::new(8, 0)))?;
    /// # let (nh, _) = rip.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// rip.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// assert!(table.v1().is_route("10.0.0.0/8".parse()?).is_some());
    /// assert!(table.v1().is_route("10.0.0.0/9".parse()?).is_none());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn is_route(&self, network: Prefix<F>) -> Option<RouteInfo<F>> {
        self.table.exact(network, ViewSet::UNICAST, Selector::Best).ok().and_then(|m| m.route)
    }

    /// RtmGetNetworkCount: the number of networks (destinations) with routes.
    ///
    /// See the module example.
    pub fn network_count(&self) -> usize {
        self.table.destination_count()
    }

    /// RtmLookupIPDestination: the best (unicast) route of the most specific network covering
    /// `addr`.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let rip = table.register(EntityConfig::new(EntityId::new(8, 0)))?;
    /// # let (nh, _) = rip.add_next_hop("192.0.2.1".parse().unwrap(), 4, NextHopData::default())?;
    /// rip.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let r = table.v1().lookup_ip_destination("10.9.9.9".parse().unwrap()).unwrap();
    /// assert_eq!(r.prefix().to_string(), "10.0.0.0/8");
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn lookup_ip_destination(&self, addr: F::Addr) -> Option<RouteInfo<F>> {
        self.table.most_specific(addr, ViewSet::UNICAST, Selector::Best).ok().and_then(|m| m.route)
    }
}

impl<F: Family> Enumeration<F> {
    /// RtmEnumerateGetNextRoute: the next matching route; `NoMoreRoutes` at the end,
    /// `InvalidHandle` once closed.
    ///
    /// See the module example.
    pub fn get_next(&mut self) -> Result<RouteInfo<F>, Error> {
        let routes = self.routes.as_mut().ok_or(Error::InvalidHandle("the enumeration is closed"))?;
        if let Some(first) = self.first.take() {
            return Ok(first);
        }
        let criteria = self.criteria;
        routes.find(|r| criteria.matches(r)).ok_or(Error::NoMoreRoutes)
    }

    /// RtmCloseEnumerationHandle: releases what the enumeration holds; `InvalidHandle` if it
    /// was already closed.
    ///
    /// See the module example.
    pub fn close(&mut self) -> Result<(), Error> {
        self.first = None;
        self.routes.take().map(drop).ok_or(Error::InvalidHandle("the enumeration is already closed"))
    }
}
