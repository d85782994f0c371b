//! Every I/O step of a flush, a compaction, a close and a recovery is a crash point.
//!
//! Each test runs its operation once on a fault-free disk and records every call it makes (the
//! process's trace); the write-ahead order is checked on that trace. Then, for every sync `k`
//! (file or directory) and every write `k` of the operation, it starts over, arms the disk to
//! fail exactly that call, runs the operation, and checks:
//! - the operation reports the failure, and the store refuses writes (`Poisoned`) while it
//!   still answers reads with every acknowledged entry, once;
//! - then, after a power cut (nothing unsynced kept, or a torn prefix of it), or after a
//!   restart followed by a power cut (with or without a clean close of the restarted store
//!   first), the store opens, holds exactly the acknowledged entries, and its tables folder
//!   holds exactly the tables its manifest lists;
//! - the recovered store takes writes, flushes, merges, closes and reopens with nothing lost.
//!
//! `k` = the number of calls is the run where nothing fails: the power cut after the last
//! step. A failed sync followed by a power cut is the power cut just before that sync: between
//! two syncs nothing becomes durable.

mod common;

use common::{
    Io, World, assert_holds, assert_no_orphans, assert_query, assert_refuses_writes, crash_modes,
    wait_for,
};
use logstore_engine::testing::{CrashMode, Oracle};
use logstore_engine::{
    CompactionOptions, Durability, LogStore, NewEntry, Order, Query, StoreError, StoreOptions,
    TableOptions,
};
use logstore_wal::WalError;
use std::fmt;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const START_MS: u64 = 1_700_000_000_000;

/// No flush or merge happens unless the test asks for it; the entries of one memtable span
/// several WAL segments, so a flush's truncation deletes some.
fn options() -> StoreOptions {
    StoreOptions {
        flush_threshold_entries: 10_000,
        compaction: None,
        wal_segment_bytes_max: 512,
        table: TableOptions { block_target_bytes: 256, ..TableOptions::default() },
        ..StoreOptions::default()
    }
}

/// Appends `batches` batches of three entries, with metadata on some.
fn fill(store: &LogStore, oracle: &mut Oracle, batches: usize) {
    for _ in 0..batches {
        let n = oracle.len();
        let batch: Vec<NewEntry> = (n..n + 3)
            .map(|i| {
                let entry = NewEntry::new(format!("entry {i}"));
                match i % 2 {
                    0 => entry.metadata(format!(r#"{{"host":"h{}"}}"#, i % 3)),
                    _ => entry,
                }
            })
            .collect();
        common::append(store, oracle, &batch);
    }
}

/// Which calls the armed fault counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Sync,
    Write,
}

impl Fault {
    fn count(self, world: &World) -> u64 {
        match self {
            Fault::Sync => world.disk.syncs(),
            Fault::Write => world.disk.writes(),
        }
    }

    fn arm(self, world: &World, k: u64) {
        match self {
            Fault::Sync => world.disk.fail_sync_after(k),
            Fault::Write => world.disk.fail_write_after(k),
        }
    }

    fn counts(self, io: &Io) -> bool {
        match self {
            Fault::Sync => io.is_sync(),
            Fault::Write => io.is_write(),
        }
    }
}

/// What follows the failure.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// The machine loses power at once.
    PowerCut(CrashMode),
    /// The process restarts (closing the failed store), the new one opens the store (and
    /// closes it again, if `close`), and then the machine loses power.
    Restart { close: bool },
}

/// An operation whose every step is a crash point.
struct Scenario {
    name: &'static str,
    /// The store's options.
    options: fn() -> StoreOptions,
    /// Brings a new store to where the operation starts; leaves the worker idle.
    setup: fn(&LogStore, &mut Oracle),
    /// The operation; it returns once the worker is idle again (a `compact` reply comes after
    /// the flush before it and its WAL truncation are done).
    op: fn(&LogStore) -> Result<(), StoreError>,
    /// Whether the operation closes the store (then writes fail with `Closed`).
    closes: bool,
    /// Calls the operation must make in this order (each a prefix of a traced call): the
    /// write-ahead protocol.
    protocol: &'static [&'static str],
}

