//! Model check: the store against the [`Oracle`] under random appends (single and batched,
//! with store-assigned and backfilled timestamps, the wall clock stepping both ways), queries
//! (time ranges, both orders, limits, text and metadata filters, paging with cursors through
//! whole results), flushes, compactions, clean reopens, process kills, power cuts, and process
//! deaths right after the Nth next disk call (in an append, or in the flush or merge it set
//! off), on a fault-injecting disk with thresholds so small that flushes, compactions and
//! merges of many tables happen all the time.
//!
//! After every step the store answers exactly as the oracle, and store-assigned timestamps
//! are the wall clock's unless it is behind the newest one held. What a crash may take
//! depends on the durability:
//! - `Sync`: nothing acknowledged, whatever the crash;
//! - `None` and `Batch`: nothing on a process death (the WAL handed every acknowledged record
//!   to the operating system); on a power cut, the acknowledged appends after some point in
//!   write order, never a part of a batch, and nothing a successful `flush`, `compact` or
//!   `close` made durable.
//!
//! An append the process died in was never acknowledged: it is there whole, or not at all.
//!
//! `PROPTEST_CASES` sets the number of cases (default 48 per durability).

mod common;

use common::{World, assert_holds, assert_no_orphans, assert_query, read};
use logstore_engine::testing::{CrashMode, Oracle};
use logstore_engine::{
    Allocation, CompactionOptions, Compression, Durability, Key, LogStore, NewEntry, Order, Query,
    StoreError, StoreOptions, TableOptions, TimeSource,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};
use std::collections::HashSet;

const START_MS: u64 = 1_000_000_000;
const PAST_MS: u64 = 5_000;
const FUTURE_MS: u64 = 1_000;

