//! The objects a table is made of: entities, next hops, routes, destinations and route sets.
//!
//! Each lives in a [`Ref`]-counted allocation (see `counted.rs`). Route data and route sets are
//! immutable: a change builds a new version and publishes it with one compare-and-swap, so a
//! reader sees a destination's routes and its best routes either wholly before or wholly after
//! any change (copy-on-write, DESIGN-NOTES §1).
//!
//! Ownership graph (strong references only): a destination's route set holds its routes; a
//! route holds its owner entity and its destination (a cycle that deleting the route breaks);
//! route data holds next hops; an entity holds its next-hop list. Next hops hold no route or
//! destination, so deleting every route of a table frees every destination.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use smallvec::SmallVec;

use crate::cell::EpochCell;
use crate::counted::Ref;
use crate::handles::NextHop;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering, SerialCounter, epoch::Guard};
use crate::table::presence::PENDING;
use crate::{EntityId, Family, NextHopFlags, Preference, Prefix, RouteFlags, Selector, ViewSet};

/// A registered entity (a protocol instance or management client).
pub(crate) struct EntityObj<F: Family> {
    /// Unique per registration, so a re-registered identity never owns the old one's objects.
    pub(crate) serial: u64,
    pub(crate) id: EntityId,
    pub(crate) default_preference: u32,
    pub(crate) views: ViewSet,
    /// Cleared (SeqCst) when deregistration starts; see `Registration::add_route` for the
    /// handshake that keeps late route additions from outliving it.
    pub(crate) registered: AtomicBool,
    /// The entity's next hops by (address key, interface index).
    pub(crate) next_hops: DashMap<(u128, u32), NextHop<F>>,
}

/// A next hop: (address, interface) within its owner.
pub(crate) struct NextHopObj<F: Family> {
    pub(crate) table_id: u64,
    pub(crate) owner: EntityId,
    pub(crate) owner_serial: u64,
    pub(crate) address: F::Addr,
    pub(crate) interface: u32,
    pub(crate) deleted: AtomicBool,
    /// The changeable part, replaced as a whole.
    pub(crate) data: EpochCell<NextHopData>,
}

/// The changeable fields of a next hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NextHopData {
    /// Flags (`REMOTE`: the address is resolved through the table).
    pub flags: NextHopFlags,
    /// Owner-private data, opaque to the table.
    pub private: u64,
}

/// The identity part of a route; its changeable data lives in the destination's route set.
pub(crate) struct RouteObj<F: Family> {
    /// Creation order: the last tie-break of the best-route order.
    pub(crate) serial: u64,
    pub(crate) owner: Ref<EntityObj<F>>,
    pub(crate) dest: Ref<DestObj<F>>,
}

/// What a route says: everything but its identity. Immutable once published.
///
/// Built with [`RouteData::new`] and its builder methods, passed to
/// [`Registration::add_route`](crate::Registration::add_route), read back through
/// [`RouteInfo`](crate::RouteInfo).
///
/// ```
/// use rtmgr::{Ipv4, Preference, RouteData, ViewSet};
/// let data = RouteData::<Ipv4>::new(vec![]).preference(Preference::new(20, 5)).views(ViewSet::ALL);
/// assert_eq!(data.preference.metric, 5);
/// ```
#[derive(Clone, Debug)]
pub struct RouteData<F: Family> {
    /// The advertising peer's next hop, part of the route's identity (with destination and owner).
    pub neighbour: Option<NextHop<F>>,
    /// Preference and metric; a preference of 0 takes the owner's default.
    pub preference: Preference,
    /// The views the route is in.
    pub views: ViewSet,
    /// Route flags (`INACTIVE` routes are never best).
    pub flags: RouteFlags,
    /// Owner-private data, opaque to the table.
    pub private: u64,
    /// The equal-cost next hops: 1 to the table's `max_next_hops`, all the owner's.
    pub next_hops: Vec<NextHop<F>>,
}

impl<F: Family> RouteData<F> {
    /// Route data with these next hops, the owner's default preference, metric 0, the unicast
    /// view, no flags, no neighbour.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData, ViewSet};
    /// let d = RouteData::<Ipv4>::new(vec![]);
    /// assert_eq!(d.views, ViewSet::UNICAST);
    /// ```
    pub fn new(next_hops: Vec<NextHop<F>>) -> Self {
        RouteData {
            neighbour: None,
            preference: Preference::default(),
            views: ViewSet::UNICAST,
            flags: RouteFlags::NONE,
            private: 0,
            next_hops,
        }
    }

