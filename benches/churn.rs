//! Longest-prefix match under churn (issue 5): reader threads look up addresses inside table
//! prefixes while one writer withdraws and re-announces random table prefixes non-stop.
//!
//! A `harness = false` bench (criterion times one closure at a time; this needs threads running
//! side by side for a fixed time): every case runs for a fixed window, `REPEATS` times, and the
//! medians are printed and written to `benches/results/churn.csv`.
//!
//! - rtmgr: readers on the fast path (`Table::pin` once per 256 lookups + `Table::lookup_data`,
//!   the compiled forwarding table; and `Table::lookup_batch` on the same 256), the
//!   writer through `Registration::delete_route` + `add_route_with` (a flush of the epoch
//!   garbage every 16 updates, as in the load);
//! - rotonda-store: its own concurrency (withdraw = `mark_mui_as_withdrawn_for_prefix`,
//!   announce = `insert`);
//! - prefix-trie, ip_network_table, iptrie `RTrieMap`: behind `std::sync::RwLock`, a read lock
//!   per lookup (a packet), a write lock per update. (poptrie is left out: its single inserts
//!   rebuild contiguous arrays, tens of thousands per second at this size; the LCTrieMap and
//!   the DIR-24-8 array are immutable.)
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench churn                # ~3 min
//! RTMGR_BENCH_QUICK=1 cargo bench --bench churn                               # ~1 min
//! ```
//!
//! Reader counts other than 1 and 2 (the scaling run on a machine with more cores) and a subset
//! of the implementations (arguments: substrings of their names):
//!
//! ```text
//! RTMGR_CHURN_READERS=1,2,4,8,16 cargo bench --bench churn -- rtmgr prefix-trie rotonda
//! ```
//!
//! writes `churn-scaling.csv` instead of `churn.csv`.

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtmgr::{AddMode, Family, Ipv4, Route, RouteData, ViewSet};

/// A reader's loop body: looks up a batch of keys and folds the answers.
type Reader<'a> = &'a (dyn Fn(&[u128]) -> usize + Sync);

/// Lookups between two reads of the stop flag (and, for rtmgr, between two pins).
const READ_BATCH: usize = 256;

struct Outcome {
    lookups_per_s: f64,
    updates_per_s: f64,
}

/// Runs `readers` threads calling `read` on batches of `keys`, and (if given) one writer calling
/// `write(i)` for random line numbers `i` (one call = a withdrawal and a re-announcement = 2
/// updates), for `window`.
fn run(
    readers: usize,
    window: Duration,
    keys: &[u128],
    lines: usize,
    read: Reader<'_>,
    write: Option<&mut (dyn FnMut(usize) + Send)>,
) -> Outcome {
    let stop = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    let start = Barrier::new(readers + 2);
    let mut updates = 0u64;
    let elapsed = thread::scope(|s| {
        for r in 0..readers {
            let (stop, lookups, start) = (&stop, &lookups, &start);
            s.spawn(move || {
                let mut cursor = (r * keys.len() / readers.max(1)) / READ_BATCH * READ_BATCH;
                let mut n = 0u64;
                let mut acc = 0usize;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    acc = acc.wrapping_add(read(&keys[cursor..cursor + READ_BATCH]));
                    cursor = (cursor + READ_BATCH) % keys.len();
                    n += READ_BATCH as u64;
                }
                black_box(acc);
                lookups.fetch_add(n, Ordering::Relaxed);
            });
        }
        let writer = write.map(|w| {
            let (stop, start) = (&stop, &start);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(0x5eed);
                let mut n = 0u64;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    w(rng.random_range(0..lines));
                    n += 2;
                }
                n
            })
        });
        if writer.is_none() {
            // Nobody else waits for the writer's slot.
            s.spawn(|| start.wait());
        }
        start.wait();
        let t0 = Instant::now();
        thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let elapsed = t0.elapsed();
        if let Some(w) = writer {
            updates = w.join().expect("writer");
        }
        elapsed
    });
    let secs = elapsed.as_secs_f64();
    Outcome {
        lookups_per_s: lookups.load(Ordering::Relaxed) as f64 / secs,
        updates_per_s: updates as f64 / secs,
    }
}

/// rtmgr's readers: `Table::lookup_data` one by one, and `Table::lookup_batch`.
const RTMGR_READERS: [&str; 2] = ["rtmgr", "rtmgr lookup_batch"];

