//! The handles users hold: [`Entity`], [`Destination`], [`Route`] and [`NextHop`].
//!
//! Each is one counted reference (see `counted.rs`): `Clone` takes another reference
//! (RtmReferenceHandles), `Drop` releases it (RtmRelease*). A handle keeps its object readable
//! for as long as it lives, also after the object left the table; it then reports itself as
//! deleted. Two handles are equal when they name the same object.

use std::fmt;
use std::ops::Deref;
use std::time::Instant;

use crate::counted::Ref;
use crate::sync::{Arc, Ordering};
use crate::table::objects::{
    DestObj, EntityObj, NextHopData, NextHopObj, RouteData, RouteEntry, RouteObj, RouteSet,
};
use crate::{EntityId, Error, Family, Prefix, Selector, ViewSet};

macro_rules! handle_common {
    ($name:ident, $obj:ident) => {
        impl<F: Family> Clone for $name<F> {
            fn clone(&self) -> Self {
                $name(self.0.clone())
            }
        }
        impl<F: Family> PartialEq for $name<F> {
            fn eq(&self, other: &Self) -> bool {
                Ref::ptr_eq(&self.0, &other.0)
            }
        }
        impl<F: Family> Eq for $name<F> {}
        impl<F: Family> $name<F> {
            pub(crate) fn from_ref(r: Ref<$obj<F>>) -> Self {
                $name(r)
            }
            pub(crate) fn obj(&self) -> &$obj<F> {
                &self.0
            }
        }
    };
}

/// A counted reference to a registered (or formerly registered) entity.
///
/// It keeps the entity's identity readable but does not keep it registered.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(14, 1)))?;
/// let handle = reg.entity();
/// assert_eq!(handle.id(), EntityId::new(14, 1));
/// drop(reg); // deregisters
/// assert!(!handle.is_registered());
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct Entity<F: Family>(Ref<EntityObj<F>>);
handle_common!(Entity, EntityObj);

impl<F: Family> Entity<F> {
    /// The entity's (protocol, instance) identity.
    ///
    /// See the type's example.
    pub fn id(&self) -> EntityId {
        self.0.id
    }

    /// Whether the entity is still registered.
    ///
    /// See the type's example.
    pub fn is_registered(&self) -> bool {
        self.0.registered.load(Ordering::SeqCst)
    }

    /// The preference given to its routes added with preference 0.
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(13, 0)).default_preference(110))?;
    /// assert_eq!(reg.entity().default_preference(), 110);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn default_preference(&self) -> u32 {
        self.0.default_preference
    }

    /// The views the entity registered for.
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Ipv4, Table, ViewSet};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(13, 0)))?;
    /// assert_eq!(reg.entity().views(), ViewSet::UNICAST);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn views(&self) -> ViewSet {
        self.0.views
    }
}

impl<F: Family> fmt::Debug for Entity<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entity").field("id", &self.id()).field("registered", &self.is_registered()).finish()
    }
}

/// A counted reference to a next hop: (address, interface) within its owner's list.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// let (nh, created) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 3, NextHopData::default())?;
/// assert!(created);
/// assert_eq!(nh.interface(), 3);
/// assert_eq!(nh.address().to_string(), "192.0.2.1");
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct NextHop<F: Family>(Ref<NextHopObj<F>>);
handle_common!(NextHop, NextHopObj);

impl<F: Family> NextHop<F> {
    /// The next hop's address.
    ///
    /// See the type's example.
    pub fn address(&self) -> F::Addr {
        self.0.address
    }

    /// The interface index.
    ///
    /// See the type's example.
    pub fn interface(&self) -> u32 {
        self.0.interface
    }

    /// The owner's identity.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 3, NextHopData::default())?;
    /// assert_eq!(nh.owner(), EntityId::new(2, 0));
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn owner(&self) -> EntityId {
        self.0.owner
    }

    /// Whether the next hop was deleted (explicitly or with its owner).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 3, NextHopData::default())?;
    /// reg.delete_next_hop(&nh)?;
    /// assert!(nh.is_deleted());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn is_deleted(&self) -> bool {
        self.0.deleted.load(Ordering::SeqCst)
    }

    /// The current flags and private data.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, NextHopFlags, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let data = NextHopData { flags: NextHopFlags::REMOTE, private: 9 };
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 0, data)?;
    /// assert_eq!(nh.data(), data);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn data(&self) -> NextHopData {
        *self.0.data.load(&crate::reclaim::pin())
    }
}

impl<F: Family> fmt::Debug for NextHop<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NextHop({} if {} of {:?})", self.address(), self.interface(), self.owner())
    }
}

