//! The in-memory table of logstore: recent entries sorted by key, written by one thread while
//! others read consistent snapshots.
//!
//! ```
//! use logstore_entry::{Entry, Key};
//! use logstore_memtable::{Allocation, Memtable};
//!
//! let mut memtable = Memtable::with_allocation(Allocation::Arena);
//! for seq in 1..=3 {
//!     memtable.insert(&Entry::new(Key::new(1_000 + seq, seq), "request served", None::<&str>))?;
//! }
//! // A backfilled entry with an older timestamp: accepted and sorted into place.
//! memtable.insert(&Entry::new(Key::new(500, 4), "late", Some(r#"{"source":"backfill"}"#)))?;
//!
//! // Readers work on snapshots; a `MemtableReader` takes them from other threads.
//! let snapshot = memtable.reader().snapshot();
//! let keys: Vec<String> = snapshot.range(..).map(|e| e.key.to_string()).collect();
//! assert_eq!(keys, ["500-4", "1001-1", "1002-2", "1003-3"]);
//! let newest_first: Vec<u64> = snapshot.range(Key::new(1_001, 0)..).rev().map(|e| e.key.seq).collect();
//! assert_eq!(newest_first, [3, 2, 1]);
//! assert_eq!(snapshot.get(Key::new(500, 4)).unwrap().message, "late");
//!
//! // The engine decides when to flush from these.
//! assert_eq!(memtable.len(), 4);
//! assert!(memtable.bytes() > memtable.payload_bytes());
//!
//! // Full: freeze it (read-only, shared), and start a new one for writes.
//! let frozen = memtable.freeze();
//! let memtable = Memtable::with_allocation(Allocation::Arena);
//! assert_eq!(frozen.iter().count(), 4);
//! # let _ = memtable;
//! # Ok::<(), logstore_memtable::MemtableError>(())
//! ```
//!
//! # Structure
//!
//! Entries live in *chunks* of up to [`MemtableOptions::chunk_entries_max`] entries and
//! [`MemtableOptions::chunk_text_bytes`] of text, each sorted by key. A chunk is filled by the
//! writer, then sealed: put behind an `Arc` and never changed again.
//!
//! - **The in-order log.** The store assigns increasing keys, so nearly every insert has the
//!   largest key so far: it is appended to the *open* chunk, O(1). Full chunks join a list of
//!   sealed chunks, in key order.
//! - **Stragglers.** A key smaller than the largest (a client-supplied timestamp, a backfill)
//!   goes into a sorted *buffer* chunk (binary search, then a shift of at most one chunk).
//!   A full buffer becomes a *run*; the two newest runs are merged while the older is less than
//!   twice the newer, as in a binary counter. So there are at most
//!   log2(stragglers / chunk) + 1 runs, a straggler is copied O(log n) times over the
//!   memtable's life, and in-order inserts never pay for stragglers.
//!
//! Why not one sorted structure (a B-tree, a skip list)? The common case would pay O(log n)
//! and a pointer chase per insert and per step of a scan, for the sake of the rare case; and a
//! concurrent sorted structure needs `unsafe` or a lock held for the whole of every read. Here
//! a scan of in-order entries walks contiguous slots, and readers share sealed chunks for free.
//!
//! Reads merge the sorted sequences (the log, each run, the buffer) by comparing their head
//! keys; with no stragglers there is one sequence and nothing to compare. Keys are unique: an
//! insert of a key already present is refused ([`MemtableError::DuplicateKey`]).
//!
//! # Allocation strategies
//!
//! Chosen at construction ([`Allocation`]); the benchmarks compare them.
//!
//! - [`Allocation::Heap`]: one allocation per entry (an `Arc<str>` with message and
//!   metadata), freed one by one when the memtable goes.
//! - [`Allocation::Arena`]: text copied into per-chunk arenas (one `String` of
//!   `chunk_text_bytes`, allocated once, never grown), freed a chunk at a time.
//!
//! # What `bytes()` counts
//!
//! [`Memtable::bytes`] is the memory the memtable holds for its entries, as requested from the
//! allocator: for every chunk, its slot array at full capacity (40 bytes per slot) and, in the
//! arena strategy, its arena at full capacity; in the heap strategy, each entry's allocation
//! (its text plus a 16-byte `Arc` header); plus a fixed overhead per chunk (the chunk itself
//! and its pointer). So an arena memtable holding one entry already counts about 74 KiB (one
//! 64 KiB arena and 256 slots). It does not count the allocator's own rounding and bookkeeping,
//! the few hundred bytes of the memtable's fixed structures, copies that readers made of the
//! open chunk and buffer, nor merged-away runs that a snapshot still holds.
//! [`Memtable::payload_bytes`] counts only the entries' text. The engine flushes on `bytes()`.
//!
//! # Concurrency contract
//!
//! - [`Memtable`] is the only writer: `insert` takes `&mut self`. It is `Send`; the engine
//!   keeps it on its write path.
//! - [`MemtableReader`] (from [`Memtable::reader`]) is `Clone + Send + Sync`; any thread calls
//!   [`MemtableReader::snapshot`] on it, also after the memtable is frozen.
//! - A [`Snapshot`] contains exactly the entries whose `insert` returned before the snapshot
//!   began, plus possibly one insert running at the same moment, entirely or not at all. It is
//!   a prefix of the insertion history, never changes, and is `Clone + Send + Sync`.
//!   Its iterators yield each of its entries once, in key order (or reverse), as
//!   [`Entry`](logstore_entry::Entry)s borrowing their text from it.
//!
//! All shared state sits behind one mutex, held only for bounded work:
//!
//! - an insert holds it for the append (O(1)), or for a straggler's duplicate check and buffer
//!   insert (O(log n) per run plus a shift of at most one chunk's slots); a heap-strategy
//!   allocation happens before the lock is taken, and run merges happen outside it;
//! - a snapshot holds it to clone a few `Arc`s and, if the writer inserted since the previous
//!   snapshot, to copy the open chunk and the straggler buffer: at most `chunk_entries_max`
//!   slots of 40 bytes and `chunk_text_bytes` of text each (256 and 64 KiB by default; slots
//!   only, with `Arc` clones, in the heap strategy). Copies are shared by all snapshots taken
//!   until the next insert;
//! - sealing a chunk copies the list of chunk pointers, only if a snapshot holds the old list.
//!
//! Reading a snapshot takes no lock at all: a long scan never delays the writer.
//!
//! No `unsafe` code: readers share only sealed, immutable chunks and their own copies.
//!
//! # Performance
//!
//! `cargo bench -p logstore-benches --bench memtable`, 10,000 entries of 16..=1,024 bytes
//! (554 bytes of text on average), best criterion median of two runs on a 2-core VM shared with
//! two other benchmark runs (figures varied up to 2x, insert up to 5x, between runs):
//!
//! | per entry                          |   heap |  arena |
//! |------------------------------------|-------:|-------:|
//! | insert, keys in order              |  93 ns | 175 ns |
//! | insert, 10% stragglers             | 223 ns | 201 ns |
//! | drop                               |  51 ns |  14 ns |
//! | scan ascending / descending        | 15 / 26 ns | 15 / 16 ns |
//! | scan with 10% stragglers, asc/desc | 41 / 19 ns | 24 / 18 ns |
//! | memory, `bytes()` / payload        | 1.186x | 1.167x |
//!
//! Point reads: `get` 170 ns, a 100-entry `range` 1.8 to 2.7 µs, a snapshot 72 to 82 ns when
//! nothing changed since the last one and 1.5 to 2.2 µs right after an insert (open chunk
//! copied). The arena does less work per insert (407 instructions against 691 under
//! callgrind), but its fresh 64 KiB arenas are first touched during the inserts: with glibc's
//! defaults the arenas of the previous memtable go back to the kernel when it is dropped, and
//! the page faults dominate. With the memory kept mapped, in-order inserts measured 90 ns
//! (arena) against 112 ns (heap) in the same run:
//!
//! ```text
//! GLIBC_TUNABLES=glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=4294967295 \
//!     cargo bench -p logstore-benches --bench memtable -- 'insert/(arena|heap)/in_order'
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod chunk;
mod memtable;
mod options;
mod snapshot;

