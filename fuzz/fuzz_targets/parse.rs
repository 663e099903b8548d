//! Every constructor that takes user input: `Prefix::from_str`, `Prefix::new`,
//! `Prefix::truncate`, `TryFrom<IpNet>`, `ViewSet::view`, `Table::with_config`. Each answer is
//! checked against an independent statement of the rule (or against `ipnet`'s parser), and every
//! value accepted must round-trip through its text form.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rtmgr::{Family, Ipv4, Ipv6, Prefix, Table, TableConfig, ViewSet};

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    /// Text for `Prefix::from_str` (both families) and for `ipnet`.
    Text(&'a str),
    V4 {
        addr: u32,
        len: u8,
    },
    V6 {
        addr: u128,
        len: u8,
    },
    View(u8),
    Config {
        max_next_hops: usize,
        max_batch: usize,
    },
}

/// The mask of the first `len` bits of a `bits`-wide address (`len <= bits`).
fn mask(bits: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX << (128 - len as u32)) >> (128 - bits as u32)
    }
}

/// Checks what holds for every prefix the crate accepts.
fn accepted<F: Family>(p: Prefix<F>, raw: u128) {
    assert!(p.len() <= F::BITS);
    assert_eq!(raw & !mask(F::BITS, p.len()), 0, "{p}: host bits set");
    let text = p.to_string();
    let back: Prefix<F> = text.parse().unwrap_or_else(|e| panic!("{text} does not parse back: {e}"));
    assert_eq!(back, p);
    assert_eq!(back.cmp(&p), std::cmp::Ordering::Equal);
    assert_eq!(Prefix::<F>::new(p.addr(), p.len()), Ok(p));
    assert!(p.contains(p.addr()));
    assert!(p.covers(&p));
    assert!(Prefix::<F>::default_route().covers(&p));
}

fn text<F: Family>(s: &str) {
    let ours = s.parse::<Prefix<F>>();
    if let Ok(p) = ours {
        let raw = match p.addr().to_string().parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => u32::from(a) as u128,
            IpAddr::V6(a) => u128::from(a),
        };
        accepted(p, raw);
    }
    // Whatever `ipnet` accepts as a network of this family with no host bits set, we accept
    // as the same prefix (we also accept a bare address, which `ipnet` does not). Addresses are
    // std's syntax, which is stricter than `ipnet`'s (no leading zeros in an IPv4 octet: "02"
    // could be read as octal), so the comparison holds where std parses the address part.
    let std_addr = s.split_once('/').map_or(s, |(a, _)| a).parse::<IpAddr>().is_ok();
    if let (true, Ok(net)) = (std_addr, s.parse::<ipnet::IpNet>()) {
        let family_ok = matches!((net, F::BITS), (ipnet::IpNet::V4(_), 32) | (ipnet::IpNet::V6(_), 128));
        if family_ok && net.trunc() == net {
            let p = ours.as_ref().unwrap_or_else(|e| panic!("{s:?}: ipnet accepts {net}, we say {e}"));
            assert_eq!(p.len(), net.prefix_len());
            assert_eq!(p.to_string(), net.to_string());
            assert_eq!(Prefix::<F>::try_from(net).as_ref(), Ok(p));
        } else {
            assert!(Prefix::<F>::try_from(net).is_err(), "{net}: wrong family or host bits, accepted");
        }
    }
}

fn v4(addr: u32, len: u8) {
    let a = Ipv4Addr::from(addr);
    let host_bits = len <= 32 && (addr as u128) & !mask(32, len) != 0;
    match Prefix::<Ipv4>::new(a, len) {
        Ok(p) => {
            assert!(len <= 32 && !host_bits);
            accepted(p, addr as u128);
        }
        Err(_) => assert!(len > 32 || host_bits),
    }
    match Prefix::<Ipv4>::truncate(a, len) {
        Ok(p) => {
            assert!(len <= 32);
            assert_eq!(p.len(), len);
            assert!(p.contains(a));
            accepted(p, u32::from(p.addr()) as u128);
        }
        Err(_) => assert!(len > 32),
    }
    if let Ok(net) = ipnet::Ipv4Net::new(a, len) {
        let ours = Prefix::<Ipv4>::try_from(ipnet::IpNet::V4(net));
        assert_eq!(ours.is_ok(), !host_bits);
        if let Ok(p) = ours {
            assert_eq!(ipnet::Ipv4Net::from(p), net);
        }
        assert!(Prefix::<Ipv6>::try_from(ipnet::IpNet::V4(net)).is_err());
    }
}

fn v6(addr: u128, len: u8) {
    let a = Ipv6Addr::from(addr);
    let host_bits = len <= 128 && addr & !mask(128, len) != 0;
    match Prefix::<Ipv6>::new(a, len) {
        Ok(p) => {
            assert!(len <= 128 && !host_bits);
            accepted(p, addr);
        }
        Err(_) => assert!(len > 128 || host_bits),
    }
    match Prefix::<Ipv6>::truncate(a, len) {
        Ok(p) => {
            assert!(len <= 128);
            assert!(p.contains(a));
            accepted(p, u128::from(p.addr()));
        }
        Err(_) => assert!(len > 128),
    }
    if let Ok(net) = ipnet::Ipv6Net::new(a, len) {
        let ours = Prefix::<Ipv6>::try_from(ipnet::IpNet::V6(net));
        assert_eq!(ours.is_ok(), !host_bits);
        if let Ok(p) = ours {
            assert_eq!(ipnet::Ipv6Net::from(p), net);
        }
        assert!(Prefix::<Ipv4>::try_from(ipnet::IpNet::V6(net)).is_err());
    }
}

fuzz_target!(|input: Input| match input {
    Input::Text(s) => {
        text::<Ipv4>(s);
        text::<Ipv6>(s);
    }
    Input::V4 { addr, len } => v4(addr, len),
    Input::V6 { addr, len } => v6(addr, len),
    Input::View(id) => match ViewSet::view(id) {
        Ok(v) => {
            assert!(id < 32);
            assert_eq!(v.bits(), 1 << id);
        }
        Err(_) => assert!(id >= 32),
    },
    Input::Config { max_next_hops, max_batch } => {
        let config = TableConfig { max_next_hops, max_batch, ..TableConfig::default() };
        match Table::<Ipv4>::with_config(config) {
            Ok(t) => {
                assert!(max_next_hops >= 1 && max_batch >= 1);
                assert_eq!(t.config(), config);
            }
            Err(_) => assert!(max_next_hops == 0 || max_batch == 0),
        }
        // Free the table's memory now, not in a later input (see table_ops.rs, `settle`).
        for _ in 0..16 {
            rtmgr::collect_garbage();
        }
    }
});
