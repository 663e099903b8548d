//! Destination enumerations (RtmCreateDestEnum, RtmGetEnumDests, RtmDeleteEnumHandle).

use std::collections::VecDeque;

use super::{BatchEnd, EnumStart, SnapshotWalk, Walk};
use crate::handles::{Destination, RouteInfo};
use crate::table::objects::RouteSet;
use crate::table::presence::Cut;
use crate::table::{DestMatch, Table};
use crate::{EntityId, Error, Family, Selector, ViewSet};

/// Which destinations an enumeration reports.
///
/// ```
/// use rtmgr::{DestFilter, EntityId};
/// assert_ne!(DestFilter::All, DestFilter::BestOwnedBy(EntityId::new(14, 0)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DestFilter {
    /// Every destination of the snapshot (RTM_ENUM_ALL_DESTS).
    #[default]
    All,
    /// Only destinations where this entity owns the best route in one of the asked views
    /// (RTM_ENUM_OWN_DESTS).
    BestOwnedBy(EntityId),
}

/// What a destination enumeration walks and reports.
///
/// ```
/// use rtmgr::{DestOptions, EnumStart, Ipv4, Selector, ViewSet};
/// let opts = DestOptions::<Ipv4>::default().start(EnumStart::Within("10.0.0.0/8".parse()?)).views(ViewSet::UNICAST);
/// assert_eq!(opts.selector, Selector::Best);
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestOptions<F: Family> {
    /// Where to start (and, for a range, stop).
    pub start: EnumStart<F>,
    /// Views asked: with [`ViewSet::ALL`] every destination of the snapshot is reported (a
    /// deleted one reads as deleted); with fewer views, only destinations that have a route in
    /// one of them when read.
    pub views: ViewSet,
    /// Which route each result carries.
    pub selector: Selector,
    /// Which destinations to report.
    pub filter: DestFilter,
}

impl<F: Family> Default for DestOptions<F> {
    fn default() -> Self {
        DestOptions {
            start: EnumStart::All,
            views: ViewSet::ALL,
            selector: Selector::Best,
            filter: DestFilter::All,
        }
    }
}

impl<F: Family> DestOptions<F> {
    /// Sets where to start.
    ///
    /// See the type's example.
    pub fn start(mut self, start: EnumStart<F>) -> Self {
        self.start = start;
        self
    }

    /// Sets the views.
    ///
    /// See the type's example.
    pub fn views(mut self, views: ViewSet) -> Self {
        self.views = views;
        self
    }

    /// Sets the selector.
    ///
    /// ```
    /// use rtmgr::{DestOptions, Ipv4, Selector};
    /// assert_eq!(DestOptions::<Ipv4>::default().selector(Selector::Protocol(14)).selector, Selector::Protocol(14));
    /// ```
    pub fn selector(mut self, selector: Selector) -> Self {
        self.selector = selector;
        self
    }

