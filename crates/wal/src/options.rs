//! How a log is opened: durability, limits, recovery.

use crate::commit_delay::COMMIT_DELAY_MAX_DEFAULT;
use crate::error::{Result, WalError};
use crate::format::{RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES};
use crate::waiters::FOLLOWER_YIELD_MAX_DEFAULT;
use logstore_fs::{FileSystem, StdFs};
use std::sync::Arc;
use std::time::Duration;

/// Default [`WalOptions::segment_bytes_max`]: 64 MiB.
pub const SEGMENT_BYTES_MAX_DEFAULT: u64 = 64 << 20;
/// Default [`WalOptions::record_bytes_max`]: 1 MiB of entry plus 4 KiB for its own framing.
pub const RECORD_BYTES_MAX_DEFAULT: u32 = (1 << 20) + (4 << 10);
/// Default [`WalOptions::recovery_record_bytes_max`]: 10 MiB.
pub const RECOVERY_RECORD_BYTES_MAX_DEFAULT: u32 = 10 << 20;
/// Default [`WalOptions::batch_records_max`].
pub const BATCH_RECORDS_MAX_DEFAULT: usize = 1 << 20;
/// Default [`WalOptions::batch_bytes_max`]: 256 MiB.
pub const BATCH_BYTES_MAX_DEFAULT: u64 = 256 << 20;

/// Default [`WalOptions::writeback_interval_bytes`]: 1 MiB.
pub const WRITEBACK_INTERVAL_BYTES_DEFAULT: u64 = 1 << 20;

/// Default [`WalOptions::zero_ahead_bytes`]: 1 MiB.
pub const ZERO_AHEAD_BYTES_DEFAULT: u64 = 1 << 20;

/// Largest [`WalOptions::commit_delay_max`] accepted: 100 ms (PostgreSQL's limit on
/// `commit_delay`). A longer wait would be a latency bug, not a tuning.
pub const COMMIT_DELAY_MAX_LIMIT: Duration = Duration::from_millis(100);

/// When an append is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `append` returns once the record is on disk (`fdatasync`). Concurrent appenders are
    /// group-committed: what queues up while one sync runs is written and synced together.
    Sync,
    /// `append` returns once the record is handed to the operating system; the log syncs at
    /// least every `max_delay` and whenever `max_bytes` have been written since the last sync
    /// (the round that crosses it also syncs, and its appenders return after that sync). A
    /// crash of the machine may lose what was appended in the last `max_delay`; a crash of the
    /// process loses nothing.
    Batch {
        /// Longest time written records stay unsynced.
        max_delay: Duration,
        /// Most bytes written records may add up to before a sync.
        max_bytes: u64,
    },
    /// `append` returns once the record is handed to the operating system; the log syncs only
    /// on [`Wal::sync`](crate::Wal::sync), when a segment fills, and on close.
    None,
}

/// What recovery does with damage it finds (the modes of RocksDB's `WALRecoveryMode`).
///
/// Whatever the mode, a record is returned only if its checksum matches, and a batch only if all
/// of it is there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// A damaged or incomplete tail of the last segment (a write cut short by a crash) is
    /// truncated and reported; damage followed by valid records is corruption: `open` fails
    /// naming file and offset.
    #[default]
    TolerateCorruptedTail,
    /// Any damage, even a torn tail, makes `open` fail.
    AbsoluteConsistency,
    /// Recovery stops at the first damage: it and everything after it, including later segments,
    /// is discarded and reported. Use it to open a log that `TolerateCorruptedTail` refuses when
    /// losing the records after the damage is acceptable.
    PointInTime,
    /// Damaged records (and any batch they belong to) are skipped and reported; recovery goes on
    /// with the next valid record.
    SkipAnyCorruptedRecords,
}

