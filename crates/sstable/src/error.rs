//! The errors of table building and reading.

use logstore_entry::{CodecError, Key};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// A part of a table file a checksum covers (see the [format](crate::format)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    /// Data block number `n` (counting from 0 at the start of the file).
    Block(u32),
    /// The sparse index.
    Index,
    /// The footer.
    Footer,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Block(n) => write!(f, "data block {n}"),
            Region::Index => f.write_str("index"),
            Region::Footer => f.write_str("footer"),
        }
    }
}

/// Everything that can go wrong building, opening, reading or verifying a table.
///
/// Every variant names the file; those about bytes on disk name the offset (in the file) of the
/// region or block at fault, and those about limits name the value and the limit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("{op} {} (offset {offset}): {source}", path.display())]
    Io {
        /// What was being done (`read`, `write`, `fdatasync`, `rename`, ...).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// Where in the file, or 0 when the call has no offset.
        offset: u64,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is shorter than the smallest table, or shorter than its footer says.
    #[error("table {} truncated: {file_bytes} bytes, at least {needed_bytes} needed", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its length.
        file_bytes: u64,
        /// The length the format requires.
        needed_bytes: u64,
    },
    /// The last bytes of the file are not the table magic: not a table, or cut short.
    #[error("{} is not a logstore table (or is truncated): no magic at offset {offset}, found {found:02x?}", path.display())]
    NotATable {
        /// The file.
        path: PathBuf,
        /// Where the magic was expected.
        offset: u64,
        /// The bytes found there.
        found: [u8; 8],
    },
    /// The footer carries a format version this crate does not read.
    #[error("table {} has format version {version} at offset {offset}; this reader supports {supported}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Where the version is.
        offset: u64,
        /// The version found.
        version: u32,
        /// The version this crate reads and writes.
        supported: u32,
    },
    /// A checksum does not match the bytes it covers.
    #[error("checksum mismatch in {region} of table {} at offset {offset} ({len_bytes} bytes): stored {stored:#010x}, computed {computed:#010x}", path.display())]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Which part of the file.
        region: Region,
        /// Where the covered bytes start.
        offset: u64,
        /// How many bytes the checksum covers.
        len_bytes: u64,
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The bytes passed their checksum but break a rule of the format (a writer bug, or damage
    /// that a checksum cannot see, such as an index describing blocks that do not fit).
    #[error("corrupt {region} of table {} at offset {offset}: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which part of the file.
        region: Region,
        /// Where that part (for a block: the block) starts in the file.
        offset: u64,
        /// What rule was broken, with the values involved.
        detail: String,
    },
    /// A size read from disk is larger than the reader's limit; nothing was allocated for it.
    #[error("{what} of {value} at offset {offset} of table {} exceeds the limit of {limit}", path.display())]
    LimitExceeded {
        /// The file.
        path: PathBuf,
        /// Where the size was found (for a block: the block's offset).
        offset: u64,
        /// Which quantity (`block bytes`, `index bytes`, `entries in a block`, ...).
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit (see [`ReadOptions`](crate::ReadOptions)).
        limit: u64,
    },
    /// An entry in a block did not decode with the table's codec.
    #[error("entry {key} in block at offset {offset} of table {} does not decode: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The offset of the block holding the entry.
        offset: u64,
        /// The entry's key, as the block records it.
        key: Key,
        /// What the codec said.
        #[source]
        source: CodecError,
    },
    /// The builder was given a key not greater than the one before: input must be strictly
    /// increasing.
    #[error("unsorted input for table {}: key {key} after {previous} (keys must strictly increase)", path.display())]
    UnsortedInput {
        /// The table being built.
        path: PathBuf,
        /// The last key added.
        previous: Key,
        /// The key refused.
        key: Key,
    },
    /// One entry's record is larger than a block may be.
    #[error("entry {key} for table {} takes {record_bytes} bytes, over the block limit of {limit_bytes}", path.display())]
    EntryTooLarge {
        /// The table being built.
        path: PathBuf,
        /// The entry's key.
        key: Key,
        /// Bytes of its record (header and encoded entry).
        record_bytes: u64,
        /// The limit ([`BLOCK_BYTES_MAX_DEFAULT`](crate::BLOCK_BYTES_MAX_DEFAULT)).
        limit_bytes: u64,
    },
    /// The table would need an index larger than a reader accepts by default.
    #[error("table {} would need an index of {index_bytes} bytes, over the limit of {limit_bytes}", path.display())]
    TableTooLarge {
        /// The table being built.
        path: PathBuf,
        /// The index size it would need.
        index_bytes: u64,
        /// The limit ([`INDEX_BYTES_MAX_DEFAULT`](crate::INDEX_BYTES_MAX_DEFAULT)).
        limit_bytes: u64,
    },
    /// [`TableBuilder::append_table`](crate::TableBuilder::append_table) was given a table
    /// written with another codec or compression than the builder's.
    #[error("cannot copy the blocks of table {} into table {}: it uses {source_format}, the builder {format}", source_path.display(), path.display())]
    FormatMismatch {
        /// The table being built.
        path: PathBuf,
        /// The table whose blocks were to be copied.
        source_path: PathBuf,
        /// Its codec and compression.
        source_format: String,
        /// The builder's.
        format: String,
    },
    /// [`TableBuilder::finish`](crate::TableBuilder::finish) was called without any entry: a
    /// table holds at least one.
    #[error("table {} has no entries; an empty table is not written", path.display())]
    EmptyTable {
        /// The table that was being built.
        path: PathBuf,
    },
    /// The final name of a new table is taken.
    #[error("table {} already exists", path.display())]
    AlreadyExists {
        /// The name.
        path: PathBuf,
    },
    /// An option is out of its range.
    #[error("invalid table option {name} = {value}: must be in {min}..={max}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The value given.
        value: u64,
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// An earlier failure of this builder: it refuses further work (its temporary file is
    /// removed when it is dropped).
    #[error("table builder for {} failed earlier: {cause}", path.display())]
    Poisoned {
        /// The table that was being built.
        path: PathBuf,
        /// The first failure.
        cause: Arc<Error>,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with what was done, where.
/// The path is copied only if there is an error: this sits on every read and write.
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
    offset: u64,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), offset, source }
}
