//! Address families and prefixes.
//!
//! A table is generic over its [`Family`]: [`Ipv4`] or [`Ipv6`]. Inside the crate every address
//! is a `u128` *key*, left-aligned (an IPv4 address occupies the top 32 bits), so the radix tree
//! has one implementation for both families.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

mod sealed {
    pub trait Sealed {}
}

/// An address family: [`Ipv4`] or [`Ipv6`].
///
/// ```
/// use rtmgr::{Family, Ipv4, Ipv6};
/// assert_eq!(Ipv4::BITS, 32);
/// assert_eq!(Ipv6::BITS, 128);
/// ```
pub trait Family:
    sealed::Sealed + Copy + Default + Eq + Ord + Hash + fmt::Debug + Send + Sync + 'static
{
    /// The address type of the family.
    type Addr: Copy + Eq + Ord + Hash + fmt::Debug + fmt::Display + FromStr + Send + Sync + 'static;
    /// Bits in an address.
    const BITS: u8;
    /// "IPv4" or "IPv6", for messages.
    const NAME: &'static str;
    /// The left-aligned key of an address.
    fn key(addr: Self::Addr) -> u128;
    /// The address of a left-aligned key (bits past the family's width are ignored).
    fn addr(key: u128) -> Self::Addr;
    /// The address inside a generic IP address, if it is of this family.
    fn from_ip(addr: IpAddr) -> Option<Self::Addr>;
}

/// The IPv4 family (32-bit addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4;

/// The IPv6 family (128-bit addresses).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv6;

impl sealed::Sealed for Ipv4 {}
impl sealed::Sealed for Ipv6 {}

impl Family for Ipv4 {
    type Addr = Ipv4Addr;
    const BITS: u8 = 32;
    const NAME: &'static str = "IPv4";
    #[inline]
    fn key(addr: Ipv4Addr) -> u128 {
        (u32::from(addr) as u128) << 96
    }
    #[inline]
    fn addr(key: u128) -> Ipv4Addr {
        Ipv4Addr::from((key >> 96) as u32)
    }
    fn from_ip(addr: IpAddr) -> Option<Ipv4Addr> {
        match addr {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        }
    }
}

impl Family for Ipv6 {
    type Addr = Ipv6Addr;
    const BITS: u8 = 128;
    const NAME: &'static str = "IPv6";
    #[inline]
    fn key(addr: Ipv6Addr) -> u128 {
        u128::from(addr)
    }
    #[inline]
    fn addr(key: u128) -> Ipv6Addr {
        Ipv6Addr::from(key)
    }
    fn from_ip(addr: IpAddr) -> Option<Ipv6Addr> {
        match addr {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        }
    }
}

/// The mask of the first `len` bits of a left-aligned key.
#[inline]
pub(crate) fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - len as u32) }
}

/// A destination prefix: an address and a length, with every host bit zero.
///
/// Ordered by address, then length (the order of enumerations).
///
/// ```
/// use rtmgr::{Ipv4, Prefix};
/// let p: Prefix<Ipv4> = "10.1.0.0/16".parse()?;
/// assert_eq!(p.len(), 16);
/// assert_eq!(p.to_string(), "10.1.0.0/16");
/// assert!(p.contains("10.1.2.3".parse()?));
/// assert!("10.1.0.1/16".parse::<Prefix<Ipv4>>().is_err()); // host bits set
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix<F: Family> {
    key: u128,
    len: u8,
    _family: std::marker::PhantomData<F>,
}

impl<F: Family> Prefix<F> {
    /// A prefix of `len` bits at `addr`; `InvalidParameter` if the length exceeds the family's
    /// width or a host bit is set.
    ///
    /// ```
    /// use rtmgr::{Ipv6, Prefix};
    /// let p = Prefix::<Ipv6>::new("2001:db8::".parse()?, 32)?;
    /// assert_eq!(p.to_string(), "2001:db8::/32");
    /// assert!(Prefix::<Ipv6>::new("2001:db8::".parse()?, 129).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(addr: F::Addr, len: u8) -> Result<Self, Error> {
        if len > F::BITS {
            return Err(Error::invalid(format!(
                "prefix length {len} exceeds the {} width of {} bits",
                F::NAME,
                F::BITS
            )));
        }
        let key = F::key(addr);
        if key & !mask(len) != 0 {
            return Err(Error::invalid(format!("host bits set in {addr}/{len}")));
        }
        Ok(Self::from_key(key, len))
    }

    /// The prefix of `len` bits covering `addr`, host bits cleared (never fails for a valid
    /// length).
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// let p = Prefix::<Ipv4>::truncate("10.1.2.3".parse()?, 16)?;
    /// assert_eq!(p.to_string(), "10.1.0.0/16");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn truncate(addr: F::Addr, len: u8) -> Result<Self, Error> {
        if len > F::BITS {
            return Err(Error::invalid(format!(
                "prefix length {len} exceeds the {} width of {} bits",
                F::NAME,
                F::BITS
            )));
        }
        Ok(Self::from_key(F::key(addr) & mask(len), len))
    }

    /// The host prefix (full length) of an address.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// assert_eq!(Prefix::<Ipv4>::host("1.2.3.4".parse()?).len(), 32);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn host(addr: F::Addr) -> Self {
        Self::from_key(F::key(addr), F::BITS)
    }

    /// The default route prefix (`0.0.0.0/0` or `::/0`).
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// assert_eq!(Prefix::<Ipv4>::default_route().to_string(), "0.0.0.0/0");
    /// ```
    pub fn default_route() -> Self {
        Self::from_key(0, 0)
    }

    #[inline]
    pub(crate) fn from_key(key: u128, len: u8) -> Self {
        debug_assert!(len <= F::BITS && key & !mask(len) == 0);
        Self { key, len, _family: std::marker::PhantomData }
    }

    #[inline]
    pub(crate) fn key(&self) -> u128 {
        self.key
    }

    /// The network address.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// let p: Prefix<Ipv4> = "10.0.0.0/8".parse()?;
    /// assert_eq!(p.addr(), "10.0.0.0".parse::<std::net::Ipv4Addr>()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn addr(&self) -> F::Addr {
        F::addr(self.key)
    }

    /// The prefix length in bits.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// assert_eq!("10.0.0.0/8".parse::<Prefix<Ipv4>>()?.len(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `addr` lies inside this prefix.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// let p: Prefix<Ipv4> = "10.0.0.0/8".parse()?;
    /// assert!(p.contains("10.9.9.9".parse()?));
    /// assert!(!p.contains("11.0.0.0".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains(&self, addr: F::Addr) -> bool {
        F::key(addr) & mask(self.len) == self.key
    }

    /// Whether `other` lies inside this prefix (a prefix covers itself).
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// let p: Prefix<Ipv4> = "10.0.0.0/8".parse()?;
    /// assert!(p.covers(&"10.1.0.0/16".parse()?));
    /// assert!(!p.covers(&"0.0.0.0/0".parse()?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn covers(&self, other: &Prefix<F>) -> bool {
        other.len >= self.len && other.key & mask(self.len) == self.key
    }
}

