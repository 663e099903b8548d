//! Registrations: how an entity joins a table and changes it (next hops and routes).

use dashmap::mapref::entry::Entry;
use smallvec::smallvec;

use crate::cell::EpochCell;
use crate::counted::Ref;
use crate::handles::{Entity, NextHop, Route};
use crate::sync::{Arc, AtomicBool, Ordering, fence};
use crate::table::objects::{
    self, DestObj, EntityObj, NextHopData, NextHopObj, RouteData, RouteEntry, RouteList, RouteObj, RouteSet,
    SharedRouteData, Timestamp,
};
use crate::table::write::Sweep;
use crate::table::{Table, TableInner};
use crate::{EntityId, Error, Family, Prefix, Selector, ViewSet};

/// Drops the route set of a destination made by `Registration::new_destination` that never
/// made it into the tree (another writer linked the prefix first): its route holds it and it
/// holds its route, a cycle only this breaks.
fn discard_unlinked<F: Family>(dest: &DestObj<F>) {
    drop(dest.routes.swap(Ref::new(RouteSet::removed(0))));
}

/// What an entity declares when it registers (RtmRegisterEntity).
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, ViewSet};
/// let config = EntityConfig::new(EntityId::new(14, 0))
///     .default_preference(170)
///     .views(ViewSet::UNICAST | ViewSet::MULTICAST);
/// assert_eq!(config.default_preference, 170);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EntityConfig {
    /// The (protocol, instance) identity, unique within the table.
    pub id: EntityId,
    /// The preference of routes added with preference 0.
    pub default_preference: u32,
    /// The views the entity uses.
    pub views: ViewSet,
}

impl EntityConfig {
    /// A configuration with default preference 0 and the unicast view.
    ///
    /// See the type's example.
    pub fn new(id: EntityId) -> Self {
        EntityConfig { id, default_preference: 0, views: ViewSet::UNICAST }
    }

    /// Sets the default preference.
    ///
    /// See the type's example.
    pub fn default_preference(mut self, preference: u32) -> Self {
        self.default_preference = preference;
        self
    }

    /// Sets the views.
    ///
    /// See the type's example.
    pub fn views(mut self, views: ViewSet) -> Self {
        self.views = views;
        self
    }
}

/// The table's limits as a registration reports them (RTM_REGN_PROFILE).
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
/// let table = Table::<Ipv4>::new();
/// let reg = table.register(EntityConfig::new(EntityId::new(1, 0)))?;
/// assert_eq!(reg.profile().max_next_hops, table.config().max_next_hops);
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Most next hops per route.
    pub max_next_hops: usize,
    /// Largest batch an enumeration or change read returns.
    pub max_batch: usize,
}

/// How [`Registration::add_route_with`] finds the route to update.
///
/// ```
/// assert_eq!(rtmgr::AddMode::default(), rtmgr::AddMode::Neighbour);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AddMode {
    /// Update the caller's route with the same neighbour, or create one (the default).
    #[default]
    Neighbour,
    /// Update the caller's first route on the destination whatever its neighbour, or create one
    /// (protocols with one route per destination).
    First,
    /// Always create a new route.
    New,
}

/// What a route change did (RTM's change flags).
///
/// ```
/// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
/// # let table = Table::<Ipv4>::new();
/// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// let (_, first) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]))?;
/// assert!(first.created && first.best_changed);
/// let (_, again) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
/// assert!(!again.created); // same owner and neighbour: updated in place
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeOutcome {
    /// A new route was created (else an existing one was updated).
    pub created: bool,
    /// The change made, kept (with new data) or removed a best route in some view.
    pub best_changed: bool,
}

/// An entity's registration: the unique capability through which it adds, changes and deletes
/// its next hops and routes. Dropping it deregisters the entity (see [`Registration::deregister`]).
///
/// See [`Table`]'s example.
pub struct Registration<F: Family> {
    table: Table<F>,
    entity: Ref<EntityObj<F>>,
}

