//! [`LogStore`]: open, append, query, flush, compact, close.

use crate::checkpoint::Ledger;
use crate::clock::MonotonicClock;
use crate::error::{Result, StoreError, io_err};
use crate::manifest::{Manifest, TableRecord};
use crate::merge::{Chain, Cursor, MemCursor, Merge, Source, chains};
use crate::options::StoreOptions;
use crate::query::{Order, Query, QueryIter};
use crate::version::{Frozen, TableHandle, Version};
use crate::wal_entry;
use crate::worker::{self, Work};
use crossbeam_channel::Sender;
use logstore_entry::{Entry, Key};
use logstore_fs::{FileSystem, FsLock};
use logstore_memtable::{Memtable, MemtableOptions};
use logstore_sstable::{Direction, Table};
use logstore_wal::{Wal, WalOptions};
use std::borrow::Cow;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest a writer waiting for a flush goes without re-checking whether the store failed.
const ROOM_RECHECK: Duration = Duration::from_millis(50);

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "LOCK";
/// Name of the manifest in the data directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Folder of the WAL segments in the data directory.
pub const WAL_DIR: &str = "wal";
/// Folder of the tables in the data directory.
pub const TABLES_DIR: &str = "tables";

/// An entry to append: its text, and optionally its own timestamp (a backfill).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewEntry<'a> {
    /// The log line.
    pub message: Cow<'a, str>,
    /// A JSON object, kept byte for byte.
    pub metadata: Option<Cow<'a, str>>,
    /// The entry's timestamp; `None` (the usual case) lets the store assign it.
    pub timestamp_ms: Option<u64>,
}

impl<'a> NewEntry<'a> {
    /// An entry with this message, no metadata, and a store-assigned timestamp.
    pub fn new(message: impl Into<Cow<'a, str>>) -> Self {
        NewEntry { message: message.into(), metadata: None, timestamp_ms: None }
    }

    /// Sets the metadata (a JSON object's text).
    pub fn metadata(mut self, metadata: impl Into<Cow<'a, str>>) -> Self {
        self.metadata = Some(metadata.into());
        self
    }

    /// Sets a client timestamp.
    pub fn timestamp_ms(mut self, timestamp_ms: u64) -> Self {
        self.timestamp_ms = Some(timestamp_ms);
        self
    }
}

/// Sizes and counters of a store, from [`LogStore::stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Entries in tables and memtables.
    pub entries: u64,
    /// Entries in tables.
    pub table_entries: u64,
    /// Tables.
    pub tables: usize,
    /// Bytes of the table files.
    pub table_bytes: u64,
    /// Entries in memtables (the active one and the frozen ones).
    pub memtable_entries: u64,
    /// Memory held by memtables.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for their flush.
    pub frozen_memtables: usize,
    /// WAL segments.
    pub wal_segments: usize,
    /// Bytes of records in the WAL.
    pub wal_bytes: u64,
    /// Flushes since open.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Of `compactions`, those done by copying the inputs' blocks as they are stored (inputs
    /// of disjoint key ranges, as time-ordered logs give), without decoding an entry.
    pub compactions_copied: u64,
    /// Tables dropped by retention since open.
    pub tables_expired: u64,
    /// Entries appended since open.
    pub appended_entries: u64,
    /// Bytes of text appended since open.
    pub appended_bytes: u64,
    /// Queries started since open.
    pub queries: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub compactions_copied: AtomicU64,
    pub tables_expired: AtomicU64,
    pub appended_entries: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub queries: AtomicU64,
}

/// What the write path owns.
pub(crate) struct Writer {
    clock: MonotonicClock,
    memtable: Memtable,
    /// Newest store-assigned timestamp in the active memtable.
    store_ts_max: u64,
    closed: bool,
    /// The WAL records of the batch being appended (a buffer reused between batches).
    records: wal_entry::BatchRecords,
}

