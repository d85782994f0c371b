//! The errors of the write-ahead log.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in the log. Each variant says what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file-system call failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`write`, `fdatasync`, `open`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A record is larger than [`WalOptions::record_bytes_max`](crate::WalOptions).
    #[error("record of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    RecordTooLarge {
        /// The payload's size.
        size_bytes: u64,
        /// The limit it exceeds.
        limit_bytes: u64,
    },
    /// A batch is larger than the batch limits of [`WalOptions`](crate::WalOptions).
    #[error(
        "batch of {records} records and {size_bytes} bytes exceeds the limit of {records_max} records and {bytes_max} bytes"
    )]
    BatchTooLarge {
        /// Records in the batch.
        records: usize,
        /// Payload bytes in the batch.
        size_bytes: u64,
        /// The record limit.
        records_max: usize,
        /// The byte limit.
        bytes_max: u64,
    },
    /// A batch with no records.
    #[error("a batch needs at least one record")]
    EmptyBatch,
    /// The log on disk is damaged where the recovery mode does not allow it.
    #[error("corrupt write-ahead log {} at offset {offset}: {reason}", path.display())]
    Corruption {
        /// The damaged segment (or the log directory, for a problem between segments).
        path: PathBuf,
        /// Byte offset of the damage in that file.
        offset: u64,
        /// What was found.
        reason: String,
    },
    /// An earlier write or sync failed: the log refuses further appends rather than pretend the
    /// failed data is durable. Reopen the log to recover what is on disk.
    #[error("write-ahead log is poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: Arc<WalError>,
    },
    /// The log was closed.
    #[error("write-ahead log is closed")]
    Closed,
    /// An option is out of range.
    #[error("invalid write-ahead log option: {0}")]
    InvalidOptions(String),
}

impl WalError {
    /// A copy of this error for those who share its consequence (the followers of a failed
    /// leader, later appenders): `io::Error` cannot be cloned, so an I/O error is rebuilt from
    /// its OS error code or its kind and message.
    pub(crate) fn duplicate(&self) -> WalError {
        match self {
            WalError::Io { op, path, source } => WalError::Io {
                op,
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(source.kind(), source.to_string()),
                },
            },
            WalError::RecordTooLarge { size_bytes, limit_bytes } => {
                WalError::RecordTooLarge { size_bytes: *size_bytes, limit_bytes: *limit_bytes }
            }
            WalError::BatchTooLarge { records, size_bytes, records_max, bytes_max } => {
                WalError::BatchTooLarge {
                    records: *records,
                    size_bytes: *size_bytes,
                    records_max: *records_max,
                    bytes_max: *bytes_max,
                }
            }
            WalError::EmptyBatch => WalError::EmptyBatch,
            WalError::Corruption { path, offset, reason } => {
                WalError::Corruption { path: path.clone(), offset: *offset, reason: reason.clone() }
            }
            WalError::Poisoned { cause } => WalError::Poisoned { cause: cause.clone() },
            WalError::Closed => WalError::Closed,
            WalError::InvalidOptions(what) => WalError::InvalidOptions(what.clone()),
        }
    }
}

/// The log's result type.
pub type Result<T, E = WalError> = std::result::Result<T, E>;

/// Wraps an I/O error with the operation and path (copied only if there is an error: this
/// sits on every write and sync).
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(io::Error) -> WalError + 'a {
    move |source| WalError::Io { op, path: path.to_path_buf(), source }
}
