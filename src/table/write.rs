//! The write primitives every route change goes through: replace a destination's route set by
//! compare-and-swap, and put a destination into the tree or take it out.
//!
//! # The destination life cycle
//!
//! A destination enters the tree with its first route (one root CAS that expects the prefix to
//! be empty, or to hold a destination that is leaving). When a change empties its route set, the
//! new set is a *removed* marker, published by the same CAS that removed the last route; from
//! then on no writer adds to it — a writer that finds it replaces it in the tree with a fresh
//! destination instead — and the writer that emptied it takes it out of the tree (a CAS that
//! expects exactly that destination, so it never removes a successor). Readers treat a removed
//! destination as absent. Every step is one CAS, so each operation is linearizable at its CAS.

use crate::counted::Ref;
use crate::sync::{Ordering, epoch};
use crate::table::TableInner;
use crate::table::objects::{DestObj, RouteEntry, RouteSet};
use crate::{Error, Family, Selector};

/// What a successful change of a route set did.
pub(crate) struct SetChange {
    /// Some view's best route is another route or another version of it now.
    pub(crate) best_changed: bool,
    /// The change emptied the destination: it is leaving the tree.
    pub(crate) removed: bool,
}

/// When a destination emptied by a change leaves the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlink {
    /// Right away, with one root CAS.
    Now,
    /// With others, by one [`TableInner::prune`] (bulk withdrawals).
    Later,
}

impl<F: Family> TableInner<F> {
    /// Replaces `dest`'s route set with the routes `change` computes from the current set,
    /// retrying on concurrent changes (so `change` may run several times).
    ///
    /// Returns `Ok(None)` if the destination is leaving the tree (its set is the removed
    /// marker), an error if `change` returns one.
    pub(crate) fn change_routes(
        &self,
        dest: &DestObj<F>,
        change: impl FnMut(&RouteSet<F>) -> Result<Vec<RouteEntry<F>>, Error>,
    ) -> Result<Option<SetChange>, Error> {
        self.change_routes_then(dest, Unlink::Now, change)
    }

    /// [`TableInner::change_routes`], leaving an emptied destination in the tree when `unlink`
    /// is [`Unlink::Later`]: the caller then removes it, with others, by [`TableInner::prune`].
    pub(crate) fn change_routes_then(
        &self,
        dest: &DestObj<F>,
        unlink: Unlink,
        mut change: impl FnMut(&RouteSet<F>) -> Result<Vec<RouteEntry<F>>, Error>,
    ) -> Result<Option<SetChange>, Error> {
        loop {
            let guard = crate::reclaim::pin();
            let (current_raw, current) = dest.routes.load_both(&guard);
            if current.removed {
                return Ok(None);
            }
            let routes = change(current)?;
            let new = if routes.is_empty() { RouteSet::removed() } else { RouteSet::new(routes) };
            let best_changed = current.best_differs(&new);
            let removed = new.removed;
            if let Ok(replaced) = dest.routes.compare_swap_take(current_raw, Ref::new(new), &guard) {
                if best_changed {
                    self.refresh_forwarding(dest);
                }
                // Only now may the replaced set (and the route data the forwarding tables may
                // have pointed into) be retired: see "Forwarding tables" above.
                drop(replaced);
                if removed {
                    self.dest_count.fetch_sub(1, Ordering::Relaxed);
                    if unlink == Unlink::Now {
                        self.unlink(dest, &guard);
                    }
                }
                return Ok(Some(SetChange { best_changed, removed }));
            }
            // Another writer changed the set first: recompute on its version.
        }
    }

    /// Brings every compiled forwarding table up to date with the current best routes of
    /// `dest`'s prefix, after a change that may have changed them (see `fib/mod.rs`: reading
    /// the current state under the forwarding lock is what makes concurrent refreshes converge).
    pub(crate) fn refresh_forwarding(&self, dest: &DestObj<F>) {
        let prefix = dest.prefix;
        for fib in &self.forwarding {
            // The planted bug of the loom mutant check: the best route read before the lock is
            // taken, so a concurrent writer's refresh may run in between and be overwritten
            // with a stale route (and one whose route set may be retired meanwhile).
            #[cfg(rtmgr_mutant = "stale_refresh")]
            let early = self.current_best(fib, dest, &crate::reclaim::pin());
            fib.refresh(prefix.key(), prefix.len(), |guard| {
                #[cfg(rtmgr_mutant = "stale_refresh")]
                {
                    let _ = guard;
                    return early;
                }
                #[allow(unreachable_code)]
                self.current_best(fib, dest, guard)
            });
        }
    }

    /// The best route's data of `dest`'s prefix in `fib`'s view, as the tree holds it now.
    fn current_best(
        &self,
        fib: &crate::fib::Fib<F>,
        dest: &DestObj<F>,
        guard: &epoch::Guard,
    ) -> Option<*const crate::RouteData<F>> {
        // A destination that is not leaving is still the tree's one for its prefix (it leaves
        // the tree only after its set became the removed marker): no tree walk.
        let set = dest.routes(guard);
        let set = if set.removed {
            let prefix = dest.prefix;
            self.tree.get(prefix.key(), prefix.len(), guard)?.routes(guard)
        } else {
            set
        };
        set.best(fib.view(), Selector::Best).map(|e| &*e.data as *const _)
    }

    /// Takes every destination whose set is the removed marker out of the tree in one new
    /// version (one root CAS, nodes without such destinations shared). Gives up after a few
    /// lost races with other writers — a full walk is too slow to win against a stream of single
    /// writes — and then unlinks `fallback` one by one.
    pub(crate) fn prune(&self, fallback: &[crate::counted::Ref<DestObj<F>>]) {
        for _ in 0..3 {
            let guard = crate::reclaim::pin();
            match self.tree.prune(&guard, |dest| dest.is_removed(&guard)) {
                Ok(_) => return,
                Err(()) => continue,
            }
        }
        let guard = crate::reclaim::pin();
        for dest in fallback {
            self.unlink(dest, &guard);
        }
    }

    /// Takes a destination whose set is the removed marker out of the tree, unless a writer
    /// has already replaced it there.
    fn unlink(&self, dest: &DestObj<F>, guard: &epoch::Guard) {
        let prefix = dest.prefix;
        if let Some(current) = self.tree.get(prefix.key(), prefix.len(), guard) {
            if std::ptr::eq(&**current, dest) {
                // A failed CAS means a writer replaced it meanwhile: nothing left to do.
                let _ = self.tree.compare_replace(prefix.key(), prefix.len(), current.as_ptr(), None, guard);
            }
        }
    }

    /// Puts `new` at its prefix in the tree if the prefix still holds `expected` (null: nothing).
    pub(crate) fn link(
        &self,
        new: Ref<DestObj<F>>,
        expected: *const crate::counted::Counted<DestObj<F>>,
        guard: &epoch::Guard,
    ) -> Result<(), Ref<DestObj<F>>> {
        let prefix = new.prefix;
        match self.tree.compare_replace(prefix.key(), prefix.len(), expected, Some(new.clone()), guard) {
            Ok(()) => {
                self.dest_count.fetch_add(1, Ordering::Relaxed);
                self.refresh_forwarding(&new);
                Ok(())
            }
            Err(_) => Err(new),
        }
    }
}
