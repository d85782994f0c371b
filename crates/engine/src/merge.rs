//! The read path's plumbing: every source of entries is a [`Cursor`], and one [`Merge`] turns
//! the memtables and tables a query touches into one sorted stream.
//!
//! A cursor *lends* its current entry (`entry(&self) -> Entry<'_>`), so entries read from a
//! table are decoded straight out of the block and never copied unless the caller keeps them.
//! Tables whose key ranges do not overlap are read one after another through a [`Chain`]
//! (logs arrive in time order, so nearly all tables of a store are disjoint): the heap only
//! merges the few sources that really overlap.

use crate::error::{Result, StoreError};
use logstore_entry::{Entry, Key};
use logstore_memtable::{Snapshot, SnapshotCursor};
use logstore_sstable::{Direction, Table, TableCursor};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::RangeInclusive;

/// A position in a sorted sequence of entries.
pub(crate) trait Cursor: Send {
    /// The current entry's key; `None` once exhausted.
    fn key(&self) -> Option<Key>;
    /// The current entry; `None` once exhausted.
    fn entry(&self) -> Option<Result<Entry<'_>>>;
    /// Moves to the next entry in the cursor's direction.
    fn advance(&mut self) -> Result<()>;
}

impl Cursor for TableCursor {
    #[inline]
    fn key(&self) -> Option<Key> {
        TableCursor::key(self)
    }
    #[inline]
    fn entry(&self) -> Option<Result<Entry<'_>>> {
        TableCursor::entry(self).map(|e| e.map_err(StoreError::from))
    }
    #[inline]
    fn advance(&mut self) -> Result<()> {
        Ok(TableCursor::advance(self)?)
    }
}

/// Tables with disjoint key ranges, read one after the other (each opened only when reached).
///
/// With the sparse index, each table is opened at the first block that can hold the range;
/// without it (`indexed: false`), each is scanned from its first entry in the reading
/// direction, and entries outside the range are skipped.
pub(crate) struct Chain {
    /// In reading order; the front one is open.
    tables: std::collections::VecDeque<Table>,
    current: Option<TableCursor>,
    range: RangeInclusive<Key>,
    direction: Direction,
    indexed: bool,
}

impl Chain {
    pub(crate) fn new(
        tables: Vec<Table>,
        range: RangeInclusive<Key>,
        direction: Direction,
        indexed: bool,
    ) -> Result<Chain> {
        let mut chain = Chain { tables: tables.into(), current: None, range, direction, indexed };
        chain.settle()?;
        Ok(chain)
    }

    /// Moves to the first entry in range, opening tables until one has it (or none is left).
    fn settle(&mut self) -> Result<()> {
        let (lo, hi) = (*self.range.start(), *self.range.end());
        let before_range = |key: Key| match self.direction {
            Direction::Forward => key < lo,
            Direction::Backward => key > hi,
        };
        loop {
            if let Some(cursor) = &mut self.current {
                match cursor.key() {
                    Some(key) if (lo..=hi).contains(&key) => return Ok(()),
                    // Only unindexed scans see keys before the range: skip them.
                    Some(key) if before_range(key) => {
                        cursor.advance()?;
                        continue;
                    }
                    // Past the range (or exhausted): this table is done.
                    _ => {}
                }
            }
            let Some(table) = self.tables.pop_front() else {
                self.current = None;
                return Ok(());
            };
            self.current = Some(if self.indexed {
                table.range(self.range.clone(), self.direction)?
            } else {
                table.scan(self.direction)?
            });
        }
    }
}

impl Cursor for Chain {
    #[inline]
    fn key(&self) -> Option<Key> {
        self.current.as_ref().and_then(TableCursor::key)
    }
    #[inline]
    fn entry(&self) -> Option<Result<Entry<'_>>> {
        Cursor::entry(self.current.as_ref()?)
    }
    #[inline]
    fn advance(&mut self) -> Result<()> {
        if let Some(current) = &mut self.current {
            current.advance()?;
            // An indexed cursor only yields keys of the range: while it has one, it is settled.
            if self.indexed && current.key().is_some() {
                return Ok(());
            }
        }
        self.settle()
    }
}

