//! Memtable: insert (heap vs arena allocation, in order and with stragglers), freeing, range
//! iteration both ways, point reads and snapshots.
//!
//! ```text
//! cargo bench -p logstore-benches --bench memtable
//! ```
//!
//! The workload is [`logstore_benches::entries`]`(10_000, 7)`: increasing keys, messages of
//! 16..=1,024 bytes, metadata on every other entry. "stragglers" moves every 10th entry 500 ms
//! into the past, so it arrives out of order. Groups report per-iteration time for 10,000
//! entries unless their name says otherwise; `thrpt` gives entries per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use logstore_entry::{Entry, Key};
use logstore_memtable::{Allocation, Memtable, Snapshot};

const ENTRIES: usize = 10_000;
const SEED: u64 = 7;
const STRATEGIES: [(&str, Allocation); 2] =
    [("heap", Allocation::Heap), ("arena", Allocation::Arena)];

/// The workload with every 10th entry sent 500 ms into the past.
fn with_stragglers(entries: &[Entry<'static>]) -> Vec<Entry<'static>> {
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let mut entry = entry.clone();
            if i % 10 == 9 {
                entry.key = Key::new(entry.key.timestamp_ms - 500, entry.key.seq);
            }
            entry
        })
        .collect()
}

fn filled(allocation: Allocation, entries: &[Entry<'_>]) -> Memtable {
    let mut memtable = Memtable::with_allocation(allocation);
    for entry in entries {
        memtable.insert(entry).expect("unique keys within the limits");
    }
    memtable
}

fn print_memory(entries: &[Entry<'_>]) {
    for (name, allocation) in STRATEGIES {
        let memtable = filled(allocation, entries);
        let stats = memtable.stats();
        eprintln!(
            "memory/{name}: {} entries, payload {} bytes, bytes() {} ({:.1} per entry, {:.3}x payload), {} chunks",
            stats.entries,
            stats.payload_bytes,
            stats.bytes,
            stats.bytes as f64 / stats.entries as f64,
            stats.bytes as f64 / stats.payload_bytes as f64,
            stats.chunks
        );
    }
}

fn inserts(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);
    let stragglers = with_stragglers(&entries);
    print_memory(&entries);

    let mut group = c.benchmark_group("memtable/insert");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for (name, allocation) in STRATEGIES {
        // The memtable is returned, so criterion drops it outside the measurement.
        group.bench_function(format!("{name}/in_order"), |b| {
            b.iter_batched(|| (), |()| filled(allocation, &entries), BatchSize::PerIteration)
        });
        group.bench_function(format!("{name}/stragglers_10pct"), |b| {
            b.iter_batched(|| (), |()| filled(allocation, &stragglers), BatchSize::PerIteration)
        });
        group.bench_function(format!("{name}/drop"), |b| {
            b.iter_batched(
                || filled(allocation, &entries),
                |memtable| drop(black_box(memtable)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);
    let stragglers = with_stragglers(&entries);
    let first_ms = entries[0].key.timestamp_ms;

    let mut group = c.benchmark_group("memtable/scan");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for (name, allocation) in STRATEGIES {
        for (order, workload) in [("in_order", &entries), ("stragglers_10pct", &stragglers)] {
            let snapshot: Snapshot = filled(allocation, workload).snapshot();
            group.bench_function(format!("{name}/{order}/ascending"), |b| {
                b.iter(|| snapshot.iter().map(|e| e.message.len()).sum::<usize>())
            });
            group.bench_function(format!("{name}/{order}/descending"), |b| {
                b.iter(|| snapshot.iter().rev().map(|e| e.message.len()).sum::<usize>())
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("memtable/read");
    for (name, allocation) in STRATEGIES {
        let memtable = filled(allocation, &stragglers);
        let snapshot = memtable.snapshot();
        let mut i = 0u64;
        group.bench_function(format!("{name}/get"), |b| {
            b.iter(|| {
                i = (i + 7_919) % ENTRIES as u64;
                let key = Key::new(first_ms + i, i + 1);
                black_box(snapshot.get(black_box(key)).is_some())
            })
        });
        group.bench_function(format!("{name}/range_100"), |b| {
            b.iter(|| {
                i = (i + 7_919) % (ENTRIES as u64 - 100);
                let from = Key::new(first_ms + i, 0);
                let to = Key::new(first_ms + i + 100, 0);
                snapshot.range(from..to).map(|e| e.message.len()).sum::<usize>()
            })
        });
        // A snapshot when nothing changed since the last one: Arc clones only.
        group.bench_function(format!("{name}/snapshot_clean"), |b| {
            b.iter(|| black_box(memtable.snapshot()))
        });
    }
    group.finish();

    // A snapshot after an insert: the open chunk and straggler buffer are copied.
    let mut group = c.benchmark_group("memtable/insert_then_snapshot");
    let message = "x".repeat(512);
    for (name, allocation) in STRATEGIES {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                let mut memtable = filled(allocation, &stragglers);
                for _ in 0..iterations {
                    if memtable.len() >= 10 * ENTRIES {
                        memtable = filled(allocation, &stragglers); // not timed
                    }
                    let seq = memtable.len() as u64 + 1;
                    let key = Key::new(first_ms + seq, seq);
                    let entry = Entry::new(key, message.as_str(), None::<&str>);
                    let start = Instant::now();
                    memtable.insert(&entry).expect("room for the benchmark's inserts");
                    black_box(memtable.snapshot());
                    elapsed += start.elapsed();
                }
                elapsed
            })
        });
    }
    group.finish();
}

criterion_group!(benches, inserts, reads);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
