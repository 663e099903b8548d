//! A forwarding plane over real Internet routing tables.
//!
//! This example demonstrates rtmgr as a router's data plane would use it:
//!
//! 1. **Load**: the shipped tables `data/ipv4-prefixes.txt.gz` (564,580 prefixes) and
//!    `data/ipv6-prefixes.txt.gz` (167,903 prefixes) go through the public API into a
//!    `Table<Ipv4>` and a `Table<Ipv6>`, as the routes of two entities per table: a BGP-like
//!    entity (protocol 14, preference 170) with one next hop per origin AS and the origin AS as
//!    metric, and a static entity (protocol 3, preference 1) with a few covering routes
//!    (default route, a handful of /8s or `2000::/3`) that only more specific routes beat.
//! 2. **Forward under churn**: for a fixed time per family (3 s unless `--seconds` says
//!    otherwise), reader threads (`--readers`, default: one per core but one) look up random
//!    addresses on the lock-free fast path ([`Table::pin`] + [`Table::lookup`]) while one writer
//!    thread withdraws and re-announces random BGP routes non-stop. Readers check a sample of
//!    their answers with [`Table::lookup_route`]; any broken invariant makes the program exit
//!    with a non-zero status.
//! 3. **Report**: load rate, lookups/s, updates/s, the memory the table allocated (measured by a
//!    counting global allocator) and the process RSS; then the entities deregister, the tables
//!    must be empty, and once they are dropped less than 1 MiB may stay allocated.
//!
//! Run it (release mode matters: the numbers are meaningless in a debug build):
//!
//! ```text
//! cargo run --release --example forwarding_plane
//! cargo run --release --example forwarding_plane -- --seconds 2 --readers 3
//! ```
//!
//! Data: CC BY 4.0, RouteViews, NRO and DB-IP via ip-location-db (see `data/README.md`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rtmgr::{
    EntityConfig, EntityId, Error, Family, Ipv4, Ipv6, NextHop, NextHopData, Preference, Prefix,
    Registration, RouteData, RouteMatch, Selector, Table, ViewSet,
};

// ---------------------------------------------------------------------------------------------
// Memory accounting
// ---------------------------------------------------------------------------------------------

/// The system allocator, counting the bytes currently allocated, so that the example can report
/// what the table itself costs (live bytes after the load minus before).
struct CountingAllocator;

/// Bytes currently allocated through [`CountingAllocator`].
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The highest [`LIVE_BYTES`] since the last [`reset_peak_bytes`].
static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