impl<F: Family> PartialOrd for Prefix<F> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<F: Family> Ord for Prefix<F> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.key, self.len).cmp(&(other.key, other.len))
    }
}

impl<F: Family> fmt::Display for Prefix<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl<F: Family> fmt::Debug for Prefix<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<F: Family> FromStr for Prefix<F> {
    type Err = Error;

    /// Parses `addr/len` (a bare address is a host prefix); host bits must be zero and the
    /// address must be of the table's family.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => {
                let len = l
                    .parse::<u8>()
                    .map_err(|_| Error::invalid(format!("bad prefix length {l:?} in {s:?}")))?;
                (a, Some(len))
            }
            None => (s, None),
        };
        let ip: IpAddr =
            addr.parse().map_err(|_| Error::invalid(format!("bad address {addr:?} in {s:?}")))?;
        let addr = F::from_ip(ip).ok_or_else(|| {
            Error::invalid(format!("wrong address family: {s:?} is not an {} prefix", F::NAME))
        })?;
        Prefix::new(addr, len.unwrap_or(F::BITS))
    }
}

impl<F: Family> TryFrom<ipnet::IpNet> for Prefix<F> {
    type Error = Error;

    /// Converts an `ipnet` prefix; `InvalidParameter` for the wrong family or host bits set.
    ///
    /// ```
    /// use rtmgr::{Ipv4, Prefix};
    /// let net: ipnet::IpNet = "192.168.0.0/16".parse()?;
    /// let p = Prefix::<Ipv4>::try_from(net)?;
    /// assert_eq!(p.len(), 16);
    /// let v6: ipnet::IpNet = "2001:db8::/32".parse()?;
    /// assert!(Prefix::<Ipv4>::try_from(v6).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn try_from(net: ipnet::IpNet) -> Result<Self, Error> {
        let addr = F::from_ip(net.addr()).ok_or_else(|| {
            Error::invalid(format!("wrong address family: {net} is not an {} prefix", F::NAME))
        })?;
        Prefix::new(addr, net.prefix_len())
    }
}

impl From<Prefix<Ipv4>> for ipnet::Ipv4Net {
    fn from(p: Prefix<Ipv4>) -> Self {
        ipnet::Ipv4Net::new(p.addr(), p.len()).expect("a Prefix always has a valid length")
    }
}

impl From<Prefix<Ipv6>> for ipnet::Ipv6Net {
    fn from(p: Prefix<Ipv6>) -> Self {
        ipnet::Ipv6Net::new(p.addr(), p.len()).expect("a Prefix always has a valid length")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["0.0.0.0/0", "10.0.0.0/8", "1.2.3.4/32", "128.0.0.0/1"] {
            assert_eq!(s.parse::<Prefix<Ipv4>>().unwrap().to_string(), s);
        }
        for s in ["::/0", "2001:db8::/32", "::1/128", "8000::/1"] {
            assert_eq!(s.parse::<Prefix<Ipv6>>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        for s in ["10.0.0.1/8", "10.0.0.0/33", "10.0.0/8", "2001:db8::/32", "10.0.0.0/x", ""] {
            assert!(
                matches!(s.parse::<Prefix<Ipv4>>(), Err(Error::InvalidParameter(_))),
                "{s} should be rejected"
            );
        }
        assert!(matches!("::/129".parse::<Prefix<Ipv6>>(), Err(Error::InvalidParameter(_))));
        assert!(matches!("1.0.0.0/8".parse::<Prefix<Ipv6>>(), Err(Error::InvalidParameter(_))));
    }

    #[test]
    fn order_is_address_then_length() {
        let mut v: Vec<Prefix<Ipv4>> = ["10.1.0.0/16", "10.0.0.0/16", "10.0.0.0/8", "0.0.0.0/0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(s, ["0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/16", "10.1.0.0/16"]);
    }

    #[test]
    fn containment() {
        let p: Prefix<Ipv6> = "2001:db8::/32".parse().unwrap();
        assert!(p.contains("2001:db8::1".parse().unwrap()));
        assert!(!p.contains("2001:db9::1".parse().unwrap()));
        assert!(Prefix::<Ipv6>::default_route().covers(&p));
        assert!(p.covers(&p));
    }
}