/// The name of a reader's case beside the control writer.
fn control_name(reader: &str) -> String {
    format!("{reader} (control writer)")
}

/// The reader counts to run: `RTMGR_CHURN_READERS` (comma-separated), else 1 and 2.
fn reader_counts() -> Vec<usize> {
    match std::env::var("RTMGR_CHURN_READERS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().unwrap_or_else(|e| panic!("RTMGR_CHURN_READERS: {n:?}: {e}")))
            .collect(),
        Err(_) => vec![1, 2],
    }
}

/// Whether the implementation `name` is selected: the bench's arguments that are not options are
/// substrings of the names to run; none selects all.
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    name: String,
    readers: usize,
    churn: bool,
    lookups_per_s: f64,
    updates_per_s: f64,
}

/// Runs one case `repeats` times and keeps the medians.
fn case(
    rows: &mut Vec<Row>,
    name: &str,
    readers: usize,
    repeats: usize,
    mut once: impl FnMut() -> Outcome,
    churn: bool,
) {
    let outcomes: Vec<Outcome> = (0..repeats).map(|_| once()).collect();
    let row = Row {
        name: name.to_string(),
        readers,
        churn,
        lookups_per_s: median(outcomes.iter().map(|o| o.lookups_per_s).collect()),
        updates_per_s: median(outcomes.iter().map(|o| o.updates_per_s).collect()),
    };
    println!(
        "{:<38} readers {} churn {:<5}  lookups {:>8.2} M/s   updates {:>7.3} M/s",
        row.name,
        row.readers,
        row.churn,
        row.lookups_per_s / 1e6,
        row.updates_per_s / 1e6
    );
    rows.push(row);
}

/// A peer behind a `RwLock`: no-churn and churn cases.
fn locked_peer<P: Peer>(
    rows: &mut Vec<Row>,
    anns: &[Ann<Ipv4>],
    keys: &[u128],
    window: Duration,
    repeats: usize,
    counts: &[usize],
) {
    let name = format!("{} + RwLock", P::NAME);
    if !selected(&name) {
        return;
    }
    let locked = Locked(RwLock::new(load_peer::<P, _>(anns)));
    let read = |ks: &[u128]| ks.iter().fold(0usize, |a, &k| a.wrapping_add(locked.probe(k)));
    for &readers in counts {
        case(rows, &name, readers, repeats, || run(readers, window, keys, anns.len(), &read, None), false);
        case(
            rows,
            &name,
            readers,
            repeats,
            || {
                let mut write = |i: usize| {
                    let a = &anns[i];
                    locked.withdraw((a.key, a.len));
                    locked.announce((a.key, a.len, a.asn));
                };
                run(readers, window, keys, anns.len(), &read, Some(&mut write))
            },
            true,
        );
    }
}