/// The state shared by the store's handle and its background worker.
pub(crate) struct Inner {
    pub dir: PathBuf,
    pub options: StoreOptions,
    pub memtable_options: MemtableOptions,
    pub wal: Wal,
    pub writer: Mutex<Writer>,
    /// Signalled when a flush makes room for frozen memtables, or the store is poisoned.
    pub room: Condvar,
    pub version: RwLock<Arc<Version>>,
    pub work: Sender<Work>,
    pub poison: Mutex<Option<Arc<str>>>,
    pub counters: Counters,
    /// The data directory's lock, released by `close`.
    lock: Mutex<Option<Box<dyn FsLock>>>,
}

/// A log store: a WAL, memtables and sorted tables in one data directory.
///
/// See the [crate documentation](crate) for an example, the layout on disk and the guarantees.
/// Share it between threads by reference or `Arc`: every method takes `&self`.
pub struct LogStore {
    inner: Arc<Inner>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its data consistent before anything that can panic.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub(crate) fn current(&self) -> Arc<Version> {
        self.version.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Publishes the version `change` makes of the current one. The change runs under the
    /// version's write lock, so concurrent changes (a writer's freeze, the worker's flush) each
    /// see the other's outcome and none is lost.
    pub(crate) fn update_version(&self, change: impl FnOnce(&Version) -> Version) {
        let mut current = self.version.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(change(&current));
    }

    pub(crate) fn table_path(&self, id: u64) -> PathBuf {
        table_path(&self.dir, id)
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    pub(crate) fn fs(&self) -> &dyn FileSystem {
        &*self.options.fs
    }

    /// The failure that stopped writes, if any.
    pub(crate) fn poisoned(&self) -> Option<Arc<str>> {
        lock(&self.poison).clone()
    }

    /// Refuses writes from now on because of `error` (the first failure wins), and wakes
    /// writers waiting for room so they see it. Callable with or without the writer lock held:
    /// it does not take it, so a waiter may miss this wake-up, but it re-checks the poison at
    /// least every [`ROOM_RECHECK`] anyway.
    pub(crate) fn poison(&self, error: &StoreError) {
        lock(&self.poison).get_or_insert_with(|| Arc::from(error.to_string()));
        self.room.notify_all();
    }

    pub(crate) fn wake_writers(&self) {
        // Taking the writer lock orders this wake-up after a writer's check of the condition.
        drop(lock(&self.writer));
        self.room.notify_all();
    }

    /// Waits (releasing the writer lock meanwhile) until at most `frozen_max` frozen memtables
    /// wait for their flush, or the store is poisoned.
    fn wait_for_flushes<'a>(
        &'a self,
        mut writer: MutexGuard<'a, Writer>,
        frozen_max: usize,
    ) -> Result<MutexGuard<'a, Writer>> {
        while self.current().frozen.len() > frozen_max {
            self.check_writable()?;
            // The timeout bounds a wake-up lost to a poisoning (which does not take the lock).
            writer =
                self.room.wait_timeout(writer, ROOM_RECHECK).unwrap_or_else(|e| e.into_inner()).0;
        }
        Ok(writer)
    }

    /// `Poisoned` once a failure stopped writes: nothing more is written.
    pub(crate) fn check_writable(&self) -> Result<()> {
        match self.poisoned() {
            Some(cause) => Err(StoreError::Poisoned { cause }),
            None => Ok(()),
        }
    }

    /// Freezes the active memtable (if it has entries) and asks the worker to flush it.
    fn freeze(&self, writer: &mut Writer) -> Result<()> {
        if writer.memtable.is_empty() {
            return Ok(());
        }
        let next_seq = self.wal.next_seq();
        let fresh = Memtable::new(self.memtable_options)?;
        let full = std::mem::replace(&mut writer.memtable, fresh);
        let frozen = Arc::new(Frozen {
            snapshot: full.freeze(),
            last_seq: next_seq - 1,
            store_ts_max: writer.store_ts_max,
        });
        writer.store_ts_max = 0;
        let active = writer.memtable.reader();
        self.update_version(|current| {
            let mut frozen_list = current.frozen.clone();
            frozen_list.push(frozen);
            Version { active, frozen: frozen_list, tables: current.tables.clone() }
        });
        // The worker is gone only when the store is closing; its last round flushes this.
        let _ = self.work.send(Work::Flush);
        Ok(())
    }
}

