//! rtmgr side by side with the crates users pick today, on the shipped real tables (issue 5):
//! load, longest-prefix match (IPv4 and IPv6, addresses inside table prefixes and uniform),
//! handle reference + release against the guard-scoped fast path, snapshot creation, and
//! enumeration throughput. The churn workload is `benches/churn.rs`, memory `benches/memory.rs`.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench compare            # ~6 min
//! RTMGR_BENCH_QUICK=1 cargo bench --bench compare                            # ~3 min
//! cargo bench --bench compare -- ipv4_lpm_inside                             # one group
//! ```
//!
//! Every LPM case streams through a million pre-drawn addresses, 1024 per criterion iteration
//! (so caches hold what a real lookup stream leaves in them, not one hot batch), and every
//! implementation's answers are checked equal (a checksum of matched prefix lengths) before
//! anything is timed. Criterion reports the median time per iteration and elements/s;
//! `benches/chart.py` collects the medians into `benches/results/`.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use common::*;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use rtmgr::{DestOptions, Family, ForwardingLayout, Ipv4, Ipv6, RouteData, Selector, TableConfig, ViewSet};

/// Lookups per criterion iteration.
const BATCH: usize = 1024;
/// Pre-drawn addresses per workload.
const KEYS: usize = 1 << 20;
/// Addresses the cross-check covers (rotonda-store does ~0.5 M lookups/s).
const CHECKED: usize = 1 << 17;

fn main() {
    let mut c = common::criterion();
    let mut loads = Vec::new();
    ipv4(&mut c, &mut loads);
    ipv6(&mut c, &mut loads);
    c.final_summary();
    if !loads.is_empty() {
        write_loads(&loads);
    }
}

/// One LPM case: `run` looks up a batch and folds the answers.
fn lpm_case(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, keys: &[u128], run: impl Fn(&[u128]) -> usize) {
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut cursor = 0;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let batch = &keys[cursor..cursor + BATCH];
                cursor = (cursor + BATCH) % keys.len();
                black_box(run(black_box(batch)));
            }
            start.elapsed()
        })
    });
}

/// Whether the command line's filter (criterion's first free argument) selects `group`; the
/// hand-timed load groups honour it too.
fn selected(group: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .is_none_or(|f| group.contains(&f) || f.starts_with(group))
}

/// Thread CPU time: on a shared machine it moves far less than wall time for a
/// single-threaded load.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes into the struct we pass; zeroed is a valid `rusage`.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a `rusage`; RUSAGE_THREAD is supported on Linux.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
    let us =
        |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    us(u.ru_utime) + us(u.ru_stime)
}

