//! A durable, group-committing write-ahead log of opaque byte records.
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
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod format;
mod options;
mod recovery;
mod replay;
mod segment;
mod wal;

pub use error::{Result, WalError};
pub use format::{FORMAT_VERSION, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
pub use options::{
    BATCH_BYTES_MAX_DEFAULT, BATCH_RECORDS_MAX_DEFAULT, Durability, RECORD_BYTES_MAX_DEFAULT,
    RECOVERY_RECORD_BYTES_MAX_DEFAULT, RecoveryMode, SEGMENT_BYTES_MAX_DEFAULT, WalOptions,
};
pub use recovery::{Damage, RecoveryReport};
pub use replay::{Record, Replay};
pub use wal::{Wal, WalStats};
