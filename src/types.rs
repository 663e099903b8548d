//! Small value types of the routing domain: views, preferences, flags, entity identities and
//! the protocol selector of queries.

use std::fmt;

use crate::Error;

/// A set of views (bit `n` is view `n`, 0 ≤ n < 32): RTM's view mask.
///
/// ```
/// use rtmgr::ViewSet;
/// let both = ViewSet::UNICAST | ViewSet::MULTICAST;
/// assert!(both.contains(ViewSet::UNICAST));
/// assert_eq!(both.iter().collect::<Vec<_>>(), vec![0, 1]);
/// assert_eq!(ViewSet::view(5)?.bits(), 1 << 5);
/// assert!(ViewSet::view(32).is_err());
/// # Ok::<(), rtmgr::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ViewSet(u32);

impl ViewSet {
    /// No view.
    pub const NONE: ViewSet = ViewSet(0);
    /// View 0, unicast forwarding.
    pub const UNICAST: ViewSet = ViewSet(1);
    /// View 1, multicast RPF.
    pub const MULTICAST: ViewSet = ViewSet(2);
    /// All 32 views.
    pub const ALL: ViewSet = ViewSet(u32::MAX);

    /// The set holding only view `id`; `NotSupported` past view 31.
    pub fn view(id: u8) -> Result<ViewSet, Error> {
        if id < 32 { Ok(ViewSet(1 << id)) } else { Err(Error::NotSupported("view ids are 0 to 31")) }
    }

    /// The set of a raw bit mask.
    ///
    /// ```
    /// assert_eq!(rtmgr::ViewSet::from_bits(3), rtmgr::ViewSet::UNICAST | rtmgr::ViewSet::MULTICAST);
    /// ```
    pub const fn from_bits(bits: u32) -> ViewSet {
        ViewSet(bits)
    }

    /// The raw bit mask.
    ///
    /// ```
    /// assert_eq!(rtmgr::ViewSet::MULTICAST.bits(), 2);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every view of `other` is in `self`.
    ///
    /// ```
    /// use rtmgr::ViewSet;
    /// assert!(ViewSet::ALL.contains(ViewSet::MULTICAST));
    /// ```
    pub const fn contains(self, other: ViewSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the two sets share a view.
    ///
    /// ```
    /// use rtmgr::ViewSet;
    /// assert!(ViewSet::ALL.intersects(ViewSet::UNICAST));
    /// assert!(!ViewSet::UNICAST.intersects(ViewSet::MULTICAST));
    /// ```
    pub const fn intersects(self, other: ViewSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// assert!(rtmgr::ViewSet::NONE.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The view ids in the set, ascending.
    ///
    /// ```
    /// assert_eq!(rtmgr::ViewSet::from_bits(0b101).iter().collect::<Vec<_>>(), vec![0, 2]);
    /// ```
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..32u8).filter(move |v| self.0 & (1 << v) != 0)
    }
}

impl std::ops::BitOr for ViewSet {
    type Output = ViewSet;
    fn bitor(self, rhs: ViewSet) -> ViewSet {
        ViewSet(self.0 | rhs.0)
    }
}

impl std::ops::BitAnd for ViewSet {
    type Output = ViewSet;
    fn bitand(self, rhs: ViewSet) -> ViewSet {
        ViewSet(self.0 & rhs.0)
    }
}

impl fmt::Debug for ViewSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ViewSet({:#x})", self.0)
    }
}

/// A route's preference: lower wins, then lower metric (RTM_PREF_INFO).
///
/// A `preference` of 0 given when adding a route is replaced by the owner's default preference.
///
/// ```
/// use rtmgr::Preference;
/// let ospf = Preference::new(110, 20);
/// let bgp = Preference::new(170, 0);
/// assert!(ospf < bgp);
/// assert!(Preference::new(110, 10) < ospf);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Preference {
    /// Administrative preference (RTM's `Preference`); lower is better.
    pub preference: u32,
    /// Protocol metric; lower is better among equal preferences.
    pub metric: u32,
}

impl Preference {
    /// A preference with its metric.
    ///
    /// ```
    /// assert_eq!(rtmgr::Preference::new(1, 2).metric, 2);
    /// ```
    pub const fn new(preference: u32, metric: u32) -> Self {
        Self { preference, metric }
    }
}

/// A route's flags (16 bits; RTM_ROUTE_FLAGS).
///
/// ```
/// use rtmgr::RouteFlags;
/// let f = RouteFlags::INACTIVE | RouteFlags::from_bits(0x100);
/// assert!(f.contains(RouteFlags::INACTIVE));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RouteFlags(u16);