/// The load workload, timed by hand (criterion insists on 10 samples, and tearing an rtmgr
/// table down by deregistration takes longer than loading it): `build` loads the whole table
/// `LOAD_REPEATS` times; the medians of the build's wall and thread-CPU time are printed and
/// appended to `rows`; the drop is timed apart.
fn load_case<T>(rows: &mut Vec<String>, family: &str, name: &str, lines: usize, build: impl Fn() -> T) {
    let repeats = if quick() { 1 } else { 3 };
    let (mut wall, mut cpu, mut drops) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats {
        let (w0, c0) = (Instant::now(), cpu_time());
        let t = black_box(build());
        wall.push(w0.elapsed());
        cpu.push(cpu_time() - c0);
        let d0 = Instant::now();
        drop(t);
        rtmgr::collect_garbage();
        drops.push(d0.elapsed());
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (wall, cpu, drop_time) = (median(wall), median(cpu), median(drops));
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!(
        "{family}_load/{name:<38} wall {:>9.3?} ({:>6.2} M/s)  cpu {:>9.3?} ({:>6.2} M/s)  drop {:>9.3?}",
        wall,
        rate(wall) / 1e6,
        cpu,
        rate(cpu) / 1e6,
        drop_time
    );
    rows.push(format!(
        "{family},{name},{lines},{:.4},{:.0},{:.4},{:.0},{:.4}",
        wall.as_secs_f64(),
        rate(wall),
        cpu.as_secs_f64(),
        rate(cpu),
        drop_time.as_secs_f64()
    ));
}

/// Writes the load rows to `benches/results/load.csv` (`load-quick.csv` in quick mode).
fn write_loads(rows: &[String]) {
    let mut csv = String::from("family,implementation,lines,wall_s,wall_per_s,cpu_s,cpu_per_s,drop_s\n");
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    let path = results_dir().join(if quick() { "load-quick.csv" } else { "load.csv" });
    std::fs::write(&path, csv).expect("write load.csv");
}

#[inline]
fn fold<L: Lpm>(l: &L, keys: &[u128]) -> usize {
    keys.iter().fold(0usize, |acc, &k| acc.wrapping_add(l.probe(k)))
}

#[inline]
/// rtmgr's batched lookup ([`rtmgr::Table::lookup_batch`]: reads of many lookups overlapped) over the
/// addresses of `keys`' batch; `addrs` holds every key of the workload as an address.
fn fold_rtmgr_batch<F: BenchFamily>(t: &Rtmgr<F>, all: &[u128], addrs: &[F::Addr], keys: &[u128]) -> usize {
    // `keys` is a window of `all`: the same window of `addrs`.
    let start = (keys.as_ptr() as usize - all.as_ptr() as usize) / std::mem::size_of::<u128>();
    let guard = t.table.pin();
    let mut out = Vec::with_capacity(keys.len());
    t.table.lookup_batch(&addrs[start..start + keys.len()], ViewSet::UNICAST, &guard, &mut out);
    out.iter().fold(0usize, |acc, d| acc.wrapping_add(d.map_or(0, |d| d as *const RouteData<F> as usize)))
}

fn fold_rtmgr_tree<F: BenchFamily>(t: &Rtmgr<F>, keys: &[u128]) -> usize {
    let guard = t.table.pin();
    keys.iter().fold(0usize, |acc, &k| acc.wrapping_add(rtmgr_tree_probe(&t.table, k, &guard)))
}

fn fold_rtmgr<F: BenchFamily>(t: &Rtmgr<F>, keys: &[u128]) -> usize {
    let guard = t.table.pin();
    keys.iter().fold(0usize, |acc, &k| acc.wrapping_add(rtmgr_probe(&t.table, k, &guard)))
}

/// rtmgr's three LPM cases on one workload: `lookup_data` one by one, `lookup_batch` (first
/// checked to answer like `lookup_data`) and the tree walk.
fn rtmgr_lpm_cases<F: BenchFamily>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    group: &str,
    keys: &[u128],
    rt: &Rtmgr<F>,
    compact: Option<&Rtmgr<F>>,
) {
    lpm_case(g, "rtmgr", keys, |ks| fold_rtmgr(rt, ks));
    let addrs: Vec<F::Addr> = keys.iter().map(|&k| F::addr(k)).collect();
    let checked = &keys[..CHECKED];
    let batched = fold_rtmgr_batch(rt, keys, &addrs, checked);
    assert_eq!(batched, fold_rtmgr(rt, checked), "{group}: lookup_batch answers differ from lookup");
    lpm_case(g, "rtmgr lookup_batch", keys, |ks| fold_rtmgr_batch(rt, keys, &addrs, ks));
    if let Some(compact) = compact {
        // The same table in the compact forwarding layout (IPv4 only: IPv6 always has it),
        // cross-checked with the others by the caller.
        lpm_case(g, "rtmgr compact", keys, |ks| fold_rtmgr(compact, ks));
        lpm_case(g, "rtmgr compact lookup_batch", keys, |ks| fold_rtmgr_batch(compact, keys, &addrs, ks));
    }
    lpm_case(g, "rtmgr tree walk", keys, |ks| fold_rtmgr_tree(rt, ks));
}

/// Checks that every implementation answers like the first one; panics otherwise.
fn cross_check(what: &str, keys: &[u128], impls: &[&dyn Lpm]) {
    let keys = &keys[..CHECKED.min(keys.len())];
    let sums: Vec<(&str, u64)> = impls.iter().map(|l| (l.name(), checksum(*l, keys))).collect();
    eprintln!("{what}: checksums {sums:?}");
    for (name, sum) in &sums {
        assert_eq!(*sum, sums[0].1, "{what}: {name} answers differ from {}", sums[0].0);
    }
}

