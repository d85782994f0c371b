//! The memtable against a `BTreeMap` oracle: random insert orders (mostly increasing, with
//! stragglers and duplicates), random ranges read in both directions, both allocation
//! strategies, chunk sizes small enough that sealing and run merging happen constantly.

use std::collections::{BTreeMap, btree_map};
use std::ops::{Bound, RangeBounds};

use logstore_entry::{Entry, Key};
use logstore_memtable::{Allocation, Memtable, MemtableError, MemtableOptions, Snapshot};
use proptest::prelude::*;

/// What an entry's text is, derived from its key so the oracle can check it.
fn message_of(key: Key) -> String {
    format!("m{}-{}", key.timestamp_ms, "é".repeat((key.seq % 7) as usize))
}

fn metadata_of(key: Key) -> Option<String> {
    (key.seq % 3 != 0).then(|| format!("{{\"seq\": {}}}", key.seq))
}

/// Insert orders: keys mostly increasing (the store's case), some from the past (stragglers,
/// including exact repeats of earlier keys), over a small key space so ranges hit entries.
fn insert_keys() -> impl Strategy<Value = Vec<Key>> {
    let step = prop_oneof![
        6 => (1u64..5).prop_map(|d| (true, d)),  // forward by d ms
        3 => (0u64..400).prop_map(|d| (false, d)), // back by d ms: a straggler
    ];
    prop::collection::vec((step, 0u64..4), 0..400).prop_map(|steps| {
        let mut now = 200u64;
        steps
            .into_iter()
            .map(|((forward, delta), seq)| {
                let ts = if forward {
                    now += delta;
                    now
                } else {
                    now.saturating_sub(delta)
                };
                Key::new(ts, seq)
            })
            .collect()
    })
}

fn options() -> impl Strategy<Value = MemtableOptions> {
    (prop::sample::select(vec![Allocation::Heap, Allocation::Arena]), 1usize..9, 1usize..200)
        .prop_map(|(allocation, chunk_entries_max, chunk_text_bytes)| MemtableOptions {
            allocation,
            chunk_entries_max,
            chunk_text_bytes,
            ..MemtableOptions::default()
        })
}

fn key_bound() -> impl Strategy<Value = Bound<Key>> {
    let key = (0u64..1_500, 0u64..4).prop_map(|(ts, seq)| Key::new(ts, seq));
    prop_oneof![
        key.clone().prop_map(Bound::Included),
        key.prop_map(Bound::Excluded),
        Just(Bound::Unbounded),
    ]
}

/// Fills a memtable and the oracle with the same inserts; checks each insert's outcome.
fn fill(options: MemtableOptions, keys: &[Key]) -> (Memtable, BTreeMap<Key, Entry<'static>>) {
    let mut memtable = Memtable::new(options).unwrap();
    let mut oracle = BTreeMap::new();
    for &key in keys {
        let entry = Entry::new(key, message_of(key), metadata_of(key));
        let result = memtable.insert(&entry);
        match oracle.entry(key) {
            btree_map::Entry::Occupied(_) => {
                assert_eq!(result, Err(MemtableError::DuplicateKey { key }));
            }
            btree_map::Entry::Vacant(slot) => {
                assert_eq!(result, Ok(()));
                slot.insert(entry);
            }
        }
    }
    (memtable, oracle)
}

/// A range in std's form, empty rather than panicking when inverted.
fn oracle_range(
    oracle: &BTreeMap<Key, Entry<'static>>,
    (start, end): (Bound<Key>, Bound<Key>),
) -> Vec<Entry<'static>> {
    oracle.iter().filter(|(k, _)| (start, end).contains(k)).map(|(_, e)| e.clone()).collect()
}