    /// Sets the preference and metric.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Preference, RouteData};
    /// assert_eq!(RouteData::<Ipv4>::new(vec![]).preference(Preference::new(5, 1)).preference.preference, 5);
    /// ```
    pub fn preference(mut self, preference: Preference) -> Self {
        self.preference = preference;
        self
    }

    /// Sets the views.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData, ViewSet};
    /// assert_eq!(RouteData::<Ipv4>::new(vec![]).views(ViewSet::ALL).views, ViewSet::ALL);
    /// ```
    pub fn views(mut self, views: ViewSet) -> Self {
        self.views = views;
        self
    }

    /// Sets the flags.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData, RouteFlags};
    /// assert!(RouteData::<Ipv4>::new(vec![]).flags(RouteFlags::INACTIVE).flags.contains(RouteFlags::INACTIVE));
    /// ```
    pub fn flags(mut self, flags: RouteFlags) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the neighbour (the advertising peer's next hop).
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData};
    /// assert!(RouteData::<Ipv4>::new(vec![]).neighbour(None).neighbour.is_none());
    /// ```
    pub fn neighbour(mut self, neighbour: Option<NextHop<F>>) -> Self {
        self.neighbour = neighbour;
        self
    }

    /// Sets the owner-private data.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData};
    /// assert_eq!(RouteData::<Ipv4>::new(vec![]).private(42).private, 42);
    /// ```
    pub fn private(mut self, private: u64) -> Self {
        self.private = private;
        self
    }

    pub(crate) fn is_active(&self) -> bool {
        !self.flags.contains(RouteFlags::INACTIVE)
    }
}

/// Route data that many routes share: one allocation for all of them.
///
/// A routing daemon gives many prefixes the same attributes (every prefix learnt over one BGP
/// path has the same next hops and preference); it can make their [`RouteData`] once, share it,
/// and pass a clone with each route. Each route then costs the table no data allocation of its
/// own — about 80 bytes per route on the real IPv4 table (docs/BENCHMARKS.md, "Memory"). A
/// plain [`RouteData`] converts into one (then used by that route alone).
///
/// The table resolves a preference of 0 to the owner's default per route: such data is copied
/// at each add, so give shared data its preference.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Preference, RouteData, SharedRouteData, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(14, 0)))?;
/// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// let path = SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, 0)));
/// let (a, _) = reg.add_route("10.0.0.0/8".parse()?, path.clone())?;
/// let (b, _) = reg.add_route("11.0.0.0/8".parse()?, path)?;
/// assert!(std::ptr::eq(&*a.info()?, &*b.info()?)); // one RouteData for both routes
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedRouteData<F: Family>(pub(crate) Arc<RouteData<F>>);

impl<F: Family> SharedRouteData<F> {
    /// Makes `data` shareable.
    ///
    /// See the type's example.
    pub fn new(data: RouteData<F>) -> Self {
        SharedRouteData(Arc::new(data))
    }
}

impl<F: Family> From<RouteData<F>> for SharedRouteData<F> {
    /// Route data for one route.
    ///
    /// ```
    /// use rtmgr::{Ipv4, RouteData, SharedRouteData};
    /// let shared: SharedRouteData<Ipv4> = RouteData::new(vec![]).private(7).into();
    /// assert_eq!(shared.private, 7);
    /// ```
    fn from(data: RouteData<F>) -> Self {
        SharedRouteData::new(data)
    }
}

impl<F: Family> std::ops::Deref for SharedRouteData<F> {
    type Target = RouteData<F>;
    fn deref(&self) -> &RouteData<F> {
        &self.0
    }
}

impl<F: Family> std::fmt::Debug for SharedRouteData<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One route in a route set: its identity and the data version current in this set.
#[derive(Clone)]
pub(crate) struct RouteEntry<F: Family> {
    pub(crate) route: Ref<RouteObj<F>>,
    pub(crate) data: Arc<RouteData<F>>,
}

impl<F: Family> RouteEntry<F> {
    /// The best-route order: preference, metric, owner (protocol, instance), creation order.
    fn order_key(&self) -> (Preference, EntityId, u64) {
        (self.data.preference, self.route.owner.id, self.route.serial)
    }
}

