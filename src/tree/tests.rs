use super::*;
use crate::family::mask;
use std::collections::BTreeMap;

fn key4(s: &str) -> (u128, u8) {
    let (a, l) = s.split_once('/').unwrap();
    let a: std::net::Ipv4Addr = a.parse().unwrap();
    ((u32::from(a) as u128) << 96, l.parse().unwrap())
}

fn insert(tree: &Tree<(u128, u8)>, key: u128, len: u8) {
    let g = crate::reclaim::pin();
    let cur = tree.get(key, len, &g).map_or(std::ptr::null(), Ref::as_ptr);
    tree.compare_replace(key, len, cur, Some(Ref::new((key, len))), &g).ok().unwrap();
}

fn remove(tree: &Tree<(u128, u8)>, key: u128, len: u8) {
    let g = crate::reclaim::pin();
    let cur = tree.get(key, len, &g).map_or(std::ptr::null(), Ref::as_ptr);
    tree.compare_replace(key, len, cur, None, &g).ok().unwrap();
}

#[test]
fn covering_table_is_right() {
    // Nibble 0b1010 is covered by: rel 0, rel 1 bit 1, rel 2 bits 10, rel 3 bits 101, rel 4 bits 1010.
    let expect = (1 << position(0, 0))
        | (1 << position(1, 1))
        | (1 << position(2, 2))
        | (1 << position(3, 5))
        | (1 << position(4, 10));
    assert_eq!(COVERING[0b1010], expect);
}

fn count_nodes<V: Send + Sync + 'static>(node: &Node<V>) -> usize {
    1 + node.children.iter().map(|c| count_nodes(c)).sum::<usize>()
}

/// Prefixes ending on a nibble boundary live in their parent: 16 /24s of one /20 share a node.
#[test]
fn nibble_aligned_prefixes_share_their_parent_node() {
    let tree = Tree::new();
    for i in 0..16u128 {
        let (k, l) = key4("10.1.16.0/24");
        insert(&tree, k | (i << 104), l);
    }
    // Levels 0 to 5: one node each on the path, the /24s all in the level-5 node.
    assert_eq!(count_nodes(tree.root(&crate::reclaim::pin())), 6);
}

#[test]
fn get_insert_remove() {
    let tree = Tree::new();
    for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "128.0.0.0/1"] {
        let (k, l) = key4(p);
        insert(&tree, k, l);
    }
    let g = crate::reclaim::pin();
    for p in ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "128.0.0.0/1"] {
        let (k, l) = key4(p);
        assert_eq!(**tree.get(k, l, &g).unwrap(), (k, l), "{p}");
    }
    let (k, l) = key4("10.1.0.0/17");
    assert!(tree.get(k, l, &g).is_none());
    let (k, l) = key4("10.1.2.0/24");
    remove(&tree, k, l);
    assert!(tree.get(k, l, &crate::reclaim::pin()).is_none());
    let (k, l) = key4("10.1.2.3/32");
    assert!(tree.get(k, l, &crate::reclaim::pin()).is_some());
}

#[test]
fn compare_replace_refuses_a_stale_expectation() {
    let tree = Tree::new();
    let (k, l) = key4("10.0.0.0/8");
    let g = crate::reclaim::pin();
    assert!(tree.compare_replace(k, l, std::ptr::null(), Some(Ref::new((k, l))), &g).is_ok());
    // Expecting "absent" again must fail now.
    assert!(tree.compare_replace(k, l, std::ptr::null(), Some(Ref::new((k, l))), &g).is_err());
}

#[test]
fn removing_everything_prunes_to_an_empty_root() {
    let tree = Tree::new();
    let (k, l) = key4("10.1.2.3/32");
    insert(&tree, k, l);
    remove(&tree, k, l);
    assert!(tree.root(&crate::reclaim::pin()).is_empty());
}

/// Random prefixes against a BTreeMap: exact, longest match, covering, within and order.
#[test]
fn matches_a_reference_model() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let tree = Tree::new();
    let mut model = BTreeMap::new();
    for i in 0..3000 {
        // Short prefixes in a small space so they nest a lot.
        let len = rng.random_range(0..=20u8);
        let key = ((rng.random::<u32>() & 0xFFF0_0000) as u128) << 96 & mask(len);
        if i % 4 == 3 {
            remove(&tree, key, len);
            model.remove(&(key, len));
        } else {
            insert(&tree, key, len);
            model.insert((key, len), ());
        }
    }
    let g = crate::reclaim::pin();
    let root = tree.root(&g);
    let all: Vec<(u128, u8)> = Iter::all(root).map(|r| **r).collect();
    let expect: Vec<(u128, u8)> = model.keys().copied().collect();
    assert_eq!(all, expect, "order and contents");
    for _ in 0..2000 {
        let addr = ((rng.random::<u32>() & 0xFFF0_0000) as u128) << 96
            | (rng.random::<u32>() as u128) << 96 & 0x000F_FFFF << 96;
        let max_len = rng.random_range(0..=32u8);
        let lpm = tree.longest_match(addr, max_len, &g, |_| true).map(|r| **r);
        let expect = (0..=max_len).rev().map(|l| (addr & mask(l), l)).find(|p| model.contains_key(p));
        assert_eq!(lpm, expect);
        let covering: Vec<_> =
            Tree::covering_in(root, addr & mask(max_len), max_len).into_iter().map(|r| **r).collect();
        let expect: Vec<_> =
            (0..=max_len).map(|l| (addr & mask(l), l)).filter(|p| model.contains_key(p)).collect();
        assert_eq!(covering, expect);
        let len = rng.random_range(0..=16u8);
        let base = addr & mask(len);
        let within: Vec<_> = Tree::within(root, base, len).map(|r| **r).collect();
        let expect: Vec<_> =
            model.keys().copied().filter(|(k, l)| *l >= len && k & mask(len) == base).collect();
        assert_eq!(within, expect);
    }
}