/// A WAL failure as the store reports it: a WAL poisoned by an earlier failure is the store's
/// [`StoreError::Poisoned`], whoever saw the failure first.
fn store_error_of_wal(error: logstore_wal::WalError) -> StoreError {
    match error {
        logstore_wal::WalError::Poisoned { cause } => {
            StoreError::Poisoned { cause: Arc::from(cause.to_string()) }
        }
        error => StoreError::Wal(error),
    }
}

pub(crate) fn table_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(TABLES_DIR).join(format!("{id:020}.sst"))
}

impl LogStore {
    /// Opens (or creates) the store in `dir`: takes its lock, reads the manifest, opens the
    /// tables it lists (footers and indexes only), removes files it does not list, and replays
    /// the WAL after the last flushed point.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<LogStore> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let fs = options.fs.clone();
        fs.create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = fs.lock(&lock_path).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => {
                StoreError::Locked { dir: dir.clone(), lock: lock_path.clone() }
            }
            _ => StoreError::Io { op: "lock", path: lock_path.clone(), source: e },
        })?;

        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = Manifest::load(&*fs, &manifest_path)?.unwrap_or(Manifest {
            flushed_seq: 1,
            clock_ms: 0,
            next_table_id: 1,
            tables: Vec::new(),
        });
        let tables = open_tables(&dir, &options, &manifest)?;

        let wal_options = WalOptions {
            durability: options.durability,
            segment_bytes_max: options.wal_segment_bytes_max,
            record_bytes_max: options.wal_record_bytes_max(),
            recovery_record_bytes_max: options
                .wal_record_bytes_max()
                .max(logstore_wal::RECOVERY_RECORD_BYTES_MAX_DEFAULT),
            batch_records_max: options.request_entries_max,
            batch_bytes_max: options.request_bytes_max
                + (options.request_entries_max * wal_entry::OVERHEAD_BYTES_MAX) as u64,
            recovery_mode: options.wal_recovery_mode,
            fs: fs.clone(),
            ..WalOptions::default()
        };
        let wal_dir = dir.join(WAL_DIR);
        let wal = Wal::open(&wal_dir, wal_options)?;
        let memtable_options = MemtableOptions::with_allocation(options.allocation);
        let replayed = replay(&wal, &wal_dir, &manifest, &options, &memtable_options)?;

        let (work, work_rx) = crossbeam_channel::unbounded();
        let flush_pending = !replayed.frozen.is_empty();
        let version =
            Version { active: replayed.writer.memtable.reader(), frozen: replayed.frozen, tables };
        let inner = Arc::new(Inner {
            dir,
            memtable_options,
            wal,
            writer: Mutex::new(replayed.writer),
            room: Condvar::new(),
            version: RwLock::new(Arc::new(version)),
            work,
            poison: Mutex::new(None),
            counters: Counters::default(),
            options,
            lock: Mutex::new(Some(lock)),
        });
        let worker = worker::spawn(inner.clone(), work_rx, Ledger::new(manifest))
            .map_err(io_err("spawn worker for", &inner.dir))?;
        if flush_pending {
            let _ = inner.work.send(Work::Flush);
        }
        Ok(LogStore { inner, worker: Mutex::new(Some(worker)) })
    }

    /// Appends one entry with a store-assigned timestamp; returns its key once it is as
    /// durable as [`StoreOptions::durability`] promises.
    pub fn append(&self, message: &str, metadata: Option<&str>) -> Result<Key> {
        let entry = NewEntry {
            message: Cow::Borrowed(message),
            metadata: metadata.map(Cow::Borrowed),
            timestamp_ms: None,
        };
        Ok(self.append_batch(std::slice::from_ref(&entry))?[0])
    }

    /// Appends one entry (with its own timestamp if it has one).
    pub fn append_entry(&self, entry: &NewEntry<'_>) -> Result<Key> {
        Ok(self.append_batch(std::slice::from_ref(entry))?[0])
    }

    /// Appends entries atomically (after a crash, all of them or none) with one sync; returns
    /// their keys in order. Every entry is checked first: one bad entry refuses the whole
    /// batch and nothing is written.
    pub fn append_batch(&self, entries: &[NewEntry<'_>]) -> Result<Vec<Key>> {
        let inner = &*self.inner;
        let options = &inner.options;
        self.check_request(entries)?;
        inner.check_writable()?;

        let writer = lock(&inner.writer);
        if writer.closed {
            return Err(StoreError::Closed);
        }
        // Back-pressure: wait while the worker is behind on flushes.
        let mut writer = inner.wait_for_flushes(writer, options.frozen_memtables_max - 1)?;
        // The wait let go of the lock: a `close` may have run meanwhile, flushed the memtables
        // and be about to drop the WAL segments. Writing now would lose the entries.
        if writer.closed {
            return Err(StoreError::Closed);
        }
        inner.check_writable()?;

        let seq0 = inner.wal.next_seq();
        let needs_clock = entries.iter().any(|e| e.timestamp_ms.is_none());
        let store_ts = if needs_clock { writer.clock.tick(options.time.now_ms()) } else { 0 };
        let keyed: Vec<Entry<'_>> = entries
            .iter()
            .zip(seq0..)
            .map(|(e, seq)| Entry {
                key: Key::new(e.timestamp_ms.unwrap_or(store_ts), seq),
                message: Cow::Borrowed(&e.message),
                metadata: e.metadata.as_deref().map(Cow::Borrowed),
            })
            .collect();
        writer.records.clear();
        for (entry, new) in keyed.iter().zip(entries) {
            writer.records.push(entry, new.timestamp_ms.is_some());
        }
        let submitted = inner.wal.submit(&writer.records.records());
        let ticket = match submitted {
            Ok(ticket) => ticket,
            Err(e) => {
                let error = store_error_of_wal(e);
                if matches!(error, StoreError::Poisoned { .. } | StoreError::Wal(_)) {
                    inner.poison(&error);
                }
                return Err(error);
            }
        };
        if ticket.seqs().start != seq0 {
            let error = StoreError::KeyOrder { key: keyed[0].key };
            inner.poison(&error);
            return Err(error);
        }
        for entry in &keyed {
            if let Err(e) = writer.memtable.insert(entry) {
                // The WAL has the entry and the memtable not: refuse writes until a reopen
                // rebuilds the memtable from the WAL.
                let error = StoreError::from(e);
                inner.poison(&error);
                return Err(error);
            }
        }
        if needs_clock {
            writer.store_ts_max = writer.store_ts_max.max(store_ts);
        }
        if writer.memtable.len() >= options.flush_threshold_entries
            || writer.memtable.bytes() >= options.flush_threshold_bytes
        {
            inner.freeze(&mut writer)?;
        }
        drop(writer);

        if let Err(e) = inner.wal.wait(&ticket) {
            let error = store_error_of_wal(e);
            inner.poison(&error);
            return Err(error);
        }
        let keys: Vec<Key> = keyed.iter().map(|e| e.key).collect();
        let bytes: usize = keyed.iter().map(Entry::payload_bytes).sum();
        inner.counters.appended_entries.fetch_add(keys.len() as u64, AtomicOrdering::Relaxed);
        inner.counters.appended_bytes.fetch_add(bytes as u64, AtomicOrdering::Relaxed);
        Ok(keys)
    }

    /// Checks a request before anything is written: size limits, each entry's limits and
    /// metadata, client timestamps within the backfill window.
    fn check_request(&self, entries: &[NewEntry<'_>]) -> Result<()> {
        let options = &self.inner.options;
        if entries.is_empty() {
            return Err(StoreError::EmptyBatch);
        }
        let bytes: u64 = entries
            .iter()
            .map(|e| (e.message.len() + e.metadata.as_ref().map_or(0, |m| m.len())) as u64)
            .sum();
        if entries.len() > options.request_entries_max || bytes > options.request_bytes_max {
            return Err(StoreError::RequestTooLarge {
                entries: entries.len(),
                bytes,
                entries_max: options.request_entries_max,
                bytes_max: options.request_bytes_max,
            });
        }
        let mut now_ms = None;
        for (index, new) in entries.iter().enumerate() {
            let entry = Entry {
                key: Key::MIN,
                message: Cow::Borrowed(&new.message),
                metadata: new.metadata.as_deref().map(Cow::Borrowed),
            };
            options
                .limits
                .check(&entry)
                .map_err(|source| StoreError::InvalidEntry { index, source })?;
            if let Some(timestamp_ms) = new.timestamp_ms {
                let now_ms = *now_ms.get_or_insert_with(|| options.time.now_ms());
                let earliest_ms = now_ms.saturating_sub(options.backfill_past_ms);
                let latest_ms = now_ms.saturating_add(options.backfill_future_ms);
                if !(earliest_ms..=latest_ms).contains(&timestamp_ms) {
                    return Err(StoreError::TimestampOutOfRange {
                        index,
                        timestamp_ms,
                        earliest_ms,
                        latest_ms,
                        now_ms,
                        past_ms: options.backfill_past_ms,
                        future_ms: options.backfill_future_ms,
                    });
                }
            }
        }
        Ok(())
    }

    /// Starts a query over the store as it is now.
    pub fn query(&self, query: &Query) -> Result<QueryIter> {
        let inner = &*self.inner;
        let range = query.key_range()?;
        // The watermark first, then the version: every append that returned before the
        // watermark was read is in this version or an older one's memtable that this version
        // replaced. (An entry the WAL acknowledged whose append has not yet returned may be
        // below the watermark and not yet in a memtable: a read need not see it.)
        let visible_below_seq = inner.wal.acknowledged_seq();
        let version = inner.current();
        inner.counters.queries.fetch_add(1, AtomicOrdering::Relaxed);
        let Some(range) = range else { return Ok(QueryIter::new(None, query, version)) };
        let descending = query.order == Order::Descending;
        let direction = if descending { Direction::Backward } else { Direction::Forward };

        let mut cursors = Vec::new();
        let snapshots = std::iter::once(version.active.snapshot())
            .chain(version.frozen.iter().map(|f| f.snapshot.clone()));
        for snapshot in snapshots {
            let cursor = MemCursor::new(snapshot, range.clone(), descending, visible_below_seq);
            if cursor.key().is_some() {
                cursors.push(Source::Memory(cursor));
            }
        }
        let indexed = inner.options.use_sparse_index;
        let tables: Vec<Table> = version
            .tables
            .iter()
            .filter(|t| !indexed || t.table.overlaps(range.clone()))
            .map(|t| t.table.clone())
            .collect();
        for chain in chains(tables, descending) {
            let cursor = Chain::new(chain, range.clone(), direction, indexed)?;
            if cursor.key().is_some() {
                cursors.push(Source::Tables(cursor));
            }
        }
        let merge = Merge::new(cursors, descending);
        Ok(QueryIter::new(Some(merge), query, version))
    }

    /// Freezes the active memtable and waits until every entry appended before is in a
    /// durable table named by the stored manifest (a checkpoint, see the crate docs), and the
    /// WAL segments holding only such entries are deleted.
    pub fn flush(&self) -> Result<()> {
        self.freeze_active()?;
        self.ask_worker(Work::Checkpoint)
    }

    /// Flushes, then merges all tables into one (what `logstore compact` does), ending with a
    /// checkpoint: the worker's round flushes the frozen memtable, applies retention, merges
    /// everything (skipping the tiered merges it would rewrite at once), then makes the result
    /// durable (a checkpoint falling due on the way runs too). The background compaction that runs after flushes merges
    /// tables in tiers instead; see [`CompactionOptions`](crate::CompactionOptions).
    pub fn compact(&self) -> Result<()> {
        self.freeze_active()?;
        self.ask_worker(Work::CompactAll)
    }

    /// Freezes the active memtable, so the worker's next round flushes it.
    fn freeze_active(&self) -> Result<()> {
        let inner = &*self.inner;
        let mut writer = lock(&inner.writer);
        if writer.closed {
            return Err(StoreError::Closed);
        }
        inner.check_writable()?;
        inner.freeze(&mut writer)
    }

    /// Sends the worker a request and waits for its answer; `Closed` if it stopped first.
    fn ask_worker(&self, request: fn(crossbeam_channel::Sender<Result<()>>) -> Work) -> Result<()> {
        let (done, finished) = crossbeam_channel::bounded(1);
        self.inner.work.send(request(done)).map_err(|_| StoreError::Closed)?;
        finished.recv().map_err(|_| StoreError::Closed)?
    }

    /// Sizes and counters.
    pub fn stats(&self) -> StoreStats {
        let inner = &*self.inner;
        let version = inner.current();
        let active = version.active.snapshot();
        let memtable_entries = active.len() as u64
            + version.frozen.iter().map(|f| f.snapshot.len() as u64).sum::<u64>();
        let memtable_bytes = active.bytes() as u64
            + version.frozen.iter().map(|f| f.snapshot.bytes() as u64).sum::<u64>();
        let table_entries: u64 = version.tables.iter().map(|t| t.record.entries).sum();
        let wal = inner.wal.stats();
        let counter = |c: &AtomicU64| c.load(AtomicOrdering::Relaxed);
        StoreStats {
            entries: table_entries + memtable_entries,
            table_entries,
            tables: version.tables.len(),
            table_bytes: version.tables.iter().map(|t| t.record.bytes).sum(),
            memtable_entries,
            memtable_bytes,
            frozen_memtables: version.frozen.len(),
            wal_segments: wal.segments,
            wal_bytes: wal.log_bytes,
            flushes: counter(&inner.counters.flushes),
            compactions: counter(&inner.counters.compactions),
            compactions_copied: counter(&inner.counters.compactions_copied),
            tables_expired: counter(&inner.counters.tables_expired),
            appended_entries: counter(&inner.counters.appended_entries),
            appended_bytes: counter(&inner.counters.appended_bytes),
            queries: counter(&inner.counters.queries),
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The failure that made the store refuse writes, if one did.
    pub fn poisoned(&self) -> Option<Arc<str>> {
        self.inner.poisoned()
    }

    /// Flushes every memtable to a table, empties the WAL, syncs, and stops the background
    /// worker; later writes fail with [`StoreError::Closed`]. Dropping the store does the same
    /// but cannot report a failure. Closing again does nothing.
    pub fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        let freeze_result = {
            let mut writer = lock(&inner.writer);
            if writer.closed {
                return Ok(());
            }
            writer.closed = true;
            match inner.poisoned() {
                Some(_) => Ok(()),
                None => inner.freeze(&mut writer),
            }
        };
        // The worker flushes every frozen memtable before it stops.
        let _ = inner.work.send(Work::Stop);
        if let Some(handle) = lock(&self.worker).take() {
            let _ = handle.join();
        }
        let result = freeze_result.and_then(|()| match inner.poisoned() {
            // Acknowledged entries are in the WAL; the next open replays them.
            Some(cause) => {
                inner.wal.close()?;
                Err(StoreError::Poisoned { cause })
            }
            // Everything is in tables: start a fresh WAL segment and drop the old ones, so
            // the next open has nothing to replay.
            None => {
                inner.wal.rotate()?;
                inner.wal.truncate_before(inner.wal.next_seq())?;
                Ok(inner.wal.close()?)
            }
        });
        // Nothing of this store writes any more: another may open the directory.
        lock(&inner.lock).take();
        result
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // Best effort; acknowledged entries are durable in the WAL whatever happens here.
        let _ = self.close();
    }
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.inner.dir)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Opens the tables the manifest lists, after removing every other file of the tables folder
/// (a table a crash left half-written, or one a compaction replaced).
fn open_tables(
    dir: &Path,
    options: &StoreOptions,
    manifest: &Manifest,
) -> Result<Vec<Arc<TableHandle>>> {
    let fs = &*options.fs;
    // The manifest just read may be a rename whose directory fsync failed in the last process.
    // Make it durable before acting on it (deleting the tables it does not list here, the WAL
    // it covers at the next close): else a power cut brings back the old manifest, naming
    // deleted tables or relying on deleted WAL records.
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    let tables_dir = dir.join(TABLES_DIR);
    fs.create_dir_all(&tables_dir).map_err(io_err("create directory", &tables_dir))?;
    let listed: HashSet<PathBuf> = manifest.tables.iter().map(|t| table_path(dir, t.id)).collect();
    let mut removed = false;
    for name in fs.list_dir(&tables_dir).map_err(io_err("list", &tables_dir))? {
        let path = tables_dir.join(&name);
        if !listed.contains(&path) {
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(&tables_dir).map_err(io_err("fsync directory", &tables_dir))?;
    }
    manifest
        .tables
        .iter()
        .map(|record| {
            let path = table_path(dir, record.id);
            let table = Table::open(fs, &path, options.table_read)?;
            let stats = table.stats();
            if stats.entry_count != record.entries
                || stats.min_key != record.min_key()
                || stats.max_key != record.max_key()
            {
                return Err(StoreError::Corruption {
                    path,
                    offset: 0,
                    reason: format!(
                        "table holds {} entries {}..={}, the manifest says {} entries {}..={}",
                        stats.entry_count,
                        stats.min_key,
                        stats.max_key,
                        record.entries,
                        record.min_key(),
                        record.max_key()
                    ),
                });
            }
            Ok(Arc::new(TableHandle { table, record: record.clone() }))
        })
        .collect()
}

/// What replaying the WAL rebuilt.
struct Replayed {
    writer: Writer,
    frozen: Vec<Arc<Frozen>>,
}

/// Rebuilds the memtables from the WAL records after the manifest's flushed point.
fn replay(
    wal: &Wal,
    wal_dir: &Path,
    manifest: &Manifest,
    options: &StoreOptions,
    memtable_options: &MemtableOptions,
) -> Result<Replayed> {
    let report = wal.recovery();
    let flushed = manifest.flushed_seq.max(1);
    let corrupt =
        |reason: String| StoreError::Corruption { path: wal_dir.to_owned(), offset: 0, reason };
    if report.next_seq < flushed {
        return Err(corrupt(format!(
            "the WAL ends before sequence {}, but the tables already hold entries up to {}",
            report.next_seq,
            flushed - 1
        )));
    }
    if report.first_seq > flushed {
        return Err(corrupt(format!(
            "the WAL starts at sequence {}, but entries from {flushed} on are in no table",
            report.first_seq
        )));
    }
    let mut clock_floor = manifest.clock_ms;
    let mut frozen = Vec::new();
    let mut memtable = Memtable::new(*memtable_options)?;
    let mut store_ts_max = 0;
    for record in wal.replay(flushed)? {
        let record = record?;
        let (entry, client_timestamp) = wal_entry::decode(&record.payload)
            .map_err(|e| corrupt(format!("record {}: {e}", record.seq)))?;
        if entry.key.seq != record.seq {
            return Err(corrupt(format!("record {} holds key {}", record.seq, entry.key)));
        }
        memtable.insert(&entry)?;
        if !client_timestamp {
            store_ts_max = store_ts_max.max(entry.key.timestamp_ms);
            clock_floor = clock_floor.max(entry.key.timestamp_ms);
        }
        if memtable.len() >= options.flush_threshold_entries
            || memtable.bytes() >= options.flush_threshold_bytes
        {
            let full = std::mem::replace(&mut memtable, Memtable::new(*memtable_options)?);
            frozen.push(Arc::new(Frozen {
                snapshot: full.freeze(),
                last_seq: record.seq,
                store_ts_max,
            }));
            store_ts_max = 0;
        }
    }
    let writer = Writer {
        clock: MonotonicClock::new(clock_floor),
        memtable,
        store_ts_max,
        closed: false,
        records: wal_entry::BatchRecords::default(),
    };
    Ok(Replayed { writer, frozen })
}

impl TableRecord {
    /// The manifest's record of a table just written.
    pub(crate) fn of(
        id: u64,
        generation: u32,
        stats: &logstore_sstable::TableStats,
    ) -> TableRecord {
        TableRecord {
            id,
            generation,
            entries: stats.entry_count,
            bytes: stats.file_bytes,
            min_timestamp_ms: stats.min_key.timestamp_ms,
            min_seq: stats.min_key.seq,
            max_timestamp_ms: stats.max_key.timestamp_ms,
            max_seq: stats.max_key.seq,
        }
    }
}
