//! How a store is opened.

use crate::clock::{SystemTimeSource, TimeSource};
use crate::compaction::{CompactionOptions, RetentionOptions};
use crate::error::{Result, StoreError};
use logstore_entry::Limits;
use logstore_fs::{FileSystem, StdFs};
use logstore_memtable::Allocation;
use logstore_sstable::{ReadOptions, TableOptions};
use logstore_wal::{Durability, RecoveryMode};
use std::sync::Arc;

/// Default [`StoreOptions::flush_threshold_entries`]: 1,000, as in the report.
pub const FLUSH_THRESHOLD_ENTRIES_DEFAULT: usize = 1_000;
/// Default [`StoreOptions::flush_threshold_bytes`]: 16 MiB of memtable.
pub const FLUSH_THRESHOLD_BYTES_DEFAULT: usize = 16 << 20;
/// Default [`StoreOptions::checkpoint_interval_bytes`]: 64 MiB, one default WAL segment
/// ([`logstore_wal::SEGMENT_BYTES_MAX_DEFAULT`]), the unit in which the WAL can shrink.
pub const CHECKPOINT_INTERVAL_BYTES_DEFAULT: u64 = logstore_wal::SEGMENT_BYTES_MAX_DEFAULT;
/// Default [`StoreOptions::frozen_memtables_max`].
pub const FROZEN_MEMTABLES_MAX_DEFAULT: usize = 4;
/// Default [`StoreOptions::request_entries_max`].
pub const REQUEST_ENTRIES_MAX_DEFAULT: usize = 100_000;
/// Default [`StoreOptions::request_bytes_max`]: 256 MiB.
pub const REQUEST_BYTES_MAX_DEFAULT: u64 = 256 << 20;
/// Default [`StoreOptions::backfill_past_ms`]: 7 days.
pub const BACKFILL_PAST_MS_DEFAULT: u64 = 7 * 24 * 3600 * 1000;
/// Default [`StoreOptions::backfill_future_ms`]: 10 minutes.
pub const BACKFILL_FUTURE_MS_DEFAULT: u64 = 10 * 60 * 1000;

/// Options of [`LogStore::open`](crate::LogStore::open).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// When an append is acknowledged; [`Durability::Sync`] by default: an append returns once
    /// the entry would survive a crash, and concurrent appends share syncs.
    pub durability: Durability,
    /// The memtable is frozen and flushed to a table at this many entries.
    pub flush_threshold_entries: usize,
    /// ... or at this many bytes of memtable memory ([`logstore_memtable::Memtable::bytes`]).
    pub flush_threshold_bytes: usize,
    /// Writers wait while this many frozen memtables wait for their flush.
    pub frozen_memtables_max: usize,
    /// The worker checkpoints (syncs the tables written since the last checkpoint, stores the
    /// manifest naming them, deletes the WAL segments they cover) once flushes since the last
    /// one wrote this many bytes of tables, or merges replaced this many bytes of stored tables
    /// (whose files only a checkpoint deletes); `flush`, `compact` and `close` checkpoint too.
    /// Bounds the WAL a crash makes the next open replay (this much, plus the memtables).
    pub checkpoint_interval_bytes: u64,
    /// Size limits on each entry's message and metadata.
    pub limits: Limits,
    /// Most entries in one `append_batch`.
    pub request_entries_max: usize,
    /// Most bytes of text in one `append_batch`.
    pub request_bytes_max: u64,
    /// How far into the past a client-supplied timestamp may be.
    pub backfill_past_ms: u64,
    /// How far into the future a client-supplied timestamp may be.
    pub backfill_future_ms: u64,
    /// How memtables allocate ([`Allocation::Arena`] by default).
    pub allocation: Allocation,
    /// How tables are written: codec, compression, block size.
    pub table: TableOptions,
    /// How tables are read: limits on what reads believe, read-ahead, and whether tables are
    /// read in place through a memory map (`mmap`, on by default).
    pub table_read: ReadOptions,
    /// Reads use each table's sparse index to find their blocks, and skip tables outside the
    /// query's time range (the default). Off, every table is scanned from its first entry and
    /// filtered: the read path of the report's V4 and V5, kept for the benchmark's comparison.
    pub use_sparse_index: bool,
    /// Background merging of small tables; `None` turns it off.
    pub compaction: Option<CompactionOptions>,
    /// Dropping old tables by age and total size.
    pub retention: RetentionOptions,
    /// Size of a WAL segment.
    pub wal_segment_bytes_max: u64,
    /// What WAL recovery does with damage.
    pub wal_recovery_mode: RecoveryMode,
    /// The file system (a `FaultFs` in crash tests).
    pub fs: Arc<dyn FileSystem>,
    /// The wall clock (a manual one in tests).
    pub time: Arc<dyn TimeSource>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Sync,
            flush_threshold_entries: FLUSH_THRESHOLD_ENTRIES_DEFAULT,
            flush_threshold_bytes: FLUSH_THRESHOLD_BYTES_DEFAULT,
            frozen_memtables_max: FROZEN_MEMTABLES_MAX_DEFAULT,
            checkpoint_interval_bytes: CHECKPOINT_INTERVAL_BYTES_DEFAULT,
            limits: Limits::default(),
            request_entries_max: REQUEST_ENTRIES_MAX_DEFAULT,
            request_bytes_max: REQUEST_BYTES_MAX_DEFAULT,
            backfill_past_ms: BACKFILL_PAST_MS_DEFAULT,
            backfill_future_ms: BACKFILL_FUTURE_MS_DEFAULT,
            allocation: Allocation::Arena,
            table: TableOptions::default(),
            table_read: ReadOptions::default(),
            use_sparse_index: true,
            compaction: Some(CompactionOptions::default()),
            retention: RetentionOptions::default(),
            wal_segment_bytes_max: logstore_wal::SEGMENT_BYTES_MAX_DEFAULT,
            wal_recovery_mode: RecoveryMode::default(),
            fs: Arc::new(StdFs),
            time: Arc::new(SystemTimeSource),
        }
    }
}

impl StoreOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |what: &str| Err(StoreError::InvalidOptions(what.to_owned()));
        if self.flush_threshold_entries == 0 || self.flush_threshold_bytes == 0 {
            return fail("flush thresholds must be positive");
        }
        if self.frozen_memtables_max == 0 {
            return fail("frozen_memtables_max must be at least 1");
        }
        if self.checkpoint_interval_bytes == 0 {
            return fail("checkpoint_interval_bytes must be positive");
        }
        if self.request_entries_max == 0 || self.request_bytes_max == 0 {
            return fail("request limits must be positive");
        }
        if let Some(compaction) = self.compaction {
            if compaction.fan_in < 2 {
                return fail("compaction fan_in must be at least 2");
            }
        }
        self.table.validate().map_err(|e| StoreError::InvalidOptions(e.to_string()))?;
        self.table_read.validate().map_err(|e| StoreError::InvalidOptions(e.to_string()))
    }

    /// The largest WAL record an entry within the limits can make.
    pub(crate) fn wal_record_bytes_max(&self) -> u32 {
        let text = self.limits.message_bytes_max as u64 + self.limits.metadata_bytes_max as u64;
        (text + crate::wal_entry::OVERHEAD_BYTES_MAX as u64).min(u64::from(u32::MAX)) as u32
    }
}
