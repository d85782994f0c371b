//! An in-memory file system for crash and fault tests.
//!
//! [`FaultFs`] keeps, for every file, the bytes a reader sees now and the bytes that are
//! durable (as of the file's last successful sync), and for every directory its live entries and
//! its durable entries (as of its last sync). [`FaultFs::crash`] throws away what is not durable,
//! as a power cut would, and invalidates every open handle, as the death of the process would.
//!
//! The model is deliberately pessimistic, so that code which survives it survives a real disk:
//! - a new, renamed or removed name is durable only after [`FileSystem::sync_dir`] on its
//!   directory (directories themselves are durable as soon as they are created);
//! - after a failed sync, the writes it should have made durable are *never* made durable by a
//!   later sync (Linux marks those pages clean: the "fsyncgate" behaviour); they survive only
//!   until the next crash;
//! - [`CrashMode::TornPrefix`] keeps a random prefix of the unsynced writes of each file, the
//!   last one torn at a random byte, as happens when the disk persisted some pages and not others.
//!
//! Faults are armed one at a time: [`FaultFs::fail_write_after`], [`FaultFs::fail_sync_after`]
//! (one-shot, `EIO`), and [`FaultFs::set_capacity_bytes`] (`ENOSPC` past a total size).

use crate::{FileSystem, FsFile, FsLock, OpenMode, ReadOnlyMap};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What survives a [`FaultFs::crash`] of the bytes written since the last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Nothing unsynced survives.
    DropUnsynced,
    /// For each file, a random prefix of its unsynced writes survives, the last kept write cut
    /// at a random length. `seed` makes the choice repeatable.
    TornPrefix {
        /// Seed of the choices.
        seed: u64,
    },
}

/// The in-memory, fault-injecting file system. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    next_inode: u64,
    inodes: HashMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Bumped by every crash; handles and locks from an older generation are dead.
    generation: u64,
    locks: HashSet<PathBuf>,
    writes: u64,
    syncs: u64,
    /// `start_writeback` calls: counted apart, since they change nothing.
    writeback_hints: u64,
    /// The write number (counted by `writes`) that fails, once.
    fail_write_at: Option<u64>,
    /// The sync number (counted by `syncs`) that fails, once.
    fail_sync_at: Option<u64>,
    capacity_bytes: Option<u64>,
    /// How long each file sync sleeps first, without holding the state lock.
    file_sync_latency: Duration,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// Changes since the last sync, in order; a sync applies them to `durable`.
    pending: Vec<Change>,
}

#[derive(Debug)]
enum Change {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl Change {
    fn apply(&self, data: &mut Vec<u8>) {
        match self {
            Change::Write { offset, bytes } => write_into(data, *offset, bytes),
            Change::SetLen(len) => data.resize(*len as usize, 0),
        }
    }
}

fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let end = offset as usize + bytes.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[offset as usize..end].copy_from_slice(bytes);
}

#[derive(Debug, Default)]
struct Dir {
    live: BTreeMap<String, Node>,
    durable: BTreeMap<String, Node>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    File(u64),
    Dir,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file or directory", path.display()),
    )
}

fn injected(what: &str, n: u64) -> io::Error {
    io::Error::other(format!("injected failure of {what} #{n}"))
}

fn split(path: &Path) -> io::Result<(&Path, String)> {
    match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(parent), Some(name)) => Ok((parent, name.to_owned())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file path", path.display()),
        )),
    }
}

