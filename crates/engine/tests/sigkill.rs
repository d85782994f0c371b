//! The crash test: a writer process is killed with SIGKILL at random moments, again and again,
//! on one data directory; after every kill the store must hold every acknowledged entry exactly
//! once, whole, under the key it was acknowledged with, and in write order.
//!
//! # How
//! The test binary runs itself again as the writer ([`child_writer`], ignored in a normal run,
//! and returning at once unless [`CHILD_DIR_ENV`] is set). The writer opens the store on the real disk (`StdFs`,
//! `Durability::Sync`) with thresholds so small that flushes, tiered compactions and WAL segment
//! rotations happen every few dozen appends, and runs [`WRITER_THREADS`] threads of single
//! appends and atomic batches (group commit under the kill), one thread asking for flushes and
//! full compactions (or, in one writer in four, closing the store under the writers' feet and
//! opening it again: a writer refused with `Closed` retries on the new store, so a refused
//! append must have written nothing), and one printing the store's flush and compaction
//! counters. After each
//! acknowledged append a thread prints one line per entry, `ack <id> <key>`, in one write: these
//! lines are the test's record of what was acknowledged. A line the kill cut short is not
//! counted (its entry may be present, as an unacknowledged one).
//!
//! The test loops over rounds: start the writer, let it run 5–80 ms after its first
//! acknowledgement (one round in eight: 0–40 ms after it starts, so the kill lands in open and
//! recovery), SIGKILL it, collect its lines, and check the store. Who checks is chosen at random
//! each round: the test itself (it opens the directory right after the kill, which also shows the
//! lock died with the writer, checks, and closes cleanly), or the next writer, which opens the
//! directory exactly as its killed predecessor left it, checks before it writes anything, and may
//! itself be killed in the middle of recovery. The check, [`check_store`], demands that
//! - every entry of the ledger (acknowledged, or seen by an earlier check) is present with its
//!   key, and no entry is present twice;
//! - every entry present is whole: its id names the exact message and metadata it must have
//!   ([`payload`]; every line of the message starts with the id), so a torn, mixed or stale
//!   entry is caught, acknowledged or not;
//! - keys increase strictly in query order, and query order is write order: rounds in order, each
//!   writer thread's operations in order without a gap, each batch contiguous and complete;
//! - beyond what it had acknowledged, each writer thread has at most its one operation in flight.
//!
//! SIGKILL keeps the page cache, so this is a process crash, not a power cut (the `FaultFs`
//! tests drop unsynced data for that): it catches what a killed process can break, the order of
//! the flush, manifest and WAL-truncation steps, recovery of torn WAL tails and of files left
//! half-made, the directory lock, and acknowledgements given before the WAL has the entry.
//!
//! `LOGSTORE_SIGKILL_SEED` repeats a run's choices (the kill moments still depend on timing);
//! `LOGSTORE_SIGKILL_ROUNDS` changes the number of rounds (default [`ROUNDS_DEFAULT`]).
#![cfg(unix)]

use logstore_engine::{
    CompactionOptions, Durability, Key, LogStore, NewEntry, Query, StoreError, StoreOptions,
    TABLES_DIR,
};
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, RwLock, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Set (to the data directory) only in the writer process.
const CHILD_DIR_ENV: &str = "LOGSTORE_SIGKILL_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "LOGSTORE_SIGKILL_CHILD_ROUND";
const CHILD_SEED_ENV: &str = "LOGSTORE_SIGKILL_CHILD_SEED";
/// Set when the writer must check the store before it writes: the ledger file to check against.
const CHILD_LEDGER_ENV: &str = "LOGSTORE_SIGKILL_CHILD_LEDGER";
const SEED_ENV: &str = "LOGSTORE_SIGKILL_SEED";
const ROUNDS_ENV: &str = "LOGSTORE_SIGKILL_ROUNDS";
const ROUNDS_DEFAULT: u32 = 60;
const WRITER_THREADS: u32 = 3;
const BATCH_ENTRIES_MAX: u64 = 12;
const SIGKILL: i32 = 9;
/// How long the test waits for a writer's first acknowledgement (a loaded machine is slow).
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// A writer nobody killed stops by itself after this long.
const CHILD_LIFETIME_MAX: Duration = Duration::from_secs(120);

