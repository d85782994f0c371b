//! The writer's handle, the state it shares with readers, and the readers' handle.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use logstore_entry::{Entry, Key};

use crate::chunk::{Chunk, PendingText};
use crate::{Allocation, MemtableError, MemtableOptions, Snapshot, Stats};

/// Everything readers can see, behind one mutex. Every entry is in exactly one place at every
/// moment a reader can observe: the in-order log (`sealed`, then `open`) or the stragglers
/// (`runs`, then `buffer`).
#[derive(Debug)]
pub(crate) struct State {
    /// Full chunks of the in-order log, in key order. Shared with snapshots; the writer
    /// appends with `Arc::make_mut`, which copies the list only if a snapshot holds it.
    pub(crate) sealed: Arc<Vec<Arc<Chunk>>>,
    /// The chunk being appended to; its keys follow every key in `sealed`.
    pub(crate) open: Chunk,
    /// A reader's copy of `open`, reused until the next insert into it.
    pub(crate) open_copy: Option<Arc<Chunk>>,
    /// Sorted runs of stragglers, each at least twice the size of the next.
    pub(crate) runs: Arc<Vec<Arc<Chunk>>>,
    /// Stragglers not yet in a run, sorted.
    pub(crate) buffer: Chunk,
    /// A reader's copy of `buffer`, reused until the next insert into it.
    pub(crate) buffer_copy: Option<Arc<Chunk>>,
    /// [`Chunk::heap_bytes`] summed over `sealed`.
    sealed_bytes: usize,
    /// [`Chunk::heap_bytes`] summed over `runs`.
    runs_bytes: usize,
    pub(crate) stats: Stats,
}

impl State {
    /// A snapshot: `Arc` clones, plus a copy of `open` and `buffer` unless an earlier reader's
    /// copy is still current.
    pub(crate) fn snapshot(&mut self) -> Snapshot {
        fn copy_of(chunk: &Chunk, copy: &mut Option<Arc<Chunk>>) -> Option<Arc<Chunk>> {
            if chunk.is_empty() {
                return None;
            }
            Some(Arc::clone(copy.get_or_insert_with(|| Arc::new(chunk.copy()))))
        }
        Snapshot {
            sealed: Arc::clone(&self.sealed),
            open: copy_of(&self.open, &mut self.open_copy),
            runs: Arc::clone(&self.runs),
            buffer: copy_of(&self.buffer, &mut self.buffer_copy),
            stats: self.stats,
        }
    }

    /// Whether `key` is anywhere in the memtable: O(log n) per run.
    fn contains(&self, key: Key) -> bool {
        // In the log, only the first chunk whose last key is not below `key` can hold it.
        let index = self.sealed.partition_point(|c| c.last_key() < Some(key));
        let in_log = match self.sealed.get(index) {
            Some(chunk) => chunk.find(key).is_some(),
            None => self.open.find(key).is_some(),
        };
        in_log
            || self.runs.iter().any(|run| run.find(key).is_some())
            || self.buffer.find(key).is_some()
    }

    /// Recomputes [`Stats::bytes`] after a change.
    fn refresh_bytes(&mut self) {
        let live = |chunk: &Chunk| if chunk.is_allocated() { chunk.heap_bytes() } else { 0 };
        self.stats.bytes =
            self.sealed_bytes + self.runs_bytes + live(&self.open) + live(&self.buffer);
    }

    fn seal_open(&mut self) {
        let chunk = self.open.take();
        self.sealed_bytes += chunk.heap_bytes();
        self.stats.chunks += 1;
        Arc::make_mut(&mut self.sealed).push(Arc::new(chunk));
        self.open_copy = None;
    }

    fn seal_buffer(&mut self) {
        let chunk = self.buffer.take();
        self.runs_bytes += chunk.heap_bytes();
        self.stats.runs += 1;
        Arc::make_mut(&mut self.runs).push(Arc::new(chunk));
        self.buffer_copy = None;
    }
}

/// The state behind its lock.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state. No code panics while holding the lock (allocation failure aborts), so a
    /// poisoned lock still guards a consistent state and is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The writing end of a memtable: the only handle that inserts.