/// A counted reference to a destination (a prefix with routes).
///
/// It stays readable after the destination left the table, and then reads as deleted with no
/// routes, for good: a handle belongs to one *incarnation* of its prefix's destination, from a
/// first route to the removal of the last, and a route added to the prefix later makes a new
/// incarnation that the old handle does not see (even when the table reuses the emptied
/// destination in place; see `table/presence.rs`).
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
/// let dest = table.exact("10.0.0.0/8".parse()?, ViewSet::UNICAST, Selector::Best)?.destination;
/// assert_eq!(dest.prefix().to_string(), "10.0.0.0/8");
/// assert_eq!(dest.routes().len(), 1);
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct Destination<F: Family> {
    obj: Ref<DestObj<F>>,
    /// The incarnation the handle belongs to (`RouteSet::incarnation`).
    incarnation: u64,
}

impl<F: Family> Clone for Destination<F> {
    fn clone(&self) -> Self {
        Destination { obj: self.obj.clone(), incarnation: self.incarnation }
    }
}

impl<F: Family> PartialEq for Destination<F> {
    fn eq(&self, other: &Self) -> bool {
        Ref::ptr_eq(&self.obj, &other.obj) && self.incarnation == other.incarnation
    }
}

impl<F: Family> Eq for Destination<F> {}

impl<F: Family> Destination<F> {
    /// The handle of `dest`'s incarnation whose route set is (or was) `set`.
    pub(crate) fn from_ref(dest: Ref<DestObj<F>>, set: &RouteSet<F>) -> Self {
        Destination { obj: dest, incarnation: set.incarnation }
    }

    pub(crate) fn obj(&self) -> &DestObj<F> {
        &self.obj
    }

    /// The destination's route set, if it is still the handle's incarnation (otherwise the
    /// handle's destination is deleted: it has no routes).
    pub(crate) fn current_set<'g>(&self, guard: &'g crate::sync::epoch::Guard) -> Option<&'g RouteSet<F>> {
        let set = self.obj.routes(guard);
        (set.incarnation == self.incarnation && !set.is_absent()).then_some(set)
    }

    /// The destination's prefix.
    ///
    /// See the type's example.
    pub fn prefix(&self) -> Prefix<F> {
        self.obj.prefix
    }

    /// Whether the destination has left the table (its last route was deleted).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let dest = route.destination();
    /// reg.delete_route(route)?;
    /// assert!(dest.is_deleted());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn is_deleted(&self) -> bool {
        self.current_set(&crate::reclaim::pin()).is_none()
    }

    /// Every route, best first (all views; inactive ones included).
    ///
    /// See the type's example.
    pub fn routes(&self) -> Vec<RouteInfo<F>> {
        let guard = crate::reclaim::pin();
        self.current_set(&guard).map_or_else(Vec::new, |set| set.routes.iter().map(RouteInfo::of).collect())
    }

    /// The route the selector picks among the active routes in `views`.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let best = route.destination().best_route(ViewSet::UNICAST, Selector::Best).unwrap();
    /// assert_eq!(best.route, route);
    /// assert!(route.destination().best_route(ViewSet::MULTICAST, Selector::Best).is_none());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn best_route(&self, views: ViewSet, selector: Selector) -> Option<RouteInfo<F>> {
        let guard = crate::reclaim::pin();
        self.current_set(&guard)?.best(views, selector).map(RouteInfo::of)
    }

    /// Destination information (RtmGetDestInfo): last change, the views it belongs to, and per
    /// asked view the route count and best route.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Selector, Table, ViewSet};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let info = route.destination().info(ViewSet::UNICAST | ViewSet::MULTICAST);
    /// assert_eq!(info.belongs_to, ViewSet::UNICAST);
    /// assert_eq!(info.views[0].route_count, 1);
    /// assert_eq!(info.views[1].route_count, 0);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn info(&self, views: ViewSet) -> DestInfo<F> {
        let guard = crate::reclaim::pin();
        let live = self.current_set(&guard);
        let routes = live.map_or(&[][..], |set| &set.routes[..]);
        DestInfo {
            prefix: self.prefix(),
            // A live handle's last change is that of the set it read; a deleted handle's is the
            // destination's latest one (its removal, or a later incarnation's change).
            last_changed: live.unwrap_or_else(|| self.obj.routes(&guard)).changed_at(),
            deleted: live.is_none(),
            belongs_to: live.map_or(ViewSet::NONE, RouteSet::views),
            views: views
                .iter()
                .map(|v| {
                    let view = ViewSet::from_bits(1 << v);
                    ViewInfo {
                        view: v,
                        route_count: routes.iter().filter(|e| e.data.views.intersects(view)).count(),
                        best: live.and_then(|set| set.best(view, Selector::Best)).map(RouteInfo::of),
                        hold_down: None,
                    }
                })
                .collect(),
        }
    }
}