/// The calls the operation makes on a fault-free disk.
fn clean_trace(scenario: &Scenario) -> Vec<Io> {
    let mut world = World::new((scenario.options)(), START_MS);
    let store = world.open().unwrap();
    let mut oracle = Oracle::new();
    (scenario.setup)(&store, &mut oracle);
    let start = world.process().trace().len();
    let (syncs, writes) = (world.disk.syncs(), world.disk.writes());
    (scenario.op)(&store).unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
    let trace = world.process().trace().split_off(start);
    let count = |fault: Fault| trace.iter().filter(|io| fault.counts(io)).count() as u64;
    assert_eq!(count(Fault::Sync), world.disk.syncs() - syncs, "the trace has every sync");
    assert_eq!(count(Fault::Write), world.disk.writes() - writes, "the trace has every write");
    trace
}

/// Checks that the calls of `protocol` happen in its order (each step the first call after
/// the previous one that matches it: the same call, or, for a step ending in `/`, any call
/// under that folder), and that nothing is removed early: the first `remove` step of a kind
/// matches no call before the step ahead of it.
fn assert_protocol(name: &str, trace: &[Io], protocol: &[&str]) {
    let rendered: Vec<String> = trace.iter().map(Io::to_string).collect();
    let whole = rendered.join("\n");
    let matches = |io: &String, step: &str| match step.ends_with('/') {
        true => io.starts_with(step),
        false => io == step,
    };
    let mut at = 0;
    for (i, step) in protocol.iter().enumerate() {
        if step.starts_with("remove") && !protocol[..i].contains(step) {
            if let Some(early) = rendered[..at].iter().find(|io| matches(io, step)) {
                panic!("{name}: {early:?} before the step ahead of {step:?} in\n{whole}");
            }
        }
        match rendered[at..].iter().position(|io| matches(io, step)) {
            Some(found) => at += found + 1,
            None => panic!("{name}: no {step:?} after call {at} in\n{whole}"),
        }
    }
}

struct Point<'a> {
    scenario: &'a str,
    fault: Fault,
    k: u64,
    call: Option<&'a Io>,
    then: Then,
}

impl fmt::Display for Point<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.call {
            Some(call) => {
                write!(
                    f,
                    "{}: {:?} #{} ({call}) fails, then {:?}",
                    self.scenario, self.fault, self.k, self.then
                )
            }
            None => write!(f, "{}: nothing fails, then {:?}", self.scenario, self.then),
        }
    }
}

/// Reads after the failure, before any reopen: every acknowledged entry, once, in both orders,
/// and a filtered query.
fn assert_reads(store: &LogStore, oracle: &Oracle, context: &dyn fmt::Display) {
    assert_holds(store, oracle, context);
    let filtered = Query::new().order(Order::Descending).metadata_equals("host", "h1").limit(4);
    assert_query(store, oracle, &filtered, context);
}

/// The reopened store holds what it must, its folder is clean, and it works.
fn assert_recovered(
    world: &mut World,
    store: LogStore,
    oracle: &mut Oracle,
    context: &dyn fmt::Display,
) {
    assert_holds(&store, oracle, context);
    assert_no_orphans(&store, &world.disk, context);
    fill(&store, oracle, 2);
    store.compact().unwrap_or_else(|e| panic!("{context}: compact after recovery: {e}"));
    assert_holds(&store, oracle, context);
    assert_no_orphans(&store, &world.disk, context);
    store.close().unwrap_or_else(|e| panic!("{context}: close after recovery: {e}"));
    drop(store);
    let store = world.open().unwrap_or_else(|e| panic!("{context}: reopen after recovery: {e}"));
    assert_holds(&store, oracle, context);
    assert_no_orphans(&store, &world.disk, context);
}

