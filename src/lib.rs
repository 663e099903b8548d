//! # rtmgr — a lock-free routing table manager
//!
//! rtmgr is the Routing Table Manager of RTMv2 as a concurrent Rust library, for forwarding
//! planes and routing daemons: protocol **entities** register with a [`Table`] and own
//! **routes** to **destinations** (IPv4 or IPv6 prefixes) through their own **next hops**; the
//! table keeps the **best route per view** (lowest preference, then metric, then owner, then age)
//! and answers exact, longest-prefix, less- and more-specific queries.
//!
//! ```
//! use rtmgr::{EntityConfig, EntityId, Ipv4, NextHopData, Preference, RouteData, Selector, Table, ViewSet};
//!
//! let table = Table::<Ipv4>::new();
//! let bgp = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170))?;
//! let ospf = table.register(EntityConfig::new(EntityId::new(13, 0)).default_preference(110))?;
//! let (via_bgp, _) = bgp.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
//! let (via_ospf, _) = ospf.add_next_hop("198.51.100.1".parse().unwrap(), 2, NextHopData::default())?;
//!
//! let prefix = "203.0.113.0/24".parse()?;
//! bgp.add_route(prefix, RouteData::new(vec![via_bgp]))?;
//! let (_, outcome) = ospf.add_route(prefix, RouteData::new(vec![via_ospf]).preference(Preference::new(0, 10)))?;
//! assert!(outcome.best_changed); // OSPF's 110 beats BGP's 170
//!
//! let best = table.most_specific("203.0.113.9".parse().unwrap(), ViewSet::UNICAST, Selector::Best)?;
//! assert_eq!(best.route.unwrap().owner, EntityId::new(13, 0));
//!
//! drop(ospf); // deregistering withdraws OSPF's routes: BGP's route is best again
//! let guard = table.pin();
//! let hops = table.lookup("203.0.113.9".parse().unwrap(), ViewSet::UNICAST, &guard).unwrap();
//! assert_eq!(hops[0].address().to_string(), "192.0.2.1");
//! # Ok::<(), rtmgr::Error>(())
//! ```
//!
//! ## Architecture
//!
//! Layers, each depending only on those above it:
//!
//! - `sync`: the facade naming every atomic and the epoch crate (std or loom).
//! - `counted` (the handle protocol: reference counts reclaimed through epochs) and `cell`
//!   (an atomically replaced counted value).
//! - `tree`: the persistent multibit radix tree under one atomic root; snapshots are O(1).
//! - `table`: entities, next hops, routes, destinations and their copy-on-write route sets;
//!   queries and the fast path (`table::query`), writes (`table::registration`, `table::write`).
//! - [`handles`](Entity): what users hold: [`Entity`], [`Destination`], [`Route`], [`NextHop`].
//!
//! ## Concurrency
//!
//! Every operation is linearizable at one compare-and-swap. Readers take no lock and never
//! wait; writers take no lock: a route change swaps its destination's immutable route set, and
//! a destination appearing or leaving swaps the tree's root (path copying). Memory is reclaimed
//! through crossbeam-epoch. The [`Table::lookup`] fast path borrows from an epoch guard and does
//! no reference-count write.

#![warn(missing_docs)]

mod cell;
mod counted;
pub mod enumerate;
mod error;
mod family;
mod fib;
mod handles;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_api;
mod reclaim;
mod sync;
mod table;
mod tree;
mod types;
pub mod v1;

pub use crossbeam_epoch::Guard;
pub use enumerate::{
    DestEnumeration, DestFilter, DestOptions, EnumStart, NextHopEnumeration, RouteEnumeration, RouteOptions,
    RouteScope,
};
pub use error::Error;
pub use family::{Family, Ipv4, Ipv6, Prefix};
pub use fib::ForwardingLayout;
pub use handles::{DestInfo, Destination, Entity, NextHop, Route, RouteInfo, ViewInfo};
pub use reclaim::{collect_garbage, is_pinned};
pub use table::objects::{NextHopData, RouteData, SharedRouteData};
pub use table::{
    AddMode, ChangeOutcome, DestMatch, EntityConfig, Profile, Registration, RouteMatch, Table, TableConfig,
};
pub use types::{EntityId, NextHopFlags, Preference, RouteFlags, Selector, ViewSet};

/// The README's examples, compiled and run as doctests so they cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
