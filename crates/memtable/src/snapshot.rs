//! A read-only view of a memtable, and iteration over it by key range.

use std::cmp::Ordering;
use std::iter::FusedIterator;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use logstore_entry::{Entry, Key};

use crate::Stats;
use crate::chunk::Chunk;

/// An immutable view of a memtable: every entry inserted before it was taken, in key order.
///
/// Cheap to clone (a few `Arc`s), `Send + Sync`, and independent of the writer: holding one
/// never blocks inserts, and what it shows never changes. A frozen memtable
/// ([`Memtable::freeze`](crate::Memtable::freeze)) is its final snapshot.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) sealed: Arc<Vec<Arc<Chunk>>>,
    /// A copy of the open chunk (absent when empty).
    pub(crate) open: Option<Arc<Chunk>>,
    pub(crate) runs: Arc<Vec<Arc<Chunk>>>,
    /// A copy of the straggler buffer (absent when empty).
    pub(crate) buffer: Option<Arc<Chunk>>,
    pub(crate) stats: Stats,
}

impl Snapshot {
    /// Entries in the snapshot.
    pub fn len(&self) -> usize {
        self.stats.entries
    }

    /// Whether the snapshot holds no entry.
    pub fn is_empty(&self) -> bool {
        self.stats.entries == 0
    }

    /// Bytes of memory the memtable held when the snapshot was taken ([`Stats::bytes`]).
    pub fn bytes(&self) -> usize {
        self.stats.bytes
    }

    /// Bytes of entry text (messages plus metadata) in the snapshot.
    pub fn payload_bytes(&self) -> usize {
        self.stats.payload_bytes
    }

    /// All the counters as of the snapshot.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The sorted sequences the entries are in: the in-order log, then each straggler run,
    /// then the straggler buffer (indexes `0..sequence_count()`). Keys are unique across all
    /// of them; a sequence may be empty.
    fn sequence(&self, index: usize) -> Sequence<'_> {
        match index {
            0 => Sequence { head: &self.sealed, tail: self.open.as_slice() },
            i if i <= self.runs.len() => {
                Sequence { head: std::slice::from_ref(&self.runs[i - 1]), tail: &[] }
            }
            _ => Sequence { head: self.buffer.as_slice(), tail: &[] },
        }
    }

    fn sequence_count(&self) -> usize {
        self.runs.len() + 2
    }

    fn sequences(&self) -> impl Iterator<Item = Sequence<'_>> {
        (0..self.sequence_count()).map(|index| self.sequence(index)).filter(|s| s.len() > 0)
    }

    /// The entry with `key`, borrowing its text from the snapshot: O(log n) per sorted
    /// sequence (one, plus one per straggler run).
    pub fn get(&self, key: Key) -> Option<Entry<'_>> {
        self.sequences().find_map(|sequence| {
            let at = sequence.seek(|k| *k < key);
            let chunk = sequence.chunk_at(at)?;
            (chunk.key(at.slot) == key).then(|| chunk.entry(at.slot))
        })
    }

    /// Entries with keys in `range`, ascending; `.rev()` gives them descending, and both ends
    /// can be consumed alternately. An empty or inverted range yields nothing.
    ///
    /// Costs one allocation (a cursor per sorted sequence) and O(log n) per sequence to find
    /// the bounds; each step then compares the keys at the heads of the sequences.
    pub fn range(&self, range: impl RangeBounds<Key>) -> Range<'_> {
        Range { snapshot: self, heads: Heads::new(self, range) }
    }

    /// A cursor over the entries with keys in `range`, ascending or `descending`, that owns
    /// this snapshot (clone it first to keep one: a few `Arc`s): it is `'static` and `Send`,
    /// unlike [`Range`], and lends each entry from the snapshot without copying it. Same costs
    /// as [`range`](Self::range).
    pub fn into_cursor(self, range: impl RangeBounds<Key>, descending: bool) -> SnapshotCursor {
        let mut heads = Heads::new(&self, range);
        let current = if descending { heads.next_back(&self) } else { heads.next(&self) };
        SnapshotCursor { snapshot: self, heads, descending, current }
    }

    /// Every entry, ascending (`.rev()` for descending).
    pub fn iter(&self) -> Range<'_> {
        self.range(..)
    }
}

impl<'s> IntoIterator for &'s Snapshot {
    type Item = Entry<'s>;
    type IntoIter = Range<'s>;

