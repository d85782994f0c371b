//! An open table: its footer and index in memory, its blocks on disk.
//!
//! [`Table::open`] reads the footer and the index and nothing else, and checks them whole
//! before it returns: the footer's magic, version and checksum, the index checksum, then that
//! the index describes blocks tiling the data region exactly, each within the limits of
//! [`ReadOptions`], with keys increasing from block to block and counts and key bounds agreeing
//! with the footer. After that, a range read trusts the index and verifies each block it reads.

use crate::block::Record;
use crate::compression::Compression;
use crate::cursor::{Direction, TableCursor};
use crate::error::{Error, Region, Result, io_err};
use crate::format::{
    BlockHandle, FOOTER_BYTES, FOOTER_CRC_AT, FOOTER_MAGIC_AT, FOOTER_VERSION_AT, FORMAT_VERSION,
    Footer, FooterError, INDEX_ENTRY_BYTES, KEY_BYTES, RECORD_BYTES_MIN,
};
use crate::options::ReadOptions;
use crate::stats::TableStats;
use logstore_entry::{CodecId, EntryCodec, Key};
use logstore_fs::{FileSystem, FsFile, OpenMode, ReadOnlyMap};
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open, immutable table. Cheap to clone (the clones share the open file and the index);
/// `Send + Sync`, so many threads can read it at once, each with its own cursors.
#[derive(Clone)]
pub struct Table {
    inner: Arc<TableInner>,
}

/// What every cursor of a table shares.
pub(crate) struct TableInner {
    pub path: PathBuf,
    pub file: Box<dyn FsFile>,
    pub options: ReadOptions,
    pub codec: &'static dyn EntryCodec,
    pub footer: Footer,
    pub compression: Compression,
    pub index: Vec<BlockHandle>,
    pub raw_data_bytes: u64,
    pub file_bytes: u64,
    /// The whole file, read in place, when `options.mmap` and the file system offers a view.
    pub map: Option<ReadOnlyMap>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TableInner {
    pub fn corrupt(&self, region: Region, offset: u64, detail: impl Into<String>) -> Error {
        Error::Corrupt { path: self.path.clone(), region, offset, detail: detail.into() }
    }

    /// Checks `stored` (the stored bytes of block `block`, as read) against the block's CRC32C.
    pub fn check_block_crc(&self, block: usize, stored: &[u8]) -> Result<()> {
        let handle = &self.index[block];
        let computed = crate::format::crc32c(stored);
        if computed == handle.crc32c {
            return Ok(());
        }
        Err(Error::ChecksumMismatch {
            path: self.path.clone(),
            region: Region::Block(block as u32),
            offset: handle.offset,
            len_bytes: handle.stored_bytes.into(),
            stored: handle.crc32c,
            computed,
        })
    }

    /// Releases the pages of the view (if any) wholly inside `range` (byte offsets): see
    /// [`ReadOnlyMap::release`].
    pub fn release_view(&self, range: std::ops::Range<usize>) {
        if let Some(map) = &self.map {
            map.release(range);
        }
    }

    /// The stored bytes of `block` (compressed if it is), checksum verified: in place in the
    /// table's view of its file, or read into `buf`.
    pub fn stored_block<'a>(&'a self, block: usize, buf: &'a mut Vec<u8>) -> Result<&'a [u8]> {
        let handle = &self.index[block];
        let stored = match &self.map {
            // `check_index` placed every block inside the file when the table was opened.
            Some(map) => &map[handle.offset as usize..handle.end() as usize],
            None => {
                buf.resize(handle.stored_bytes as usize, 0);
                self.read_exact_at(buf, handle.offset)?;
                &buf[..]
            }
        };
        self.check_block_crc(block, stored)?;
        Ok(stored)
    }

    /// Reads `buf.len()` bytes at `offset`; a file shorter than that is [`Error::Truncated`].
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        read_exact_at(&*self.file, &self.path, buf, offset)
    }

