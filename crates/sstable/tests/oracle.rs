//! Range reads, both ways, equal a `BTreeMap` holding the same entries: random key sets,
//! random ranges, block sizes from one entry per block to 16 KiB, every codec, with and without
//! compression.

mod common;

use common::{WORDS, build, db_path, fault_fs, open, read_range};
use logstore_entry::{CodecId, Entry, Key};
use logstore_sstable::{Compression, Direction, ReadOptions, Table, TableOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

fn arb_key() -> impl Strategy<Value = Key> {
    // Few timestamps (so many entries share one), seqs in any order, and the extremes.
    prop_oneof![
        8 => (0u64..64, 0u64..1_000).prop_map(|(t, s)| Key::new(1_700_000_000_000 + t, s)),
        1 => (prop_oneof![Just(0u64), Just(u64::MAX)], any::<u64>()).prop_map(|(t, s)| Key::new(t, s)),
    ]
}

fn arb_text() -> impl Strategy<Value = (String, Option<String>)> {
    let message = prop_oneof![
        // Repetitive, so LZ4 finds something.
        proptest::collection::vec(proptest::sample::select(WORDS), 0..30).prop_map(|w| w.join(" ")),
        // Anything printable, including multi-byte characters and quotes.
        "\\PC{0,40}",
    ];
    let metadata = proptest::option::of(
        (any::<u32>(), "[a-z\"\\\\é]{0,8}")
            .prop_map(|(n, s)| format!(r#"{{"n":{n},"s":{}}}"#, serde_json_string(&s))),
    );
    (message, metadata)
}

/// `s` as a JSON string literal.
fn serde_json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn arb_options() -> impl Strategy<Value = TableOptions> {
    (
        proptest::sample::select(CodecId::ALL.to_vec()),
        proptest::sample::select(Compression::ALL.to_vec()),
        prop_oneof![Just(1u32), Just(64), Just(300), Just(1_000), Just(4_096), Just(16_384)],
    )
        .prop_map(|(codec, compression, block_target_bytes)| TableOptions {
            codec,
            compression,
            block_target_bytes,
        })
}

/// A probe key: often one of the table's keys or a neighbour of one, sometimes anything.
fn probe(keys: &[Key], pick: (u8, usize, Key)) -> Key {
    let (how, i, random) = pick;
    let key = keys[i % keys.len()];
    match how % 4 {
        0 => key,
        1 => key.successor().unwrap_or(key),
        2 => key.predecessor().unwrap_or(key),
        _ => random,
    }
}

fn bound(kind: u8, key: Key) -> Bound<Key> {
    match kind % 3 {
        0 => Bound::Included(key),
        1 => Bound::Excluded(key),
        _ => Bound::Unbounded,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ranges_match_a_btreemap(
        rows in proptest::collection::btree_map(arb_key(), arb_text(), 1..250),
        options in arb_options(),
        readahead_bytes_max in prop_oneof![Just(1u32), Just(700), Just(5_000), Just(1 << 20)],
        mmap in any::<bool>(),
        probes in proptest::collection::vec(
            ((any::<u8>(), any::<usize>(), arb_key()), (any::<u8>(), any::<usize>(), arb_key()), any::<(u8, u8)>()),
            1..12,
        ),
    ) {
        let oracle: BTreeMap<Key, Entry<'static>> = rows
            .into_iter()
            .map(|(key, (message, metadata))| (key, Entry::new(key, message, metadata)))
            .collect();
        let entries: Vec<Entry<'static>> = oracle.values().cloned().collect();
        let fs = fault_fs();
        let path = db_path("t.sst");
        let stats = build(&fs, &path, &entries, options);
        // Small read-ahead limits make `pread` scans cross many chunk boundaries; `mmap` reads
        // every block in place from the file system's view instead.
        let read_options = ReadOptions { readahead_bytes_max, mmap, ..ReadOptions::default() };
        let table = Table::open(&fs, &path, read_options).unwrap();
        prop_assert_eq!(table.stats(), stats);
        prop_assert_eq!(table.verify().unwrap(), stats);
        prop_assert_eq!(stats.entry_count, entries.len() as u64);
        if options.block_target_bytes == 1 {
            prop_assert_eq!(stats.block_count as usize, entries.len());
        }

        // Whole table, both ways, both APIs.
        prop_assert_eq!(&read_range(&table, Key::MIN, Key::MAX, Direction::Forward).unwrap(), &entries);
        let backward: Vec<Entry<'static>> = table
            .scan(Direction::Backward)
            .unwrap()
            .into_entries()
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert!(backward.iter().eq(entries.iter().rev()));

        let keys: Vec<Key> = oracle.keys().copied().collect();
        for (a, b, (lo_kind, hi_kind)) in probes {
            let (a, b) = (probe(&keys, a), probe(&keys, b));
            let range = (bound(lo_kind, a.min(b)), bound(hi_kind, a.max(b)));
            // (`BTreeMap::range` panics on some ranges a table accepts, such as `(a, a)` both
            // excluded, so the oracle filters.)
            let want: Vec<&Entry<'static>> =
                oracle.values().filter(|e| range.contains(&e.key)).collect();
            // Skipping a table that does not overlap never loses an entry.
            if !table.overlaps(range) {
                prop_assert!(want.is_empty());
            }
            let forward: Vec<Entry<'static>> = table
                .range(range, Direction::Forward)
                .unwrap()
                .into_entries()
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert!(forward.iter().eq(want.iter().copied()), "forward {:?}", range);
            let backward: Vec<Entry<'static>> = table
                .range(range, Direction::Backward)
                .unwrap()
                .into_entries()
                .collect::<Result<_, _>>()
                .unwrap();
            prop_assert!(backward.iter().eq(want.iter().rev().copied()), "backward {:?}", range);

            // The same probes as timestamps.
            let (t0, t1) = (a.timestamp_ms.min(b.timestamp_ms), a.timestamp_ms.max(b.timestamp_ms));
            let want: Vec<&Entry<'static>> = oracle
                .values()
                .filter(|e| (t0..=t1).contains(&e.key.timestamp_ms))
                .collect();
            for direction in [Direction::Forward, Direction::Backward] {
                let got: Vec<Entry<'static>> = table
                    .range_timestamps(t0..=t1, direction)
                    .unwrap()
                    .into_entries()
                    .collect::<Result<_, _>>()
                    .unwrap();
                match direction {
                    Direction::Forward => prop_assert!(got.iter().eq(want.iter().copied())),
                    Direction::Backward => prop_assert!(got.iter().eq(want.iter().rev().copied())),
                }
            }
            if !table.overlaps_timestamps(t0..=t1) {
                prop_assert!(want.is_empty());
            }
        }
    }
}

#[test]
fn lz4_tables_compress_repetitive_logs() {
    let entries = common::sample_entries(2_000);
    for codec in CodecId::ALL {
        let fs = fault_fs();
        let plain = build(
            &fs,
            &db_path("plain"),
            &entries,
            TableOptions { codec, ..TableOptions::default() },
        );
        let lz4 = build(
            &fs,
            &db_path("lz4"),
            &entries,
            TableOptions { codec, compression: Compression::Lz4, ..TableOptions::default() },
        );
        assert_eq!(plain.raw_data_bytes, lz4.raw_data_bytes, "{codec}");
        assert_eq!(plain.data_bytes, plain.raw_data_bytes, "{codec}");
        assert!(lz4.data_bytes * 2 < lz4.raw_data_bytes, "{codec}: {lz4:?}");
        let table = open(&fs, &db_path("lz4")).unwrap();
        assert_eq!(
            read_range(&table, Key::MIN, Key::MAX, Direction::Backward).unwrap().len(),
            2_000
        );
        assert_eq!(table.verify().unwrap(), lz4);
    }
}