#[test]
fn snapshot_is_unaffected_by_later_writes() {
    let tree = Tree::new();
    for i in 0..100u128 {
        insert(&tree, i << 104, 24);
    }
    let snap = tree.snapshot(&crate::reclaim::pin());
    for i in 0..50u128 {
        remove(&tree, i << 104, 24);
        insert(&tree, (i << 104) | (1 << 100), 28);
    }
    assert_eq!(Iter::all(&snap).count(), 100);
    assert!(Iter::all(&snap).all(|r| r.1 == 24));
    assert_eq!(Iter::all(tree.root(&crate::reclaim::pin())).count(), 100);
}

#[test]
fn ipv6_full_length() {
    let tree = Tree::new();
    let host = u128::MAX - 5;
    insert(&tree, host, 128);
    insert(&tree, host & mask(64), 64);
    let g = crate::reclaim::pin();
    assert_eq!(tree.longest_match(host, 128, &g, |_| true).map(|r| r.1), Some(128));
    assert_eq!(tree.longest_match(host ^ 1, 128, &g, |_| true).map(|r| r.1), Some(64));
    assert_eq!(tree.longest_match(host, 127, &g, |_| true).map(|r| r.1), Some(64));
    assert_eq!(Iter::all(tree.root(&g)).count(), 2);
}

/// `Iter::resume` yields exactly the model's values after (or from) a point, inside a range.
#[test]
fn resume_matches_the_model() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let tree = Tree::new();
    let mut model = std::collections::BTreeSet::new();
    for _ in 0..1500 {
        let len = rng.random_range(0..=24u8);
        let key = ((rng.random::<u32>() & 0xFF00_0000 | rng.random::<u32>() & 0x00FF_F000) as u128) << 96
            & mask(len);
        insert(&tree, key, len);
        model.insert((key, len));
    }
    let g = crate::reclaim::pin();
    let root = tree.root(&g);
    for _ in 0..3000 {
        let range_len = rng.random_range(0..=12u8);
        let from_len = rng.random_range(range_len..=28u8);
        let from_key = ((rng.random::<u32>() & 0xFF00_0000 | rng.random::<u32>() & 0x00FF_F000) as u128)
            << 96
            & mask(from_len);
        // Half the time start from a present prefix.
        let (from_key, from_len) = if rng.random_bool(0.5) {
            let v: Vec<_> = model.iter().filter(|(_, l)| *l >= range_len).copied().collect();
            v[rng.random_range(0..v.len())]
        } else {
            (from_key, from_len)
        };
        let range = (from_key & mask(range_len), range_len);
        let inclusive = rng.random_bool(0.5);
        let got: Vec<_> = Iter::resume(root, range, (from_key, from_len), inclusive).map(|r| **r).collect();
        let expect: Vec<_> = model
            .iter()
            .copied()
            .filter(|&(k, l)| l >= range.1 && k & mask(range.1) == range.0)
            .filter(|&p| if inclusive { p >= (from_key, from_len) } else { p > (from_key, from_len) })
            .collect();
        assert_eq!(got, expect, "range {range:?} from {:?} inclusive {inclusive}", (from_key, from_len));
    }
}

/// `prune` removes exactly the values picked, keeps everything else reachable, and leaves no
/// empty node behind.
#[test]
fn prune_matches_the_model() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let tree = Tree::new();
    let mut model = std::collections::BTreeSet::new();
    // Interpreted under miri, a smaller tree still exercises every pruning case.
    let inserts = if cfg!(miri) { 150 } else { 2000 };
    for _ in 0..inserts {
        let len = rng.random_range(0..=32u8);
        let key = ((rng.random::<u32>() & 0xF0FF_FF00) as u128) << 96 & mask(len);
        insert(&tree, key, len);
        model.insert((key, len));
    }
    let dead = |v: &(u128, u8)| v.1 % 3 == 0 || (v.0 >> 120) % 5 == 1;
    assert_eq!(tree.prune(&crate::reclaim::pin(), dead), Ok(true));
    model.retain(|v| !dead(v));
    let g = crate::reclaim::pin();
    let got: Vec<_> = Iter::all(tree.root(&g)).map(|r| **r).collect();
    assert_eq!(got, model.iter().copied().collect::<Vec<_>>());
    fn no_empty_nodes(node: &Node<(u128, u8)>, root: bool) -> bool {
        (root || !node.is_empty()) && node.children.iter().all(|c| no_empty_nodes(c, false))
    }
    assert!(no_empty_nodes(tree.root(&g), true));
    assert_eq!(tree.prune(&g, dead), Ok(false), "nothing left to prune");
}

