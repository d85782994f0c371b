//! Checking a whole table.
//!
//! [`Table::open`] has checked the footer (magic, version, checksum) and the index (checksum,
//! blocks tiling the data region, limits, keys increasing from block to block, entry count and
//! key bounds equal to the footer's). [`Table::verify`] adds everything else: every block's
//! checksum, decompression and record layout (keys strictly increasing inside it, its count and
//! first and last keys equal to its index entry's, hence keys increasing across the table and
//! matching the footer's bounds), every entry decoding with the table's codec, fully checked
//! (metadata included, which range reads trust), to the key its record names, and the entry count and raw payload size equal to the footer's.

use crate::cursor::Direction;
use crate::error::{Region, Result};
use crate::format::KEY_BYTES;
use crate::options::ReadOptions;
use crate::reader::BlockReader;
use crate::stats::TableStats;
use crate::table::{Check, Table};
use logstore_fs::FileSystem;
use std::path::Path;

impl Table {
    /// Reads and checks every block and every entry; returns the table's statistics, all of
    /// them now confirmed by the data.
    ///
    /// On top of what [`Table::open`] checked (footer and index), this checks every block's
    /// checksum, decompression and record layout (keys strictly increasing, count and first
    /// and last keys as its index entry says, hence keys increasing across the whole table and
    /// matching the footer's bounds), every entry decoding fully (metadata JSON included, which
    /// range reads trust) to the key its record names, and the entry count and raw payload
    /// bytes equal to the footer's.
    pub fn verify(&self) -> Result<TableStats> {
        let table = &**self.inner();
        let blocks = 0..table.index.len();
        let mut reader = BlockReader::new();
        let mut entry_count = 0u64;
        let mut payload_bytes = 0u64;
        let mut read_all = || -> Result<()> {
            for block in blocks.clone() {
                reader.load(table, block, Direction::Forward, blocks.clone())?;
                for pos in 0..reader.records().len() {
                    let entry = reader.entry(table, pos, Check::Full)?;
                    entry_count += 1;
                    payload_bytes += (KEY_BYTES + entry.payload_bytes()) as u64;
                }
            }
            Ok(())
        };
        let read = read_all();
        reader.release_view(table);
        read?;
        let footer = &table.footer;
        if entry_count != footer.entry_count || payload_bytes != footer.payload_bytes {
            let at = table.file_bytes - crate::format::FOOTER_BYTES as u64;
            return Err(table.corrupt(
                Region::Footer,
                at,
                format!(
                    "entries hold {entry_count} entries and {payload_bytes} payload bytes, \
                     the footer says {} and {}",
                    footer.entry_count, footer.payload_bytes
                ),
            ));
        }
        Ok(self.stats())
    }
}

/// Opens the table at `path` and [verifies](Table::verify) it.
pub fn verify(
    fs: &dyn FileSystem,
    path: impl AsRef<Path>,
    options: ReadOptions,
) -> Result<TableStats> {
    Table::open(fs, path, options)?.verify()
}
