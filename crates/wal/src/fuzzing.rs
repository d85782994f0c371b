//! The code the `wal_segment` fuzz target runs, and the stable test replaying its corpus
//! (`tests/fuzz_corpus.rs`): arbitrary bytes as the segment file of a log, opened in every
//! recovery mode and replayed, checking that recovery never panics and that what it keeps is
//! consistent and stays usable.

use crate::format::{self, le_u32};
use crate::{
    Durability, RECORD_HEADER_BYTES, RecoveryMode, SEGMENT_HEADER_BYTES, Wal, WalError, WalOptions,
};
use logstore_fs::{FaultFs, FileSystem, OpenMode};
use std::path::Path;

/// The record limits of the fuzzed log, small so that a length read from the input is far more
/// often above the limit than below it: record buffers can never exceed this.
pub const RECORD_BYTES_MAX: u32 = 1 << 10;

/// Segments of the fuzzed log: preallocated, and small, so that a new segment costs little
/// memory and an append after a large input starts a second segment.
pub const SEGMENT_BYTES_MAX: u64 = 4 << 10;

/// Payload of the record appended after a successful open, to check the log goes on correctly.
const APPENDED: &[u8] = b"appended after recovery";

/// The recovery modes, in the order [`segment`] tries them.
const MODES: [RecoveryMode; 4] = [
    RecoveryMode::TolerateCorruptedTail,
    RecoveryMode::AbsoluteConsistency,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipAnyCorruptedRecords,
];

/// Writes `bytes` as the first segment (`00000000000000000001.wal`) of a log on an in-memory
/// file system, then for each recovery mode: opens the log, replays it, appends a record,
/// closes, reopens and replays again. Does it all once more with the input's checksums made to
/// match, to get past them.
///
/// # Panics
///
/// When recovery breaks a promise, which is what the fuzzer looks for: a panic anywhere inside;
/// `open` failing other than with [`WalError::Corruption`] in the two strict modes (the other
/// two must always open); a replay error after a successful open; sequence numbers not
/// strictly increasing, or not below `next_seq`; a record longer than [`RECORD_BYTES_MAX`] or
/// than the input; a record count differing from the recovery report; `AbsoluteConsistency`
/// opening what `TolerateCorruptedTail` refused or anything with damage; modes disagreeing on
/// an undamaged log; or a reopened log not returning exactly what it returned before plus the
/// appended record.
pub fn segment(bytes: &[u8]) {
    recover_in_every_mode(bytes);
    let fixed = with_checksums_fixed(bytes);
    if fixed != bytes {
        recover_in_every_mode(&fixed);
    }
}