impl State {
    fn total_bytes(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    /// Refuses a change that would grow `inode` to `new_len` past the capacity.
    fn check_space(&self, inode: u64, new_len: u64) -> io::Result<()> {
        let Some(capacity) = self.capacity_bytes else { return Ok(()) };
        let old_len = self.inodes[&inode].data.len() as u64;
        if new_len > old_len && self.total_bytes() + (new_len - old_len) > capacity {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn lookup(&self, path: &Path) -> io::Result<Node> {
        let (parent, name) = split(path)?;
        self.dirs
            .get(parent)
            .and_then(|d| d.live.get(&name))
            .copied()
            .ok_or_else(|| not_found(path))
    }

    fn dir_mut(&mut self, path: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(path).ok_or_else(|| not_found(path))
    }

    fn count_sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        if self.fail_sync_at == Some(self.syncs) {
            self.fail_sync_at = None;
            return Err(injected("sync", self.syncs));
        }
        Ok(())
    }
}

impl FaultFs {
    /// An empty file system.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (every change is applied
        // in one step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After `n` more successful writes, the next write fails with an I/O error (once).
    pub fn fail_write_after(&self, n: u64) {
        let mut state = self.lock_state();
        state.fail_write_at = Some(state.writes + n + 1);
    }

    /// After `n` more successful syncs (of files or directories), the next one fails (once).
    pub fn fail_sync_after(&self, n: u64) {
        let mut state = self.lock_state();
        state.fail_sync_at = Some(state.syncs + n + 1);
    }

    /// Limits the total size of all files: a change that would pass it fails with `ENOSPC`.
    pub fn set_capacity_bytes(&self, capacity_bytes: Option<u64>) {
        self.lock_state().capacity_bytes = capacity_bytes;
    }

    /// Makes each [`FsFile::sync_data`] take at least `latency` (a sleep before it, during
    /// which other calls proceed), so that concurrency tests meet the timing of a real disk.
    pub fn set_file_sync_latency(&self, latency: Duration) {
        self.lock_state().file_sync_latency = latency;
    }

    /// Disarms every armed fault and lifts the capacity limit.
    pub fn heal(&self) {
        let mut state = self.lock_state();
        state.fail_write_at = None;
        state.fail_sync_at = None;
        state.capacity_bytes = None;
    }

    /// Writes attempted so far (successful or not).
    pub fn writes(&self) -> u64 {
        self.lock_state().writes
    }

    /// [`FsFile::start_writeback`] calls so far. They make nothing durable here (nor, in
    /// general, anywhere), and are neither writes nor syncs for the counts and armed faults.
    pub fn writeback_hints(&self) -> u64 {
        self.lock_state().writeback_hints
    }

    /// Syncs attempted so far, of files and directories (successful or not).
    pub fn syncs(&self) -> u64 {
        self.lock_state().syncs
    }

    /// Simulates a power cut: every unsynced change is lost (or, with
    /// [`CrashMode::TornPrefix`], partly kept), every open handle and lock dies. Faults stay armed.
    pub fn crash(&self, mode: CrashMode) {
        let mut state = self.lock_state();
        let state = &mut *state;
        state.generation += 1;
        state.locks.clear();
        let mut reachable = HashSet::new();
        for dir in state.dirs.values_mut() {
            dir.live = dir.durable.clone();
            reachable.extend(dir.live.values().filter_map(|n| match n {
                Node::File(inode) => Some(*inode),
                Node::Dir => None,
            }));
        }
        state.inodes.retain(|id, _| reachable.contains(id));
        let mut rng = SplitMix64(match mode {
            CrashMode::DropUnsynced => 0,
            CrashMode::TornPrefix { seed } => seed,
        });
        let mut ids: Vec<u64> = state.inodes.keys().copied().collect();
        ids.sort_unstable(); // a repeatable order for the random choices
        for id in ids {
            let inode = state.inodes.get_mut(&id).expect("listed above");
            let mut data = std::mem::take(&mut inode.durable);
            if let CrashMode::TornPrefix { .. } = mode {
                let pending = std::mem::take(&mut inode.pending);
                let kept = rng.below(pending.len() as u64 + 1) as usize;
                for change in &pending[..kept] {
                    change.apply(&mut data);
                }
                if let Some(Change::Write { offset, bytes }) = pending.get(kept) {
                    let torn = rng.below(bytes.len() as u64) as usize;
                    write_into(&mut data, *offset, &bytes[..torn]);
                }
            }
            inode.pending.clear();
            inode.durable = data.clone();
            inode.data = data;
        }
    }

    /// The bytes of the file at `path` as a reader sees them now (for tests that inspect or
    /// damage files).
    pub fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock_state();
        match state.lookup(path)? {
            Node::File(id) => Ok(state.inodes[&id].data.clone()),
            Node::Dir => Err(io::Error::other(format!("{} is a directory", path.display()))),
        }
    }

    /// Overwrites the file at `path` with `bytes`, durably, bypassing faults: a test's way to
    /// corrupt a file as a bad disk would.
    pub fn overwrite_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock_state();
        match state.lookup(path)? {
            Node::File(id) => {
                let inode = state.inodes.get_mut(&id).expect("looked up");
                inode.data = bytes.to_vec();
                inode.durable = bytes.to_vec();
                inode.pending.clear();
                Ok(())
            }
            Node::Dir => Err(io::Error::other(format!("{} is a directory", path.display()))),
        }
    }
}

