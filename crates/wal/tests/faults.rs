//! Failed writes and syncs poison the log; acknowledged records survive; unacknowledged ones
//! come back whole or not at all.

mod common;

use common::*;
use logstore_fs::{CrashMode, FaultFs};
use logstore_wal::{Durability, Wal, WalError};
use std::time::Duration;

fn is_poisoned(err: &WalError) -> bool {
    matches!(err, WalError::Poisoned { .. })
}

/// Appends `acked` records, arms a fault, appends one more (which must fail), checks the log is
/// poisoned, crashes, and checks what reopening finds.
fn fault_then_crash(arm: impl Fn(&FaultFs), crash: CrashMode) {
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 12);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    for i in 1..=5 {
        assert_eq!(wal.append(&payload(i, 40)).unwrap(), i);
    }
    arm(&fs);
    let err = wal.append(&payload(6, 40)).unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "the failure itself: {err}");
    let err = wal.append(&payload(7, 40)).unwrap_err();
    assert!(is_poisoned(&err), "{err}");
    assert!(err.to_string().contains("injected failure"), "names the cause: {err}");
    assert!(is_poisoned(&wal.sync().unwrap_err()));
    // Reads still work while poisoned.
    assert!(records(&wal).len() >= 5);
    std::mem::forget(wal);
    fs.crash(crash);
    fs.heal();

    let wal = Wal::open(dir(), opts).unwrap();
    let got = records(&wal);
    assert!(got.len() == 5 || got.len() == 6, "{} records", got.len());
    for (i, record) in got.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!((record.seq, &record.payload), (seq, &payload(seq, 40)), "whole, unaltered");
    }
    assert_eq!(wal.append(b"after").unwrap(), got.len() as u64 + 1);
}

#[test]
fn failed_fsync_poisons_and_loses_nothing_acknowledged() {
    for crash in [CrashMode::DropUnsynced, CrashMode::TornPrefix { seed: 1 }] {
        fault_then_crash(|fs| fs.fail_sync_after(0), crash);
    }
}

#[test]
fn failed_write_poisons_and_loses_nothing_acknowledged() {
    for crash in [CrashMode::DropUnsynced, CrashMode::TornPrefix { seed: 2 }] {
        fault_then_crash(|fs| fs.fail_write_after(0), crash);
    }
}

#[test]
fn a_full_disk_at_segment_creation_poisons_and_loses_nothing_acknowledged() {
    // Records of 60 framed bytes, 200-byte segments (32-byte header): two records a segment, so
    // the 5th record needs a third segment, whose preallocation runs out of space.
    let fs = FaultFs::new();
    let opts = options(&fs, 200);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    for i in 1..=4 {
        wal.append(&payload(i, 40)).unwrap();
    }
    fs.set_capacity_bytes(Some(500));
    let err = wal.append(&payload(5, 40)).unwrap_err();
    assert!(err.to_string().contains("preallocate"), "{err}");
    assert!(is_poisoned(&wal.append(b"x").unwrap_err()));
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);
    fs.heal();
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), (1..=4).map(|i| payload(i, 40)).collect::<Vec<_>>());
}

#[test]
fn failed_sync_in_none_mode_never_reports_the_data_durable() {
    // The kernel may drop pages whose writeback failed and report the next fsync clean
    // ("fsyncgate"); FaultFs models that. The log must not claim durability afterwards.
    let fs = FaultFs::new();
    let opts = with_durability(options(&fs, 1 << 12), Durability::None);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(b"durable").unwrap();
    wal.sync().unwrap();
    wal.append(b"written, then its sync failed").unwrap();
    fs.fail_sync_after(0);
    assert!(matches!(wal.sync().unwrap_err(), WalError::Io { .. }));
    assert!(is_poisoned(&wal.sync().unwrap_err()), "a second sync must not pretend");
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(payloads(&records(&wal)), [b"durable".to_vec()]);
}

#[test]
fn close_reports_a_failed_final_sync() {
    let fs = FaultFs::new();
    let opts = with_durability(options(&fs, 1 << 12), Durability::None);
    let wal = Wal::open(dir(), opts).unwrap();
    wal.append(b"x").unwrap();
    fs.fail_sync_after(0);
    assert!(wal.close().is_err());
}

#[test]
fn replay_outlives_close_and_reopen_continues() {
    // A closed log refuses appends; a replay taken before still reads, and a reopened log
    // continues where the closed one ended.
    let fs = FaultFs::new();
    let opts = options(&fs, 1 << 12);
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    wal.append(b"1").unwrap();
    let replay = wal.replay(1).unwrap();
    wal.close().unwrap();
    assert!(matches!(wal.append(b"late"), Err(WalError::Closed)), "closed, yet appended");
    assert_eq!(replay.count(), 1, "a replay outlives its log");
    let wal = Wal::open(dir(), opts).unwrap();
    assert_eq!(wal.append(b"2").unwrap(), 2);
}

/// A failed sync under many appenders: every one of them returns (the poisoning leader wakes
/// all its followers, parked or yielding), each with the failure or `Poisoned`, and every
/// record acknowledged before survives a power cut. With syncs as slow as a real disk's, the
/// followers are yielding when the failure comes; with instant ones, mostly parked.
#[test]
fn a_failed_sync_under_concurrent_appenders_wakes_them_all_and_keeps_what_was_acknowledged() {
    const THREADS: u64 = 8;
    let file_sync_latencies = [Duration::ZERO, Duration::from_micros(200)];
    let cases =
        file_sync_latencies.into_iter().flat_map(|latency| [3, 10, 40].map(|n| (latency, n)));
    for (latency, syncs_before_failure) in cases {
        let fs = FaultFs::new();
        fs.set_file_sync_latency(latency);
        let opts = options(&fs, 1 << 12);
        let wal = Wal::open(dir(), opts.clone()).unwrap();
        fs.fail_sync_after(syncs_before_failure);
        let results: Vec<(Vec<u64>, WalError)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let wal = &wal;
                    scope.spawn(move || {
                        let mut acked = Vec::new();
                        for i in 0.. {
                            match wal.append(&payload(thread * 1_000_000 + i, 40)) {
                                Ok(seq) => acked.push(seq),
                                Err(err) => return (acked, err),
                            }
                        }
                        unreachable!()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let failures = results.iter().filter(|(_, e)| matches!(e, WalError::Io { .. })).count();
        // Every injected sync runs in an appending leader: exactly one sees the failure.
        assert_eq!(failures, 1, "one leader sees the failure itself, the others `Poisoned`");
        for (_, err) in &results {
            assert!(matches!(err, WalError::Io { .. }) || is_poisoned(err), "{err}");
        }
        std::mem::forget(wal);
        fs.crash(CrashMode::DropUnsynced);
        fs.heal();
        let wal = Wal::open(dir(), opts).unwrap();
        let recovered = records(&wal);
        for (thread, (acked, _)) in results.iter().enumerate() {
            for (i, &seq) in acked.iter().enumerate() {
                let record = recovered.get(seq as usize - 1).expect("acknowledged, so recovered");
                assert_eq!(record.payload, payload(thread as u64 * 1_000_000 + i as u64, 40));
            }
        }
    }
}