fn count_allocation(size: usize) {
    let live = LIVE_BYTES.fetch_add(size, Ordering::Relaxed) + size;
    PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counter is only bookkeeping and never affects the returned memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count_allocation(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count_allocation(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` (through us) with this layout; the caller
        // upholds the rest of `GlobalAlloc::realloc`'s contract.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Count the difference only, so that the peak never includes both blocks.
            match new_size.checked_sub(layout.size()) {
                Some(grown) => count_allocation(grown),
                None => _ = LIVE_BYTES.fetch_sub(layout.size() - new_size, Ordering::Relaxed),
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Starts a new peak measurement at the current live bytes.
fn reset_peak_bytes() {
    PEAK_BYTES.store(live_bytes(), Ordering::Relaxed);
}

fn peak_bytes() -> usize {
    PEAK_BYTES.load(Ordering::Relaxed)
}

/// Lets the epoch collector reclaim what writers retired, so that live bytes measure the table
/// and not garbage waiting for an epoch to pass. Each [`rtmgr::collect_garbage`] runs a bounded
/// number of deferred destructors, and a destructor may retire more objects (what the destroyed
/// object referenced): call it in rounds until a round frees next to nothing. Not "until nothing
/// changes": the collector's own queue nodes come and go on every call, so the count never
/// settles exactly.
fn reclaim_retired_memory() {
    const CALLS_PER_ROUND: usize = 1024;
    const SETTLED_BYTES: usize = 64 * 1024;
    let mut last = live_bytes();
    for _ in 0..10_000 {
        for _ in 0..CALLS_PER_ROUND {
            rtmgr::collect_garbage();
        }
        let now = live_bytes();
        if last.saturating_sub(now) < SETTLED_BYTES {
            break;
        }
        last = now;
    }
}

/// The process's resident set size from `/proc/self/status`, where there is one (Linux).
fn resident_set_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// The default length of the churn phase, per family. Loading and deregistering the tables take
/// most of the run: with this the whole run stays under 20 s on two cores.
const DEFAULT_CHURN_SECONDS: u64 = 3;

fn usage() -> String {
    format!(
        "usage: cargo run --release --example forwarding_plane -- [--seconds N] [--readers N]

  --seconds N   churn phase per address family, in seconds (default {DEFAULT_CHURN_SECONDS}; may be fractional)
  --readers N   reader threads doing lookups (default: available cores minus one, at least 1)
  --help        print this message"
    )
}

struct Options {
    /// How long readers and the writer run, per family.
    churn: Duration,
    readers: usize,
}

/// Why the command line was refused (`None` inside: the user asked for help).
struct UsageError(Option<String>);

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, UsageError> {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let mut options = Options {
        churn: Duration::from_secs(DEFAULT_CHURN_SECONDS),
        readers: cores.saturating_sub(1).max(1),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = option_value(&arg, args.next())?;
                options.churn = parse_seconds(&value)?;
            }
            "--readers" => {
                let value = option_value(&arg, args.next())?;
                options.readers = match value.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => n,
                    _ => {
                        return Err(UsageError(Some(format!(
                            "--readers needs a whole number from 1 to 1024, not {value:?}"
                        ))));
                    }
                };
            }
            "--help" | "-h" => return Err(UsageError(None)),
            other => return Err(UsageError(Some(format!("unknown argument {other:?}")))),
        }
    }
    Ok(options)
}

fn option_value(name: &str, value: Option<String>) -> Result<String, UsageError> {
    value.ok_or_else(|| UsageError(Some(format!("{name} needs a value"))))
}

fn parse_seconds(value: &str) -> Result<Duration, UsageError> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(UsageError(Some(format!(
            "--seconds needs a number of seconds above 0 and at most 3600, not {value:?}"
        )))),
    }
}

// ---------------------------------------------------------------------------------------------
// What differs between the families
// ---------------------------------------------------------------------------------------------

/// The BGP-like entity: routes learnt from peers, preference 170 as in common router defaults.
const BGP: EntityId = EntityId::new(14, 0);
const BGP_PREFERENCE: u32 = 170;
/// The static entity: configured covering routes, preference 1 (beats anything on the same
/// prefix, so it loses only to more specific routes).
const STATIC: EntityId = EntityId::new(3, 0);
const STATIC_PREFERENCE: u32 = 1;
/// The interface of the static routes' next hop; BGP next hops use 1 and up.
const STATIC_INTERFACE: u32 = 0;

/// The per-family part of the example: data file, covering routes, next-hop addresses.
trait Dataset: Family {
    /// The data file, relative to the crate root.
    const FILE: &'static str;
    /// The static entity's covering routes.
    const STATIC_PREFIXES: &'static [&'static str];
    /// The static routes' next hop (a documentation address).
    const STATIC_NEXT_HOP: &'static str;
    /// The left-aligned key (see [`Family::key`]) of the BGP next hop standing for `asn`.
    fn bgp_next_hop_key(asn: u32) -> u128;
}

impl Dataset for Ipv4 {
    const FILE: &'static str = "data/ipv4-prefixes.txt.gz";
    // Regional registries' /8s, each subdivided by 8,000 to 23,000 more specific routes.
    const STATIC_PREFIXES: &'static [&'static str] =
        &["0.0.0.0/0", "23.0.0.0/8", "45.0.0.0/8", "103.0.0.0/8", "185.0.0.0/8"];
    const STATIC_NEXT_HOP: &'static str = "192.0.2.1";

    /// `10.x.y.z` holds the AS number's low 24 bits (its high 8 are in the interface: see
    /// [`bgp_interface`]).
    fn bgp_next_hop_key(asn: u32) -> u128 {
        u128::from(0x0A00_0000 | (asn & 0x00FF_FFFF)) << 96
    }
}

impl Dataset for Ipv6 {
    const FILE: &'static str = "data/ipv6-prefixes.txt.gz";
    const STATIC_PREFIXES: &'static [&'static str] = &["::/0", "2000::/3"];
    const STATIC_NEXT_HOP: &'static str = "2001:db8:ffff::1";

    /// `2001:db8::<asn>`: the whole AS number fits in the documentation prefix.
    fn bgp_next_hop_key(asn: u32) -> u128 {
        (0x2001_0db8_u128 << 96) | u128::from(asn)
    }
}

/// The interface of the BGP next hop standing for `asn`: 1 + the AS number's high 8 bits, so
/// that (address, interface) identifies the AS in both families.
fn bgp_interface(asn: u32) -> u32 {
    1 + (asn >> 24)
}

fn bgp_next_hop_address<F: Dataset>(asn: u32) -> F::Addr {
    F::addr(F::bgp_next_hop_key(asn))
}

// ---------------------------------------------------------------------------------------------
// Reading the data
// ---------------------------------------------------------------------------------------------

/// One announced route: prefix and origin AS.
#[derive(Clone, Copy)]
struct Announcement<F: Family> {
    prefix: Prefix<F>,
    origin: u32,
}

/// A failure that ends the program with a message.
#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(format!("rtmgr call failed: {e}"))
    }
}

fn data_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// Reads a `prefix/len origin-asn` file, sorted by prefix (duplicate prefixes side by side).
fn read_announcements<F: Family>(path: &Path) -> Result<Vec<Announcement<F>>, Failure> {
    let file = std::fs::File::open(path).map_err(|e| {
        Failure(format!(
            "cannot open the data file {}: {e}\n(the example needs the tables shipped in data/; \
             see data/README.md)",
            path.display()
        ))
    })?;
    let mut announcements = Vec::new();
    for (number, line) in BufReader::new(GzDecoder::new(file)).lines().enumerate() {
        let line = line.map_err(|e| Failure(format!("{}: read error: {e}", path.display())))?;
        let announcement = parse_line(&line)
            .map_err(|why| Failure(format!("{}:{}: {why}: {line:?}", path.display(), number + 1)))?;
        announcements.push(announcement);
    }
    if announcements.is_empty() {
        return Err(Failure(format!("{}: no routes in it", path.display())));
    }
    announcements.sort_by_key(|a| (a.prefix, a.origin));
    Ok(announcements)
}

fn parse_line<F: Family>(line: &str) -> Result<Announcement<F>, String> {
    let (prefix, origin) = line.split_once(' ').ok_or("expected `prefix/len origin-asn`")?;
    Ok(Announcement {
        prefix: prefix.parse().map_err(|e: Error| e.to_string())?,
        origin: origin.trim().parse().map_err(|_| "the origin AS is not a u32")?,
    })
}

fn parse_static_prefixes<F: Dataset>() -> Result<Vec<Prefix<F>>, Failure> {
    F::STATIC_PREFIXES.iter().map(|s| Ok(s.parse()?)).collect()
}

fn parse_static_next_hop<F: Dataset>() -> Result<F::Addr, Failure> {
    F::STATIC_NEXT_HOP.parse().map_err(|_| Failure(format!("bad static next hop {}", F::STATIC_NEXT_HOP)))
}

/// Destinations the table must hold: the distinct data prefixes plus the static ones that are
/// not among them.
fn expected_destinations<F: Family>(announcements: &[Announcement<F>], statics: &[Prefix<F>]) -> usize {
    let distinct = 1 + announcements.windows(2).filter(|w| w[0].prefix != w[1].prefix).count();
    let extra =
        statics.iter().filter(|s| announcements.binary_search_by_key(*s, |a| a.prefix).is_err()).count();
    distinct + extra
}

// ---------------------------------------------------------------------------------------------
// Loading the table
// ---------------------------------------------------------------------------------------------

/// A loaded table with its two entities.
struct Loaded<F: Family> {
    table: Table<F>,
    bgp: Registration<F>,
    statics: Registration<F>,
}

fn register_entities<F: Family>(table: &Table<F>) -> Result<(Registration<F>, Registration<F>), Failure> {
    let bgp = table.register(EntityConfig::new(BGP).default_preference(BGP_PREFERENCE))?;
    let statics = table.register(EntityConfig::new(STATIC).default_preference(STATIC_PREFERENCE))?;
    Ok((bgp, statics))
}

fn add_static_routes<F: Dataset>(statics: &Registration<F>, prefixes: &[Prefix<F>]) -> Result<(), Failure> {
    let (nh, _) =
        statics.add_next_hop(parse_static_next_hop::<F>()?, STATIC_INTERFACE, NextHopData::default())?;
    for prefix in prefixes {
        // Preference 0: the entity's default.
        statics.add_route(*prefix, RouteData::new(vec![nh.clone()]))?;
    }
    Ok(())
}

/// The BGP next hop of an origin AS, created on first use. Looking it up first matters:
/// `add_next_hop` on an existing next hop replaces its data (an allocation per route).
fn bgp_next_hop<F: Dataset>(bgp: &Registration<F>, asn: u32) -> Result<NextHop<F>, Error> {
    let address = bgp_next_hop_address::<F>(asn);
    match bgp.find_next_hop(address, bgp_interface(asn)) {
        Ok(nh) => Ok(nh),
        Err(Error::NotFound) => Ok(bgp.add_next_hop(address, bgp_interface(asn), NextHopData::default())?.0),
        Err(e) => Err(e),
    }
}

/// The BGP route of an announcement. The next hop is also the neighbour: it makes the route's
/// identity (prefix, owner, neighbour), so two origins of one prefix are two routes, and a
/// withdrawal names the route to delete.
fn bgp_route_data<F: Family>(nh: NextHop<F>, origin: u32) -> RouteData<F> {
    RouteData::new(vec![nh.clone()]).neighbour(Some(nh)).preference(Preference::new(0, origin))
}

fn announce<F: Dataset>(bgp: &Registration<F>, a: &Announcement<F>) -> Result<bool, Error> {
    let nh = bgp_next_hop(bgp, a.origin)?;
    let (_, outcome) = bgp.add_route(a.prefix, bgp_route_data(nh, a.origin))?;
    Ok(outcome.created)
}

/// A progress bar on stderr; indicatif hides it when stderr is not a terminal (CI logs).
fn progress_bar(len: usize, family: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let style =
        ProgressStyle::with_template("{msg} [{bar:40}] {human_pos}/{human_len} routes ({per_sec}, {eta})")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(format!("loading {family}"));
    bar
}

/// Routes added between two [`rtmgr::collect_garbage`] calls during the load. Every route added
/// retires the tree nodes its path copy replaced, and the epoch collector only reclaims a little
/// now and then on its own, so a bulk load outruns it: the backlog doubles the peak memory, and
/// freeing it later (cache-cold) costs more than the load itself. Collecting often frees it while
/// it is hot.
const ROUTES_PER_COLLECT: usize = 16;

fn load_table<F: Dataset>(
    announcements: &[Announcement<F>],
    statics: &[Prefix<F>],
) -> Result<Loaded<F>, Failure> {
    let table = Table::<F>::new();
    let (bgp, static_reg) = register_entities(&table)?;
    add_static_routes(&static_reg, statics)?;
    let bar = progress_bar(announcements.len(), F::NAME);
    for chunk in announcements.chunks(4096) {
        for batch in chunk.chunks(ROUTES_PER_COLLECT) {
            for a in batch {
                if !announce(&bgp, a)? {
                    return Err(Failure(format!("{} {}: announced twice", a.prefix, a.origin)));
                }
            }
            rtmgr::collect_garbage();
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(Loaded { table, bgp, statics: static_reg })
}

/// Checks the table's counts against the data.
fn check_counts<F: Family>(
    table: &Table<F>,
    routes: usize,
    destinations: usize,
    when: &str,
) -> Result<(), Failure> {
    if table.route_count() != routes || table.destination_count() != destinations {
        return Err(Failure(format!(
            "{} {when}: the table holds {} routes and {} destinations, expected {routes} and {destinations}",
            F::NAME,
            table.route_count(),
            table.destination_count()
        )));
    }
    Ok(())
}

/// One line on a prefix announced by several origins: one destination, several routes, the
/// lowest metric (origin AS) best.
fn describe_multi_origin<F: Family>(table: &Table<F>, announcements: &[Announcement<F>]) -> Option<String> {
    let twice = announcements.windows(2).find(|w| w[0].prefix == w[1].prefix)?;
    let found = table.exact(twice[0].prefix, ViewSet::UNICAST, Selector::Best).ok()?;
    let origins: Vec<String> =
        found.destination.routes().iter().map(|r| format!("AS{}", r.preference.metric)).collect();
    Some(format!(
        "{}: one destination, {} routes ({}), best first",
        twice[0].prefix,
        origins.len(),
        origins.join(", ")
    ))
}

// ---------------------------------------------------------------------------------------------
// Forwarding under churn
// ---------------------------------------------------------------------------------------------

/// Lookups between two pins: a batch of packets. Re-pinning lets writers' garbage be reclaimed.
const LOOKUPS_PER_PIN: usize = 256;
/// One lookup in this many is checked in depth with `lookup_route`.
const CHECK_EVERY: usize = 32;
/// One lookup in this many goes to a uniformly random address rather than into a data prefix.
const RANDOM_ADDRESS_EVERY: u32 = 8;

/// Invariant violations found by any thread; the first message is kept for the report.
#[derive(Default)]
struct Violations {
    count: AtomicU64,
    first: Mutex<Option<String>>,
}

impl Violations {
    fn report(&self, message: String) {
        if self.count.fetch_add(1, Ordering::Relaxed) == 0 {
            if let Ok(mut first) = self.first.lock() {
                *first = Some(message);
            }
        }
    }

    fn first(&self) -> Option<String> {
        self.first.lock().ok().and_then(|f| f.clone())
    }
}

/// What the readers and the writer share.
struct Shared<'a, F: Family> {
    table: &'a Table<F>,
    announcements: &'a [Announcement<F>],
    statics: &'a [Prefix<F>],
    static_next_hop: F::Addr,
    stop: AtomicBool,
    violations: Violations,
}

#[derive(Default, Clone, Copy)]
struct ReaderCounts {
    lookups: u64,
    hits: u64,
    /// Hits whose best route is a static covering route (the data prefix was withdrawn at that
    /// instant, or the address was outside every data prefix).
    static_hits: u64,
    checked: u64,
}

/// A random address and, when it was drawn inside a data prefix, that announcement.
fn random_target<'a, F: Family>(
    rng: &mut SmallRng,
    announcements: &'a [Announcement<F>],
) -> (F::Addr, Option<&'a Announcement<F>>) {
    if rng.random_ratio(1, RANDOM_ADDRESS_EVERY) {
        return (F::addr(rng.random()), None);
    }
    let a = &announcements[rng.random_range(0..announcements.len())];
    // Keep the prefix's bits, randomise the host bits (keys are left-aligned).
    let host_mask = u128::MAX.checked_shr(u32::from(a.prefix.len())).unwrap_or(0);
    let key = F::key(a.prefix.addr()) | (rng.random::<u128>() & host_mask);
    (F::addr(key), Some(a))
}

/// Checks one lookup in depth: the matched prefix covers the address; a BGP answer is the data
/// prefix itself with the next hop of its metric's AS; a static answer is a configured covering
/// route with the static next hop. Returns what is wrong.
fn check_answer<F: Dataset>(
    shared: &Shared<'_, F>,
    addr: F::Addr,
    target: Option<&Announcement<F>>,
    guard: &rtmgr::Guard,
) -> Result<(), String> {
    let Some((matched, data)) = shared.table.lookup_route(addr, ViewSet::UNICAST, guard) else {
        return Err(format!("{addr}: no route, though a default route is configured"));
    };
    if !matched.contains(addr) {
        return Err(format!("{addr}: matched {matched}, which does not contain it"));
    }
    let hop = data.next_hops.first().ok_or(format!("{addr}: {matched} has no next hop"))?;
    match data.preference.preference {
        BGP_PREFERENCE => {
            let origin = data.preference.metric;
            if (hop.address(), hop.interface()) != (bgp_next_hop_address::<F>(origin), bgp_interface(origin))
            {
                return Err(format!("{addr}: {matched} from AS{origin} goes via {hop:?}"));
            }
            if target.is_some_and(|t| t.prefix != matched) {
                return Err(format!("{addr}: matched {matched}, expected a data prefix"));
            }
        }
        STATIC_PREFERENCE => {
            if !shared.statics.contains(&matched) || hop.address() != shared.static_next_hop {
                return Err(format!("{addr}: static answer {matched} via {hop:?} is not configured"));
            }
            if target.is_some_and(|t| !matched.covers(&t.prefix)) {
                return Err(format!("{addr}: static {matched} does not cover the data prefix"));
            }
        }
        other => return Err(format!("{addr}: {matched} has unknown preference {other}")),
    }
    Ok(())
}

/// A reader thread: batches of fast-path lookups, each batch under one pinned guard.
fn reader<F: Dataset>(shared: &Shared<'_, F>, seed: u64) -> ReaderCounts {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = ReaderCounts::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let guard = shared.table.pin();
        for i in 0..LOOKUPS_PER_PIN {
            let (addr, target) = random_target(&mut rng, shared.announcements);
            if let Some(hops) = shared.table.lookup(addr, ViewSet::UNICAST, &guard) {
                counts.hits += 1;
                if hops.first().is_some_and(|h| h.interface() == STATIC_INTERFACE) {
                    counts.static_hits += 1;
                }
            }
            if i % CHECK_EVERY == 0 {
                counts.checked += 1;
                if let Err(why) = check_answer(shared, addr, target, &guard) {
                    shared.violations.report(why);
                }
            }
        }
        counts.lookups += LOOKUPS_PER_PIN as u64;
    }
    counts
}

/// Withdraws one BGP route and announces it again.
fn churn_once<F: Dataset>(
    bgp: &Registration<F>,
    table: &Table<F>,
    a: &Announcement<F>,
) -> Result<(), String> {
    let nh = bgp_next_hop(bgp, a.origin).map_err(|e| e.to_string())?;
    let criteria = RouteMatch::default().owner(BGP).neighbour(Some(nh));
    let route = table
        .exact_route(a.prefix, &criteria)
        .map_err(|e| format!("{} from AS{}: not found before withdrawal ({e})", a.prefix, a.origin))?
        .route;
    bgp.delete_route(route).map_err(|e| format!("{}: withdrawal failed: {e}", a.prefix))?;
    match announce(bgp, a) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{}: re-announcement updated a route that was withdrawn", a.prefix)),
        Err(e) => Err(format!("{}: re-announcement failed: {e}", a.prefix)),
    }
}

/// The writer thread: random withdrawals and re-announcements until told to stop. Returns the
/// number of route changes (each withdrawal and each announcement counts one).
fn writer<F: Dataset>(shared: &Shared<'_, F>, bgp: &Registration<F>) -> u64 {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut changes = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let a = &shared.announcements[rng.random_range(0..shared.announcements.len())];
        if let Err(why) = churn_once(bgp, shared.table, a) {
            shared.violations.report(why);
            break;
        }
        changes += 2;
    }
    changes
}

struct ChurnResult {
    elapsed: Duration,
    readers: Vec<ReaderCounts>,
    route_changes: u64,
    violations: u64,
    first_violation: Option<String>,
}

fn run_churn<F: Dataset>(
    loaded: &Loaded<F>,
    announcements: &[Announcement<F>],
    statics: &[Prefix<F>],
    options: &Options,
) -> Result<ChurnResult, Failure> {
    let shared = Shared {
        table: &loaded.table,
        announcements,
        statics,
        static_next_hop: parse_static_next_hop::<F>()?,
        stop: AtomicBool::new(false),
        violations: Violations::default(),
    };
    let start = Instant::now();
    let (readers, route_changes) = thread::scope(|s| {
        let readers: Vec<_> = (0..options.readers)
            .map(|i| {
                let shared = &shared;
                s.spawn(move || reader(shared, i as u64 + 1))
            })
            .collect();
        let writer = s.spawn(|| writer(&shared, &loaded.bgp));
        thread::sleep(options.churn);
        shared.stop.store(true, Ordering::Relaxed);
        let counts: Vec<_> = readers.into_iter().map(|r| r.join()).collect();
        (counts, writer.join())
    });
    let elapsed = start.elapsed();
    let readers = readers
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Failure("a reader thread panicked".into()))?;
    let route_changes = route_changes.map_err(|_| Failure("the writer thread panicked".into()))?;
    Ok(ChurnResult {
        elapsed,
        readers,
        route_changes,
        violations: shared.violations.count.load(Ordering::Relaxed),
        first_violation: shared.violations.first(),
    })
}

// ---------------------------------------------------------------------------------------------
// One family, end to end
// ---------------------------------------------------------------------------------------------

/// What the summary table shows for one family, up to the teardown.
struct Measured {
    family: &'static str,
    routes: usize,
    destinations: usize,
    load_time: Duration,
    table_bytes: usize,
    table_bytes_after_churn: usize,
    /// Highest live bytes during the load, over the start: the table plus the garbage that
    /// writers retired and the epoch had not reclaimed yet.
    peak_during_load: usize,
    rss_after_load: Option<u64>,
    churn: ChurnResult,
}

/// What deregistering a table's entities left.
struct Teardown {
    /// Time to deregister both entities (each walks the table and withdraws its routes).
    deregistration: Duration,
    routes_left: usize,
    destinations_left: usize,
}

/// Everything the summary table shows for one family.
struct Report {
    measured: Measured,
    teardown: Teardown,
}

/// Reads a family's data, loads it, measures the table and runs the churn phase; returns the
/// measurements and the loaded table, still full.
fn measure_family<F: Dataset>(options: &Options) -> Result<(Measured, Loaded<F>), Failure> {
    let path = data_path(F::FILE);
    let start = Instant::now();
    let announcements = read_announcements::<F>(&path)?;
    println!(
        "{}: read {} announcements from {} in {:.2} s",
        F::NAME,
        group(announcements.len() as u64),
        F::FILE,
        start.elapsed().as_secs_f64()
    );
    let statics = parse_static_prefixes::<F>()?;
    let routes = announcements.len() + statics.len();
    let destinations = expected_destinations(&announcements, &statics);

    // The data is read: from here, what is allocated is the table's.
    let before = live_bytes();
    reset_peak_bytes();
    let start = Instant::now();
    let loaded = load_table(&announcements, &statics)?;
    let load_time = start.elapsed();
    let peak_during_load = peak_bytes().saturating_sub(before);
    reclaim_retired_memory();
    let table_bytes = live_bytes().saturating_sub(before);
    let rss_after_load = resident_set_bytes();
    check_counts(&loaded.table, routes, destinations, "after the load")?;
    println!(
        "{}: loaded {} routes ({} destinations) in {:.2} s",
        F::NAME,
        group(routes as u64),
        group(destinations as u64),
        load_time.as_secs_f64()
    );
    if let Some(line) = describe_multi_origin(&loaded.table, &announcements) {
        println!("{}: {line}", F::NAME);
    }

    let churn = run_churn(&loaded, &announcements, &statics, options)?;
    println!("{}: {:.1} s of lookups under churn done", F::NAME, churn.elapsed.as_secs_f64());
    // Every withdrawal was followed by its re-announcement: the table is whole again.
    if churn.violations == 0 {
        check_counts(&loaded.table, routes, destinations, "after the churn")?;
    }
    reclaim_retired_memory();
    let table_bytes_after_churn = live_bytes().saturating_sub(before);
    let measured = Measured {
        family: F::NAME,
        routes,
        destinations,
        load_time,
        table_bytes,
        table_bytes_after_churn,
        peak_during_load,
        rss_after_load,
        churn,
    };
    Ok((measured, loaded))
}

/// Deregisters both entities (which withdraws their routes), checks that the table is empty,
/// drops it and reclaims what it retired.
fn tear_down<F: Family>(loaded: Loaded<F>) -> Result<Teardown, Failure> {
    let Loaded { table, bgp, statics } = loaded;
    let start = Instant::now();
    bgp.deregister();
    statics.deregister();
    let deregistration = start.elapsed();
    let (routes_left, destinations_left) = (table.route_count(), table.destination_count());
    check_counts(&table, 0, 0, "after deregistration")?;
    if !table.entities().is_empty() {
        return Err(Failure(format!("{}: entities left after deregistration", F::NAME)));
    }
    drop(table);
    reclaim_retired_memory();
    Ok(Teardown { deregistration, routes_left, destinations_left })
}

/// Both families, end to end. The teardowns run side by side: each is one thread walking its
/// own table, and deregistering a full table is the slowest step of the run.
fn run_families(options: &Options) -> Result<Vec<Report>, Failure> {
    let (v4, v4_table) = measure_family::<Ipv4>(options)?;
    let (v6, v6_table) = measure_family::<Ipv6>(options)?;
    let start = Instant::now();
    let (v4_teardown, v6_teardown) = thread::scope(|s| {
        let v4 = s.spawn(|| tear_down(v4_table));
        let v6 = tear_down(v6_table);
        (v4.join(), v6)
    });
    let v4_teardown = v4_teardown.map_err(|_| Failure("the IPv4 teardown panicked".into()))??;
    let v6_teardown = v6_teardown?;
    println!("deregistered every entity in {:.2} s: both tables are empty", start.elapsed().as_secs_f64());
    Ok(vec![Report { measured: v4, teardown: v4_teardown }, Report { measured: v6, teardown: v6_teardown }])
}

// ---------------------------------------------------------------------------------------------
// The summary
// ---------------------------------------------------------------------------------------------

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn per_second(count: u64, elapsed: Duration) -> u64 {
    (count as f64 / elapsed.as_secs_f64().max(1e-9)) as u64
}

/// The rows of the summary: a label and one cell per family.
fn summary_rows(reports: &[Report], options: &Options) -> Vec<(String, Vec<String>)> {
    let row = |label: &str, cell: &dyn Fn(&Measured, &Teardown) -> String| {
        (label.to_string(), reports.iter().map(|r| cell(&r.measured, &r.teardown)).collect())
    };
    let lookups = |m: &Measured| m.churn.readers.iter().map(|c| c.lookups).sum::<u64>();
    let share = |part: u64, m: &Measured| format!("{:.2} %", 100.0 * part as f64 / lookups(m).max(1) as f64);
    let plural = if options.readers == 1 { "" } else { "s" };
    vec![
        row("routes loaded", &|m, _| group(m.routes as u64)),
        row("destinations", &|m, _| group(m.destinations as u64)),
        row("load time", &|m, _| format!("{:.2} s", m.load_time.as_secs_f64())),
        row("load rate", &|m, _| format!("{} routes/s", group(per_second(m.routes as u64, m.load_time)))),
        row("table memory", &|m, _| mib(m.table_bytes as u64)),
        row("  per route", &|m, _| format!("{} B", m.table_bytes / m.routes.max(1))),
        row("  after churn", &|m, _| mib(m.table_bytes_after_churn as u64)),
        row("  peak during load", &|m, _| mib(m.peak_during_load as u64)),
        // The IPv4 table is still loaded when the IPv6 one is measured.
        row("process RSS after load", &|m, _| m.rss_after_load.map_or("n/a".into(), mib)),
        row("churn phase", &|m, _| {
            format!("{:.2} s, {} reader{plural} + 1 writer", m.churn.elapsed.as_secs_f64(), options.readers)
        }),
        row("lookups/s (total)", &|m, _| group(per_second(lookups(m), m.churn.elapsed))),
        row("lookups/s (per reader)", &|m, _| {
            group(per_second(lookups(m), m.churn.elapsed) / options.readers as u64)
        }),
        row("hits", &|m, _| share(m.churn.readers.iter().map(|c| c.hits).sum(), m)),
        row("  via static covering route", &|m, _| {
            share(m.churn.readers.iter().map(|c| c.static_hits).sum(), m)
        }),
        row("lookups checked in depth", &|m, _| group(m.churn.readers.iter().map(|c| c.checked).sum())),
        row("route updates/s", &|m, _| group(per_second(m.churn.route_changes, m.churn.elapsed))),
        row("invariant violations", &|m, _| group(m.churn.violations)),
        row("deregistration (both entities)", &|_, t| format!("{:.2} s", t.deregistration.as_secs_f64())),
        row("routes / destinations left", &|_, t| format!("{} / {}", t.routes_left, t.destinations_left)),
    ]
}

fn print_summary(reports: &[Report], options: &Options) {
    let rows = summary_rows(reports, options);
    let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let cell_width = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(String::len))
        .chain(reports.iter().map(|r| r.measured.family.len()))
        .max()
        .unwrap_or(0);
    let rule = "-".repeat(label_width + (cell_width + 3) * reports.len());
    println!();
    print!("{:label_width$}", "");
    for r in reports {
        print!(" | {:>cell_width$}", r.measured.family);
    }
    println!("\n{rule}");
    for (label, cells) in rows {
        print!("{label:label_width$}");
        for cell in cells {
            print!(" | {cell:>cell_width$}");
        }
        println!();
    }
    println!("{rule}");
    println!("updates: each withdrawal and each re-announcement of a BGP route counts one");
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(UsageError(None)) => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(UsageError(Some(why))) => {
            eprintln!("error: {why}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    // Set up what lives for the whole run (this thread's epoch state, stdout's buffer) before
    // the baseline, so that the bytes left at the end are the tables' leftovers only.
    rtmgr::collect_garbage();
    println!(
        "forwarding plane: {} reader(s) + 1 writer, {:.1} s per family",
        options.readers,
        options.churn.as_secs_f64()
    );
    let baseline = live_bytes();
    let reports = match run_families(&options) {
        Ok(reports) => reports,
        Err(failure) => {
            eprintln!("error: {failure}");
            return ExitCode::FAILURE;
        }
    };
    reclaim_retired_memory();
    let bytes_left = live_bytes() as isize - baseline as isize;
    print_summary(&reports, &options);
    println!("bytes still allocated after dropping both tables: {bytes_left} B");
    println!("total run time: {:.1} s", start.elapsed().as_secs_f64());
    verdict(&reports, bytes_left)
}

/// More than this still allocated once both tables are dropped is a leak. (What does stay is
/// bookkeeping of the epoch collector: a few KiB.)
const LEAK_THRESHOLD_BYTES: isize = 1 << 20;

/// Success only if no thread saw a broken invariant and the tables gave their memory back.
fn verdict(reports: &[Report], bytes_left: isize) -> ExitCode {
    let mut ok = true;
    for r in reports {
        let m = &r.measured;
        if let Some(first) = &m.churn.first_violation {
            eprintln!("error: {}: {} invariant violation(s); first: {first}", m.family, m.churn.violations);
            ok = false;
        }
    }
    if bytes_left > LEAK_THRESHOLD_BYTES {
        eprintln!("error: {bytes_left} bytes are still allocated after dropping both tables: a leak");
        ok = false;
    }
    if ok {
        println!("all invariants held; both tables were emptied by deregistration and freed");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