    /// Decodes the entry `record` points to in `body`, the decoded body of block `block`, and
    /// checks the codec agrees with the record on the key.
    ///
    /// [`Check::Trusted`] skips what the builder's caller checked before writing and the
    /// block checksum has since protected (that metadata is a JSON object:
    /// [`EntryCodec::decode_trusted`]); framing, lengths, UTF-8 and the key are always
    /// checked. [`Table::verify`] uses [`Check::Full`].
    #[inline]
    pub fn decode<'b>(
        &self,
        block: usize,
        body: &'b [u8],
        record: &Record,
        check: Check,
    ) -> Result<logstore_entry::Entry<'b>> {
        let bytes = &body[record.start as usize..record.end as usize];
        let decoded = match check {
            Check::Full => self.codec.decode(bytes),
            Check::Trusted => self.codec.decode_trusted(bytes),
        };
        let entry = decoded.map_err(|source| Error::Decode {
            path: self.path.clone(),
            offset: self.index[block].offset,
            key: record.key,
            source,
        })?;
        if entry.key != record.key {
            return Err(self.corrupt(
                Region::Block(block as u32),
                self.index[block].offset,
                format!(
                    "entry at body offset {} encodes key {}, its record says {}",
                    record.start, entry.key, record.key
                ),
            ));
        }
        Ok(entry)
    }
}

/// How much of an entry [`TableInner::decode`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Everything the codec can check.
    Full,
    /// All but what was checked before writing (see [`TableInner::decode`]).
    Trusted,
}

fn read_exact_at(file: &dyn FsFile, path: &Path, buf: &mut [u8], offset: u64) -> Result<()> {
    file.read_exact_at(buf, offset).map_err(|source| {
        if source.kind() == io::ErrorKind::UnexpectedEof {
            // The file shrank under us (its size was checked against the footer at open).
            Error::Truncated {
                path: path.to_path_buf(),
                file_bytes: file.len().unwrap_or(0),
                needed_bytes: offset + buf.len() as u64,
            }
        } else {
            Error::Io { op: "read", path: path.to_path_buf(), offset, source }
        }
    })
}

/// The inclusive key bounds of `range`, or `None` if it holds no key.
pub(crate) fn key_bounds(range: &impl RangeBounds<Key>) -> Option<(Key, Key)> {
    let lo = match range.start_bound() {
        Bound::Included(k) => *k,
        Bound::Excluded(k) => k.successor()?,
        Bound::Unbounded => Key::MIN,
    };
    let hi = match range.end_bound() {
        Bound::Included(k) => *k,
        Bound::Excluded(k) => k.predecessor()?,
        Bound::Unbounded => Key::MAX,
    };
    (lo <= hi).then_some((lo, hi))
}

/// The inclusive key bounds holding every key whose timestamp is in `range`.
pub(crate) fn timestamp_bounds(range: &impl RangeBounds<u64>) -> Option<(Key, Key)> {
    let lo = match range.start_bound() {
        Bound::Included(t) => *t,
        Bound::Excluded(t) => t.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(t) => *t,
        Bound::Excluded(t) => t.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    };
    (lo <= hi).then_some((Key::new(lo, 0), Key::new(hi, u64::MAX)))
}