fn run_point(scenario: &Scenario, point: &Point<'_>) {
    let mut world = World::new((scenario.options)(), START_MS);
    let store = world.open().unwrap();
    let mut oracle = Oracle::new();
    (scenario.setup)(&store, &mut oracle);
    let start = world.process().trace().len();
    let before = point.fault.count(&world);
    point.fault.arm(&world, point.k);
    let result = (scenario.op)(&store);
    world.disk.heal();
    let fired = point.fault.count(&world) - before > point.k;
    assert_eq!(fired, point.call.is_some(), "{point}: the fault fired at a different step");
    if let Some(call) = point.call {
        let failed = world.process().trace()[start..]
            .iter()
            .filter(|io| point.fault.counts(io))
            .nth(point.k as usize)
            .cloned();
        assert_eq!(failed.as_ref(), Some(call), "{point}: the operation ran differently");
        assert!(result.is_err(), "{point}: the operation reported success");
        if !scenario.closes {
            assert_refuses_writes(&store, point);
        }
    } else {
        result.unwrap_or_else(|e| panic!("{point}: {e}"));
        assert!(store.poisoned().is_none(), "{point}");
    }
    assert_reads(&store, &oracle, point);
    // Every reopen replays into the active memtable and starts no background flush, so its
    // tables folder can be compared with its manifest at any moment.
    world.options = options();

    match point.then {
        Then::PowerCut(mode) => {
            world.crash(store, mode);
            let store = world.open().unwrap_or_else(|e| panic!("{point}: reopen: {e}"));
            assert_recovered(&mut world, store, &mut oracle, point);
        }
        Then::Restart { close } => {
            let closed = store.close();
            match (point.call, scenario.closes) {
                (Some(_), false) => assert!(
                    matches!(closed, Err(StoreError::Poisoned { .. })),
                    "{point}: close gave {closed:?}"
                ),
                _ => closed.unwrap_or_else(|e| panic!("{point}: close: {e}")),
            }
            drop(store);
            let store = world.open().unwrap_or_else(|e| panic!("{point}: restart: {e}"));
            assert_holds(&store, &oracle, point);
            assert_no_orphans(&store, &world.disk, point);
            match close {
                true => {
                    store.close().unwrap_or_else(|e| panic!("{point}: close after restart: {e}"));
                    drop(store);
                    world.disk.crash(CrashMode::DropUnsynced);
                }
                false => world.crash(store, CrashMode::DropUnsynced),
            }
            let store =
                world.open().unwrap_or_else(|e| panic!("{point}: reopen after the power cut: {e}"));
            assert_recovered(&mut world, store, &mut oracle, point);
        }
    }
}

/// Runs `scenario` failing each of its syncs and writes in turn, then nothing.
fn sweep(scenario: &Scenario) {
    let trace = clean_trace(scenario);
    assert_protocol(scenario.name, &trace, scenario.protocol);
    let mut points = 0;
    for fault in [Fault::Sync, Fault::Write] {
        let calls: Vec<&Io> = trace.iter().filter(|io| fault.counts(io)).collect();
        for k in 0..=calls.len() {
            let seed = k as u64;
            let thens = crash_modes(seed)
                .map(Then::PowerCut)
                .into_iter()
                .chain([Then::Restart { close: false }, Then::Restart { close: true }]);
            for then in thens {
                let point = Point {
                    scenario: scenario.name,
                    fault,
                    k: k as u64,
                    call: calls.get(k).copied(),
                    then,
                };
                run_point(scenario, &point);
                points += 1;
            }
        }
    }
    eprintln!("{}: {points} crash points over {} traced calls", scenario.name, trace.len());
}

/// The calls that write table `id` (no sync: a flush or a merge), then make it durable under
/// its name (a checkpoint; with more tables, each is synced before the one `sync-dir`).
macro_rules! table_written {
    ($id:literal) => {
        [
            concat!("rename /data/tables/", $id, ".sst.tmp -> /data/tables/", $id, ".sst"),
            concat!("sync /data/tables/", $id, ".sst"),
            "sync-dir /data/tables",
        ]
    };
}

