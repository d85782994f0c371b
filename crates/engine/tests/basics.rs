//! The store end to end on the real disk: appends, flushes, compaction, reopen, limits, errors.

mod common;

use logstore_engine::testing::{CrashMode, FaultFs, ManualTime, Oracle};
use logstore_engine::{Durability, LogStore, NewEntry, Order, Query, StoreOptions};
use std::sync::Arc;

fn options() -> StoreOptions {
    StoreOptions { flush_threshold_entries: 100, ..StoreOptions::default() }
}

#[test]
fn many_appends_flush_compact_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), options()).unwrap();
    let mut oracle = Oracle::new();
    for chunk in 0..50 {
        let batch: Vec<NewEntry> = (0..40)
            .map(|i| {
                let e = NewEntry::new(format!("message {chunk}-{i}"));
                if i % 2 == 0 { e.metadata(format!(r#"{{"chunk":{chunk}}}"#)) } else { e }
            })
            .collect();
        let keys = store.append_batch(&batch).unwrap();
        oracle.appended(&keys, &batch);
    }
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!((stats.entries, stats.table_entries, stats.flushes), (2000, 2000, 17), "{stats:#?}");
    store.compact().unwrap();
    let stats = store.stats();
    assert_eq!((stats.entries, stats.tables), (2000, 1), "{stats:#?}");
    // Time-ordered tables never overlap: every compaction copied blocks.
    assert!(stats.compactions > 0, "{stats:#?}");
    assert_eq!(stats.compactions_copied, stats.compactions, "{stats:#?}");
    let all = Query::new();
    let got: Vec<_> = store.query(&all).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, oracle.query(&all));
    store.close().unwrap();

    // More tables (no compaction), to read through both read paths.
    let more = StoreOptions { compaction: None, ..options() };
    let store = LogStore::open(dir.path(), more.clone()).unwrap();
    assert_eq!(store.stats().wal_bytes, 32, "a clean close leaves an empty WAL segment");
    for chunk in 0..10 {
        let batch: Vec<NewEntry> =
            (0..60).map(|i| NewEntry::new(format!("late {chunk}-{i}"))).collect();
        let keys = store.append_batch(&batch).unwrap();
        oracle.appended(&keys, &batch);
    }
    store.close().unwrap();
    let some_key = oracle.entries().nth(1234).unwrap().key;
    for use_sparse_index in [true, false] {
        let store =
            LogStore::open(dir.path(), StoreOptions { use_sparse_index, ..more.clone() }).unwrap();
        assert!(store.stats().tables > 3);
        for query in [
            Query::new(),
            Query::new().order(Order::Descending).limit(1000),
            Query::new().metadata_equals("chunk", 7),
            Query::new().contains("message 3-1"),
            Query::new().time_range(some_key.timestamp_ms..=some_key.timestamp_ms),
            Query::new().after(some_key).limit(10),
            Query::new().order(Order::Descending).after(some_key).limit(10),
        ] {
            let got: Vec<_> = store.query(&query).unwrap().map(Result::unwrap).collect();
            assert_eq!(got, oracle.query(&query), "{query:?}, sparse index {use_sparse_index}");
        }
        store.close().unwrap();
    }
}

#[test]
fn overlapping_tables_are_merged_and_disjoint_ones_copied() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { compaction: None, ..options() };
    let store = LogStore::open(dir.path(), options).unwrap();
    let mut oracle = Oracle::new();
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            as u64;
    // Two tables whose key ranges interleave (backfilled timestamps, every other millisecond
    // an hour ago), then a table after both.
    for parity in 0..2u64 {
        let batch: Vec<NewEntry> = (0..100u64)
            .map(|i| {
                let at = now_ms - 3_600_000 + 2 * i + parity;
                NewEntry::new(format!("backfill {parity}-{i}")).timestamp_ms(at)
            })
            .collect();
        oracle.appended(&store.append_batch(&batch).unwrap(), &batch);
        store.flush().unwrap();
    }
    let batch: Vec<NewEntry> = (0..100).map(|i| NewEntry::new(format!("now {i}"))).collect();
    oracle.appended(&store.append_batch(&batch).unwrap(), &batch);
    store.flush().unwrap();
    assert_eq!(store.stats().tables, 3);
    store.compact().unwrap();
    let stats = store.stats();
    assert_eq!((stats.tables, stats.compactions, stats.compactions_copied), (1, 1, 0));
    for query in [Query::new(), Query::new().order(Order::Descending)] {
        let got: Vec<_> = store.query(&query).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, oracle.query(&query));
    }
    // A later, disjoint table joins the merged one by copy.
    let batch: Vec<NewEntry> = (0..100).map(|i| NewEntry::new(format!("later {i}"))).collect();
    oracle.appended(&store.append_batch(&batch).unwrap(), &batch);
    store.flush().unwrap();
    store.compact().unwrap();
    let stats = store.stats();
    assert_eq!((stats.tables, stats.compactions, stats.compactions_copied), (1, 2, 1));
    let got: Vec<_> = store.query(&Query::new()).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, oracle.query(&Query::new()));
    store.close().unwrap();
}

