//! Recovery: reading every segment once at open, telling a torn tail from corruption, and
//! deciding per [`RecoveryMode`] what to keep.
//!
//! [`scan`] only reads; [`Scan::repair`] then makes the directory match what the scan decided
//! (zeroing a torn tail, deleting dropped segments and leftover temporary files), so a caller
//! can also inspect a log without changing it.

use crate::error::{Result, WalError, io_err};
use crate::format::{
    self, CLEAN_MARKER_BYTES, CLEAN_MARKER_NAME, CleanMarker, RecordKind, SEGMENT_HEADER_BYTES,
    TEMP_SUFFIX,
};
use crate::options::{RecoveryMode, WalOptions};
use crate::segment::{Frame, SegmentReader};
use logstore_fs::{FileSystem, OpenMode};
use std::path::{Path, PathBuf};

/// A stretch of a segment that recovery did not keep, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Where the discarded bytes start.
    pub offset: u64,
    /// How many bytes were discarded.
    pub len_bytes: u64,
    /// What was found there.
    pub reason: String,
}

/// What [`Wal::open`](crate::Wal::open) found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments kept.
    pub segments: usize,
    /// Records recovered (each batch complete).
    pub records: u64,
    /// Sequence number of the oldest record kept (equal to `next_seq` when there is none).
    pub first_seq: u64,
    /// Sequence number the next append gets.
    pub next_seq: u64,
    /// Where the last segment was cut: a write torn by a crash (or, in
    /// [`RecoveryMode::PointInTime`], the first damage). `None` after a clean shutdown.
    pub torn_tail: Option<Damage>,
    /// Damaged records skipped in [`RecoveryMode::SkipAnyCorruptedRecords`].
    pub skipped: Vec<Damage>,
    /// Whole segments discarded ([`RecoveryMode::PointInTime`] after damage, or unreadable
    /// segments in [`RecoveryMode::SkipAnyCorruptedRecords`]).
    pub dropped_segments: Vec<PathBuf>,
    /// Leftover temporary files of a segment creation cut short by a crash, removed.
    pub removed_temp_files: Vec<PathBuf>,
    /// The log was closed cleanly last time (its clean-shutdown marker matched what recovery
    /// found), so the scan of the preallocated tail and the rewrite of the last segment were
    /// skipped.
    pub clean_shutdown: bool,
}

/// What recovery keeps of one segment.
#[derive(Clone, Debug)]
pub(crate) struct SegmentState {
    pub id: u64,
    pub path: PathBuf,
    pub first_seq: u64,
    /// Offset just after the last frame kept: where appends continue in the last segment.
    pub valid_end: u64,
    /// Ranges `[start, end)` of damaged bytes that replay jumps over.
    pub skips: Vec<(u64, u64)>,
}

/// The outcome of reading the whole log.
#[derive(Debug)]
pub(crate) struct Scan {
    pub segments: Vec<SegmentState>,
    pub report: RecoveryReport,
    /// Segment files to delete (dropped by the recovery mode).
    drop_paths: Vec<PathBuf>,
    /// The clean-shutdown marker file, if there is one (removed by `repair`).
    marker_path: Option<PathBuf>,
    /// The id a new segment gets: above every segment seen, kept or not.
    pub next_segment_id: u64,
}

/// Reads every segment in `dir` and decides what to keep. Changes nothing on disk.
pub(crate) fn scan(dir: &Path, options: &WalOptions) -> Result<Scan> {
    let fs = &*options.fs;
    let mut ids = Vec::new();
    let mut report = RecoveryReport::default();
    let mut marker_path = None;
    for name in fs.list_dir(dir).map_err(io_err("list", dir))? {
        if let Some(id) = format::parse_segment_name(&name) {
            ids.push(id);
        } else if name.ends_with(TEMP_SUFFIX) {
            report.removed_temp_files.push(dir.join(name));
        } else if name == CLEAN_MARKER_NAME {
            marker_path = Some(dir.join(name));
        }
    }
    ids.sort_unstable();
    // A damaged or unreadable marker is no promise: recover as after a crash.
    let clean = match &marker_path {
        Some(path) => read_marker(fs, path)?,
        None => None,
    };
    let mut scanner = Scanner {
        mode: options.recovery_mode,
        clean,
        clean_end_found: false,
        report,
        segments: Vec::new(),
        drop_paths: Vec::new(),
        next_seq: None,
        gap_allowed: false,
        records: 0,
    };
    for (index, &id) in ids.iter().enumerate() {
        let is_last = index + 1 == ids.len();
        let path = format::segment_path(dir, id);
        match scanner.segment(fs, id, &path, is_last, options.recovery_record_bytes_max)? {
            Flow::Next => {}
            Flow::StopAll => {
                scanner
                    .drop_paths
                    .extend(ids[index + 1..].iter().map(|&id| format::segment_path(dir, id)));
                break;
            }
        }
    }
    let next_seq = scanner.next_seq.unwrap_or(1);
    let mut report = scanner.report;
    report.clean_shutdown = scanner.clean_end_found
        && clean.is_some_and(|marker| marker.next_seq == next_seq)
        && report.torn_tail.is_none()
        && report.skipped.is_empty()
        && scanner.drop_paths.is_empty();
    report.segments = scanner.segments.len();
    report.records = scanner.records;
    report.next_seq = next_seq;
    report.first_seq = scanner.segments.first().map_or(next_seq, |s| s.first_seq);
    report.dropped_segments = scanner.drop_paths.clone();
    Ok(Scan {
        segments: scanner.segments,
        report,
        drop_paths: scanner.drop_paths,
        marker_path,
        next_segment_id: ids.last().map_or(1, |id| id + 1),
    })
}