/// Groups tables into chains of disjoint key ranges, each in reading order: greedy first fit
/// over the tables sorted by where they start.
pub(crate) fn chains(mut tables: Vec<Table>, descending: bool) -> Vec<Vec<Table>> {
    tables.sort_by_key(|t| (t.min_key(), t.max_key()));
    let mut chains: Vec<Vec<Table>> = Vec::new();
    for table in tables {
        match chains
            .iter_mut()
            .find(|c| c.last().is_some_and(|last| last.max_key() < table.min_key()))
        {
            Some(chain) => chain.push(table),
            None => chains.push(vec![table]),
        }
    }
    if descending {
        chains.iter_mut().for_each(|c| c.reverse());
    }
    chains
}

/// Entries of a memtable snapshot within a key range, lent from the snapshot (no copy),
/// skipping entries not yet acknowledged (sequence number at or above `visible_below_seq`).
pub(crate) struct MemCursor {
    cursor: SnapshotCursor,
    visible_below_seq: u64,
}

impl MemCursor {
    pub(crate) fn new(
        snapshot: Snapshot,
        range: RangeInclusive<Key>,
        descending: bool,
        visible_below_seq: u64,
    ) -> MemCursor {
        let mut cursor =
            MemCursor { cursor: snapshot.into_cursor(range, descending), visible_below_seq };
        cursor.skip_unacknowledged();
        cursor
    }

    fn skip_unacknowledged(&mut self) {
        while self.cursor.key().is_some_and(|key| key.seq >= self.visible_below_seq) {
            self.cursor.advance();
        }
    }
}

impl Cursor for MemCursor {
    #[inline]
    fn key(&self) -> Option<Key> {
        self.cursor.key()
    }
    #[inline]
    fn entry(&self) -> Option<Result<Entry<'_>>> {
        self.cursor.entry().map(Ok)
    }
    #[inline]
    fn advance(&mut self) -> Result<()> {
        self.cursor.advance();
        self.skip_unacknowledged();
        Ok(())
    }
}

/// A query's sources: a memtable, or a chain of tables. An enum rather than `dyn Cursor`, so
/// that the merge's calls per entry are direct and inlined.
pub(crate) enum Source {
    Memory(MemCursor),
    Tables(Chain),
}

impl Cursor for Source {
    #[inline]
    fn key(&self) -> Option<Key> {
        match self {
            Source::Memory(cursor) => cursor.key(),
            Source::Tables(cursor) => cursor.key(),
        }
    }
    #[inline]
    fn entry(&self) -> Option<Result<Entry<'_>>> {
        match self {
            Source::Memory(cursor) => cursor.entry(),
            Source::Tables(cursor) => cursor.entry(),
        }
    }
    #[inline]
    fn advance(&mut self) -> Result<()> {
        match self {
            Source::Memory(cursor) => cursor.advance(),
            Source::Tables(cursor) => cursor.advance(),
        }
    }
}

/// Merges cursors into one sorted cursor with a binary heap: `O(log k)` per entry for `k`
/// cursors; with one cursor, a plain pass-through. Keys are unique across the sources of one
/// read (an entry lives in exactly one memtable or table of a version).
pub(crate) struct Merge<C> {
    cursors: Vec<C>,
    /// Cursors other than the current one that still have entries, by their next key.
    heap: BinaryHeap<Head>,
    current: Option<usize>,
    descending: bool,
}

#[derive(PartialEq, Eq)]
struct Head {
    order: Ordered,
    cursor: usize,
}

/// A key ordered so that the heap's greatest element is the next to read.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Ordered {
    Asc(Reverse<Key>),
    Desc(Key),
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order.cmp(&other.order)
    }
}

