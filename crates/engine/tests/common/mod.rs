//! Shared by the crash tests: a process's view of the disk that dies with the process, a
//! [`World`] (one disk, one clock) to open, kill and crash stores in, and checks of a store
//! against the [`Oracle`] and against its own directory.
#![allow(dead_code)] // each test file uses its part

use logstore_engine::testing::{CrashMode, FaultFs, ManualTime, Oracle};
use logstore_engine::{
    Entry, LogStore, MANIFEST_FILE, Order, Query, StoreError, StoreOptions, TABLES_DIR,
};
use logstore_fs::{FileSystem, FsFile, FsLock, OpenMode};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, mpsc};
use std::time::Duration;

/// Where every test store lives on its `FaultFs`.
pub const DIR: &str = "/data";

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// One I/O call a process made, in the order it made them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Io {
    /// `create`, `write`, `set-len`, `sync`, `sync-dir`, `rename`, `remove`.
    pub op: &'static str,
    /// The file or directory (`from -> to` for a rename). A file's calls name it by the path
    /// it was opened under (a WAL segment synced after its rename still shows `.wal.tmp`).
    pub path: String,
}

impl Io {
    /// Whether `FaultFs` counts it in `syncs()`.
    pub fn is_sync(&self) -> bool {
        self.op == "sync" || self.op == "sync-dir"
    }

    /// Whether `FaultFs` counts it in `writes()`.
    pub fn is_write(&self) -> bool {
        self.op == "write"
    }
}

impl fmt::Display for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op, self.path)
    }
}

/// What one process shares between its file system and the files and locks it opened.
#[derive(Debug)]
struct Process {
    /// `false` once the process is dead. Every I/O call holds it for reading while it runs, so
    /// [`ProcessFs::kill`] waits for the calls in flight and every later one fails: a dead
    /// process's threads (a forgotten store's worker) never touch the disk again.
    alive: RwLock<bool>,
    /// The locks it holds; they die with it, as `flock`s do.
    locks: Mutex<Vec<HeldLock>>,
    trace: Mutex<Trace>,
    /// A call the process stops before, until the test lets it go.
    pause: Mutex<Option<PausePoint>>,
}

/// See [`ProcessFs::pause_before`].
#[derive(Debug)]
struct PausePoint {
    call: String,
    reached: mpsc::Sender<()>,
    resume: mpsc::Receiver<()>,
}

/// A call the process is stopped before (or will be): [`Paused::wait`] until it gets there,
/// then [`Paused::resume`].
#[derive(Debug)]
pub struct Paused {
    reached: mpsc::Receiver<()>,
    resume: mpsc::Sender<()>,
}

impl Paused {
    /// Waits until the process is at the call (panics after 10 s).
    pub fn wait(&self) {
        self.reached.recv_timeout(Duration::from_secs(10)).expect("the paused call never came");
    }

    /// Lets the call go.
    pub fn resume(self) {
        let _ = self.resume.send(());
    }
}

/// A lock the process holds, shared with the store's handle of it; taken out when either
/// lets go.
type HeldLock = Arc<Mutex<Option<Box<dyn FsLock>>>>;

#[derive(Debug, Default)]
struct Trace {
    calls: Vec<Io>,
    /// Mutating calls the process makes before it dies (`Some(0)`: it is dead).
    calls_left: Option<u64>,
}

impl Process {
    fn run<T>(
        &self,
        op: &'static str,
        path: &Path,
        call: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        self.run_named(op, || path.display().to_string(), call)
    }

    fn run_named<T>(
        &self,
        op: &'static str,
        path: impl FnOnce() -> String,
        call: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let path = (!op.is_empty()).then(path);
        if let Some(path) = &path {
            let call = format!("{op} {path}");
            let point = lock(&self.pause).take_if(|point| point.call == call);
            if let Some(point) = point {
                let _ = point.reached.send(());
                let _ = point.resume.recv();
            }
        }
        let alive = self.alive.read().unwrap_or_else(|e| e.into_inner());
        let mut trace = lock(&self.trace);
        if !*alive || trace.calls_left == Some(0) {
            return Err(io::Error::other("the process is dead"));
        }
        if !op.is_empty() {
            if let Some(left) = &mut trace.calls_left {
                *left -= 1;
            }
            trace.calls.push(Io { op, path: path.expect("rendered for a traced call") });
        }
        drop(trace);
        call()
    }
}