enum Flow {
    Next,
    StopAll,
}

/// What to do after damage inside a segment.
enum AfterDamage {
    /// Go on reading at this offset.
    ResumeAt(u64),
    /// Keep the segment up to the damage, then go on with the next segment.
    CutHere,
    /// Keep the segment up to the damage and drop every later segment.
    CutAndStop,
}

struct Scanner {
    mode: RecoveryMode,
    /// The clean-shutdown marker, if an intact one was found.
    clean: Option<CleanMarker>,
    /// Whether the last segment ended exactly where the marker says.
    clean_end_found: bool,
    report: RecoveryReport,
    segments: Vec<SegmentState>,
    drop_paths: Vec<PathBuf>,
    /// Sequence number the next record must have (`None` before the first segment).
    next_seq: Option<u64>,
    /// Whether the next sequence number may jump ahead (after skipped damage).
    gap_allowed: bool,
    records: u64,
}

impl Scanner {
    fn segment(
        &mut self,
        fs: &dyn FileSystem,
        id: u64,
        path: &Path,
        is_last: bool,
        recovery_record_bytes_max: u32,
    ) -> Result<Flow> {
        let mut reader = SegmentReader::open(fs, path, recovery_record_bytes_max)?;
        let len_bytes = reader.len_bytes();

        let header = match reader.header()? {
            Ok(header) if header.segment_id != id => {
                Err(format!("header names segment {}, file name says {id}", header.segment_id))
            }
            Ok(header) => match self.next_seq {
                Some(expected)
                    if header.first_seq < expected
                        || (header.first_seq > expected && !self.gap_allowed) =>
                {
                    Err(format!(
                        "segment starts at sequence {}, previous segment ends before {expected}",
                        header.first_seq
                    ))
                }
                _ => Ok(header),
            },
            Err(reason) => Err(reason),
        };
        let header = match header {
            Ok(header) => header,
            Err(reason) => {
                let damage = Damage { path: path.to_owned(), offset: 0, len_bytes, reason };
                return match self.mode {
                    RecoveryMode::PointInTime => {
                        self.drop_paths.push(path.to_owned());
                        self.report.torn_tail = Some(damage);
                        Ok(Flow::StopAll)
                    }
                    RecoveryMode::SkipAnyCorruptedRecords => {
                        self.drop_paths.push(path.to_owned());
                        self.report.skipped.push(damage);
                        self.gap_allowed = true;
                        Ok(Flow::Next)
                    }
                    _ => Err(corruption(&damage)),
                };
            }
        };

        let mut state = SegmentState {
            id,
            path: path.to_owned(),
            first_seq: header.first_seq,
            valid_end: SEGMENT_HEADER_BYTES,
            skips: Vec::new(),
        };
        let mut next_seq = header.first_seq;
        self.gap_allowed = false;
        let mut offset = SEGMENT_HEADER_BYTES;
        // The sequence number after the last request kept (the one ending at `valid_end`).
        let mut kept_seq_end = header.first_seq;
        // The batch being read: its start offset and first sequence number.
        let mut batch: Option<(u64, u64)> = None;
        let flow = loop {
            let damage = match reader.frame(offset)? {
                Frame::Record { seq, kind, next, .. } => {
                    let in_order = seq == next_seq || (self.gap_allowed && seq > next_seq);
                    let problem = match (in_order, kind, batch) {
                        (false, ..) => Some(format!("record {seq} where {next_seq} was expected")),
                        (true, RecordKind::Full, None) => {
                            self.records += 1;
                            None
                        }
                        (true, RecordKind::BatchFirst, None) => {
                            batch = Some((offset, seq));
                            None
                        }
                        (true, RecordKind::BatchMiddle, Some(_)) => None,
                        (true, RecordKind::BatchLast, Some((_, first))) => {
                            self.records += seq - first + 1;
                            batch = None;
                            None
                        }
                        (true, kind, _) => {
                            Some(format!("record {seq} of kind {kind:?} out of batch order"))
                        }
                    };
                    if problem.is_none() {
                        self.gap_allowed = false;
                        next_seq = seq + 1;
                        offset = next;
                        if batch.is_none() {
                            state.valid_end = next;
                            kept_seq_end = next_seq;
                        }
                    }
                    problem
                }
                Frame::End => match batch {
                    Some((start, _)) => {
                        Some(format!("batch starting at offset {start} is incomplete"))
                    }
                    None if is_last
                        && self
                            .clean
                            .is_some_and(|m| m.segment_id == id && m.valid_end == offset) =>
                    {
                        // A clean close synced everything and wrote nothing past this point:
                        // the preallocated tail need not be searched.
                        self.clean_end_found = true;
                        break Flow::Next;
                    }
                    None => match reader.find_valid_after(offset, next_seq, false)? {
                        Some(at) => {
                            Some(format!("zeroed bytes, then a valid record at offset {at}"))
                        }
                        None => break Flow::Next,
                    },
                },
                Frame::Bad { reason } => Some(reason),
            };
            let Some(reason) = damage else { continue };
            // A damaged batch is dropped whole: what is kept ends where the batch starts. Valid
            // records are looked for after the damage itself, not after the batch's start, whose
            // intact first records belong to the same torn write.
            let (cut_at, seq_resume) = match batch.take() {
                Some((start, first)) => (start, first),
                None => (offset, next_seq),
            };
            let seq_after_damage = next_seq;
            next_seq = seq_resume;
            let found = Found { cut_at, damage_at: offset, seq_after_damage };
            let flow = match self.damage(&mut reader, path, found, reason, is_last)? {
                AfterDamage::ResumeAt(resume) => {
                    state.skips.push((cut_at, resume));
                    self.gap_allowed = true;
                    offset = resume;
                    continue;
                }
                AfterDamage::CutHere => Flow::Next,
                AfterDamage::CutAndStop => Flow::StopAll,
            };
            // The log goes on right after the last request kept: records read after damage
            // skipped earlier, and cut off now, leave neither their sequence numbers nor the
            // skip (whose gap precedes nothing kept) behind.
            next_seq = kept_seq_end;
            state.skips.retain(|&(start, _)| start < state.valid_end);
            break flow;
        };
        self.next_seq = Some(next_seq);
        self.segments.push(state);
        Ok(flow)
    }

