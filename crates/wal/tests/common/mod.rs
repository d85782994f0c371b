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