/// `bytes` with its checksums made to match: the segment header's, and each record frame's
/// along the chain of frames from the first (as far as their lengths stay inside the input
/// and no frame is all zeros). Random bytes almost never pass a CRC32C, and the fuzzer
/// rarely forges one; with this, [`segment`] also reaches what recovery checks behind the
/// checksums: sequence order, batch structure, lengths and limits.
fn with_checksums_fixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let header = SEGMENT_HEADER_BYTES as usize;
    if out.len() < header {
        return out;
    }
    let crc = format::crc32c(&out[..header - 4]);
    out[header - 4..header].copy_from_slice(&crc.to_le_bytes());
    let mut at = header;
    while at + RECORD_HEADER_BYTES <= out.len() {
        let frame = &out[at..at + RECORD_HEADER_BYTES];
        if frame.iter().all(|&b| b == 0) {
            break;
        }
        let end = at + RECORD_HEADER_BYTES + le_u32(&frame[4..8]) as usize;
        if end > out.len() {
            break;
        }
        let crc = format::record_checksum(&out[at..end]);
        out[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    out
}

/// Opens `bytes` as the log's only segment in each recovery mode and checks what it keeps (see
/// [`segment`]).
fn recover_in_every_mode(bytes: &[u8]) {
    // Records kept by the first mode that found no damage.
    let mut clean = None;
    let mut tolerated = true;
    for mode in MODES {
        let fs = FaultFs::new();
        let dir = Path::new("/fuzz/wal");
        let path = dir.join("00000000000000000001.wal");
        let created = fs
            .create_dir_all(dir)
            .and_then(|()| fs.open(&path, OpenMode::CreateNew))
            .and_then(|_| fs.overwrite_file(&path, bytes));
        assert!(created.is_ok(), "the in-memory file system refused a file: {created:?}");
        let options = WalOptions {
            durability: Durability::None,
            segment_bytes_max: SEGMENT_BYTES_MAX,
            record_bytes_max: RECORD_BYTES_MAX,
            recovery_record_bytes_max: RECORD_BYTES_MAX,
            recovery_mode: mode,
            fs: std::sync::Arc::new(fs),
            ..WalOptions::default()
        };
        let wal = match Wal::open(dir, options.clone()) {
            Ok(wal) => wal,
            // The strict modes refuse damage; the others always find something to keep.
            Err(WalError::Corruption { .. })
                if matches!(
                    mode,
                    RecoveryMode::TolerateCorruptedTail | RecoveryMode::AbsoluteConsistency
                ) =>
            {
                tolerated &= mode != RecoveryMode::TolerateCorruptedTail;
                continue;
            }
            Err(e) => panic!("{mode:?}: open failed: {e}"),
        };
        let report = wal.recovery().clone();
        let damaged = report.torn_tail.is_some()
            || !report.skipped.is_empty()
            || !report.dropped_segments.is_empty();
        match (mode, clean) {
            (RecoveryMode::AbsoluteConsistency, _) => assert!(
                !damaged && tolerated,
                "AbsoluteConsistency opened what TolerateCorruptedTail did not, or damage: \
                 {report:?}"
            ),
            // Without damage every mode keeps the same records.
            (_, None) if !damaged => clean = Some(report.records),
            (_, Some(records)) if !damaged => assert_eq!(records, report.records, "{mode:?}"),
            _ => {}
        }
        let records = replay_all(&wal, bytes.len(), mode);
        assert_eq!(records.len() as u64, report.records, "{mode:?}: replay vs {report:?}");
        let next_seq = wal.next_seq();
        assert_eq!(next_seq, report.next_seq, "{mode:?}");
        assert!(records.last().is_none_or(|(seq, _)| *seq < next_seq), "{mode:?}: {next_seq}");

        // The repaired log goes on: an append lands after everything kept, and a reopen in the
        // same mode finds exactly that.
        let appended = wal.append(APPENDED);
        assert_eq!(appended.as_ref().ok(), Some(&next_seq), "{mode:?}: append: {appended:?}");
        let closed = wal.close();
        assert!(closed.is_ok(), "{mode:?}: close: {closed:?}");
        let wal = match Wal::open(dir, options) {
            Ok(wal) => wal,
            Err(e) => panic!("{mode:?}: the repaired log does not reopen: {e}"),
        };
        let mut expected = records;
        expected.push((next_seq, APPENDED.to_vec()));
        assert_eq!(replay_all(&wal, bytes.len() + APPENDED.len(), mode), expected, "{mode:?}");
        assert_eq!(wal.next_seq(), next_seq + 1, "{mode:?}");
    }
}

/// Every record of `wal` from its first, checked for order and size.
fn replay_all(wal: &Wal, input_bytes: usize, mode: RecoveryMode) -> Vec<(u64, Vec<u8>)> {
    let first_seq = wal.stats().first_seq;
    let replay = match wal.replay(first_seq) {
        Ok(replay) => replay,
        Err(e) => panic!("{mode:?}: replay after a successful open: {e}"),
    };
    let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
    for record in replay {
        let record = match record {
            Ok(record) => record,
            Err(e) => panic!("{mode:?}: replay after a successful open: {e}"),
        };
        let previous = records.last().map_or(first_seq.saturating_sub(1), |(seq, _)| *seq);
        assert!(record.seq > previous, "{mode:?}: record {} after {previous}", record.seq);
        assert!(
            record.payload.len() <= (RECORD_BYTES_MAX as usize).min(input_bytes),
            "{mode:?}: record {} of {} bytes from {input_bytes} bytes of input",
            record.seq,
            record.payload.len()
        );
        records.push((record.seq, record.payload));
    }
    records
}
