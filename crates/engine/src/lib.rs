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
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod clock;
pub mod compaction;
mod error;
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
    BACKFILL_FUTURE_MS_DEFAULT, BACKFILL_PAST_MS_DEFAULT, FLUSH_THRESHOLD_BYTES_DEFAULT,
    FLUSH_THRESHOLD_ENTRIES_DEFAULT, FROZEN_MEMTABLES_MAX_DEFAULT, REQUEST_BYTES_MAX_DEFAULT,
    REQUEST_ENTRIES_MAX_DEFAULT, StoreOptions,
};
pub use query::{Order, Query, QueryIter};
pub use store::{LOCK_FILE, LogStore, MANIFEST_FILE, NewEntry, StoreStats, TABLES_DIR, WAL_DIR};