fn ipv4(c: &mut Criterion, loads: &mut Vec<String>) {
    let anns = load::<Ipv4>(IPV4_FILE);
    let n = anns.len();

    // ----- load: every line inserted one by one
    {
        let r = &mut *loads;
        if selected("ipv4_load") {
            load_case(r, "ipv4", "rtmgr", n, || Rtmgr::<Ipv4>::load_only(&anns));
            load_case(r, "ipv4", "rtmgr shared route data", n, || {
                Rtmgr::<Ipv4>::load_only_into(Rtmgr::new().sharing_data(), &anns)
            });
            load_case(r, "ipv4", "rtmgr add_routes, batches of 4096", n, || {
                Rtmgr::<Ipv4>::load_batched_into(Rtmgr::new(), &anns)
            });
            load_case(r, "ipv4", "rtmgr add_routes, shared route data", n, || {
                Rtmgr::<Ipv4>::load_batched_into(Rtmgr::new().sharing_data(), &anns)
            });
            let compact =
                TableConfig { forwarding_layout: ForwardingLayout::Compact, ..TableConfig::default() };
            load_case(r, "ipv4", "rtmgr compact forwarding", n, || {
                Rtmgr::<Ipv4>::load_only_into(Rtmgr::with_config(compact), &anns)
            });
            load_case(r, "ipv4", "prefix-trie", n, || load_peer::<PrefixTrie4, _>(&anns));
            load_case(r, "ipv4", "ip_network_table", n, || load_peer::<IpNetworkTable4, _>(&anns));
            load_case(r, "ipv4", "iptrie RTrieMap", n, || load_peer::<IpTrie4, _>(&anns));
            load_case(r, "ipv4", "iptrie LCTrieMap (load + compress)", n, || LcTrie4::load(&anns));
            load_case(r, "ipv4", "poptrie (bulk build)", n, || Poptrie4::build(&anns));
            load_case(r, "ipv4", "rotonda-store", n, || Rotonda::load(&anns));
            load_case(r, "ipv4", "DIR-24-8 array (bulk build)", n, || Dir248::build(&anns));
        }
    }

    let groups = ["ipv4_lpm_inside", "ipv4_lpm_uniform", "ipv4_handles", "ipv4_snapshot", "ipv4_enumerate"];
    if !groups.iter().any(|g| selected(g)) {
        return;
    }

    // ----- longest match on one thread
    let rt = Rtmgr::<Ipv4>::load(&anns);
    let compact_config =
        TableConfig { forwarding_layout: ForwardingLayout::Compact, ..TableConfig::default() };
    let rt_compact = Rtmgr::<Ipv4>::load_only_into(Rtmgr::with_config(compact_config), &anns);
    let pt = AsLpm(load_peer::<PrefixTrie4, _>(&anns));
    let int = AsLpm(load_peer::<IpNetworkTable4, _>(&anns));
    let rtrie = AsLpm(load_peer::<IpTrie4, _>(&anns));
    let lctrie = LcTrie4::load(&anns);
    let pop = AsLpm(Poptrie4::build(&anns));
    let rot = RotondaLpm::<Ipv4>(Rotonda::load(&anns), PhantomData);
    let dir = Dir248::build(&anns);
    let all: [&dyn Lpm; 9] = [&dir, &rt, &rt_compact, &pt, &int, &rtrie, &lctrie, &pop, &rot];
    for (group, keys) in [
        ("ipv4_lpm_inside", addresses_inside(&anns, KEYS, 1)),
        ("ipv4_lpm_uniform", addresses_uniform::<Ipv4>(KEYS, 2)),
    ] {
        cross_check(group, &keys, &all);
        let mut g = c.benchmark_group(group);
        lpm_case(&mut g, "DIR-24-8 array", &keys, |ks| fold(&dir, ks));
        rtmgr_lpm_cases(&mut g, group, &keys, &rt, Some(&rt_compact));
        lpm_case(&mut g, "prefix-trie", &keys, |ks| fold(&pt, ks));
        lpm_case(&mut g, "ip_network_table", &keys, |ks| fold(&int, ks));
        lpm_case(&mut g, "iptrie RTrieMap", &keys, |ks| fold(&rtrie, ks));
        lpm_case(&mut g, "iptrie LCTrieMap", &keys, |ks| fold(&lctrie, ks));
        lpm_case(&mut g, "poptrie", &keys, |ks| fold(&pop, ks));
        lpm_case(&mut g, "rotonda-store", &keys, |ks| fold(&rot, ks));
        g.finish();
    }
    drop((pt, int, rtrie, lctrie, pop, rot, dir, rt_compact));

    // ----- handles: a counted reference taken and released, against the fast path
    {
        let keys = addresses_inside(&anns, KEYS, 3);
        let mut g = c.benchmark_group("ipv4_handles");
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut cursor = 0;
        g.bench_function("Route clone + drop", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for r in &rt.routes[cursor..cursor + BATCH] {
                        drop(black_box(r.clone()));
                    }
                    cursor = (cursor + BATCH) % (rt.routes.len() - BATCH);
                }
                start.elapsed()
            })
        });
        lpm_case(&mut g, "most_specific (counted handles)", &keys, |ks| {
            ks.iter()
                .map(|&k| {
                    rt.table.most_specific(Ipv4::addr(k), ViewSet::UNICAST, Selector::Best).is_ok() as usize
                })
                .sum()
        });
        lpm_case(&mut g, "pin + lookup per address", &keys, |ks| {
            ks.iter().fold(0usize, |acc, &k| acc.wrapping_add(rt.probe(k)))
        });
        lpm_case(&mut g, "lookup, one guard per 1024", &keys, |ks| fold_rtmgr(&rt, ks));
        g.finish();
    }

    // ----- snapshots (an enumeration opened and closed) and enumeration throughput
    {
        let small = Rtmgr::<Ipv4>::load(&sample(&anns, 10_000, 4));
        let mut g = c.benchmark_group("ipv4_snapshot");
        g.bench_function("rtmgr 10k", |b| {
            b.iter(|| small.table.enumerate_destinations(DestOptions::default()).expect("enumerate"))
        });
        g.bench_function("rtmgr full", |b| {
            b.iter(|| rt.table.enumerate_destinations(DestOptions::default()).expect("enumerate"))
        });
        g.finish();
    }
    {
        let pt = load_peer::<PrefixTrie4, _>(&anns);
        let dests = rt.table.destination_count() as u64;
        let mut g = c.benchmark_group("ipv4_enumerate");
        g.sampling_mode(SamplingMode::Flat).throughput(Throughput::Elements(dests));
        g.bench_function("rtmgr Iterator", |b| {
            b.iter(|| rt.table.enumerate_destinations(DestOptions::default()).expect("enumerate").count())
        });
        g.bench_function("rtmgr next_batch", |b| {
            b.iter(|| {
                let max = rt.table.config().max_batch;
                let mut e = rt.table.enumerate_destinations(DestOptions::default()).expect("enumerate");
                let mut n = 0;
                while let Ok(batch) = e.next_batch(max) {
                    n += batch.len();
                }
                n
            })
        });
        g.bench_function("prefix-trie iter", |b| b.iter(|| pt.0.iter().count()));
        g.finish();
    }
    drop(rt);
    rtmgr::collect_garbage();
}

