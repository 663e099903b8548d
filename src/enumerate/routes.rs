//! Route enumerations (RtmCreateRouteEnum, RtmGetEnumRoutes, RtmDeleteEnumHandle).

use std::collections::VecDeque;

use super::{BatchEnd, EnumStart, SnapshotWalk, Walk};
use crate::handles::{Destination, RouteInfo};
use crate::table::objects::RouteSet;
use crate::table::{RouteMatch, Table};
use crate::{Error, Family};

/// Which destinations' routes a route enumeration walks.
///
/// ```
/// use rtmgr::{EnumStart, Ipv4, RouteScope};
/// let scope = RouteScope::<Ipv4>::Destinations(EnumStart::All);
/// assert!(matches!(scope, RouteScope::Destinations(_)));
/// ```
#[derive(Clone, Debug)]
pub enum RouteScope<F: Family> {
    /// The routes of one destination, as they are when first read.
    Destination(Destination<F>),
    /// The routes of the destinations of a snapshot taken at creation, in start/next/range
    /// order.
    Destinations(EnumStart<F>),
}

/// What a route enumeration walks and which routes it reports.
///
/// ```
/// use rtmgr::{EntityId, Ipv4, RouteMatch, RouteOptions};
/// // Only my routes (RTM_ENUM_OWN_ROUTES):
/// let mine = RouteOptions::<Ipv4>::default().criteria(RouteMatch::default().owner(EntityId::new(14, 0)));
/// assert!(mine.criteria.owner.is_some());
/// ```
#[derive(Clone, Debug)]
pub struct RouteOptions<F: Family> {
    /// The destinations walked.
    pub scope: RouteScope<F>,
    /// The routes reported: owner ("own routes"), neighbour, preference, next hops, interface,
    /// views.
    pub criteria: RouteMatch<F>,
}

impl<F: Family> Default for RouteOptions<F> {
    fn default() -> Self {
        RouteOptions { scope: RouteScope::Destinations(EnumStart::All), criteria: RouteMatch::default() }
    }
}

impl<F: Family> RouteOptions<F> {
    /// Sets the scope.
    ///
    /// ```
    /// use rtmgr::{EnumStart, Ipv4, RouteOptions, RouteScope};
    /// let o = RouteOptions::<Ipv4>::default().scope(RouteScope::Destinations(EnumStart::Within("10.0.0.0/8".parse()?)));
    /// assert!(matches!(o.scope, RouteScope::Destinations(EnumStart::Within(_))));
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn scope(mut self, scope: RouteScope<F>) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the match criteria.
    ///
    /// See the type's example.
    pub fn criteria(mut self, criteria: RouteMatch<F>) -> Self {
        self.criteria = criteria;
        self
    }
}

/// Where a route enumeration takes its destinations from.
enum Source<F: Family> {
    /// One destination, not read yet (`None` once read).
    Single(Option<Destination<F>>),
    Walk(SnapshotWalk<F>),
}

/// An open route enumeration: routes in address order, then best order within a destination.
///
/// A destination's matching routes are read together (its state at that moment); when a batch
/// ends inside a destination, the rest of its routes are kept as counted handles for the next
/// batch, so each is reported exactly once. No epoch guard is held between calls.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, RouteOptions, Table};
/// let table = Table::<Ipv4>::new();
/// let a = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// let b = table.register(EntityConfig::new(EntityId::new(3, 0)))?;
/// let (na, _) = a.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// let (nb, _) = b.add_next_hop("192.0.2.2".parse().unwrap(), 2, NextHopData::default())?;
/// for p in ["10.0.0.0/8", "11.0.0.0/8"] {
///     a.add_route(p.parse()?, RouteData::new(vec![na.clone()]))?;
///     b.add_route(p.parse()?, RouteData::new(vec![nb.clone()]))?;
/// }
/// let mut routes = table.enumerate_routes(RouteOptions::default())?;
/// assert_eq!(routes.next_batch(3)?.len(), 3);
/// assert_eq!(routes.next_batch(3)?.len(), 1);
/// assert_eq!(routes.next_batch(3).unwrap_err(), Error::NoMoreItems);
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct RouteEnumeration<F: Family> {
    max_batch: usize,
    source: Source<F>,
    criteria: RouteMatch<F>,
    /// Matching routes of the destination last read, not returned yet.
    pending: VecDeque<RouteInfo<F>>,
    end: BatchEnd,
}