/// The calls that replace the manifest durably.
const MANIFEST_STORED: [&str; 3] =
    ["sync /data/MANIFEST.tmp", "rename /data/MANIFEST.tmp -> /data/MANIFEST", "sync-dir /data"];

/// The calls that delete a WAL segment the tables now hold.
const WAL_TRUNCATED: [&str; 2] = ["remove /data/wal/", "sync-dir /data/wal"];

fn first_flush() -> Scenario {
    const T1: [&str; 3] = table_written!("00000000000000000001");
    Scenario {
        name: "first flush",
        options,
        setup: |store, oracle| fill(store, oracle, 10),
        op: LogStore::compact,
        closes: false,
        protocol: &[
            T1[0],
            T1[1],
            T1[2],
            MANIFEST_STORED[0],
            MANIFEST_STORED[1],
            MANIFEST_STORED[2],
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
        ],
    }
}

/// A store with table 1 and entries in the memtable; `flush` writes them as table 2 and
/// stores a manifest listing both.
fn second_flush() -> Scenario {
    const T2: [&str; 3] = table_written!("00000000000000000002");
    Scenario {
        name: "second flush",
        options,
        setup: |store, oracle| {
            fill(store, oracle, 5);
            store.compact().unwrap();
            fill(store, oracle, 5);
        },
        op: LogStore::flush,
        closes: false,
        protocol: &[
            T2[0],
            T2[1],
            T2[2],
            MANIFEST_STORED[0],
            MANIFEST_STORED[1],
            MANIFEST_STORED[2],
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
        ],
    }
}

/// A store with table 1 and entries in the memtable; `compact` flushes them as table 2,
/// merges 1 and 2 into 3, and makes that durable with one checkpoint: table 2, never listed
/// by a stored manifest, goes at once; table 1 once the manifest listing 3 instead is stored.
fn flush_then_merge() -> Scenario {
    Scenario {
        name: "flush then merge",
        op: LogStore::compact,
        protocol: &[
            "rename /data/tables/00000000000000000002.sst.tmp -> /data/tables/00000000000000000002.sst",
            "rename /data/tables/00000000000000000003.sst.tmp -> /data/tables/00000000000000000003.sst",
            "remove /data/tables/00000000000000000002.sst",
            "sync /data/tables/00000000000000000003.sst",
            "sync-dir /data/tables",
            MANIFEST_STORED[0],
            MANIFEST_STORED[1],
            MANIFEST_STORED[2],
            "remove /data/tables/00000000000000000001.sst",
            "sync-dir /data/tables",
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
        ],
        ..second_flush()
    }
}

/// A store with table 1 and entries in the memtable; `close` flushes them, starts an empty
/// WAL segment, deletes the others and marks the log cleanly closed.
fn close() -> Scenario {
    const T2: [&str; 3] = table_written!("00000000000000000002");
    Scenario {
        name: "close",
        options,
        setup: |store, oracle| {
            fill(store, oracle, 5);
            store.compact().unwrap();
            fill(store, oracle, 5);
        },
        op: LogStore::close,
        closes: true,
        protocol: &[
            T2[0],
            T2[1],
            T2[2],
            MANIFEST_STORED[0],
            MANIFEST_STORED[1],
            MANIFEST_STORED[2],
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
            // The new segment is durable before the last old one goes.
            "rename /data/wal/",
            "sync-dir /data/wal",
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
            "rename /data/wal/CLEAN.wal.tmp -> /data/wal/CLEAN",
            "sync-dir /data/wal",
        ],
    }
}

/// Background flushes every two batches, merges of four tables, and a checkpoint only when
/// asked; writers wait for each flush, so the worker's work is the same in every run.
fn background_options() -> StoreOptions {
    StoreOptions {
        flush_threshold_entries: 6,
        frozen_memtables_max: 1,
        compaction: Some(CompactionOptions { fan_in: 4, ..CompactionOptions::default() }),
        checkpoint_interval_bytes: u64::MAX,
        ..options()
    }
}

