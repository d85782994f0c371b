//! The background worker: flushes frozen memtables, merges tables, drops expired ones.
//!
//! One thread does all three, in that order, so the manifest has one writer. Each step follows
//! the same crash-safe sequence: write the new table (temporary name, sync, rename, directory
//! sync), then store the new manifest (atomically), then publish the new version to readers,
//! and only then delete what the manifest no longer lists (WAL segments, input tables). A
//! crash between any two steps leaves either files the next open removes (not in the
//! manifest) or WAL records the next open skips (below the manifest's flushed point): nothing
//! is lost or served twice.

use crate::compaction::{self, Compaction, TableSummary};
use crate::error::{Result, io_err};
use crate::manifest::TableRecord;
use crate::merge::{Chain, Cursor, Merge, chains};
use crate::store::{Inner, TABLES_DIR};
use crate::version::{Frozen, TableHandle, Version};
use crossbeam_channel::{Receiver, Sender};
use logstore_entry::Key;
use logstore_sstable::{Direction, Table, TableBuilder};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

/// What the worker is asked to do.
pub(crate) enum Work {
    /// Flush every frozen memtable, then compact and expire.
    Flush,
    /// Merge every table into one, and report.
    CompactAll(Sender<Result<()>>),
    /// Flush what is frozen, then stop.
    Stop,
}

pub(crate) fn spawn(inner: Arc<Inner>, work: Receiver<Work>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("logstore-worker".into()).spawn(move || run(&inner, &work))
}

fn run(inner: &Inner, work: &Receiver<Work>) {
    loop {
        let mut stop = false;
        let mut replies = Vec::new();
        // One round serves every request queued so far.
        let first = work.recv();
        for item in
            std::iter::once(first.ok()).chain(std::iter::from_fn(|| work.try_recv().ok().map(Some)))
        {
            match item {
                None | Some(Work::Stop) => stop = true,
                Some(Work::Flush) => {}
                Some(Work::CompactAll(reply)) => replies.push(reply),
            }
        }
        if inner.poisoned().is_none() {
            let result = flush_all(inner).and_then(|()| maintain(inner));
            if let Err(e) = &result {
                inner.poison(e);
            }
        }
        for reply in replies {
            let result = match inner.poisoned() {
                Some(cause) => Err(crate::StoreError::Poisoned { cause }),
                None => compact_all(inner).inspect_err(|e| inner.poison(e)),
            };
            let _ = reply.send(result);
        }
        if stop {
            return;
        }
    }
}

/// Flushes the frozen memtables, oldest first.
fn flush_all(inner: &Inner) -> Result<()> {
    while let Some(frozen) = inner.current().frozen.first().cloned() {
        flush(inner, &frozen)?;
    }
    Ok(())
}

