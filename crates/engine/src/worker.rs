//! The background worker: flushes frozen memtables, merges tables, drops expired ones, and
//! checkpoints.
//!
//! One thread does all of it, in that order, so the manifest has one writer (the worker owns
//! the [`Ledger`]); flushes go first, even in the middle of a merge ([`FROZEN_CHECK_ENTRIES`])
//! or of a checkpoint, so writers never wait for either. A flush or merge writes its table
//! without a sync, then publishes the new version to readers; an input table that no stored
//! manifest lists is deleted at once. The tables become durable, the manifest names them, and
//! the WAL and the replaced tables go only at a checkpoint ([`crate::checkpoint`]), which runs
//! once enough is flushed, when a caller asks (`flush`, `compact`) and before the worker stops.
//! A crash at any point leaves either files the next open removes (not in the stored manifest)
//! or WAL records it replays (at or above the stored manifest's flushed point): nothing is lost
//! or served twice.

use crate::checkpoint::{self, Ledger};
use crate::compaction::{self, Compaction, TableSummary};
use crate::error::{Result, StoreError, io_err};
use crate::manifest::TableRecord;
use crate::merge::{Chain, Merge, chains};
use crate::store::Inner;
use crate::version::{Frozen, TableHandle, Version};
use crossbeam_channel::{Receiver, Sender};
use logstore_entry::Key;
use logstore_sstable::{Direction, Table, TableBuilder};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// A merge flushes the memtables frozen meanwhile after every this many entries (or every
/// input table, when it copies blocks), so that writers waiting for room
/// ([`StoreOptions::frozen_memtables_max`]) wait for one flush at most, not for a whole merge
/// (a merge of 8 tables of 8,000 entries rewrites some 36 MB).
///
/// [`StoreOptions::frozen_memtables_max`]: crate::StoreOptions::frozen_memtables_max
const FROZEN_CHECK_ENTRIES: u64 = 256;

/// What the worker is asked to do.
pub(crate) enum Work {
    /// Flush every frozen memtable, then compact and expire.
    Flush,
    /// Flush every frozen memtable, then checkpoint, and report.
    Checkpoint(Sender<Result<()>>),
    /// Merge every table into one, checkpoint, and report.
    CompactAll(Sender<Result<()>>),
    /// Flush what is frozen, checkpoint, then stop.
    Stop,
}

/// Starts the worker of a store whose stored manifest `ledger` holds.
pub(crate) fn spawn(
    inner: Arc<Inner>,
    work: Receiver<Work>,
    ledger: Ledger,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("logstore-worker".into())
        .spawn(move || run(&inner, &work, ledger))
}

fn run(inner: &Inner, work: &Receiver<Work>, mut ledger: Ledger) {
    loop {
        let mut stop = false;
        let mut checkpoint_replies = Vec::new();
        let mut compact_replies = Vec::new();
        // One round serves every request queued so far.
        let first = work.recv();
        for item in
            std::iter::once(first.ok()).chain(std::iter::from_fn(|| work.try_recv().ok().map(Some)))
        {
            match item {
                None | Some(Work::Stop) => stop = true,
                Some(Work::Flush) => {}
                Some(Work::Checkpoint(reply)) => checkpoint_replies.push(reply),
                Some(Work::CompactAll(reply)) => compact_replies.push(reply),
            }
        }
        let asked = stop || !checkpoint_replies.is_empty() || !compact_replies.is_empty();
        let result = inner
            .check_writable()
            .and_then(|()| flush_all(inner, &mut ledger))
            .and_then(|()| checkpoint_if_due(inner, &mut ledger))
            .and_then(|()| match compact_replies.is_empty() {
                true => maintain(inner, &mut ledger),
                // Asked to merge everything: the strategy's merges would be rewritten at once.
                false => retain(inner, &mut ledger).and_then(|()| compact_all(inner, &mut ledger)),
            })
            .and_then(|()| match asked {
                true => checkpoint(inner, &mut ledger),
                false => checkpoint_if_due(inner, &mut ledger),
            });
        if let Err(e) = &result {
            if !matches!(e, StoreError::Poisoned { .. }) {
                inner.poison(e);
            }
        }
        // A failed round's error goes to the first requester (it names the operation and the
        // file; it is not `Clone`), the others get the poisoning it caused.
        let mut result = result.map_err(Some);
        for reply in checkpoint_replies.into_iter().chain(compact_replies) {
            let outcome = match &mut result {
                Ok(()) => Ok(()),
                Err(error) => error.take().map_or_else(|| inner.check_writable(), Err),
            };
            let _ = reply.send(outcome);
        }
        if stop {
            return;
        }
    }
}

