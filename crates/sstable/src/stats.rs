//! What a table holds and how big it is, from its footer and index alone.

use crate::compression::Compression;
use logstore_entry::{CodecId, Key};

/// A table's contents and sizes. [`TableBuilder::finish`](crate::TableBuilder::finish) returns
/// them, [`Table::stats`](crate::Table::stats) reads them back (without reading any block), and
/// [`Table::verify`](crate::Table::verify) checks them against every entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// The codec entries are encoded with.
    pub codec: CodecId,
    /// The table's block compression.
    pub compression: Compression,
    /// Entries in the table (at least 1).
    pub entry_count: u64,
    /// Data blocks in the table (at least 1).
    pub block_count: u32,
    /// The smallest key.
    pub min_key: Key,
    /// The largest key.
    pub max_key: Key,
    /// The raw payload: Σ (16-byte key + message bytes + metadata bytes) over the entries.
    pub payload_bytes: u64,
    /// Bytes of the data blocks as stored (compressed, where they are).
    pub data_bytes: u64,
    /// Bytes of the data blocks decoded.
    pub raw_data_bytes: u64,
    /// Bytes of the index.
    pub index_bytes: u64,
    /// Bytes of the whole file.
    pub file_bytes: u64,
}

impl TableStats {
    /// The smallest timestamp in the table.
    pub fn min_timestamp_ms(&self) -> u64 {
        self.min_key.timestamp_ms
    }

    /// The largest timestamp in the table.
    pub fn max_timestamp_ms(&self) -> u64 {
        self.max_key.timestamp_ms
    }

    /// File bytes per byte of raw payload (below 1.0 when compression wins).
    pub fn size_ratio(&self) -> f64 {
        self.file_bytes as f64 / self.payload_bytes as f64
    }
}
