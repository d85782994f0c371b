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
    /// then the straggler buffer. Keys are unique across all of them.
    fn sequences(&self) -> impl Iterator<Item = Sequence<'_>> {
        let log = Sequence { head: &self.sealed, tail: self.open.as_slice() };
        let runs =
            self.runs.iter().map(|run| Sequence { head: std::slice::from_ref(run), tail: &[] });
        let buffer = Sequence { head: self.buffer.as_slice(), tail: &[] };
        std::iter::once(log).chain(runs).chain([buffer]).filter(|s| s.len() > 0)
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
        let cursors = self
            .sequences()
            .filter_map(|sequence| {
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
                (front < back).then_some(Cursor { sequence, front, back })
            })
            .collect();
        Range { cursors }
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
struct Cursor<'s> {
    sequence: Sequence<'s>,
    front: Position,
    back: Position,
}

/// Entries of a [`Snapshot`] in a key range, in key order; double-ended.
///
/// Made by [`Snapshot::range`] and [`Snapshot::iter`]. The entries borrow their text from the
/// snapshot.
#[derive(Clone, Debug)]
pub struct Range<'s> {
    /// One per sorted sequence with entries left; exhausted cursors are removed.
    cursors: Vec<Cursor<'s>>,
}

impl<'s> Range<'s> {
    /// The cursor whose next key (from the front, or from the back) comes first in that
    /// direction.
    fn pick(&self, order: Ordering, key_of: impl Fn(&Cursor<'s>) -> Key) -> Option<usize> {
        let mut best: Option<(usize, Key)> = None;
        for (index, cursor) in self.cursors.iter().enumerate() {
            let key = key_of(cursor);
            if best.is_none_or(|(_, best_key)| key.cmp(&best_key) == order) {
                best = Some((index, key));
            }
        }
        best.map(|(index, _)| index)
    }
}

impl<'s> Iterator for Range<'s> {
    type Item = Entry<'s>;

    fn next(&mut self) -> Option<Entry<'s>> {
        let index = self.pick(Ordering::Less, |c| c.sequence.key(c.front))?;
        let cursor = &mut self.cursors[index];
        let entry = cursor.sequence.entry(cursor.front);
        cursor.front = cursor.sequence.next(cursor.front);
        if cursor.front >= cursor.back {
            self.cursors.swap_remove(index);
        }
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(!self.cursors.is_empty()), None)
    }
}

impl<'s> DoubleEndedIterator for Range<'s> {
    fn next_back(&mut self) -> Option<Entry<'s>> {
        let index =
            self.pick(Ordering::Greater, |c| c.sequence.key(c.sequence.previous(c.back)))?;
        let cursor = &mut self.cursors[index];
        cursor.back = cursor.sequence.previous(cursor.back);
        let entry = cursor.sequence.entry(cursor.back);
        if cursor.front >= cursor.back {
            self.cursors.swap_remove(index);
        }
        Some(entry)
    }
}

impl FusedIterator for Range<'_> {}
