//! The versions of the report's `writeManyLogs`, each one configuration of the same engine,
//! and the report's own figures for them.

use crate::workload::MessageSize;
use logstore_engine::{Allocation, Compression, Durability, StoreOptions, TableOptions};
use logstore_entry::CodecId;
use logstore_fs::FaultFs;
use std::sync::Arc;

/// Flush thresholds that a run never reaches: "no flush" (V1 to V3).
const NEVER: usize = usize::MAX;

/// Concurrent writers of V7 and V8.
pub const GROUP_COMMIT_WRITERS: usize = 32;

/// One version of the workload: a configuration of [`logstore_engine::LogStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// Memory only: an in-memory file system, no WAL sync, no flush, small messages.
    V1,
    /// V1 + a WAL on the real disk synced on every write.
    V2,
    /// V2 + messages of 16..=1,024 bytes.
    V3,
    /// V3 + flush to tables every 1,000 entries; heap allocation, JSON codec, tables scanned
    /// from their start (no sparse index), no compaction.
    V4,
    /// V4 with arena allocation.
    V5,
    /// V5 + sparse index and table skipping on reads.
    V6,
    /// V6 + group commit: 32 concurrent writers.
    V7,
    /// V7 + binary codec and LZ4 block compression.
    V8,
}

impl Version {
    /// Every version, in order.
    pub const ALL: [Version; 8] = [
        Version::V1,
        Version::V2,
        Version::V3,
        Version::V4,
        Version::V5,
        Version::V6,
        Version::V7,
        Version::V8,
    ];

    /// `"V1"` ... `"V8"`.
    pub fn name(self) -> &'static str {
        ["V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8"][self as usize]
    }

    /// The version named `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.name().eq_ignore_ascii_case(name))
    }

    /// What the version adds, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Version::V1 => "memory only",
            Version::V2 => "+ WAL, sync per write",
            Version::V3 => "+ 16-1,024 B messages",
            Version::V4 => "+ flush every 1,000 (heap, JSON, full scan)",
            Version::V5 => "+ arena",
            Version::V6 => "+ sparse index, table skipping",
            Version::V7 => "+ group commit",
            Version::V8 => "+ binary codec, LZ4",
        }
    }

    /// The messages it writes.
    pub fn message_size(self) -> MessageSize {
        if self <= Version::V2 { MessageSize::Small } else { MessageSize::Mixed }
    }

    /// How many threads append concurrently.
    pub fn writers(self) -> usize {
        if self >= Version::V7 { GROUP_COMMIT_WRITERS } else { 1 }
    }

    /// Whether it writes to the real disk (V1 runs on an in-memory file system).
    pub fn on_disk(self) -> bool {
        self >= Version::V2
    }

    /// The store's options. Everything not named is [`StoreOptions::default`].
    pub fn store_options(self) -> StoreOptions {
        let mut o = StoreOptions {
            durability: Durability::Sync,
            allocation: Allocation::Heap,
            table: TableOptions {
                codec: CodecId::Json,
                compression: Compression::None,
                ..TableOptions::default()
            },
            use_sparse_index: false,
            compaction: None,
            ..StoreOptions::default()
        };
        if self == Version::V1 {
            o.durability = Durability::None;
            o.fs = Arc::new(FaultFs::new());
        }
        if self <= Version::V3 {
            o.flush_threshold_entries = NEVER;
            o.flush_threshold_bytes = NEVER;
        } else {
            o.flush_threshold_entries = 1_000;
        }
        if self >= Version::V5 {
            o.allocation = Allocation::Arena;
        }
        if self >= Version::V6 {
            o.use_sparse_index = true;
        }
        if self >= Version::V8 {
            o.table.codec = CodecId::Binary;
            o.table.compression = Compression::Lz4;
        }
        o
    }

    /// The scale the report measured it at (`--scale seed`): 10k for V1 to V3, 100k on.
    pub fn seed_scale(self) -> u64 {
        if self <= Version::V3 { 10_000 } else { 100_000 }
    }

    /// The report's figure for this version nearest to `scale`, if it has one.
    pub fn report_figure(self, scale: u64) -> Option<ReportFigure> {
        REPORT.iter().filter(|f| f.version == self).min_by_key(|f| f.scale.abs_diff(scale)).copied()
    }
}

