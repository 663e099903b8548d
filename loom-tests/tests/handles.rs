//! Models of the handle protocol itself (`counted.rs`, `cell.rs`, the tree's root): taking a
//! reference while the object is removed, the last two releases, a handle outliving its
//! structure. Every model ends with reclamation driven to the end and a check that every
//! object was destroyed exactly once (see `rtmgr_loom_tests::check`).

#![cfg(loom)]

use rtmgr_loom_tests::loom::sync::Arc;
use rtmgr_loom_tests::loom::thread;
use rtmgr_loom_tests::loom_api::{epoch, EpochCell, Ref, Tree};
use rtmgr_loom_tests::{check, reclaim, v4_key, Payload};

/// 10.0.0.0/8: two nodes below the root, so removing it retires a chain of three nodes.
const KEY: u128 = v4_key(0x0a00_0000);
const LEN: u8 = 8;

/// A reader takes a counted reference (`EpochCell::load_ref`, i.e. `try_acquire` under a guard)
/// to the value a cell holds, while a writer replaces that value, releases the cell's reference
/// and drives reclamation.
///
/// Proves: `try_acquire` never revives an object whose count reached 0 (else the reader would
/// hold a reference to an object destroyed behind it, or retire it a second time), and a retired
/// object is not destroyed while a guard that may have found it is pinned. Catches
/// `plain_increment` and `free_immediately`.
#[test]
fn load_ref_races_replacement() {
    check(|| {
        let cell = Arc::new(EpochCell::new(Ref::new(Payload::new(1))));
        let reader = {
            let cell = cell.clone();
            thread::spawn(move || {
                let r = {
                    let guard = epoch::pin();
                    cell.load_ref(&guard)
                };
                // The guard is gone: only the reference keeps the value alive now.
                let id = r.read();
                assert!(id == 1 || id == 2, "read {id}");
            })
        };
        let old = cell.swap(Ref::new(Payload::new(2)));
        assert_eq!(old.read(), 1);
        drop(old); // the cell's reference to the old value
        reclaim(3);
        reader.join().unwrap();
    });
}

/// A reader finds an object in the tree under a guard and takes a reference by cloning the
/// tree's (as every table query does), while a writer removes the object from the tree (path
/// copying: the old root, and through it the old nodes and the tree's reference to the object,
/// are released) and drives reclamation.
///
/// Proves: a reference found inside a node read under a guard stays valid to clone: the node,
/// and so the unit of the count it holds, is not destroyed before the guard is dropped. Catches
/// `free_immediately`.
#[test]
fn found_reference_races_removal() {
    check(|| {
        let tree = Arc::new(Tree::new());
        {
            let guard = epoch::pin();
            assert!(tree.compare_replace(KEY, LEN, None, Some(Ref::new(Payload::new(7))), &guard).is_ok());
        }
        let reader = {
            let tree = tree.clone();
            thread::spawn(move || {
                let found = {
                    let guard = epoch::pin();
                    tree.get_ref(KEY, LEN, &guard)
                };
                if let Some(r) = found {
                    assert_eq!(r.read(), 7);
                }
            })
        };
        {
            let guard = epoch::pin();
            let raw = tree.get_raw(KEY, LEN, &guard).expect("inserted above");
            assert!(tree.compare_replace(KEY, LEN, Some(raw), None, &guard).is_ok());
            assert!(tree.get(KEY, LEN, &guard).is_none());
        }
        reclaim(3);
        reader.join().unwrap();
    });
}

/// Two threads release the last two references of one object, each after reading it; the
/// releasing threads drive reclamation.
///
/// Proves: exactly one of them retires the object (never both, never neither: the model's
/// check finds no double destruction and no leak), and both reads happen-before the destructor
/// (loom checks every read of the value against the destroying write). Catches
/// `relaxed_release`.
#[test]
fn last_two_releases() {
    check(|| {
        let a = Ref::new(Payload::new(3));
        let b = a.clone();
        let other = thread::spawn(move || {
            assert_eq!(b.read(), 3);
            drop(b);
        });
        assert_eq!(a.read(), 3);
        drop(a);
        // Two epoch advances destroy what this thread retired, if it was the last.
        reclaim(3);
        other.join().unwrap();
    });
}

/// A handle taken from a structure outlives it: the structure (a tree holding the object) is
/// dropped first and reclaimed, while another thread reads through the handle and then
/// releases it.
///
/// Proves: the handle alone keeps the object alive and readable after its structure is gone,
/// and the object is destroyed once, after the handle's last read. The handle's thread never
/// pins a guard, so no epoch grace period orders its read before the destructor: only the
/// release protocol does (a `Release` decrement and the `Acquire` fence of the last). Catches
/// `relaxed_release`.
#[test]
fn handle_outlives_structure() {
    check(|| {
        let tree = Tree::new();
        let handle = {
            let guard = epoch::pin();
            assert!(tree.compare_replace(KEY, LEN, None, Some(Ref::new(Payload::new(5))), &guard).is_ok());
            tree.get_ref(KEY, LEN, &guard).expect("just inserted")
        };
        let user = thread::spawn(move || {
            assert_eq!(handle.read(), 5);
            drop(handle);
        });
        drop(tree);
        // Enough rounds to reclaim the old root, its two nodes and the object: each level is
        // retired when the level above is destroyed.
        reclaim(9);
        user.join().unwrap();
    });
}
