//! For testing code that uses a store (feature `testing`): an in-memory [`Oracle`] that answers
//! queries as a [`LogStore`](crate::LogStore) must, a [`ManualTime`] clock, and the
//! fault-injecting file system ([`FaultFs`]) to run the real store on.
//!
//! The oracle is written independently of the store's read path (a `BTreeMap` and a linear
//! filter), so that comparing the two finds mistakes in either.
//!
//! ```
//! use logstore_engine::testing::{FaultFs, ManualTime, Oracle};
//! use logstore_engine::{LogStore, NewEntry, Query, StoreOptions};
//! use std::sync::Arc;
//!
//! let fs = FaultFs::new();
//! let options = StoreOptions {
//!     fs: Arc::new(fs.clone()),
//!     time: Arc::new(ManualTime::new(1_000)),
//!     ..StoreOptions::default()
//! };
//! let store = LogStore::open("/data", options).unwrap();
//! let mut oracle = Oracle::new();
//! let batch = [NewEntry::new("a"), NewEntry::new("b").metadata(r#"{"k":1}"#)];
//! let keys = store.append_batch(&batch).unwrap();
//! oracle.appended(&keys, &batch);
//! let query = Query::new().metadata_equals("k", 1);
//! let got: Vec<_> = store.query(&query).unwrap().map(Result::unwrap).collect();
//! assert_eq!(got, oracle.query(&query));
//! ```

use crate::clock::TimeSource;
use crate::query::{Order, Query};
use crate::store::NewEntry;
use logstore_entry::{Entry, Key};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub use logstore_fs::{CrashMode, FaultFs};

/// What a store holds, in memory: every entry by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Oracle {
    entries: BTreeMap<Key, Entry<'static>>,
}

impl Oracle {
    /// An empty oracle.
    pub fn new() -> Oracle {
        Oracle::default()
    }

    /// Records entries the store acknowledged under `keys`.
    pub fn appended(&mut self, keys: &[Key], entries: &[NewEntry<'_>]) {
        assert_eq!(keys.len(), entries.len(), "one key per entry");
        for (&key, new) in keys.iter().zip(entries) {
            let entry = Entry::new(
                key,
                new.message.to_string(),
                new.metadata.as_ref().map(|m| m.to_string()),
            );
            assert!(self.entries.insert(key, entry).is_none(), "key {key} handed out twice");
        }
    }

    /// Records one entry as the store returned it.
    pub fn insert(&mut self, entry: Entry<'static>) {
        self.entries.insert(entry.key, entry);
    }

    /// Forgets the entries with keys in `keys` (tables dropped by retention, say).
    pub fn remove(&mut self, keys: impl IntoIterator<Item = Key>) {
        for key in keys {
            self.entries.remove(&key);
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &Entry<'static>> {
        self.entries.values()
    }

    /// What [`LogStore::query`](crate::LogStore::query) must return for `query`.
    pub fn query(&self, query: &Query) -> Vec<Entry<'static>> {
        let in_window = |e: &&Entry<'static>| {
            let ts = e.key.timestamp_ms;
            let after_cursor = match (query.after, query.order) {
                (None, _) => true,
                (Some(after), Order::Ascending) => e.key > after,
                (Some(after), Order::Descending) => e.key < after,
            };
            query.from_ms <= ts && ts <= query.to_ms && after_cursor
        };
        let matches = |e: &&Entry<'static>| {
            let text_ok = query.contains.as_ref().is_none_or(|t| e.message.contains(t.as_str()));
            let fields_ok = query.metadata_equals.is_empty()
                || e.metadata.as_ref().is_some_and(|m| {
                    let value: serde_json::Value = serde_json::from_str(m).unwrap_or_default();
                    query.metadata_equals.iter().all(|(k, v)| value.get(k) == Some(v))
                });
            text_ok && fields_ok
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        let ordered: Box<dyn Iterator<Item = &Entry<'static>>> = match query.order {
            Order::Ascending => Box::new(self.entries.values()),
            Order::Descending => Box::new(self.entries.values().rev()),
        };
        ordered.filter(in_window).filter(matches).take(limit).cloned().collect()
    }
}

/// A clock a test moves by hand.
#[derive(Debug, Default)]
pub struct ManualTime(AtomicU64);

impl ManualTime {
    /// A clock showing `now_ms`.
    pub fn new(now_ms: u64) -> ManualTime {
        ManualTime(AtomicU64::new(now_ms))
    }

    /// Sets the time (it may go backwards, as a wall clock can).
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl TimeSource for ManualTime {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}