impl Table {
    /// Opens the table at `path`: reads and checks its footer and index (not its blocks).
    pub fn open(
        fs: &dyn FileSystem,
        path: impl AsRef<Path>,
        options: ReadOptions,
    ) -> Result<Table> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        let file = fs.open(&path, OpenMode::Read).map_err(io_err("open", &path, 0))?;
        Table::from_file(file, path, options)
    }

    /// Opens a table from a file already open for reading; `path` is for error messages.
    pub fn from_file(file: Box<dyn FsFile>, path: PathBuf, options: ReadOptions) -> Result<Table> {
        options.validate()?;
        let file_bytes = file.len().map_err(io_err("stat", &path, 0))?;
        let footer_at = file_bytes.checked_sub(FOOTER_BYTES as u64).ok_or_else(|| {
            Error::Truncated { path: path.clone(), file_bytes, needed_bytes: FOOTER_BYTES as u64 }
        })?;
        let mut bytes = [0u8; FOOTER_BYTES];
        read_exact_at(&*file, &path, &mut bytes, footer_at)?;
        let footer = Footer::decode(&bytes).map_err(|e| match e {
            FooterError::Magic(found) => Error::NotATable {
                path: path.clone(),
                offset: footer_at + FOOTER_MAGIC_AT as u64,
                found,
            },
            FooterError::Version(version) => Error::UnsupportedVersion {
                path: path.clone(),
                offset: footer_at + FOOTER_VERSION_AT as u64,
                version,
                supported: FORMAT_VERSION,
            },
            FooterError::Checksum { stored, computed } => Error::ChecksumMismatch {
                path: path.clone(),
                region: Region::Footer,
                offset: footer_at,
                len_bytes: FOOTER_CRC_AT as u64,
                stored,
                computed,
            },
        })?;
        let (codec, compression) = check_footer(&footer, &path, footer_at, &options)?;
        let index_bytes = footer.index_bytes as usize;
        let mut index_buf = vec![0u8; index_bytes];
        read_exact_at(&*file, &path, &mut index_buf, footer.index_offset)?;
        let computed = crate::format::crc32c(&index_buf);
        if computed != footer.index_crc32c {
            return Err(Error::ChecksumMismatch {
                path,
                region: Region::Index,
                offset: footer.index_offset,
                len_bytes: index_bytes as u64,
                stored: footer.index_crc32c,
                computed,
            });
        }
        let mut inner = TableInner {
            path,
            file,
            options,
            codec,
            footer,
            compression,
            index: Vec::with_capacity(footer.block_count as usize),
            raw_data_bytes: 0,
            file_bytes,
            map: None,
        };
        for chunk in index_buf.chunks_exact(INDEX_ENTRY_BYTES) {
            let mut entry = [0u8; INDEX_ENTRY_BYTES];
            entry.copy_from_slice(chunk);
            inner.index.push(BlockHandle::decode(&entry));
        }
        inner.raw_data_bytes = check_index(&inner)?;
        if options.mmap {
            inner.map = inner.file.map_read_only().map_err(io_err("map", &inner.path, 0))?;
            if let Some(map) = &inner.map
                && (map.len() as u64) < file_bytes
            {
                // Shortened since it was measured: not a sealed table.
                return Err(Error::Truncated {
                    path: inner.path.clone(),
                    file_bytes: map.len() as u64,
                    needed_bytes: file_bytes,
                });
            }
        }
        Ok(Table { inner: Arc::new(inner) })
    }

    pub(crate) fn inner(&self) -> &Arc<TableInner> {
        &self.inner
    }

    /// The file the table was opened from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// What the table holds and how big it is, from the footer and index (no I/O).
    pub fn stats(&self) -> TableStats {
        let inner = &*self.inner;
        let f = &inner.footer;
        TableStats {
            codec: inner.codec.id(),
            compression: inner.compression,
            entry_count: f.entry_count,
            block_count: f.block_count,
            min_key: f.min_key,
            max_key: f.max_key,
            payload_bytes: f.payload_bytes,
            data_bytes: f.index_offset,
            raw_data_bytes: inner.raw_data_bytes,
            index_bytes: f.index_bytes.into(),
            file_bytes: inner.file_bytes,
        }
    }

    /// The smallest key in the table.
    pub fn min_key(&self) -> Key {
        self.inner.footer.min_key
    }

    /// The largest key in the table.
    pub fn max_key(&self) -> Key {
        self.inner.footer.max_key
    }

    /// The smallest timestamp in the table.
    pub fn min_timestamp_ms(&self) -> u64 {
        self.inner.footer.min_key.timestamp_ms
    }

    /// The largest timestamp in the table.
    pub fn max_timestamp_ms(&self) -> u64 {
        self.inner.footer.max_key.timestamp_ms
    }

    /// Entries in the table.
    pub fn entry_count(&self) -> u64 {
        self.inner.footer.entry_count
    }

    /// Whether some key in `range` lies within the table's key span: when not, the table has
    /// nothing in the range and a reader can skip it without any I/O.
    pub fn overlaps(&self, range: impl RangeBounds<Key>) -> bool {
        key_bounds(&range).is_some_and(|(lo, hi)| lo <= self.max_key() && self.min_key() <= hi)
    }

    /// Whether some timestamp in `range` lies within the table's timestamp span.
    pub fn overlaps_timestamps(&self, range: impl RangeBounds<u64>) -> bool {
        timestamp_bounds(&range)
            .is_some_and(|(lo, hi)| lo <= self.max_key() && self.min_key() <= hi)
    }

    /// A cursor over the entries with keys in `range`, in `direction`, positioned on the first
    /// one (the smallest key for [`Direction::Forward`], the largest for
    /// [`Direction::Backward`]). Reads the one block holding that entry.
    pub fn range(&self, range: impl RangeBounds<Key>, direction: Direction) -> Result<TableCursor> {
        TableCursor::new(Arc::clone(&self.inner), key_bounds(&range), direction)
    }

    /// [`range`](Self::range) over every key whose timestamp is in `range`.
    pub fn range_timestamps(
        &self,
        range: impl RangeBounds<u64>,
        direction: Direction,
    ) -> Result<TableCursor> {
        TableCursor::new(Arc::clone(&self.inner), timestamp_bounds(&range), direction)
    }

    /// A cursor over the whole table.
    pub fn scan(&self, direction: Direction) -> Result<TableCursor> {
        self.range(.., direction)
    }
}

