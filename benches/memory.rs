//! Memory per prefix (issue 5): each table loaded into each implementation, each in a fresh
//! process (this binary runs itself with `--one FAMILY IMPL`), measured two ways: the heap bytes
//! live after the load minus before (a counting global allocator: everything the structure
//! allocated, rtmgr's forwarding structures, route sets, next hops and epoch bookkeeping
//! included, after its retired garbage is collected), and the growth of the resident set.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench memory              # ~1 min
//! ```
//!
//! Writes `benches/results/memory.csv`.

#[path = "common/mod.rs"]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use rtmgr::{ForwardingLayout, Ipv4, Ipv6, TableConfig, ViewSet};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// rtmgr as configured by default (with the unicast forwarding table: the direct layout for
/// IPv4, the compact one for IPv6), with the compact layout for IPv4, and without any.
const RTMGR_NO_FIB: &str = "rtmgr without forwarding table";
const RTMGR_COMPACT: &str = "rtmgr compact forwarding";
const RTMGR_SHARED: &str = "rtmgr shared route data";

const IMPLS_V4: &[&str] = &[
    "rtmgr",
    RTMGR_SHARED,
    RTMGR_COMPACT,
    RTMGR_NO_FIB,
    "prefix-trie",
    "ip_network_table",
    "iptrie RTrieMap",
    "iptrie LCTrieMap",
    "poptrie",
    "rotonda-store",
    "DIR-24-8 array",
];
const IMPLS_V6: &[&str] = &[
    "rtmgr",
    RTMGR_SHARED,
    RTMGR_NO_FIB,
    "prefix-trie",
    "ip_network_table",
    "iptrie RTrieMap",
    "iptrie LCTrieMap",
    "poptrie",
    "rotonda-store",
];

fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Collects rtmgr's retired garbage until the live count stops moving.
fn settle() {
    let mut last = LIVE.load(Ordering::Relaxed);
    let mut quiet = 0;
    for _ in 0..1_000_000 {
        rtmgr::collect_garbage();
        let now = LIVE.load(Ordering::Relaxed);
        quiet = if now == last { quiet + 1 } else { 0 };
        if quiet >= 2048 {
            break;
        }
        last = now;
    }
}

/// Loads one table into one implementation and prints `RESULT heap rss destinations`.
fn one<F: BenchFamily>(file: &str, name: &str) {
    let anns = load::<F>(file);
    settle();
    let (heap0, rss0) = (LIVE.load(Ordering::Relaxed), rss());
    let keep: Box<dyn std::any::Any> = match name {
        "rtmgr" | RTMGR_NO_FIB | RTMGR_COMPACT | RTMGR_SHARED => {
            let config = match name {
                RTMGR_NO_FIB => TableConfig { forwarding: ViewSet::NONE, ..TableConfig::default() },
                RTMGR_COMPACT => {
                    TableConfig { forwarding_layout: ForwardingLayout::Compact, ..TableConfig::default() }
                }
                _ => TableConfig::default(),
            };
            let table = Rtmgr::with_config(config);
            let table = if name == RTMGR_SHARED { table.sharing_data() } else { table };
            let mut t = Rtmgr::<F>::load_only_into(table, &anns);
            // The bench's own maps from AS to next hop and shared data are not the table's
            // (the shared data stays alive in the routes that use it).
            drop(std::mem::take(&mut t.hops));
            drop(t.shared.take());
            Box::new(t)
        }
        "prefix-trie" if F::BITS == 32 => Box::new(load_peer::<PrefixTrie4, _>(&anns)),
        "prefix-trie" => Box::new(load_peer::<PrefixTrie6, _>(&anns)),
        "ip_network_table" if F::BITS == 32 => Box::new(load_peer::<IpNetworkTable4, _>(&anns)),
        "ip_network_table" => Box::new(load_peer::<IpNetworkTable6, _>(&anns)),
        "iptrie RTrieMap" if F::BITS == 32 => Box::new(load_peer::<IpTrie4, _>(&anns)),
        "iptrie RTrieMap" => Box::new(load_peer::<IpTrie6, _>(&anns)),
        "iptrie LCTrieMap" if F::BITS == 32 => Box::new(LcTrie4::load(&anns)),
        "iptrie LCTrieMap" => Box::new(LcTrie6::load(&anns)),
        "poptrie" if F::BITS == 32 => Box::new(Poptrie4::build(&anns)),
        "poptrie" => Box::new(Poptrie6::build(&anns)),
        "rotonda-store" => Box::new(Rotonda::load(&anns)),
        "DIR-24-8 array" => Box::new(Dir248::build(&anns)),
        other => panic!("unknown implementation {other}"),
    };
    settle();
    let (heap1, rss1) = (LIVE.load(Ordering::Relaxed), rss());
    let dests = if name.starts_with("rtmgr") {
        let t = keep.downcast_ref::<Rtmgr<F>>().expect("rtmgr");
        t.table.destination_count()
    } else {
        0
    };
    println!("RESULT {} {} {}", heap1.saturating_sub(heap0), rss1.saturating_sub(rss0), dests);
    black_box(&keep);
    // Exit without dropping: the fresh process ends here.
    std::process::exit(0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let (family, name) = (&args[i + 1], &args[i + 2]);
        match family.as_str() {
            "IPv4" => one::<Ipv4>(IPV4_FILE, name),
            _ => one::<Ipv6>(IPV6_FILE, name),
        }
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut csv = String::from(
        "family,implementation,prefixes,heap_bytes,heap_bytes_per_prefix,rss_bytes_per_prefix\n",
    );
    for (family, impls, prefixes) in
        [("IPv4", IMPLS_V4, load::<Ipv4>(IPV4_FILE).len()), ("IPv6", IMPLS_V6, load::<Ipv6>(IPV6_FILE).len())]
    {
        println!("{family}: {prefixes} prefixes (one route each)");
        for name in impls {
            let out = Command::new(&exe).args(["--one", family, name]).output().expect("run self");
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
                panic!("{family} {name}: no result: {}", String::from_utf8_lossy(&out.stderr));
            };
            let v: Vec<usize> = line.split(' ').map(|x| x.parse().expect("number")).collect();
            let (heap, rss, dests) = (v[0], v[1], v[2]);
            let per = heap as f64 / prefixes as f64;
            let rss_per = rss as f64 / prefixes as f64;
            let extra = if name.starts_with("rtmgr") && *name != RTMGR_NO_FIB {
                // The issue's budget: 64 B per route + 32 B per destination.
                let budget = 64 * prefixes + 32 * dests;
                format!(
                    "  (budget 64 B/route + 32 B/destination = {budget} B: {:.2}x of it)",
                    heap as f64 / budget as f64
                )
            } else {
                String::new()
            };
            println!("  {name:<20} heap {:>7.1} B/prefix   RSS {:>7.1} B/prefix{extra}", per, rss_per);
            writeln!(csv, "{family},{name},{prefixes},{heap},{per:.1},{rss_per:.1}")
                .expect("write to a String");
        }
    }
    let path = results_dir().join("memory.csv");
    std::fs::write(&path, csv).expect("write memory.csv");
    println!("wrote {}", path.display());
}
