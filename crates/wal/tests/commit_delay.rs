//! The commit delay of group commit: who waits, and that waiting changes nothing of what is
//! acknowledged and recovered.

mod common;

use common::{
    append_from_threads, assert_acknowledged_recovered, dir, options, payload, payloads, records,
};
use logstore_fs::{CrashMode, FaultFs};
use logstore_wal::{COMMIT_DELAY_MAX_LIMIT, Durability, Wal, WalError, WalOptions};
use std::time::Duration;

#[test]
fn a_lone_appender_never_waits() {
    let fs = FaultFs::new();
    let wal = Wal::open(dir(), options(&fs, 1 << 16)).unwrap();
    for i in 0..100 {
        wal.append(&payload(i, 40)).unwrap();
    }
    wal.append_batch(&[b"a".as_slice(), b"b"]).unwrap();
    let stats = wal.stats();
    assert_eq!((stats.commit_delays, stats.commit_delay_us), (0, 0), "{stats:?}");
}

/// In `Batch` mode every append here crosses `max_bytes`, so every round syncs: the lone
/// appender leads it with its own request queued and has no one to wait for. (It used to
/// write first, then lead a second, syncing round as a caller still holding its ticket, and
/// waited the commit delay for itself.)
#[test]
fn a_lone_batch_appender_syncing_at_its_threshold_never_waits() {
    let fs = FaultFs::new();
    // Syncs as slow as a disk's, so the delay's budget (the recent sync latency) is not ~0.
    fs.set_file_sync_latency(Duration::from_micros(300));
    let durability = Durability::Batch { max_delay: Duration::from_secs(3600), max_bytes: 1 };
    let wal = Wal::open(dir(), WalOptions { durability, ..options(&fs, 1 << 16) }).unwrap();
    let syncs_before = wal.stats().syncs;
    for i in 0..20 {
        wal.append(&payload(i, 40)).unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.syncs - syncs_before, 20, "one sync per append: {stats:?}");
    assert_eq!((stats.commit_delays, stats.commit_delay_us), (0, 0), "{stats:?}");
}

#[test]
fn a_leader_waits_for_a_holder_of_an_acknowledged_ticket_and_only_then() {
    for commit_delay_max in [Duration::from_millis(1), Duration::ZERO] {
        let fs = FaultFs::new();
        let wal =
            Wal::open(dir(), WalOptions { commit_delay_max, ..options(&fs, 1 << 16) }).unwrap();
        let held = wal.submit(&[b"held".as_slice()]).unwrap();
        // Both requests are queued: nobody is on the way, no wait. This also measures a sync,
        // which bounds the delay from now on.
        wal.append(b"first").unwrap();
        assert_eq!(wal.acknowledged_seq(), 3, "the held request was synced with it");
        assert_eq!(wal.stats().commit_delays, 0);
        // The holder of `held` counts as on its way until it drops the ticket: a leader with a
        // delay waits for it (bounded), one without does not. Either way the append completes.
        wal.append(b"second").unwrap();
        let expected = u64::from(!commit_delay_max.is_zero());
        assert_eq!(wal.stats().commit_delays, expected, "delay {commit_delay_max:?}");
        wal.wait(&held).unwrap();
        drop(held);
        wal.append(b"third").unwrap();
        assert_eq!(wal.stats().commit_delays, expected, "nobody on the way any more");
        std::mem::forget(wal);
        fs.crash(CrashMode::DropUnsynced);
        let wal = Wal::open(dir(), options(&fs, 1 << 16)).unwrap();
        let expected: [&[u8]; 4] = [b"held", b"first", b"second", b"third"];
        assert_eq!(payloads(&records(&wal)), expected.map(<[u8]>::to_vec));
    }
}

#[test]
fn a_commit_delay_above_the_limit_is_refused() {
    let fs = FaultFs::new();
    let commit_delay_max = COMMIT_DELAY_MAX_LIMIT + Duration::from_nanos(1);
    let err =
        Wal::open(dir(), WalOptions { commit_delay_max, ..options(&fs, 1 << 16) }).unwrap_err();
    assert!(
        matches!(&err, WalError::InvalidOptions(what) if what.contains("commit_delay_max")),
        "{err}"
    );
    Wal::open(
        dir(),
        WalOptions { commit_delay_max: COMMIT_DELAY_MAX_LIMIT, ..options(&fs, 1 << 16) },
    )
    .unwrap();
}

/// Many threads, some holding their tickets a while (as the engine does between `submit` and
/// `wait`), with the largest delay allowed and syncs as slow as a disk's (the delay is bounded
/// by the recent sync latency, which instant syncs would make ~0): leaders do wait, and every
/// acknowledged record survives a power cut, exactly once, each thread's in its order; nothing
/// hangs.
#[test]
fn concurrent_appenders_with_the_longest_delay_lose_nothing_acknowledged() {
    const THREADS: u64 = 8;
    const APPENDS_PER_THREAD: u64 = 200;
    let fs = FaultFs::new();
    fs.set_file_sync_latency(Duration::from_micros(200));
    let opts = WalOptions { commit_delay_max: COMMIT_DELAY_MAX_LIMIT, ..options(&fs, 8 << 10) };
    let wal = Wal::open(dir(), opts.clone()).unwrap();
    let record = |thread: u64, i: u64| payload(thread * APPENDS_PER_THREAD + i, 30);
    let acked = append_from_threads(THREADS, APPENDS_PER_THREAD, |thread, i| {
        if (thread + i) % 3 == 0 {
            let ticket = wal.submit(&[record(thread, i)]).unwrap();
            std::thread::yield_now();
            wal.wait(&ticket).unwrap();
            ticket.seqs().start
        } else {
            wal.append(&record(thread, i)).unwrap()
        }
    });
    let stats = wal.stats();
    assert!(stats.segments > 1, "rotation happened under concurrency: {stats:?}");
    assert!(stats.commit_delays > 0, "leaders waited for those on their way: {stats:?}");
    std::mem::forget(wal);
    fs.crash(CrashMode::DropUnsynced);

    let wal = Wal::open(dir(), opts).unwrap();
    assert_acknowledged_recovered(&records(&wal), &acked, record);
}