/// Checks the footer's fields against each other, the limits and the file's size.
fn check_footer(
    footer: &Footer,
    path: &Path,
    footer_at: u64,
    options: &ReadOptions,
) -> Result<(&'static dyn EntryCodec, Compression)> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        region: Region::Footer,
        offset: footer_at,
        detail,
    };
    let codec = CodecId::from_byte(footer.codec_id)
        .map_err(|_| corrupt(format!("unknown codec id {}", footer.codec_id)))?
        .codec();
    let compression = Compression::from_byte(footer.compression_id)
        .ok_or_else(|| corrupt(format!("unknown compression id {}", footer.compression_id)))?;
    if footer.reserved != 0 {
        return Err(corrupt(format!("reserved bytes are {:#06x}, not zero", footer.reserved)));
    }
    if footer.block_count == 0 || footer.entry_count == 0 {
        return Err(corrupt(format!(
            "{} blocks and {} entries: a table holds at least one of each",
            footer.block_count, footer.entry_count
        )));
    }
    if footer.min_key > footer.max_key {
        return Err(corrupt(format!(
            "min key {} is above max key {}",
            footer.min_key, footer.max_key
        )));
    }
    let payload_min = footer.entry_count.saturating_mul(KEY_BYTES as u64);
    if footer.payload_bytes < payload_min {
        return Err(corrupt(format!(
            "payload of {} bytes for {} entries of at least {KEY_BYTES} bytes",
            footer.payload_bytes, footer.entry_count
        )));
    }
    if footer.index_bytes > options.index_bytes_max {
        return Err(Error::LimitExceeded {
            path: path.to_path_buf(),
            offset: footer_at,
            what: "index bytes",
            value: footer.index_bytes.into(),
            limit: options.index_bytes_max.into(),
        });
    }
    let index_bytes_expected = u64::from(footer.block_count) * INDEX_ENTRY_BYTES as u64;
    if u64::from(footer.index_bytes) != index_bytes_expected {
        return Err(corrupt(format!(
            "index of {} bytes for {} blocks of {INDEX_ENTRY_BYTES} bytes",
            footer.index_bytes, footer.block_count
        )));
    }
    if footer.index_offset.checked_add(footer.index_bytes.into()) != Some(footer_at) {
        return Err(corrupt(format!(
            "index at {}..+{} does not end where the footer starts ({footer_at})",
            footer.index_offset, footer.index_bytes
        )));
    }
    Ok((codec, compression))
}