impl<F: Family> Table<F> {
    /// Opens a route enumeration (a snapshot of the destinations is taken now, in O(1));
    /// `InvalidHandle` for a destination of another table.
    ///
    /// See [`RouteEnumeration`]'s example.
    pub fn enumerate_routes(&self, options: RouteOptions<F>) -> Result<RouteEnumeration<F>, Error> {
        let source = match options.scope {
            RouteScope::Destination(dest) => {
                self.check_table(dest.obj().table_id)?;
                Source::Single(Some(dest))
            }
            RouteScope::Destinations(start) => Source::Walk(SnapshotWalk::open(&self.inner, start)),
        };
        Ok(RouteEnumeration {
            max_batch: self.inner.config.max_batch,
            source,
            criteria: options.criteria,
            pending: VecDeque::new(),
            end: BatchEnd::default(),
        })
    }
}

impl<F: Family> RouteEnumeration<F> {
    /// The next up to `max` routes (1 ≤ `max` ≤ the table's `max_batch`, else
    /// `InvalidParameter`); `NoMoreItems` once when none is left, `InvalidHandle` after that.
    ///
    /// See the type's example.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<RouteInfo<F>>, Error> {
        self.end.check(max, self.max_batch)?;
        let mut batch = Vec::with_capacity(max);
        while batch.len() < max {
            if let Some(route) = self.pending.pop_front() {
                batch.push(route);
            } else if !self.read_more() {
                break;
            }
        }
        self.end.finish(batch)
    }

    /// Reads the matching routes of the next destination(s) that have any into `pending`.
    /// Returns false when no destination is left.
    fn read_more(&mut self) -> bool {
        let guard = crate::reclaim::pin();
        let criteria = &self.criteria;
        let pending = &mut self.pending;
        let collect = |set: &RouteSet<F>, pending: &mut VecDeque<RouteInfo<F>>| {
            pending.extend(set.routes.iter().map(RouteInfo::of).filter(|r| criteria.matches(r)));
        };
        match &mut self.source {
            Source::Single(dest) => match dest.take() {
                Some(dest) => {
                    // A handle of an earlier incarnation reads as deleted: no routes.
                    if let Some(set) = dest.current_set(&guard) {
                        collect(set, pending);
                    }
                    true
                }
                None => false,
            },
            Source::Walk(walk) => {
                walk.step(|dest| {
                    collect(dest.routes(&guard), pending);
                    if pending.is_empty() { Walk::Continue } else { Walk::Stop }
                });
                !pending.is_empty()
            }
        }
    }

    /// Closes the enumeration, releasing its snapshot and pending handles.
    ///
    /// ```
    /// # use rtmgr::{Ipv4, RouteOptions, Table};
    /// let table = Table::<Ipv4>::new();
    /// table.enumerate_routes(RouteOptions::default())?.close()?;
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        drop(self);
        Ok(())
    }
}

impl<F: Family> Iterator for RouteEnumeration<F> {
    type Item = RouteInfo<F>;

    fn next(&mut self) -> Option<RouteInfo<F>> {
        loop {
            if let Some(route) = self.pending.pop_front() {
                return Some(route);
            }
            if !self.read_more() {
                return None;
            }
        }
    }
}

impl<F: Family> std::fmt::Debug for RouteEnumeration<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteEnumeration").field("pending", &self.pending.len()).finish()
    }
}
