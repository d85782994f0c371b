//! The engine's hot paths, through `LogStore`'s public API.
//!
//! ```text
//! cargo bench -p logstore-benches --bench engine
//! ```
//!
//! The workload is [`logstore_benches::entries`]`(20_000, 42)`: messages of 16..=1,024 bytes,
//! metadata on every other entry. Stores live in a fresh temporary directory on the real file
//! system, with `Durability::None` so the figures are the engine's CPU, not `fdatasync`
//! (`cargo xtask bench` measures the synced paths), and the default flush every 1,000 entries.
//!
//! - `engine/append/single`: one `append` per entry, a fresh store per sample.
//! - `engine/append/batch_1000`: `append_batch` of 1,000 entries (throughput per entry).
//! - `engine/scan/tables`: a full-range `query` over the 20,000 entries in 20 tables written
//!   in time order (one chain of disjoint tables: no heap merge), entries lent, not copied.
//! - `engine/scan/merge_8`: the same entries in 8 tables whose key ranges all overlap (client
//!   timestamps interleaved: table `j` holds every 8th millisecond from `j`), so every entry
//!   passes through the 8-way heap merge.
//! - `engine/filtered/*`: a full-range `query` with one filter over the 20,000 entries in 20
//!   tables (the store of `engine/scan/tables`), entries lent, not copied; throughput per entry
//!   read, matching or not. `contains_1pct`: `contains("failure after r")` (0.98% of entries);
//!   `contains_50pct`: `contains("d a")` (50.1%); `meta_level_error`:
//!   `metadata_equals("level", "error")` (16.7%: the workload's nearest to 10%);
//!   `meta_attempt_none`: `metadata_equals("attempt", 10)` (none: every metadata has the key,
//!   with a number in 0..=9); `meta_key_absent`: `metadata_equals("region", "eu")` (none: no
//!   metadata has the key).

use criterion::{Criterion, Throughput, criterion_group};
use logstore_engine::{Durability, LogStore, NewEntry, Query, StoreOptions};
use logstore_entry::Entry;
use serde_json::Value;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ENTRIES: usize = 20_000;
const SEED: u64 = 42;
const BATCH: usize = 1_000;
const MERGE_TABLES: usize = 8;

fn options() -> StoreOptions {
    StoreOptions { durability: Durability::None, compaction: None, ..StoreOptions::default() }
}

fn new_entry<'a>(e: &'a Entry<'_>) -> NewEntry<'a> {
    let entry = NewEntry::new(e.message.as_ref());
    match &e.metadata {
        Some(m) => entry.metadata(m.as_ref()),
        None => entry,
    }
}

fn appends(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);
    let mut group = c.benchmark_group("engine/append");
    group.throughput(Throughput::Elements(1));
    group.bench_function("single", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = LogStore::open(dir.path(), options()).expect("open");
            let start = Instant::now();
            for i in 0..iters as usize {
                let e = &entries[i % ENTRIES];
                black_box(store.append(&e.message, e.metadata.as_deref()).expect("append"));
            }
            let elapsed = start.elapsed();
            store.close().expect("close");
            elapsed
        })
    });
    group.throughput(Throughput::Elements(BATCH as u64));
    let batches: Vec<Vec<NewEntry<'_>>> =
        entries.chunks(BATCH).map(|chunk| chunk.iter().map(new_entry).collect()).collect();
    group.bench_function("batch_1000", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = LogStore::open(dir.path(), options()).expect("open");
            let start = Instant::now();
            for i in 0..iters as usize {
                black_box(store.append_batch(&batches[i % batches.len()]).expect("append_batch"));
            }
            let elapsed = start.elapsed();
            store.close().expect("close");
            elapsed
        })
    });
    group.finish();
}

/// Reads what `query` matches, borrowing each entry; returns how many and the bytes seen.
fn scan(store: &LogStore, query: &Query) -> (usize, usize) {
    let mut iter = store.query(query).expect("query");
    let (mut count, mut bytes) = (0, 0);
    while let Some(e) = iter.next_entry() {
        let e = e.expect("entry");
        count += 1;
        bytes += e.message.len() + e.metadata.map_or(0, |m| m.len());
    }
    (count, bytes)
}

