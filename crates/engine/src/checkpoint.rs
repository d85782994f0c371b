//! Checkpoints: when the tables the worker writes become durable, and the WAL they hold goes.
//!
//! A flush or a merge writes its table with no sync at all ([`TableBuilder::finish_unsynced`])
//! and hands it to readers at once: the WAL still holds every entry of every table written
//! since the last checkpoint, and the stored manifest does not name those tables, so a crash
//! loses nothing (the next open removes the files the manifest does not list and replays the
//! WAL from the manifest's flushed point). A **checkpoint** then makes them durable, in this
//! order, each step only after the one before succeeded:
//!
//! 1. `fdatasync` the WAL up to its last record, so every entry below the new flushed point
//!    is durable there (a no-op in `Sync` durability, where each append already waited for
//!    it), and a crash can never leave tables reaching past the WAL's end;
//! 2. `fdatasync` each table written since the last checkpoint that is still live (a table
//!    merged away before the checkpoint was deleted without ever being synced), flushing the
//!    memtables frozen meanwhile between two syncs (their tables wait for the next checkpoint);
//! 3. `fsync` the tables folder once: the names of all of them;
//! 4. store the manifest listing them ([`Manifest::store`]: temporary file, `fdatasync`,
//!    rename, `fsync` of the data directory);
//! 5. remove the tables the previous manifest listed and this one does not (merge inputs,
//!    expired tables), then `fsync` the tables folder;
//! 6. delete the WAL segments whose records are all below the manifest's flushed point,
//!    oldest first, each followed by an `fsync` of the WAL folder.
//!
//! A crash before step 4 completes comes back to the previous manifest, whose tables are
//! untouched (step 5 has not run) and whose WAL is all there (step 6 has not run); a crash
//! after it comes back to the new one, whose tables are durable (steps 2 and 3). Either way
//! nothing is lost, and nothing is served twice: open deletes every table file the manifest
//! does not list before it replays the WAL.
//!
//! # When
//! A checkpoint runs after [`StoreOptions::checkpoint_interval_bytes`] of flushed tables, or
//! once as many bytes of stored tables were merged away (their files are deleted only by a
//! checkpoint, so this bounds the disk a merge's inputs and output hold together)
//! ([`Ledger::due`]), and whenever a caller asks for durable tables: `LogStore::flush`,
//! `LogStore::compact` and `close`. A flush costs no sync of its own, only the table's
//! writes; a checkpoint costs an `fdatasync` per table it covers, plus the WAL's sync, an
//! `fsync` of the tables directory if it covers any, the manifest's sync and its directory's, another `fsync`
//! of the tables directory if it removed tables, and one of the WAL directory per segment it
//! lets go. The WAL deletes whole
//! segments only, so checkpointing more often than a segment fills drops nothing sooner: it
//! shortens the replay after a crash (bounded by the interval plus the memtables), and spends
//! syncs and disk bandwidth on tables that a merge may replace moments later.

#[cfg(doc)]
use crate::StoreOptions;
use crate::error::{Result, io_err};
use crate::manifest::{Manifest, TableRecord};
use crate::store::{Inner, TABLES_DIR};
use logstore_fs::OpenMode;
#[cfg(doc)]
use logstore_sstable::TableBuilder;

/// The worker's record of the tables: the manifest as stored, the manifest as it will be
/// stored at the next checkpoint, and what lies between them. Owned by the worker (the
/// manifest's only writer); pure bookkeeping, the I/O is [`checkpoint`].
#[derive(Debug)]
pub(crate) struct Ledger {
    /// The manifest as last stored: what a crash comes back to.
    stored: Manifest,
    /// The manifest of the tables now, stored by the next checkpoint.
    next: Manifest,
    /// Tables of `next` written since the last checkpoint, not yet synced, oldest first.
    unsynced: Vec<u64>,
    /// Tables `stored` lists and `next` does not: their files go once `next` is stored.
    doomed: Vec<u64>,
    /// Bytes of tables flushed since the last checkpoint.
    flushed_bytes: u64,
}