    /// Applies the recovery mode to damage found in `path`.
    fn damage(
        &mut self,
        reader: &mut SegmentReader,
        path: &Path,
        found: Found,
        reason: String,
        is_last: bool,
    ) -> Result<AfterDamage> {
        let Found { cut_at: at, damage_at, seq_after_damage: seq_min } = found;
        let len_bytes = reader.len_bytes();
        let damage = |len_bytes: u64, reason: String| Damage {
            path: path.to_owned(),
            offset: at,
            len_bytes,
            reason,
        };
        match self.mode {
            RecoveryMode::AbsoluteConsistency => Err(corruption(&damage(len_bytes - at, reason))),
            RecoveryMode::TolerateCorruptedTail => {
                if !is_last {
                    let reason =
                        format!("{reason}; later segments follow, so this is not a torn tail");
                    return Err(corruption(&damage(len_bytes - at, reason)));
                }
                if let Some(valid) = reader.find_valid_after(damage_at + 1, seq_min, false)? {
                    let reason = format!("{reason}; a valid record follows at offset {valid}");
                    return Err(corruption(&damage(len_bytes - at, reason)));
                }
                self.report.torn_tail = Some(damage(len_bytes - at, reason));
                Ok(AfterDamage::CutHere)
            }
            RecoveryMode::PointInTime => {
                self.report.torn_tail = Some(damage(len_bytes - at, reason));
                Ok(AfterDamage::CutAndStop)
            }
            RecoveryMode::SkipAnyCorruptedRecords => {
                match reader.find_valid_after(damage_at + 1, seq_min, true)? {
                    Some(resume) => {
                        self.report.skipped.push(damage(resume - at, reason));
                        Ok(AfterDamage::ResumeAt(resume))
                    }
                    None if is_last => {
                        self.report.torn_tail = Some(damage(len_bytes - at, reason));
                        Ok(AfterDamage::CutHere)
                    }
                    None => {
                        self.report.skipped.push(damage(len_bytes - at, reason));
                        // The next segment may start past the records skipped here.
                        self.gap_allowed = true;
                        Ok(AfterDamage::CutHere)
                    }
                }
            }
        }
    }
}

