//! logstore's engine: [`LogStore`], a log store that composes a write-ahead log
//! (`logstore-wal`), memtables (`logstore-memtable`) and sorted tables (`logstore-sstable`).
//!
//! ```
//! use logstore_engine::{LogStore, NewEntry, Order, Query, StoreOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = LogStore::open(dir.path(), StoreOptions::default()).unwrap();
//! let key = store.append("disk full on /var", Some(r#"{"host":"db-1"}"#)).unwrap(); // durable now
//! store.append_batch(&[NewEntry::new("retrying"), NewEntry::new("recovered")]).unwrap();
//!
//! let newest: Vec<String> = store
//!     .query(&Query::new().order(Order::Descending).limit(2))
//!     .unwrap()
//!     .map(|entry| entry.unwrap().message.into_owned())
//!     .collect();
//! assert_eq!(newest, ["recovered", "retrying"]);
//! let hosts = store.query(&Query::new().metadata_equals("host", "db-1")).unwrap();
//! assert_eq!(hosts.map(|e| e.unwrap().key).collect::<Vec<_>>(), [key]);
//! store.close().unwrap();
//! ```
//!
//! # Guarantees
//! - **Durable acknowledgements.** With [`Durability::Sync`] (the default) an append returns
//!   only once its entries would survive a crash of the process or the machine; concurrent
//!   appends share `fdatasync`s (group commit). A batch is atomic: after a crash all of it or
//!   none of it is there. `Batch` and `None` durability trade a window of machine-crash loss
//!   (the newest acknowledged appends) for speed.
//! - **Keys.** Every entry gets a [`Key`]: its timestamp (milliseconds, assigned by the store
//!   from a clock that never goes backwards, even across restarts, or given by the client
//!   within [`StoreOptions::backfill_past_ms`] and [`StoreOptions::backfill_future_ms`]) and a
//!   `seq` that is unique and increases with write order, so entries of one millisecond keep
//!   the order they were written in.
//! - **Reads.** A query sees every append acknowledged before it started, in key order (or
//!   reverse), each exactly once, whatever flushes and compactions run meanwhile; it streams,
//!   holding one block per table and a batch per memtable, never the whole result.
//! - **Bad input** (an oversized message, metadata that is not a JSON object, a timestamp out
//!   of the window, an oversized request) is refused before anything is written, with an error
//!   naming the entry, the value and the limit.
//! - **Failures.** After an I/O failure on the write path the store refuses writes
//!   ([`StoreError::Poisoned`]) and keeps serving reads; reopening recovers what is on disk.
//!   Damaged files are reported with their path and offset, never served.
//! - **One process per directory**: an exclusive `flock` on `LOCK`, released when the process
//!   dies, so a killed server restarts cleanly and a second one gets [`StoreError::Locked`].
//!
//! # On disk
//! ```text
//! <dir>/LOCK                          the lock file (empty; the lock is an flock on it)
//! <dir>/MANIFEST                      which tables exist and how far the WAL is flushed
//! <dir>/wal/<20-digit id>.wal         WAL segments (format: logstore-wal's crate docs)
//! <dir>/tables/<20-digit id>.sst      sorted tables (format: logstore-sstable's `format`)
//! ```
//! The manifest is a header line (`logstore-manifest 1 crc32c=<hex> bytes=<n>`) followed by a
//! JSON body, replaced atomically (temporary file, fsync, rename, directory fsync). A WAL
//! record holds one entry: a flags byte (bit 0: client timestamp) and the entry in the binary
//! codec, its key's `seq` equal to the record's sequence number.
//!
//! # Write path
//! Every check of a request runs first, outside any lock. Then, under a short lock, an append takes
//! the next WAL sequence numbers as `seq`, submits the records to the WAL and inserts the entries
//! into the active memtable; then, outside the lock, it waits for the WAL's group commit. Readers
//! see a memtable entry only once the WAL acknowledged it. When the memtable reaches
//! [`StoreOptions::flush_threshold_entries`] or [`StoreOptions::flush_threshold_bytes`] it is
//! frozen and a background worker writes it as a table while writes go on; writers wait only when
//! [`StoreOptions::frozen_memtables_max`] memtables are waiting. A flush writes the table **without
//! a sync** and publishes it to readers (once the WAL has acknowledged every entry in it): the WAL
//! keeps every entry until a **checkpoint** makes the tables durable. A checkpoint syncs the WAL,
//! then each table written since the last one, then the tables folder, stores the manifest, removes
//! the tables it no longer lists, and deletes the WAL segments it covers, in that order (the exact
//! sequence, and why a crash between any two steps loses and duplicates nothing, is in the
//! `checkpoint` module). It runs after [`StoreOptions::checkpoint_interval_bytes`] of flushed
//! tables (by default one WAL segment, the unit the WAL shrinks by), and on [`LogStore::flush`],
//! [`LogStore::compact`] and [`LogStore::close`]. A crash before it loses nothing: the next open
//! removes every table file the stored manifest does not list and replays the WAL from the
//! manifest's flushed point. Compaction merges tables in tiers ([`compaction`]) and retention drops
//! whole tables by age or total size, the same way: a merge's inputs that no stored manifest listed
//! are deleted at once, the others after the next checkpoint.
//!
//! So a flush costs no sync at all (the previous design made four per flush: table file, tables
//! folder, manifest file, data directory; and an `fsync` of the WAL folder per segment deleted),
//! and tables merged away before a checkpoint never reach the disk. With the defaults, the durable
//! batch write of `logstore-bench`'s engine case (100,000 entries of 16-1,024 bytes, batches of
//! 1,000, a flush every 1,000) runs no checkpoint until `close`. The worker flushes ahead of
//! merging, even in the middle of a merge, so writers never wait behind a merge; and a merge of
//! tables with disjoint key ranges (a log's tables, written in time order) copies their blocks
//! ([`TableBuilder::append_table`](logstore_sstable::TableBuilder::append_table)) instead of
//! decoding and encoding every entry.
//!
//! What that bought, measured with `cargo xtask bench --versions V1 --scale 1000 --memory-scale 0
//! --runs 3` on the shared 2-core VM, the previous design (commit 8b48dc1) and this one alternating
//! three times, µs per entry of durable batches of 1,000 (each the median of 3 runs; the runs in
//! brackets): before 9.53 [9.53, 2.43, 14.18], 2.62 [3.69, 2.62, 2.46], 2.51 [2.56, 2.51, 2.48];
//! after 1.95 [1.95, 1.86, 3.99], 2.04 [2.04, 2.02, 2.20], 2.14 [2.14, 2.06, 3.07]. Most slow runs
//! met a disk loaded by other engineers' builds (the same run's single-writer floor, measured
//! seconds later, took 0.8-2.3 ms per small `fdatasync` instead of about 0.25): the design before
//! then fell dozens of flushes behind (72-93 tables left unmerged, against 37-51), and writers
//! waited for them. `close` after the writes and reads (it flushes, merges and checkpoints) went
//! from 125-444 ms to 54-166 ms per run. At 1,000,000 entries (`--engine-scale 0 --memory-scale
//! 1000000`, alternating, one run each) writes went from 6.77 and 5.48 to 4.52 and 4.70 µs per
//! entry, then to 5.84 and 3.89 (against 9.87 and 5.95 just before) once checkpoints let flushes
//! through; peak memory above the input stayed at 30.1-31.1 MiB.
//!
//! The profile taken then, by `callgrind` (20,000 entries, `None` durability): `append_batch` cost
//! 4,330 instructions per entry, 2,944 of them in `Wal::submit`, 2,300 of those combining a
//! payload's CRC32C with its frame's through a GF(2) shift; the WAL now checksums frame and
//! payload in one pass when it seals the frame, which removed that. Metadata's JSON-object
//! check took 646, the memtable 397. After that change, `cargo xtask bench --runs 3` measured
//! durable batches at 1.85 µs per entry (1.78 and 1.70 in two engine-only runs that hour).
//!
//! # Read path
//! A query takes the WAL's acknowledgement watermark, then the current version (the active
//! memtable, the frozen ones, the tables), and merges one cursor per memtable and one per
//! chain of tables with disjoint key ranges (logs arrive in time order, so nearly all tables
//! chain) with a binary heap; the sources are an enum, not trait objects, so the per-entry calls
//! inline. Tables outside the time range are never opened; within a table
//! the sparse index finds the blocks, read in place through a read-only memory map of the table
//! by default ([`StoreOptions::table_read`], `logstore_sstable::ReadOptions::mmap`; a reader
//! releases the pages it passes, so resident memory stays what it is with `pread`). Entries are
//! lent, from the decoded block of a table or from the memtable's chunks through a
//! `logstore_memtable::SnapshotCursor` ([`QueryIter::next_entry`]), or copied ([`QueryIter`] as
//! an `Iterator`).
//!
//! # Testing your own use
//! The `testing` feature adds the module `testing`: an in-memory oracle that answers queries as the
//! store must, a manual clock, and the fault-injecting file system to run the real store on
//! (crash it, fail its Nth write or sync, fill its disk).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod checkpoint;
mod clock;
pub mod compaction;
mod error;
mod filter;
mod manifest;
mod merge;
mod options;
mod query;
mod store;
mod version;
mod wal_entry;
mod worker;

#[cfg(feature = "testing")]
pub mod testing;

pub use clock::{SystemTimeSource, TimeSource};
pub use compaction::{CompactionOptions, RetentionOptions};
pub use error::{Result, StoreError};
pub use logstore_entry::{Entry, Key, Limits};
pub use logstore_memtable::Allocation;
pub use logstore_sstable::{Compression, ReadOptions, TableOptions};
pub use logstore_wal::{Durability, RecoveryMode};
pub use options::{
    BACKFILL_FUTURE_MS_DEFAULT, BACKFILL_PAST_MS_DEFAULT, CHECKPOINT_INTERVAL_BYTES_DEFAULT,
    FLUSH_THRESHOLD_BYTES_DEFAULT, FLUSH_THRESHOLD_ENTRIES_DEFAULT, FROZEN_MEMTABLES_MAX_DEFAULT,
    REQUEST_BYTES_MAX_DEFAULT, REQUEST_ENTRIES_MAX_DEFAULT, StoreOptions,
};
pub use query::{Order, Query, QueryIter};
pub use store::{LOCK_FILE, LogStore, MANIFEST_FILE, NewEntry, StoreStats, TABLES_DIR, WAL_DIR};