impl Ledger {
    /// The ledger of a store whose stored manifest is `stored` (nothing written since).
    pub(crate) fn new(stored: Manifest) -> Ledger {
        Ledger {
            next: stored.clone(),
            stored,
            unsynced: Vec::new(),
            doomed: Vec::new(),
            flushed_bytes: 0,
        }
    }

    /// Takes the id of a table about to be written: ids are never reused, even for a table
    /// that fails, and a flush that runs while a merge builds its table gets the next one.
    pub(crate) fn take_table_id(&mut self) -> u64 {
        let id = self.next.next_table_id;
        self.next.next_table_id += 1;
        id
    }

    /// Records a flushed table: it holds every entry below `flushed_seq` not in an older
    /// table, and store-assigned timestamps up to `clock_ms`.
    pub(crate) fn flushed(&mut self, table: TableRecord, flushed_seq: u64, clock_ms: u64) {
        debug_assert!(flushed_seq > self.next.flushed_seq, "flushes move the WAL point forward");
        self.next.flushed_seq = flushed_seq;
        self.next.clock_ms = self.next.clock_ms.max(clock_ms);
        self.flushed_bytes += table.bytes;
        self.add(table);
    }

    /// Records that the tables `removed` are replaced by `added` (a merge's output) or by
    /// nothing (retention). Returns the ids of the removed tables no stored manifest ever
    /// listed: their files can go at once. The others go at the next checkpoint.
    pub(crate) fn replaced(&mut self, removed: &[u64], added: Option<TableRecord>) -> Vec<u64> {
        self.next.tables.retain(|t| !removed.contains(&t.id));
        let (never_stored, stored): (Vec<u64>, Vec<u64>) =
            removed.iter().partition(|id| self.unsynced.contains(id));
        self.unsynced.retain(|id| !removed.contains(id));
        self.doomed.extend(stored);
        if let Some(added) = added {
            self.add(added);
        }
        never_stored
    }

    fn add(&mut self, table: TableRecord) {
        debug_assert!(table.id < self.next.next_table_id, "the id was taken");
        self.unsynced.push(table.id);
        self.next.tables.push(table);
    }

    /// Whether a checkpoint should run unasked: `interval_bytes` of tables flushed since the
    /// last one (the WAL it lets go), or as much disk held by tables merged away since then
    /// (their files go only at a checkpoint: without this, a store whose merges outgrow the
    /// interval would keep both a merge's inputs and its output on disk until the next flush
    /// interval, up to twice its size).
    pub(crate) fn due(&self, interval_bytes: u64) -> bool {
        self.flushed_bytes >= interval_bytes || self.doomed_bytes() >= interval_bytes
    }

    /// Bytes of the tables whose files go at the next checkpoint.
    fn doomed_bytes(&self) -> u64 {
        let doomed = self.stored.tables.iter().filter(|t| self.doomed.contains(&t.id));
        doomed.map(|t| t.bytes).sum()
    }
}

