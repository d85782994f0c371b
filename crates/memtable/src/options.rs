//! How a memtable stores its entries, and its hard limits.

use crate::MemtableError;

/// Default slots per chunk.
pub const CHUNK_ENTRIES_MAX_DEFAULT: usize = 256;
/// Default text bytes per chunk: 64 KiB.
pub const CHUNK_TEXT_BYTES_DEFAULT: usize = 64 << 10;
/// Default hard limit on entries: 16 Mi.
pub const ENTRIES_MAX_DEFAULT: usize = 16 << 20;
/// Default hard limit on text bytes: 1 GiB.
pub const PAYLOAD_BYTES_MAX_DEFAULT: usize = 1 << 30;
/// Largest allowed `payload_bytes_max`: text offsets inside a chunk are `u32`.
pub const PAYLOAD_BYTES_MAX_CEILING: usize = u32::MAX as usize - 1;

/// Where entry text is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Allocation {
    /// One heap allocation per entry (an `Arc<str>` holding its message then its metadata),
    /// each freed on its own when the memtable is dropped.
    Heap,
    /// Text copied into per-chunk byte arenas of [`MemtableOptions::chunk_text_bytes`], one
    /// allocation per chunk, all freed together when the memtable is dropped.
    #[default]
    Arena,
}

/// A memtable's shape and limits. `Default` gives the documented defaults.
///
/// The limits are a safety net against a runaway writer, not the flush policy: the engine
/// flushes on its own thresholds, reading [`Memtable::bytes`](crate::Memtable::bytes) and
/// [`Memtable::len`](crate::Memtable::len), well before these refuse an insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemtableOptions {
    /// Where entry text is stored.
    pub allocation: Allocation,
    /// Entries per chunk. A chunk is the unit a reader copies while the writer waits (the open
    /// chunk) and the unit sealed and shared without copying afterwards.
    pub chunk_entries_max: usize,
    /// Text bytes per chunk (the arena size, in the arena strategy). An entry larger than this
    /// gets a chunk of its own, sized to fit it.
    pub chunk_text_bytes: usize,
    /// Most entries the memtable accepts.
    pub entries_max: usize,
    /// Most text bytes (messages plus metadata) the memtable accepts; at most
    /// [`PAYLOAD_BYTES_MAX_CEILING`].
    pub payload_bytes_max: usize,
}

impl Default for MemtableOptions {
    fn default() -> Self {
        MemtableOptions {
            allocation: Allocation::default(),
            chunk_entries_max: CHUNK_ENTRIES_MAX_DEFAULT,
            chunk_text_bytes: CHUNK_TEXT_BYTES_DEFAULT,
            entries_max: ENTRIES_MAX_DEFAULT,
            payload_bytes_max: PAYLOAD_BYTES_MAX_DEFAULT,
        }
    }
}

impl MemtableOptions {
    /// The defaults, with `allocation`.
    pub fn with_allocation(allocation: Allocation) -> Self {
        MemtableOptions { allocation, ..MemtableOptions::default() }
    }

    /// Checks every field is usable, naming the first one that is not.
    pub fn validate(&self) -> Result<(), MemtableError> {
        let invalid = |detail: String| Err(MemtableError::InvalidOptions { detail });
        if self.chunk_entries_max == 0 {
            return invalid("chunk_entries_max must be at least 1".to_owned());
        }
        if self.chunk_text_bytes == 0 || self.chunk_text_bytes > PAYLOAD_BYTES_MAX_CEILING {
            return invalid(format!(
                "chunk_text_bytes {} must be in 1..={PAYLOAD_BYTES_MAX_CEILING}",
                self.chunk_text_bytes
            ));
        }
        if self.payload_bytes_max > PAYLOAD_BYTES_MAX_CEILING {
            return invalid(format!(
                "payload_bytes_max {} exceeds the ceiling of {PAYLOAD_BYTES_MAX_CEILING}",
                self.payload_bytes_max
            ));
        }
        Ok(())
    }
}