/// The store's options in `round`: thresholds so small that flushes, compactions and WAL segment
/// rotations happen every few dozen appends, varied between rounds.
fn store_options(round: u32) -> StoreOptions {
    let r = round as usize;
    StoreOptions {
        durability: Durability::Sync,
        flush_threshold_entries: [50, 100, 200][r % 3],
        frozen_memtables_max: [1, 2, 4][r / 9 % 3],
        checkpoint_interval_bytes: [1, 64 << 10, u64::MAX][r / 27 % 3],
        compaction: Some(CompactionOptions {
            fan_in: [2, 3, 4][r / 3 % 3],
            ..CompactionOptions::default()
        }),
        wal_segment_bytes_max: 128 << 10,
        ..StoreOptions::default()
    }
}

// ---------------------------------------------------------------------------------------------
// What is written: entries that name themselves.

/// An entry's identity: the round (one writer process), the writer thread, the thread's
/// operation number, and the entry's place in the operation (`index` of `count`; `count` 1 is a
/// single `append`, more an `append_batch`). Written `round.thread.op.index.count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Id {
    round: u32,
    thread: u32,
    op: u32,
    index: u32,
    count: u32,
}

impl Id {
    fn writer(self) -> (u32, u32) {
        (self.round, self.thread)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Id { round, thread, op, index, count } = self;
        write!(f, "{round}.{thread}.{op}.{index}.{count}")
    }
}

impl FromStr for Id {
    type Err = String;

    fn from_str(text: &str) -> Result<Id, String> {
        let fields: Vec<u32> = text
            .split('.')
            .map(|field| field.parse().map_err(|_| format!("bad id {text:?}")))
            .collect::<Result<_, _>>()?;
        let [round, thread, op, index, count] = fields[..] else {
            return Err(format!("bad id {text:?}"));
        };
        if index >= count {
            return Err(format!("bad id {text:?}: index beyond count"));
        }
        Ok(Id { round, thread, op, index, count })
    }
}

/// The message and metadata of entry `id`, a pure function of it: the first line is the id, and
/// every further line starts with it; sizes from a few bytes to 4 KiB; a third carry metadata.
fn payload(id: Id) -> (String, Option<String>) {
    let mut rng = Rng::new(
        (u64::from(id.round) << 48)
            ^ (u64::from(id.thread) << 40)
            ^ (u64::from(id.op) << 8)
            ^ u64::from(id.index),
    );
    let message_bytes = match rng.below(20) {
        0 => 2048 + rng.below(2048),
        1..=6 => 100 + rng.below(900),
        _ => rng.below(100),
    } as usize;
    let mut message = id.to_string();
    let mut line = 0;
    while message.len() < message_bytes {
        line += 1;
        let fill = 10 + rng.below(90);
        write!(message, "\n{id} line {line} {}", filler(&mut rng, fill)).unwrap();
    }
    let metadata = (rng.below(3) == 0).then(|| {
        let fill = rng.below(200);
        format!(r#"{{"id":"{id}","thread":{},"pad":"{}"}}"#, id.thread, filler(&mut rng, fill))
    });
    (message, metadata)
}

fn filler(rng: &mut Rng, len: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789";
    (0..len).map(|_| char::from(ALPHABET[rng.below(ALPHABET.len() as u64) as usize])).collect()
}

/// SplitMix64: a seeded generator, enough for choosing sizes and moments.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---------------------------------------------------------------------------------------------
// What the writer prints, and what the test keeps.

/// A complete line of the writer's output.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// `ack <id> <key>`: the store acknowledged this entry with this key.
    Ack(Id, Key),
    /// `seen <id> <key>`: the writer's check at open found this entry, which was never
    /// acknowledged (its writer was killed before it could say so).
    Seen(Id, Key),
    /// `checked <entries>`: the writer checked the store at open.
    Checked(u64),
    /// `stats <flushes> <compactions>`: the store's counters in the writer.
    Stats(u64, u64),
    /// `closing`: the writer starts to close the store, to open it again.
    Closing,
    /// `reopened`: the writer closed the store and opened it again.
    Reopened,
}

