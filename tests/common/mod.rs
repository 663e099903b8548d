//! Shared helpers of the integration tests: loading the real routing tables shipped in `data/`.

#![allow(dead_code)] // each test file uses a part of it

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use flate2::read::GzDecoder;
use rtmgr::{Family, Prefix};

/// Lines of `data/ipv4-prefixes.txt.gz` (see `data/README.md`).
pub const IPV4_LINES: usize = 564_580;
/// Lines of `data/ipv6-prefixes.txt.gz`.
pub const IPV6_LINES: usize = 167_903;
pub const IPV4_FILE: &str = "ipv4-prefixes.txt.gz";
pub const IPV6_FILE: &str = "ipv6-prefixes.txt.gz";

/// One line of a data file: a prefix and its origin AS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announcement<F: Family> {
    pub prefix: Prefix<F>,
    pub origin: u32,
}

/// Path of a file in the crate's `data/` directory.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// Reads a gzipped `prefix/len asn` file, in file order. Panics with the line number on a
/// malformed line: the files are part of the crate, so that is a broken checkout.
pub fn load<F: Family>(name: &str) -> Vec<Announcement<F>> {
    let path = data_path(name);
    let file = File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let reader = BufReader::with_capacity(1 << 16, GzDecoder::new(file));
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
        let (prefix, origin) =
            line.split_once(' ').unwrap_or_else(|| panic!("{name}:{}: no space in {line:?}", n + 1));
        let prefix: Prefix<F> = prefix.parse().unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
        let origin: u32 = origin.parse().unwrap_or_else(|e| panic!("{name}:{}: {e}", n + 1));
        out.push(Announcement { prefix, origin });
    }
    out
}

/// `n` pseudo-random IPv4 addresses over the whole space (xorshift32), the same on every run.
pub fn random_ipv4(n: usize) -> impl Iterator<Item = std::net::Ipv4Addr> {
    let mut x = 0x9E37_79B9u32;
    (0..n).map(move |_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        std::net::Ipv4Addr::from(x)
    })
}

// ----- leak checking -------------------------------------------------------------------------

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// A global allocator that forwards to `System` and counts the bytes currently allocated. A test
/// file installs it with `#[global_allocator] static GLOBAL: common::CountingAlloc =
/// common::CountingAlloc;`; it then counts every allocation of that test binary.
pub struct CountingAlloc;

/// Bytes currently allocated through [`CountingAlloc`].
pub static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counter is only
// bookkeeping.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

/// Runs `f` on a fresh thread and returns once that thread is gone, its thread-local
/// destructors included (a panic in `f` is propagated).
///
/// Leak checks do every rtmgr operation that may retire memory on such threads: rtmgr hands
/// retired objects to the epoch collector through a participant of its own per thread, whose bag
/// of deferred destructors only that thread can flush (`rtmgr::collect_garbage`) — or its exit.
/// Destructors retired while a thread exits are parked until some live thread retires again.
pub fn on_fresh_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Settling rounds; the minimum of the last [`READINGS`] readings is the result.
const ROUNDS: usize = 48;
const READINGS: usize = 16;

/// Lets the epoch collector free everything retired so far, then reads the live byte count.
/// Call it with no other thread running and from a thread that never retired rtmgr objects
/// (see [`on_fresh_thread`]).
///
/// Each round flushes the collector (`rtmgr::collect_garbage` and crossbeam's own participant)
/// from a fresh thread: destructors that run there may retire more objects (a node releases its
/// children), which the next flush or that thread's exit hands on. Every few rounds a throwaway
/// table is dropped first, so that destructors rtmgr had to park (retired while a thread was
/// exiting) are adopted. The collector's own bookkeeping
/// is not quite still — sealed bags come and go as queue nodes of about 2 KiB, exited threads'
/// records are unlinked lazily — so the count wobbles by a few KiB from round to round; the
/// minimum over the last rounds is the stable reading.
pub fn settled_live_bytes() -> isize {
    let mut readings = [0isize; READINGS];
    for round in 0..ROUNDS {
        on_fresh_thread(move || {
            if round % 4 == 0 && round < ROUNDS - READINGS / 2 {
                drop(rtmgr::Table::<rtmgr::Ipv4>::new());
            }
            for _ in 0..128 {
                rtmgr::collect_garbage();
                crossbeam_epoch::pin().flush();
            }
        });
        if round >= ROUNDS - READINGS {
            readings[round - (ROUNDS - READINGS)] = LIVE_BYTES.load(Ordering::SeqCst);
        }
    }
    *readings.iter().min().unwrap()
}

/// Joins every thread explicitly. `std::thread::scope` alone returns once the threads' closures
/// have finished, possibly before their thread-local destructors ran — and crossbeam-epoch hands
/// a thread's unflushed garbage to the global collector in one of those; `join` waits for the
/// thread to be gone.
pub fn join_all<T>(threads: Vec<std::thread::ScopedJoinHandle<'_, T>>) {
    for t in threads {
        t.join().expect("a worker panicked");
    }
}
