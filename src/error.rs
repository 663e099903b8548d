//! The one error type of rtmgr (spec §3).

use std::fmt;

/// Everything that can go wrong in a call to rtmgr.
///
/// Each variant maps to the Win32 code the original RTM returned ([`Error::win32_code`]), so a
/// C ABI can report it unchanged.
///
/// # Example
///
/// ```
/// use rtmgr::{Error, Ipv4, Prefix};
///
/// let err = "10.0.0.1/8".parse::<Prefix<Ipv4>>().unwrap_err();
/// assert!(matches!(err, Error::InvalidParameter(_)));
/// assert_eq!(err.win32_code(), 87);
/// assert!(err.to_string().contains("host bits"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The handle belongs to another table, to a deregistered entity, or was closed.
    InvalidHandle(&'static str),
    /// The caller does not own the object it tried to change or use.
    AccessDenied(&'static str),
    /// An argument is malformed; the text says which and why.
    InvalidParameter(String),
    /// The object asked for does not exist (or no longer does).
    NotFound,
    /// An enumeration has nothing more to return.
    NoMoreItems,
    /// An object with the same identity already exists.
    AlreadyExists,
    /// The operation or the value (e.g. a view id) is not supported.
    NotSupported(&'static str),
    /// A configured limit was reached.
    NoSystemResources(&'static str),
    /// An allocation limit was reached.
    NotEnoughMemory,
    /// RTMv1: no route matches the enumeration criteria.
    NoRoutes,
    /// RTMv1: the enumeration has returned every matching route.
    NoMoreRoutes,
    /// RTMv1: the route asked for does not exist.
    NoSuchRoute,
    /// RTMv1: no change message is queued.
    NoMessages,
}

impl Error {
    /// The Win32 error code the original RTM API returned for this error.
    ///
    /// ```
    /// assert_eq!(rtmgr::Error::NotFound.win32_code(), 1168);
    /// ```
    pub fn win32_code(&self) -> u32 {
        match self {
            Error::InvalidHandle(_) => 6,
            Error::AccessDenied(_) => 5,
            Error::InvalidParameter(_) => 87,
            Error::NotFound => 1168,
            Error::NoMoreItems => 259,
            Error::AlreadyExists => 183,
            Error::NotSupported(_) => 50,
            Error::NoSystemResources(_) => 1450,
            Error::NotEnoughMemory => 8,
            Error::NoRoutes | Error::NoMoreRoutes | Error::NoSuchRoute | Error::NoMessages => 259,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>) -> Self {
        Error::InvalidParameter(what.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidHandle(why) => write!(f, "invalid handle: {why}"),
            Error::AccessDenied(why) => write!(f, "access denied: {why}"),
            Error::InvalidParameter(why) => write!(f, "invalid parameter: {why}"),
            Error::NotFound => f.write_str("not found"),
            Error::NoMoreItems => f.write_str("no more items"),
            Error::AlreadyExists => f.write_str("already exists"),
            Error::NotSupported(why) => write!(f, "not supported: {why}"),
            Error::NoSystemResources(why) => write!(f, "limit reached: {why}"),
            Error::NotEnoughMemory => f.write_str("not enough memory"),
            Error::NoRoutes => f.write_str("no routes match the criteria"),
            Error::NoMoreRoutes => f.write_str("no more routes"),
            Error::NoSuchRoute => f.write_str("no such route"),
            Error::NoMessages => f.write_str("no messages"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_win32() {
        assert_eq!(Error::InvalidHandle("x").win32_code(), 6);
        assert_eq!(Error::AccessDenied("x").win32_code(), 5);
        assert_eq!(Error::invalid("x").win32_code(), 87);
        assert_eq!(Error::AlreadyExists.win32_code(), 183);
        assert_eq!(Error::NotSupported("x").win32_code(), 50);
        assert_eq!(Error::NoSystemResources("x").win32_code(), 1450);
        assert_eq!(Error::NotEnoughMemory.win32_code(), 8);
        assert_eq!(Error::NoMoreRoutes.win32_code(), 259);
    }

    #[test]
    fn messages_say_what_was_wrong() {
        let e = Error::invalid("prefix length 33 exceeds 32");
        assert_eq!(e.to_string(), "invalid parameter: prefix length 33 exceeds 32");
    }
}
