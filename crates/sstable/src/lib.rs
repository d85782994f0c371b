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
//! ```text
//!  0                                        index_offset          file_bytes - 88   file_bytes
//!  +-----------+-----------+-----+-----------+---------------------+-----------------+
//!  | block 0   | block 1   | ... | block n-1 | index               | footer          |
//!  | (stored)  | (stored)  |     | (stored)  | n × 60 bytes        | 88 bytes        |
//!  +-----------+-----------+-----+-----------+---------------------+-----------------+
//! ```
//!
//! - **Data blocks**: 16 KiB of records by default ([`TableOptions::block_target_bytes`]),
//!   each stored raw or LZ4-compressed. A record is three LEB128 integers (the key as deltas
//!   from the previous record's, the payload length) and the entry as the table's codec encodes
//!   it. No per-block trailer: everything about a block is in its index entry.
//! - **Sparse index**: one 60-byte entry per block: first key, last key, offset, stored and
//!   decoded sizes, entry count, CRC32C of the stored bytes, how the block is stored.
//! - **Footer**: index place, size and CRC32C; block count; codec id; compression id; entry
//!   count; raw payload bytes; min and max keys (whose timestamps are the table's min and max
//!   timestamps: keys sort by timestamp first); format version; CRC32C of all that; magic.
//!
//! Integers are little-endian. The [`format`](mod@format) module draws every byte of each part and says
//! exactly which bytes each checksum covers.
//!
//! # Reading
//!
//! [`Table::open`] reads the footer and the index, nothing else, and checks them whole (magic,
//! version, checksums, then that the index tiles the data region exactly, within the limits of
//! [`ReadOptions`], with keys increasing and counts and bounds matching the footer). Its min
//! and max keys let a caller skip a table without reading it ([`Table::overlaps_timestamps`]).
//!
//! A range `lo..=hi` binary-searches the index for the blocks that can hold its keys: from the
//! first whose last key is `>= lo` to the last whose first key is `<= hi` (with both keys in
//! the index, exactly the blocks needed). Forwards, the cursor loads the first of them and
//! binary-searches its records for `lo`; backwards, the last, for `hi`. It walks the records,
//! loads the next block in its direction when one runs out, and stops at the first key outside
//! the range. Loading a block means finding its stored bytes, then its CRC32C, its
//! decompression (into a buffer of its recorded size, checked against the limit before it was
//! allocated), and one pass over its record headers that checks the layout and notes each
//! record's key and place. A raw block is parsed where it lies. Buffers are reused: a scan
//! allocates nothing per entry, nor per block once they have grown.
//!
//! Where the stored bytes come from:
//! - **Memory map** ([`ReadOptions::mmap`], the default): a table is sealed once written, so
//!   [`Table::open`] maps the whole file read-only ([`logstore_fs::ReadOnlyMap`]) and every
//!   block is checksummed and decoded in the page cache's own pages: no copy, no system call
//!   per block. A table unlinked by compaction stays readable by the queries holding it. The
//!   cost: a disk read error under a mapped page is a `SIGBUS`, not an error (see
//!   `ReadOnlyMap`); turn `mmap` off to trade the speed for that.
//! - **`pread`**: if the block is not in the current read chunk, one read of as many whole
//!   consecutive blocks (in the direction of travel, inside the range) as the read-ahead
//!   allows, which starts at one block and doubles with every read up to
//!   [`ReadOptions::readahead_bytes_max`] (256 KiB), so a short range reads one block and a
//!   scan settles on large sequential reads.
//!
//! ## Why a cursor, not `Iterator<Item = Entry>`
//!
//! [`TableCursor`] is positioned on an entry: [`key`](TableCursor::key) comes from the record
//! header (no decoding), [`entry`](TableCursor::entry) decodes the entry borrowing its text
//! from the block, [`advance`](TableCursor::advance) moves on. A merge of many tables and
//! memtables keeps its sources in a heap ordered by current key, compares keys only, and
//! decodes just the entry it yields; the cursor owns an `Arc` of the table, so it is
//! `'static` and `Send` and can sit in such a heap. A standard `Iterator` cannot lend items
//! borrowing from itself, so borrowed entries there would need `unsafe`; for callers who want
//! one anyway, [`TableCursor::into_entries`] is an `Iterator<Item = Result<Entry<'static>>>`
//! (it copies each entry's text out: the figures below give the cost).
//!
//! Range reads decode with the codec's `decode_trusted`, which skips re-parsing metadata JSON
//! (checked before the entry was written, and protected since by the block checksum);
//! [`Table::verify`] decodes everything fully.
//!
//! # Durability and damage
//!
//! A table is written to `<name>.tmp`, synced, renamed, and its directory synced, all through
//! [`logstore_fs::FileSystem`]: after a crash it exists whole under its name or not at all.
//! Every size read from disk is checked against [`ReadOptions`] before anything is allocated
//! for it. A truncated file, a bad checksum, or bytes breaking a rule of the format are an
//! [`Error`] naming the file and the offset, never a panic and never a short or wrong result.
//! [`Table::verify`] reads and checks every block and entry.
//!
//! # Performance
//!
//! `cargo bench -p logstore-benches --bench sstable` (criterion, release build): a table of the
//! 100,000 entries of `logstore_benches::entries(100_000, 42)` (messages of 16..=1,024 bytes,
//! metadata on every other entry; 567 bytes of raw payload per entry), 16 KiB blocks, on ext4
//! through [`logstore_fs::StdFs`], **page cache warm** (the table was just written and is read
//! whole before timing; criterion then warms up each benchmark), read through the memory map
//! (the default) unless marked `pread`. Two shared vCPUs (Intel Xeon with AVX-512, 2 MiB L2
//! each), load average about 1.3. The same VM's speed moves through the day (another run an
//! hour earlier measured the mapped full scan at 14.90 ms, the newest 1,000 at 54.6 µs), so
//! compare within a run.
//!
//! ```text
//! full scan, 100,000 entries, forward      binary          13.97 ms  = 0.140 µs/entry
//!   (best of 30 runs: map 0.141 µs/entry, pread 0.150; medians 0.145 and 0.157)
//!                                           binary, owned   23.22 ms  = 0.232 µs/entry
//!                                           binary, backward 17.02 ms = 0.170 µs/entry
//!                                           binary, keys only 6.55 ms = 0.066 µs/entry
//!                                           binary, verify  24.39 ms  = 0.244 µs/entry
//!                                           binary + LZ4    49.92 ms  = 0.499 µs/entry
//!                                           CBOR            26.75 ms  = 0.267 µs/entry
//!                                           JSON            60.53 ms  = 0.605 µs/entry
//! newest 1,000 of 100,000 entries           binary, range from the 1,000th-newest key: 109.5 µs
//!                                             (best of 300: map 104.4 µs, pread 123.6 µs)
//!                                           binary, backward scan stopped at 1,000:    126.4 µs
//!                                           binary + LZ4 531.6 µs, CBOR 302.6 µs, JSON 569.7 µs
//! Table::open (footer + 217 KB index)       127.8 µs
//! pread scan, read-ahead limit 16 KiB / 64 KiB / 256 KiB / 1 MiB / 4 MiB:
//!                                           17.68 / 13.44 / 12.49 / 12.72 / 15.91 ms
//! ```
//!
//! The full scan meets its target of 0.15 µs per entry, by 7% in this run. Each entry's 567
//! bytes go through passes no reader of a checksummed format of UTF-8 text avoids, which the
//! same benchmark times alone over the same data (`sstable/floor_100k`): the copy out of the
//! page cache (4.91 ms; the memory map saves it, but a scan then maps and releases the pages it
//! passes, which costs about as much), CRC32C (2.10 ms) and UTF-8 validation (`simdutf8`,
//! 7.36 ms over entries scattered in memory; within a block just checksummed, much less).
//! CRC32C comes from `crc-fast`, which folds with carry-less multiplication (AVX-512
//! VPCLMULQDQ here): with the `crc32c` crate's `crc32` instruction loop, the checksums alone
//! took 3.87 ms in an earlier session (0.039 µs per entry, against 0.021 here), when the scan
//! measured 0.174 µs per entry; the VM's speed moved between those runs, so the difference
//! of the two scans is not the checksum's alone. Through `pread` with its default 256 KiB
//! read-ahead, the criterion mean was lower than the map's in this run (12.49 ms) and the
//! best of 30 higher (0.150); a short range favours the map (104 against 124 µs), so the map
//! stays the default (see [`ReadOptions::mmap`]).
//!
//! Size against the raw payload, defined as Σ (16-byte key + message bytes + metadata bytes):
//!
//! ```text
//!                          binary    CBOR      JSON
//! generated, no compression 1.0236x   1.0146x   1.1049x    (target ≤ 1.05x)
//! generated, LZ4            0.4192x   0.4134x   0.4269x
//! Loghub, no compression    1.0607x   1.0280x   1.3884x    (32,000 lines, 153 B on average)
//! Loghub, LZ4               0.2749x   0.2600x   0.2998x
//! ```
//!
//! Per binary entry, the table adds about 4 bytes of record header (two one-byte key deltas,
//! a two-byte length), the codec 7 bytes on average (its header beyond the 16-byte key it
//! counts: 5 bytes, 9 with metadata) and the index 2 bytes: 13 bytes, 2.4% of the generated
//! entries. The Loghub lines carry no metadata, so the codec adds 5: about 11 bytes, 6.5% of
//! their raw 169 (16 + 153), where the table measured 6.1%.
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
pub use reader::VIEW_RELEASE_BYTES;
pub use stats::TableStats;
pub use table::Table;
pub use verify::verify;
