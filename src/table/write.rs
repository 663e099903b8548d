//! The write primitives every route change goes through: replace a destination's route set by
//! compare-and-swap, and put a destination into the tree or take it out.
//!
//! # The destination life cycle
//!
//! A destination enters the tree with its first route (one root CAS that expects the prefix to
//! be empty, or to hold a destination that is leaving). A change that removes its last route
//! publishes an *empty* set (readers treat the destination as absent) and leaves it in the tree;
//! a later route revives it with one route-set CAS, unless an enumeration snapshot is open (see
//! `presence.rs`). A sweep takes emptied destinations out in bulk: it first replaces each empty
//! set with the *removed* marker (a CAS from exactly that empty set), from then on no writer adds
//! to it — a writer that finds it replaces it in the tree with a fresh destination instead — and
//! then removes the marked destinations from the tree in one new version (or, if other writers
//! keep winning the root, one by one with CASes that expect exactly that destination, so a
//! successor is never removed). Every step is one CAS, so each operation is linearizable at its
//! CAS.

use crate::counted::Ref;
use crate::sync::{Ordering, epoch};
use crate::table::TableInner;
use crate::table::objects::{DestObj, RouteList, RouteSet};
use crate::table::presence::{Change, PENDING, SWEEP_MIN};
use crate::tree::Insert;
use crate::{Error, Family, Selector};

/// A destination to put in the tree, and the destination it must find there and replace (a
/// null pointer: none).
pub(crate) type Linking<F> = (Ref<DestObj<F>>, *const crate::counted::Counted<DestObj<F>>);

/// What a successful change of a route set did.
pub(crate) struct SetChange {
    /// Some view's best route is another route or another version of it now.
    pub(crate) best_changed: bool,
    /// The change removed the destination's last route: it is absent now (and stays in the
    /// tree, empty, until a sweep).
    pub(crate) emptied: bool,
}

/// Whether a change that empties a destination may start a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sweep {
    /// When the emptied destinations are due for one (see `presence.rs`).
    WhenDue,
    /// Not now: the caller empties many destinations and sweeps once at the end.
    Later,
}

/// The tick of an empty set's emptying, waiting for the emptying writer to store it (it does
/// right after its CAS; see `presence.rs`).
fn settled_gone_at<F: Family>(set: &RouteSet<F>) -> u64 {
    loop {
        let tick = set.gone_at();
        if tick != PENDING {
            return tick;
        }
        crate::sync::spin_loop();
    }
}

/// The value of a count that concurrent writers change after their CASes, so that a count down
/// may come before the matching count up and the count dip below 0 for a moment (wrapping):
/// such a moment reads as 0.
pub(crate) fn counter_value(raw: usize) -> usize {
    if raw > isize::MAX as usize { 0 } else { raw }
}

impl<F: Family> TableInner<F> {
    /// Destinations with routes (exact when no write is in flight).
    pub(crate) fn destination_count(&self) -> usize {
        counter_value(self.dest_count.load(Ordering::Relaxed))
    }

    /// [`TableInner::change_routes_then`] with [`Sweep::WhenDue`].
    pub(crate) fn change_routes(
        &self,
        dest: &DestObj<F>,
        change: impl FnMut(&RouteSet<F>) -> Result<RouteList<F>, Error>,
    ) -> Result<Option<SetChange>, Error> {
        self.change_routes_then(dest, Sweep::WhenDue, change)
    }

    /// Replaces `dest`'s route set with the routes `change` computes from the current set,
    /// retrying on concurrent changes (so `change` may run several times).
    ///
    /// Returns `Ok(None)` if the destination is leaving the tree (its set is the removed
    /// marker, or it was empty and may not revive in place because a snapshot is open: see
    /// `presence.rs`; the caller then links a fresh destination), an error if `change` returns
    /// one.
    pub(crate) fn change_routes_then(
        &self,
        dest: &DestObj<F>,
        sweep: Sweep,
        mut change: impl FnMut(&RouteSet<F>) -> Result<RouteList<F>, Error>,
    ) -> Result<Option<SetChange>, Error> {
        loop {
            let guard = crate::reclaim::pin();
            let (current_raw, current) = dest.routes.load_both(&guard);
            if current.is_removed() {
                return Ok(None);
            }
            let routes = change(current)?;
            let (was_absent, is_absent) = (current.is_absent(), routes.is_empty());
            if was_absent && is_absent {
                return Ok(Some(SetChange { best_changed: false, emptied: false }));
            }
            // An emptying or a revival changes presence: it runs inside a bracket that open
            // snapshots wait for (see `presence.rs`).
            let bracket = (was_absent || is_absent).then(|| self.presence.change());
            // The planted bug `revive_under_snapshot` of the loom mutant check skips the check.
            if was_absent
                && !cfg!(rtmgr_mutant = "revive_under_snapshot")
                && bracket.as_ref().is_some_and(Change::snapshot_open)
            {
                // No revival in place under an open snapshot: retire the destination, and the
                // caller puts a fresh one in its place in the tree.
                drop(bracket);
                if self.mark_removed(dest, current_raw, settled_gone_at(current), &guard) {
                    return Ok(None);
                }
                continue;
            }
            // A revival starts a new incarnation: handles of the emptied one stay deleted.
            let incarnation = current.incarnation + u64::from(was_absent);
            let new = Ref::new(if is_absent {
                RouteSet::emptied(incarnation)
            } else {
                RouteSet::new(routes, incarnation)
            });
            let best_changed = current.best_differs(&new);
            let published = new.clone();
            // The planted bug `tick_before_cas`: the tick read before the CAS.
            #[cfg(rtmgr_mutant = "tick_before_cas")]
            let early_tick = bracket.as_ref().map(Change::tick);
            if let Ok(replaced) = dest.routes.compare_swap_take(current_raw, new, &guard) {
                if let Some(bracket) = bracket {
                    // The tick is read after the CAS (see `presence.rs`).
                    #[cfg(not(rtmgr_mutant = "tick_before_cas"))]
                    let tick = bracket.tick();
                    #[cfg(rtmgr_mutant = "tick_before_cas")]
                    let tick = early_tick.unwrap_or_default();
                    if is_absent {
                        published.set_gone_at(tick);
                    }
                }
                drop(published);
                if best_changed {
                    self.refresh_forwarding(dest);
                }
                // Only now may the replaced set (and the route data the forwarding tables may
                // have pointed into) be retired: see "Forwarding tables" above.
                drop(replaced);
                drop(guard);
                if was_absent {
                    self.dest_count.fetch_add(1, Ordering::Relaxed);
                    self.empty_dests.fetch_sub(1, Ordering::Relaxed);
                } else if is_absent {
                    self.dest_count.fetch_sub(1, Ordering::Relaxed);
                    self.note_emptied(sweep);
                }
                return Ok(Some(SetChange { best_changed, emptied: is_absent }));
            }
            // Another writer changed the set first: recompute on its version.
        }
    }