pub use memtable::{Memtable, MemtableReader};
pub use options::{
    Allocation, CHUNK_ENTRIES_MAX_DEFAULT, CHUNK_TEXT_BYTES_DEFAULT, ENTRIES_MAX_DEFAULT,
    MemtableOptions, PAYLOAD_BYTES_MAX_CEILING, PAYLOAD_BYTES_MAX_DEFAULT,
};
pub use snapshot::{Range, Snapshot, SnapshotCursor};

use logstore_entry::Key;

/// Counters of a memtable, as the writer or a snapshot saw them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Entries held.
    pub entries: usize,
    /// Bytes of entry text (messages plus metadata).
    pub payload_bytes: usize,
    /// Bytes of memory held for the entries; see the [crate docs](crate#what-bytes-counts).
    pub bytes: usize,
    /// Entries that arrived with a key smaller than an earlier one.
    pub stragglers: usize,
    /// Sealed chunks of the in-order log.
    pub chunks: usize,
    /// Sorted runs of stragglers.
    pub runs: usize,
}

/// Why an insert or a construction was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemtableError {
    /// An entry with this key is already in the memtable.
    #[error("key {key} is already in the memtable")]
    DuplicateKey {
        /// The key inserted twice.
        key: Key,
    },
    /// The memtable holds [`MemtableOptions::entries_max`] entries.
    #[error("memtable full: it holds {entries} entries, the limit is {limit_entries}")]
    TooManyEntries {
        /// Entries held.
        entries: usize,
        /// The limit.
        limit_entries: usize,
    },
    /// The entry's text would take the memtable past [`MemtableOptions::payload_bytes_max`].
    #[error(
        "memtable full: {payload_bytes} bytes of text held, an entry of {entry_bytes} bytes \
         would pass the limit of {limit_bytes} bytes"
    )]
    TooManyBytes {
        /// Bytes of text held.
        payload_bytes: usize,
        /// Bytes of text of the refused entry.
        entry_bytes: usize,
        /// The limit.
        limit_bytes: usize,
    },
    /// A [`MemtableOptions`] field is out of range.
    #[error("invalid memtable options: {detail}")]
    InvalidOptions {
        /// Which field, and why.
        detail: String,
    },
}
