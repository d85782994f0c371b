//! A version: the memtables and tables that make up the store at one moment.
//!
//! Readers take the current version (an `Arc`) and read it undisturbed; a freeze, flush,
//! compaction or retention publishes a new version in one swap, so a reader sees each entry in
//! exactly one place: before a flush in a frozen memtable, after it in a table, never both.

use crate::manifest::TableRecord;
use logstore_memtable::{MemtableReader, Snapshot};
use logstore_sstable::Table;
use std::sync::Arc;

/// The store's parts at one moment.
pub(crate) struct Version {
    /// The memtable taking writes.
    pub active: MemtableReader,
    /// Full memtables waiting for their flush, oldest first.
    pub frozen: Vec<Arc<Frozen>>,
    /// The tables, in no particular order.
    pub tables: Vec<Arc<TableHandle>>,
}

/// A frozen memtable and how far into the WAL it reaches.
pub(crate) struct Frozen {
    pub snapshot: Snapshot,
    /// Every entry with a WAL sequence number up to this one is in this memtable or an older
    /// one (one memtable takes every append between two freezes).
    pub last_seq: u64,
    /// The newest store-assigned timestamp in it (0 if none).
    pub store_ts_max: u64,
}

/// An open table and what the manifest says of it.
pub(crate) struct TableHandle {
    pub table: Table,
    pub record: TableRecord,
}

impl Version {
    /// This version with `frozen` removed and `table` added: the outcome of a flush.
    pub(crate) fn flushed(&self, frozen: &Arc<Frozen>, table: Arc<TableHandle>) -> Version {
        let mut tables = self.tables.clone();
        tables.push(table);
        Version {
            active: self.active.clone(),
            frozen: self.frozen.iter().filter(|f| !Arc::ptr_eq(f, frozen)).cloned().collect(),
            tables,
        }
    }

    /// This version with the tables `removed` taken out and `added` put in.
    pub(crate) fn with_tables(&self, removed: &[u64], added: Option<Arc<TableHandle>>) -> Version {
        let mut tables: Vec<Arc<TableHandle>> =
            self.tables.iter().filter(|t| !removed.contains(&t.record.id)).cloned().collect();
        tables.extend(added);
        Version { active: self.active.clone(), frozen: self.frozen.clone(), tables }
    }
}