fn check_snapshot(snapshot: &Snapshot, oracle: &BTreeMap<Key, Entry<'static>>) {
    assert_eq!(snapshot.len(), oracle.len());
    let all: Vec<Entry<'_>> = snapshot.iter().collect();
    let expected: Vec<&Entry<'static>> = oracle.values().collect();
    assert_eq!(all.iter().collect::<Vec<_>>(), expected);
    let payload: usize = oracle.values().map(Entry::payload_bytes).sum();
    assert_eq!(snapshot.payload_bytes(), payload);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_oracle(
        options in options(),
        keys in insert_keys(),
        ranges in prop::collection::vec((key_bound(), key_bound()), 1..8),
        probes in prop::collection::vec((0u64..1_500, 0u64..4), 0..20),
    ) {
        let (memtable, oracle) = fill(options, &keys);
        let snapshot = memtable.snapshot();
        check_snapshot(&snapshot, &oracle);
        prop_assert_eq!(memtable.len(), oracle.len());
        prop_assert!(memtable.bytes() >= memtable.payload_bytes());

        for range in ranges {
            let expected = oracle_range(&oracle, range);
            let ascending: Vec<Entry<'_>> = snapshot.range(range).collect();
            prop_assert_eq!(&ascending, &expected);
            let mut descending: Vec<Entry<'_>> = snapshot.range(range).rev().collect();
            descending.reverse();
            prop_assert_eq!(&descending, &expected);
            // The owning cursor, both ways, outliving the snapshot it was made from.
            for reverse in [false, true] {
                let mut cursor = snapshot.clone().into_cursor(range, reverse);
                let mut seen = Vec::new();
                while let Some(entry) = cursor.entry() {
                    prop_assert_eq!(cursor.key(), Some(entry.key));
                    seen.push(entry.into_owned());
                    cursor.advance();
                }
                prop_assert_eq!(cursor.key(), None);
                if reverse {
                    seen.reverse();
                }
                prop_assert_eq!(&seen, &expected);
            }
        }

        for (ts, seq) in probes {
            let key = Key::new(ts, seq);
            let found = snapshot.get(key);
            prop_assert_eq!(found.as_ref(), oracle.get(&key));
        }
        for key in keys.iter().take(20) {
            let found = snapshot.get(*key);
            prop_assert_eq!(found.as_ref(), oracle.get(key));
        }

        let frozen = memtable.freeze();
        check_snapshot(&frozen, &oracle);
    }

    /// Alternately taking from the front and the back meets in the middle, each entry once.
    #[test]
    fn both_ends_meet(
        options in options(),
        keys in insert_keys(),
        range in (key_bound(), key_bound()),
        sides in prop::collection::vec(any::<bool>(), 0..500),
    ) {
        let (memtable, oracle) = fill(options, &keys);
        let snapshot = memtable.snapshot();
        let expected = oracle_range(&oracle, range);
        let mut iter = snapshot.range(range);
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for from_front in sides.into_iter().chain(std::iter::repeat(true)) {
            let next = if from_front { iter.next() } else { iter.next_back() };
            match next {
                Some(entry) if from_front => front.push(entry),
                Some(entry) => back.push(entry),
                None => break,
            }
        }
        prop_assert!(iter.next().is_none() && iter.next_back().is_none());
        back.reverse();
        front.extend(back);
        prop_assert_eq!(front, expected);
    }

    /// A snapshot shows what was inserted before it, whatever is inserted after.
    #[test]
    fn snapshots_are_isolated(options in options(), keys in insert_keys(), split in any::<prop::sample::Index>()) {
        let split = split.index(keys.len() + 1);
        let (mut memtable, mut oracle) = fill(options, &keys[..split]);
        let snapshot = memtable.snapshot();
        let before = oracle.clone();
        for &key in &keys[split..] {
            let entry = Entry::new(key, message_of(key), metadata_of(key));
            if memtable.insert(&entry).is_ok() {
                oracle.insert(key, entry);
            }
        }
        check_snapshot(&snapshot, &before);
        check_snapshot(&memtable.snapshot(), &oracle);
    }
}

#[test]
fn range_bounds_of_every_kind() {
    let keys: Vec<Key> = (1..=10).map(|ts| Key::new(ts, 0)).collect();
    let options = MemtableOptions { chunk_entries_max: 3, ..MemtableOptions::default() };
    let (memtable, _) = fill(options, &keys);
    let snapshot = memtable.snapshot();
    let ts = |range: &dyn Fn(&Snapshot) -> Vec<Entry<'_>>| -> Vec<u64> {
        range(&snapshot).iter().map(|e| e.key.timestamp_ms).collect()
    };
    let k = |ts| Key::new(ts, 0);
    assert_eq!(ts(&|s| s.range(k(3)..k(6)).collect()), [3, 4, 5]);
    assert_eq!(ts(&|s| s.range(k(3)..=k(6)).collect()), [3, 4, 5, 6]);
    assert_eq!(ts(&|s| s.range(k(8)..).collect()), [8, 9, 10]);
    assert_eq!(ts(&|s| s.range(..k(3)).collect()), [1, 2]);
    assert_eq!(ts(&|s| s.range(..=k(3)).rev().collect()), [3, 2, 1]);
    assert_eq!(ts(&|s| s.range((Bound::Excluded(k(2)), Bound::Excluded(k(5)))).collect()), [3, 4]);
    assert_eq!(ts(&|s| s.range(k(6)..k(3)).collect()), Vec::<u64>::new());
    assert_eq!(ts(&|s| s.range(k(11)..).collect()), Vec::<u64>::new());
    assert!(snapshot.range(k(3)..k(3)).next().is_none());
}