/// Makes every table of `ledger` durable, stores its manifest, removes what that manifest no
/// longer lists, and deletes the WAL segments it covers: the sequence of the module docs.
///
/// Syncing the tables can take a while (tens of megabytes written since the last checkpoint),
/// so `between_syncs` runs after each table's sync: the worker flushes the memtables frozen
/// meanwhile, and writers do not wait for the checkpoint. What those flushes add to the ledger
/// is left for the next checkpoint: this one stores the manifest as it was when it started.
pub(crate) fn checkpoint(
    inner: &Inner,
    ledger: &mut Ledger,
    between_syncs: &mut dyn FnMut(&mut Ledger) -> Result<()>,
) -> Result<()> {
    // Tables to drop are listed in `stored` and not in `next`: covered by this test too.
    if ledger.next != ledger.stored {
        let manifest = ledger.next.clone();
        let syncing = ledger.unsynced.clone();
        let doomed = ledger.doomed.clone();
        let flushed_bytes = ledger.flushed_bytes;
        inner.wal.sync()?;
        let fs = inner.fs();
        for &id in &syncing {
            let path = inner.table_path(id);
            let file = fs.open(&path, OpenMode::Read).map_err(io_err("open", &path))?;
            file.sync_data().map_err(io_err("fdatasync", &path))?;
            between_syncs(ledger)?;
        }
        let tables_dir = inner.dir.join(TABLES_DIR);
        if !syncing.is_empty() {
            fs.sync_dir(&tables_dir).map_err(io_err("fsync directory", &tables_dir))?;
        }
        manifest.store(fs, &inner.manifest_path())?;
        ledger.stored = manifest;
        ledger.unsynced.retain(|id| !syncing.contains(id));
        ledger.flushed_bytes -= flushed_bytes;
        if !doomed.is_empty() {
            // Readers of older versions keep their open files; the names go now.
            for &id in &doomed {
                let path = inner.table_path(id);
                fs.remove_file(&path).map_err(io_err("remove", &path))?;
            }
            ledger.doomed.retain(|id| !doomed.contains(id));
            fs.sync_dir(&tables_dir).map_err(io_err("fsync directory", &tables_dir))?;
        }
    }
    inner.wal.truncate_before(ledger.stored.flushed_seq)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u64, bytes: u64) -> TableRecord {
        TableRecord {
            id,
            generation: 0,
            entries: 1,
            bytes,
            min_timestamp_ms: id,
            min_seq: id,
            max_timestamp_ms: id,
            max_seq: id,
        }
    }

    fn stored_with(ids: &[u64]) -> Manifest {
        Manifest {
            flushed_seq: 10,
            clock_ms: 5,
            next_table_id: ids.iter().max().map_or(1, |id| id + 1),
            tables: ids.iter().map(|&id| record(id, 100)).collect(),
        }
    }

    /// A flush with the next id.
    fn flush(ledger: &mut Ledger, bytes: u64, flushed_seq: u64, clock_ms: u64) -> u64 {
        let id = ledger.take_table_id();
        ledger.flushed(record(id, bytes), flushed_seq, clock_ms);
        id
    }

    #[test]
    fn flushes_accumulate_until_the_interval() {
        let mut ledger = Ledger::new(stored_with(&[1]));
        assert!(!ledger.due(1));
        assert_eq!(flush(&mut ledger, 600, 20, 7), 2);
        assert!(!ledger.due(1_000));
        assert_eq!(flush(&mut ledger, 400, 30, 6), 3);
        assert!(ledger.due(1_000));
        assert_eq!((ledger.next.flushed_seq, ledger.next.clock_ms), (30, 7));
        assert_eq!((ledger.next.next_table_id, &ledger.unsynced[..]), (4, &[2, 3][..]));
        assert_eq!(ledger.stored, stored_with(&[1]), "nothing stored until a checkpoint");
    }

    #[test]
    fn tables_merged_away_make_a_checkpoint_due() {
        let mut ledger = Ledger::new(stored_with(&[1]));
        let bytes = ledger.stored.tables[0].bytes;
        assert!(bytes > 0);
        let merged = ledger.take_table_id();
        assert!(ledger.replaced(&[1], Some(record(merged, bytes))).is_empty());
        // Nothing flushed, but table 1's bytes wait for a checkpoint to be deleted.
        assert!(ledger.due(bytes));
        assert!(!ledger.due(bytes + 1));
    }

    #[test]
    fn merged_tables_never_stored_go_at_once_stored_ones_after_the_checkpoint() {
        let mut ledger = Ledger::new(stored_with(&[1]));
        flush(&mut ledger, 100, 20, 0);
        // A merge of 1 and 2 takes its id, and a flush runs while it builds its table.
        let merged = ledger.take_table_id();
        assert_eq!(flush(&mut ledger, 100, 30, 0), 4);
        // 1 is in the stored manifest: it stays on disk until the next one no longer lists it.
        let now = ledger.replaced(&[1, 2], Some(record(merged, 200)));
        assert_eq!(now, [2]);
        assert_eq!(ledger.doomed, [1]);
        assert_eq!(ledger.unsynced, [4, 3]);
        let ids: Vec<u64> = ledger.next.tables.iter().map(|t| t.id).collect();
        assert_eq!(ids, [4, 3]);
        // Retention of a table never synced.
        assert_eq!(ledger.replaced(&[4], None), [4]);
        assert_eq!((&ledger.unsynced[..], ledger.next.next_table_id), (&[3][..], 5));
    }
}
