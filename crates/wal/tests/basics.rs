//! Round trips, limits, options, truncation and the durability modes.

mod common;

use common::*;
use logstore_fs::{CrashMode, FaultFs, FileSystem, StdFs};
use logstore_wal::{Durability, RecoveryMode, Wal, WalError, WalOptions};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn round_trip_across_segments_and_reopens() {
    let fs = FaultFs::new();
    let opts = options(&fs, 256); // a few records per segment
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    let mut expected = Vec::new();
    for i in 1..=40u64 {
        let p = payload(i, (i as usize * 7) % 90);
        assert_eq!(wal.append(&p).unwrap(), i);
        expected.push(p);
    }
    let batch: Vec<Vec<u8>> = (41..=45).map(|i| payload(i, 10)).collect();
    assert_eq!(wal.append_batch(&batch).unwrap(), 41..46);
    expected.extend(batch);
    let stats = wal.stats();
    assert!(stats.segments > 5, "{stats:?}");
    assert_eq!((stats.next_seq, stats.durable_seq, stats.appended_records), (46, 46, 45));
    assert_eq!(payloads(&records(&wal)), expected);
    wal.close().unwrap();

    let wal = Wal::open(dir(), opts.clone()).unwrap();
    let report = wal.recovery();
    assert_eq!((report.records, report.first_seq, report.next_seq), (45, 1, 46));
    assert_eq!(report.torn_tail, None);
    let all = records(&wal);
    assert_eq!(payloads(&all), expected);
    assert!(all.iter().enumerate().all(|(i, r)| r.seq == i as u64 + 1));
    let from_30: Vec<u64> = wal.replay(30).unwrap().map(|r| r.unwrap().seq).collect();
    assert_eq!(from_30, (30..=45).collect::<Vec<_>>());
    assert_eq!(wal.append(b"after reopen").unwrap(), 46);
    drop(wal); // Drop syncs and closes too

    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(records(&wal).last().unwrap().payload, b"after reopen");
}

#[test]
fn replay_is_a_snapshot_of_the_log_when_called() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 16)).unwrap();
    wal.append(b"a").unwrap();
    let replay = wal.replay(1).unwrap();
    wal.append(b"b").unwrap();
    let seen: Vec<u64> = replay.map(|r| r.unwrap().seq).collect();
    assert_eq!(seen, [1]);
}

#[test]
fn limits_are_enforced_and_named() {
    let fs = FaultFs::new();
    let opts = WalOptions {
        record_bytes_max: 100,
        batch_records_max: 3,
        batch_bytes_max: 150,
        ..options(&fs, 1 << 16)
    };
    let wal = Wal::open(dir(), opts).unwrap();
    wal.append(&[0u8; 100]).unwrap();
    let err = wal.append(&[0u8; 101]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { size_bytes: 101, limit_bytes: 100 }), "{err}");
    assert!(err.to_string().contains("101") && err.to_string().contains("100"));
    let err = wal.append_batch(&[[0u8; 10]; 4]).unwrap_err();
    assert!(matches!(err, WalError::BatchTooLarge { records: 4, records_max: 3, .. }), "{err}");
    let err = wal.append_batch(&[[0u8; 80]; 2]).unwrap_err();
    assert!(
        matches!(err, WalError::BatchTooLarge { size_bytes: 160, bytes_max: 150, .. }),
        "{err}"
    );
    let err = wal.append_batch(&[vec![0u8; 101]]).unwrap_err();
    assert!(matches!(err, WalError::RecordTooLarge { .. }), "{err}");
    let empty: [&[u8]; 0] = [];
    assert!(matches!(wal.append_batch(&empty), Err(WalError::EmptyBatch)));
    // Refused requests take no sequence numbers.
    assert_eq!(wal.append(b"x").unwrap(), 2);
}

#[test]
fn invalid_options_are_refused() {
    let fs = FaultFs::new();
    let bad = [
        WalOptions { segment_bytes_max: 10, ..options(&fs, 1 << 16) },
        WalOptions {
            record_bytes_max: 100,
            recovery_record_bytes_max: 99,
            ..options(&fs, 1 << 16)
        },
        with_durability(
            options(&fs, 1 << 16),
            Durability::Batch { max_delay: Duration::ZERO, max_bytes: 1 },
        ),
        WalOptions { batch_records_max: 0, ..options(&fs, 1 << 16) },
    ];
    for opts in bad {
        let err = Wal::open(dir(), opts).unwrap_err();
        assert!(matches!(err, WalError::InvalidOptions(_)), "{err}");
    }
}

