//! A write cut short by a crash, at every byte: the torn record (or the whole torn batch) is
//! dropped and reported, everything before it is kept, and appends continue cleanly.

mod common;

use common::*;
use logstore_fs::FaultFs;
use logstore_wal::{RECORD_HEADER_BYTES, RecoveryMode, SEGMENT_HEADER_BYTES, Wal, WalError};

const PAYLOAD_BYTES: usize = 30;
const FRAMED: u64 = (RECORD_HEADER_BYTES + PAYLOAD_BYTES) as u64;

/// Writes 3 single records then `last` (one record, or a batch), and returns the segment bytes
/// and the offset where `last` starts.
fn log_with_last_request(last_batch: usize) -> (FaultFs, Vec<u8>, u64) {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
    for i in 1..=3 {
        wal.append(&payload(i, PAYLOAD_BYTES)).unwrap();
    }
    let start = SEGMENT_HEADER_BYTES + 3 * FRAMED;
    if last_batch == 1 {
        wal.append(&payload(4, PAYLOAD_BYTES)).unwrap();
    } else {
        let batch: Vec<Vec<u8>> =
            (4..4 + last_batch as u64).map(|i| payload(i, PAYLOAD_BYTES)).collect();
        wal.append_batch(&batch).unwrap();
    }
    wal.close().unwrap();
    let bytes = fs.read_file(&segment(&dir(), 1)).unwrap();
    (fs, bytes, start)
}

/// Cuts the last request at every byte, both as preallocated space (zeros after the cut) and
/// as a shorter file, and checks recovery keeps exactly records 1..=3.
fn check_every_cut(last_batch: usize) {
    let (fs, bytes, start) = log_with_last_request(last_batch);
    let end = start + last_batch as u64 * FRAMED;
    for cut in start..end {
        for zero_filled in [true, false] {
            let mut damaged = bytes.clone();
            if zero_filled {
                damaged[cut as usize..].fill(0);
            } else {
                damaged.truncate(cut as usize);
            }
            fs.overwrite_file(&segment(&dir(), 1), &damaged).unwrap();
            let what =
                format!("cut at {cut} (request starts at {start}), zero-filled {zero_filled}");

            let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
            let seqs: Vec<u64> = records(&wal).iter().map(|r| r.seq).collect();
            assert_eq!(seqs, [1, 2, 3], "{what}");
            let report = wal.recovery();
            if cut == start {
                assert_eq!(report.torn_tail, None, "{what}: nothing of the request reached disk");
            } else {
                let torn = report.torn_tail.as_ref().unwrap_or_else(|| panic!("{what}: no report"));
                assert_eq!(torn.offset, start, "{what}");
                assert_eq!(torn.path, segment(&dir(), 1));
            }
            // Appending after the repair reuses the torn request's place, and stale bytes of it
            // never resurface as records.
            assert_eq!(wal.append(b"after").unwrap(), 4, "{what}");
            wal.close().unwrap();
            let wal = Wal::open(dir(), options(&fs, 1 << 12)).unwrap();
            let all = records(&wal);
            assert_eq!(all.len(), 4, "{what}");
            assert_eq!(all[3].payload, b"after", "{what}");
            assert_eq!(wal.recovery().torn_tail, None, "{what}");
            drop(wal);
            fs.overwrite_file(&segment(&dir(), 1), &bytes).unwrap();
        }
    }
}

#[test]
fn torn_last_record_at_every_byte() {
    check_every_cut(1);
}

#[test]
fn torn_batch_at_every_byte_is_all_or_nothing() {
    check_every_cut(3);
}

#[test]
fn absolute_consistency_refuses_a_torn_tail() {
    let (fs, mut bytes, start) = log_with_last_request(1);
    bytes[(start + 5) as usize..].fill(0);
    fs.overwrite_file(&segment(&dir(), 1), &bytes).unwrap();
    let opts = with_mode(options(&fs, 1 << 12), RecoveryMode::AbsoluteConsistency);
    let err = Wal::open(dir(), opts).unwrap_err();
    match err {
        WalError::Corruption { offset, .. } => assert_eq!(offset, start),
        other => panic!("{other}"),
    }
}