/// A store with table 1 durable, tables 2 and 3 flushed in the background (not durable, not in
/// the stored manifest), and entries in the memtable; `close` flushes them as table 4, merges
/// 1..=4 into 5, deletes 2, 3 and 4 at once (no manifest ever listed them), then checkpoints:
/// 5 durable, the manifest naming it alone, then 1 goes, then the WAL.
fn background_flushes_then_close() -> Scenario {
    const T4: [&str; 3] = table_written!("00000000000000000004");
    const T5: [&str; 3] = table_written!("00000000000000000005");
    Scenario {
        name: "background flushes then close",
        options: background_options,
        setup: |store, oracle| {
            fill(store, oracle, 2);
            store.flush().unwrap();
            fill(store, oracle, 5);
            wait_for(store, "the background flush", |s| s.frozen_memtables == 0);
            let stats = store.stats();
            assert_eq!((stats.tables, stats.flushes, stats.compactions), (3, 3, 0), "{stats:#?}");
        },
        op: LogStore::close,
        closes: true,
        protocol: &[
            T4[0],
            T5[0],
            "remove /data/tables/00000000000000000002.sst",
            "remove /data/tables/00000000000000000003.sst",
            "remove /data/tables/00000000000000000004.sst",
            T5[1],
            T5[2],
            MANIFEST_STORED[0],
            MANIFEST_STORED[1],
            MANIFEST_STORED[2],
            "remove /data/tables/00000000000000000001.sst",
            "sync-dir /data/tables",
            WAL_TRUNCATED[0],
            WAL_TRUNCATED[1],
        ],
    }
}

#[test]
fn every_step_of_a_first_flush_is_a_crash_point() {
    sweep(&first_flush());
}

#[test]
fn every_step_of_a_second_flush_is_a_crash_point() {
    sweep(&second_flush());
}

#[test]
fn every_step_of_a_flush_and_a_merge_is_a_crash_point() {
    sweep(&flush_then_merge());
}

#[test]
fn every_step_of_a_close_is_a_crash_point() {
    sweep(&close());
}

#[test]
fn every_step_of_a_checkpoint_after_background_flushes_is_a_crash_point() {
    sweep(&background_flushes_then_close());
}

/// Tables flushed or merged in the background are never synced: the WAL holds their entries
/// until a checkpoint makes the live ones durable. Before it, a power cut loses no entry and
/// leaves no table the manifest does not list.
#[test]
fn background_flushes_make_no_sync_and_a_power_cut_before_the_checkpoint_loses_nothing() {
    let scenario = background_flushes_then_close();
    let mut world = World::new(background_options(), START_MS);
    let store = world.open().unwrap();
    let mut oracle = Oracle::new();
    let start = world.process().trace().len();
    (scenario.setup)(&store, &mut oracle);
    let trace = world.process().trace().split_off(start);
    let table_syncs: Vec<String> = trace
        .iter()
        .filter(|io| io.is_sync() && !io.path.starts_with("/data/wal"))
        .map(Io::to_string)
        .collect();
    // The one checkpoint of the setup (its `flush`): table 1, its name, the manifest.
    let checkpoint = [
        "sync /data/tables/00000000000000000001.sst",
        "sync-dir /data/tables",
        "sync /data/MANIFEST.tmp",
        "sync-dir /data",
    ];
    assert_eq!(table_syncs, checkpoint, "syncs of the setup besides the WAL's");
    assert_eq!(common::table_files(&world.disk).len(), 3);
    world.crash(store, CrashMode::DropUnsynced);
    world.options = options();
    let store = world.open().unwrap();
    assert_recovered(&mut world, store, &mut oracle, &"power cut before the checkpoint");
}