/// A tiny deterministic generator for crash choices (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

#[derive(Debug)]
struct FaultFile {
    fs: FaultFs,
    inode: u64,
    generation: u64,
    writable: bool,
}

impl FaultFile {
    /// The state, if this handle is still alive (not from before a crash).
    fn state(&self) -> io::Result<MutexGuard<'_, State>> {
        let state = self.fs.lock_state();
        if state.generation != self.generation {
            return Err(io::Error::other("file handle from before a simulated crash"));
        }
        Ok(state)
    }

    fn writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, "file opened read-only"))
        }
    }

    fn change(&self, change: Change, new_len: u64) -> io::Result<()> {
        self.writable()?;
        let mut state = self.state()?;
        state.check_space(self.inode, new_len)?;
        let inode = state.inodes.get_mut(&self.inode).expect("live handle");
        change.apply(&mut inode.data);
        inode.pending.push(change);
        Ok(())
    }
}

impl FsFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let state = self.state()?;
        let data = &state.inodes[&self.inode].data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn map_read_only(&self) -> io::Result<Option<ReadOnlyMap>> {
        let state = self.state()?;
        Ok(Some(ReadOnlyMap::copy_of(&state.inodes[&self.inode].data)))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.writable()?;
        let mut state = self.state()?;
        state.writes += 1;
        if state.fail_write_at == Some(state.writes) {
            state.fail_write_at = None;
            return Err(injected("write", state.writes));
        }
        let len = state.inodes[&self.inode].data.len() as u64;
        drop(state);
        let change = Change::Write { offset, bytes: buf.to_vec() };
        self.change(change, len.max(offset + buf.len() as u64))
    }

    fn sync_data(&self) -> io::Result<()> {
        let latency = self.state()?.file_sync_latency;
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let mut state = self.state()?;
        let result = state.count_sync();
        let inode = state.inodes.get_mut(&self.inode).expect("live handle");
        let pending = std::mem::take(&mut inode.pending);
        if result.is_ok() {
            for change in &pending {
                change.apply(&mut inode.durable);
            }
        }
        // On failure the pending changes are dropped from the durable path for good.
        result
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.inodes[&self.inode].data.len() as u64)
    }

    fn set_len(&self, len_bytes: u64) -> io::Result<()> {
        self.change(Change::SetLen(len_bytes), len_bytes)
    }

    fn allocate(&self, len_bytes: u64) -> io::Result<()> {
        if len_bytes > self.len()? { self.set_len(len_bytes) } else { self.writable() }
    }

    fn start_writeback(&self, _offset: u64, _len_bytes: u64) -> io::Result<()> {
        self.state()?.writeback_hints += 1;
        Ok(())
    }
}

#[derive(Debug)]
struct FaultLock {
    fs: FaultFs,
    path: PathBuf,
    generation: u64,
}

impl FsLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        let mut state = self.fs.lock_state();
        if state.generation == self.generation {
            state.locks.remove(&self.path);
        }
    }
}