    fn into_iter(self) -> Range<'s> {
        self.iter()
    }
}

/// A place in a [`Sequence`]: chunk index, then slot index. Valid positions have
/// `slot < len(chunk)`; the end is `(chunks, 0)`. Ordered like the entries they point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Position {
    chunk: usize,
    slot: usize,
}

impl Position {
    const START: Position = Position { chunk: 0, slot: 0 };
}

/// Sorted, non-empty chunks with increasing, disjoint key ranges: `head` then `tail`.
#[derive(Clone, Copy, Debug)]
struct Sequence<'s> {
    head: &'s [Arc<Chunk>],
    tail: &'s [Arc<Chunk>],
}

impl<'s> Sequence<'s> {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    fn chunk(&self, index: usize) -> &'s Chunk {
        match self.head.get(index) {
            Some(chunk) => chunk,
            None => &self.tail[index - self.head.len()],
        }
    }

    fn chunk_at(&self, at: Position) -> Option<&'s Chunk> {
        (at.chunk < self.len()).then(|| self.chunk(at.chunk))
    }

    fn end(&self) -> Position {
        Position { chunk: self.len(), slot: 0 }
    }

    /// The first position whose key is not `before` the target; `before` is true for a prefix
    /// of the keys.
    fn seek(&self, before: impl Fn(&Key) -> bool) -> Position {
        // The first chunk whose last key is not before: binary search over the chunks.
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.chunk(mid).last_key() {
                Some(last) if before(&last) => lo = mid + 1,
                _ => hi = mid,
            }
        }
        if lo == self.len() {
            return self.end();
        }
        Position { chunk: lo, slot: self.chunk(lo).partition_point(before) }
    }

    fn key(&self, at: Position) -> Key {
        self.chunk(at.chunk).key(at.slot)
    }

    fn entry(&self, at: Position) -> Entry<'s> {
        self.chunk(at.chunk).entry(at.slot)
    }

    fn next(&self, at: Position) -> Position {
        if at.slot + 1 < self.chunk(at.chunk).len() {
            Position { slot: at.slot + 1, ..at }
        } else {
            Position { chunk: at.chunk + 1, slot: 0 }
        }
    }

    fn previous(&self, at: Position) -> Position {
        if at.slot > 0 {
            Position { slot: at.slot - 1, ..at }
        } else {
            let chunk = at.chunk - 1;
            Position { chunk, slot: self.chunk(chunk).len() - 1 }
        }
    }
}

/// The part of one sequence still to be yielded: `front..back`, never empty.
#[derive(Clone, Debug)]
struct Cursor {
    /// Which of the snapshot's sequences ([`Snapshot::sequence`]).
    sequence: usize,
    front: Position,
    back: Position,
}

/// What is left of a range: a cursor per sorted sequence with entries left (exhausted ones are
/// removed). It names sequences by index, so [`Range`] (borrowing its snapshot) and
/// [`SnapshotCursor`] (owning one) share it.
#[derive(Clone, Debug)]
struct Heads {
    cursors: Vec<Cursor>,
}

impl Heads {
    fn new(snapshot: &Snapshot, range: impl RangeBounds<Key>) -> Heads {
        let cursors = (0..snapshot.sequence_count())
            .filter_map(|index| {
                let sequence = snapshot.sequence(index);
                let front = match range.start_bound() {
                    Bound::Included(start) => sequence.seek(|k| k < start),
                    Bound::Excluded(start) => sequence.seek(|k| k <= start),
                    Bound::Unbounded => Position::START,
                };
                let back = match range.end_bound() {
                    Bound::Included(end) => sequence.seek(|k| k <= end),
                    Bound::Excluded(end) => sequence.seek(|k| k < end),
                    Bound::Unbounded => sequence.end(),
                };
                (front < back).then_some(Cursor { sequence: index, front, back })
            })
            .collect();
        Heads { cursors }
    }

    /// The cursor whose next key (from the front, or from the back) comes first in that
    /// direction.
    fn pick(&self, order: Ordering, key_of: impl Fn(&Cursor) -> Key) -> Option<usize> {
        let mut best: Option<(usize, Key)> = None;
        for (index, cursor) in self.cursors.iter().enumerate() {
            let key = key_of(cursor);
            if best.is_none_or(|(_, best_key)| key.cmp(&best_key) == order) {
                best = Some((index, key));
            }
        }
        best.map(|(index, _)| index)
    }