#[test]
fn truncate_before_deletes_only_fully_covered_segments() {
    let fs = FaultFs::new();
    let opts = options(&fs, 200);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    for i in 1..=30 {
        wal.append(&payload(i, 40)).unwrap(); // 60 bytes framed: 2 records per segment
    }
    let before = wal.stats().segments;
    assert_eq!(wal.truncate_before(1).unwrap(), 0);
    let removed = wal.truncate_before(11).unwrap();
    assert!(removed >= 4, "removed {removed} of {before}");
    let first = wal.stats().first_seq;
    assert!(first <= 11 && first > 1, "first retained seq {first}");
    let seqs: Vec<u64> = records(&wal).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (first..=30).collect::<Vec<_>>());
    // Everything but the current segment can go; the current one never does.
    wal.truncate_before(u64::MAX).unwrap();
    assert_eq!(wal.stats().segments, 1);
    wal.close().unwrap();

    let wal = Wal::open(dir(), opts).unwrap();
    let first = wal.recovery().first_seq;
    assert!(first > 11);
    assert_eq!(wal.recovery().next_seq, 31);
    assert_eq!(wal.append(b"next").unwrap(), 31);
}

#[test]
fn none_mode_is_durable_after_sync_and_not_before() {
    let fs = FaultFs::new();
    let opts = with_durability(options(&fs, 1 << 16), Durability::None);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(b"synced").unwrap();
    wal.sync().unwrap();
    wal.append(b"only in the page cache").unwrap();
    assert_eq!(records(&wal).len(), 2, "written records are readable before a sync");
    std::mem::forget(wal); // the process dies: no close
    fs.crash(CrashMode::DropUnsynced);
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"synced".to_vec()]);
}

#[test]
fn batch_mode_syncs_within_max_delay() {
    let fs = FaultFs::new();
    let durability = Durability::Batch { max_delay: Duration::from_millis(5), max_bytes: 1 << 30 };
    let opts = with_durability(options(&fs, 1 << 16), durability);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(b"soon durable").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while wal.stats().durable_seq < 2 {
        assert!(std::time::Instant::now() < deadline, "the syncer never synced");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"soon durable".to_vec()]);
}

#[test]
fn batch_mode_syncs_when_max_bytes_is_reached() {
    let fs = FaultFs::new();
    let durability = Durability::Batch { max_delay: Duration::from_secs(3600), max_bytes: 100 };
    let opts = with_durability(options(&fs, 1 << 16), durability);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(&[1u8; 50]).unwrap();
    assert_eq!(wal.stats().durable_seq, 1, "70 framed bytes: below max_bytes, not synced yet");
    wal.append(&[2u8; 50]).unwrap(); // crosses 100 bytes: synced before returning
    assert_eq!(wal.stats().durable_seq, 3);
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(records(&wal).len(), 2);
}

#[test]
fn real_disk_segments_are_preallocated() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions { segment_bytes_max: 1 << 20, ..WalOptions::default() };
    let wal = Wal::open(tmp.path(), opts.clone()).unwrap();
    wal.append(b"hello").unwrap();
    let len = std::fs::metadata(segment(tmp.path(), 1)).unwrap().len();
    assert_eq!(len, 1 << 20);
    wal.close().unwrap();
    let wal = Wal::open(tmp.path(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"hello".to_vec()]);
    assert_eq!(StdFs.list_dir(tmp.path()).unwrap(), ["00000000000000000001.wal"]);
}

#[test]
fn leftover_temporary_segment_is_removed() {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 16);
    Wal::open(dir(), opts.clone()).unwrap().close().unwrap();
    let temp = dir().join("00000000000000000002.wal.tmp");
    fs.open(&temp, logstore_fs::OpenMode::CreateNew).unwrap().write_all_at(b"junk", 0).unwrap();
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(wal.recovery().removed_temp_files, std::slice::from_ref(&temp));
    assert!(!fs.exists(&temp).unwrap());
}

#[test]
fn recovery_mode_default_is_tolerate_corrupted_tail() {
    assert_eq!(WalOptions::default().recovery_mode, RecoveryMode::TolerateCorruptedTail);
    assert_eq!(WalOptions::default().durability, Durability::Sync);
    let _: Arc<dyn FileSystem> = WalOptions::default().fs;
}

#[test]
fn submit_then_wait_acknowledges_in_submission_order() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 16)).unwrap();
    let first = wal.submit(&[b"a".as_slice()]).unwrap();
    let second = wal.submit(&[b"b".as_slice(), b"c"]).unwrap();
    assert_eq!((first.seqs(), second.seqs()), (1..2, 2..4));
    assert_eq!(wal.acknowledged_seq(), 1, "nothing acknowledged before a wait");
    wal.wait(&second).unwrap();
    assert_eq!(wal.acknowledged_seq(), 4, "waiting for the later request covers the earlier");
    wal.wait(&first).unwrap(); // already durable: returns at once
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);
    let wal = Wal::open(dir(), options(&fs, 1 << 16)).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn submitted_but_never_waited_records_are_written_by_the_next_leader_or_close() {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 16);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    let _ = wal.submit(&[b"queued".as_slice()]).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"queued".to_vec()]);
}