/// The disk as one process sees it: a [`FaultFs`] that goes dead when the process is killed,
/// and that records every mutating call (the trace the fault tests take their crash points
/// from).
#[derive(Clone, Debug)]
pub struct ProcessFs {
    disk: FaultFs,
    process: Arc<Process>,
}

impl ProcessFs {
    pub fn new(disk: FaultFs) -> ProcessFs {
        let process = Process {
            alive: RwLock::new(true),
            locks: Mutex::new(Vec::new()),
            trace: Mutex::new(Trace::default()),
            pause: Mutex::new(None),
        };
        ProcessFs { disk, process: Arc::new(process) }
    }

    /// The process dies: calls in flight finish, every later one fails, its locks are released.
    pub fn kill(&self) {
        *self.process.alive.write().unwrap_or_else(|e| e.into_inner()) = false;
        for held in lock(&self.process.locks).drain(..) {
            lock(&held).take();
        }
    }

    /// The process dies right after its next `calls` mutating calls (at once, if 0): every
    /// later call fails, wherever it comes from (an append, the background worker).
    pub fn die_after(&self, calls: u64) {
        lock(&self.process.trace).calls_left = Some(calls);
    }

    /// Whether the process is dead.
    pub fn is_dead(&self) -> bool {
        let alive = *self.process.alive.read().unwrap_or_else(|e| e.into_inner());
        !alive || lock(&self.process.trace).calls_left == Some(0)
    }

    /// The next call rendered as `call` (as in the trace: `sync /data/tables/...`), from any
    /// thread, stops before it runs until the returned handle resumes it.
    pub fn pause_before(&self, call: &str) -> Paused {
        let (reached_tx, reached) = mpsc::channel();
        let (resume, resume_rx) = mpsc::channel();
        let point = PausePoint { call: call.to_owned(), reached: reached_tx, resume: resume_rx };
        *lock(&self.process.pause) = Some(point);
        Paused { reached, resume }
    }

    /// Every mutating call so far, in order.
    pub fn trace(&self) -> Vec<Io> {
        lock(&self.process.trace).calls.clone()
    }
}

#[derive(Debug)]
struct ProcessFile {
    file: Box<dyn FsFile>,
    path: PathBuf,
    process: Arc<Process>,
}

impl FsFile for ProcessFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.process.run("", &self.path, || self.file.read_at(buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.process.run("write", &self.path, || self.file.write_all_at(buf, offset))
    }

    fn sync_data(&self) -> io::Result<()> {
        self.process.run("sync", &self.path, || self.file.sync_data())
    }

    fn len(&self) -> io::Result<u64> {
        self.process.run("", &self.path, || self.file.len())
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.process.run("set-len", &self.path, || self.file.set_len(len_bytes))
    }

    fn allocate(&self, len_bytes: u64) -> io::Result<()> {
        self.process.run("set-len", &self.path, || self.file.allocate(len_bytes))
    }
}

#[derive(Debug)]
struct ProcessLock(HeldLock);

impl FsLock for ProcessLock {}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        lock(&self.0).take();
    }
}