///
/// See the [crate docs](crate) for the concurrency contract and what each operation costs.
#[derive(Debug)]
pub struct Memtable {
    shared: Arc<Shared>,
    options: MemtableOptions,
    /// Joins message and metadata before a heap-strategy allocation; reused.
    scratch: String,
    /// The largest key inserted: the last key of the in-order log.
    last_key: Option<Key>,
    /// The writer's copy of the counters (the same as `State::stats`, readable without a lock).
    stats: Stats,
}

impl Default for Memtable {
    fn default() -> Self {
        Memtable::with_allocation(Allocation::default())
    }
}

impl Memtable {
    /// An empty memtable with the default options and `allocation`.
    pub fn with_allocation(allocation: Allocation) -> Self {
        Memtable::from_valid_options(MemtableOptions::with_allocation(allocation))
    }

    /// An empty memtable with `options`, or an error naming the option that is not usable.
    pub fn new(options: MemtableOptions) -> Result<Self, MemtableError> {
        options.validate()?;
        Ok(Memtable::from_valid_options(options))
    }

    fn from_valid_options(options: MemtableOptions) -> Self {
        let allocation = options.allocation;
        let state = State {
            sealed: Arc::new(Vec::new()),
            open: Chunk::unallocated(allocation),
            open_copy: None,
            runs: Arc::new(Vec::new()),
            buffer: Chunk::unallocated(allocation),
            buffer_copy: None,
            sealed_bytes: 0,
            runs_bytes: 0,
            stats: Stats::default(),
        };
        Memtable {
            shared: Arc::new(Shared { state: Mutex::new(state) }),
            options,
            scratch: String::new(),
            last_key: None,
            stats: Stats::default(),
        }
    }

    /// The options this memtable was made with.
    pub fn options(&self) -> &MemtableOptions {
        &self.options
    }

    /// Entries inserted.
    pub fn len(&self) -> usize {
        self.stats.entries
    }

