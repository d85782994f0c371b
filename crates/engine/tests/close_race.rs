//! Regression test: `close` while an append waits for room.
//!
//! An append that found the worker behind on flushes waited for room, letting go of the writer
//! lock; a `close` that came meanwhile flushed the memtables and went on to start a new WAL
//! segment and drop the old ones. The waiting append did not look again whether the store was
//! closed: it wrote its entry to the old segment and was acknowledged, then `close` deleted that
//! segment. The entry was lost, and the next open refused the directory ("the WAL starts at
//! sequence 4, but entries from 3 on are in no table"). The SIGKILL crash test found it
//! (its writer closes and reopens the store under its writer threads).

use logstore_engine::testing::FaultFs;
use logstore_engine::{LogStore, NewEntry, Query, StoreError, StoreOptions};
use logstore_fs::{FileSystem, FsFile, FsLock, OpenMode};
use std::io;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Holds back whoever reaches it while it is shut (for at most [`Gate::WAIT_MAX`], so that an
/// unexpected order fails the test instead of hanging it).
#[derive(Debug, Default)]
struct Gate {
    shut: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    const WAIT_MAX: Duration = Duration::from_secs(10);

    fn set_shut(&self, shut: bool) {
        *self.shut.lock().unwrap() = shut;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let shut = self.shut.lock().unwrap();
        drop(self.changed.wait_timeout_while(shut, Self::WAIT_MAX, |shut| *shut).unwrap());
    }
}

/// An in-memory file system whose table builds and WAL segment creations wait at gates.
#[derive(Debug, Default)]
struct GatedFs {
    inner: FaultFs,
    /// Passed by a flush before it writes its table.
    table_builds: Gate,
    /// Passed by the WAL before it creates a segment (as `close` does before dropping the old).
    wal_segments: Gate,
}

impl FileSystem for GatedFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let name = path.to_string_lossy();
        if name.ends_with(".sst.tmp") {
            self.table_builds.pass();
        } else if name.ends_with(".wal.tmp") {
            self.wal_segments.pass();
        }
        self.inner.open(path, mode)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        self.inner.lock(path)
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
}

#[test]
fn an_append_waiting_for_room_when_close_starts_is_refused_or_kept() {
    let fs = Arc::new(GatedFs::default());
    let options = StoreOptions {
        fs: fs.clone(),
        flush_threshold_entries: 2,
        frozen_memtables_max: 1,
        compaction: None,
        ..StoreOptions::default()
    };
    let store = Arc::new(LogStore::open("/db", options.clone()).unwrap());
    fs.table_builds.set_shut(true);
    fs.wal_segments.set_shut(true);
    // Frozen at once (threshold 2); its flush waits at the gate, so there is no room.
    store.append_batch(&[NewEntry::new("first"), NewEntry::new("second")]).unwrap();
    let waiting = {
        let store = store.clone();
        std::thread::spawn(move || store.append("third", None))
    };
    // Time for "third" to start waiting for room. (Were it late, it would find the store
    // closed and be refused: the test would pass without exercising the race, never fail.)
    std::thread::sleep(Duration::from_millis(200));
    let closing = {
        let store = store.clone();
        std::thread::spawn(move || store.close())
    };
    std::thread::sleep(Duration::from_millis(200)); // close marks the store closed, waits
    fs.table_builds.set_shut(false); // the flush ends: room for "third"
    let third = waiting.join().unwrap();
    // Only now may close start a new WAL segment and drop the old one, whatever "third" did.
    fs.wal_segments.set_shut(false);
    closing.join().unwrap().unwrap();
    drop(store);

    let store = LogStore::open("/db", options).expect("a cleanly closed store opens");
    let messages: Vec<String> =
        store.query(&Query::new()).unwrap().map(|e| e.unwrap().message.into_owned()).collect();
    match third {
        Ok(_) => assert_eq!(messages, ["first", "second", "third"], "an acknowledged entry lost"),
        Err(StoreError::Closed) => assert_eq!(messages, ["first", "second"]),
        Err(e) => panic!("append during close: {e}"),
    }
}