impl<C: Cursor> Merge<C> {
    pub(crate) fn new(cursors: Vec<C>, descending: bool) -> Merge<C> {
        let mut merge = Merge {
            heap: BinaryHeap::with_capacity(cursors.len()),
            cursors,
            current: None,
            descending,
        };
        for i in 0..merge.cursors.len() {
            merge.push(i);
        }
        merge.current = merge.heap.pop().map(|h| h.cursor);
        merge
    }

    fn push(&mut self, cursor: usize) {
        if let Some(key) = self.cursors[cursor].key() {
            let order =
                if self.descending { Ordered::Desc(key) } else { Ordered::Asc(Reverse(key)) };
            self.heap.push(Head { order, cursor });
        }
    }

    /// The current entry's key.
    #[cfg(test)]
    pub(crate) fn key(&self) -> Option<Key> {
        self.cursors[self.current?].key()
    }

    /// The current entry.
    #[inline]
    pub(crate) fn entry(&self) -> Option<Result<Entry<'_>>> {
        self.cursors[self.current?].entry()
    }

    /// Moves to the next entry in order.
    #[inline]
    pub(crate) fn advance(&mut self) -> Result<()> {
        let Some(current) = self.current else { return Ok(()) };
        #[cfg(debug_assertions)]
        let before = self.cursors[current].key();
        self.cursors[current].advance()?;
        let next = self.cursors[current].key();
        #[cfg(debug_assertions)]
        debug_assert!(
            match (before, next) {
                (Some(b), Some(n)) => (n > b) != self.descending,
                _ => true,
            },
            "cursor {current} out of order"
        );
        // Fast path: the current cursor is still ahead of every other.
        if let (Some(key), Some(top)) = (next, self.heap.peek()) {
            let ahead = match &top.order {
                Ordered::Asc(Reverse(other)) => key < *other,
                Ordered::Desc(other) => key > *other,
            };
            if ahead {
                return Ok(());
            }
        } else if next.is_some() {
            return Ok(());
        }
        self.push(current);
        self.current = self.heap.pop().map(|h| h.cursor);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// A cursor over owned entries, for tests.
    struct VecCursor(Vec<Entry<'static>>, usize);

    impl Cursor for VecCursor {
        fn key(&self) -> Option<Key> {
            self.0.get(self.1).map(|e| e.key)
        }
        fn entry(&self) -> Option<Result<Entry<'_>>> {
            self.0.get(self.1).map(|e| Ok(e.borrowed()))
        }
        fn advance(&mut self) -> Result<()> {
            self.1 += 1;
            Ok(())
        }
    }

    proptest! {
        #[test]
        fn merge_equals_sorted_union(
            sets in proptest::collection::vec(proptest::collection::btree_set((0u64..50, 0u64..5), 0..30), 0..6),
            descending: bool,
        ) {
            let mut all = BTreeSet::new();
            let mut cursors = Vec::new();
            for (i, set) in sets.iter().enumerate() {
                // Keys unique across sources, as in a store: make seq carry the source.
                let mut keys: Vec<Key> = set.iter().map(|&(t, s)| Key::new(t, s * 10 + i as u64)).collect();
                all.extend(keys.iter().copied());
                if descending { keys.reverse(); }
                let entries = keys.into_iter().map(|k| Entry::new(k, "m", None::<&str>)).collect();
                cursors.push(VecCursor(entries, 0));
            }
            let mut merge = Merge::new(cursors, descending);
            let mut merged = Vec::new();
            while let Some(key) = merge.key() {
                prop_assert_eq!(merge.entry().unwrap().unwrap().key, key);
                merged.push(key);
                merge.advance().unwrap();
            }
            let mut expected: Vec<Key> = all.into_iter().collect();
            if descending { expected.reverse(); }
            prop_assert_eq!(merged, expected);
        }
    }
}