impl<F: Family> Table<F> {
    /// Registers an entity (RtmRegisterEntity); `AlreadyExists` if its identity is taken.
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Error, Ipv4, Table};
    /// let table = Table::<Ipv4>::new();
    /// let a = table.register(EntityConfig::new(EntityId::new(14, 0)))?;
    /// assert_eq!(table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap_err(), Error::AlreadyExists);
    /// drop(a);
    /// assert!(table.register(EntityConfig::new(EntityId::new(14, 0))).is_ok());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn register(&self, config: EntityConfig) -> Result<Registration<F>, Error> {
        let entity = Ref::new(EntityObj {
            serial: objects::next_serial(),
            id: config.id,
            default_preference: config.default_preference,
            views: config.views,
            registered: AtomicBool::new(true),
            next_hops: Default::default(),
        });
        let handle = Entity::from_ref(entity.clone());
        update_entities(&self.inner.entities, |list| {
            if list.iter().any(|e| e.id() == config.id) {
                return Err(Error::AlreadyExists);
            }
            let mut list = list.clone();
            list.push(handle.clone());
            Ok(list)
        })?;
        Ok(Registration { table: self.clone(), entity })
    }
}

/// Copy-on-write update of the entity list.
fn update_entities<F: Family>(
    cell: &EpochCell<Vec<Entity<F>>>,
    mut change: impl FnMut(&Vec<Entity<F>>) -> Result<Vec<Entity<F>>, Error>,
) -> Result<(), Error> {
    loop {
        let guard = crate::reclaim::pin();
        let (raw, current) = cell.load_both(&guard);
        let new = change(current)?;
        if cell.compare_swap(raw, Ref::new(new), &guard).is_ok() {
            return Ok(());
        }
    }
}