fn ipv6(c: &mut Criterion, loads: &mut Vec<String>) {
    let anns = load::<Ipv6>(IPV6_FILE);
    let n = anns.len();
    {
        let r = &mut *loads;
        if selected("ipv6_load") {
            load_case(r, "ipv6", "rtmgr", n, || Rtmgr::<Ipv6>::load_only(&anns));
            load_case(r, "ipv6", "rtmgr shared route data", n, || {
                Rtmgr::<Ipv6>::load_only_into(Rtmgr::new().sharing_data(), &anns)
            });
            load_case(r, "ipv6", "rtmgr add_routes, batches of 4096", n, || {
                Rtmgr::<Ipv6>::load_batched_into(Rtmgr::new(), &anns)
            });
            load_case(r, "ipv6", "rtmgr add_routes, shared route data", n, || {
                Rtmgr::<Ipv6>::load_batched_into(Rtmgr::new().sharing_data(), &anns)
            });
            load_case(r, "ipv6", "prefix-trie", n, || load_peer::<PrefixTrie6, _>(&anns));
            load_case(r, "ipv6", "ip_network_table", n, || load_peer::<IpNetworkTable6, _>(&anns));
            load_case(r, "ipv6", "iptrie RTrieMap", n, || load_peer::<IpTrie6, _>(&anns));
            load_case(r, "ipv6", "iptrie LCTrieMap (load + compress)", n, || LcTrie6::load(&anns));
            load_case(r, "ipv6", "poptrie (bulk build)", n, || Poptrie6::build(&anns));
            load_case(r, "ipv6", "rotonda-store", n, || Rotonda::load(&anns));
        }
    }
    if !["ipv6_lpm_inside", "ipv6_lpm_uniform"].iter().any(|g| selected(g)) {
        return;
    }
    let rt = Rtmgr::<Ipv6>::load(&anns);
    let pt = AsLpm(load_peer::<PrefixTrie6, _>(&anns));
    let int = AsLpm(load_peer::<IpNetworkTable6, _>(&anns));
    let rtrie = AsLpm(load_peer::<IpTrie6, _>(&anns));
    let lctrie = LcTrie6::load(&anns);
    let pop = AsLpm(Poptrie6::build(&anns));
    let rot = RotondaLpm::<Ipv6>(Rotonda::load(&anns), PhantomData);
    let all: [&dyn Lpm; 7] = [&rt, &pt, &int, &rtrie, &lctrie, &pop, &rot];
    for (group, keys) in [
        ("ipv6_lpm_inside", addresses_inside(&anns, KEYS, 5)),
        ("ipv6_lpm_uniform", addresses_uniform::<Ipv6>(KEYS, 6)),
    ] {
        cross_check(group, &keys, &all);
        let mut g = c.benchmark_group(group);
        rtmgr_lpm_cases(&mut g, group, &keys, &rt, None);
        lpm_case(&mut g, "prefix-trie", &keys, |ks| fold(&pt, ks));
        lpm_case(&mut g, "ip_network_table", &keys, |ks| fold(&int, ks));
        lpm_case(&mut g, "iptrie RTrieMap", &keys, |ks| fold(&rtrie, ks));
        lpm_case(&mut g, "iptrie LCTrieMap", &keys, |ks| fold(&lctrie, ks));
        lpm_case(&mut g, "poptrie", &keys, |ks| fold(&pop, ks));
        lpm_case(&mut g, "rotonda-store", &keys, |ks| fold(&rot, ks));
        g.finish();
    }
}
