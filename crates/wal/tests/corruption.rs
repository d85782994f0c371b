//! Damage with valid records after it is corruption, not a torn tail: each recovery mode does
//! what it promises, and nothing damaged is ever returned.

mod common;

use common::*;
use logstore_fs::FaultFs;
use logstore_wal::{RECORD_HEADER_BYTES, RecoveryMode, SEGMENT_HEADER_BYTES, Wal, WalError};

const PAYLOAD_BYTES: usize = 30;
const FRAMED: u64 = (RECORD_HEADER_BYTES + PAYLOAD_BYTES) as u64;

/// Offset of record `seq` in a segment of equal-size records that starts at `first_seq`.
fn offset_of(seq: u64, first_seq: u64) -> u64 {
    SEGMENT_HEADER_BYTES + (seq - first_seq) * FRAMED
}

/// A log of records 1..=10 in one segment, with one byte of record 5's payload flipped.
fn damaged_log() -> FaultFs {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
    for i in 1..=10 {
        wal.append(&payload(i, PAYLOAD_BYTES)).unwrap();
    }
    wal.close().unwrap();
    flip(&fs, 1, offset_of(5, 1) + RECORD_HEADER_BYTES as u64 + 3);
    fs
}

fn flip(fs: &FaultFs, segment_id: u64, at: u64) {
    let path = segment(&dir(), segment_id);
    let mut bytes = fs.read_file(&path).unwrap();
    bytes[at as usize] ^= 0x40;
    fs.overwrite_file(&path, &bytes).unwrap();
}

fn open(fs: &FaultFs, mode: RecoveryMode) -> Result<Wal, WalError> {
    Wal::open(dir(), with_mode(options(fs, 1 << 12), mode))
}

fn seqs(wal: &Wal) -> Vec<u64> {
    records(wal).iter().map(|r| r.seq).collect()
}

#[test]
fn tolerate_corrupted_tail_refuses_damage_in_the_middle() {
    let fs = damaged_log();
    let err = open(&fs, RecoveryMode::TolerateCorruptedTail).unwrap_err();
    let text = err.to_string();
    match err {
        WalError::Corruption { path, offset, reason } => {
            assert_eq!(path, segment(&dir(), 1));
            assert_eq!(offset, offset_of(5, 1));
            assert!(reason.contains("checksum"), "{reason}");
            assert!(text.contains("00000000000000000001.wal") && text.contains("offset"), "{text}");
        }
        other => panic!("{other}"),
    }
    // Refusing changed nothing: the same open fails again the same way.
    assert!(matches!(
        open(&fs, RecoveryMode::TolerateCorruptedTail),
        Err(WalError::Corruption { .. })
    ));
}

#[test]
fn absolute_consistency_refuses_damage_in_the_middle() {
    let fs = damaged_log();
    let err = open(&fs, RecoveryMode::AbsoluteConsistency).unwrap_err();
    assert!(
        matches!(err, WalError::Corruption { offset, .. } if offset == offset_of(5, 1)),
        "{err}"
    );
}

#[test]
fn point_in_time_keeps_what_precedes_the_damage() {
    let fs = damaged_log();
    let wal = open(&fs, RecoveryMode::PointInTime).unwrap();
    assert_eq!(seqs(&wal), [1, 2, 3, 4]);
    assert_eq!(wal.recovery().torn_tail.as_ref().unwrap().offset, offset_of(5, 1));
    assert_eq!(wal.append(b"new 5").unwrap(), 5);
    wal.close().unwrap();
    // The cut is now a clean log in any mode.
    let wal = open(&fs, RecoveryMode::AbsoluteConsistency).unwrap();
    assert_eq!(seqs(&wal), [1, 2, 3, 4, 5]);
    assert_eq!(records(&wal)[4].payload, b"new 5");
}

#[test]
fn skip_any_corrupted_records_skips_only_the_damage() {
    let fs = damaged_log();
    let wal = open(&fs, RecoveryMode::SkipAnyCorruptedRecords).unwrap();
    assert_eq!(seqs(&wal), [1, 2, 3, 4, 6, 7, 8, 9, 10]);
    let skipped = &wal.recovery().skipped;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!((skipped[0].offset, skipped[0].len_bytes), (offset_of(5, 1), FRAMED));
    assert_eq!(wal.recovery().next_seq, 11);
    assert_eq!(wal.append(b"11").unwrap(), 11);
    wal.close().unwrap();
    // Replay after reopen skips it again, consistently.
    let wal = open(&fs, RecoveryMode::SkipAnyCorruptedRecords).unwrap();
    assert_eq!(seqs(&wal), [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]);
}