    /// Takes the smallest entry left: its sequence and position.
    fn next(&mut self, snapshot: &Snapshot) -> Option<(usize, Position)> {
        let index = self.pick(Ordering::Less, |c| snapshot.sequence(c.sequence).key(c.front))?;
        let cursor = &mut self.cursors[index];
        let taken = (cursor.sequence, cursor.front);
        cursor.front = snapshot.sequence(cursor.sequence).next(cursor.front);
        if cursor.front >= cursor.back {
            self.cursors.swap_remove(index);
        }
        Some(taken)
    }

    /// Takes the largest entry left: its sequence and position.
    fn next_back(&mut self, snapshot: &Snapshot) -> Option<(usize, Position)> {
        let index = self.pick(Ordering::Greater, |c| {
            let sequence = snapshot.sequence(c.sequence);
            sequence.key(sequence.previous(c.back))
        })?;
        let cursor = &mut self.cursors[index];
        cursor.back = snapshot.sequence(cursor.sequence).previous(cursor.back);
        let taken = (cursor.sequence, cursor.back);
        if cursor.front >= cursor.back {
            self.cursors.swap_remove(index);
        }
        Some(taken)
    }
}

/// Entries of a [`Snapshot`] in a key range, in key order; double-ended.
///
/// Made by [`Snapshot::range`] and [`Snapshot::iter`]. The entries borrow their text from the
/// snapshot.
#[derive(Clone, Debug)]
pub struct Range<'s> {
    snapshot: &'s Snapshot,
    heads: Heads,
}

impl<'s> Iterator for Range<'s> {
    type Item = Entry<'s>;

    fn next(&mut self) -> Option<Entry<'s>> {
        let (sequence, at) = self.heads.next(self.snapshot)?;
        Some(self.snapshot.sequence(sequence).entry(at))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(!self.heads.cursors.is_empty()), None)
    }
}

impl<'s> DoubleEndedIterator for Range<'s> {
    fn next_back(&mut self) -> Option<Entry<'s>> {
        let (sequence, at) = self.heads.next_back(self.snapshot)?;
        Some(self.snapshot.sequence(sequence).entry(at))
    }
}

impl FusedIterator for Range<'_> {}

/// A cursor over a key range of a snapshot it owns, in one direction: made by
/// [`Snapshot::into_cursor`]. It lends the current entry ([`entry`](Self::entry)) from the
/// snapshot's chunks, so reading allocates nothing per entry.
///
/// ```
/// use logstore_entry::{Entry, Key};
/// use logstore_memtable::{Allocation, Memtable};
///
/// let mut memtable = Memtable::with_allocation(Allocation::Heap);
/// for seq in 1..=4 {
///     memtable.insert(&Entry::new(Key::new(seq, seq), format!("m{seq}"), None::<&str>))?;
/// }
/// let mut cursor = memtable.reader().snapshot().into_cursor(Key::new(2, 0).., true);
/// let mut messages = Vec::new();
/// while let Some(entry) = cursor.entry() {
///     messages.push(entry.message.into_owned());
///     cursor.advance();
/// }
/// assert_eq!(messages, ["m4", "m3", "m2"]);
/// # Ok::<(), logstore_memtable::MemtableError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SnapshotCursor {
    snapshot: Snapshot,
    heads: Heads,
    descending: bool,
    /// The current entry's sequence and position; `None` once exhausted.
    current: Option<(usize, Position)>,
}

impl SnapshotCursor {
    /// The current entry's key, or `None` once the range is exhausted.
    #[inline]
    pub fn key(&self) -> Option<Key> {
        let (sequence, at) = self.current?;
        Some(self.snapshot.sequence(sequence).key(at))
    }

    /// The current entry, borrowing its text from the snapshot, or `None` once exhausted.
    #[inline]
    pub fn entry(&self) -> Option<Entry<'_>> {
        let (sequence, at) = self.current?;
        Some(self.snapshot.sequence(sequence).entry(at))
    }

    /// Moves to the next entry in the cursor's direction (a no-op once exhausted).
    #[inline]
    pub fn advance(&mut self) {
        if self.current.is_some() {
            self.current = if self.descending {
                self.heads.next_back(&self.snapshot)
            } else {
                self.heads.next(&self.snapshot)
            };
        }
    }
}