/// Options of [`Wal::open`](crate::Wal::open).
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// When appends are durable. Default: [`Durability::Sync`].
    pub durability: Durability,
    /// A segment is closed and a new one started when the next request does not fit in this
    /// many bytes (a single request larger than this gets a segment of its own). Default 64 MiB.
    pub segment_bytes_max: u64,
    /// Reserve each new segment's space up front (`fallocate`), so that appends overwrite
    /// allocated blocks and a sync need not also commit a change of file size. Default `true`.
    pub preallocate: bool,
    /// Largest payload accepted by `append`. Default 1 MiB + 4 KiB.
    pub record_bytes_max: u32,
    /// Largest payload length believed on recovery; a larger length read from disk is damage,
    /// never an allocation. Must be at least `record_bytes_max`. Default 10 MiB.
    pub recovery_record_bytes_max: u32,
    /// Most records in one `append_batch`.
    pub batch_records_max: usize,
    /// Most payload bytes in one `append_batch`.
    pub batch_bytes_max: u64,
    /// What recovery does with damage.
    pub recovery_mode: RecoveryMode,
    /// Group commit's commit delay: the longest a leader about to `fdatasync` waits for the
    /// appenders it knows are on their way (in `submit`, or just acknowledged and holding their
    /// [`Ticket`](crate::Ticket)), so that one sync serves them too. The wait is also bounded by
    /// the recent `fdatasync` latency and never happens when every appender is already queued
    /// (a lone appender never waits). `Duration::ZERO` turns it off. Default 1 ms.
    pub commit_delay_max: Duration,
    /// Group commit's followers: the longest an appender waiting for a leader's round yields
    /// its CPU to other threads, checking whether the round has served it, before it sleeps
    /// until woken. A follower served while yielding returns without the cost of a wake-up
    /// (a `futex` call by the leader, an inter-processor interrupt, a context switch from
    /// idle), which for 30 followers on 2 cores adds up to about an `fdatasync`. A follower
    /// yields for three recent `fdatasync` latencies (the longest it expects to wait), and
    /// not at all when that exceeds this: a yielding thread stays runnable and takes CPU time
    /// from the threads doing work, which slow syncs would make a waste. `Duration::ZERO`
    /// turns it off. Default 1 ms.
    pub follower_yield_max: Duration,
    /// In the modes that do not sync every append (`None`, `Batch`), each time this many more
    /// bytes of a segment are written, the log asks the OS to start writing them to disk
    /// ([`FsFile::start_writeback`](logstore_fs::FsFile::start_writeback), RocksDB's
    /// `wal_bytes_per_sync`), so the disk works while appends go on and the sync that closes a
    /// full segment finds little left to do, instead of stalling the appender for a whole
    /// segment's writeback. A hint: it changes no guarantee. `0` turns it off. Default 1 MiB.
    pub writeback_interval_bytes: u64,
    /// With `preallocate`, in a round that syncs, the leader keeps the preallocated space up to
    /// this many bytes past the records written, zero-filled (topping it up, with one write made
    /// durable by that round's own sync, once less than half is left), so that synced appends overwrite blocks already
    /// written and their `fdatasync` need not also commit the conversion of unwritten extents.
    /// Costs one write of zeros per byte of log. Never past the preallocated space. `0` turns
    /// it off. Default 1 MiB.
    pub zero_ahead_bytes: u64,
    /// The file system; [`StdFs`] by default, a `FaultFs` in crash tests.
    pub fs: Arc<dyn FileSystem>,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            durability: Durability::Sync,
            segment_bytes_max: SEGMENT_BYTES_MAX_DEFAULT,
            preallocate: true,
            record_bytes_max: RECORD_BYTES_MAX_DEFAULT,
            recovery_record_bytes_max: RECOVERY_RECORD_BYTES_MAX_DEFAULT,
            batch_records_max: BATCH_RECORDS_MAX_DEFAULT,
            batch_bytes_max: BATCH_BYTES_MAX_DEFAULT,
            recovery_mode: RecoveryMode::default(),
            commit_delay_max: COMMIT_DELAY_MAX_DEFAULT,
            follower_yield_max: FOLLOWER_YIELD_MAX_DEFAULT,
            writeback_interval_bytes: WRITEBACK_INTERVAL_BYTES_DEFAULT,
            zero_ahead_bytes: ZERO_AHEAD_BYTES_DEFAULT,
            fs: Arc::new(StdFs),
        }
    }
}

impl WalOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        let fail = |what: String| Err(WalError::InvalidOptions(what));
        let smallest_segment = SEGMENT_HEADER_BYTES + RECORD_HEADER_BYTES as u64;
        if self.segment_bytes_max < smallest_segment {
            return fail(format!(
                "segment_bytes_max {} is below the minimum of {smallest_segment}",
                self.segment_bytes_max
            ));
        }
        if self.recovery_record_bytes_max < self.record_bytes_max {
            return fail(format!(
                "recovery_record_bytes_max {} is below record_bytes_max {}: the log could not \
                 read back what it wrote",
                self.recovery_record_bytes_max, self.record_bytes_max
            ));
        }
        if self.batch_records_max == 0 || self.batch_bytes_max == 0 {
            return fail("batch_records_max and batch_bytes_max must be positive".into());
        }
        if self.commit_delay_max > COMMIT_DELAY_MAX_LIMIT {
            return fail(format!(
                "commit_delay_max {:?} exceeds the limit of {COMMIT_DELAY_MAX_LIMIT:?}",
                self.commit_delay_max
            ));
        }
        if let Durability::Batch { max_delay, max_bytes } = self.durability {
            if max_delay.is_zero() || max_bytes == 0 {
                return fail(format!(
                    "Durability::Batch needs a positive max_delay and max_bytes, got {max_delay:?} \
                     and {max_bytes}"
                ));
            }
        }
        Ok(())
    }
}