/// A store of `entries` written in batches with the default options and flushed: one table
/// per `flush_threshold_entries`, in time order (20 for the 20,000 entries).
fn chained_store(entries: &[Entry<'_>]) -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LogStore::open(dir.path(), options()).expect("open");
    let all: Vec<NewEntry<'_>> = entries.iter().map(new_entry).collect();
    for batch in all.chunks(BATCH) {
        store.append_batch(batch).expect("append_batch");
    }
    store.flush().expect("flush");
    let tables = entries.len().div_ceil(options().flush_threshold_entries);
    assert_eq!(store.stats().tables, tables, "{:?}", store.stats());
    (dir, store)
}

fn scans(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);
    let mut group = c.benchmark_group("engine/scan");
    group.throughput(Throughput::Elements(ENTRIES as u64));

    let (_chained_dir, chained) = chained_store(&entries);
    let expected = scan(&chained, &Query::new());
    group.bench_function("tables", |b| {
        b.iter(|| assert_eq!(scan(&chained, &Query::new()), expected))
    });

    // Overlapping tables: client timestamps an hour back, interleaved across the tables.
    let merged_dir = tempfile::tempdir().expect("temporary directory");
    let one_table_per_flush = StoreOptions {
        flush_threshold_entries: ENTRIES,
        flush_threshold_bytes: usize::MAX,
        ..options()
    };
    let merged = LogStore::open(merged_dir.path(), one_table_per_flush).expect("open");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let base_ms = now_ms - Duration::from_secs(3_600).as_millis() as u64;
    for table in 0..MERGE_TABLES {
        let batch: Vec<NewEntry<'_>> = (table..ENTRIES)
            .step_by(MERGE_TABLES)
            .map(|i| new_entry(&entries[i]).timestamp_ms(base_ms + i as u64))
            .collect();
        for chunk in batch.chunks(BATCH) {
            merged.append_batch(chunk).expect("append_batch");
        }
        merged.flush().expect("flush");
    }
    assert_eq!(merged.stats().tables, MERGE_TABLES, "{:?}", merged.stats());
    assert_eq!(scan(&merged, &Query::new()), expected);
    group.bench_function("merge_8", |b| {
        b.iter(|| assert_eq!(scan(&merged, &Query::new()), expected))
    });
    group.finish();
    chained.close().expect("close");
    merged.close().expect("close");
}

fn filtered(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);
    let mut group = c.benchmark_group("engine/filtered");
    group.throughput(Throughput::Elements(ENTRIES as u64));

    let (_dir, store) = chained_store(&entries);

    let cases: [(&str, Query, f64); 5] = [
        ("contains_1pct", Query::new().contains("failure after r"), 0.0098),
        ("contains_50pct", Query::new().contains("d a"), 0.501),
        ("meta_level_error", Query::new().metadata_equals("level", "error"), 0.167),
        ("meta_attempt_none", Query::new().metadata_equals("attempt", 10), 0.0),
        ("meta_key_absent", Query::new().metadata_equals("region", "eu"), 0.0),
    ];
    for (name, query, fraction) in cases {
        // What the query must return, counted straight from the workload.
        let expected_count = entries
            .iter()
            .filter(|e| query.contains.as_ref().is_none_or(|t| e.message.contains(t.as_str())))
            .filter(|e| {
                query.metadata_equals.is_empty()
                    || e.metadata.as_ref().is_some_and(|m| {
                        let value: Value = serde_json::from_str(m).expect("metadata");
                        query.metadata_equals.iter().all(|(k, v)| value.get(k) == Some(v))
                    })
            })
            .count();
        let seen = expected_count as f64 / ENTRIES as f64;
        assert!((seen - fraction).abs() < 0.001, "{name}: {seen} of entries match");
        let expected = scan(&store, &query);
        assert_eq!(expected.0, expected_count, "{name}");
        group.bench_function(name, |b| b.iter(|| assert_eq!(scan(&store, &query), expected)));
    }
    group.finish();
    store.close().expect("close");
}

criterion_group!(benches, appends, scans, filtered);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
