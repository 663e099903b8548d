//! An open enumeration keeps alive exactly the tree version it snapshotted; closing it gives
//! that memory back. Measured with a counting global allocator (the only test in this binary, so
//! nothing else allocates meanwhile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use rtmgr::{AddMode, DestOptions, EntityConfig, EntityId, Ipv4, NextHopData, Prefix, RouteData, Table};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers to `System` and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    for _ in 0..300 {
        rtmgr::collect_garbage();
    }
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[test]
fn closing_an_enumeration_under_churn_gives_the_memory_back() {
    let n: u32 = if cfg!(miri) { 200 } else { 20_000 };
    let prefixes: Vec<Prefix<Ipv4>> =
        (0..n).map(|i| Prefix::new(std::net::Ipv4Addr::from(0x0A00_0000 | i << 8), 24).unwrap()).collect();
    let table = Table::<Ipv4>::new();
    let reg = table.register(EntityConfig::new(EntityId::new(14, 0))).unwrap();
    let (nh, _) = reg.add_next_hop("192.0.2.1".parse().unwrap(), 1, NextHopData::default()).unwrap();
    let announce =
        |p: Prefix<Ipv4>| reg.add_route_with(p, RouteData::new(vec![nh.clone()]), AddMode::New).unwrap();
    let mut routes: Vec<_> = prefixes.iter().map(|p| Some(announce(*p).0)).collect();
    let baseline = live();

    let mut dests = table.enumerate_destinations(DestOptions::default()).unwrap();
    let first = dests.next_batch(table.config().max_batch).unwrap();
    // Churn from two threads: withdraw and re-announce every route, so every node and
    // destination of the snapshot is replaced in the table.
    std::thread::scope(|s| {
        for half in routes.chunks_mut((n as usize).div_ceil(2)) {
            let (reg, nh) = (&reg, &nh);
            s.spawn(move || {
                for slot in half.iter_mut() {
                    // Withdraw first, so the destination leaves the tree and comes back new.
                    let old = slot.take().expect("announced");
                    let prefix = old.prefix();
                    reg.delete_route(old).unwrap();
                    let data = RouteData::new(vec![nh.clone()]);
                    *slot = Some(reg.add_route_with(prefix, data, AddMode::New).unwrap().0);
                }
            });
        }
    });
    let held = live() - baseline;
    // The snapshot keeps the old version: destinations, route sets, routes and tree nodes.
    assert!(held > (n as isize) * 100, "an open enumeration holds its version ({held} bytes over baseline)");
    assert_eq!(first.len(), table.config().max_batch);
    drop(first);
    dests.close().unwrap();
    let after = live() - baseline;
    assert!(
        after.abs() < 64 * 1024,
        "closing gives the memory back: {after} bytes over baseline (held {held})"
    );
    drop(routes);
    drop(reg);
    drop(nh);
    assert_eq!(table.route_count(), 0);
}