    /// Sets the filter.
    ///
    /// ```
    /// use rtmgr::{DestFilter, DestOptions, EntityId, Ipv4};
    /// let id = EntityId::new(14, 0);
    /// assert_eq!(DestOptions::<Ipv4>::default().filter(DestFilter::BestOwnedBy(id)).filter, DestFilter::BestOwnedBy(id));
    /// ```
    pub fn filter(mut self, filter: DestFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Whether to report a destination whose route set is `set` now (a destination absent at
    /// creation is never reported; see the module docs).
    fn wants(&self, set: &RouteSet<F>, cut: Cut) -> bool {
        if !cut.was_present(set) || (self.views != ViewSet::ALL && !set.has_route_in(self.views)) {
            return false;
        }
        match self.filter {
            DestFilter::All => true,
            DestFilter::BestOwnedBy(id) => {
                set.best(self.views, Selector::Best).is_some_and(|b| b.route.owner.id == id)
            }
        }
    }
}

/// An open destination enumeration over a snapshot of the table.
///
/// Read it in batches with [`DestEnumeration::next_batch`] or as an [`Iterator`]. It holds no
/// epoch guard between calls; dropping it (or [`DestEnumeration::close`]) releases what it
/// holds. See the [module docs](crate::enumerate) for the exact guarantee.
///
/// ```
/// use rtmgr::{DestOptions, EntityConfig, EntityId, Error, Ipv4, NextHopData, RouteData, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// for p in ["10.0.0.0/8", "10.1.0.0/16", "192.168.0.0/16"] {
///     reg.add_route(p.parse()?, RouteData::new(vec![nh.clone()]))?;
/// }
/// let mut dests = table.enumerate_destinations(DestOptions::default())?;
/// reg.add_route("11.0.0.0/8".parse()?, RouteData::new(vec![nh]))?; // not in the snapshot
/// let first = dests.next_batch(2)?;
/// assert_eq!(first.len(), 2);
/// let rest = dests.next_batch(2)?;
/// assert_eq!(rest[0].destination.prefix().to_string(), "192.168.0.0/16");
/// assert_eq!(dests.next_batch(2).unwrap_err(), Error::NoMoreItems);
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct DestEnumeration<F: Family> {
    max_batch: usize,
    walk: SnapshotWalk<F>,
    options: DestOptions<F>,
    end: BatchEnd,
    /// Items read ahead for the `Iterator` interface.
    buffered: VecDeque<DestMatch<F>>,
}

impl<F: Family> Table<F> {
    /// Opens a destination enumeration over a snapshot of the table taken now (O(1)).
    ///
    /// See [`DestEnumeration`]'s example.
    pub fn enumerate_destinations(&self, options: DestOptions<F>) -> Result<DestEnumeration<F>, Error> {
        Ok(DestEnumeration {
            max_batch: self.inner.config.max_batch,
            walk: SnapshotWalk::open(&self.inner, options.start),
            options,
            end: BatchEnd::default(),
            buffered: VecDeque::new(),
        })
    }
}

impl<F: Family> DestEnumeration<F> {
    /// The next up to `max` destinations (1 ≤ `max` ≤ the table's `max_batch`, else
    /// `InvalidParameter`). When none is left the call returns `NoMoreItems`, once; a call after
    /// that is `InvalidHandle`.
    ///
    /// See the type's example.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<DestMatch<F>>, Error> {
        self.end.check(max, self.max_batch)?;
        let mut batch: Vec<DestMatch<F>> = self.buffered.drain(..self.buffered.len().min(max)).collect();
        if batch.len() < max {
            self.read(max - batch.len(), &mut batch);
        }
        self.end.finish(batch)
    }

    /// Reads up to `n` more destinations from the snapshot into `out`, under one short guard.
    fn read(&mut self, n: usize, out: &mut Vec<DestMatch<F>>) {
        let guard = crate::reclaim::pin();
        let options = self.options;
        let target = out.len() + n;
        let cut = self.walk.cut();
        self.walk.step(|dest| {
            let set = dest.routes(&guard);
            if options.wants(set, cut) {
                out.push(DestMatch {
                    destination: Destination::from_ref(dest.clone(), set),
                    route: set.best(options.views, options.selector).map(RouteInfo::of),
                });
            }
            if out.len() == target { Walk::Stop } else { Walk::Continue }
        });
    }

    /// Closes the enumeration (RtmDeleteEnumHandle), releasing the snapshot. Dropping it does
    /// the same; a second close cannot happen since this consumes the enumeration.
    ///
    /// ```
    /// # use rtmgr::{DestOptions, Ipv4, Table};
    /// let table = Table::<Ipv4>::new();
    /// let e = table.enumerate_destinations(DestOptions::default())?;
    /// e.close()?;
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        drop(self);
        Ok(())
    }
}

impl<F: Family> Iterator for DestEnumeration<F> {
    type Item = DestMatch<F>;

    /// The next destination; reads ahead one `max_batch` at a time, holding no guard between
    /// calls.
    fn next(&mut self) -> Option<DestMatch<F>> {
        if self.buffered.is_empty() && !self.walk.is_done() {
            let mut batch = Vec::new();
            self.read(self.max_batch, &mut batch);
            self.buffered.extend(batch);
        }
        self.buffered.pop_front()
    }
}

impl<F: Family> std::fmt::Debug for DestEnumeration<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestEnumeration")
            .field("options", &self.options)
            .field("done", &self.walk.is_done())
            .finish()
    }
}
