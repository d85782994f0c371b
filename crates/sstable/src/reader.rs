//! Loading blocks: large sequential reads, checksum, decompression, record parsing.
//!
//! A [`BlockReader`] holds one read *chunk* (the stored bytes of one or more consecutive
//! blocks) and one decoded block. Loading a block that is not in the chunk reads a new chunk
//! starting at that block and extending in the direction of travel, over as many whole blocks
//! as fit the current read-ahead size and stay inside the blocks the caller allows (a range
//! never reads a block outside it). The read-ahead size starts at one block and doubles with
//! every chunk up to [`ReadOptions::readahead_bytes_max`](crate::ReadOptions), so a short range
//! costs one small read and a scan settles on a few large ones.
//!
//! When the table has a read-only view of its file (a memory map, [`ReadOptions::mmap`](crate::ReadOptions)),
//! there are no chunks: every block is read where it lies in the view, with no copy at all.
//!
//! Every block is checked before use: its CRC32C over the stored bytes, then (if compressed)
//! decompression into a buffer of exactly its recorded size, then the record parse of
//! [`block::parse`]. An uncompressed block is decoded where it lies in the chunk or the view:
//! no copy.
//! Buffers are kept and reused from block to block, so a scan allocates nothing per entry and
//! nothing per block once they have grown.

use crate::block::{self, Record};
use crate::compression::{self, Compression};
use crate::cursor::Direction;
use crate::error::{Region, Result};
use crate::table::{Check, TableInner};
use logstore_entry::Entry;
use std::ops::Range;

/// Where the decoded body of the current block lies.
#[derive(Clone, Copy, Debug)]
enum Body {
    /// In the chunk, at this range (the block is stored raw).
    InChunk { start: usize, end: usize },
    /// In the table's read-only view of its file, at this range (the block is stored raw).
    InView { start: usize, end: usize },
    /// In the decompression buffer, its first `len` bytes.
    Decompressed { len: usize },
}

impl Body {
    /// The bytes it designates, in `chunk`, `decompressed` or `table`'s view.
    fn bytes<'a>(self, chunk: &'a [u8], decompressed: &'a [u8], table: &'a TableInner) -> &'a [u8] {
        match self {
            Body::InChunk { start, end } => &chunk[start..end],
            Body::InView { start, end } => match &table.map {
                Some(map) => &map[start..end],
                None => unreachable!("a block was loaded from the view of a table without one"),
            },
            Body::Decompressed { len } => &decompressed[..len],
        }
    }
}

/// What a reader read of a table's view (memory map) since it last released pages: it releases
/// what lies behind it every [`VIEW_RELEASE_BYTES`], and the rest when done.
#[derive(Debug, Default)]
pub(crate) struct ViewWindow {
    /// Bytes of the view read since the last release (empty: none).
    touched: Range<usize>,
}

impl ViewWindow {
    /// Notes that `read` (a block's bytes) is read moving in `direction`; once the window
    /// spans [`VIEW_RELEASE_BYTES`], releases what lies behind `read`.
    pub fn touch(&mut self, table: &TableInner, read: Range<usize>, direction: Direction) {
        if self.touched.is_empty() {
            self.touched = read;
            return;
        }
        self.touched = self.touched.start.min(read.start)..self.touched.end.max(read.end);
        if self.touched.len() >= VIEW_RELEASE_BYTES {
            let margin = VIEW_RELEASE_MARGIN_BYTES;
            let behind = match direction {
                Direction::Forward => self.touched.start.saturating_sub(margin)..read.start,
                Direction::Backward => read.end..self.touched.end + margin,
            };
            table.release_view(behind);
            self.touched = read;
        }
    }

    /// Releases everything read since the last release.
    pub fn release(&mut self, table: &TableInner) {
        let touched = std::mem::take(&mut self.touched);
        if !touched.is_empty() {
            let margin = VIEW_RELEASE_MARGIN_BYTES;
            table.release_view(touched.start.saturating_sub(margin)..touched.end + margin);
        }
    }
}

/// One chunk of stored blocks and one decoded block, with the buffers behind them.
#[derive(Debug)]
pub(crate) struct BlockReader {
    chunk: Vec<u8>,
    /// File offset of `chunk[0]`.
    chunk_offset: u64,
    /// Blocks whose stored bytes are in the chunk.
    chunk_blocks: Range<usize>,
    decompressed: Vec<u8>,
    body: Body,
    /// The loaded block's records; empty when no block is loaded.
    records: Vec<Record>,
    /// The block `records` belong to.
    block: usize,
    /// Bytes the next chunk may span (0: just one block).
    readahead_bytes: u64,
    /// What this reader read of the table's view since it last released pages.
    window: ViewWindow,
}

/// A reader reading through the table's view (memory map) releases the pages behind it once
/// it has read this many bytes past the last release: 1 MiB. So a scan keeps about this much
/// of a table mapped into the process, not the whole table, and its resident memory stays what
/// it would be with `pread` and a buffer. Each release is one `madvise`; reading the pages
/// again later maps them again from the page cache (a minor fault per 64 KiB or so).
pub const VIEW_RELEASE_BYTES: usize = 1 << 20;

