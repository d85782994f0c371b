//! Building a table from entries in strictly increasing key order.
//!
//! The builder writes to `<name>.tmp` beside the final name, in large sequential writes
//! ([`WRITE_BUFFER_BYTES`]). [`TableBuilder::finish`] writes the index and footer, syncs the
//! file (`fdatasync`), renames it to its final name and syncs the directory: the table appears
//! under its final name whole and durable, or not at all. A crash at any point leaves at most a
//! `.tmp` file, which [`TableBuilder::create`] removes if it builds the same name again (an
//! engine recovering a directory can delete every `*.tmp` it finds).
//!
//! [`TableBuilder::append_table`] adds a whole table whose keys all follow the ones added
//! before by copying its blocks as they are stored, checksum-checked but not decoded: merging
//! tables whose key ranges do not overlap (a log's tables, written in time order) costs a
//! copy, not a decode and an encode of every entry.
//!
//! [`TableBuilder::finish_unsynced`] does the same without the two syncs, for a caller that
//! keeps its own record of which tables exist and makes a table durable (an `fdatasync` of the
//! file, then one of the directory) before that record names it: until then a crash may leave
//! the table under either name, torn, or gone.
//!
//! Any I/O failure poisons the builder: every later call returns [`Error::Poisoned`], and
//! dropping it removes the temporary file. Refused input ([`Error::UnsortedInput`],
//! [`Error::EntryTooLarge`]) does not: the entry is simply not added.

use crate::block::BlockWriter;
use crate::compression::{self, Compression};
use crate::cursor::Direction::Forward;
use crate::error::{Error, Result, io_err};
use crate::format::{self, BlockHandle, Footer, INDEX_ENTRY_BYTES, KEY_BYTES};
use crate::options::{
    BLOCK_BYTES_MAX_DEFAULT, BLOCK_ENTRIES_MAX_DEFAULT, INDEX_BYTES_MAX_DEFAULT, TableOptions,
};
use crate::reader::ViewWindow;
use crate::stats::TableStats;
use crate::table::{Table, TableInner};
use logstore_entry::{Entry, EntryCodec, Key};
use logstore_fs::{FileSystem, FsFile, OpenMode};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes the builder collects before it writes them to the file: 1 MiB.
pub const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// Largest record header: two 10-byte LEB128 key deltas and a 5-byte length.
const RECORD_HEADER_BYTES_MAX: usize = 25;

/// Suffix of a table being built.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes one table, from entries in strictly increasing key order.
///
/// The table is written to `<name>.tmp` ([`temp_path`]) in large sequential writes;
/// [`finish`](Self::finish) syncs it, renames it to its final name and syncs the directory, so
/// it appears whole and durable or not at all. An I/O failure poisons the builder (every later
/// call returns [`Error::Poisoned`]); dropping an unfinished builder removes its `.tmp` file.
///
/// ```
/// # use logstore_sstable::{TableBuilder, TableOptions};
/// # use logstore_entry::{Entry, Key};
/// # use logstore_fs::{FaultFs, FileSystem};
/// # use std::sync::Arc;
/// let fs = FaultFs::new();
/// fs.create_dir_all("/db".as_ref()).unwrap();
/// let mut builder =
///     TableBuilder::create(Arc::new(fs.clone()), "/db/1.sst", TableOptions::default()).unwrap();
/// builder.add(&Entry::new(Key::new(10, 1), "a", None::<&str>)).unwrap();
/// // Keys must strictly increase.
/// assert!(builder.add(&Entry::new(Key::new(10, 1), "again", None::<&str>)).is_err());
/// let stats = builder.finish().unwrap();
/// assert_eq!(stats.entry_count, 1);
/// assert!(fs.exists("/db/1.sst".as_ref()).unwrap());
/// ```
pub struct TableBuilder {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    temp_path: PathBuf,
    file: Box<dyn FsFile>,
    options: TableOptions,
    codec: &'static dyn EntryCodec,
    block: BlockWriter,
    /// One entry as the codec encodes it.
    payload: Vec<u8>,
    /// The current block compressed.
    compressed: Vec<u8>,
    /// Bytes not yet written; they belong at file offset `out_offset`.
    out: Vec<u8>,
    out_offset: u64,
    /// Bytes of blocks so far (stored and decoded).
    data_bytes: u64,
    raw_data_bytes: u64,
    index: Vec<u8>,
    entry_count: u64,
    payload_bytes: u64,
    min_key: Key,
    last_key: Option<Key>,
    poisoned: Option<Arc<Error>>,
    /// Set once the temporary file is renamed or removed: nothing to clean up on drop.
    done: bool,
}