impl Line {
    /// `None` for lines that are not the writer's (the test harness prints some).
    fn parse(text: &str) -> Option<Result<Line, String>> {
        let fields: Vec<&str> = text.split(' ').collect();
        let bad = || format!("malformed line {text:?}");
        let number = |field: &str| field.parse::<u64>().map_err(|_| bad());
        let id_key = |id: &str, key: &str| -> Result<(Id, Key), String> {
            Ok((id.parse()?, key.parse().map_err(|_| bad())?))
        };
        Some(match fields[..] {
            ["ack", id, key] => id_key(id, key).map(|(id, key)| Line::Ack(id, key)),
            ["seen", id, key] => id_key(id, key).map(|(id, key)| Line::Seen(id, key)),
            ["checked", entries] => number(entries).map(Line::Checked),
            ["closing"] => Ok(Line::Closing),
            ["reopened"] => Ok(Line::Reopened),
            ["stats", flushes, compactions] => {
                number(flushes).and_then(|f| Ok(Line::Stats(f, number(compactions)?)))
            }
            _ => return None,
        })
    }
}

/// What must be in the store: every entry acknowledged to a writer or seen by a check, with its
/// key. Saved for a writer that checks at open as `ack <id> <key>` lines.
#[derive(Debug, Default)]
struct Ledger {
    keys: BTreeMap<Id, Key>,
}

impl Ledger {
    fn save(&self, path: &Path) {
        let mut text = String::new();
        for (id, key) in &self.keys {
            writeln!(text, "ack {id} {key}").unwrap();
        }
        std::fs::write(path, text).unwrap();
    }

    fn load(path: &Path) -> Result<Ledger, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut keys = BTreeMap::new();
        for line in text.lines() {
            match Line::parse(line) {
                Some(Ok(Line::Ack(id, key))) => keys.insert(id, key),
                _ => return Err(format!("bad ledger line {line:?}")),
            };
        }
        Ok(Ledger { keys })
    }
}

// ---------------------------------------------------------------------------------------------
// The check.

/// What a check found.
struct Checked {
    entries: usize,
    /// Entries present that the ledger does not hold: written, but their acknowledgement was
    /// never printed.
    unacknowledged: Vec<(Id, Key)>,
}

