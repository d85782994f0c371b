//! The engine's own targets (issue 4), measured beside the versions.
//!
//! The store runs with [`StoreOptions::default`] (`Sync` durability, flush every 1,000
//! entries, arena memtables, binary codec, sparse index, compaction on) on the real disk, with
//! messages of 16..=1,024 bytes, metadata on half:
//!
//! 1. **Durable batches**: the input appended with `append_batch` in batches of
//!    [`BATCH_ENTRIES`], each synced before it returns. Target: ≤ 2 µs per entry.
//! 2. **Reads**: the full range and the newest 1,000, verified as in [`crate::run`].
//!    Targets: ≤ 0.2 µs per entry, ≤ 0.2 ms.
//! 3. **Peak memory above the input**: `VmHWM` (reset once the input is generated) minus the
//!    resident memory then, over steps 1 and 2. Target: ≤ 32 MiB (at 100k and 1,000,000).
//! 4. **Reopen** after a clean close: the time of `LogStore::open`, then both reads verified
//!    again. Target: ≤ 5 ms.
//! 5. **Single-writer `Sync` append against the floor**: a fresh store and a plain file
//!    (`write` + `fdatasync` per entry, [`crate::floors::FileFloor`]) take turns in blocks of
//!    [`RATIO_BLOCK_ENTRIES`] appends, [`RATIO_ROUNDS`] rounds, the side going first
//!    alternating, so both meet the same disk conditions (`fdatasync` latency on a shared
//!    machine moves by several times within minutes). Target: ≤ 0.85x the floor.

use crate::floors::FileFloor;
use crate::progress::Progress;
use crate::run::{self, Expected, Measurement, Subject};
use crate::workload::InputEntry;
use anyhow::{Context, Result};
use logstore_engine::{LogStore, NewEntry, StoreOptions};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// Entries per durable batch.
pub const BATCH_ENTRIES: usize = 1_000;
/// Appends per side per round of the single-writer comparison.
pub const RATIO_BLOCK_ENTRIES: usize = 50;
/// Rounds of the single-writer comparison.
pub const RATIO_ROUNDS: usize = 20;

/// The engine targets' own figures (the shared ones are in [`Measurement`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EngineFigures {
    /// Entries per batch.
    pub batch_entries: usize,
    /// Time to close the store after the reads: it flushes the last memtable, finishes the
    /// merges, and checkpoints (syncs every table written since the last checkpoint, which
    /// with the default interval is every table of the run, and stores the manifest).
    pub close_ms: f64,
    /// Time of `LogStore::open` after the clean close.
    pub reopen_ms: f64,
    /// The full-range read again, just after that open, seconds: the tables as the clean close
    /// left them (it finished the merges), where the first read ran while the worker merged
    /// the tables the writes had just flushed. `None` in results written before it was measured.
    #[serde(default)]
    pub reopened_read_s: Option<f64>,
    /// The newest-1,000 read just after that open (median of its repeats), seconds.
    #[serde(default)]
    pub reopened_newest_s: Option<f64>,
    /// Single-writer `Sync` against the floor, when measured.
    pub sync_ratio: Option<SyncRatio>,
}

/// The single-writer comparison.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncRatio {
    /// Appends per side.
    pub appends: usize,
    /// The store's mean time per append, µs.
    pub store_us: f64,
    /// The floor's mean time per append, µs.
    pub floor_us: f64,
    /// `store_us / floor_us`.
    pub ratio_of_means: f64,
    /// The median over rounds of each round's ratio.
    pub ratio_median: f64,
}

