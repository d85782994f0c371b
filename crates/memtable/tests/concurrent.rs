//! One writer inserting (in order and out of order) while reader threads take snapshots: every
//! snapshot must be exactly the first `len` inserts, sorted, each once, and include every
//! insert that had returned before it was taken. Then the memtable is frozen while readers
//! keep reading.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use logstore_entry::{Entry, Key};
use logstore_memtable::{Allocation, Memtable, MemtableOptions, Snapshot};

const INSERTS: usize = 20_000;
const READERS: usize = 3;

/// The insertion order: increasing keys, with every 7th a straggler from the past.
fn insert_keys() -> Vec<Key> {
    (0..INSERTS as u64)
        .map(|i| {
            if i % 7 == 3 {
                Key::new(i * 10 - 25, i) // earlier than the keys before it
            } else {
                Key::new(i * 10, i)
            }
        })
        .collect()
}

fn message_of(key: Key) -> String {
    format!("entry {} {}", key.timestamp_ms, "x".repeat((key.seq % 50) as usize))
}

/// Checks `snapshot` is exactly the first `snapshot.len()` inserts, and at least `at_least`.
fn check_prefix(snapshot: &Snapshot, keys: &[Key], at_least: usize) {
    let len = snapshot.len();
    assert!(len >= at_least, "snapshot of {len} entries misses inserts that returned ({at_least})");
    let mut expected: Vec<Key> = keys[..len].to_vec();
    expected.sort();
    let mut count = 0;
    for (entry, key) in snapshot.iter().zip(&expected) {
        assert_eq!(entry.key, *key, "entry {count} of a snapshot of {len}");
        assert_eq!(entry.message, message_of(*key));
        count += 1;
    }
    assert_eq!(count, len, "iteration yields {count} of {len} entries");
    // Descending, spot-checked on the newest entries.
    let newest: Vec<Key> = snapshot.iter().rev().take(50).map(|e| e.key).collect();
    let expected_newest: Vec<Key> = expected.iter().rev().take(50).copied().collect();
    assert_eq!(newest, expected_newest);
}

fn run(allocation: Allocation) {
    let keys = Arc::new(insert_keys());
    let options =
        MemtableOptions { allocation, chunk_entries_max: 64, ..MemtableOptions::default() };
    let mut memtable = Memtable::new(options).unwrap();
    let reader = memtable.reader();
    let inserted = Arc::new(AtomicUsize::new(0));
    let frozen = Arc::new(AtomicBool::new(false));
    let mid_write = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(READERS + 1));

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (reader, keys, inserted, frozen, start, mid_write) = (
                reader.clone(),
                keys.clone(),
                inserted.clone(),
                frozen.clone(),
                start.clone(),
                mid_write.clone(),
            );
            thread::spawn(move || {
                start.wait();
                let mut snapshots = 0;
                let mut partial = 0;
                loop {
                    let done = frozen.load(Ordering::Acquire);
                    let at_least = inserted.load(Ordering::Acquire);
                    let snapshot = reader.snapshot();
                    check_prefix(&snapshot, &keys, at_least);
                    snapshots += 1;
                    if !snapshot.is_empty() && snapshot.len() < keys.len() {
                        partial += 1;
                        mid_write.fetch_add(1, Ordering::Relaxed);
                    }
                    if done {
                        assert_eq!(snapshot.len(), keys.len());
                        return (snapshots, partial);
                    }
                }
            })
        })
        .collect();

    start.wait();
    for (i, key) in keys.iter().enumerate() {
        memtable.insert(&Entry::new(*key, message_of(*key), None::<&str>)).unwrap();
        inserted.store(i + 1, Ordering::Release);
        if i == INSERTS / 2 {
            // Make sure readers do read while the writer writes, however threads are scheduled.
            while mid_write.load(Ordering::Relaxed) < READERS {
                thread::yield_now();
            }
        }
    }
    let stats = memtable.stats();
    assert_eq!(stats.stragglers, INSERTS / 7 + usize::from(INSERTS % 7 > 3));
    let snapshot = memtable.freeze();
    frozen.store(true, Ordering::Release);
    check_prefix(&snapshot, &keys, INSERTS);

    for handle in readers {
        let (snapshots, partial) = handle.join().unwrap();
        eprintln!("{allocation:?}: reader took {snapshots} snapshots, {partial} mid-write");
    }
    assert!(mid_write.load(Ordering::Relaxed) >= READERS);
}

#[test]
fn readers_see_consistent_prefixes_heap() {
    run(Allocation::Heap);
}

#[test]
fn readers_see_consistent_prefixes_arena() {
    run(Allocation::Arena);
}