    /// Whether nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.stats.entries == 0
    }

    /// Bytes of memory held for the entries: see [`Stats::bytes`].
    pub fn bytes(&self) -> usize {
        self.stats.bytes
    }

    /// Bytes of entry text (messages plus metadata) inserted.
    pub fn payload_bytes(&self) -> usize {
        self.stats.payload_bytes
    }

    /// All the counters at once.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Copies `entry` into the memtable.
    ///
    /// A key larger than every key so far (the common case: the store assigns increasing keys)
    /// is appended in O(1). A smaller key, a *straggler*, goes to a sorted buffer, O(log n)
    /// amortised; see the [crate docs](crate).
    ///
    /// Refuses a key already present and an entry that would pass
    /// [`MemtableOptions::entries_max`] or [`MemtableOptions::payload_bytes_max`]; the memtable
    /// is unchanged then. Entry limits ([`logstore_entry::Limits`]) are the caller's to check.
    pub fn insert(&mut self, entry: &Entry<'_>) -> Result<(), MemtableError> {
        let key = entry.key;
        let entry_bytes = entry.payload_bytes();
        if self.stats.entries >= self.options.entries_max {
            return Err(MemtableError::TooManyEntries {
                entries: self.stats.entries,
                limit_entries: self.options.entries_max,
            });
        }
        if entry_bytes > self.options.payload_bytes_max - self.stats.payload_bytes {
            return Err(MemtableError::TooManyBytes {
                payload_bytes: self.stats.payload_bytes,
                entry_bytes,
                limit_bytes: self.options.payload_bytes_max,
            });
        }
        let straggler = match self.last_key {
            Some(last) if key == last => return Err(MemtableError::DuplicateKey { key }),
            Some(last) => key < last,
            None => false,
        };
        // The heap strategy allocates here, before the lock is taken.
        let text = PendingText::new(self.options.allocation, entry, &mut self.scratch);
        let merge_runs = {
            let mut state = self.shared.lock();
            let merge_runs = if straggler {
                if state.contains(key) {
                    return Err(MemtableError::DuplicateKey { key });
                }
                self.insert_straggler(&mut state, key, text, entry_bytes)
            } else {
                self.append(&mut state, key, text, entry_bytes);
                false
            };
            state.stats.entries += 1;
            state.stats.payload_bytes += entry_bytes;
            state.stats.stragglers += usize::from(straggler);
            state.refresh_bytes();
            self.stats = state.stats;
            merge_runs
        };
        if !straggler {
            self.last_key = Some(key);
        }
        if merge_runs {
            self.merge_runs();
        }
        Ok(())
    }

    /// Appends to the open chunk, sealing it first if the entry does not fit and after if it is
    /// full.
    fn append(&self, state: &mut State, key: Key, text: PendingText<'_>, entry_bytes: usize) {
        if !state.open.is_empty() && !state.open.has_room(entry_bytes) {
            state.seal_open();
        }
        if !state.open.is_allocated() {
            state.open = self.new_chunk(entry_bytes);
        }
        let at = state.open.len();
        state.open.insert(at, key, text);
        state.open_copy = None;
        if state.open.is_full(self.options.chunk_text_bytes) {
            state.seal_open();
        }
    }

    /// Puts a straggler in the sorted buffer; the buffer becomes a run when full. Returns
    /// whether runs may need merging.
    fn insert_straggler(
        &self,
        state: &mut State,
        key: Key,
        text: PendingText<'_>,
        entry_bytes: usize,
    ) -> bool {
        let mut sealed = false;
        if !state.buffer.is_empty() && !state.buffer.has_room(entry_bytes) {
            state.seal_buffer();
            sealed = true;
        }
        if !state.buffer.is_allocated() {
            state.buffer = self.new_chunk(entry_bytes);
        }
        let at = state.buffer.partition_point(|k| *k < key);
        state.buffer.insert(at, key, text);
        state.buffer_copy = None;
        if state.buffer.is_full(self.options.chunk_text_bytes) {
            state.seal_buffer();
            sealed = true;
        }
        sealed
    }

    /// A chunk of the configured capacity, or larger for one oversized entry.
    fn new_chunk(&self, entry_bytes: usize) -> Chunk {
        let text_bytes = self.options.chunk_text_bytes.max(entry_bytes);
        Chunk::with_capacity(self.options.allocation, self.options.chunk_entries_max, text_bytes)
    }

    /// Merges the two newest runs while the older is less than twice the newer, so the run
    /// sizes at least halve from oldest to newest: at most log2(stragglers / chunk) + 1 runs,
    /// and each straggler is copied O(log n) times over the memtable's life.
    ///
    /// The merge itself runs without the lock (the writer is the only one who changes runs);
    /// the lock is taken to read the two runs and to swap in the result.
    fn merge_runs(&mut self) {
        loop {
            let (older, newer) = {
                let state = self.shared.lock();
                match state.runs.as_slice() {
                    [.., older, newer] if older.len() < 2 * newer.len() => {
                        (Arc::clone(older), Arc::clone(newer))
                    }
                    _ => return,
                }
            };
            let merged = Chunk::merge(&older, &newer);
            let mut state = self.shared.lock();
            state.runs_bytes =
                state.runs_bytes + merged.heap_bytes() - older.heap_bytes() - newer.heap_bytes();
            state.stats.runs -= 1;
            let runs = Arc::make_mut(&mut state.runs);
            runs.truncate(runs.len() - 2);
            runs.push(Arc::new(merged));
            state.refresh_bytes();
            self.stats = state.stats;
        }
    }

    /// A consistent view of every entry inserted so far; see [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().snapshot()
    }

    /// A handle other threads use to take snapshots while this writer inserts.
    pub fn reader(&self) -> MemtableReader {
        MemtableReader { shared: Arc::clone(&self.shared) }
    }

    /// Ends writing: seals the open chunk and the straggler buffer (without copying them) and
    /// returns the final snapshot, which the engine flushes and shares with readers meanwhile.
    /// Readers made by [`reader`](Memtable::reader) keep working and see the same entries.
    ///
    /// The text is freed when the last snapshot and reader are dropped: in the arena strategy,
    /// one deallocation per chunk.
    pub fn freeze(self) -> Snapshot {
        let mut state = self.shared.lock();
        if !state.open.is_empty() {
            state.seal_open();
        }
        if !state.buffer.is_empty() {
            state.seal_buffer();
        }
        state.refresh_bytes();
        state.snapshot()
    }
}