impl FileSystem for ProcessFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let op = if mode == OpenMode::CreateNew { "create" } else { "" };
        let file = self.process.run(op, path, || self.disk.open(path, mode))?;
        Ok(Box::new(ProcessFile { file, path: path.to_owned(), process: self.process.clone() }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.process.run("", path, || self.disk.create_dir_all(path))
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.process.run("", path, || self.disk.list_dir(path))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.process.run("remove", path, || self.disk.remove_file(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let name = || format!("{} -> {}", from.display(), to.display());
        self.process.run_named("rename", name, || self.disk.rename(from, to))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.process.run("sync-dir", path, || self.disk.sync_dir(path))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        let held = self.process.run("", path, || self.disk.lock(path))?;
        let held = Arc::new(Mutex::new(Some(held)));
        lock(&self.process.locks).push(held.clone());
        Ok(Box::new(ProcessLock(held)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.process.run("", path, || self.disk.exists(path))
    }
}

/// One machine: a disk and a wall clock, and the process that has the store open.
pub struct World {
    pub disk: FaultFs,
    pub time: Arc<ManualTime>,
    /// Options every open uses (its `fs` and `time` are replaced by the world's).
    pub options: StoreOptions,
    process: Option<ProcessFs>,
}

impl World {
    pub fn new(options: StoreOptions, now_ms: u64) -> World {
        World {
            disk: FaultFs::new(),
            time: Arc::new(ManualTime::new(now_ms)),
            options,
            process: None,
        }
    }

    /// Starts a process that opens the store.
    pub fn open(&mut self) -> Result<LogStore, StoreError> {
        let process = ProcessFs::new(self.disk.clone());
        let options = StoreOptions {
            fs: Arc::new(process.clone()),
            time: self.time.clone(),
            ..self.options.clone()
        };
        self.process = Some(process);
        LogStore::open(DIR, options)
    }

    /// The process of the last open.
    pub fn process(&self) -> &ProcessFs {
        self.process.as_ref().expect("a store was opened")
    }

    /// The process dies at once: from this instant none of its calls reaches the disk (each
    /// fails), its lock is released, and what it wrote stays in the page cache.
    ///
    /// A dead process runs no destructors; here they run, to reclaim the threads and memory a
    /// real death would, but against a dead disk they can change nothing, so for the disk this
    /// is `mem::forget`. (Forgetting instead would leak a worker thread per kill, and leave it
    /// free to touch the disk by path after the next process opened it.)
    pub fn kill(&mut self, store: LogStore) {
        let process = self.process.take().expect("a store was opened");
        process.kill();
        let before = (self.disk.syncs(), self.disk.writes(), process.trace().len());
        drop(store);
        let after = (self.disk.syncs(), self.disk.writes(), process.trace().len());
        assert_eq!(before, after, "a dead process wrote");
    }

    /// The process dies and the machine loses power: `mode` says what of the unsynced writes
    /// survives.
    pub fn crash(&mut self, store: LogStore, mode: CrashMode) {
        self.kill(store);
        self.disk.crash(mode);
    }
}

/// Every entry `query` returns, or a panic naming the error.
pub fn read(store: &LogStore, query: &Query) -> Vec<Entry<'static>> {
    store
        .query(query)
        .unwrap_or_else(|e| panic!("{query:?}: {e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{query:?}: {e}")))
        .collect()
}

/// The store answers `query` exactly as the oracle does.
pub fn assert_query(store: &LogStore, oracle: &Oracle, query: &Query, context: &dyn fmt::Display) {
    let got = read(store, query);
    let expected = oracle.query(query);
    if got != expected {
        panic!("{context}: {query:?}\n{}", diff(&got, &expected));
    }
}

/// Every entry, in both orders, exactly as the oracle holds them, and the store counts as many.
pub fn assert_holds(store: &LogStore, oracle: &Oracle, context: &dyn fmt::Display) {
    assert_query(store, oracle, &Query::new(), context);
    assert_query(store, oracle, &Query::new().order(Order::Descending), context);
    let stats = store.stats();
    assert_eq!(
        stats.entries,
        oracle.len() as u64,
        "{context}: entries counted by stats: {stats:#?}"
    );
}

/// Names what differs between two results: lost, extra or duplicated keys, or wrong order.
pub fn diff(got: &[Entry<'static>], expected: &[Entry<'static>]) -> String {
    let keys = |entries: &[Entry<'static>]| entries.iter().map(|e| e.key).collect::<Vec<_>>();
    let (got_keys, expected_keys) = (keys(got), keys(expected));
    let missing: Vec<_> = expected_keys.iter().filter(|k| !got_keys.contains(k)).collect();
    let extra: Vec<_> = got_keys.iter().filter(|k| !expected_keys.contains(k)).collect();
    let mut sorted = got_keys.clone();
    sorted.sort();
    sorted.dedup();
    let duplicated = got_keys.len() - sorted.len();
    let mut out = format!(
        "got {} entries, expected {}; missing {missing:?}; extra {extra:?}; {duplicated} duplicated",
        got.len(),
        expected.len()
    );
    if missing.is_empty() && extra.is_empty() && duplicated == 0 {
        match got.iter().zip(expected).position(|(g, e)| g != e) {
            Some(at) => {
                out += &format!("; first difference at {at}: {:?} vs {:?}", got[at], expected[at])
            }
            None => out += "; same entries",
        }
    }
    out
}

/// The ids of the tables the manifest on disk lists (the live file, as the next open reads it;
/// none before the first flush).
pub fn manifest_tables(disk: &FaultFs) -> Vec<u64> {
    let path = Path::new(DIR).join(MANIFEST_FILE);
    if !disk.exists(&path).expect("stat") {
        return Vec::new();
    }
    let bytes = disk.read_file(&path).expect("a manifest");
    let newline = bytes.iter().position(|&b| b == b'\n').expect("a header line");
    let body: serde_json::Value = serde_json::from_slice(&bytes[newline + 1..]).expect("JSON");
    let mut ids: Vec<u64> = body["tables"]
        .as_array()
        .expect("a table list")
        .iter()
        .map(|t| t["id"].as_u64().expect("an id"))
        .collect();
    ids.sort_unstable();
    ids
}

/// The names in the tables folder.
pub fn table_files(disk: &FaultFs) -> Vec<String> {
    disk.list_dir(&Path::new(DIR).join(TABLES_DIR)).expect("a tables folder")
}

/// The tables folder holds exactly the tables the manifest lists (no orphan, no temporary
/// file), and the store has them all open.
pub fn assert_no_orphans(store: &LogStore, disk: &FaultFs, context: &dyn fmt::Display) {
    let listed: Vec<String> =
        manifest_tables(disk).iter().map(|id| format!("{id:020}.sst")).collect();
    assert_eq!(table_files(disk), listed, "{context}: files in {DIR}/{TABLES_DIR} vs the manifest");
    assert_eq!(store.stats().tables, listed.len(), "{context}: tables the store has open");
}

/// A store that saw a failure refuses every write with `Poisoned`.
pub fn assert_refuses_writes(store: &LogStore, context: &dyn fmt::Display) {
    assert!(store.poisoned().is_some(), "{context}: not poisoned");
    let poisoned = |result: Result<(), StoreError>, what: &str| match result {
        Err(StoreError::Poisoned { .. }) => {}
        other => panic!("{context}: {what} after a failure gave {other:?}"),
    };
    poisoned(store.append("after the failure", None).map(drop), "append");
    poisoned(store.flush(), "flush");
    poisoned(store.compact(), "compact");
}

/// Durably records the appended entries in the oracle, or panics naming the error.
pub fn append(store: &LogStore, oracle: &mut Oracle, batch: &[logstore_engine::NewEntry<'_>]) {
    let keys = store.append_batch(batch).unwrap_or_else(|e| panic!("append: {e}"));
    oracle.appended(&keys, batch);
}

/// Crash modes a test runs through.
pub fn crash_modes(seed: u64) -> [CrashMode; 2] {
    [CrashMode::DropUnsynced, CrashMode::TornPrefix { seed }]
}

/// Waits until `done` holds of the store's stats (the background worker catching up), for at
/// most 30 s; then fails naming `what` and the stats.
pub fn wait_for(store: &LogStore, what: &str, done: impl Fn(&logstore_engine::StoreStats) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stats = store.stats();
        if done(&stats) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what} never happened: {stats:#?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