const WORDS: [&str; 5] = ["disk full", "timeout", "retry later", "ok", "time out"];
const NEEDLES: [&str; 6] = ["time", "disk", "ok", "#1", "later", ""];
/// Metadata texts, with the cases a filter's shortcuts could get wrong: an escaped key, a
/// duplicate key (the last wins), a float one, and the filter's text inside a string value.
const METADATA: [Option<&str>; 11] = [
    None,
    Some(r#"{"host":"a"}"#),
    Some(r#"{"host":"b","n":1}"#),
    Some(r#"{"n":"1"}"#),
    Some(r#"{"n":1,"host":"a"}"#),
    Some("{}"),
    Some(r#"{"x":{"host":"a"}}"#),
    Some(r#"{"ho\u0073t":"a","n":1}"#),
    Some(r#"{"host":"a","host":"b","n":2,"n":1}"#),
    Some(r#"{"n":1.0,"host":"\u0061"}"#),
    Some(r#"{"v":"\"host\":\"a\",\"n\":1"}"#),
];

/// The metadata filters a query may carry (JSON equality: `"1"` is not `1`).
fn fields(choice: usize) -> Vec<(&'static str, Value)> {
    match choice {
        0 => vec![("host", json!("a"))],
        1 => vec![("host", json!("b"))],
        2 => vec![("n", json!(1))],
        3 => vec![("n", json!("1"))],
        _ => vec![("host", json!("a")), ("n", json!(1))],
    }
}

/// One entry to append.
#[derive(Clone, Debug)]
struct Spec {
    word: usize,
    metadata: usize,
    /// A client timestamp this far before the wall clock (negative: after it), within the
    /// backfill window; `None`: the store assigns it.
    back_ms: Option<i64>,
}

#[derive(Clone, Debug)]
struct QuerySpec {
    /// The time range as percentages of the stored span: start, and width.
    range: Option<(u64, u64)>,
    descending: bool,
    limit: Option<usize>,
    needle: Option<usize>,
    fields: Option<usize>,
}

#[derive(Clone, Debug)]
enum Op {
    Append(Vec<Spec>),
    /// A batch whose last entry's timestamp is `by_ms` beyond the backfill window: refused
    /// whole.
    AppendOutOfWindow {
        valid: Vec<Spec>,
        late: bool,
        by_ms: u64,
    },
    /// Moves the wall clock (backwards too).
    Clock(i64),
    Query(QuerySpec),
    /// Reads the query's whole result in pages of this size, each resuming after the last key.
    Page(QuerySpec, usize),
    Flush,
    Compact,
    Reopen,
    /// The process dies; the machine keeps running.
    Kill,
    /// The process dies and the machine loses power.
    Crash(CrashMode),
    /// The process dies right after this many more disk calls (in the appends this step makes
    /// until then, or in the flushes and merges they set off), then the machine loses power
    /// if `power_cut` says how.
    Die {
        after_calls: u64,
        power_cut: Option<CrashMode>,
    },
}

#[derive(Clone, Debug)]
struct Case {
    flush_threshold_entries: usize,
    fan_in: usize,
    frozen_memtables_max: usize,
    wal_segment_bytes_max: u64,
    /// 1: a checkpoint after every flush; `u64::MAX`: only when asked (flush, compact, close).
    checkpoint_interval_bytes: u64,
    block_target_bytes: u32,
    compression: Compression,
    allocation: Allocation,
    use_sparse_index: bool,
    ops: Vec<Op>,
}

fn spec() -> impl Strategy<Value = Spec> {
    let back_ms =
        prop_oneof![3 => Just(None), 1 => (-(FUTURE_MS as i64)..=PAST_MS as i64).prop_map(Some)];
    (0..WORDS.len(), 0..METADATA.len(), back_ms).prop_map(|(word, metadata, back_ms)| Spec {
        word,
        metadata,
        back_ms,
    })
}

fn query_spec() -> impl Strategy<Value = QuerySpec> {
    (
        prop::option::weighted(0.7, (0u64..=100, 0u64..=100)),
        any::<bool>(),
        prop::option::weighted(0.4, 0usize..8),
        prop::option::weighted(0.3, 0..NEEDLES.len()),
        prop::option::weighted(0.3, 0usize..5),
    )
        .prop_map(|(range, descending, limit, needle, fields)| QuerySpec {
            range,
            descending,
            limit,
            needle,
            fields,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let clock = prop_oneof![4 => 0i64..=2, 3 => 0i64..=2_000, 2 => -3_000i64..=0];
    let crash = prop_oneof![
        Just(CrashMode::DropUnsynced),
        any::<u64>().prop_map(|seed| CrashMode::TornPrefix { seed }),
    ];
    prop_oneof![
        30 => prop::collection::vec(spec(), 1..=4).prop_map(Op::Append),
        2 => (prop::collection::vec(spec(), 0..3), any::<bool>(), 0u64..10_000)
            .prop_map(|(valid, late, by_ms)| Op::AppendOutOfWindow { valid, late, by_ms }),
        8 => clock.prop_map(Op::Clock),
        6 => query_spec().prop_map(Op::Query),
        3 => (query_spec(), 1usize..=7).prop_map(|(q, size)| Op::Page(q, size)),
        3 => Just(Op::Flush),
        2 => Just(Op::Compact),
        2 => Just(Op::Reopen),
        2 => Just(Op::Kill),
        3 => crash.clone().prop_map(Op::Crash),
        4 => (0u64..60, prop::option::of(crash))
            .prop_map(|(after_calls, power_cut)| Op::Die { after_calls, power_cut }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let knobs = (
        3usize..20,
        2usize..=4,
        1usize..=3,
        prop::sample::select(vec![256u64, 1 << 10, 64 << 10]),
        prop::sample::select(vec![1u64, 4 << 10, u64::MAX]),
        prop::sample::select(vec![64u32, 512, 16 << 10]),
        prop::sample::select(Compression::ALL.to_vec()),
        prop::sample::select(vec![Allocation::Arena, Allocation::Heap]),
        prop::bool::weighted(0.8),
    );
    (knobs, prop::collection::vec(op(), 1..150)).prop_map(|(knobs, ops)| {
        let (flush, fan_in, frozen, segment, checkpoint, block, compression, allocation, sparse) =
            knobs;
        Case {
            flush_threshold_entries: flush,
            fan_in,
            frozen_memtables_max: frozen,
            wal_segment_bytes_max: segment,
            checkpoint_interval_bytes: checkpoint,
            block_target_bytes: block,
            compression,
            allocation,
            use_sparse_index: sparse,
            ops,
        }
    })
}

/// One acknowledged append, still in the store.
struct Batch {
    keys: Vec<Key>,
    /// The timestamp the store assigned to the entries without one, if any.
    store_ts_ms: Option<u64>,
}

/// What the store must hold and do, beyond the oracle's entries.
struct Model {
    durability: Durability,
    oracle: Oracle,
    /// Every acknowledged append still in the store, in write order.
    batches: Vec<Batch>,
    /// A power cut keeps at least the first this many batches (all of them in `Sync`).
    durable_batches: usize,
    /// The newest store-assigned timestamp held: the store's clock never hands out less.
    clock_floor_ms: u64,
    messages: u64,
}

impl Model {
    fn entries<'a>(&mut self, specs: &[Spec], now_ms: u64) -> Vec<NewEntry<'a>> {
        specs
            .iter()
            .map(|spec| {
                self.messages += 1;
                let mut entry = NewEntry::new(format!("{} #{}", WORDS[spec.word], self.messages));
                if let Some(metadata) = METADATA[spec.metadata] {
                    entry = entry.metadata(metadata);
                }
                if let Some(back_ms) = spec.back_ms {
                    entry = entry.timestamp_ms(now_ms.checked_add_signed(-back_ms).unwrap());
                }
                entry
            })
            .collect()
    }

    /// Checks the keys of an acknowledged append and records it.
    fn appended(&mut self, keys: &[Key], batch: &[NewEntry<'_>], now_ms: u64) {
        assert_eq!(keys.len(), batch.len(), "one key per entry");
        let last_seq = self.batches.last().and_then(|b| b.keys.last()).map_or(0, |k| k.seq);
        let seqs: Vec<u64> = keys.iter().map(|k| k.seq).collect();
        assert!(
            seqs[0] > last_seq && seqs.windows(2).all(|w| w[0] < w[1]),
            "seqs {seqs:?} do not follow write order (last {last_seq})"
        );
        let store_ts_ms = self.clock_floor_ms.max(now_ms);
        let mut assigned = false;
        for (key, new) in keys.iter().zip(batch) {
            match new.timestamp_ms {
                Some(ts) => assert_eq!(key.timestamp_ms, ts, "the client's timestamp is kept"),
                None => {
                    assert_eq!(
                        key.timestamp_ms, store_ts_ms,
                        "store timestamp: the wall clock ({now_ms}) unless it is behind the \
                         newest one handed out ({})",
                        self.clock_floor_ms
                    );
                    assigned = true;
                }
            }
        }
        if assigned {
            self.clock_floor_ms = store_ts_ms;
        }
        self.oracle.appended(keys, batch);
        self.batches
            .push(Batch { keys: keys.to_vec(), store_ts_ms: assigned.then_some(store_ts_ms) });
    }

    /// Everything acknowledged so far is durable (after a successful flush, compact or close).
    fn all_durable(&mut self) {
        self.durable_batches = self.batches.len();
    }

    /// After the process died (and, with `power_cut`, the machine lost power): checks what
    /// the reopened store holds, and brings the model to it. `in_flight` is the append the
    /// process died in, if any: never acknowledged, it may be there, whole, or not at all.
    fn recovered(
        &mut self,
        store: &LogStore,
        in_flight: Option<&[NewEntry<'_>]>,
        now_ms: u64,
        power_cut: bool,
        step: &str,
    ) {
        let entries = read(store, &Query::new());
        let present: HashSet<Key> = entries.iter().map(|e| e.key).collect();
        let whole = |b: &Batch| b.keys.iter().all(|k| present.contains(k));
        let kept = self.batches.iter().take_while(|b| whole(b)).count();
        if let Some(later) =
            self.batches[kept..].iter().find(|b| b.keys.iter().any(|k| present.contains(k)))
        {
            let lost = &self.batches[kept].keys;
            panic!(
                "{step}: {:?} survived, but the earlier batch {lost:?} did not, or not whole",
                later.keys
            );
        }
        if !power_cut || self.durability == Durability::Sync {
            let what = if power_cut { "a power cut in Sync durability" } else { "a process death" };
            assert_eq!(kept, self.batches.len(), "{step}: acknowledged appends lost to {what}");
        }
        assert!(
            kept >= self.durable_batches,
            "{step}: {kept} batches survived, but {} were made durable by a flush, compact or close",
            self.durable_batches
        );
        let acknowledged = self.batches.len();
        for batch in self.batches.drain(kept..) {
            self.oracle.remove(batch.keys);
        }
        let held: HashSet<Key> = self.batches.iter().flat_map(|b| b.keys.iter().copied()).collect();
        let mut extra: Vec<Key> =
            entries.iter().map(|e| e.key).filter(|k| !held.contains(k)).collect();
        if !extra.is_empty() {
            let Some(batch) = in_flight else {
                panic!("{step}: entries nobody appended: {extra:?}")
            };
            assert_eq!(kept, acknowledged, "{step}: the append in flight survived an earlier one");
            assert_eq!(extra.len(), batch.len(), "{step}: part of the append in flight survived");
            extra.sort_by_key(|k| k.seq);
            // Checks its keys like an acknowledged one's; `assert_holds` then checks its text.
            self.appended(&extra, batch, now_ms);
        }
        if power_cut {
            // What survived a power cut is on disk.
            self.durable_batches = self.batches.len();
        }
        self.durable_batches = self.durable_batches.min(self.batches.len());
        self.clock_floor_ms = self.batches.iter().filter_map(|b| b.store_ts_ms).max().unwrap_or(0);
    }

    fn query(&self, spec: &QuerySpec, now_ms: u64) -> Query {
        let mut query = Query::new();
        if let Some((start, width)) = spec.range {
            let lo = self.oracle.entries().next().map_or(now_ms, |e| e.key.timestamp_ms);
            let hi = self.oracle.entries().next_back().map_or(now_ms, |e| e.key.timestamp_ms);
            // One millisecond either side of the stored span, so ranges can miss everything.
            let span = hi - lo + 3;
            let from_ms = lo - 1 + span * start / 100;
            query = query.time_range(from_ms..=from_ms + span * width / 100);
        }
        if spec.descending {
            query = query.order(Order::Descending);
        }
        if let Some(limit) = spec.limit {
            query = query.limit(limit);
        }
        if let Some(needle) = spec.needle {
            query = query.contains(NEEDLES[needle]);
        }
        if let Some(choice) = spec.fields {
            for (key, value) in fields(choice) {
                query = query.metadata_equals(key, value);
            }
        }
        query
    }
}

/// Pages through `query`'s result `size` entries at a time: each page is what the oracle says,
/// and together they are the whole result, each entry once.
fn page_through(store: &LogStore, model: &Model, query: &Query, size: usize, step: &str) {
    let whole = Query { limit: None, ..query.clone() };
    let expected = model.oracle.query(&whole);
    let mut seen = Vec::new();
    let mut page_query = whole.clone().limit(size);
    for _ in 0..=expected.len() / size + 1 {
        let page = read(store, &page_query);
        assert_eq!(
            page,
            model.oracle.query(&page_query),
            "{step}: page after {:?}",
            page_query.after
        );
        let Some(last) = page.last() else { break };
        page_query.after = Some(last.key);
        seen.extend(page);
    }
    assert_eq!(seen, expected, "{step}: the pages together");
}

fn run(case: &Case, durability: Durability) {
    let options = StoreOptions {
        durability,
        flush_threshold_entries: case.flush_threshold_entries,
        frozen_memtables_max: case.frozen_memtables_max,
        checkpoint_interval_bytes: case.checkpoint_interval_bytes,
        backfill_past_ms: PAST_MS,
        backfill_future_ms: FUTURE_MS,
        allocation: case.allocation,
        table: TableOptions {
            block_target_bytes: case.block_target_bytes,
            compression: case.compression,
            ..TableOptions::default()
        },
        use_sparse_index: case.use_sparse_index,
        compaction: Some(CompactionOptions { fan_in: case.fan_in, ..CompactionOptions::default() }),
        wal_segment_bytes_max: case.wal_segment_bytes_max,
        ..StoreOptions::default()
    };
    let mut world = World::new(options, START_MS);
    let mut store = world.open().expect("open a new store");
    let mut model = Model {
        durability,
        oracle: Oracle::new(),
        batches: Vec::new(),
        durable_batches: 0,
        clock_floor_ms: 0,
        messages: 0,
    };
    for (i, op) in case.ops.iter().enumerate() {
        let step = format!("step {i} ({op:?})");
        let now_ms = world.time.now_ms();
        match op {
            Op::Append(specs) => {
                let batch = model.entries(specs, now_ms);
                let keys = match batch.len() {
                    1 => store.append_entry(&batch[0]).map(|key| vec![key]),
                    _ => store.append_batch(&batch),
                };
                let keys = keys.unwrap_or_else(|e| panic!("{step}: {e}"));
                model.appended(&keys, &batch, now_ms);
            }
            Op::AppendOutOfWindow { valid, late, by_ms } => {
                let mut batch = model.entries(valid, now_ms);
                let ts = match late {
                    true => now_ms - PAST_MS - 1 - by_ms,
                    false => now_ms + FUTURE_MS + 1 + by_ms,
                };
                batch.push(NewEntry::new("out of the window").timestamp_ms(ts));
                match store.append_batch(&batch) {
                    Err(StoreError::TimestampOutOfRange { index, timestamp_ms, .. }) => {
                        assert_eq!((index, timestamp_ms), (valid.len(), ts), "{step}");
                    }
                    other => panic!("{step}: {other:?}"),
                }
            }
            Op::Clock(delta_ms) => world.time.set(now_ms.checked_add_signed(*delta_ms).unwrap()),
            Op::Query(spec) => {
                assert_query(&store, &model.oracle, &model.query(spec, now_ms), &step)
            }
            Op::Page(spec, size) => {
                page_through(&store, &model, &model.query(spec, now_ms), *size, &step)
            }
            Op::Flush => {
                store.flush().unwrap_or_else(|e| panic!("{step}: {e}"));
                model.all_durable();
            }
            Op::Compact => {
                store.compact().unwrap_or_else(|e| panic!("{step}: {e}"));
                model.all_durable();
                // The worker is idle now: the folder holds exactly the merged table.
                assert_no_orphans(&store, &world.disk, &step);
                assert!(store.stats().tables <= 1, "{step}: {:#?}", store.stats());
            }
            Op::Reopen => {
                store.close().unwrap_or_else(|e| panic!("{step}: close: {e}"));
                drop(store);
                store = world.open().unwrap_or_else(|e| panic!("{step}: reopen: {e}"));
                model.all_durable();
            }
            Op::Kill => {
                world.kill(store);
                store = world.open().unwrap_or_else(|e| panic!("{step}: reopen: {e}"));
                model.recovered(&store, None, now_ms, false, &step);
            }
            Op::Crash(mode) => {
                world.crash(store, *mode);
                store = world.open().unwrap_or_else(|e| panic!("{step}: reopen: {e}"));
                model.recovered(&store, None, now_ms, true, &step);
            }
            Op::Die { after_calls, power_cut } => {
                // Appends until the process dies at a disk call: in an append, or in the
                // worker's flush or merge they set off.
                world.process().die_after(*after_calls);
                let mut in_flight = None;
                for n in 0..200 {
                    let spec = |i: usize| Spec {
                        word: i % WORDS.len(),
                        metadata: i % METADATA.len(),
                        back_ms: None,
                    };
                    let specs: Vec<Spec> = (n..n + 1 + n % 2).map(spec).collect();
                    let batch = model.entries(&specs, now_ms);
                    match store.append_batch(&batch) {
                        Ok(keys) => model.appended(&keys, &batch, now_ms),
                        Err(e) => {
                            assert!(world.process().is_dead(), "{step}: {e}");
                            in_flight = Some(batch);
                            break;
                        }
                    }
                    if world.process().is_dead() {
                        break;
                    }
                }
                assert!(world.process().is_dead(), "{step}: the process never died");
                match power_cut {
                    Some(mode) => world.crash(store, *mode),
                    None => world.kill(store),
                }
                store = world.open().unwrap_or_else(|e| panic!("{step}: reopen: {e}"));
                model.recovered(&store, in_flight.as_deref(), now_ms, power_cut.is_some(), &step);
            }
        }
        assert_holds(&store, &model.oracle, &step);
    }
    // Whatever happened, a clean close and reopen keeps everything.
    store.close().unwrap_or_else(|e| panic!("final close: {e}"));
    drop(store);
    let store = world.open().unwrap_or_else(|e| panic!("final reopen: {e}"));
    assert_holds(&store, &model.oracle, &"after the final reopen");
    assert_no_orphans(&store, &world.disk, &"after the final reopen");
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48);
    // Failing cases are kept beside this file, for the next run to try first.
    let persistence = FileFailurePersistence::Direct("tests/model.proptest-regressions");
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(persistence)),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sync_store_answers_as_the_oracle_and_loses_nothing(case in case()) {
        run(&case, Durability::Sync);
    }

    #[test]
    fn none_store_answers_as_the_oracle_and_keeps_a_prefix(case in case()) {
        run(&case, Durability::None);
    }

    #[test]
    fn batch_store_answers_as_the_oracle_and_keeps_a_prefix(case in case()) {
        // Syncs in the background every 2 ms, and in the append that passes 2 KiB unsynced.
        let max_delay = std::time::Duration::from_millis(2);
        run(&case, Durability::Batch { max_delay, max_bytes: 2 << 10 });
    }
}