/// How far beyond what a reader read its releases reach: 2 MiB. A page fault on a file map
/// also maps neighbouring pages already in the page cache: the fault-around window (64 KiB by
/// default on Linux) and, on kernels whose page cache holds large folios, the whole folio around
/// the fault, up to 2 MiB (a PMD) on x86-64. Some of those pages lie on the side the reader
/// already released; without this margin they would stay mapped (measured: up to 332 KiB per
/// 550 KiB table on this machine's kernel, 6.18, with 64 KiB only).
const VIEW_RELEASE_MARGIN_BYTES: usize = 2 << 20;

impl BlockReader {
    pub fn new() -> Self {
        BlockReader {
            chunk: Vec::new(),
            chunk_offset: 0,
            chunk_blocks: 0..0,
            decompressed: Vec::new(),
            body: Body::InChunk { start: 0, end: 0 },
            records: Vec::new(),
            block: 0,
            readahead_bytes: 0,
            window: ViewWindow::default(),
        }
    }

    /// Releases the pages of `table`'s view this reader read (see [`VIEW_RELEASE_BYTES`]).
    /// Call when done with the table; the loaded block's bytes must not be borrowed after.
    pub fn release_view(&mut self, table: &TableInner) {
        self.window.release(table);
    }

    /// The loaded block's records.
    #[inline]
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The loaded block's decoded body (`table` is the table it was loaded from).
    #[inline]
    fn body<'a>(&'a self, table: &'a TableInner) -> &'a [u8] {
        self.body.bytes(&self.chunk, &self.decompressed, table)
    }

    /// Decodes entry `pos` (below `records().len()`) of the loaded block, checking it as
    /// `check` says.
    #[inline]
    pub fn entry<'a>(
        &'a self,
        table: &'a TableInner,
        pos: usize,
        check: Check,
    ) -> Result<Entry<'a>> {
        table.decode(self.block, self.body(table), &self.records[pos], check)
    }

    /// Makes `block` the loaded block, reading (if it is not in the chunk) a chunk that
    /// extends from it in `direction` without leaving `allowed`.
    pub fn load(
        &mut self,
        table: &TableInner,
        block: usize,
        direction: Direction,
        allowed: Range<usize>,
    ) -> Result<()> {
        debug_assert!(allowed.contains(&block));
        // Until the block is loaded whole, there is none.
        self.records.clear();
        let handle = &table.index[block];
        // `check_index` placed every block inside the file when the table was opened.
        let (stored, raw) = match &table.map {
            Some(map) => {
                let (start, end) = (handle.offset as usize, handle.end() as usize);
                self.window.touch(table, start..end, direction);
                (&map[start..end], Body::InView { start, end })
            }
            None => {
                if !self.chunk_blocks.contains(&block) {
                    self.read_chunk(table, block, direction, allowed)?;
                }
                let start = (handle.offset - self.chunk_offset) as usize;
                let end = start + handle.stored_bytes as usize;
                (&self.chunk[start..end], Body::InChunk { start, end })
            }
        };
        table.check_block_crc(block, stored)?;
        let corrupt =
            |detail: String| table.corrupt(Region::Block(block as u32), handle.offset, detail);
        self.body = match handle.stored_compression() {
            Compression::None => raw,
            Compression::Lz4 => {
                // `raw_bytes` was checked against the block limit when the table was opened.
                let len = handle.raw_bytes as usize;
                if self.decompressed.len() < len {
                    self.decompressed.resize(len, 0);
                }
                compression::decompress_lz4(stored, &mut self.decompressed[..len])
                    .map_err(corrupt)?;
                Body::Decompressed { len }
            }
        };
        let expected = block::Expected {
            entry_count: handle.entry_count,
            first_key: handle.first_key,
            last_key: handle.last_key,
        };
        let body = self.body.bytes(&self.chunk, &self.decompressed, table);
        if let Err((at, detail)) = block::parse(body, expected, &mut self.records) {
            self.records.clear();
            return Err(corrupt(format!("at byte {at} of the decoded block: {detail}")));
        }
        self.block = block;
        Ok(())
    }

    fn read_chunk(
        &mut self,
        table: &TableInner,
        block: usize,
        direction: Direction,
        allowed: Range<usize>,
    ) -> Result<()> {
        let index = &table.index;
        let budget = self.readahead_bytes;
        let mut blocks = block..block + 1;
        let mut bytes = u64::from(index[block].stored_bytes);
        match direction {
            Direction::Forward => {
                while blocks.end < allowed.end
                    && bytes + u64::from(index[blocks.end].stored_bytes) <= budget
                {
                    bytes += u64::from(index[blocks.end].stored_bytes);
                    blocks.end += 1;
                }
            }
            Direction::Backward => {
                while blocks.start > allowed.start
                    && bytes + u64::from(index[blocks.start - 1].stored_bytes) <= budget
                {
                    blocks.start -= 1;
                    bytes += u64::from(index[blocks.start].stored_bytes);
                }
            }
        }
        let offset = index[blocks.start].offset;
        // At most the larger of the read-ahead limit and one block, both checked limits.
        let len = bytes as usize;
        if self.chunk.len() < len {
            // Grows the buffer (zero-filled once); later reads of that size reuse it.
            self.chunk.resize(len, 0);
        }
        self.chunk_blocks = 0..0;
        table.read_exact_at(&mut self.chunk[..len], offset)?;
        self.chunk_offset = offset;
        self.chunk_blocks = blocks;
        let max = u64::from(table.options.readahead_bytes_max);
        self.readahead_bytes = (self.readahead_bytes.max(bytes) * 2).min(max);
        Ok(())
    }
}