impl RouteFlags {
    /// No flag.
    pub const NONE: RouteFlags = RouteFlags(0);
    /// The route is kept but never chosen as best.
    pub const INACTIVE: RouteFlags = RouteFlags(0x0001);
    /// The route is a discard (blackhole) route; forwarding flag.
    pub const DISCARD: RouteFlags = RouteFlags(0x0002);
    /// Martian route; forwarding flag.
    pub const MARTIAN: RouteFlags = RouteFlags(0x0004);

    /// Flags of raw bits (bits without a name are the owner's to use).
    ///
    /// ```
    /// assert_eq!(rtmgr::RouteFlags::from_bits(1), rtmgr::RouteFlags::INACTIVE);
    /// ```
    pub const fn from_bits(bits: u16) -> Self {
        RouteFlags(bits)
    }

    /// The raw bits.
    ///
    /// ```
    /// assert_eq!(rtmgr::RouteFlags::DISCARD.bits(), 2);
    /// ```
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether all of `other`'s flags are set.
    ///
    /// ```
    /// assert!(!rtmgr::RouteFlags::NONE.contains(rtmgr::RouteFlags::INACTIVE));
    /// ```
    pub const fn contains(self, other: RouteFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for RouteFlags {
    type Output = RouteFlags;
    fn bitor(self, rhs: RouteFlags) -> RouteFlags {
        RouteFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for RouteFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RouteFlags({:#x})", self.0)
    }
}

/// A next hop's flags.
///
/// ```
/// use rtmgr::NextHopFlags;
/// assert!(NextHopFlags::REMOTE.contains(NextHopFlags::REMOTE));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct NextHopFlags(u16);

impl NextHopFlags {
    /// No flag.
    pub const NONE: NextHopFlags = NextHopFlags(0);
    /// The next hop is not directly connected: its address is resolved through the table.
    pub const REMOTE: NextHopFlags = NextHopFlags(0x0001);

    /// Flags of raw bits.
    ///
    /// ```
    /// assert_eq!(rtmgr::NextHopFlags::from_bits(1), rtmgr::NextHopFlags::REMOTE);
    /// ```
    pub const fn from_bits(bits: u16) -> Self {
        NextHopFlags(bits)
    }

    /// The raw bits.
    ///
    /// ```
    /// assert_eq!(rtmgr::NextHopFlags::REMOTE.bits(), 1);
    /// ```
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Whether all of `other`'s flags are set.
    ///
    /// ```
    /// assert!(!rtmgr::NextHopFlags::NONE.contains(rtmgr::NextHopFlags::REMOTE));
    /// ```
    pub const fn contains(self, other: NextHopFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// An entity's identity within a table: (protocol id, instance id). Ordered as the best-route
/// tie-break orders entities.
///
/// ```
/// use rtmgr::EntityId;
/// assert!(EntityId::new(8, 1) < EntityId::new(8, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId {
    /// The routing protocol (RTM's protocol id, e.g. 8 for RIP, 13 for OSPF, 14 for BGP).
    pub protocol: u32,
    /// The instance of that protocol.
    pub instance: u32,
}

impl EntityId {
    /// An identity.
    ///
    /// ```
    /// assert_eq!(rtmgr::EntityId::new(14, 0).protocol, 14);
    /// ```
    pub const fn new(protocol: u32, instance: u32) -> Self {
        Self { protocol, instance }
    }
}

/// Which route a query reports for each destination (RTM's protocol id argument).
///
/// The selector picks what is reported; it does not filter destinations.
///
/// ```
/// use rtmgr::{EntityId, Selector};
/// let mine = Selector::Entity(EntityId::new(14, 0));
/// assert_ne!(mine, Selector::Best);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Selector {
    /// The best route, whoever owns it.
    #[default]
    Best,
    /// The best among the routes of one entity ("mine" when it is the caller).
    Entity(EntityId),
    /// The best among the routes of one protocol, any instance.
    Protocol(u32),
}

impl Selector {
    pub(crate) fn accepts(self, owner: EntityId) -> bool {
        match self {
            Selector::Best => true,
            Selector::Entity(id) => id == owner,
            Selector::Protocol(p) => p == owner.protocol,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_ids_past_31_are_not_supported() {
        assert!(matches!(ViewSet::view(32), Err(Error::NotSupported(_))));
        assert_eq!(ViewSet::view(31).unwrap().bits(), 1 << 31);
    }

    #[test]
    fn selector_matching() {
        let e = EntityId::new(14, 2);
        assert!(Selector::Best.accepts(e));
        assert!(Selector::Protocol(14).accepts(e));
        assert!(!Selector::Protocol(13).accepts(e));
        assert!(Selector::Entity(e).accepts(e));
        assert!(!Selector::Entity(EntityId::new(14, 3)).accepts(e));
    }
}