impl FileSystem for FaultFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut state = self.lock_state();
        let inode = match (mode, state.lookup(path)) {
            (_, Ok(Node::Dir)) => {
                return Err(io::Error::other(format!("{} is a directory", path.display())));
            }
            (OpenMode::CreateNew, Ok(Node::File(_))) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", path.display()),
                ));
            }
            (OpenMode::CreateNew, Err(_)) => {
                let (parent, name) = split(path)?;
                state.dir_mut(parent)?;
                state.next_inode += 1;
                let id = state.next_inode;
                state.inodes.insert(id, Inode::default());
                state.dir_mut(parent)?.live.insert(name, Node::File(id));
                id
            }
            (_, Ok(Node::File(id))) => id,
            (_, Err(e)) => return Err(e),
        };
        let generation = state.generation;
        Ok(Box::new(FaultFile {
            fs: self.clone(),
            inode,
            generation,
            writable: mode != OpenMode::Read,
        }))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        let mut ancestors: Vec<&Path> =
            path.ancestors().filter(|a| !a.as_os_str().is_empty()).collect();
        ancestors.reverse();
        for dir in ancestors {
            if let Ok((parent, name)) = split(dir) {
                if let Some(parent_dir) = state.dirs.get_mut(parent) {
                    match parent_dir.live.get(&name) {
                        Some(Node::File(_)) => {
                            return Err(io::Error::new(
                                io::ErrorKind::AlreadyExists,
                                format!("{} is a file", dir.display()),
                            ));
                        }
                        Some(Node::Dir) => {}
                        None => {
                            parent_dir.live.insert(name.clone(), Node::Dir);
                            parent_dir.durable.insert(name, Node::Dir);
                        }
                    }
                }
            }
            state.dirs.entry(dir.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.lock_state();
        let dir = state.dirs.get(path).ok_or_else(|| not_found(path))?;
        Ok(dir.live.keys().cloned().collect())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        let (parent, name) = split(path)?;
        match state.lookup(path)? {
            Node::File(_) => {
                state.dir_mut(parent)?.live.remove(&name);
                Ok(())
            }
            Node::Dir => Err(io::Error::other(format!("{} is a directory", path.display()))),
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        let node = state.lookup(from)?;
        if node == Node::Dir {
            return Err(io::Error::other(format!("{}: renaming directories", from.display())));
        }
        let (from_parent, from_name) = split(from)?;
        let (to_parent, to_name) = split(to)?;
        state.dir_mut(to_parent)?;
        state.dir_mut(from_parent)?.live.remove(&from_name);
        state.dir_mut(to_parent)?.live.insert(to_name, node);
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        state.dir_mut(path)?;
        state.count_sync()?;
        let dir = state.dir_mut(path)?;
        dir.durable = dir.live.clone();
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FsLock>> {
        if self.lookup_exists(path)? {
            // An existing lock file: fine, the lock is separate from the file.
        } else {
            self.open(path, OpenMode::CreateNew)?;
        }
        let mut state = self.lock_state();
        if !state.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is locked by another holder", path.display()),
            ));
        }
        Ok(Box::new(FaultLock {
            fs: self.clone(),
            path: path.to_path_buf(),
            generation: state.generation,
        }))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.lookup_exists(path)
    }
}

impl FaultFs {
    fn lookup_exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.lock_state();
        if state.dirs.contains_key(path) {
            return Ok(true);
        }
        match state.lookup(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (FaultFs, PathBuf) {
        let fs = FaultFs::new();
        let dir = PathBuf::from("/db/wal");
        fs.create_dir_all(&dir).unwrap();
        (fs, dir)
    }

    fn create_durable(fs: &FaultFs, path: &Path, bytes: &[u8]) -> Box<dyn FsFile> {
        let file = fs.open(path, OpenMode::CreateNew).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(path.parent().unwrap()).unwrap();
        file
    }

    #[test]
    fn crash_drops_unsynced_bytes_and_names() {
        let (fs, dir) = setup();
        let a = create_durable(&fs, &dir.join("a"), b"durable");
        a.write_all_at(b"-lost", 7).unwrap();
        let b = fs.open(&dir.join("b"), OpenMode::CreateNew).unwrap();
        b.write_all_at(b"x", 0).unwrap();
        b.sync_data().unwrap(); // synced data, but the name was never made durable
        assert_eq!(fs.list_dir(&dir).unwrap(), ["a", "b"]);
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list_dir(&dir).unwrap(), ["a"]);
        assert_eq!(fs.read_file(&dir.join("a")).unwrap(), b"durable");
        assert!(a.len().is_err(), "handles die with the crash");
    }