#[test]
fn clean_close_is_recognised_and_its_marker_trusted_only_once() {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 16);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    assert!(!wal.recovery().clean_shutdown, "a new log has no marker");
    wal.append(b"a").unwrap();
    wal.close().unwrap();
    assert!(fs.exists(&dir().join("CLEAN")).unwrap());

    let wal = Wal::open(dir(), opts.clone()).unwrap();
    assert!(wal.recovery().clean_shutdown);
    assert!(!fs.exists(&dir().join("CLEAN")).unwrap(), "open removes the marker");
    wal.append(b"b").unwrap();
    std::mem::forget(wal); // killed: no close, no marker
    fs.crash(CrashMode::DropUnsynced);

    let wal = Wal::open(dir(), opts).unwrap();
    assert!(!wal.recovery().clean_shutdown);
    assert_eq!(payloads(&records(&wal)), [b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn a_damaged_marker_means_recovering_as_after_a_crash() {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 16);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(b"a").unwrap();
    wal.close().unwrap();
    let marker = dir().join("CLEAN");
    let mut bytes = fs.read_file(&marker).unwrap();
    bytes[20] ^= 1; // the recorded end of data
    fs.overwrite_file(&marker, &bytes).unwrap();
    let wal = Wal::open(dir(), opts).unwrap();
    assert!(!wal.recovery().clean_shutdown);
    assert_eq!(records(&wal).len(), 1);
}

#[test]
fn rotate_lets_truncation_empty_the_log() {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 16);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    for i in 1..=5 {
        wal.append(&payload(i, 20)).unwrap();
    }
    assert_eq!(wal.truncate_before(6).unwrap(), 0, "the current segment is never deleted");
    wal.rotate().unwrap();
    wal.rotate().unwrap(); // nothing new: no second segment
    assert_eq!(wal.stats().segments, 2);
    assert_eq!(wal.truncate_before(6).unwrap(), 1);
    assert_eq!(records(&wal), []);
    assert_eq!(wal.append(b"six").unwrap(), 6);
    wal.close().unwrap();
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!((wal.recovery().first_seq, wal.recovery().next_seq), (6, 7));
    assert_eq!(payloads(&records(&wal)), [b"six".to_vec()]);
}

#[test]
fn unsynced_modes_start_writeback_of_each_interval_written_and_sync_does_not() {
    let interval = 4096;
    for (durability, expected) in [(Durability::None, 4), (Durability::Sync, 0)] {
        let fs = FaultFs::new();
        let opts =
            WalOptions { durability, writeback_interval_bytes: interval, ..options(&fs, 1 << 20) };
        let wal = Wal::open(dir(), opts.clone()).unwrap();
        // 20 records of 1000 payload bytes + 20 of frame, after the 32-byte header: the data
        // ends at 20,432, so the intervals ending at 4 KiB, 8 KiB, 12 KiB and 16 KiB fill.
        for i in 0..20 {
            wal.append(&payload(i, 1000)).unwrap();
        }
        assert_eq!(fs.writeback_hints(), expected, "{durability:?}");
        std::mem::forget(wal);
        fs.crash(CrashMode::DropUnsynced);
        let wal = Wal::open(dir(), opts).unwrap();
        let survivors = records(&wal).len();
        match durability {
            Durability::None => assert_eq!(survivors, 0, "a hint makes nothing durable"),
            _ => assert_eq!(survivors, 20),
        }
    }
    let fs = FaultFs::new();
    let opts = WalOptions {
        durability: Durability::None,
        writeback_interval_bytes: 0,
        ..options(&fs, 1 << 20)
    };
    let wal = Wal::open(dir(), opts).unwrap();
    for i in 0..20 {
        wal.append(&payload(i, 1000)).unwrap();
    }
    assert_eq!(fs.writeback_hints(), 0, "0 turns it off");
}

#[test]
fn synced_rounds_zero_fill_ahead_of_the_records_and_recovery_reads_the_same() {
    for zero_ahead_bytes in [0, 4096] {
        let fs = FaultFs::new();
        let opts = WalOptions { zero_ahead_bytes, ..options(&fs, 1 << 16) };
        let wal = Wal::open(dir(), opts.clone()).unwrap();
        let writes_before = fs.writes();
        // 8 records of 480 + 20 bytes: the data ends at 32 + 4,000.
        for i in 0..8 {
            wal.append(&payload(i, 480)).unwrap();
        }
        let extra = fs.writes() - writes_before - 8;
        let file = fs.read_file(&segment(&dir(), 1)).unwrap();
        if zero_ahead_bytes == 0 {
            assert_eq!(extra, 0, "off: one write per append");
        } else {
            // Topped up at the first append (to 532 + 4,096: one write), and again once less
            // than half was left, at the sixth (3,032 + 2,048 > 4,628: to 7,128, one write).
            assert_eq!(extra, 2, "zeros written twice");
        }
        assert!(file[32 + 4000..].iter().all(|&b| b == 0), "nothing but zeros after the data");
        std::mem::forget(wal);
        fs.crash(CrashMode::DropUnsynced);
        let wal = Wal::open(dir(), opts).unwrap();
        assert_eq!(wal.recovery().torn_tail, None);
        assert_eq!(payloads(&records(&wal)), (0..8).map(|i| payload(i, 480)).collect::<Vec<_>>());
    }
}