/// Where damage was found inside a segment.
struct Found {
    /// Where the kept data ends: the damage, or the start of the batch it is in.
    cut_at: u64,
    /// The damaged frame itself.
    damage_at: u64,
    /// The sequence number a record after the damage would have at least.
    seq_after_damage: u64,
}

/// Reads the clean-shutdown marker; `None` if it is not an intact marker.
fn read_marker(fs: &dyn FileSystem, path: &Path) -> Result<Option<CleanMarker>> {
    let file = fs.open(path, OpenMode::Read).map_err(io_err("open", path))?;
    let mut bytes = [0u8; CLEAN_MARKER_BYTES + 1];
    let mut len = 0;
    while len < bytes.len() {
        match file.read_at(&mut bytes[len..], len as u64).map_err(io_err("read", path))? {
            0 => break,
            n => len += n,
        }
    }
    Ok(CleanMarker::decode(&bytes[..len]))
}

fn corruption(damage: &Damage) -> WalError {
    WalError::Corruption {
        path: damage.path.clone(),
        offset: damage.offset,
        reason: damage.reason.clone(),
    }
}

impl Scan {
    /// Makes the directory match the scan, durably: removes leftover temporary files, dropped
    /// segments and the clean-shutdown marker (it promises nothing about what this process will
    /// write), settles the last segment unless the log was closed cleanly (see [`settle_last`]),
    /// and syncs the directory, which also makes durable any segment name whose directory sync
    /// failed in an earlier process.
    pub(crate) fn repair(&self, dir: &Path, fs: &dyn FileSystem) -> Result<()> {
        let marker = self.marker_path.iter();
        for path in self.report.removed_temp_files.iter().chain(&self.drop_paths).chain(marker) {
            fs.remove_file(path).map_err(io_err("remove", path))?;
        }
        // After a clean close every byte is on disk and nothing follows the data: nothing to
        // settle. After anything else, the last segment may hold bytes only the page cache has.
        if let (false, Some(last)) = (self.report.clean_shutdown, self.segments.last()) {
            settle_last(fs, &last.path, last.valid_end)?;
        }
        fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
    }
}

/// Makes the last segment durably hold what recovery kept and nothing after it:
/// - The kept bytes `0..valid_end` are written again, then synced. What recovery read may be in
///   the page cache only: after a failed `fdatasync` Linux marks the pages clean, so no later
///   sync writes them ("fsyncgate"). Left so, the reopened log would append and acknowledge
///   records after a hole that the next power cut exposes. Writing dirties the pages again.
/// - Everything after `valid_end` is cut off and the file extended back to its length (zeros,
///   space reserved), so that stale bytes of a torn write are never taken for records appended
///   later. Unlike overwriting non-zero bytes, this does not trust what the page cache shows, so
///   it also undoes a tail that an earlier attempt zeroed in the cache but failed to sync.
///
/// Costs one write of the segment's data (at most about `segment_bytes_max`) and one sync per
/// open.
fn settle_last(fs: &dyn FileSystem, path: &Path, valid_end: u64) -> Result<()> {
    const CHUNK_BYTES: u64 = 1 << 20;
    let file = fs.open(path, OpenMode::ReadWrite).map_err(io_err("open", path))?;
    let len_bytes = file.len().map_err(io_err("stat", path))?;
    debug_assert!(valid_end <= len_bytes, "kept data ends past the end of {}", path.display());
    let mut buf = vec![0u8; CHUNK_BYTES.min(valid_end) as usize];
    let mut at = 0;
    while at < valid_end {
        let n = CHUNK_BYTES.min(valid_end - at) as usize;
        file.read_exact_at(&mut buf[..n], at).map_err(io_err("read", path))?;
        file.write_all_at(&buf[..n], at).map_err(io_err("write", path))?;
        at += n as u64;
    }
    if len_bytes > valid_end {
        file.set_len(valid_end).map_err(io_err("truncate", path))?;
        file.allocate(len_bytes).map_err(io_err("preallocate", path))?;
    }
    file.sync_data().map_err(io_err("fdatasync", path))
}