impl<F: Family> fmt::Debug for Destination<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({})", self.prefix())
    }
}

/// A counted reference to a route. Its data can change (through its owner); the handle always
/// reads the current version.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)).default_preference(120))?;
/// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// let (route, outcome) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
/// assert!(outcome.created && outcome.best_changed);
/// assert_eq!(route.info()?.preference.preference, 120); // the default preference
/// assert_eq!(route.owner().id(), EntityId::new(2, 0));
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct Route<F: Family>(Ref<RouteObj<F>>);
handle_common!(Route, RouteObj);

impl<F: Family> Route<F> {
    /// The route's current data; `NotFound` once it has been deleted.
    ///
    /// See the type's example.
    pub fn info(&self) -> Result<RouteInfo<F>, Error> {
        let guard = crate::reclaim::pin();
        self.0.dest.routes(&guard).find(&self.0).map(RouteInfo::of).ok_or(Error::NotFound)
    }

    /// Whether the route has been deleted.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let kept = route.clone();
    /// reg.delete_route(route)?;
    /// assert!(kept.is_deleted());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn is_deleted(&self) -> bool {
        let guard = crate::reclaim::pin();
        self.0.dest.routes(&guard).find(&self.0).is_none()
    }

    /// The route's destination.
    ///
    /// See [`Destination`]'s examples.
    pub fn destination(&self) -> Destination<F> {
        // The destination's current incarnation: the route's own while the route is in it (of
        // a deleted route, the prefix's destination now, live or not).
        let guard = crate::reclaim::pin();
        Destination::from_ref(self.0.dest.clone(), self.0.dest.routes(&guard))
    }

    /// The destination's prefix.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// assert_eq!(route.prefix().to_string(), "10.0.0.0/8");
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn prefix(&self) -> Prefix<F> {
        self.0.dest.prefix
    }

    /// The owning entity.
    ///
    /// See the type's example.
    pub fn owner(&self) -> Entity<F> {
        Entity(self.0.owner.clone())
    }
}

impl<F: Family> fmt::Debug for Route<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Route({} of {:?})", self.prefix(), self.0.owner.id)
    }
}

/// A route and the data version it had when read (RtmGetRouteInfo). Dereferences to
/// [`RouteData`].
///
/// See [`Route`]'s example.
#[derive(Clone)]
pub struct RouteInfo<F: Family> {
    /// The route.
    pub route: Route<F>,
    /// Its owner's identity.
    pub owner: EntityId,
    data: Arc<RouteData<F>>,
}

impl<F: Family> RouteInfo<F> {
    pub(crate) fn of(entry: &RouteEntry<F>) -> Self {
        RouteInfo { route: Route(entry.route.clone()), owner: entry.route.owner.id, data: entry.data.clone() }
    }

    /// The destination's prefix.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// assert_eq!(route.info()?.prefix(), route.prefix());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn prefix(&self) -> Prefix<F> {
        self.route.prefix()
    }
}

impl<F: Family> Deref for RouteInfo<F> {
    type Target = RouteData<F>;
    fn deref(&self) -> &RouteData<F> {
        &self.data
    }
}

impl<F: Family> fmt::Debug for RouteInfo<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteInfo")
            .field("prefix", &self.prefix())
            .field("owner", &self.owner)
            .field("data", &*self.data)
            .finish()
    }
}

/// What [`Destination::info`] reports.
#[derive(Clone, Debug)]
pub struct DestInfo<F: Family> {
    /// The prefix.
    pub prefix: Prefix<F>,
    /// When its route set last changed.
    pub last_changed: Instant,
    /// Whether it has left the table.
    pub deleted: bool,
    /// The union of its routes' views.
    pub belongs_to: ViewSet,
    /// One entry per asked view, ascending.
    pub views: Vec<ViewInfo<F>>,
}

/// Per-view destination information.
#[derive(Clone, Debug)]
pub struct ViewInfo<F: Family> {
    /// The view id.
    pub view: u8,
    /// Routes in this view (active or not).
    pub route_count: usize,
    /// The best route in this view (its owner and flags are in it).
    pub best: Option<RouteInfo<F>>,
    /// The hold-down route (hold-down is not implemented yet: always `None`).
    pub hold_down: Option<RouteInfo<F>>,
}
