//! The write path alone, for profilers: loads the first `N` prefixes of the shipped IPv4 table
//! (one entity, a next hop per origin AS, `add_route_with` per line, a garbage flush every 16
//! routes, as `benches/compare.rs` loads rtmgr), then withdraws and re-announces `U` random
//! loaded prefixes (`delete_route` + `add_route_with`, as the writer of `benches/churn.rs`),
//! then deregisters the entity. Prints the wall time of each phase.
//!
//! Timing figures belong to the benches; this binary exists so that an instruction profile of
//! the write path can be reproduced:
//!
//! ```text
//! cargo build --release --example write_profile
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/write_profile 100000 20000
//! callgrind_annotate /tmp/cg.out | head -60
//! ```
//!
//! Arguments: `N` (default: the whole table), `U` (default 100,000), and `batch` to load with
//! `add_routes`, 4,096 lines a call, instead of one `add_route_with` per line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Instant;

use flate2::read::GzDecoder;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtmgr::{AddMode, EntityConfig, EntityId, Ipv4, NextHop, NextHopData, Prefix, RouteData, Table};

const ROUTES_PER_FLUSH: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batched = std::env::args().any(|a| a == "batch");
    let mut args = std::env::args().skip(1).filter(|a| a != "batch").map(|a| a.parse::<usize>());
    let limit = args.next().transpose()?.unwrap_or(usize::MAX);
    let updates = args.next().transpose()?.unwrap_or(100_000);

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/ipv4-prefixes.txt.gz");
    let mut lines = Vec::new();
    for line in BufReader::new(GzDecoder::new(std::fs::File::open(path)?)).lines().take(limit) {
        let line = line?;
        let mut fields = line.split_whitespace();
        let prefix: Prefix<Ipv4> = fields.next().ok_or("empty line")?.parse()?;
        let asn: u32 = fields.next().ok_or("no origin AS")?.parse()?;
        lines.push((prefix, asn));
    }

    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0)).default_preference(170))?;
    let mut hops = HashMap::new();
    let mut routes = Vec::with_capacity(lines.len());
    let start = Instant::now();
    let mut next_hop = |asn: u32| -> Result<NextHop<Ipv4>, rtmgr::Error> {
        if let Some(nh) = hops.get(&asn) {
            return Ok(Clone::clone(nh));
        }
        let addr = std::net::Ipv4Addr::from(0x0a00_0000 | (asn & 0x00ff_ffff));
        let (nh, _) = reg.add_next_hop(addr, 1 + (asn >> 24), NextHopData::default())?;
        hops.insert(asn, nh.clone());
        Ok(nh)
    };
    if batched {
        for chunk in lines.chunks(4096) {
            let batch = chunk
                .iter()
                .map(|&(prefix, asn)| Ok((prefix, RouteData::new(vec![next_hop(asn)?]))))
                .collect::<Result<Vec<_>, rtmgr::Error>>()?;
            for (outcome, &(_, asn)) in reg.add_routes(batch, AddMode::New)?.into_iter().zip(chunk) {
                routes.push((Some(outcome?.0), asn));
            }
            rtmgr::collect_garbage();
        }
    } else {
        for (i, &(prefix, asn)) in lines.iter().enumerate() {
            let nh = next_hop(asn)?;
            // Duplicate lines keep their first route.
            if let Ok((route, _)) = reg.add_route_with(prefix, RouteData::new(vec![nh]), AddMode::New) {
                routes.push((Some(route), asn));
            }
            if i % ROUTES_PER_FLUSH == ROUTES_PER_FLUSH - 1 {
                rtmgr::collect_garbage();
            }
        }
    }
    let load = start.elapsed();

    let mut rng = SmallRng::seed_from_u64(5);
    let start = Instant::now();
    for u in 0..updates {
        let i = rng.random_range(0..routes.len());
        let asn = routes[i].1;
        // Withdraw, then announce again: the churn bench's order.
        let old = routes[i].0.take().ok_or("route held")?;
        let prefix = old.prefix();
        reg.delete_route(old)?;
        let (new, _) = reg.add_route_with(prefix, RouteData::new(vec![hops[&asn].clone()]), AddMode::New)?;
        routes[i].0 = Some(new);
        if u % (ROUTES_PER_FLUSH / 2) == 0 {
            rtmgr::collect_garbage();
        }
    }
    let churn = start.elapsed();

    let start = Instant::now();
    drop(routes);
    reg.deregister();
    rtmgr::collect_garbage();
    let teardown = start.elapsed();
    println!(
        "{} routes: load {:.3} s ({:.3} M routes/s), {updates} updates {:.3} s ({:.1} k/s), deregister {:.3} s",
        lines.len(),
        load.as_secs_f64(),
        lines.len() as f64 / load.as_secs_f64() / 1e6,
        churn.as_secs_f64(),
        updates as f64 / churn.as_secs_f64() / 1e3,
        teardown.as_secs_f64(),
    );
    Ok(())
}