    #[test]
    fn failed_sync_loses_its_writes_even_after_a_later_sync() {
        let (fs, dir) = setup();
        let f = create_durable(&fs, &dir.join("f"), b"aaaa");
        f.write_all_at(b"bb", 0).unwrap();
        fs.fail_sync_after(0);
        assert!(f.sync_data().is_err());
        f.write_all_at(b"c", 3).unwrap();
        f.sync_data().unwrap();
        assert_eq!(fs.read_file(&dir.join("f")).unwrap(), b"bbac", "the cache still shows it");
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_file(&dir.join("f")).unwrap(), b"aaac", "but the disk never got it");
    }

    #[test]
    fn torn_prefix_keeps_a_prefix_of_the_writes() {
        for seed in 0..50 {
            let (fs, dir) = setup();
            let f = create_durable(&fs, &dir.join("f"), b"");
            for (i, chunk) in [b"1111", b"2222", b"3333"].iter().enumerate() {
                f.write_all_at(*chunk, 4 * i as u64).unwrap();
            }
            fs.crash(CrashMode::TornPrefix { seed });
            let after = fs.read_file(&dir.join("f")).unwrap();
            assert!(b"111122223333".starts_with(&after), "seed {seed}: {after:?}");
        }
    }

    #[test]
    fn rename_and_remove_are_durable_only_after_dir_sync() {
        let (fs, dir) = setup();
        create_durable(&fs, &dir.join("tmp"), b"t");
        create_durable(&fs, &dir.join("old"), b"o");
        fs.rename(&dir.join("tmp"), &dir.join("new")).unwrap();
        fs.remove_file(&dir.join("old")).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list_dir(&dir).unwrap(), ["old", "tmp"]);
        fs.rename(&dir.join("tmp"), &dir.join("new")).unwrap();
        fs.remove_file(&dir.join("old")).unwrap();
        fs.sync_dir(&dir).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.list_dir(&dir).unwrap(), ["new"]);
        assert_eq!(fs.read_file(&dir.join("new")).unwrap(), b"t");
    }

    #[test]
    fn writeback_hints_are_counted_and_make_nothing_durable() {
        let (fs, dir) = setup();
        let f = create_durable(&fs, &dir.join("f"), b"durable");
        f.write_all_at(b"-lost", 7).unwrap();
        let (writes, syncs) = (fs.writes(), fs.syncs());
        f.start_writeback(0, 12).unwrap();
        assert_eq!((fs.writeback_hints(), fs.writes(), fs.syncs()), (1, writes, syncs));
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(fs.read_file(&dir.join("f")).unwrap(), b"durable");
        assert!(f.start_writeback(0, 1).is_err(), "handles die with the crash");
    }

    #[test]
    fn injected_write_failure_fires_once() {
        let (fs, dir) = setup();
        let f = create_durable(&fs, &dir.join("f"), b"");
        fs.fail_write_after(1);
        f.write_all_at(b"a", 0).unwrap();
        assert!(f.write_all_at(b"b", 1).is_err());
        f.write_all_at(b"c", 1).unwrap();
        assert_eq!(fs.read_file(&dir.join("f")).unwrap(), b"ac");
    }

    #[test]
    fn capacity_gives_enospc_without_partial_writes() {
        let (fs, dir) = setup();
        let f = create_durable(&fs, &dir.join("f"), b"12345");
        fs.set_capacity_bytes(Some(8));
        f.write_all_at(b"678", 5).unwrap();
        let err = f.write_all_at(b"9", 8).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert!(f.allocate(100).is_err());
        f.write_all_at(b"x", 0).unwrap(); // overwriting needs no space
        assert_eq!(fs.read_file(&dir.join("f")).unwrap(), b"x2345678");
    }

    #[test]
    fn locks_are_exclusive_and_die_with_a_crash() {
        let (fs, dir) = setup();
        let path = dir.join("LOCK");
        let held = fs.lock(&path).unwrap();
        assert_eq!(fs.lock(&path).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        fs.crash(CrashMode::DropUnsynced);
        let again = fs.lock(&path).unwrap();
        drop(held); // a dead holder's drop does not release the new holder's lock
        assert_eq!(fs.lock(&path).unwrap_err().kind(), io::ErrorKind::WouldBlock);
        drop(again);
        fs.lock(&path).unwrap();
    }
}