/// The index among the scenario's syncs of its `nth` call `call`, and that call.
fn sync_index(scenario: &Scenario, call: &str, nth: usize) -> (u64, Io) {
    let trace = clean_trace(scenario);
    let syncs: Vec<&Io> = trace.iter().filter(|io| io.is_sync()).collect();
    let k = syncs
        .iter()
        .enumerate()
        .filter(|(_, io)| io.to_string() == call)
        .nth(nth)
        .unwrap_or_else(|| panic!("no sync {nth} {call}"))
        .0;
    (k as u64, syncs[k].clone())
}

/// Regression: a merge's manifest was renamed into place but the directory fsync after it
/// failed. The restarted store read that manifest (visible, not durable), deleted the merge's
/// inputs as unlisted, and a power cut then brought back the old manifest naming them: the
/// store no longer opened ("open /data/tables/00000000000000000001.sst: no such file").
/// Open now makes the manifest it reads durable before acting on it.
#[test]
fn restart_after_a_failed_merge_manifest_sync_then_power_cut() {
    let scenario = flush_then_merge();
    // The manifest store (the merge's, listing 3 instead of 1) fails at its directory sync.
    let (k, call) = sync_index(&scenario, "sync-dir /data", 0);
    let then = Then::Restart { close: false };
    let point = Point { scenario: scenario.name, fault: Fault::Sync, k, call: Some(&call), then };
    run_point(&scenario, &point);
}

/// Regression: a flush's manifest was renamed into place but the directory fsync after it
/// failed. The restarted store read that manifest, found nothing to replay, and its clean
/// close deleted the WAL the manifest said the tables held; a power cut then brought back the
/// old manifest (none, here): every entry was gone ("the WAL starts at sequence 31, but
/// entries from 1 on are in no table").
#[test]
fn restart_after_a_failed_flush_manifest_sync_then_close_then_power_cut() {
    let scenario = first_flush();
    let (k, call) = sync_index(&scenario, "sync-dir /data", 0);
    let then = Then::Restart { close: true };
    let point = Point { scenario: scenario.name, fault: Fault::Sync, k, call: Some(&call), then };
    run_point(&scenario, &point);
}

/// Leaves the directory as a power cut in the middle of a flush does: table 1 listed by the
/// manifest, table 2 written and durable but listed by none (the manifest's sync failed), the
/// entries of table 2 in the WAL after the manifest's flushed point. Returns the oracle.
fn interrupted_flush(world: &mut World) -> Oracle {
    let scenario = second_flush();
    let (k, _) = sync_index(&scenario, "sync /data/MANIFEST.tmp", 0);
    let store = world.open().unwrap();
    let mut oracle = Oracle::new();
    (scenario.setup)(&store, &mut oracle);
    world.disk.fail_sync_after(k);
    assert!((scenario.op)(&store).is_err());
    world.disk.heal();
    world.crash(store, CrashMode::DropUnsynced);
    assert_eq!(
        common::table_files(&world.disk),
        ["00000000000000000001.sst", "00000000000000000002.sst"]
    );
    assert_eq!(common::manifest_tables(&world.disk), [1]);
    oracle
}

