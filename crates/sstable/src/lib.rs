//! Immutable sorted tables of log entries: logstore's on-disk runs.
//!
//! The engine flushes a frozen memtable into a table, and compaction merges tables into new
//! ones, both through a [`TableBuilder`] fed entries in strictly increasing key order. A
//! [`Table`] is read by key range ([`Table::range`]) or timestamp range
//! ([`Table::range_timestamps`]), forwards or backwards, through a [`TableCursor`].
//!
//! ```
//! use logstore_entry::{Entry, Key};
//! use logstore_fs::StdFs;
//! use logstore_sstable::{Compression, Direction, ReadOptions, Table, TableBuilder, TableOptions};
//! use std::sync::Arc;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("000001.sst");
//! let options = TableOptions { compression: Compression::Lz4, ..TableOptions::default() };
//! let mut builder = TableBuilder::create(Arc::new(StdFs), &path, options)?;
//! for i in 0..1_000u64 {
//!     let metadata = (i % 2 == 0).then(|| format!(r#"{{"worker":{}}}"#, i % 7));
//!     builder.add(&Entry::new(Key::new(1_700_000_000_000 + i, i), format!("job {i} done"), metadata))?;
//! }
//! let stats = builder.finish()?; // written as 000001.sst.tmp, synced, renamed, dir synced
//! assert_eq!(stats.entry_count, 1_000);
//!
//! // Opening reads the footer and the index only.
//! let table = Table::open(&StdFs, &path, ReadOptions::default())?;
//! assert_eq!(table.min_timestamp_ms(), 1_700_000_000_000);
//!
//! // The three newest entries of a time window, newest first.
//! let mut cursor = table.range_timestamps(
//!     1_700_000_000_100..=1_700_000_000_199,
//!     Direction::Backward,
//! )?;
//! let mut newest = Vec::new();
//! while let Some(entry) = cursor.entry() {
//!     let entry = entry?; // borrows from the decoded block
//!     newest.push(entry.message.to_string());
//!     if newest.len() == 3 {
//!         break;
//!     }
//!     cursor.advance()?;
//! }
//! assert_eq!(newest, ["job 199 done", "job 198 done", "job 197 done"]);
//!
//! // Or as a standard iterator of owned entries.
//! let keys: Vec<Key> = table
//!     .range(Key::new(1_700_000_000_010, 0)..Key::new(1_700_000_000_013, 0), Direction::Forward)?
//!     .into_entries()
//!     .map(|e| e.map(|e| e.key))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(keys.len(), 3);
//!
//! // Read and check every block and entry.
//! assert_eq!(table.verify()?, stats);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format
//!
//! Data blocks (16 KiB of decoded records by default, each stored raw or LZ4-compressed), a
//! sparse index with one fixed-size entry per block (its first and last keys, place, sizes,
//! entry count and CRC32C), and a fixed 88-byte footer (index place and checksum, codec,
//! compression, entry count, raw payload size, min and max keys, version, its own CRC32C,
//! magic). [`format`] draws every byte and says what each checksum covers.
//!
//! # Reading
//!
//! [`Table::open`] reads the footer and the index, nothing else, and checks them whole. The
//! footer's min and max keys (so min and max timestamps: keys sort by timestamp first) let a
//! caller skip a table without reading it ([`Table::overlaps_timestamps`]). A range read
//! binary-searches the index for the blocks that can hold its keys (exactly those: the index
//! has both first and last keys), reads them with large sequential reads that grow as a scan
//! goes on, verifies each block's checksum before decoding it, and decodes entries lazily,
//! borrowing their text from the block. The cursor module documents the algorithm and the
//! choice of a cursor over an `Iterator`; a merge of tables and memtables compares
//! [`TableCursor::key`] (no decoding) and decodes only what it yields.
//!
//! # Durability and damage
//!
//! A table is written to `<name>.tmp`, synced, renamed, and its directory synced, all through
//! [`logstore_fs::FileSystem`]: after a crash it exists whole under its name or not at all.
//! Every size read from disk is checked against [`ReadOptions`] before anything is allocated
//! for it. A truncated file, a bad checksum, or bytes breaking a rule of the format are an
//! [`Error`] naming the file and the offset, never a panic and never a short or wrong result.
//!
//! # Performance
//!
//! Measured by `cargo bench -p logstore-benches --bench sstable` (criterion, release build,
//! page cache warm: the table is read once before timing), on the 100,000-entry workload of
//! `logstore_benches::entries` (messages of 16..=1,024 bytes, metadata on every other entry),
//! binary codec, 16 KiB blocks:
//!
//! (figures below)
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod block;
mod builder;
mod compression;
mod cursor;
mod error;
pub mod format;
mod options;
mod reader;
mod stats;
mod table;
mod varint;
mod verify;

#[doc(hidden)]
pub mod fuzzing;

pub use builder::{TEMP_SUFFIX, TableBuilder, WRITE_BUFFER_BYTES, temp_path};
pub use compression::Compression;
pub use cursor::{Direction, TableCursor, TableEntries};
pub use error::{Error, Region, Result};
pub use options::{
    BLOCK_BYTES_MAX_DEFAULT, BLOCK_ENTRIES_MAX_DEFAULT, BLOCK_TARGET_BYTES_DEFAULT,
    BLOCK_TARGET_BYTES_MAX, INDEX_BYTES_MAX_DEFAULT, READAHEAD_BYTES_MAX_DEFAULT, ReadOptions,
    TableOptions,
};
pub use stats::TableStats;
pub use table::Table;
pub use verify::verify;