impl std::fmt::Debug for TableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableBuilder")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("entry_count", &self.entry_count)
            .field("block_count", &self.block_count())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The name a table is built under before it is renamed to `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

impl TableBuilder {
    /// Starts a table that will be named `path`, writing to `path` + [`TEMP_SUFFIX`] until
    /// [`finish`](Self::finish). Fails if `path` exists; replaces a stale temporary file.
    pub fn create(
        fs: Arc<dyn FileSystem>,
        path: impl AsRef<Path>,
        options: TableOptions,
    ) -> Result<TableBuilder> {
        options.validate()?;
        let path = path.as_ref().to_path_buf();
        if fs.exists(&path).map_err(io_err("stat", &path, 0))? {
            return Err(Error::AlreadyExists { path });
        }
        let temp_path = temp_path(&path);
        let file = match fs.open(&temp_path, OpenMode::CreateNew) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Left by a build that crashed or failed: it never had the final name.
                fs.remove_file(&temp_path).map_err(io_err("remove stale", &temp_path, 0))?;
                fs.open(&temp_path, OpenMode::CreateNew)
            }
            other => other,
        }
        .map_err(io_err("create", &temp_path, 0))?;
        Ok(TableBuilder {
            codec: options.codec.codec(),
            fs,
            path,
            temp_path,
            file,
            options,
            block: BlockWriter::default(),
            payload: Vec::new(),
            compressed: Vec::new(),
            out: Vec::with_capacity(WRITE_BUFFER_BYTES),
            out_offset: 0,
            data_bytes: 0,
            raw_data_bytes: 0,
            index: Vec::new(),
            entry_count: 0,
            payload_bytes: 0,
            min_key: Key::MIN,
            last_key: None,
            poisoned: None,
            done: false,
        })
    }

    /// The final name of the table.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries added so far.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Bytes the table would take if finished now, not counting the current block's
    /// compression (a caller splitting output by size can compare this to its target).
    pub fn estimated_file_bytes(&self) -> u64 {
        self.data_bytes
            + self.block.body().len() as u64
            + self.index.len() as u64
            + INDEX_ENTRY_BYTES as u64
            + format::FOOTER_BYTES as u64
    }

    /// Adds `entry`, whose key must be greater than every key added before.
    pub fn add(&mut self, entry: &Entry<'_>) -> Result<()> {
        self.check_poisoned()?;
        let key = entry.key;
        match self.last_key {
            Some(previous) if key <= previous => {
                return Err(Error::UnsortedInput { path: self.path.clone(), previous, key });
            }
            _ => {}
        }
        self.payload.clear();
        self.codec.encode(entry, &mut self.payload);
        // The largest the record can be, wherever it lands: alone in a new block, its key
        // deltas are taken from key 0-0.
        let record_bytes_max = self.payload.len() + RECORD_HEADER_BYTES_MAX;
        if record_bytes_max > BLOCK_BYTES_MAX_DEFAULT as usize {
            return Err(Error::EntryTooLarge {
                path: self.path.clone(),
                key,
                record_bytes: record_bytes_max as u64,
                limit_bytes: BLOCK_BYTES_MAX_DEFAULT.into(),
            });
        }
        let record_bytes = self.block.record_bytes(key, self.payload.len());
        let full = self.block.body().len() + record_bytes
            > self.options.block_target_bytes as usize
            || self.block.entry_count() == BLOCK_ENTRIES_MAX_DEFAULT;
        if !self.block.is_empty() && full {
            let result = self.finish_block();
            self.poison_on_error(result)?;
        }
        self.block.push(key, &self.payload);
        if self.entry_count == 0 {
            self.min_key = key;
        }
        self.last_key = Some(key);
        self.entry_count += 1;
        self.payload_bytes += (KEY_BYTES + entry.payload_bytes()) as u64;
        Ok(())
    }

    /// Adds every entry of `table`, whose keys must all be greater than every key added
    /// before, by copying its blocks as they are stored: each is checked against its checksum,
    /// none is decoded. This is how compaction concatenates tables of consecutive key ranges
    /// (a log's tables, written in time order) at the cost of copying bytes. The block being
    /// filled is closed first, so `table`'s blocks keep their boundaries (the new table may
    /// hold a block shorter than the target there). `table` must have been written with this
    /// builder's codec and compression ([`Error::FormatMismatch`]); a table with a block
    /// beyond the builder's limits ([`Error::LimitExceeded`]) or more blocks than its index has
    /// room for ([`Error::TableTooLarge`]) is refused before anything is copied, and the builder
    /// goes on. A damaged block is [`Error::ChecksumMismatch`], never carried into the new
    /// table; it, and an I/O error, poison the builder.
    /// Entries may be added after, with keys greater than the table's.
    pub fn append_table(&mut self, table: &Table) -> Result<()> {
        self.check_poisoned()?;
        let source = table.inner();
        let stats = table.stats();
        if (stats.codec, stats.compression) != (self.options.codec, self.options.compression) {
            return Err(Error::FormatMismatch {
                path: self.path.clone(),
                source_path: source.path.clone(),
                source_format: format!("codec {}, compression {}", stats.codec, stats.compression),
                format: format!(
                    "codec {}, compression {}",
                    self.options.codec, self.options.compression
                ),
            });
        }
        match self.last_key {
            Some(previous) if stats.min_key <= previous => {
                return Err(Error::UnsortedInput {
                    path: self.path.clone(),
                    previous,
                    key: stats.min_key,
                });
            }
            _ => {}
        }
        self.check_appendable(source)?;
        let result = self.copy_blocks(source);
        self.poison_on_error(result)
    }

    /// Refuses `source` if a block of it exceeds this builder's limits (the source was
    /// checked against its reader's, which may be looser), or if its blocks (and the block
    /// being filled, closed first) would overflow the index.
    fn check_appendable(&self, source: &TableInner) -> Result<()> {
        for handle in &source.index {
            let limits = [
                ("block bytes", handle.stored_bytes.max(handle.raw_bytes), BLOCK_BYTES_MAX_DEFAULT),
                ("entries in a block", handle.entry_count, BLOCK_ENTRIES_MAX_DEFAULT),
            ];
            for (what, value, limit) in limits {
                if value > limit {
                    return Err(Error::LimitExceeded {
                        path: source.path.clone(),
                        offset: handle.offset,
                        what,
                        value: value.into(),
                        limit: limit.into(),
                    });
                }
            }
        }
        let blocks = source.index.len() + usize::from(!self.block.is_empty());
        self.check_index_room(blocks)
    }

    /// The work of [`append_table`](Self::append_table) once its input is accepted.
    fn copy_blocks(&mut self, source: &TableInner) -> Result<()> {
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let mut buf = Vec::new();
        let mut window = ViewWindow::default();
        let copied = (|| {
            for (number, handle) in source.index.iter().enumerate() {
                window.touch(source, handle.offset as usize..handle.end() as usize, Forward);
                self.out.extend_from_slice(source.stored_block(number, &mut buf)?);
                self.push_block(BlockHandle { offset: self.data_bytes, ..*handle })?;
            }
            Ok(())
        })();
        window.release(source);
        copied?;
        let footer = &source.footer;
        if self.entry_count == 0 {
            self.min_key = footer.min_key;
        }
        self.last_key = Some(footer.max_key);
        self.entry_count += footer.entry_count;
        self.payload_bytes += footer.payload_bytes;
        Ok(())
    }

    /// Writes the index and footer, syncs, renames to the final name and syncs the directory.
    /// Returns the new table's statistics. A table needs at least one entry.
    pub fn finish(self) -> Result<TableStats> {
        self.finish_with(Durable::FileAndName)
    }

    /// Writes the index and footer and renames the file to its final name, with no sync: the
    /// table is complete for readers of this process now, and durable only once the caller
    /// syncs the file and then its directory (see the module docs). Returns the new
    /// table's statistics. A table needs at least one entry.
    pub fn finish_unsynced(self) -> Result<TableStats> {
        self.finish_with(Durable::Nothing)
    }

    fn finish_with(mut self, sync: Durable) -> Result<TableStats> {
        self.check_poisoned()?;
        let Some(max_key) = self.last_key else {
            return Err(Error::EmptyTable { path: self.path.clone() });
        };
        let result = self.write_tail(max_key, sync);
        let stats = self.poison_on_error(result)?;
        let result = self.publish(sync);
        self.poison_on_error(result)?;
        Ok(stats)
    }

    /// Gives up the table and removes its temporary file.
    pub fn abandon(mut self) -> Result<()> {
        self.done = true;
        self.fs.remove_file(&self.temp_path).map_err(io_err("remove", &self.temp_path, 0))
    }

    fn check_poisoned(&self) -> Result<()> {
        match &self.poisoned {
            Some(cause) => {
                Err(Error::Poisoned { path: self.path.clone(), cause: Arc::clone(cause) })
            }
            None => Ok(()),
        }
    }

    /// Remembers the first failure; every later call reports it.
    fn poison_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        result.map_err(|e| {
            let cause = Arc::new(e);
            self.poisoned = Some(Arc::clone(&cause));
            Error::Poisoned { path: self.path.clone(), cause }
        })
    }

    /// Refuses `blocks` more blocks if the index would outgrow its limit.
    fn check_index_room(&self, blocks: usize) -> Result<()> {
        let index_bytes = (self.index.len() + blocks * INDEX_ENTRY_BYTES) as u64;
        if index_bytes > INDEX_BYTES_MAX_DEFAULT.into() {
            return Err(Error::TableTooLarge {
                path: self.path.clone(),
                index_bytes,
                limit_bytes: INDEX_BYTES_MAX_DEFAULT.into(),
            });
        }
        Ok(())
    }

    /// Compresses and checksums the current block, queues it for writing, indexes it.
    fn finish_block(&mut self) -> Result<()> {
        self.check_index_room(1)?;
        let raw = self.block.body();
        let stored_as =
            compression::compress_block(self.options.compression, raw, &mut self.compressed);
        let stored: &[u8] = match stored_as {
            Compression::None => raw,
            Compression::Lz4 => &self.compressed,
        };
        // Both sizes are at most the block limit (the record check) plus the target, far
        // below `u32::MAX`.
        let handle = BlockHandle {
            first_key: self.block.first_key(),
            last_key: self.block.last_key(),
            offset: self.data_bytes,
            stored_bytes: stored.len() as u32,
            raw_bytes: raw.len() as u32,
            entry_count: self.block.entry_count(),
            crc32c: format::crc32c(stored),
            compression: stored_as.as_byte(),
            reserved: [0; 3],
        };
        self.out.extend_from_slice(stored);
        self.block.clear();
        self.push_block(handle)
    }

    /// Indexes a block whose stored bytes were just queued in `out` at `handle.offset`, and
    /// writes `out` once it is full.
    fn push_block(&mut self, handle: BlockHandle) -> Result<()> {
        debug_assert_eq!(handle.offset, self.data_bytes);
        handle.encode(&mut self.index);
        self.data_bytes += u64::from(handle.stored_bytes);
        self.raw_data_bytes += u64::from(handle.raw_bytes);
        if self.out.len() >= WRITE_BUFFER_BYTES { self.flush_out() } else { Ok(()) }
    }

    /// Blocks indexed so far.
    fn block_count(&self) -> u32 {
        (self.index.len() / INDEX_ENTRY_BYTES) as u32
    }

    fn flush_out(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.file.write_all_at(&self.out, self.out_offset).map_err(io_err(
            "write",
            &self.temp_path,
            self.out_offset,
        ))?;
        self.out_offset += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    /// Writes the last block, the index and the footer, and syncs the file if `sync` says so.
    fn write_tail(&mut self, max_key: Key, sync: Durable) -> Result<TableStats> {
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let index_offset = self.data_bytes;
        let footer = Footer {
            index_offset,
            index_bytes: self.index.len() as u32,
            index_crc32c: format::crc32c(&self.index),
            block_count: self.block_count(),
            codec_id: self.options.codec.as_byte(),
            compression_id: self.options.compression.as_byte(),
            reserved: 0,
            entry_count: self.entry_count,
            payload_bytes: self.payload_bytes,
            min_key: self.min_key,
            max_key,
        };
        self.out.extend_from_slice(&self.index);
        self.out.extend_from_slice(&footer.encode());
        self.flush_out()?;
        if sync == Durable::FileAndName {
            self.file.sync_data().map_err(io_err("fdatasync", &self.temp_path, 0))?;
        }
        Ok(TableStats {
            codec: self.options.codec,
            compression: self.options.compression,
            entry_count: self.entry_count,
            block_count: self.block_count(),
            min_key: self.min_key,
            max_key,
            payload_bytes: self.payload_bytes,
            data_bytes: self.data_bytes,
            raw_data_bytes: self.raw_data_bytes,
            index_bytes: self.index.len() as u64,
            file_bytes: self.out_offset,
        })
    }

    /// Renames the file to its final name, and makes the name durable if `sync` says so.
    fn publish(&mut self, sync: Durable) -> Result<()> {
        self.fs.rename(&self.temp_path, &self.path).map_err(io_err(
            "rename to final name",
            &self.temp_path,
            0,
        ))?;
        self.done = true;
        if sync == Durable::Nothing {
            return Ok(());
        }
        let dir = parent_dir(&self.path);
        if let Err(source) = self.fs.sync_dir(dir) {
            // The name may or may not survive a crash: take it back so that the caller, told
            // the table failed, does not find it later. If even that fails, the error below
            // still says the table is not durable.
            let _ = self.fs.remove_file(&self.path);
            return Err(Error::Io {
                op: "fsync directory",
                path: dir.to_path_buf(),
                offset: 0,
                source,
            });
        }
        Ok(())
    }
}

/// What [`TableBuilder::finish_with`] makes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durable {
    /// The file's bytes, then its final name.
    FileAndName,
    /// Nothing: the caller does it.
    Nothing,
}

impl Drop for TableBuilder {
    fn drop(&mut self) {
        if !self.done {
            // Best effort: a leftover `.tmp` is harmless and removed by the next build of the
            // same name.
            let _ = self.fs.remove_file(&self.temp_path);
        }
    }
}
