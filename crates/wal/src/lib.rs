//! A durable, group-committing write-ahead log of opaque byte records.
//!
//! `logstore-wal` is the log under logstore's engine, and stands alone: any storage system that
//! must not lose an acknowledged write can append its records here, replay them after a crash,
//! and truncate what it has stored elsewhere.
//!
//! ```
//! use logstore_wal::{Wal, WalOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
//! let seq = wal.append(b"first").unwrap(); // on disk when this returns
//! let batch = wal.append_batch(&[b"second".as_slice(), b"third"]).unwrap(); // all or nothing
//! assert_eq!((seq, batch), (1, 2..4));
//! wal.close().unwrap();
//!
//! let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
//! let records: Vec<_> = wal.replay(1).unwrap().map(|r| r.unwrap().payload).collect();
//! assert_eq!(records, [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]);
//! wal.truncate_before(3).unwrap(); // records below 3 are stored elsewhere now
//! ```
//!
//! # Guarantees
//! - **Durability** per [`Durability`]: in `Sync` (the default) `append` returns only after
//!   `fdatasync`; concurrent appenders share syncs (group commit, described on [`Wal`]).
//!   `Batch` and `None` trade a window of machine-crash loss for speed.
//! - **Order and identity**: every record gets the next sequence number (from 1, contiguous,
//!   across segments); replay returns records in that order, each once, byte for byte.
//! - **Atomic batches**: recovery returns all of an `append_batch` or none of it.
//! - **No silent loss**: a write cut short by a crash (a torn tail) is truncated and reported in
//!   [`Wal::recovery`]; damage followed by valid records is corruption and fails `open` with the
//!   file and offset, unless a [`RecoveryMode`] says otherwise.
//! - **Poisoning**: after a failed write or sync every append fails with
//!   [`WalError::Poisoned`]; nothing is retried and reported durable.
//! - **Limits**: records up to [`WalOptions::record_bytes_max`] (default 1 MiB + 4 KiB) are
//!   accepted; a length above [`WalOptions::recovery_record_bytes_max`] (default 10 MiB) read
//!   from disk is damage, never an allocation. Batches are limited in records and bytes.
//!
//! # On disk
//! A log is a directory of segment files named by their id, 20 decimal digits:
//! `00000000000000000001.wal`, `00000000000000000002.wal`, ... A new segment is created as
//! `<id>.wal.tmp`, preallocated to `segment_bytes_max` with `fallocate` (zeros), given its header,
//! synced, renamed and the directory synced; leftover `.tmp` files are removed on open. While
//! appending in `Sync` mode the log also writes zeros over the preallocated space just ahead of
//! its records (see [Performance](#performance)): they read exactly as the preallocated zeros
//! do, so the format and recovery do not change. All integers are little-endian.
//!
//! Segment header, 32 bytes:
//! ```text
//! offset size  field
//!      0    8  magic            "LSTWALSG"
//!      8    4  format_version   u32 = 1
//!     12    8  segment_id       u64, equal to the file name's id
//!     20    8  first_seq        u64, sequence number of the segment's first record
//!     28    4  header_crc       u32, CRC32C of bytes 0..28
//! ```
//! Records follow back to back from offset 32. Each is a 20-byte frame then the payload:
//! ```text
//! offset size  field
//!      0    4  crc              u32, CRC32C of frame bytes 4..20 followed by the payload
//!      4    4  payload_len      u32, at most recovery_record_bytes_max
//!      8    1  kind             1 = full record, 2 = first / 3 = middle / 4 = last of a batch
//!      9    3  reserved         zero
//!     12    8  seq              u64, never 0
//!     20    n  payload          payload_len bytes
//! ```
//! The data ends at the first all-zero frame (the preallocated space) or at the end of the
//! file. No valid frame is all zeros (kind 0 is invalid), so zeros are never mistaken for a
//! record. A batch is written into one segment (a new one if it does not fit), so a batch never
//! spans two files.
//!
//! # Recovery
//! [`Wal::open`] reads every segment once, checking each header (magic, checksum, version, id,
//! and that its `first_seq` continues the previous segment) and each frame (kind, length within
//! the limit and the file, checksum, the expected sequence number, batch order). Before it starts
//! a new segment the log syncs the previous one, so only the **last** segment can hold an
//! unsynced write; damage is then classified:
//! - damage in the last segment with no valid record after it (found by scanning the rest of
//!   the file for a frame whose checksum matches) is a **torn tail**: the log is cut at the
//!   damage (the start of its batch, if it is in one) and every non-zero byte after the cut is
//!   zeroed and synced, so stale bytes can never be mistaken for records appended later;
//! - anything else is **corruption**, handled per [`RecoveryMode`]: fail naming file and offset
//!   (default `TolerateCorruptedTail`, and `AbsoluteConsistency`, which refuses torn tails
//!   too), cut there and drop everything after (`PointInTime`), or skip the damaged record or
//!   batch and go on (`SkipAnyCorruptedRecords`).
//!
//! # Performance
//! Four knobs of [`WalOptions`], each with a default that suits `Sync` on an SSD, `0` = off:
//! - [`commit_delay_max`](WalOptions::commit_delay_max) (1 ms): group commit's leader waits for
//!   the appenders it knows are on their way (inside `submit`, or acknowledged and still holding
//!   their [`Ticket`]), at most the recent `fdatasync` latency and never when it is alone, so
//!   that 32 threads share a sync rather than split into two halves taking turns.
//! - [`follower_yield_max`](WalOptions::follower_yield_max) (1 ms): group commit's followers
//!   yield their CPU, checking whether they are served, for three recent `fdatasync` latencies
//!   before they sleep, so that the leader need not wake each one with a syscall and an
//!   inter-processor interrupt; when that would exceed 1 ms (slow syncs), they sleep at once.
//! - [`zero_ahead_bytes`](WalOptions::zero_ahead_bytes) (1 MiB): synced appends land on blocks
//!   already written, so their `fdatasync` does not also commit the conversion of `fallocate`'s
//!   unwritten extents (this machine's notes: an `fdatasync` after overwriting a written block
//!   takes ~0.2 ms, after appending 0.3-0.65 ms). Costs one write of zeros per byte of log.
//! - [`writeback_interval_bytes`](WalOptions::writeback_interval_bytes) (1 MiB): in `None` and
//!   `Batch`, writeback starts as each MiB is written, so the disk works while appends go on.
//!
//! Measured figures and the command that prints them are in the README (WAL section) and in
//! `benches/wal.rs`.
//!
//! # Testing your own use
//! All I/O goes through [`logstore_fs::FileSystem`]; pass `logstore_fs::FaultFs` as
//! [`WalOptions::fs`] to fail the Nth write or sync, run out of space, or crash (dropping every
//! unsynced byte, or keeping a torn prefix of them), and check what your code recovers.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod commit_delay;
mod error;
mod format;
#[doc(hidden)]
pub mod fuzzing;
mod options;
mod recovery;
mod replay;
mod segment;
mod waiters;
mod wal;

pub use commit_delay::COMMIT_DELAY_MAX_DEFAULT;
pub use error::{Result, WalError};
pub use format::{FORMAT_VERSION, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
pub use options::{
    BATCH_BYTES_MAX_DEFAULT, BATCH_RECORDS_MAX_DEFAULT, COMMIT_DELAY_MAX_LIMIT, Durability,
    RECORD_BYTES_MAX_DEFAULT, RECOVERY_RECORD_BYTES_MAX_DEFAULT, RecoveryMode,
    SEGMENT_BYTES_MAX_DEFAULT, WRITEBACK_INTERVAL_BYTES_DEFAULT, WalOptions,
    ZERO_AHEAD_BYTES_DEFAULT,
};
pub use recovery::{Damage, RecoveryReport};
pub use replay::{Record, Replay};
pub use waiters::FOLLOWER_YIELD_MAX_DEFAULT;
pub use wal::{Ticket, Wal, WalStats};