/// Runs the engine targets on `input` in `dir` (created fresh), with the single-writer
/// comparison when `sync_ratio`.
pub fn run(
    input: &[InputEntry],
    dir: &Path,
    sync_ratio: bool,
    progress: &Progress,
) -> Result<Measurement> {
    let n = input.len();
    let store_dir = dir.join("store");
    let mut keys = run::key_record(n);
    let (input_rss_bytes, peak_reset) = run::memory_baseline();

    progress.phase("write");
    let store = LogStore::open(&store_dir, StoreOptions::default())?;
    // Timed from the first append, as the versions' writes are (their subjects open untimed).
    let start = Instant::now();
    let mut written = 0;
    let mut batch: Vec<NewEntry<'_>> = Vec::with_capacity(BATCH_ENTRIES);
    for chunk in input.chunks(BATCH_ENTRIES) {
        batch.clear();
        batch.extend(chunk.iter().map(|e| {
            let entry = NewEntry::new(e.message.as_str());
            match &e.metadata {
                Some(m) => entry.metadata(m.as_str()),
                None => entry,
            }
        }));
        let batch_keys = store.append_batch(&batch).context("append_batch")?;
        for (slot, key) in keys[written..].iter_mut().zip(&batch_keys) {
            *slot = (key.timestamp_ms, key.seq);
        }
        written += batch_keys.len();
        progress.tick(written as u64);
    }
    let write_s = start.elapsed().as_secs_f64();
    anyhow::ensure!(written == n, "the batches returned {written} keys for {n} entries");

    let expected = Expected::new(&keys, input, true)?;
    progress.phase("read");
    let (read_s, newest_s) = run::read_and_verify(&store, &expected)?;
    let (_, peak_rss_bytes) = crate::machine::rss_bytes();
    let disk_bytes = crate::machine::disk_bytes(&store_dir);
    let tables = store.stats().tables as u64;

    progress.phase("reopen");
    let t = Instant::now();
    store.close()?;
    let close_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(store);
    let t = Instant::now();
    let store = LogStore::open(&store_dir, StoreOptions::default())?;
    let reopen_ms = t.elapsed().as_secs_f64() * 1e3;
    let (reopened_read_s, reopened_newest_s) =
        run::read_and_verify(&store, &expected).context("after reopening")?;
    store.close()?;
    drop(store);

    let sync_ratio = if sync_ratio {
        progress.phase("sync-ratio");
        Some(single_writer_ratio(input, &dir.join("ratio"))?)
    } else {
        None
    };
    Ok(Measurement {
        scale: n as u64,
        writers: 1,
        write_s,
        read_s,
        newest_s,
        newest_count: expected.newest_count as u64,
        disk_bytes,
        input_bytes: crate::workload::input_bytes(input),
        input_rss_bytes,
        peak_rss_bytes,
        peak_above_input_bytes: peak_rss_bytes.saturating_sub(input_rss_bytes),
        peak_reset,
        tables: Some(tables),
        engine: Some(EngineFigures {
            batch_entries: BATCH_ENTRIES,
            close_ms,
            reopen_ms,
            reopened_read_s: Some(reopened_read_s),
            reopened_newest_s: Some(reopened_newest_s),
            sync_ratio,
        }),
        ..Measurement::default()
    })
}

/// Item 5 of the module docs.
fn single_writer_ratio(input: &[InputEntry], dir: &Path) -> Result<SyncRatio> {
    std::fs::create_dir_all(dir)?;
    let store = LogStore::open(dir.join("store"), StoreOptions::default())?;
    let floor = FileFloor::create(&dir.join("floor.log"))?;
    let mut next = 0;
    let mut block = |subject: &dyn Subject| -> Result<f64> {
        let start = Instant::now();
        for _ in 0..RATIO_BLOCK_ENTRIES {
            subject.append(&input[next % input.len()])?;
            next += 1;
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let (mut store_s, mut floor_s, mut ratios) = (0.0, 0.0, Vec::with_capacity(RATIO_ROUNDS));
    for round in 0..RATIO_ROUNDS {
        let (s, f) = if round % 2 == 0 {
            let s = block(&store)?;
            (s, block(&floor)?)
        } else {
            let f = block(&floor)?;
            (block(&store)?, f)
        };
        store_s += s;
        floor_s += f;
        ratios.push(s / f);
    }
    store.close()?;
    let appends = RATIO_BLOCK_ENTRIES * RATIO_ROUNDS;
    Ok(SyncRatio {
        appends,
        store_us: store_s / appends as f64 * 1e6,
        floor_us: floor_s / appends as f64 * 1e6,
        ratio_of_means: store_s / floor_s,
        ratio_median: run::median(&mut ratios),
    })
}
