//! The store's errors.

use logstore_entry::{EntryError, Key};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in a [`LogStore`](crate::LogStore). Each variant says what and
/// where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process (or another `LogStore` in this one) has the data directory open.
    #[error("data directory {} is in use by another logstore (lock file {} is held)", dir.display(), lock.display())]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// An entry breaks a limit or is malformed; nothing was written.
    #[error("entry {index} of the request: {source}")]
    InvalidEntry {
        /// Position of the entry in the request (0 for a single append).
        index: usize,
        /// What is wrong with it.
        #[source]
        source: EntryError,
    },
    /// A client timestamp outside the accepted window; nothing was written.
    #[error(
        "entry {index}: timestamp {timestamp_ms} ms is outside the accepted window {earliest_ms}..={latest_ms} ms (now {now_ms} ms; backfill limits: {past_ms} ms into the past, {future_ms} ms into the future)"
    )]
    TimestampOutOfRange {
        /// Position of the entry in the request.
        index: usize,
        /// The timestamp given.
        timestamp_ms: u64,
        /// The earliest accepted.
        earliest_ms: u64,
        /// The latest accepted.
        latest_ms: u64,
        /// The store's clock when it was checked.
        now_ms: u64,
        /// The configured past bound.
        past_ms: u64,
        /// The configured future bound.
        future_ms: u64,
    },
    /// A request with more entries or bytes than the batch limits.
    #[error(
        "request of {entries} entries and {bytes} bytes exceeds the limit of {entries_max} entries and {bytes_max} bytes"
    )]
    RequestTooLarge {
        /// Entries in the request.
        entries: usize,
        /// Bytes of text in the request.
        bytes: u64,
        /// The entry limit.
        entries_max: usize,
        /// The byte limit.
        bytes_max: u64,
    },
    /// An empty batch.
    #[error("a batch needs at least one entry")]
    EmptyBatch,
    /// A query parameter out of range.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// Data on disk is damaged.
    #[error("corrupt store file {} at offset {offset}: {reason}", path.display())]
    Corruption {
        /// The damaged file.
        path: PathBuf,
        /// Where in it.
        offset: u64,
        /// What was found.
        reason: String,
    },
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] logstore_wal::WalError),
    /// A table failed to write or read.
    #[error(transparent)]
    Table(#[from] logstore_sstable::Error),
    /// A memtable refused an entry (a limit of the memtable was reached).
    #[error(transparent)]
    Memtable(#[from] logstore_memtable::MemtableError),
    /// An earlier failure on the write path: the store refuses writes and keeps serving reads.
    /// Reopen it to recover what is on disk.
    #[error("store refuses writes after an earlier failure: {cause}")]
    Poisoned {
        /// The failure.
        cause: Arc<str>,
    },
    /// The store was closed.
    #[error("store is closed")]
    Closed,
    /// An option out of range.
    #[error("invalid store option: {0}")]
    InvalidOptions(String),
    /// A resume cursor that does not parse.
    #[error("invalid cursor {text:?}: expected <timestamp_ms>-<seq>")]
    InvalidCursor {
        /// What was given.
        text: String,
    },
    /// Keys must increase within a table; the store produced a key twice (a bug).
    #[error("internal error: key {key} out of order")]
    KeyOrder {
        /// The offending key.
        key: Key,
    },
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Wraps an I/O error with the operation and path (the path is copied only if there is an
/// error).
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}