/// A handle for readers of a memtable: `Clone + Send + Sync`, cheap to clone.
#[derive(Clone, Debug)]
pub struct MemtableReader {
    shared: Arc<Shared>,
}

impl MemtableReader {
    /// A consistent view of every entry inserted before this call; see [`Snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{ARC_HEADER_BYTES, CHUNK_OVERHEAD_BYTES, SLOT_BYTES};

    fn entry(ts: u64, message: &str) -> Entry<'_> {
        Entry::new(Key::new(ts, ts), message, None::<&str>)
    }

    fn small(allocation: Allocation) -> Memtable {
        let options = MemtableOptions {
            allocation,
            chunk_entries_max: 4,
            chunk_text_bytes: 100,
            ..MemtableOptions::default()
        };
        Memtable::new(options).unwrap()
    }

    fn keys(snapshot: &Snapshot) -> Vec<u64> {
        snapshot.iter().map(|e| e.key.timestamp_ms).collect()
    }

    #[test]
    fn arena_bytes_count_full_chunks() {
        let mut memtable = small(Allocation::Arena);
        assert_eq!(memtable.bytes(), 0);
        let chunk_bytes = CHUNK_OVERHEAD_BYTES + 4 * SLOT_BYTES + 100;
        memtable.insert(&entry(1, "0123456789")).unwrap();
        assert_eq!(memtable.bytes(), chunk_bytes);
        for ts in 2..=4 {
            memtable.insert(&entry(ts, "0123456789")).unwrap();
        }
        // Four slots used: the chunk is sealed; no open chunk is allocated until the next insert.
        assert_eq!(memtable.stats().chunks, 1);
        assert_eq!(memtable.bytes(), chunk_bytes);
        // 150 bytes do not fit in a 100-byte arena: a chunk of its own, sized to fit.
        memtable.insert(&entry(5, &"x".repeat(150))).unwrap();
        assert_eq!(memtable.stats().chunks, 2);
        assert_eq!(memtable.bytes(), chunk_bytes + CHUNK_OVERHEAD_BYTES + 4 * SLOT_BYTES + 150);
        assert_eq!(memtable.payload_bytes(), 40 + 150);
        assert_eq!(memtable.len(), 5);
        let snapshot = memtable.snapshot();
        assert_eq!(snapshot.stats(), memtable.stats());
        assert_eq!(keys(&snapshot), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn heap_bytes_count_each_allocation() {
        let mut memtable = small(Allocation::Heap);
        memtable.insert(&entry(1, "0123456789")).unwrap();
        memtable.insert(&Entry::new(Key::new(2, 2), "abc", Some("{}"))).unwrap();
        let expected = CHUNK_OVERHEAD_BYTES
            + 4 * SLOT_BYTES
            + (10 + ARC_HEADER_BYTES)
            + (5 + ARC_HEADER_BYTES);
        assert_eq!(memtable.bytes(), expected);
        assert_eq!(memtable.payload_bytes(), 15);
    }

    #[test]
    fn bytes_follow_straggler_merges() {
        for allocation in [Allocation::Heap, Allocation::Arena] {
            let mut memtable = small(allocation);
            memtable.insert(&entry(1_000, "last")).unwrap();
            for ts in (0..40).rev() {
                memtable.insert(&entry(ts, "straggler")).unwrap();
            }
            let stats = memtable.stats();
            assert_eq!(stats.stragglers, 40);
            // 40 stragglers in runs of 4: 10 runs merged down to a binary-counter shape.
            assert!(stats.runs <= 4, "{stats:?}");
            // Recount from the structure: every sealed chunk and run, plus the open chunk.
            let state = memtable.shared.lock();
            let counted: usize =
                state.sealed.iter().chain(state.runs.iter()).map(|c| c.heap_bytes()).sum::<usize>()
                    + state.open.heap_bytes() * usize::from(state.open.is_allocated())
                    + state.buffer.heap_bytes() * usize::from(state.buffer.is_allocated());
            assert_eq!(counted, stats.bytes);
            drop(state);
            let mut expected: Vec<u64> = (0..40).collect();
            expected.push(1_000);
            assert_eq!(keys(&memtable.snapshot()), expected);
        }
    }

    #[test]
    fn duplicate_keys_are_refused_wherever_they_are() {
        let mut memtable = small(Allocation::Arena);
        for ts in [10, 20, 30, 40, 50, 5, 15] {
            memtable.insert(&entry(ts, "m")).unwrap();
        }
        let before = memtable.stats();
        for ts in [50, 10, 40, 5, 15] {
            assert_eq!(
                memtable.insert(&entry(ts, "again")),
                Err(MemtableError::DuplicateKey { key: Key::new(ts, ts) })
            );
        }
        assert_eq!(memtable.stats(), before);
        assert_eq!(memtable.snapshot().get(Key::new(15, 15)).unwrap().message, "m");
    }

    #[test]
    fn limits_refuse_and_leave_the_memtable_unchanged() {
        let options =
            MemtableOptions { entries_max: 2, payload_bytes_max: 10, ..Default::default() };
        let mut memtable = Memtable::new(options).unwrap();
        memtable.insert(&entry(1, "12345")).unwrap();
        assert_eq!(
            memtable.insert(&entry(2, "123456")),
            Err(MemtableError::TooManyBytes { payload_bytes: 5, entry_bytes: 6, limit_bytes: 10 })
        );
        memtable.insert(&entry(2, "12345")).unwrap();
        assert_eq!(
            memtable.insert(&entry(3, "")),
            Err(MemtableError::TooManyEntries { entries: 2, limit_entries: 2 })
        );
        assert_eq!(keys(&memtable.snapshot()), [1, 2]);
    }

    #[test]
    fn invalid_options_are_named() {
        let cases = [
            (MemtableOptions { chunk_entries_max: 0, ..Default::default() }, "chunk_entries_max"),
            (MemtableOptions { chunk_text_bytes: 0, ..Default::default() }, "chunk_text_bytes"),
            (
                MemtableOptions { payload_bytes_max: u32::MAX as usize, ..Default::default() },
                "payload_bytes_max",
            ),
        ];
        for (options, field) in cases {
            match Memtable::new(options) {
                Err(MemtableError::InvalidOptions { detail }) => assert!(detail.contains(field)),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn snapshots_do_not_change_and_reuse_copies() {
        let mut memtable = small(Allocation::Arena);
        memtable.insert(&entry(1, "a")).unwrap();
        memtable.insert(&entry(3, "c")).unwrap();
        let first = memtable.snapshot();
        let again = memtable.snapshot();
        // No insert in between: both share the one copy of the open chunk.
        assert!(Arc::ptr_eq(first.open.as_ref().unwrap(), again.open.as_ref().unwrap()));
        memtable.insert(&entry(2, "b")).unwrap();
        memtable.insert(&entry(4, "d")).unwrap();
        assert_eq!(keys(&first), [1, 3]);
        assert_eq!(keys(&memtable.snapshot()), [1, 2, 3, 4]);
    }

    #[test]
    fn freeze_keeps_readers_working() {
        let mut memtable = small(Allocation::Heap);
        let reader = memtable.reader();
        for ts in [5, 6, 7, 1, 2] {
            memtable.insert(&entry(ts, "m")).unwrap();
        }
        let stats = memtable.stats();
        let frozen = memtable.freeze();
        assert_eq!(keys(&frozen), [1, 2, 5, 6, 7]);
        assert_eq!(keys(&reader.snapshot()), [1, 2, 5, 6, 7]);
        // Freezing seals without copying: the same entries, the same memory.
        assert_eq!(frozen.len(), stats.entries);
        assert_eq!(frozen.bytes(), stats.bytes);
        assert!(frozen.open.is_none() && frozen.buffer.is_none());
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send::<Memtable>();
        send_sync::<MemtableReader>();
        send_sync::<Snapshot>();
        send_sync::<crate::Range<'static>>();
    }
}
