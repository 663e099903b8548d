//! The table: its configuration, its shared state, and the read side (queries and the
//! forwarding fast path). Writes go through a [`Registration`](crate::Registration), in
//! `registration.rs`.

pub(crate) mod objects;
pub(crate) mod presence;
mod query;
mod registration;
mod write;

pub use query::{DestMatch, RouteMatch};
pub use registration::{AddMode, ChangeOutcome, EntityConfig, Profile, Registration};

use crossbeam_utils::CachePadded;

use crate::cell::EpochCell;
use crate::counted::Ref;
use crate::fib::{Fib, ForwardingLayout};
use crate::handles::Entity;
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, epoch};
use crate::tree::Tree;
use crate::{Error, Family, ViewSet};
use objects::DestObj;
use presence::Presence;

/// Per-table limits (the profile entities receive at registration) and the views that get a
/// compiled forwarding table.
///
/// ```
/// use rtmgr::{Ipv4, Table, TableConfig, ViewSet};
/// let config = TableConfig { max_next_hops: 4, max_batch: 64, ..TableConfig::default() };
/// let table = Table::<Ipv4>::with_config(config)?;
/// assert_eq!(table.config().max_next_hops, 4);
/// assert_eq!(table.config().forwarding, ViewSet::UNICAST);
/// assert!(Table::<Ipv4>::with_config(TableConfig { max_next_hops: 0, ..config }).is_err());
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Most equal-cost next hops one route may list (at least 1).
    pub max_next_hops: usize,
    /// Largest batch one enumeration or change read returns (at least 1).
    pub max_batch: usize,
    /// The views that keep a compiled forwarding table (spec §5), which [`Table::lookup`] and
    /// [`Table::lookup_data`] answer from in a few cache lines instead of walking the routing
    /// tree. Each costs memory (see [`ForwardingLayout`]) and some work per best-route
    /// change. Default: unicast only (none in the loom build, whose models of the tree stay
    /// small; the forwarding table has its own).
    pub forwarding: ViewSet,
    /// How IPv4 tables lay out their forwarding tables: [`ForwardingLayout::Direct`] (the
    /// default: DIR-24-8, one array read per lookup, 64 MiB of address space per view) or
    /// [`ForwardingLayout::Compact`] (a few bytes per prefix, a few times slower). IPv6 tables
    /// always use the compact layout.
    pub forwarding_layout: ForwardingLayout,
}

impl Default for TableConfig {
    fn default() -> Self {
        let forwarding = if cfg!(loom) { ViewSet::NONE } else { ViewSet::UNICAST };
        TableConfig {
            max_next_hops: 16,
            max_batch: 256,
            forwarding,
            forwarding_layout: ForwardingLayout::Direct,
        }
    }
}

/// The state shared by a table, its registrations and its queries.
pub(crate) struct TableInner<F: Family> {
    /// Unique per table: handles carry it so a handle of another table is refused.
    pub(crate) id: u64,
    pub(crate) config: TableConfig,
    pub(crate) tree: Tree<DestObj<F>>,
    /// The registered entities, copy-on-write.
    pub(crate) entities: EpochCell<Vec<Entity<F>>>,
    /// Destinations with routes (exact when no write is in flight).
    pub(crate) dest_count: AtomicUsize,
    /// Emptied destinations still in the tree, waiting for a sweep (see `presence.rs`).
    pub(crate) empty_dests: AtomicUsize,
    /// Held by the one running sweep.
    pub(crate) sweep_lock: Mutex<()>,
    /// The presence clock and open snapshots (see `presence.rs`).
    pub(crate) presence: Arc<Presence>,
    /// Routes in the table (exact when no write is in flight).
    pub(crate) route_count: AtomicUsize,
    /// One compiled forwarding table per view in `config.forwarding`. Every lookup reads this
    /// field; padded to cache lines of its own, so that the counters and the tree root beside
    /// it, which every write stores to, do not evict it from the readers' caches (on 16 cores
    /// readers lost up to 44 % beside one writer before, see docs/BENCHMARKS.md, "Run D").
    pub(crate) forwarding: CachePadded<Vec<Fib<F>>>,
}