    /// Counts one more emptied destination and sweeps when they are more than a quarter of the
    /// table (and at least [`SWEEP_MIN`]), unless a sweep is running already.
    fn note_emptied(&self, sweep: Sweep) {
        // Wrapping: a racing revival may count down before this count up (see `counter_value`).
        let empty = counter_value(self.empty_dests.fetch_add(1, Ordering::Relaxed).wrapping_add(1));
        if sweep == Sweep::WhenDue && empty >= SWEEP_MIN.max(self.destination_count() / 4) {
            if let Ok(lock) = self.sweep_lock.try_lock() {
                self.sweep_locked(&lock);
            }
        }
    }

    /// Takes every emptied destination out of the tree, after any sweep already running.
    pub(crate) fn sweep(&self) {
        let lock = self.sweep_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sweep_locked(&lock);
    }

    /// The sweep: marks each empty destination removed — a CAS from its empty set, so a
    /// concurrent revival either wins (the destination stays) or finds the marker and links a
    /// fresh destination — then takes the marked ones out of the tree in one new version.
    fn sweep_locked(&self, _lock: &crate::sync::MutexGuard<'_, ()>) {
        let mut marked = Vec::new();
        {
            let guard = crate::reclaim::pin();
            for dest in crate::tree::Iter::all(self.tree.root(&guard)) {
                let (raw, set) = dest.routes.load_both(&guard);
                // A set whose emptying is still in flight waits for the next sweep.
                if set.is_removed() || !set.is_absent() || set.gone_at() == PENDING {
                    continue;
                }
                if self.mark_removed(dest, raw, set.gone_at(), &guard) {
                    marked.push(dest.clone());
                }
            }
        }
        if !marked.is_empty() {
            self.prune(&marked);
        }
    }

    /// Replaces `dest`'s empty set `empty` (emptied at tick `gone_at`) with the removed marker
    /// by CAS, so that no route is added to it any more; false if another writer changed the
    /// set first. The destination no longer counts as emptied: it is on its way out of the tree.
    fn mark_removed(
        &self,
        dest: &DestObj<F>,
        empty: *const crate::counted::Counted<RouteSet<F>>,
        gone_at: u64,
        guard: &epoch::Guard,
    ) -> bool {
        let marked = dest.routes.compare_swap(empty, Ref::new(RouteSet::removed(gone_at)), guard).is_ok();
        if marked {
            self.empty_dests.fetch_sub(1, Ordering::Relaxed);
        }
        marked
    }

    /// Brings every compiled forwarding table up to date with the current best routes of
    /// `dest`'s prefix, after a change that may have changed them (see `fib/mod.rs`: reading
    /// the current state under the forwarding lock is what makes concurrent refreshes converge).
    pub(crate) fn refresh_forwarding(&self, dest: &DestObj<F>) {
        let prefix = dest.prefix;
        for fib in self.forwarding.iter() {
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
        let set = if set.is_removed() {
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
            match self.tree.prune(&guard, |dest| dest.routes(&guard).is_removed()) {
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
    /// [`TableInner::link`] for many destinations at once: every one whose prefix still holds
    /// its expected destination (null: none) goes into the tree in one new version. Returns the
    /// indices of the others (in `dests`), which were not linked. `dests` must be sorted by
    /// prefix, each prefix once.
    pub(crate) fn link_batch(&self, dests: &[Linking<F>], guard: &epoch::Guard) -> Vec<usize> {
        let batch: Vec<Insert<DestObj<F>>> = dests
            .iter()
            .map(|(dest, expected)| Insert {
                key: dest.prefix.key(),
                len: dest.prefix.len(),
                expected: *expected,
                value: dest.clone(),
            })
            .collect();
        let refused = self.tree.insert_batch(&batch, guard);
        self.dest_count.fetch_add(batch.len() - refused.len(), Ordering::Relaxed);
        // `refused` is in batch order: skip each as its index comes.
        let mut skip = refused.iter().copied().peekable();
        let linked: Vec<&DestObj<F>> = dests
            .iter()
            .enumerate()
            .filter(|&(i, _)| skip.next_if_eq(&i).is_none())
            .map(|(_, (dest, _))| &**dest)
            .collect();
        // One forwarding lock per batch (the destinations come sorted by prefix); each best
        // route is still read under the lock, as `refresh_forwarding` does.
        for fib in self.forwarding.iter() {
            fib.refresh_each(
                &linked,
                |dest| (dest.prefix.key(), dest.prefix.len()),
                |dest, guard| self.current_best(fib, dest, guard),
            );
        }
        refused
    }

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
