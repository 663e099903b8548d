//! Next-hop enumerations (RtmCreateNextHopEnum, RtmGetEnumNextHops).

use std::collections::VecDeque;

use super::BatchEnd;
use crate::handles::NextHop;
use crate::table::Table;
use crate::{EntityId, Error, Family, Prefix};

/// An open next-hop enumeration: the next hops whose address lies in a prefix, ordered by
/// (address, interface, owner), copied as counted handles when the enumeration was created.
///
/// ```
/// use rtmgr::{EntityConfig, EntityId, Error, Ipv4, NextHopData, Prefix, Table};
/// let table = Table::<Ipv4>::new();
/// let a = table.register(EntityConfig::new(EntityId::new(2, 0)))?;
/// let b = table.register(EntityConfig::new(EntityId::new(3, 0)))?;
/// a.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default())?;
/// b.add_next_hop("192.0.2.2".parse().unwrap(), 1, NextHopData::default())?;
/// b.add_next_hop("198.51.100.1".parse().unwrap(), 1, NextHopData::default())?;
/// let range = "192.0.2.0/24".parse()?;
/// let all = table.enumerate_next_hops(range, None)?.collect::<Vec<_>>();
/// assert_eq!(all.len(), 2);
/// let mut mine = table.enumerate_next_hops(range, Some(b.id()))?;
/// assert_eq!(mine.next_batch(10)?[0].address().to_string(), "192.0.2.2");
/// assert_eq!(mine.next_batch(10).unwrap_err(), Error::NoMoreItems);
/// # Ok::<(), rtmgr::Error>(())
/// ```
pub struct NextHopEnumeration<F: Family> {
    max_batch: usize,
    next_hops: VecDeque<NextHop<F>>,
    end: BatchEnd,
}

impl<F: Family> Table<F> {
    /// Opens a next-hop enumeration over the next hops with an address in `range`, of every
    /// registered entity or only of `owner`.
    ///
    /// See [`NextHopEnumeration`]'s example.
    pub fn enumerate_next_hops(
        &self,
        range: Prefix<F>,
        owner: Option<EntityId>,
    ) -> Result<NextHopEnumeration<F>, Error> {
        let mut next_hops: Vec<NextHop<F>> = self
            .entities()
            .iter()
            .filter(|e| owner.is_none_or(|id| e.id() == id))
            .flat_map(|e| e.obj().next_hops.iter().map(|entry| entry.value().clone()).collect::<Vec<_>>())
            .filter(|nh| range.contains(nh.address()))
            .collect();
        next_hops.sort_by_key(|nh| (nh.address(), nh.interface(), nh.owner()));
        Ok(NextHopEnumeration {
            max_batch: self.inner.config.max_batch,
            next_hops: next_hops.into(),
            end: BatchEnd::default(),
        })
    }
}

impl<F: Family> NextHopEnumeration<F> {
    /// The next up to `max` next hops (1 ≤ `max` ≤ the table's `max_batch`, else
    /// `InvalidParameter`); `NoMoreItems` once when none is left, `InvalidHandle` after that.
    ///
    /// See the type's example.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<NextHop<F>>, Error> {
        self.end.check(max, self.max_batch)?;
        let n = max.min(self.next_hops.len());
        let batch = self.next_hops.drain(..n).collect();
        self.end.finish(batch)
    }

    /// Closes the enumeration, releasing the handles it still holds.
    ///
    /// ```
    /// # use rtmgr::{Ipv4, Prefix, Table};
    /// let table = Table::<Ipv4>::new();
    /// table.enumerate_next_hops(Prefix::default_route(), None)?.close()?;
    /// # Ok::<(), rtmgr::Error>(())
    /// ```
    pub fn close(self) -> Result<(), Error> {
        drop(self);
        Ok(())
    }
}

impl<F: Family> Iterator for NextHopEnumeration<F> {
    type Item = NextHop<F>;

    fn next(&mut self) -> Option<NextHop<F>> {
        self.next_hops.pop_front()
    }
}

impl<F: Family> std::fmt::Debug for NextHopEnumeration<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextHopEnumeration").field("remaining", &self.next_hops.len()).finish()
    }
}
