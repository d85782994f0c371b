//! Cursors over a key range of a table, forwards or backwards.
//!
//! The crate documentation describes the reading algorithm and why a cursor rather than an
//! `Iterator`; block loading (read-ahead, checks) is in [`reader`](crate::reader).

use crate::error::{Error, Result};
use crate::reader::BlockReader;
use crate::table::{Check, TableInner};
use logstore_entry::{Entry, Key};
use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::Arc;

/// Which way a cursor walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Increasing keys.
    Forward,
    /// Decreasing keys.
    Backward,
}

/// A cursor over the entries of a table whose keys fall in a range, in one direction.
///
/// It owns a handle to the table (it does not borrow the [`Table`](crate::Table)), so it is
/// `'static` and `Send`. An error (I/O, checksum, corrupt block) is returned once, by the call
/// that met it, and leaves the cursor exhausted.
///
/// ```
/// # use logstore_sstable::{Direction, Table, TableBuilder, TableOptions, ReadOptions};
/// # use logstore_entry::{Entry, Key};
/// # use logstore_fs::{FaultFs, FileSystem};
/// # use std::sync::Arc;
/// # let fs = FaultFs::new();
/// # fs.create_dir_all("/db".as_ref()).unwrap();
/// # let mut b = TableBuilder::create(Arc::new(fs.clone()), "/db/t", TableOptions::default()).unwrap();
/// # for i in 0..10 { b.add(&Entry::new(Key::new(i, 0), format!("m{i}"), None::<&str>)).unwrap(); }
/// # b.finish().unwrap();
/// let table = Table::open(&fs, "/db/t", ReadOptions::default())?;
/// let mut cursor = table.range(Key::new(3, 0)..Key::new(6, 0), Direction::Backward)?;
/// let mut messages = Vec::new();
/// while let Some(entry) = cursor.entry() {
///     messages.push(entry?.message.into_owned());
///     cursor.advance()?;
/// }
/// assert_eq!(messages, ["m5", "m4", "m3"]);
/// # Ok::<(), logstore_sstable::Error>(())
/// ```
pub struct TableCursor {
    table: Arc<TableInner>,
    direction: Direction,
    lo: Key,
    hi: Key,
    /// The blocks that can hold keys of the range.
    blocks: Range<usize>,
    reader: BlockReader,
    /// The loaded block.
    block: usize,
    /// The current record in it.
    pos: usize,
    /// Whether the cursor is on an entry.
    valid: bool,
}

impl Drop for TableCursor {
    fn drop(&mut self) {
        self.reader.release_view(&self.table);
    }
}

impl std::fmt::Debug for TableCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableCursor")
            .field("path", &self.table.path)
            .field("direction", &self.direction)
            .field("range", &(self.lo..=self.hi))
            .field("key", &self.key())
            .finish_non_exhaustive()
    }
}

impl TableCursor {
    /// A cursor over `bounds` (inclusive; `None` for an empty range), positioned on its first
    /// entry in `direction`.
    pub(crate) fn new(
        table: Arc<TableInner>,
        bounds: Option<(Key, Key)>,
        direction: Direction,
    ) -> Result<TableCursor> {
        let (lo, hi) = bounds.unwrap_or((Key::MAX, Key::MIN));
        let index = &table.index;
        let blocks = if lo <= hi {
            index.partition_point(|h| h.last_key < lo)..index.partition_point(|h| h.first_key <= hi)
        } else {
            0..0
        };
        let mut cursor = TableCursor {
            table,
            direction,
            lo,
            hi,
            blocks: blocks.clone(),
            reader: BlockReader::new(),
            block: 0,
            pos: 0,
            valid: false,
        };
        if blocks.is_empty() {
            return Ok(cursor);
        }
        let result = match direction {
            Direction::Forward => cursor.enter(blocks.start),
            Direction::Backward => cursor.enter(blocks.end - 1),
        };
        result?;
        let records = cursor.reader.records();
        cursor.pos = match direction {
            // The block's last key is >= lo: the search lands on a record.
            Direction::Forward => records.partition_point(|r| r.key < lo),
            // The block's first key is <= hi: at least one record is <= hi.
            Direction::Backward => records.partition_point(|r| r.key <= hi).saturating_sub(1),
        };
        cursor.valid = cursor.in_range();
        Ok(cursor)
    }

    /// The direction the cursor walks.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The key of the current entry, or `None` once the range is exhausted. No decoding.
    #[inline]
    pub fn key(&self) -> Option<Key> {
        self.valid.then(|| self.reader.records()[self.pos].key)
    }

    /// The current entry, borrowing its text from the decoded block, or `None` once the range
    /// is exhausted. Decodes on every call; an entry that does not decode is an error.
    ///
    /// The block's checksum was verified when it was loaded, so this decodes with the codec's
    /// [`decode_trusted`](logstore_entry::EntryCodec::decode_trusted): it does not re-parse
    /// the metadata JSON the writer checked. [`Table::verify`](crate::Table::verify) does.
    #[inline]
    pub fn entry(&self) -> Option<Result<Entry<'_>>> {
        if !self.valid {
            return None;
        }
        Some(self.reader.entry(&self.table, self.pos, Check::Trusted))
    }

    /// Moves to the next entry in the cursor's direction (a no-op once exhausted). May read
    /// and verify the next block.
    #[inline]
    pub fn advance(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        let len = self.reader.records().len();
        match self.direction {
            Direction::Forward if self.pos + 1 < len => self.pos += 1,
            Direction::Backward if self.pos > 0 => self.pos -= 1,
            Direction::Forward => {
                if self.block + 1 >= self.blocks.end {
                    self.valid = false;
                    return Ok(());
                }
                self.enter(self.block + 1)?;
                self.pos = 0;
            }
            Direction::Backward => {
                if self.block <= self.blocks.start {
                    self.valid = false;
                    return Ok(());
                }
                self.enter(self.block - 1)?;
                self.pos = self.reader.records().len() - 1;
            }
        }
        self.valid = self.in_range();
        Ok(())
    }

    /// Whether the current record's key is inside the range, on the side the cursor moves to.
    #[inline]
    fn in_range(&self) -> bool {
        let key = self.reader.records()[self.pos].key;
        match self.direction {
            Direction::Forward => key <= self.hi,
            Direction::Backward => key >= self.lo,
        }
    }

    /// Loads `block`; on failure the cursor is exhausted.
    fn enter(&mut self, block: usize) -> Result<()> {
        self.valid = false;
        self.reader.load(&self.table, block, self.direction, self.blocks.clone())?;
        self.block = block;
        Ok(())
    }

    /// This cursor as a standard iterator of owned entries (two allocations per entry with
    /// metadata: prefer [`entry`](Self::entry) on hot paths).
    pub fn into_entries(self) -> TableEntries {
        TableEntries { cursor: self, started: false, failed: false }
    }
}

/// A [`TableCursor`] as an `Iterator` of owned entries: each is decoded, then copied out of
/// the block. After an error it yields nothing more.
#[derive(Debug)]
pub struct TableEntries {
    cursor: TableCursor,
    started: bool,
    failed: bool,
}

impl Iterator for TableEntries {
    type Item = Result<Entry<'static>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.started {
            if let Err(e) = self.cursor.advance() {
                self.failed = true;
                return Some(Err(e));
            }
        }
        self.started = true;
        let item = self.cursor.entry()?.map(Entry::into_owned);
        self.failed = item.is_err();
        Some(item)
    }
}

impl FusedIterator for TableEntries {}