#[test]
fn acknowledged_entries_survive_a_crash_without_close() {
    let fs = FaultFs::new();
    // No flush, so the forgotten store's worker stays idle after the "crash" (the crash and
    // flush interleavings are model-checked in tests/model.rs and tests/flush_faults.rs).
    let options =
        StoreOptions { fs: Arc::new(fs.clone()), flush_threshold_entries: 10_000, ..options() };
    let store = LogStore::open("/data", options.clone()).unwrap();
    let mut oracle = Oracle::new();
    for i in 0..250 {
        let entry = NewEntry::new(format!("m{i}"));
        let key = store.append_entry(&entry).unwrap();
        oracle.appended(&[key], &[entry]);
    }
    std::mem::forget(store); // the process dies: no close, no flush of the memtable
    fs.crash(CrashMode::DropUnsynced); // and the machine loses what was not synced
    let store = LogStore::open("/data", options).unwrap();
    let got: Vec<_> = store.query(&Query::new()).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, oracle.query(&Query::new()));
}

#[test]
fn second_open_of_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), options()).unwrap();
    let err = LogStore::open(dir.path(), options()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
    store.close().unwrap();
    LogStore::open(dir.path(), options()).unwrap();
}

#[test]
fn bad_entries_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let time = Arc::new(ManualTime::new(1_000_000_000));
    let options = StoreOptions {
        time: time.clone(),
        backfill_past_ms: 1_000,
        backfill_future_ms: 100,
        ..options()
    };
    let store = LogStore::open(dir.path(), options).unwrap();
    let big = "x".repeat((1 << 20) + 1);
    let cases: Vec<(Vec<NewEntry>, &str)> = vec![
        (vec![NewEntry::new("ok"), NewEntry::new(big.as_str())], "exceeds the limit"),
        (vec![NewEntry::new("m").metadata("[1,2]")], "must be a JSON object"),
        (vec![NewEntry::new("m").metadata("{")], "not valid JSON"),
        (
            vec![NewEntry::new("m").timestamp_ms(1_000_000_000 - 1_001)],
            "outside the accepted window",
        ),
        (vec![NewEntry::new("m").timestamp_ms(1_000_000_000 + 101)], "outside the accepted window"),
        (vec![], "at least one"),
    ];
    for (batch, expected) in cases {
        let err = store.append_batch(&batch).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    assert_eq!(store.stats().appended_entries, 0);
    assert_eq!(store.query(&Query::new()).unwrap().count(), 0);
    // Within the window: accepted, and sorted by its own timestamp.
    let late =
        store.append_entry(&NewEntry::new("late").timestamp_ms(1_000_000_000 - 1_000)).unwrap();
    let now = store.append("now", None).unwrap();
    assert!(late < now);
    assert_eq!(now.timestamp_ms, 1_000_000_000);
}

#[test]
fn store_timestamps_never_go_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let time = Arc::new(ManualTime::new(5_000));
    let options = StoreOptions { time: time.clone(), ..options() };
    let store = LogStore::open(dir.path(), options.clone()).unwrap();
    let a = store.append("a", None).unwrap();
    time.set(4_000); // the wall clock steps back
    let b = store.append("b", None).unwrap();
    assert_eq!((a.timestamp_ms, b.timestamp_ms), (5_000, 5_000));
    assert!(b > a);
    store.close().unwrap();
    // ... also across a restart.
    let store = LogStore::open(dir.path(), options).unwrap();
    assert_eq!(store.append("c", None).unwrap().timestamp_ms, 5_000);
}

#[test]
fn none_durability_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { durability: Durability::None, ..options() };
    let store = LogStore::open(dir.path(), options.clone()).unwrap();
    for i in 0..500 {
        store.append(&format!("m{i}"), None).unwrap();
    }
    store.close().unwrap();
    let store = LogStore::open(dir.path(), options).unwrap();
    assert_eq!(store.query(&Query::new()).unwrap().count(), 500);
}

#[test]
fn paging_with_a_cursor_visits_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), options()).unwrap();
    let batch: Vec<NewEntry> = (0..1000).map(|i| NewEntry::new(format!("m{i}"))).collect();
    let keys = store.append_batch(&batch).unwrap();
    for order in [Order::Ascending, Order::Descending] {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let mut query = Query::new().order(order).limit(77);
            query.after = after;
            let page: Vec<_> = store.query(&query).unwrap().map(|e| e.unwrap().key).collect();
            if page.is_empty() {
                break;
            }
            after = page.last().copied();
            seen.extend(page);
        }
        let mut expected = keys.clone();
        if order == Order::Descending {
            expected.reverse();
        }
        assert_eq!(seen, expected);
    }
}

#[test]
fn unsynced_durability_flushes_without_a_single_sync() {
    let fs = FaultFs::new();
    let options = StoreOptions {
        fs: Arc::new(fs.clone()),
        durability: Durability::None,
        flush_threshold_entries: 100,
        ..options()
    };
    let store = LogStore::open("/data", options).unwrap();
    let before = fs.syncs();
    for i in 0..1_000 {
        store.append(&format!("m{i}"), None).unwrap();
    }
    // Ten memtables frozen: wait for their background flushes (no checkpoint is due).
    common::wait_for(&store, "ten flushes", |s| s.flushes >= 10);
    assert_eq!(fs.syncs(), before, "`None` durability: flushes must not sync the WAL or tables");
    store.close().unwrap();
    assert!(fs.syncs() > before, "close makes everything durable");
}