impl<F: Family> Registration<F> {
    /// The entity's identity.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
    /// # let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(14, 3)))?;
    /// assert_eq!(reg.id().instance, 3);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn id(&self) -> EntityId {
        self.entity.id
    }

    /// A counted handle to the entity.
    ///
    /// See [`Entity`]'s example.
    pub fn entity(&self) -> Entity<F> {
        Entity::from_ref(self.entity.clone())
    }

    /// The selector "my routes" for queries.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, Selector, Table};
    /// # let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(14, 3)))?;
    /// assert_eq!(reg.mine(), Selector::Entity(EntityId::new(14, 3)));
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn mine(&self) -> Selector {
        Selector::Entity(self.entity.id)
    }

    /// The table's limits.
    ///
    /// See [`Profile`]'s example.
    pub fn profile(&self) -> Profile {
        let c = self.table.inner.config;
        Profile { max_next_hops: c.max_next_hops, max_batch: c.max_batch }
    }

    /// The table this registration belongs to.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
    /// # let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(1, 0)))?;
    /// assert_eq!(reg.table().entities().len(), 1);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn table(&self) -> &Table<F> {
        &self.table
    }

    fn inner(&self) -> &TableInner<F> {
        &self.table.inner
    }

    fn check_registered(&self) -> Result<(), Error> {
        if self.entity.registered.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(Error::InvalidHandle("the entity is deregistered"))
        }
    }

    /// Refuses a next hop of another table (`InvalidHandle`), of another owner
    /// (`AccessDenied`) or already deleted (`InvalidHandle`).
    fn check_own_next_hop(&self, nh: &NextHop<F>) -> Result<(), Error> {
        self.table.check_table(nh.obj().table_id)?;
        if nh.obj().owner_serial != self.entity.serial {
            return Err(Error::AccessDenied("the next hop belongs to another entity"));
        }
        if nh.is_deleted() {
            return Err(Error::InvalidHandle("the next hop was deleted"));
        }
        Ok(())
    }

    /// Refuses a route of another table or of another owner.
    fn check_own_route(&self, route: &Route<F>) -> Result<(), Error> {
        self.table.check_table(route.obj().dest.table_id)?;
        if route.obj().owner.serial != self.entity.serial {
            return Err(Error::AccessDenied("the route belongs to another entity"));
        }
        Ok(())
    }

    /// Adds a next hop, or updates the flags and private data of the one with the same
    /// (address, interface) (RtmAddNextHop). Returns its handle and whether it was new.
    ///
    /// See [`NextHop`]'s example.
    pub fn add_next_hop(
        &self,
        address: F::Addr,
        interface: u32,
        data: NextHopData,
    ) -> Result<(NextHop<F>, bool), Error> {
        self.check_registered()?;
        let result = match self.entity.next_hops.entry((F::key(address), interface)) {
            Entry::Occupied(existing) => {
                drop(existing.get().obj().data.swap(Ref::new(data)));
                (existing.get().clone(), false)
            }
            Entry::Vacant(slot) => {
                let nh = NextHop::from_ref(Ref::new(NextHopObj {
                    table_id: self.inner().id,
                    owner: self.entity.id,
                    owner_serial: self.entity.serial,
                    address,
                    interface,
                    deleted: AtomicBool::new(false),
                    data: EpochCell::new(Ref::new(data)),
                }));
                slot.insert(nh.clone());
                (nh, true)
            }
        };
        // A deregistration that started meanwhile may have swept the list before our insert.
        if !self.still_registered_after_publish() {
            self.delete_next_hop(&result.0).ok();
            return Err(Error::InvalidHandle("the entity is deregistered"));
        }
        Ok(result)
    }

    /// Finds one of the caller's next hops by (address, interface) (RtmFindNextHop).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let addr = "192.0.2.1".parse().unwrap();
    /// let (nh, _) = reg.add_next_hop(addr, 7, NextHopData::default())?;
    /// assert_eq!(reg.find_next_hop(addr, 7)?, nh);
    /// assert_eq!(reg.find_next_hop(addr, 8).unwrap_err(), Error::NotFound);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn find_next_hop(&self, address: F::Addr, interface: u32) -> Result<NextHop<F>, Error> {
        self.check_registered()?;
        self.entity
            .next_hops
            .get(&(F::key(address), interface))
            .map(|e| e.value().clone())
            .ok_or(Error::NotFound)
    }

    /// Changes a next hop's flags and private data in place (its identity never changes).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 7, NextHopData::default())?;
    /// reg.update_next_hop(&nh, |d| d.private = 5)?;
    /// assert_eq!(nh.data().private, 5);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn update_next_hop(
        &self,
        nh: &NextHop<F>,
        mut change: impl FnMut(&mut NextHopData),
    ) -> Result<(), Error> {
        self.check_registered()?;
        self.check_own_next_hop(nh)?;
        let cell = &nh.obj().data;
        loop {
            let guard = crate::reclaim::pin();
            let (raw, current) = cell.load_both(&guard);
            let mut data = *current;
            change(&mut data);
            if cell.compare_swap(raw, Ref::new(data), &guard).is_ok() {
                return Ok(());
            }
        }
    }

    /// Deletes one of the caller's next hops (RtmDeleteNextHop). Routes that still list it keep
    /// a valid handle that reads as deleted. `NotFound` if it was already deleted.
    ///
    /// See [`NextHop::is_deleted`]'s example.
    pub fn delete_next_hop(&self, nh: &NextHop<F>) -> Result<(), Error> {
        self.table.check_table(nh.obj().table_id)?;
        if nh.obj().owner_serial != self.entity.serial {
            return Err(Error::AccessDenied("the next hop belongs to another entity"));
        }
        let key = (F::key(nh.address()), nh.interface());
        let removed = self.entity.next_hops.remove_if(&key, |_, v| v == nh);
        if removed.is_none() || nh.obj().deleted.swap(true, Ordering::SeqCst) {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// Adds a route, or updates the caller's route with the same neighbour on that destination
    /// (RtmAddRouteToDest with the default options). See [`Registration::add_route_with`].
    ///
    /// See [`Table`]'s example.
    pub fn add_route(
        &self,
        prefix: Prefix<F>,
        data: impl Into<SharedRouteData<F>>,
    ) -> Result<(Route<F>, ChangeOutcome), Error> {
        self.add_route_with(prefix, data, AddMode::Neighbour)
    }

    /// Adds or updates a route, choosing the route to update by `mode`.
    ///
    /// The route's next hops (1 to `max_next_hops`) and its neighbour must be the caller's own,
    /// live next hops of this table. A preference of 0 takes the entity's default. `data` is a
    /// [`RouteData`], or a [`SharedRouteData`] that other routes use too.
    ///
    /// ```
    /// use rtmgr::{AddMode, EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (a, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (b, _) = reg.add_next_hop("192.0.2.2".parse().unwrap(), 1, NextHopData::default())?;
    /// let p = "10.0.0.0/8".parse()?;
    /// reg.add_route_with(p, RouteData::new(vec![a.clone()]).neighbour(Some(a.clone())), AddMode::Neighbour)?;
    /// // Another neighbour: a second route.
    /// reg.add_route_with(p, RouteData::new(vec![b.clone()]).neighbour(Some(b)), AddMode::Neighbour)?;
    /// // `First` updates the first of them whatever the neighbour.
    /// let (_, o) = reg.add_route_with(p, RouteData::new(vec![a.clone()]), AddMode::First)?;
    /// assert!(!o.created);
    /// // `New` always creates.
    /// let (_, o) = reg.add_route_with(p, RouteData::new(vec![a]), AddMode::New)?;
    /// assert!(o.created);
    /// assert_eq!(table.route_count(), 3);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn add_route_with(
        &self,
        prefix: Prefix<F>,
        data: impl Into<SharedRouteData<F>>,
        mode: AddMode,
    ) -> Result<(Route<F>, ChangeOutcome), Error> {
        self.check_registered()?;
        let data = self.validate_shared(data.into())?;
        let inner = self.inner();
        let (route, outcome) = loop {
            let guard = crate::reclaim::pin();
            let current = inner.tree.get(prefix.key(), prefix.len(), &guard);
            if let Some(dest) = current {
                let mut made: Option<(Ref<RouteObj<F>>, bool)> = None;
                let changed = inner.change_routes(dest, |set| {
                    let mut routes = set.routes.clone();
                    let existing = match mode {
                        AddMode::New => None,
                        AddMode::First => routes.iter().position(|e| self.owns(e)),
                        AddMode::Neighbour => {
                            routes.iter().position(|e| self.owns(e) && e.data.neighbour == data.neighbour)
                        }
                    };
                    match existing {
                        Some(i) => {
                            routes[i].data = data.clone();
                            made = Some((routes[i].route.clone(), false));
                        }
                        None => {
                            let route = self.new_route(dest.clone());
                            routes.push(RouteEntry { route: route.clone(), data: data.clone() });
                            made = Some((route, true));
                        }
                    }
                    Ok(routes)
                })?;
                if let (Some(change), Some((route, created))) = (changed, made) {
                    if created {
                        inner.route_count.fetch_add(1, Ordering::Relaxed);
                    }
                    break (route, ChangeOutcome { created, best_changed: change.best_changed });
                }
                // The destination is leaving the tree: replace it with a fresh one below.
            }
            let expected = current.map_or(std::ptr::null(), Ref::as_ptr);
            let (dest, route) = self.new_destination(prefix, data.clone(), Timestamp::now());
            match inner.link(dest, expected, &guard) {
                Ok(()) => {
                    inner.route_count.fetch_add(1, Ordering::Relaxed);
                    break (
                        route,
                        ChangeOutcome {
                            created: true,
                            best_changed: !data.views.is_empty() && data.is_active(),
                        },
                    );
                }
                Err(dest) => {
                    // Lost the race for the prefix: break the dest↔route cycle and retry.
                    discard_unlinked(&dest);
                }
            }
        };
        let route = Route::from_ref(route);
        if !self.still_registered_after_publish() {
            // Deregistration started meanwhile and its sweep may have missed this route.
            let _ = self.delete_route(route);
            return Err(Error::InvalidHandle("the entity is deregistered"));
        }
        Ok((route, outcome))
    }

    /// Adds many routes at once, each as [`Registration::add_route_with`] with `mode` would, but
    /// the routes to prefixes without a destination go into the routing tree together, in one
    /// new version that copies each tree node once for the whole batch rather than once per
    /// route: the way to load a table (docs/BENCHMARKS.md, "Load").
    ///
    /// Every route's data is checked first: one invalid route fails the batch, and nothing is
    /// added. The outcomes come back in the order the routes were given. Readers and snapshots
    /// see the batch's new destinations appear together; routes to prefixes that have a
    /// destination already (or that the batch names twice) are added one by one after them, and
    /// one of those can still fail on its own if the table changes meanwhile (its next hop
    /// deleted, the entity deregistering).
    ///
    /// ```
    /// use rtmgr::{AddMode, EntityConfig, EntityId, Ipv4, NextHopData, Preference, RouteData, SharedRouteData, Table};
    /// let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(14, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let data = SharedRouteData::new(RouteData::new(vec![nh]).preference(Preference::new(20, 0)));
    /// let routes = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"].map(|p| (p.parse().unwrap(), data.clone()));
    /// let added = reg.add_routes(routes, AddMode::New)?;
    /// assert!(added.iter().all(|r| r.as_ref().is_ok_and(|(_, outcome)| outcome.created)));
    /// assert_eq!(table.destination_count(), 3);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn add_routes<D: Into<SharedRouteData<F>>>(
        &self,
        routes: impl IntoIterator<Item = (Prefix<F>, D)>,
        mode: AddMode,
    ) -> Result<Vec<Result<(Route<F>, ChangeOutcome), Error>>, Error> {
        self.check_registered()?;
        let items = routes
            .into_iter()
            .map(|(prefix, data)| Ok((prefix, self.validate_shared(data.into())?)))
            .collect::<Result<Vec<(Prefix<F>, Arc<RouteData<F>>)>, Error>>()?;
        let inner = self.inner();
        let mut results: Vec<Option<Result<(Route<F>, ChangeOutcome), Error>>> =
            (0..items.len()).map(|_| None).collect();
        // The routes that make new destinations (by prefix, the first of each), and the rest.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| (items[i].0.key(), items[i].0.len()));
        let mut fresh: Vec<(usize, Ref<RouteObj<F>>)> = Vec::new();
        let mut dests = Vec::new();
        let mut one_by_one = Vec::new();
        {
            let guard = crate::reclaim::pin();
            let mut previous = None;
            // One clock reading for the batch's new destinations: they are added together.
            let now = Timestamp::now();
            for i in order {
                let (prefix, data) = &items[i];
                let current = inner.tree.get(prefix.key(), prefix.len(), &guard);
                // A destination leaving the tree (removed marker) is replaced, as by `link`.
                let taken = current.is_some_and(|dest| !dest.routes(&guard).is_removed());
                if previous == Some(*prefix) || taken {
                    one_by_one.push(i);
                } else {
                    let (dest, route) = self.new_destination(*prefix, data.clone(), now);
                    dests.push((dest, current.map_or(std::ptr::null(), Ref::as_ptr)));
                    fresh.push((i, route));
                }
                previous = Some(*prefix);
            }
            let refused = inner.link_batch(&dests, &guard);
            let mut skip = refused.iter().peekable();
            for (j, (i, route)) in fresh.into_iter().enumerate() {
                if skip.peek() == Some(&&j) {
                    // Another writer linked this prefix first: break the dest↔route cycle and add
                    // the route to its destination below.
                    skip.next();
                    discard_unlinked(&dests[j].0);
                    one_by_one.push(i);
                } else {
                    let data = &items[i].1;
                    let outcome = ChangeOutcome {
                        created: true,
                        best_changed: !data.views.is_empty() && data.is_active(),
                    };
                    results[i] = Some(Ok((Route::from_ref(route), outcome)));
                    inner.route_count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if !self.still_registered_after_publish() {
            // Deregistration started meanwhile and its sweep may have missed these routes.
            for result in results.iter_mut().filter(|r| r.is_some()) {
                if let Some(Ok((route, _))) = result.take() {
                    let _ = self.delete_route(route);
                }
                *result = Some(Err(Error::InvalidHandle("the entity is deregistered")));
            }
        }
        one_by_one.sort_unstable();
        for i in one_by_one {
            let (prefix, data) = &items[i];
            results[i] = Some(self.add_route_with(*prefix, SharedRouteData(data.clone()), mode));
        }
        Ok(results.into_iter().map(|r| r.expect("every route has an outcome")).collect())
    }

    /// Whether the caller owns a route entry.
    fn owns(&self, entry: &RouteEntry<F>) -> bool {
        entry.route.owner.serial == self.entity.serial
    }

    fn new_route(&self, dest: Ref<DestObj<F>>) -> Ref<RouteObj<F>> {
        Ref::new(RouteObj { serial: objects::next_serial(), owner: self.entity.clone(), dest })
    }

    /// A destination not yet in the tree, holding one new route.
    fn new_destination(
        &self,
        prefix: Prefix<F>,
        data: Arc<RouteData<F>>,
        at: Timestamp,
    ) -> (Ref<DestObj<F>>, Ref<RouteObj<F>>) {
        let dest = Ref::new(DestObj {
            table_id: self.inner().id,
            prefix,
            routes: EpochCell::new(Ref::new(RouteSet::placeholder())),
        });
        let route = self.new_route(dest.clone());
        let placeholder = dest.routes.swap(Ref::new(RouteSet::new_at(
            smallvec![RouteEntry { route: route.clone(), data }],
            RouteSet::<F>::FIRST_INCARNATION,
            at,
        )));
        // SAFETY: the placeholder was only ever in the cell of a destination nobody else holds
        // yet (not in the tree, its route handle not returned), so no thread can read it: it is
        // freed at once instead of through the epoch collector.
        unsafe { Ref::release_unreachable(placeholder) };
        (dest, route)
    }

    /// [`Registration::validate`] for data that other routes may share: used as it is unless
    /// its preference is 0 (the entity's default), which is filled in place when the caller's
    /// `Arc` is the data's only holder (plain `RouteData`) and on a copy otherwise.
    fn validate_shared(&self, data: SharedRouteData<F>) -> Result<Arc<RouteData<F>>, Error> {
        let mut data = data.0;
        self.check_route_data(&data)?;
        if data.preference.preference == 0 {
            match Arc::get_mut(&mut data) {
                Some(only) => self.fill_default_preference(only),
                None => {
                    let mut copy = (*data).clone();
                    self.fill_default_preference(&mut copy);
                    data = Arc::new(copy);
                }
            }
        }
        Ok(data)
    }

    /// Checks route data and fills in the default preference.
    fn validate(&self, mut data: RouteData<F>) -> Result<RouteData<F>, Error> {
        self.check_route_data(&data)?;
        self.fill_default_preference(&mut data);
        Ok(data)
    }

    /// Gives data of preference 0 the owner's default preference.
    fn fill_default_preference(&self, data: &mut RouteData<F>) {
        if data.preference.preference == 0 {
            data.preference.preference = self.entity.default_preference;
        }
    }

    /// Checks the next hops of route data: 1 to `max_next_hops`, all the caller's own and live,
    /// and the neighbour's.
    fn check_route_data(&self, data: &RouteData<F>) -> Result<(), Error> {
        let max = self.inner().config.max_next_hops;
        if data.next_hops.is_empty() || data.next_hops.len() > max {
            return Err(Error::invalid(format!(
                "a route needs 1 to {max} next hops, {} given",
                data.next_hops.len()
            )));
        }
        for nh in &data.next_hops {
            self.check_own_next_hop(nh)?;
        }
        if let Some(nb) = &data.neighbour {
            self.check_own_next_hop(nb)?;
        }
        Ok(())
    }

    /// Changes one of the caller's routes in place (RtmLockRoute + RtmUpdateAndUnlockRoute):
    /// `change` receives a copy of the route's data (it may be called again if another writer
    /// changes the destination meanwhile), and the new version is published atomically.
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// # let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// # let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]))?;
    /// let outcome = reg.update_route(&route, |d| d.preference.metric = 7)?;
    /// assert!(outcome.best_changed); // the best route has new data
    /// assert_eq!(route.info()?.preference.metric, 7);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn update_route(
        &self,
        route: &Route<F>,
        mut change: impl FnMut(&mut RouteData<F>),
    ) -> Result<ChangeOutcome, Error> {
        self.check_registered()?;
        self.check_own_route(route)?;
        let obj = route.obj();
        let changed = self.inner().change_routes(&obj.dest, |set| {
            let mut routes = set.routes.clone();
            let entry = routes.iter_mut().find(|e| std::ptr::eq(&*e.route, obj)).ok_or(Error::NotFound)?;
            let mut data = (*entry.data).clone();
            change(&mut data);
            entry.data = Arc::new(self.validate(data)?);
            Ok(routes)
        })?;
        let change = changed.ok_or(Error::NotFound)?;
        Ok(ChangeOutcome { created: false, best_changed: change.best_changed })
    }

    /// Deletes one of the caller's routes (RtmDeleteRouteToDest), consuming the handle. Returns
    /// whether a best route changed; `NotFound` if the route was already deleted.
    ///
    /// See [`Route::is_deleted`]'s example.
    pub fn delete_route(&self, route: Route<F>) -> Result<bool, Error> {
        self.check_own_route(&route)?;
        let obj = route.obj();
        let changed = self.inner().change_routes(&obj.dest, |set| {
            if set.find(obj).is_none() {
                return Err(Error::NotFound);
            }
            Ok(set.routes.iter().filter(|e| !std::ptr::eq(&*e.route, obj)).cloned().collect())
        })?;
        let change = changed.ok_or(Error::NotFound)?;
        self.inner().route_count.fetch_sub(1, Ordering::Relaxed);
        Ok(change.best_changed)
    }

    /// After publishing a change: whether the entity is still registered. The SeqCst fence
    /// pairs with the one in [`Registration::deregister`]: either this load sees the
    /// deregistration, or the deregistration's sweep sees what we published.
    fn still_registered_after_publish(&self) -> bool {
        fence(Ordering::SeqCst);
        self.entity.registered.load(Ordering::SeqCst)
    }

    /// Deregisters the entity (RtmDeregisterEntity): withdraws all its routes, deletes its
    /// next hops, and leaves the table's entity list. Handles others hold to its objects stay
    /// valid and read as deleted. Dropping the registration does the same.
    ///
    /// Cost: one walk over the table's destinations (the routes are found there, not in a
    /// per-entity index, which would cost memory on every route).
    ///
    /// ```
    /// # use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, RouteData, Table};
    /// # let table = Table::<Ipv4>::new();
    /// let reg = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
    /// let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
    /// let (route, _) = reg.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh.clone()]))?;
    /// reg.deregister();
    /// assert!(route.is_deleted() && nh.is_deleted());
    /// assert_eq!(table.route_count(), 0);
    /// assert!(table.entities().is_empty());
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn deregister(self) {
        // Drop does the work.
    }

    fn withdraw_everything(&self) {
        if !self.entity.registered.swap(false, Ordering::SeqCst) {
            return;
        }
        fence(Ordering::SeqCst); // pairs with `still_registered_after_publish`
        let me = self.entity.serial;
        let _ = update_entities(&self.inner().entities, |list| {
            Ok(list.iter().filter(|e| e.obj().serial != me).cloned().collect())
        });
        let inner = self.inner();
        // Empty the entity's routes from every destination first, then take the emptied
        // destinations out of the tree in one sweep: one root CAS instead of one path copy each.
        let snapshot = inner.tree.snapshot(&crate::reclaim::pin());
        let mut emptied = false;
        for dest in crate::tree::Iter::all(&snapshot) {
            if !dest.routes(&crate::reclaim::pin()).routes.iter().any(|e| self.owns(e)) {
                continue;
            }
            let mut removed = 0;
            let changed = inner.change_routes_then(dest, Sweep::Later, |set| {
                let keep: RouteList<F> = set.routes.iter().filter(|e| !self.owns(e)).cloned().collect();
                removed = set.routes.len() - keep.len();
                Ok(keep)
            });
            if let Ok(Some(change)) = changed {
                inner.route_count.fetch_sub(removed, Ordering::Relaxed);
                emptied |= change.emptied;
            }
        }
        drop(snapshot);
        if emptied {
            inner.sweep();
        }
        let keys: Vec<_> = self.entity.next_hops.iter().map(|e| *e.key()).collect();
        for key in keys {
            if let Some((_, nh)) = self.entity.next_hops.remove(&key) {
                nh.obj().deleted.store(true, Ordering::SeqCst);
            }
        }
    }
}

impl<F: Family> Drop for Registration<F> {
    fn drop(&mut self) {
        self.withdraw_everything();
    }
}

impl<F: Family> std::fmt::Debug for Registration<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration").field("id", &self.entity.id).finish()
    }
}
