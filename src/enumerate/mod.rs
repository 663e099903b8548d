//! Enumerations (RtmCreateDestEnum, RtmCreateRouteEnum, RtmCreateNextHopEnum and their
//! get/delete calls): batched, resumable walks over an O(1) snapshot of the tree.
//!
//! # The snapshot guarantee
//!
//! Creating a destination or route enumeration takes one counted reference to the tree's
//! current root ([`Tree::snapshot`](crate::tree::Tree)): the version it names is immutable, so
//! the enumeration yields **exactly the destinations present at creation, each once, in address
//! order then prefix length** — none added later, none missing because it was deleted later —
//! while writers go on unblocked. Creation costs one root load and one increment whatever the
//! table's size.
//!
//! What is reported *for* each destination (its routes, best route, deleted state) is its state
//! when the batch reads it, as RTM specifies. A destination deleted after creation is still
//! yielded, reading as deleted with no routes — unless a view or ownership filter, evaluated at
//! read time, leaves it out. Emptied destinations stay in the tree until a sweep; the snapshot
//! tells those emptied before its creation (left out) from those emptied after (yielded) by the
//! table's presence clock, and while it is open no emptied destination comes back in place, so
//! none absent at creation is yielded either (`table/presence.rs`).
//!
//! # Cost and memory
//!
//! An open enumeration holds counted references only — the snapshot root and, between batches,
//! the route handles of a partly returned destination — and **never a pinned epoch guard**: each
//! batch pins a short guard to read route sets and drops it before returning. So an open
//! enumeration keeps alive exactly the tree nodes of its version that writers have replaced since
//! (and the destinations they hold), and does not delay reclamation of anything else. Each batch
//! resumes from the last prefix returned with one walk down the tree (`Iter::resume`), so a
//! batch costs O(depth + batch size). Dropping the enumeration (or [`close`]) releases
//! everything.
//!
//! Next-hop enumerations are not snapshots of the tree: they copy the matching next-hop handles
//! when created (O(next hops)), then hand them out in batches.
//!
//! [`close`]: DestEnumeration::close

mod dests;
mod next_hops;
mod routes;

pub use dests::{DestEnumeration, DestFilter, DestOptions};
pub use next_hops::NextHopEnumeration;
pub use routes::{RouteEnumeration, RouteOptions, RouteScope};

use crate::counted::Ref;
use crate::family::mask;
use crate::table::TableInner;
use crate::table::objects::DestObj;
use crate::table::presence::{Cut, OpenSnapshot, Presence};
use crate::tree::{Iter, Node};
use crate::{Error, Family, Prefix};

/// Where a walk over destinations starts and stops (RTM_ENUM_START / _NEXT / _RANGE).
///
/// ```
/// use rtmgr::{EnumStart, Ipv4};
/// let from: EnumStart<Ipv4> = EnumStart::From("10.0.0.0/8".parse()?);
/// assert_ne!(from, EnumStart::All);
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EnumStart<F: Family> {
    /// The whole table (RTM_ENUM_START).
    #[default]
    All,
    /// From this prefix (included if present) to the end of the table, in order
    /// (RTM_ENUM_NEXT).
    From(Prefix<F>),
    /// The prefixes inside this one, itself included (RTM_ENUM_RANGE).
    Within(Prefix<F>),
}

/// A resumable walk over one snapshot of the tree, holding no guard.
pub(crate) struct SnapshotWalk<F: Family> {
    snapshot: Ref<Node<DestObj<F>>>,
    /// The snapshot's place on the presence clock, which decides whether an empty destination of
    /// the snapshot was present when it was taken (`table/presence.rs`); open while the walk is.
    opened: OpenSnapshot,
    /// The range walked: `(key, len)`.
    range: (u128, u8),
    /// Where the next step starts, and whether that prefix itself is still due.
    from: (u128, u8),
    inclusive: bool,
    done: bool,
}

impl<F: Family> SnapshotWalk<F> {
    /// Takes a snapshot of `table`'s tree now (O(1)) and starts a walk over it at `start`.
    pub(crate) fn open(table: &TableInner<F>, start: EnumStart<F>) -> Self {
        let (opened, snapshot) =
            Presence::open_snapshot(&table.presence, || table.tree.snapshot(&crate::reclaim::pin()));
        let (range, from) = match start {
            EnumStart::All => ((0, 0), (0, 0)),
            EnumStart::From(p) => ((0, 0), (p.key(), p.len())),
            EnumStart::Within(p) => ((p.key(), p.len()), (p.key(), p.len())),
        };
        debug_assert_eq!(from.0 & mask(range.1), range.0);
        SnapshotWalk { snapshot, opened, range, from, inclusive: true, done: false }
    }

    /// Visits destinations in order from where the last step stopped, until `visit` says stop
    /// (the destination it stopped on counts as visited) or the walk ends.
    pub(crate) fn step(&mut self, mut visit: impl FnMut(&Ref<DestObj<F>>) -> Walk) {
        if self.done {
            return;
        }
        let mut stopped = false;
        for dest in Iter::resume(&self.snapshot, self.range, self.from, self.inclusive) {
            self.from = (dest.prefix.key(), dest.prefix.len());
            self.inclusive = false;
            if visit(dest) == Walk::Stop {
                stopped = true;
                break;
            }
        }
        if !stopped {
            self.done = true;
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The snapshot's instant, which decides whether a destination of it was present then.
    pub(crate) fn cut(&self) -> Cut {
        self.opened.cut()
    }
}

/// Whether a walk goes on after a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    Continue,
    Stop,
}

/// The end-of-enumeration bookkeeping shared by every batch API: checks the requested size
/// and reports the end exactly once.
#[derive(Debug, Default)]
pub(crate) struct BatchEnd {
    reported: bool,
}

impl BatchEnd {
    /// Refuses a batch size of 0 or above the table's `max_batch`, and any call after the end
    /// was reported.
    pub(crate) fn check(&self, wanted: usize, max_batch: usize) -> Result<(), Error> {
        if self.reported {
            return Err(Error::InvalidHandle("the enumeration has already reported its end"));
        }
        if wanted == 0 || wanted > max_batch {
            return Err(Error::invalid(format!(
                "batch size {wanted} is outside 1..={max_batch} (the table's max_batch)"
            )));
        }
        Ok(())
    }

    /// A filled batch, or `NoMoreItems` (once) when it came back empty.
    pub(crate) fn finish<T>(&mut self, batch: Vec<T>) -> Result<Vec<T>, Error> {
        if batch.is_empty() {
            self.reported = true;
            Err(Error::NoMoreItems)
        } else {
            Ok(batch)
        }
    }
}
