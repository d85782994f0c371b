//! What a builder and a reader can be told, and the limits that bound both.
//!
//! The builder never writes what a reader with default options would refuse: it closes a block
//! at [`BLOCK_ENTRIES_MAX_DEFAULT`] entries, refuses an entry larger than
//! [`BLOCK_BYTES_MAX_DEFAULT`], and a table whose index would pass
//! [`INDEX_BYTES_MAX_DEFAULT`].

use crate::compression::Compression;
use crate::error::{Error, Result};
use logstore_entry::CodecId;

/// Default block size the builder aims for: 16 KiB of decoded body.
pub const BLOCK_TARGET_BYTES_DEFAULT: u32 = 16 << 10;
/// Largest block target a builder accepts: 16 MiB.
pub const BLOCK_TARGET_BYTES_MAX: u32 = 16 << 20;
/// Default (and builder) limit on a block's size, stored or decoded: 64 MiB. A block is larger
/// than its target only when one entry is.
pub const BLOCK_BYTES_MAX_DEFAULT: u32 = 64 << 20;
/// Default (and builder) limit on the entries of one block: 65,536.
pub const BLOCK_ENTRIES_MAX_DEFAULT: u32 = 1 << 16;
/// Default (and builder) limit on the index: 64 MiB, about 1.1 million blocks (some 17 GiB of
/// 16 KiB blocks).
pub const INDEX_BYTES_MAX_DEFAULT: u32 = 64 << 20;
/// Default largest read a scan makes at once: 256 KiB.
pub const READAHEAD_BYTES_MAX_DEFAULT: u32 = 256 << 10;

/// How a table is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableOptions {
    /// The codec entries are encoded with (recorded in the footer).
    pub codec: CodecId,
    /// How blocks are compressed (recorded in the footer).
    pub compression: Compression,
    /// The decoded size a block is closed at: a block never passes it, unless it holds a
    /// single entry larger than that. `1..=`[`BLOCK_TARGET_BYTES_MAX`].
    pub block_target_bytes: u32,
}

impl Default for TableOptions {
    /// Binary codec, no compression, 16 KiB blocks.
    fn default() -> Self {
        TableOptions {
            codec: CodecId::Binary,
            compression: Compression::None,
            block_target_bytes: BLOCK_TARGET_BYTES_DEFAULT,
        }
    }
}

impl TableOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        check_range("block_target_bytes", self.block_target_bytes, 1, BLOCK_TARGET_BYTES_MAX)
    }
}

/// How a table is read: the limits on sizes found on disk, checked before anything is
/// allocated for them, and how much a scan reads at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest block accepted, stored or decoded. Also bounds the decompression buffer.
    pub block_bytes_max: u32,
    /// Most entries accepted in one block.
    pub block_entries_max: u32,
    /// Largest index accepted (it is read whole, at open).
    pub index_bytes_max: u32,
    /// Largest read a scan makes at once. A scan's first read is one block; each next read of
    /// the same scan doubles, up to this, so a short range reads little and a long scan makes
    /// few, large sequential reads. A block larger than this is still read, alone.
    pub readahead_bytes_max: u32,
    /// Read blocks in place through a read-only view of the whole table
    /// ([`FsFile::map_read_only`](logstore_fs::FsFile::map_read_only): a memory map on the real
    /// file system) instead of copying them out with `pread` into a buffer. Default `true`:
    /// short reads, such as the newest 1,000 entries of a table, took 11-16% less time in the
    /// crate's benchmark; for long scans it is mixed (in one run the map had the better best
    /// of 30, `pread` the better criterion mean), as they release the pages they pass so that
    /// resident memory stays what it is with `pread`
    /// ([`VIEW_RELEASE_BYTES`](crate::VIEW_RELEASE_BYTES)).
    /// Tables are sealed once written, as a map requires; choose `false` to turn a disk read
    /// error under a mapped page into an error rather than a `SIGBUS` (see
    /// [`logstore_fs::ReadOnlyMap`]).
    /// Ignored where the file system offers no view. `readahead_bytes_max` applies to `pread`.
    pub mmap: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            block_bytes_max: BLOCK_BYTES_MAX_DEFAULT,
            block_entries_max: BLOCK_ENTRIES_MAX_DEFAULT,
            index_bytes_max: INDEX_BYTES_MAX_DEFAULT,
            readahead_bytes_max: READAHEAD_BYTES_MAX_DEFAULT,
            mmap: true,
        }
    }
}

impl ReadOptions {
    /// Checks every field's range: all must be at least 1.
    pub fn validate(&self) -> Result<()> {
        check_range("block_bytes_max", self.block_bytes_max, 1, u32::MAX)?;
        check_range("block_entries_max", self.block_entries_max, 1, u32::MAX)?;
        check_range("index_bytes_max", self.index_bytes_max, 1, u32::MAX)?;
        check_range("readahead_bytes_max", self.readahead_bytes_max, 1, u32::MAX)
    }
}

fn check_range(name: &'static str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidOption { name, value: value.into(), min: min.into(), max: max.into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_ranges_checked() {
        TableOptions::default().validate().unwrap();
        ReadOptions::default().validate().unwrap();
        let bad = TableOptions { block_target_bytes: 0, ..TableOptions::default() };
        assert!(matches!(
            bad.validate(),
            Err(Error::InvalidOption { name: "block_target_bytes", value: 0, .. })
        ));
        let bad =
            TableOptions { block_target_bytes: BLOCK_TARGET_BYTES_MAX + 1, ..Default::default() };
        assert!(bad.validate().is_err());
        let bad = ReadOptions { readahead_bytes_max: 0, ..ReadOptions::default() };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn builder_limits_fit_default_reader_limits() {
        // The largest block the builder writes (its target, or one entry under the block limit)
        // fits the default reader.
        assert!(BLOCK_TARGET_BYTES_MAX <= ReadOptions::default().block_bytes_max);
    }
}