/// A version's configuration, as written to `results.json`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct VersionConfig {
    /// `V1` ... `V8`.
    pub version: &'static str,
    /// What it adds.
    pub label: &'static str,
    /// Shortest and longest generated message, bytes.
    pub message_bytes: (usize, usize),
    /// Threads appending.
    pub writers: usize,
    /// `StdFs` (the real disk) or `FaultFs` (memory).
    pub fs: &'static str,
    /// The WAL's durability.
    pub durability: String,
    /// Entries per flush; `None`: never.
    pub flush_threshold_entries: Option<usize>,
    /// Memtable allocation.
    pub allocation: String,
    /// Table codec.
    pub codec: String,
    /// Table block compression.
    pub compression: String,
    /// Reads use the sparse index and skip tables.
    pub use_sparse_index: bool,
    /// Background compaction on.
    pub compaction: bool,
}

impl Version {
    /// Its configuration, for the record.
    pub fn config(self) -> VersionConfig {
        let o = self.store_options();
        VersionConfig {
            version: self.name(),
            label: self.label(),
            message_bytes: self.message_size().bytes_range(),
            writers: self.writers(),
            fs: if self.on_disk() { "StdFs" } else { "FaultFs" },
            durability: format!("{:?}", o.durability),
            flush_threshold_entries: (o.flush_threshold_entries != NEVER)
                .then_some(o.flush_threshold_entries),
            allocation: format!("{:?}", o.allocation),
            codec: format!("{:?}", o.table.codec),
            compression: format!("{:?}", o.table.compression),
            use_sparse_index: o.use_sparse_index,
            compaction: o.compaction.is_some(),
        }
    }
}

/// One row of the report's tables (`../shared/seed/writeManyLogs-report.md`; the first row
/// of each scale where it gives several).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ReportFigure {
    /// The version.
    #[serde(serialize_with = "serialize_version")]
    pub version: Version,
    /// Entries written.
    pub scale: u64,
    /// Write time per entry, µs.
    pub write_us: f64,
    /// Full-range read time per entry, µs.
    pub read_us: f64,
}

fn serialize_version<S: serde::Serializer>(v: &Version, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.name())
}

const fn fig(version: Version, scale: u64, write_us: f64, read_us: f64) -> ReportFigure {
    ReportFigure { version, scale, write_us, read_us }
}

/// The report's figures (write µs, read µs per entry).
pub const REPORT: &[ReportFigure] = &[
    fig(Version::V1, 10_000, 58.0, 0.12),
    fig(Version::V2, 10_000, 115.0, 0.11),
    fig(Version::V3, 10_000, 138.0, 0.11),
    fig(Version::V3, 100_000, 174.0, 0.12),
    fig(Version::V4, 10_000, 250.0, 148.0),
    fig(Version::V4, 100_000, 241.0, 188.0),
    fig(Version::V5, 100_000, 122.0, 29.0),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_add_one_step_each() {
        let v4 = Version::V4.store_options();
        assert_eq!(v4.flush_threshold_entries, 1_000);
        assert!(!v4.use_sparse_index && v4.compaction.is_none());
        assert_eq!(v4.table.codec, CodecId::Json);
        assert!(matches!(Version::V5.store_options().allocation, Allocation::Arena));
        assert!(Version::V6.store_options().use_sparse_index);
        assert_eq!(Version::V8.store_options().table.compression, Compression::Lz4);
        assert_eq!(Version::V3.store_options().flush_threshold_entries, NEVER);
        assert!(matches!(Version::V1.store_options().durability, Durability::None));
        assert!(matches!(Version::V2.store_options().durability, Durability::Sync));
        assert_eq!(Version::parse("v7"), Some(Version::V7));
        assert_eq!(Version::V4.report_figure(90_000).map(|f| f.read_us), Some(188.0));
        assert!(Version::V6.report_figure(100_000).is_none());
    }
}