#[test]
fn skip_drops_a_batch_with_a_damaged_member_whole() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
    wal.append(&payload(1, PAYLOAD_BYTES)).unwrap();
    let batch: Vec<Vec<u8>> = (2..=4).map(|i| payload(i, PAYLOAD_BYTES)).collect();
    wal.append_batch(&batch).unwrap();
    wal.append(&payload(5, PAYLOAD_BYTES)).unwrap();
    wal.close().unwrap();
    flip(&fs, 1, offset_of(3, 1) + RECORD_HEADER_BYTES as u64); // the batch's middle record
    let wal = open(&fs, RecoveryMode::SkipAnyCorruptedRecords).unwrap();
    assert_eq!(seqs(&wal), [1, 5]);
    assert_eq!(wal.recovery().skipped[0].offset, offset_of(2, 1), "damage starts with the batch");
    drop(wal);
    let err = open(&fs, RecoveryMode::TolerateCorruptedTail).unwrap_err();
    assert!(
        matches!(err, WalError::Corruption { offset, .. } if offset == offset_of(2, 1)),
        "{err}"
    );
}

#[test]
fn damage_at_the_end_of_an_older_segment_is_not_a_torn_tail() {
    let fs = FaultFs::new();
    // Two 50-byte records per 132-byte segment.
    let wal = Wal::open(dir(), options(&fs, 132)).unwrap();
    for i in 1..=6 {
        wal.append(&payload(i, PAYLOAD_BYTES)).unwrap();
    }
    wal.close().unwrap();
    // Record 2 is the last of segment 1, which is not the last segment.
    flip(&fs, 1, offset_of(2, 1) + RECORD_HEADER_BYTES as u64);
    let err = open(&fs, RecoveryMode::TolerateCorruptedTail).unwrap_err();
    assert!(err.to_string().contains("later segments follow"), "{err}");
    let wal = open(&fs, RecoveryMode::PointInTime).unwrap();
    assert_eq!(seqs(&wal), [1]);
    assert_eq!(wal.recovery().dropped_segments.len(), 2);
    assert_eq!(wal.stats().segments, 1);
}

#[test]
fn damaged_segment_header_is_corruption_or_a_dropped_segment() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 132)).unwrap();
    for i in 1..=6 {
        wal.append(&payload(i, PAYLOAD_BYTES)).unwrap();
    }
    wal.close().unwrap();
    flip(&fs, 2, 14); // segment 2's id field
    let err = open(&fs, RecoveryMode::TolerateCorruptedTail).unwrap_err();
    assert!(
        matches!(&err, WalError::Corruption { offset: 0, path, .. } if *path == segment(&dir(), 2)),
        "{err}"
    );
    let wal = open(&fs, RecoveryMode::SkipAnyCorruptedRecords).unwrap();
    assert_eq!(seqs(&wal), [1, 2, 5, 6]);
    assert_eq!(wal.recovery().dropped_segments, [segment(&dir(), 2)]);
}

#[test]
fn a_huge_length_on_disk_is_damage_not_an_allocation() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
    for i in 1..=3 {
        wal.append(&payload(i, PAYLOAD_BYTES)).unwrap();
    }
    wal.close().unwrap();
    let path = segment(&dir(), 1);
    let mut bytes = fs.read_file(&path).unwrap();
    let len_at = (offset_of(2, 1) + 4) as usize;
    bytes[len_at..len_at + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    fs.overwrite_file(&path, &bytes).unwrap();
    let err = open(&fs, RecoveryMode::AbsoluteConsistency).unwrap_err();
    assert!(err.to_string().contains("exceeds the recovery limit"), "{err}");
    let wal = open(&fs, RecoveryMode::SkipAnyCorruptedRecords).unwrap();
    assert_eq!(seqs(&wal), [1, 3]);
}