/// A route set's entries. Inline up to one entry: most destinations of a real table have one
/// route, and their set is then one allocation, not two.
pub(crate) type RouteList<F> = SmallVec<[RouteEntry<F>; 1]>;

/// A destination's routes at one instant, in best order. Immutable once published.
///
/// A destination with an empty set is absent (it stays in the tree until a sweep, see
/// `presence.rs`); one with the *removed* marker (incarnation 0) has left or is leaving the tree
/// for good.
pub(crate) struct RouteSet<F: Family> {
    /// For an empty or removed set: the presence-clock tick of the emptying (0: it never held
    /// a route; `PENDING` until the emptying has read its tick). 0 for a set with routes.
    gone_at: AtomicU64,
    /// Which incarnation of the destination the set belongs to: kept by every change but a
    /// revival, which starts the next one (destination handles belong to one; see
    /// `handles::Destination`). 0 marks the set *removed*: the destination is leaving (or has
    /// left) the tree, and must not get new routes (a writer replaces it with a fresh
    /// destination instead).
    pub(crate) incarnation: u64,
    /// When this version was made.
    changed_at: Timestamp,
    /// The routes, best first.
    pub(crate) routes: RouteList<F>,
}

impl<F: Family> RouteSet<F> {
    /// The incarnation of a destination's first route set.
    pub(crate) const FIRST_INCARNATION: u64 = 1;

    /// A set of these routes (at least one) of the destination's `incarnation` (not 0), sorted
    /// into best order.
    pub(crate) fn new(routes: RouteList<F>, incarnation: u64) -> Self {
        Self::new_at(routes, incarnation, Timestamp::now())
    }

    /// [`RouteSet::new`] changed at `at`: the routes of one bulk add share one clock reading.
    pub(crate) fn new_at(mut routes: RouteList<F>, incarnation: u64, at: Timestamp) -> Self {
        debug_assert_ne!(incarnation, 0, "incarnation 0 is the removed marker");
        routes.sort_by_key(RouteEntry::order_key);
        RouteSet { gone_at: AtomicU64::new(0), incarnation, changed_at: at, routes }
    }

    /// The empty set of a destination losing its last route; its emptying stores its tick with
    /// [`RouteSet::set_gone_at`] once the set is published.
    pub(crate) fn emptied(incarnation: u64) -> Self {
        let gone_at = AtomicU64::new(PENDING);
        RouteSet { gone_at, incarnation, changed_at: Timestamp::now(), routes: RouteList::new() }
    }

    /// The set a new destination holds for the moment between its allocation and its first
    /// route's (its route refers to it): the removed marker, without a timestamp.
    pub(crate) fn placeholder() -> Self {
        RouteSet {
            gone_at: AtomicU64::new(0),
            incarnation: 0,
            changed_at: Timestamp(0),
            routes: RouteList::new(),
        }
    }

    /// The set of a destination that has left (or is leaving) the tree, empty since tick
    /// `gone_at` (0 if it was never published with routes).
    pub(crate) fn removed(gone_at: u64) -> Self {
        let gone_at = AtomicU64::new(gone_at);
        RouteSet { gone_at, incarnation: 0, changed_at: Timestamp::now(), routes: RouteList::new() }
    }

    /// Whether this is the removed marker: the destination is leaving (or has left) the tree.
    #[inline]
    pub(crate) fn is_removed(&self) -> bool {
        self.incarnation == 0
    }

    /// When this version was made.
    pub(crate) fn changed_at(&self) -> Instant {
        self.changed_at.instant()
    }

    /// The presence-clock tick of the emptying (see `presence.rs`).
    #[inline]
    pub(crate) fn gone_at(&self) -> u64 {
        self.gone_at.load(Ordering::SeqCst)
    }

    /// Records the emptying's tick, read after the set was published.
    pub(crate) fn set_gone_at(&self, tick: u64) {
        self.gone_at.store(tick, Ordering::SeqCst);
    }

    /// Whether the destination is absent: no route (emptied, or removed).
    #[inline]
    pub(crate) fn is_absent(&self) -> bool {
        self.routes.is_empty()
    }

    /// The first route in best order that is active, in one of `views`, and whose owner the
    /// selector accepts.
    #[inline]
    pub(crate) fn best(&self, views: ViewSet, selector: Selector) -> Option<&RouteEntry<F>> {
        self.routes.iter().find(|e| {
            // `Best` accepts every owner: not reading the owner spares the fast path two
            // dependent loads (route, entity).
            e.data.views.intersects(views)
                && e.data.is_active()
                && (selector == Selector::Best || selector.accepts(e.route.owner.id))
        })
    }