/// Recovery is itself crash-safe: open a directory an interrupted flush left (an orphan table
/// to delete, WAL records to replay), failing each sync and write of the open in turn; then
/// lose power, or retry the open and close cleanly, then lose power.
#[test]
fn every_step_of_a_recovery_is_a_crash_point() {
    let mut world = World::new(options(), START_MS);
    let oracle = interrupted_flush(&mut world);
    let store = world.open().unwrap();
    let trace = world.process().trace();
    assert_holds(&store, &oracle, &"recovery");
    assert_no_orphans(&store, &world.disk, &"recovery");
    // The manifest is made durable before anything it does not list is deleted.
    let protocol =
        ["sync-dir /data", "remove /data/tables/00000000000000000002.sst", "sync-dir /data/tables"];
    assert_protocol("recovery", &trace, &protocol);
    drop(store);

    let mut points = 0;
    for fault in [Fault::Sync, Fault::Write] {
        let calls: Vec<&Io> = trace.iter().filter(|io| fault.counts(io)).collect();
        for k in 0..=calls.len() {
            let thens = crash_modes(k as u64)
                .map(Then::PowerCut)
                .into_iter()
                .chain([Then::Restart { close: true }]);
            for then in thens {
                let point = Point {
                    scenario: "recovery",
                    fault,
                    k: k as u64,
                    call: calls.get(k).copied(),
                    then,
                };
                let mut world = World::new(options(), START_MS);
                let mut oracle = interrupted_flush(&mut world);
                let before = fault.count(&world);
                fault.arm(&world, k as u64);
                let opened = world.open();
                world.disk.heal();
                let fired = fault.count(&world) - before > k as u64;
                assert_eq!(
                    fired,
                    point.call.is_some(),
                    "{point}: the fault fired at a different step"
                );
                match opened {
                    Ok(store) => {
                        assert!(!fired, "{point}: open succeeded");
                        assert_holds(&store, &oracle, &point);
                        world.kill(store);
                    }
                    Err(e) => {
                        assert!(fired, "{point}: open failed: {e}");
                        world.process().kill();
                    }
                }
                match then {
                    Then::PowerCut(mode) => world.disk.crash(mode),
                    Then::Restart { .. } => {
                        let store = world.open().unwrap_or_else(|e| panic!("{point}: retry: {e}"));
                        assert_holds(&store, &oracle, &point);
                        store.close().unwrap_or_else(|e| panic!("{point}: close: {e}"));
                        drop(store);
                        world.disk.crash(CrashMode::DropUnsynced);
                    }
                }
                let store = world.open().unwrap_or_else(|e| panic!("{point}: reopen: {e}"));
                assert_recovered(&mut world, store, &mut oracle, &point);
                points += 1;
            }
        }
    }
    eprintln!("recovery: {points} crash points over {} traced calls", trace.len());
}