fn flush(inner: &Inner, frozen: &Arc<Frozen>) -> Result<()> {
    // The table must not hold an entry the WAL could still lose: make them all durable there
    // first (a no-op in Sync mode, where every acknowledged entry already is).
    inner.wal.sync()?;
    let (id, handle) = {
        let manifest = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
        let id = manifest.next_table_id;
        let path = inner.table_path(id);
        let mut builder =
            TableBuilder::create(inner.options.fs.clone(), &path, inner.options.table)?;
        for entry in frozen.snapshot.iter() {
            builder.add(&entry)?;
        }
        let stats = builder.finish()?;
        let table = Table::open(inner.fs(), &path, inner.options.table_read)?;
        (id, Arc::new(TableHandle { table, record: TableRecord::of(id, 0, &stats) }))
    };
    let mut manifest = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = manifest.clone();
    next.tables.push(handle.record.clone());
    next.next_table_id = id + 1;
    next.flushed_seq = frozen.last_seq + 1;
    next.clock_ms = next.clock_ms.max(frozen.store_ts_max);
    next.store(inner.fs(), &inner.manifest_path())?;
    *manifest = next;
    drop(manifest);
    inner.update_version(|current| current.flushed(frozen, handle));
    inner.counters.flushes.fetch_add(1, Ordering::Relaxed);
    inner.wake_writers();
    inner.wal.truncate_before(frozen.last_seq + 1)?;
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
fn maintain(inner: &Inner) -> Result<()> {
    if let Some(options) = inner.options.compaction {
        while let Some(choice) = compaction::choose(&summaries(&inner.current()), &options) {
            merge_tables(inner, &choice)?;
        }
    }
    let retention = inner.options.retention;
    if retention.retention_ms.is_some() || retention.disk_bytes_max.is_some() {
        let now_ms = inner.options.time.now_ms();
        let expired = compaction::expired(&summaries(&inner.current()), now_ms, &retention);
        if !expired.is_empty() {
            replace_tables(inner, &expired, None)?;
            inner.counters.tables_expired.fetch_add(expired.len() as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Merges every table into one.
fn compact_all(inner: &Inner) -> Result<()> {
    let version = inner.current();
    if version.tables.len() < 2 {
        return Ok(());
    }
    let generation = version.tables.iter().map(|t| t.record.generation).max().unwrap_or(0) + 1;
    let inputs = version.tables.iter().map(|t| t.record.id).collect();
    merge_tables(inner, &Compaction { inputs, generation })
}

/// Writes the merge of `choice.inputs` as one new table and swaps it in.
fn merge_tables(inner: &Inner, choice: &Compaction) -> Result<()> {
    let version = inner.current();
    let inputs: Vec<Table> = version
        .tables
        .iter()
        .filter(|t| choice.inputs.contains(&t.record.id))
        .map(|t| t.table.clone())
        .collect();
    let id = inner.manifest.lock().unwrap_or_else(|e| e.into_inner()).next_table_id;
    let path = inner.table_path(id);
    let mut builder = TableBuilder::create(inner.options.fs.clone(), &path, inner.options.table)?;
    let chains = chains(inputs, false);
    let options = &inner.options.table;
    let copy = matches!(chains.as_slice(), [chain] if chain.iter().all(|t| {
        let stats = t.stats();
        stats.codec == options.codec && stats.compression == options.compression
    }));
    if copy {
        // Disjoint key ranges (time-ordered tables): the output is the inputs' blocks one
        // after the other, copied as stored (checksums verified), no entry decoded.
        for table in &chains[0] {
            builder.add_table(table)?;
        }
    } else {
        let everything = Key::MIN..=Key::MAX;
        let cursors = chains
            .into_iter()
            .map(|chain| {
                Ok(Box::new(Chain::new(chain, everything.clone(), Direction::Forward, true)?)
                    as Box<dyn Cursor>)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut merge = Merge::new(cursors, false);
        while let Some(entry) = merge.entry() {
            builder.add(&entry?)?;
            merge.advance()?;
        }
    }
    let stats = builder.finish()?;
    let table = Table::open(inner.fs(), &path, inner.options.table_read)?;
    let handle =
        Arc::new(TableHandle { table, record: TableRecord::of(id, choice.generation, &stats) });
    replace_tables(inner, &choice.inputs, Some(handle))?;
    inner.counters.compactions.fetch_add(1, Ordering::Relaxed);
    if copy {
        inner.counters.compactions_copied.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Takes tables `removed` out of the store and puts `added` in: manifest, then version, then
/// the files.
fn replace_tables(inner: &Inner, removed: &[u64], added: Option<Arc<TableHandle>>) -> Result<()> {
    let mut manifest = inner.manifest.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = manifest.clone();
    next.tables.retain(|t| !removed.contains(&t.id));
    if let Some(added) = &added {
        next.tables.push(added.record.clone());
        next.next_table_id = next.next_table_id.max(added.record.id + 1);
    }
    next.store(inner.fs(), &inner.manifest_path())?;
    *manifest = next;
    drop(manifest);
    inner.update_version(|current| current.with_tables(removed, added));
    // Readers of older versions keep their open files; the names go now.
    let fs = inner.fs();
    for &id in removed {
        let path = inner.table_path(id);
        fs.remove_file(&path).map_err(io_err("remove", &path))?;
    }
    let tables_dir = inner.dir.join(TABLES_DIR);
    fs.sync_dir(&tables_dir).map_err(io_err("fsync directory", &tables_dir))
}