/// Checks every index entry against the format, the limits, its neighbours and the footer.
/// Returns the sum of the blocks' decoded sizes.
fn check_index(table: &TableInner) -> Result<u64> {
    let footer = &table.footer;
    let limits = &table.options;
    let mut expected_offset = 0u64;
    let mut entry_count = 0u64;
    let mut raw_data_bytes = 0u64;
    let mut prev_last: Option<Key> = None;
    for (i, h) in table.index.iter().enumerate() {
        let at = footer.index_offset + (i * INDEX_ENTRY_BYTES) as u64;
        let corrupt =
            |detail: String| table.corrupt(Region::Index, at, format!("block {i}: {detail}"));
        let limit = |what: &'static str, value: u32, limit: u32| Error::LimitExceeded {
            path: table.path.clone(),
            offset: at,
            what,
            value: value.into(),
            limit: limit.into(),
        };
        if h.offset != expected_offset {
            return Err(corrupt(format!(
                "starts at {}, the previous block ends at {expected_offset}",
                h.offset
            )));
        }
        if h.stored_bytes > limits.block_bytes_max {
            return Err(limit("stored block bytes", h.stored_bytes, limits.block_bytes_max));
        }
        if h.raw_bytes > limits.block_bytes_max {
            return Err(limit("decoded block bytes", h.raw_bytes, limits.block_bytes_max));
        }
        if h.entry_count > limits.block_entries_max {
            return Err(limit("entries in a block", h.entry_count, limits.block_entries_max));
        }
        if h.entry_count == 0
            || u64::from(h.raw_bytes) < u64::from(h.entry_count) * RECORD_BYTES_MIN as u64
        {
            return Err(corrupt(format!(
                "{} entries in {} decoded bytes (at least 1 entry of {RECORD_BYTES_MIN} bytes each)",
                h.entry_count, h.raw_bytes
            )));
        }
        match Compression::from_byte(h.compression) {
            Some(Compression::None) if h.stored_bytes == h.raw_bytes => {}
            Some(Compression::Lz4)
                if table.compression == Compression::Lz4 && h.stored_bytes > 0 => {}
            _ => {
                return Err(corrupt(format!(
                    "stored as compression {} ({} bytes stored, {} decoded) in a table compressed with {}",
                    h.compression, h.stored_bytes, h.raw_bytes, table.compression
                )));
            }
        }
        if h.reserved != [0; 3] {
            return Err(corrupt(format!("reserved bytes are {:02x?}, not zero", h.reserved)));
        }
        let keys_ok =
            if h.entry_count == 1 { h.first_key == h.last_key } else { h.first_key < h.last_key };
        if !keys_ok {
            return Err(corrupt(format!(
                "keys {}..={} for {} entries",
                h.first_key, h.last_key, h.entry_count
            )));
        }
        if let Some(prev) = prev_last {
            if h.first_key <= prev {
                return Err(corrupt(format!(
                    "first key {} does not follow the previous block's last key {prev}",
                    h.first_key
                )));
            }
        }
        prev_last = Some(h.last_key);
        expected_offset = h.end();
        entry_count += u64::from(h.entry_count);
        raw_data_bytes += u64::from(h.raw_bytes);
    }
    let at = footer.index_offset;
    let (Some(first), Some(last)) = (table.index.first(), table.index.last()) else {
        return Err(table.corrupt(Region::Index, at, "no blocks"));
    };
    if expected_offset != footer.index_offset {
        return Err(table.corrupt(
            Region::Index,
            at,
            format!("blocks end at {expected_offset}, the index starts at {}", footer.index_offset),
        ));
    }
    if entry_count != footer.entry_count {
        return Err(table.corrupt(
            Region::Index,
            at,
            format!("blocks hold {entry_count} entries, the footer says {}", footer.entry_count),
        ));
    }
    if first.first_key != footer.min_key || last.last_key != footer.max_key {
        return Err(table.corrupt(
            Region::Index,
            at,
            format!(
                "blocks span keys {}..={}, the footer says {}..={}",
                first.first_key, last.last_key, footer.min_key, footer.max_key
            ),
        ));
    }
    Ok(raw_data_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::FOOTER_BYTES;
    use crate::{TableBuilder, TableOptions};
    use logstore_entry::Entry;
    use logstore_fs::FaultFs;

    const PATH: &str = "/db/t.sst";

    /// A table of 40 entries in blocks of about 200 bytes, and its bytes.
    fn table_bytes(fs: &FaultFs) -> Vec<u8> {
        fs.create_dir_all(Path::new("/db")).unwrap();
        let options = TableOptions { block_target_bytes: 200, ..TableOptions::default() };
        let mut builder = TableBuilder::create(Arc::new(fs.clone()), PATH, options).unwrap();
        for i in 0..40u64 {
            let meta = (i % 2 == 0).then(|| format!(r#"{{"i":{i}}}"#));
            builder
                .add(&Entry::new(Key::new(100 + i / 2, i), format!("message {i}"), meta))
                .unwrap();
        }
        builder.finish().unwrap();
        fs.read_file(Path::new(PATH)).unwrap()
    }

    fn open_bytes(fs: &FaultFs, bytes: &[u8], options: ReadOptions) -> Result<Table> {
        fs.overwrite_file(Path::new(PATH), bytes).unwrap();
        Table::open(fs, PATH, options)
    }

    /// Where the footer and index are in `bytes`.
    fn layout(bytes: &[u8]) -> (usize, usize, usize) {
        let footer_at = bytes.len() - FOOTER_BYTES;
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        (footer_at, u64_at(footer_at) as usize, u32_at(footer_at + 8) as usize)
    }

    /// Applies `edit` to the bytes, then recomputes every checksum, as a buggy writer (not a
    /// bad disk) would produce them: only the format's rules can catch it.
    fn reforge(bytes: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut bytes = bytes.to_vec();
        edit(&mut bytes);
        assert!(crate::fuzzing::fix_checksums(&mut bytes));
        bytes
    }

    #[test]
    fn tables_and_cursors_cross_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send<T: Send + 'static>() {}
        send_sync::<Table>();
        send::<crate::TableCursor>();
        send::<crate::TableEntries>();
    }

    #[test]
    fn limits_are_checked_before_allocating() {
        let fs = FaultFs::new();
        let bytes = table_bytes(&fs);
        let cases: [(ReadOptions, &str); 3] = [
            (ReadOptions { block_bytes_max: 64, ..ReadOptions::default() }, "stored block bytes"),
            (ReadOptions { block_entries_max: 2, ..ReadOptions::default() }, "entries in a block"),
            (ReadOptions { index_bytes_max: 100, ..ReadOptions::default() }, "index bytes"),
        ];
        for (options, what) in cases {
            match open_bytes(&fs, &bytes, options) {
                Err(Error::LimitExceeded { what: w, value, limit, .. }) => {
                    assert_eq!(w, what);
                    assert!(value > limit);
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        let bad = ReadOptions { readahead_bytes_max: 0, ..ReadOptions::default() };
        assert!(matches!(open_bytes(&fs, &bytes, bad), Err(Error::InvalidOption { .. })));
    }

    #[test]
    fn short_and_foreign_files_are_refused() {
        let fs = FaultFs::new();
        let bytes = table_bytes(&fs);
        for len in [0, 1, FOOTER_BYTES - 1] {
            assert!(matches!(
                open_bytes(&fs, &bytes[..len], ReadOptions::default()),
                Err(Error::Truncated { needed_bytes: 88, .. })
            ));
        }
        let foreign = vec![b'x'; 500];
        match open_bytes(&fs, &foreign, ReadOptions::default()) {
            Err(Error::NotATable { offset, found, .. }) => {
                assert_eq!(offset, 500 - 8);
                assert_eq!(found, [b'x'; 8]);
            }
            other => panic!("{other:?}"),
        }
        // Extra bytes after the footer: the end is no longer a footer.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(open_bytes(&fs, &longer, ReadOptions::default()).is_err());
    }

    #[test]
    fn index_rules_hold_even_with_valid_checksums() {
        let fs = FaultFs::new();
        let bytes = table_bytes(&fs);
        let (footer_at, index_at, _) = layout(&bytes);
        let e1 = index_at + INDEX_ENTRY_BYTES; // block 1's entry
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("gap before a block", Box::new(move |b| b[e1 + 32] += 1)),
            ("stored size", Box::new(move |b| b[e1 + 40] += 1)),
            ("raw size of a raw block", Box::new(move |b| b[e1 + 44] += 1)),
            ("entry count", Box::new(move |b| b[e1 + 48] += 1)),
            ("zero entries", Box::new(move |b| b[e1 + 48..e1 + 52].fill(0))),
            ("compression byte", Box::new(move |b| b[e1 + 56] = 1)),
            ("unknown compression byte", Box::new(move |b| b[e1 + 56] = 9)),
            ("reserved byte", Box::new(move |b| b[e1 + 58] = 1)),
            ("first key above last key", Box::new(move |b| b[e1..e1 + 8].fill(0xff))),
            ("first key not after previous block", Box::new(move |b| b[e1..e1 + 16].fill(0))),
            ("footer entry count", Box::new(move |b| b[footer_at + 24] += 1)),
            ("footer min key", Box::new(move |b| b[footer_at + 40] = 0)),
            ("footer max key", Box::new(move |b| b[footer_at + 56] += 1)),
            ("footer codec", Box::new(move |b| b[footer_at + 20] = 0)),
            ("footer compression", Box::new(move |b| b[footer_at + 21] = 5)),
            ("footer reserved", Box::new(move |b| b[footer_at + 22] = 1)),
            ("footer block count", Box::new(move |b| b[footer_at + 16] += 1)),
            ("footer index offset", Box::new(move |b| b[footer_at] -= 1)),
            ("footer payload", Box::new(move |b| b[footer_at + 32..footer_at + 40].fill(0))),
        ];
        for (what, edit) in edits {
            let forged = reforge(&bytes, edit);
            match open_bytes(&fs, &forged, ReadOptions::default()) {
                Err(Error::Corrupt { path, region, detail, .. }) => {
                    assert_eq!(path, Path::new(PATH));
                    assert!(matches!(region, Region::Index | Region::Footer), "{what}: {region}");
                    assert!(!detail.is_empty());
                }
                // An edited offset also moves where the index is read from.
                Err(Error::ChecksumMismatch { region: Region::Index, .. })
                    if what == "footer index offset" => {}
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn block_rules_hold_even_with_valid_checksums() {
        let fs = FaultFs::new();
        let bytes = table_bytes(&fs);
        let (_, index_at, _) = layout(&bytes);
        let stored = u32::from_le_bytes(bytes[index_at + 40..index_at + 44].try_into().unwrap());
        // Rewrite block 0 (its checksum is recomputed).
        let forge_block0 =
            |edit: &dyn Fn(&mut [u8])| reforge(&bytes, |b| edit(&mut b[..stored as usize]));
        // The first record's payload starts after its three header varints; its first 8 bytes
        // are the binary codec's timestamp: change it, so the codec's key and the record's
        // disagree.
        let mut pos = 0;
        for _ in 0..3 {
            while bytes[pos] & 0x80 != 0 {
                pos += 1;
            }
            pos += 1;
        }
        let key_mismatch = forge_block0(&|b| b[pos] ^= 1);
        let table = open_bytes(&fs, &key_mismatch, ReadOptions::default()).unwrap();
        let err = table.verify().unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { region: Region::Block(0), offset: 0, detail, .. } if detail.contains("encodes key")),
            "{err}"
        );
        // A broken codec payload (reserved flag bits) is a decode error naming the entry.
        let bad_payload = forge_block0(&|b| b[pos + 16] = 0x80);
        let table = open_bytes(&fs, &bad_payload, ReadOptions::default()).unwrap();
        let err = table.verify().unwrap_err();
        assert!(
            matches!(err, Error::Decode { offset: 0, key: Key { timestamp_ms: 100, seq: 0 }, .. }),
            "{err}"
        );
        // A record header pointing past the block.
        let overrun = forge_block0(&|b| b[2] = 0x7f);
        let table = open_bytes(&fs, &overrun, ReadOptions::default()).unwrap();
        let err = table.verify().unwrap_err();
        assert!(matches!(err, Error::Corrupt { region: Region::Block(0), .. }), "{err}");
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use crate::{TableBuilder, TableOptions};
    use logstore_entry::Entry;
    use logstore_fs::FaultFs;

    #[test]
    fn verify_checks_what_range_reads_trust() {
        // The builder does not check entries (the engine does, before the WAL): a writer bug
        // that lets an array through as metadata is read back by a range read, and caught
        // by verify.
        for codec in CodecId::ALL {
            let fs = FaultFs::new();
            fs.create_dir_all(Path::new("/db")).unwrap();
            let options = TableOptions { codec, ..TableOptions::default() };
            let mut builder = TableBuilder::create(Arc::new(fs.clone()), "/db/t", options).unwrap();
            builder.add(&Entry::new(Key::new(1, 1), "m", Some("[1]"))).unwrap();
            builder.finish().unwrap();
            let table = Table::open(&fs, "/db/t", ReadOptions::default()).unwrap();
            let err = table.verify().unwrap_err();
            assert!(
                matches!(err, Error::Decode { key: Key { timestamp_ms: 1, seq: 1 }, .. }),
                "{err}"
            );
            if codec != CodecId::Json {
                // (The JSON codec parses metadata as part of the entry either way.)
                let entries: Vec<_> =
                    table.scan(Direction::Forward).unwrap().into_entries().collect();
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].as_ref().unwrap().metadata.as_deref(), Some("[1]"));
            }
        }
    }
}