/// A checkpoint ([`crate::checkpoint`]); the memtables frozen meanwhile are flushed between
/// its syncs.
fn checkpoint(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    checkpoint::checkpoint(inner, ledger, &mut |ledger| flush_all(inner, ledger))
}

/// A checkpoint if one is due ([`StoreOptions::checkpoint_interval_bytes`]). Called between
/// flushes and between merges, not only at the end of a round: under steady writes a round
/// can last as long as the writes do, and the WAL and the merged-away tables would pile up.
///
/// [`StoreOptions::checkpoint_interval_bytes`]: crate::StoreOptions::checkpoint_interval_bytes
fn checkpoint_if_due(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    match ledger.due(inner.options.checkpoint_interval_bytes) {
        true => checkpoint(inner, ledger),
        false => Ok(()),
    }
}

/// Flushes the frozen memtables, oldest first.
fn flush_all(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    while let Some(frozen) = inner.current().frozen.first().cloned() {
        flush(inner, ledger, &frozen)?;
    }
    Ok(())
}

/// Writes `frozen` as a table (no sync: [`crate::checkpoint`]) and swaps it in.
fn flush(inner: &Inner, ledger: &mut Ledger, frozen: &Arc<Frozen>) -> Result<()> {
    let id = ledger.take_table_id();
    let path = inner.table_path(id);
    let mut builder = TableBuilder::create(inner.options.fs.clone(), &path, inner.options.table)?;
    for entry in frozen.snapshot.iter() {
        builder.add(&entry)?;
    }
    let stats = builder.finish_unsynced()?;
    let table = Table::open(inner.fs(), &path, inner.options.table_read)?;
    let handle = Arc::new(TableHandle { table, record: TableRecord::of(id, 0, &stats) });
    // Readers see a table's entries unfiltered: publish it only once the WAL acknowledged
    // every one of them (the last append into the memtable may still be waiting for its
    // round; in `Sync` durability this joins that sync, or returns at once). Acknowledged,
    // not synced: in `None` and `Batch` a flush must not sync the WAL (a checkpoint does).
    inner.wal.wait_acknowledged(frozen.last_seq + 1)?;
    ledger.flushed(handle.record.clone(), frozen.last_seq + 1, frozen.store_ts_max);
    inner.update_version(|current| current.flushed(frozen, handle));
    inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
    inner.wake_writers();
    Ok(())
}

fn summaries(version: &Version) -> Vec<TableSummary> {
    version
        .tables
        .iter()
        .map(|t| TableSummary {
            id: t.record.id,
            generation: t.record.generation,
            bytes: t.record.bytes,
            min_key: t.record.min_key(),
            max_key: t.record.max_key(),
        })
        .collect()
}

/// Background compaction (as long as the strategy finds a merge), then retention.
fn maintain(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    if let Some(options) = inner.options.compaction {
        while let Some(choice) = compaction::choose(&summaries(&inner.current()), &options) {
            merge_tables(inner, ledger, &choice)?;
            flush_all(inner, ledger)?;
            checkpoint_if_due(inner, ledger)?;
        }
    }
    retain(inner, ledger)
}

