//! Helpers shared by the WAL's integration tests.
#![allow(dead_code)] // each test file uses a different subset

use logstore_fs::FaultFs;
use logstore_wal::{Durability, Record, RecoveryMode, Wal, WalOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The log directory used on a `FaultFs`.
pub fn dir() -> PathBuf {
    PathBuf::from("/db/wal")
}

/// Options on `fs` with small segments, for tests.
pub fn options(fs: &FaultFs, segment_bytes_max: u64) -> WalOptions {
    WalOptions { segment_bytes_max, fs: Arc::new(fs.clone()), ..WalOptions::default() }
}

pub fn with_mode(mut options: WalOptions, mode: RecoveryMode) -> WalOptions {
    options.recovery_mode = mode;
    options
}

pub fn with_durability(mut options: WalOptions, durability: Durability) -> WalOptions {
    options.durability = durability;
    options
}

/// Every record of the log, in order.
pub fn records(wal: &Wal) -> Vec<Record> {
    wal.replay(0).unwrap().collect::<Result<_, _>>().unwrap()
}

/// The payloads of `records`.
pub fn payloads(records: &[Record]) -> Vec<Vec<u8>> {
    records.iter().map(|r| r.payload.clone()).collect()
}

/// A recognisable payload of `len` bytes for record number `i`.
pub fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut out = format!("record-{i}-").into_bytes();
    out.resize(len, b'a' + (i % 26) as u8);
    out.truncate(len);
    out
}

/// The path of segment `id` in `dir`.
pub fn segment(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Runs `threads` threads at once, thread `t` calling `append(t, i)` for each `i` in
/// `0..per_thread`; returns each thread's sequence numbers, in its order.
pub fn append_from_threads(
    threads: u64,
    per_thread: u64,
    append: impl Fn(u64, u64) -> u64 + Sync,
) -> Vec<Vec<u64>> {
    let append = &append;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| scope.spawn(move || (0..per_thread).map(|i| append(t, i)).collect()))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    })
}

/// Checks that `recovered` (the whole log) holds exactly the acknowledged records: as many,
/// each at its sequence number with the payload `expected(thread, i)`, and each thread's in
/// the order it appended them.
pub fn assert_acknowledged_recovered(
    recovered: &[Record],
    acked: &[Vec<u64>],
    expected: impl Fn(u64, u64) -> Vec<u8>,
) {
    let total: usize = acked.iter().map(Vec::len).sum();
    assert_eq!(recovered.len(), total, "every acknowledged record recovered, nothing more");
    for (thread, seqs) in (0..).zip(acked) {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "thread {thread} kept its order");
        for (i, &seq) in (0..).zip(seqs) {
            let record = &recovered[(seq - 1) as usize];
            assert_eq!(record.seq, seq);
            assert_eq!(record.payload, expected(thread, i), "the ack names its record");
        }
    }
}