/// Reads the whole store and checks it against `ledger` (see the module docs).
fn check_store(store: &LogStore, ledger: &Ledger) -> Result<Checked, String> {
    let mut present: BTreeMap<Id, Key> = BTreeMap::new();
    // Per writer thread: the operation it must show next, in query order.
    let mut next_op: HashMap<(u32, u32), u32> = HashMap::new();
    let mut previous: Option<(Key, Id)> = None;
    let entries = store.query(&Query::new()).map_err(|e| format!("query: {e}"))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("query failed after {} entries: {e}", present.len()))?;
        let key = entry.key;
        let first_line = entry.message.split('\n').next().unwrap_or_default();
        let id: Id = first_line.parse().map_err(|e| format!("entry {key}: {e}"))?;
        let (message, metadata) = payload(id);
        if entry.message != message || entry.metadata.as_deref() != metadata.as_deref() {
            return Err(format!(
                "entry {id} at {key} is not the one written: message of {} bytes (expected {}), \
                 metadata {:?} (expected {metadata:?})",
                entry.message.len(),
                message.len(),
                entry.metadata,
            ));
        }
        if let Some(first_key) = present.insert(id, key) {
            return Err(format!("entry {id} is present twice, at {first_key} and at {key}"));
        }
        if let Some((previous_key, previous_id)) = previous {
            if key <= previous_key {
                return Err(format!(
                    "keys out of order: {previous_id} at {previous_key}, then {id} at {key}"
                ));
            }
            if id.round < previous_id.round {
                return Err(format!(
                    "round {} comes after round {} in key order ({previous_id} at \
                     {previous_key}, then {id} at {key})",
                    id.round, previous_id.round
                ));
            }
            let batch_goes_on = previous_id.index + 1 < previous_id.count;
            if batch_goes_on && id != (Id { index: previous_id.index + 1, ..previous_id }) {
                return Err(format!("batch of {previous_id} is broken: {id} at {key} follows it"));
            }
        }
        if id.index == 0 {
            let expected = next_op.entry(id.writer()).or_insert(0);
            if id.op != *expected {
                return Err(format!(
                    "writer thread {}.{} shows operation {} at {key} where operation {} should \
                     be (a gap, or operations out of order)",
                    id.round, id.thread, id.op, expected
                ));
            }
            *expected += 1;
        } else if previous.map(|(_, p)| p) != Some(Id { index: id.index - 1, ..id }) {
            return Err(format!("entry {id} at {key} does not follow the rest of its batch"));
        }
        previous = Some((key, id));
    }
    if let Some((key, id)) = previous.filter(|(_, id)| id.index + 1 < id.count) {
        return Err(format!("batch of {id} is cut short after {key}"));
    }

    for (id, key) in &ledger.keys {
        match present.get(id) {
            None => return Err(format!("acknowledged entry {id} (key {key}) is missing")),
            Some(found) if found != key => {
                return Err(format!("entry {id} was acknowledged as {key} but is at {found}"));
            }
            Some(_) => {}
        }
    }
    // A thread starts an operation only after the previous one was acknowledged and printed: at
    // most one operation per thread, the one after its last acknowledged, may be present unasked.
    let mut acknowledged_ops: HashMap<(u32, u32), u32> = HashMap::new();
    for id in ledger.keys.keys() {
        let op = acknowledged_ops.entry(id.writer()).or_insert(id.op);
        *op = (*op).max(id.op);
    }
    let mut unacknowledged = Vec::new();
    for (&id, &key) in &present {
        if ledger.keys.contains_key(&id) {
            continue;
        }
        let in_flight = acknowledged_ops.get(&id.writer()).map_or(0, |op| op + 1);
        if id.op != in_flight {
            return Err(format!(
                "entry {id} at {key} was never acknowledged, and its thread could only have had \
                 operation {in_flight} in flight"
            ));
        }
        unacknowledged.push((id, key));
    }
    let stats = store.stats();
    if stats.entries != present.len() as u64 {
        return Err(format!(
            "stats count {} entries, the query returned {}: {stats:?}",
            stats.entries,
            present.len()
        ));
    }
    Ok(Checked { entries: present.len(), unacknowledged })
}

// ---------------------------------------------------------------------------------------------
// The writer process.

