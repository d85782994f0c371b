//! Many appenders on the real disk: every acknowledged record comes back exactly once, in the
//! order of its sequence number, which is the order each thread appended in.

mod common;

use common::{append_from_threads, assert_acknowledged_recovered, dir, options, records};
use logstore_fs::{CrashMode, FaultFs};
use logstore_wal::{Durability, FOLLOWER_YIELD_MAX_DEFAULT, Wal, WalOptions};
use std::collections::HashMap;
use std::time::Duration;

const THREADS: u64 = 16;
const APPENDS_PER_THREAD: u64 = 1_000;

fn encode(thread: u64, i: u64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(16 + (i % 64) as usize);
    payload.extend_from_slice(&thread.to_le_bytes());
    payload.extend_from_slice(&i.to_le_bytes());
    payload.resize(16 + (i % 64) as usize, thread as u8);
    payload
}

fn decode(payload: &[u8]) -> (u64, u64) {
    let thread = u64::from_le_bytes(payload[..8].try_into().unwrap());
    let i = u64::from_le_bytes(payload[8..16].try_into().unwrap());
    assert_eq!(payload, encode(thread, i), "payload altered");
    (thread, i)
}

#[test]
fn sixteen_threads_of_sync_appends_recover_exactly_once_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    // Small segments, so rotation happens under concurrency too.
    let options = WalOptions {
        durability: Durability::Sync,
        segment_bytes_max: 64 << 10,
        ..WalOptions::default()
    };
    let wal = Wal::open(tmp.path(), options.clone()).unwrap();
    let acked = append_from_threads(THREADS, APPENDS_PER_THREAD, |thread, i| {
        wal.append(&encode(thread, i)).unwrap()
    });
    let stats = wal.stats();
    let total = THREADS * APPENDS_PER_THREAD;
    assert_eq!(stats.appended_records, total);
    assert!(stats.segments > 1, "rotation happened: {stats:?}");
    eprintln!("{total} Sync appends by {THREADS} threads took {} fdatasyncs", stats.syncs);
    // Simulate a crash of the process: no close, no final sync. Sync mode needs none.
    std::mem::forget(wal);

    let wal = Wal::open(tmp.path(), options).unwrap();
    assert_eq!(wal.recovery().torn_tail, None);
    let mut seq_of: HashMap<(u64, u64), u64> = HashMap::new();
    for (expected_seq, record) in (1..).zip(wal.replay(1).unwrap()) {
        let record = record.unwrap();
        assert_eq!(record.seq, expected_seq, "sequence numbers are contiguous");
        let key = decode(&record.payload);
        assert!(seq_of.insert(key, record.seq).is_none(), "{key:?} recovered twice");
    }
    assert_eq!(seq_of.len() as u64, total, "every acknowledged record recovered");
    for (thread, seqs) in acked.iter().enumerate() {
        for (i, &seq) in seqs.iter().enumerate() {
            assert_eq!(seq_of[&(thread as u64, i as u64)], seq, "ack names the record's place");
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "a thread's appends keep their order");
    }
}

/// Followers that yield before they park (the default, with syncs as slow as a real disk's so
/// that three of them fit in the budget; a follower whose wait outlasts it parks after
/// yielding) and followers that park at once (yielding off): each append is acknowledged once,
/// with a sequence number of its own, and survives a power cut. A follower that returned
/// before its round's sync, or a wake-up lost, fails it (or hangs it). With yielding on, some
/// followers must have been served while they yielded; with it off, none.
#[test]
fn yielding_and_parked_followers_see_each_append_acknowledged_once_and_durable() {
    const THREADS: u64 = 32;
    const APPENDS_PER_THREAD: u64 = 150;
    let yield_budgets = [FOLLOWER_YIELD_MAX_DEFAULT, Duration::ZERO];
    for follower_yield_max in yield_budgets {
        let fs = FaultFs::new();
        fs.set_file_sync_latency(Duration::from_micros(200));
        let opts = WalOptions { follower_yield_max, ..options(&fs, 64 << 10) };
        let wal = Wal::open(dir(), opts.clone()).unwrap();
        let acked = append_from_threads(THREADS, APPENDS_PER_THREAD, |thread, i| {
            wal.append(&encode(thread, i)).unwrap()
        });
        let woken_yielding = wal.stats().followers_woken_yielding;
        if follower_yield_max.is_zero() {
            assert_eq!(woken_yielding, 0, "yielding off: every follower parks");
        } else {
            assert!(woken_yielding > 0, "no follower was served while it yielded");
        }
        let total = THREADS * APPENDS_PER_THREAD;
        let mut all: Vec<u64> = acked.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (1..=total).collect::<Vec<_>>(), "{follower_yield_max:?}: one ack each");
        std::mem::forget(wal);
        fs.crash(CrashMode::DropUnsynced);
        let wal = Wal::open(dir(), opts).unwrap();
        assert_acknowledged_recovered(&records(&wal), &acked, encode);
    }
}