    /// Whether any route (active or not) is in one of `views`.
    pub(crate) fn has_route_in(&self, views: ViewSet) -> bool {
        self.routes.iter().any(|e| e.data.views.intersects(views))
    }

    /// The entry of a route, if it is in this set.
    pub(crate) fn find(&self, route: &RouteObj<F>) -> Option<&RouteEntry<F>> {
        self.routes.iter().find(|e| std::ptr::eq(&*e.route, route))
    }

    /// The views in which `route` is the best route.
    pub(crate) fn best_views(&self, route: &RouteObj<F>) -> ViewSet {
        let mut views = ViewSet::NONE;
        for v in 0..32u8 {
            let view = ViewSet::from_bits(1 << v);
            if let Some(best) = self.best(view, Selector::Best) {
                if std::ptr::eq(&*best.route, route) {
                    views = views | view;
                }
            }
        }
        views
    }

    /// Whether the best route of some view differs between the two sets: another route, or a
    /// new version of the same route's data.
    pub(crate) fn best_differs(&self, other: &RouteSet<F>) -> bool {
        let views = self.views() | other.views();
        views.iter().any(|v| {
            let view = ViewSet::from_bits(1 << v);
            let a = self.best(view, Selector::Best);
            let b = other.best(view, Selector::Best);
            match (a, b) {
                (None, None) => false,
                (Some(a), Some(b)) => !(Ref::ptr_eq(&a.route, &b.route) && Arc::ptr_eq(&a.data, &b.data)),
                _ => true,
            }
        })
    }

    /// The union of the views of the routes.
    pub(crate) fn views(&self) -> ViewSet {
        self.routes.iter().fold(ViewSet::NONE, |acc, e| acc | e.data.views)
    }
}

/// A destination: a prefix and its current route set.
pub(crate) struct DestObj<F: Family> {
    pub(crate) table_id: u64,
    pub(crate) prefix: Prefix<F>,
    pub(crate) routes: EpochCell<RouteSet<F>>,
}

impl<F: Family> DestObj<F> {
    /// The current route set, readable while `guard` is pinned.
    #[inline]
    pub(crate) fn routes<'g>(&self, guard: &'g Guard) -> &'g RouteSet<F> {
        self.routes.load(guard)
    }
}

/// A monotonic clock reading in 8 bytes (an `Instant` takes 16), for "last changed" times:
/// nanoseconds since the first reading of the process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamp(u64);

impl Timestamp {
    /// The instant all timestamps count from.
    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    pub(crate) fn now() -> Self {
        let base = Self::base();
        let since = Instant::now().saturating_duration_since(base);
        // u64 nanoseconds cover 584 years of uptime (and spare the u128 of `as_nanos`).
        Timestamp(since.as_secs() * 1_000_000_000 + u64::from(since.subsec_nanos()))
    }

    fn instant(self) -> Instant {
        Self::base() + Duration::from_nanos(self.0)
    }
}

/// Process-wide serial numbers (entity registrations, route creation order, table ids).
pub(crate) fn next_serial() -> u64 {
    static SERIAL: SerialCounter = SerialCounter::new(1);
    SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Ipv4, Ipv6};
    use std::mem::size_of;

    /// The per-destination and per-route objects stay as small as the memory budget of issue 5
    /// needs them (docs/BENCHMARKS.md, "Memory"): a field added by mistake shows here first.
    #[test]
    fn objects_stay_small() {
        assert_eq!(size_of::<RouteEntry<Ipv4>>(), 16);
        assert_eq!(size_of::<RouteList<Ipv4>>(), 24, "one entry inline, no tag word");
        assert_eq!(size_of::<RouteSet<Ipv4>>(), 48);
        assert_eq!(size_of::<RouteSet<Ipv6>>(), 48);
        assert_eq!(size_of::<RouteObj<Ipv4>>(), 24);
    }

    #[test]
    fn timestamps_read_back_the_instant_they_were_taken() {
        let before = Instant::now();
        let stamp = Timestamp::now();
        let after = Instant::now();
        assert!(before <= stamp.instant() && stamp.instant() <= after);
    }
}