/// The writer: runs only as the child process of [`acknowledged_entries_survive_sigkill`], and
/// never returns there (it writes until it is killed).
#[test]
#[ignore = "the writer process of acknowledged_entries_survive_sigkill, which starts it"]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else { return };
    let env_number = |name: &str| -> u64 {
        let text = std::env::var(name).unwrap_or_else(|_| die(format!("{name} is not set")));
        text.parse().unwrap_or_else(|_| die(format!("{name}={text:?} is not a number")))
    };
    // The harness printed `test child_writer ... ` without a newline: end that line.
    emit("\n");
    let round = env_number(CHILD_ROUND_ENV) as u32;
    let mut rng = Rng::new(env_number(CHILD_SEED_ENV));
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIFETIME_MAX);
        die("the writer was never killed".into());
    });

    let store = LogStore::open(&dir, store_options(round))
        .unwrap_or_else(|e| die(format!("round {round}: open: {e}")));
    let store = Arc::new(store);
    if let Some(ledger) = std::env::var_os(CHILD_LEDGER_ENV) {
        let ledger = Ledger::load(Path::new(&ledger)).unwrap_or_else(|e| die(e));
        let checked = check_store(&store, &ledger)
            .unwrap_or_else(|e| die(format!("round {round}: check at open: {e}")));
        let mut text = String::new();
        for (id, key) in &checked.unacknowledged {
            writeln!(text, "seen {id} {key}").unwrap();
        }
        writeln!(text, "checked {}", checked.entries).unwrap();
        emit(&text);
    }

    let current = Arc::new(RwLock::new(store));
    let mut threads = Vec::new();
    for thread in 0..WRITER_THREADS {
        let (current, seed) = (current.clone(), rng.next());
        threads.push(std::thread::spawn(move || write_forever(&current, round, thread, seed)));
    }
    let (maintained, seed) = (current.clone(), rng.next());
    let dir = PathBuf::from(dir);
    threads.push(std::thread::spawn(move || maintain_forever(&maintained, &dir, round, seed)));
    // Flushes and compactions of the stores closed so far, and the totals last printed.
    let (mut closed_stores, mut shown) = ((0, 0), (0, 0));
    let mut store = read(&current);
    loop {
        let now = read(&current);
        if !Arc::ptr_eq(&now, &store) {
            let stats = store.stats();
            closed_stores = (closed_stores.0 + stats.flushes, closed_stores.1 + stats.compactions);
            store = now;
        }
        let stats = store.stats();
        let total = (closed_stores.0 + stats.flushes, closed_stores.1 + stats.compactions);
        if total != shown {
            shown = total;
            emit(&format!("stats {} {}\n", shown.0, shown.1));
        }
        if threads.iter().any(|t| t.is_finished()) {
            die("a writer thread stopped".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The store the threads of the writer use now (the maintainer replaces it when it reopens).
fn read(current: &RwLock<Arc<LogStore>>) -> Arc<LogStore> {
    current.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Appends single entries and batches, and prints each acknowledgement, until killed.
fn write_forever(current: &RwLock<Arc<LogStore>>, round: u32, thread: u32, seed: u64) {
    let mut rng = Rng::new(seed);
    for op in 0.. {
        let count = if rng.below(2) == 0 { 1 } else { 2 + rng.below(BATCH_ENTRIES_MAX - 1) };
        let ids: Vec<Id> = (0..count as u32)
            .map(|index| Id { round, thread, op, index, count: count as u32 })
            .collect();
        let payloads: Vec<(String, Option<String>)> = ids.iter().map(|&id| payload(id)).collect();
        let batch: Vec<NewEntry> = payloads
            .iter()
            .map(|(message, metadata)| NewEntry {
                metadata: metadata.as_deref().map(Into::into),
                ..NewEntry::new(message.as_str())
            })
            .collect();
        let keys = loop {
            let store = read(current);
            let keys = if let [(message, metadata)] = &payloads[..] {
                store.append(message, metadata.as_deref()).map(|key| vec![key])
            } else {
                store.append_batch(&batch)
            };
            match keys {
                // The maintainer closed the store: nothing was written; again on the new one.
                Err(StoreError::Closed) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) => die(format!("append of {}: {e}", ids[0])),
                Ok(keys) => break keys,
            }
        };
        let mut text = String::new();
        for (id, key) in ids.iter().zip(&keys) {
            writeln!(text, "ack {id} {key}").unwrap();
        }
        emit(&text);
    }
}

/// Every 5–35 ms, until killed, asks for a flush or now and then a full compaction; or, in one
/// writer in four, closes the store under the writers' feet and opens it again.
fn maintain_forever(current: &RwLock<Arc<LogStore>>, dir: &Path, round: u32, seed: u64) {
    let mut rng = Rng::new(seed);
    let reopening = rng.below(4) == 0;
    loop {
        std::thread::sleep(Duration::from_millis(5 + rng.below(30)));
        let store = read(current);
        let result = if reopening {
            emit("closing\n");
            store.close().and_then(|()| {
                let reopened = LogStore::open(dir, store_options(round))?;
                *current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(reopened);
                emit("reopened\n");
                Ok(())
            })
        } else if rng.below(5) == 0 {
            store.compact()
        } else {
            store.flush()
        };
        result.unwrap_or_else(|e| die(format!("flush, compact or reopen: {e}")));
    }
}

/// Writes `text` to stdout in one call and flushes it, so a line is printed whole or not at all
/// unless the kill interrupts the write itself (then the test drops the cut line).
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .unwrap_or_else(|e| die(format!("stdout: {e}")));
}

/// Ends the writer with a failure the test reports (a panic in a thread would not end it).
fn die(message: String) -> ! {
    eprintln!("sigkill writer: {message}");
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------
// The test.

/// When a round's writer is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after its first acknowledgement.
    AfterFirstAck(Duration),
    /// This long after it starts (in open, recovery or the check at open, often).
    AfterStart(Duration),
}

/// What a killed writer printed.
struct Run {
    lines: Vec<Line>,
    /// A line the kill cut short.
    torn: bool,
}

/// Runs the writer of `round` on `dir` and kills it per `kill`. With `ledger`, the writer checks
/// the store against it before writing.
fn run_writer(
    context: &str,
    round: u32,
    dir: &Path,
    ledger: Option<&Path>,
    seed: u64,
    kill: Kill,
) -> Run {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["child_writer", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .env(CHILD_SEED_ENV, seed.to_string())
        .env_remove(CHILD_LEDGER_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(ledger) = ledger {
        command.env(CHILD_LEDGER_ENV, ledger);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (first_ack, first_ack_seen) = mpsc::channel();
    let reader_context = context.to_owned();
    let reader = std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let (mut lines, mut torn) = (Vec::new(), false);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            if reader.read_until(b'\n', &mut buffer).unwrap() == 0 {
                break;
            }
            let Some(line) = buffer.strip_suffix(b"\n") else {
                torn = true; // the end of the output, cut by the kill: not counted
                break;
            };
            let line = std::str::from_utf8(line).unwrap();
            match Line::parse(line) {
                Some(Ok(line)) => {
                    if matches!(line, Line::Ack(..)) {
                        let _ = first_ack.send(());
                    }
                    lines.push(line);
                }
                Some(Err(e)) => panic!("{reader_context}: {e}"),
                None => {}
            }
        }
        (lines, torn)
    });
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let acknowledging = match kill {
        Kill::AfterFirstAck(delay) => {
            let acknowledging = first_ack_seen.recv_timeout(FIRST_ACK_TIMEOUT).is_ok();
            if acknowledging {
                std::thread::sleep(delay);
            }
            acknowledging
        }
        Kill::AfterStart(delay) => {
            std::thread::sleep(delay);
            true
        }
    };
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let (lines, torn) = reader.join().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(
        acknowledging && status.signal() == Some(SIGKILL),
        "{context}: the writer {} and ended with {status}; its stderr:\n{stderr}",
        if acknowledging { "was not killed by the test" } else { "acknowledged nothing" },
    );
    Run { lines, torn }
}

/// Files of the tables folder that the manifest (a header line, then JSON) does not list: a
/// flush or compaction was killed after writing its table and before storing the manifest, or
/// a compaction after storing it and before deleting its inputs.
fn unlisted_tables(dir: &Path) -> usize {
    let manifest = match std::fs::read(dir.join(logstore_engine::MANIFEST_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("manifest: {e}"),
    };
    let listed: Vec<String> = match manifest.iter().position(|&b| b == b'\n') {
        None => Vec::new(),
        Some(newline) => {
            let body: serde_json::Value = serde_json::from_slice(&manifest[newline + 1..]).unwrap();
            let tables = body["tables"].as_array().expect("the manifest lists tables");
            tables.iter().map(|t| format!("{:020}.sst", t["id"].as_u64().unwrap())).collect()
        }
    };
    match std::fs::read_dir(dir.join(TABLES_DIR)) {
        Ok(files) => files
            .map(|file| file.unwrap().file_name().into_string().unwrap())
            .filter(|name| !listed.contains(name))
            .count(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => panic!("tables folder: {e}"),
    }
}

#[derive(Debug, Default)]
struct Summary {
    acknowledged: usize,
    unacknowledged_survivors: usize,
    checks_by_test: usize,
    checks_by_writer: usize,
    kills_at_start: usize,
    kills_mid_table_change: usize,
    torn_lines: usize,
    flushes: u64,
    compactions: u64,
    closes: usize,
    reopens: usize,
}

#[test]
fn acknowledged_entries_survive_sigkill() {
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) => text.parse().expect("LOGSTORE_SIGKILL_SEED is a number"),
        Err(_) => SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    let rounds: u32 = match std::env::var(ROUNDS_ENV) {
        Ok(text) => text.parse().expect("LOGSTORE_SIGKILL_ROUNDS is a number"),
        Err(_) => ROUNDS_DEFAULT,
    };
    eprintln!("sigkill: seed {seed} ({SEED_ENV} to repeat), {rounds} rounds");
    let mut rng = Rng::new(seed);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("store");
    let ledger_path = work.path().join("ledger");
    let mut ledger = Ledger::default();
    let mut summary = Summary::default();
    let started = Instant::now();
    // Whether the store was checked after the last kill; if not, the next writer checks it.
    let mut checked = true;
    for round in 0..rounds {
        let context = format!("seed {seed}, round {round}");
        if !checked {
            ledger.save(&ledger_path);
        }
        let kill = if rng.below(8) == 0 {
            summary.kills_at_start += 1;
            Kill::AfterStart(Duration::from_millis(rng.below(40)))
        } else {
            Kill::AfterFirstAck(Duration::from_millis(5 + rng.below(76)))
        };
        let ledger_to_check = (!checked).then_some(&*ledger_path);
        let run = run_writer(&context, round, &dir, ledger_to_check, rng.next(), kill);
        summary.torn_lines += usize::from(run.torn);

        // Each thread's acknowledgements come in key order, after every key of earlier rounds.
        let key_before_round = ledger.keys.values().max().copied();
        let mut last_key: HashMap<u32, Key> = HashMap::new();
        let mut stats = (0, 0);
        for line in run.lines {
            match line {
                Line::Ack(id, key) => {
                    assert_eq!(id.round, round, "{context}: {id} acknowledged");
                    assert!(key_before_round < Some(key), "{context}: {id} acknowledged as {key}");
                    if let Some(last) = last_key.insert(id.thread, key) {
                        assert!(last < key, "{context}: {id} acknowledged as {key} after {last}");
                    }
                    assert_eq!(ledger.keys.insert(id, key), None, "{context}: {id} twice");
                    summary.acknowledged += 1;
                }
                Line::Seen(id, key) => {
                    assert_eq!(ledger.keys.insert(id, key), None, "{context}: {id} seen twice");
                    summary.unacknowledged_survivors += 1;
                }
                Line::Checked(_) => summary.checks_by_writer += 1,
                Line::Stats(flushes, compactions) => stats = (flushes, compactions),
                Line::Closing => summary.closes += 1,
                Line::Reopened => summary.reopens += 1,
            }
        }
        summary.flushes += stats.0;
        summary.compactions += stats.1;

        checked = round + 1 == rounds || rng.below(2) == 0;
        if checked {
            summary.kills_mid_table_change += usize::from(unlisted_tables(&dir) > 0);
            // Opens right after the kill: the lock died with the writer.
            let store = LogStore::open(&dir, store_options(round))
                .unwrap_or_else(|e| panic!("{context}: open after the kill: {e}"));
            let found = check_store(&store, &ledger).unwrap_or_else(|e| panic!("{context}: {e}"));
            summary.unacknowledged_survivors += found.unacknowledged.len();
            ledger.keys.extend(found.unacknowledged);
            store.close().unwrap_or_else(|e| panic!("{context}: close: {e}"));
            summary.checks_by_test += 1;
        }
    }
    eprintln!(
        "sigkill: {rounds} rounds in {:.1} s: {} entries acknowledged and {} more survived \
         unacknowledged; checked after {} kills by the test and {} by the next writer; {} kills at \
         start-up, {} left a flush or compaction unfinished; writers did {} flushes and {} \
         compactions, and began to close the store {} times (reopened it {} times); {} ack lines cut by the \
         kill",
        started.elapsed().as_secs_f64(),
        summary.acknowledged,
        summary.unacknowledged_survivors,
        summary.checks_by_test,
        summary.checks_by_writer,
        summary.kills_at_start,
        summary.kills_mid_table_change,
        summary.flushes,
        summary.compactions,
        summary.closes,
        summary.reopens,
        summary.torn_lines,
    );
    // Guards against a run that checks nothing: the writers wrote, flushed and compacted.
    assert!(
        summary.acknowledged > 0 && summary.flushes > 0 && summary.compactions > 0,
        "{summary:?}"
    );
}