/// A routing table of one address family: destinations in a concurrent radix tree, the
/// entities that own routes to them, and the best route per view.
///
/// `Table` is a cheap handle: clones share one table. Reads (queries, lookups) take no lock
/// and never wait for writers; writes happen through a [`Registration`](crate::Registration).
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Preference, RouteData, Table, ViewSet};
///
/// let table = Table::<Ipv4>::new();
/// let ospf = table.register(EntityConfig::new(EntityId::new(13, 0)).default_preference(110))?;
/// let (nh, _) = ospf.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// ospf.add_route("10.0.0.0/8".parse()?, RouteData::new(vec![nh]).preference(Preference::new(0, 20)))?;
///
/// // The forwarding fast path: no lock, no reference count, no allocation.
/// let guard = table.pin();
/// let hops = table.lookup("10.1.2.3".parse().unwrap(), ViewSet::UNICAST, &guard).unwrap();
/// assert_eq!(hops[0].address().to_string(), "192.0.2.1");
/// assert!(table.lookup("11.0.0.1".parse().unwrap(), ViewSet::UNICAST, &guard).is_none());
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct Table<F: Family> {
    pub(crate) inner: Arc<TableInner<F>>,
}

impl<F: Family> Clone for Table<F> {
    fn clone(&self) -> Self {
        Table { inner: self.inner.clone() }
    }
}

impl<F: Family> Default for Table<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F: Family> TableInner<F> {
    /// The compiled forwarding table of exactly `view`, if the table keeps one.
    #[inline]
    pub(crate) fn forwarding(&self, view: ViewSet) -> Option<&Fib<F>> {
        self.forwarding.iter().find(|fib| fib.view() == view)
    }
}

impl<F: Family> Table<F> {
    /// An empty table with the default [`TableConfig`].
    ///
    /// ```
    /// let table = rtmgr::Table::<rtmgr::Ipv6>::new();
    /// assert_eq!(table.destination_count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::build(TableConfig::default())
    }

    /// An empty table with these limits; `InvalidParameter` if one is 0.
    ///
    /// See [`TableConfig`]'s example.
    pub fn with_config(config: TableConfig) -> Result<Self, Error> {
        if config.max_next_hops == 0 {
            return Err(Error::invalid("max_next_hops must be at least 1"));
        }
        if config.max_batch == 0 {
            return Err(Error::invalid("max_batch must be at least 1"));
        }
        Ok(Self::build(config))
    }

    fn build(config: TableConfig) -> Self {
        Table {
            inner: Arc::new(TableInner {
                id: objects::next_serial(),
                config,
                tree: Tree::new(),
                entities: EpochCell::new(Ref::new(Vec::new())),
                dest_count: AtomicUsize::new(0),
                empty_dests: AtomicUsize::new(0),
                sweep_lock: Mutex::new(()),
                presence: Arc::new(Presence::new()),
                route_count: AtomicUsize::new(0),
                forwarding: CachePadded::new(
                    config
                        .forwarding
                        .iter()
                        .map(|v| Fib::new(ViewSet::from_bits(1 << v), config.forwarding_layout))
                        .collect(),
                ),
            }),
        }
    }

    /// The table's limits.
    ///
    /// See [`TableConfig`]'s example.
    pub fn config(&self) -> TableConfig {
        self.inner.config
    }

    /// Pins the current thread's epoch: the guard that the forwarding fast path
    /// ([`Table::lookup`]) borrows from. Hold it briefly: while any guard is pinned, memory that
    /// writers retire cannot be reclaimed.
    ///
    /// See [`Table`]'s example.
    pub fn pin(&self) -> epoch::Guard {
        crate::reclaim::pin()
    }

    /// The number of destinations in the table (exact when no write is in flight).
    ///
    /// See [`Table::new`]'s example.
    pub fn destination_count(&self) -> usize {
        self.inner.destination_count()
    }

    /// The number of routes in the table (exact when no write is in flight).
    ///
    /// ```
    /// assert_eq!(rtmgr::Table::<rtmgr::Ipv4>::new().route_count(), 0);
    /// ```
    pub fn route_count(&self) -> usize {
        self.inner.route_count.load(Ordering::Relaxed)
    }

    /// The registered entities (RtmGetRegisteredEntities).
    ///
    /// ```
    /// use rtmgr::{EntityConfig, EntityId, Ipv4, Table};
    /// let table = Table::<Ipv4>::new();
    /// let _rip = table.register(EntityConfig::new(EntityId::new(8, 0)))?;
    /// let ids: Vec<_> = table.entities().iter().map(|e| e.id()).collect();
    /// assert_eq!(ids, vec![EntityId::new(8, 0)]);
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn entities(&self) -> Vec<Entity<F>> {
        self.inner.entities.load(&crate::reclaim::pin()).clone()
    }

    /// Refuses a handle of another table.
    pub(crate) fn check_table(&self, table_id: u64) -> Result<(), Error> {
        if table_id == self.inner.id {
            Ok(())
        } else {
            Err(Error::InvalidHandle("the handle belongs to another table"))
        }
    }
}

impl<F: Family> std::fmt::Debug for Table<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("family", &F::NAME)
            .field("destinations", &self.destination_count())
            .field("routes", &self.route_count())
            .finish()
    }
}