/// Regression: in `Batch` durability the WAL's background sync failed, which poisons the WAL
/// but not the store. The next append passed the store's check, took the writer lock, was
/// refused by the WAL, and poisoned the store, which takes the writer lock again to wake
/// waiting writers: the append hung for good, and so did the worker and `close` behind it.
/// (Any durability could get there when the worker's WAL sync failed while an append was
/// between its check and the WAL: the model check hung that way in `None`.)
#[test]
fn append_after_a_failed_background_wal_sync_is_refused_not_hung() {
    let durability = Durability::Batch { max_delay: Duration::from_millis(1), max_bytes: u64::MAX };
    let mut world = World::new(StoreOptions { durability, ..options() }, START_MS);
    let store = Arc::new(world.open().unwrap());
    let mut oracle = Oracle::new();
    let syncs = world.disk.syncs();
    world.disk.fail_sync_after(0);
    fill(&store, &mut oracle, 1); // acknowledged once written; the syncer's sync of it fails
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.disk.syncs() == syncs {
        assert!(Instant::now() < deadline, "the WAL never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (done, finished) = mpsc::channel();
    let appender = store.clone();
    let thread = std::thread::spawn(move || {
        let _ = done.send(appender.append("after the failed sync", None).map(drop));
    });
    let appended = finished.recv_timeout(Duration::from_secs(10)).expect("the append hung");
    thread.join().unwrap();
    // Refused: by the WAL's poisoning (this append is where the store learns of it) ...
    let refused = matches!(
        appended,
        Err(StoreError::Poisoned { .. } | StoreError::Wal(WalError::Poisoned { .. }))
    );
    assert!(refused, "{appended:?}");
    // ... and from then on by the store's.
    assert_refuses_writes(&store, &"after the failed WAL sync");
    assert_reads(&store, &oracle, &"after the failed WAL sync");
    // The process dies; the page cache still has what the failed sync did not persist.
    world.kill(Arc::into_inner(store).expect("the only handle"));
    let store = world.open().unwrap();
    assert_recovered(&mut world, store, &mut oracle, &"after the failed WAL sync");
}

/// A checkpoint flushes what writers froze while it syncs its tables, so they never wait for
/// it; the tables of those flushes wait for the next checkpoint (the manifest it stores is the
/// one it started with), and a power cut after it loses none of their entries.
#[test]
fn a_checkpoint_flushes_between_its_syncs_and_leaves_those_tables_for_the_next() {
    let concurrent =
        StoreOptions { compaction: None, frozen_memtables_max: 4, ..background_options() };
    let mut world = World::new(concurrent, START_MS);
    let store = Arc::new(world.open().unwrap());
    let mut oracle = Oracle::new();
    fill(&store, &mut oracle, 6); // three tables flushed in the background, none synced
    wait_for(&store, "the background flushes", |s| s.frozen_memtables == 0);
    assert_eq!(store.stats().tables, 3);
    let start = world.process().trace().len();
    let paused = world.process().pause_before("sync /data/tables/00000000000000000001.sst");
    let flusher = store.clone();
    let checkpoint = std::thread::spawn(move || flusher.flush());
    paused.wait();
    fill(&store, &mut oracle, 2); // freezes a memtable while the checkpoint syncs
    paused.resume();
    checkpoint.join().unwrap().unwrap();

    let trace: Vec<String> = world.process().trace()[start..].iter().map(Io::to_string).collect();
    let at = |call: &str| trace.iter().position(|io| io == call).unwrap_or(usize::MAX);
    let flushed = at("rename /data/tables/00000000000000000004.sst.tmp -> \
                      /data/tables/00000000000000000004.sst");
    assert!(
        at("sync /data/tables/00000000000000000001.sst") < flushed
            && flushed < at("sync /data/tables/00000000000000000002.sst"),
        "the flush did not run between the syncs:\n{}",
        trace.join("\n")
    );
    assert!(!trace.iter().any(|io| io == "sync /data/tables/00000000000000000004.sst"));
    assert_eq!(common::manifest_tables(&world.disk), [1, 2, 3]);
    assert_eq!(store.stats().tables, 4);

    world.crash(Arc::into_inner(store).expect("the only handle"), CrashMode::DropUnsynced);
    world.options = options();
    let store = world.open().unwrap();
    assert_recovered(&mut world, store, &mut oracle, &"power cut after the checkpoint");
}

/// A merge flushes what writers froze while it runs, so they never wait behind it.
#[test]
fn a_merge_flushes_what_is_frozen_meanwhile() {
    let concurrent = StoreOptions { frozen_memtables_max: 4, ..background_options() };
    let mut world = World::new(concurrent, START_MS);
    let store = world.open().unwrap();
    let mut oracle = Oracle::new();
    let wait_idle = |store: &LogStore, flushes: u64| {
        wait_for(store, "the background flushes", |s| {
            s.frozen_memtables == 0 && s.flushes >= flushes
        });
    };
    fill(&store, &mut oracle, 6); // tables 1, 2 and 3: one short of a merge
    wait_idle(&store, 3);
    let start = world.process().trace().len();
    // Table 4's flush sets off the merge of 1..=4 into 5.
    let paused = world.process().pause_before("create /data/tables/00000000000000000005.sst.tmp");
    fill(&store, &mut oracle, 2);
    paused.wait();
    fill(&store, &mut oracle, 2); // freezes a memtable while the merge runs
    paused.resume();
    wait_idle(&store, 5);
    store.flush().unwrap();

    let trace: Vec<String> = world.process().trace()[start..].iter().map(Io::to_string).collect();
    let at = |call: &str| trace.iter().position(|io| io == call).unwrap_or(usize::MAX);
    let renamed =
        |id: &str| at(&format!("rename /data/tables/{id}.sst.tmp -> /data/tables/{id}.sst"));
    let flushed = renamed("00000000000000000006");
    assert!(
        at("create /data/tables/00000000000000000005.sst.tmp") < flushed
            && flushed < renamed("00000000000000000005"),
        "the flush did not run during the merge:\n{}",
        trace.join("\n")
    );
    assert_eq!(common::manifest_tables(&world.disk), [5, 6]);
    assert_holds(&store, &oracle, &"after the merge");
    store.close().unwrap();
}