/// Retention: drops the tables past `retention_ms` or beyond `disk_bytes_max`.
fn retain(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    let retention = inner.options.retention;
    if retention.retention_ms.is_some() || retention.disk_bytes_max.is_some() {
        let now_ms = inner.options.time.now_ms();
        let expired = compaction::expired(&summaries(&inner.current()), now_ms, &retention);
        if !expired.is_empty() {
            replace_tables(inner, ledger, &expired, None)?;
            inner.counters.tables_expired.fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Merges every table into one.
fn compact_all(inner: &Inner, ledger: &mut Ledger) -> Result<()> {
    let version = inner.current();
    if version.tables.len() < 2 {
        return Ok(());
    }
    let generation = version.tables.iter().map(|t| t.record.generation).max().unwrap_or(0) + 1;
    let inputs = version.tables.iter().map(|t| t.record.id).collect();
    merge_tables(inner, ledger, &Compaction { inputs, generation })
}

/// Writes the merge of `choice.inputs` as one new table (no sync: [`crate::checkpoint`]) and
/// swaps it in. Inputs whose key ranges do not overlap, the usual case for a log, are copied
/// block by block ([`TableBuilder::append_table`]); others are merged entry by entry.
fn merge_tables(inner: &Inner, ledger: &mut Ledger, choice: &Compaction) -> Result<()> {
    let version = inner.current();
    let inputs: Vec<Table> = version
        .tables
        .iter()
        .filter(|t| choice.inputs.contains(&t.record.id))
        .map(|t| t.table.clone())
        .collect();
    let id = ledger.take_table_id();
    let path = inner.table_path(id);
    let mut builder = TableBuilder::create(inner.options.fs.clone(), &path, inner.options.table)?;
    let mut chains = chains(inputs, false);
    let format = (inner.options.table.codec, inner.options.table.compression);
    let copyable =
        |chain: &[Table]| chain.iter().all(|t| (t.stats().codec, t.stats().compression) == format);
    let copy = chains.len() == 1 && copyable(&chains[0]);
    if copy {
        // Disjoint key ranges (logs arrive in time order): the output is the inputs' blocks
        // one after the other, copied without decoding an entry (checksums verified).
        for table in chains.remove(0) {
            builder.append_table(&table)?;
            flush_all(inner, ledger)?;
        }
    } else {
        let everything = Key::MIN..=Key::MAX;
        let cursors = chains
            .into_iter()
            .map(|chain| Chain::new(chain, everything.clone(), Direction::Forward, true))
            .collect::<Result<Vec<_>>>()?;
        let mut merge = Merge::new(cursors, false);
        let mut merged_entries: u64 = 0;
        while let Some(entry) = merge.entry() {
            builder.add(&entry?)?;
            merge.advance()?;
            merged_entries += 1;
            // Flushes go first: a writer may be waiting for one, and a merge can take long.
            if merged_entries % FROZEN_CHECK_ENTRIES == 0 {
                flush_all(inner, ledger)?;
            }
        }
    }
    let stats = builder.finish_unsynced()?;
    let table = Table::open(inner.fs(), &path, inner.options.table_read)?;
    let handle =
        Arc::new(TableHandle { table, record: TableRecord::of(id, choice.generation, &stats) });
    replace_tables(inner, ledger, &choice.inputs, Some(handle))?;
    inner.counters.compactions.fetch_add(1, Ordering::Relaxed);
    if copy {
        inner.counters.compactions_copied.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Takes tables `removed` out of the store and puts `added` in: the ledger, then the version,
/// then the files of removed tables no stored manifest lists (the others go at the next
/// checkpoint, once the manifest stored then no longer lists them).
fn replace_tables(
    inner: &Inner,
    ledger: &mut Ledger,
    removed: &[u64],
    added: Option<Arc<TableHandle>>,
) -> Result<()> {
    let never_stored = ledger.replaced(removed, added.as_ref().map(|t| t.record.clone()));
    inner.update_version(|current| current.with_tables(removed, added));
    // Readers of older versions keep their open files; the names go now. A crash may bring a
    // name back (no directory sync): the next open removes it, as the manifest never listed it.
    let fs = inner.fs();
    for id in never_stored {
        let path = inner.table_path(id);
        fs.remove_file(&path).map_err(io_err("remove", &path))?;
    }
    Ok(())
}