#[test]
#[ignore = "diagnostic: node statistics of the real IPv4 table"]
fn real_table_node_statistics() {
    use std::io::BufRead;
    let f = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/data/ipv4-prefixes.txt.gz")).unwrap();
    let tree = Tree::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
        let line = line.unwrap();
        let (k, l) = key4(line.split(' ').next().unwrap());
        insert(&tree, k, l);
    }
    fn walk(node: &Node<(u128, u8)>, depth: usize, stats: &mut [usize; 10]) {
        stats[depth] += 1;
        for c in node.children.iter() {
            walk(c, depth + 1, stats);
        }
    }
    let mut stats = [0usize; 10];
    walk(tree.root(&crate::reclaim::pin()), 0, &mut stats);
    eprintln!("nodes per level: {stats:?}, total {}", stats.iter().sum::<usize>());
}

/// A batch put in with `insert_batch` leaves the tree as the same insertions one by one would,
/// node for node (the same prefixes, in the same shape), skips exactly the insertions whose
/// `expected` value is not there, and keeps the version before it whole (a snapshot).
#[test]
fn insert_batch_matches_inserts_one_by_one() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut random_prefix = || {
        let r = next();
        // Lengths 0 to 32 over a 32-bit space, most of them /16 to /24 as in real tables.
        let len = if r % 4 == 0 { (r >> 8) % 33 } else { 16 + (r >> 8) % 9 } as u8;
        (((r >> 32) as u128) << 96 & mask(len), len)
    };
    // Fewer under miri, which interprets every step (the shape of the test is the same).
    let (present, batch_size) = if cfg!(miri) { (40, 200) } else { (300, 2000) };
    let (one_by_one, batched) = (Tree::new(), Tree::new());
    let before: Vec<(u128, u8)> = (0..present).map(|_| random_prefix()).collect();
    for &(k, l) in &before {
        insert(&one_by_one, k, l);
        insert(&batched, k, l);
    }
    let snapshot = batched.snapshot(&crate::reclaim::pin());
    let mut wanted: Vec<(u128, u8)> = (0..batch_size).map(|_| random_prefix()).collect();
    wanted.extend(before.iter().step_by(3)); // some present already
    wanted.sort();
    wanted.dedup();
    let guard = crate::reclaim::pin();
    let batch: Vec<Insert<(u128, u8)>> = wanted
        .iter()
        .enumerate()
        .map(|(i, &(key, len))| {
            let current = batched.get(key, len, &guard).map_or(std::ptr::null(), Ref::as_ptr);
            // Every other present prefix is expected absent: that insertion must be left out.
            let expected = if i % 2 == 0 { current } else { std::ptr::null() };
            Insert { key, len, expected, value: Ref::new((key, len)) }
        })
        .collect();
    let stale = batched.insert_batch(&batch, &guard);
    let mismatched: Vec<usize> = (0..batch.len())
        .filter(|&i| {
            batch[i].expected.is_null() && one_by_one.get(batch[i].key, batch[i].len, &guard).is_some()
        })
        .collect();
    assert!(!mismatched.is_empty());
    assert_eq!(stale, mismatched);
    for (i, item) in batch.iter().enumerate() {
        let current = batched.get(item.key, item.len, &guard).expect("every prefix is there");
        if stale.contains(&i) {
            assert!(!Ref::ptr_eq(current, &item.value), "a stale insertion changed the tree");
            assert!(!item.expected.is_null() || current.as_ptr() != item.expected);
        } else {
            assert!(Ref::ptr_eq(current, &item.value));
            insert(&one_by_one, item.key, item.len);
        }
    }
    let all = |tree: &Tree<(u128, u8)>| Iter::all(tree.root(&guard)).map(|r| **r).collect::<Vec<_>>();
    assert_eq!(all(&batched), all(&one_by_one));
    assert_eq!(count_nodes(batched.root(&guard)), count_nodes(one_by_one.root(&guard)));
    // The version before the batch is whole.
    let mut old: Vec<(u128, u8)> = Iter::all(&snapshot).map(|r| **r).collect();
    let mut expected_old = before.clone();
    expected_old.sort();
    expected_old.dedup();
    old.sort();
    assert_eq!(old, expected_old);
}