fn main() {
    let quick = quick();
    let window = Duration::from_secs_f64(if quick { 1.0 } else { 2.0 });
    let repeats = if quick { 1 } else { 3 };
    let anns = load::<Ipv4>(IPV4_FILE);
    let keys = addresses_inside(&anns, 1 << 20, 7);
    let counts = reader_counts();
    let mut rows = Vec::new();
    println!("IPv4, {} prefixes; {:?} per run, median of {repeats}", anns.len(), window);

    // ----- rtmgr
    if RTMGR_READERS.iter().any(|name| selected(name) || selected(&control_name(name))) {
        let Rtmgr { mut routes, hops, reg, table, .. } = Rtmgr::<Ipv4>::load(&anns);
        let mut routes: Vec<Option<Route<Ipv4>>> = routes.drain(..).map(Some).collect();
        let read = |ks: &[u128]| {
            let guard = table.pin();
            ks.iter().fold(0usize, |a, &k| a.wrapping_add(rtmgr_probe(&table, k, &guard)))
        };
        // The batched lookup (reads overlapped, see `Table::lookup_batch`), on the same addresses.
        let read_batch = |ks: &[u128]| {
            let addrs: Vec<_> = ks.iter().map(|&k| Ipv4::addr(k)).collect();
            let guard = table.pin();
            let mut out = Vec::with_capacity(ks.len());
            table.lookup_batch(&addrs, ViewSet::UNICAST, &guard, &mut out);
            out.iter()
                .fold(0usize, |a, d| a.wrapping_add(d.map_or(0, |d| d as *const RouteData<Ipv4> as usize)))
        };
        let readers_of: [(&str, Reader<'_>); 2] =
            [(RTMGR_READERS[0], &read), (RTMGR_READERS[1], &read_batch)];
        for (name, read) in readers_of.into_iter().filter(|(name, _)| selected(name)) {
            for &readers in &counts {
                case(
                    &mut rows,
                    name,
                    readers,
                    repeats,
                    || run(readers, window, &keys, anns.len(), read, None),
                    false,
                );
                case(
                    &mut rows,
                    name,
                    readers,
                    repeats,
                    || {
                        let mut since_flush = 0;
                        let mut write = |i: usize| {
                            let a = &anns[i];
                            let old = routes[i].take().expect("route held");
                            reg.delete_route(old).expect("delete_route");
                            let nh = hops[&a.asn].clone();
                            let (new, _) = reg
                                .add_route_with(a.prefix, RouteData::new(vec![nh]), AddMode::New)
                                .expect("add_route");
                            routes[i] = Some(new);
                            since_flush += 2;
                            if since_flush >= ROUTES_PER_FLUSH {
                                rtmgr::collect_garbage();
                                since_flush = 0;
                            }
                        };
                        run(readers, window, &keys, anns.len(), read, Some(&mut write))
                    },
                    true,
                );
            }
        }
        // The control: the same readers beside a writer that only reads memory at random
        // (512 MiB, 50 reads per "update"), not the table. What readers lose here is what any
        // busy thread on the next core costs them (shared caches, memory bandwidth, sibling
        // hyperthreads); the rest of what they lose beside the rtmgr writer is interference.
        let controls: Vec<(String, Reader<'_>)> = readers_of
            .into_iter()
            .map(|(name, read)| (control_name(name), read))
            .filter(|(control, _)| selected(control))
            .collect();
        if !controls.is_empty() {
            let unrelated: Vec<u64> = (0..(64u64 << 20)).collect();
            for (control, read) in controls {
                for &readers in &counts {
                    case(
                        &mut rows,
                        &control,
                        readers,
                        repeats,
                        || {
                            let mut rng = SmallRng::seed_from_u64(1);
                            let mut write = |_: usize| {
                                let sum = (0..50).fold(0u64, |a, _| {
                                    a.wrapping_add(unrelated[rng.random_range(0..unrelated.len())])
                                });
                                black_box(sum);
                            };
                            run(readers, window, &keys, anns.len(), read, Some(&mut write))
                        },
                        true,
                    );
                }
            }
        }
        drop(routes);
        drop(reg);
        drop(table);
        rtmgr::collect_garbage();
    }

    // ----- peers
    locked_peer::<PrefixTrie4>(&mut rows, &anns, &keys, window, repeats, &counts);
    locked_peer::<IpNetworkTable4>(&mut rows, &anns, &keys, window, repeats, &counts);
    locked_peer::<IpTrie4>(&mut rows, &anns, &keys, window, repeats, &counts);
    if selected("rotonda-store") {
        let rot = Rotonda::load(&anns);
        let read = |ks: &[u128]| {
            ks.iter().fold(0usize, |a, &k| a.wrapping_add(rot.lookup::<Ipv4>(k).map_or(0, usize::from)))
        };
        for &readers in &counts {
            case(
                &mut rows,
                "rotonda-store",
                readers,
                repeats,
                || run(readers, window, &keys, anns.len(), &read, None),
                false,
            );
            case(
                &mut rows,
                "rotonda-store",
                readers,
                repeats,
                || {
                    let mut write = |i: usize| {
                        let a = &anns[i];
                        rot.withdraw::<Ipv4>(a.key, a.len);
                        rot.announce::<Ipv4>(a.key, a.len);
                    };
                    run(readers, window, &keys, anns.len(), &read, Some(&mut write))
                },
                true,
            );
        }
    }

    let mut csv = String::from("implementation,readers,churn,lookups_per_s,updates_per_s\n");
    for r in &rows {
        writeln!(csv, "{},{},{},{:.0},{:.0}", r.name, r.readers, r.churn, r.lookups_per_s, r.updates_per_s)
            .expect("write to a String");
    }
    let file = match (std::env::var_os("RTMGR_CHURN_READERS").is_some(), quick) {
        (true, _) => "churn-scaling.csv",
        (false, true) => "churn-quick.csv",
        (false, false) => "churn.csv",
    };
    let path = results_dir().join(file);
    std::fs::write(&path, csv).expect("write churn.csv");
    println!("wrote {}", path.display());
}
