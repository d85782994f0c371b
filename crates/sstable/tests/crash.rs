//! Crashes and I/O failures while a table is written: a table exists under its final name
//! whole and durable, or not at all.

mod common;

use common::{build, db_path, fault_fs, open, sample_entries};
use logstore_entry::{Entry, Key};
use logstore_fs::{CrashMode, FaultFs, FileSystem, OpenMode};
use logstore_sstable::{Error, TableBuilder, TableOptions, TableStats, temp_path};
use std::path::Path;
use std::sync::Arc;

/// Entries making a table of about 3 MiB, so the builder makes several writes.
fn big_entries() -> Vec<Entry<'static>> {
    (0..3_000u64)
        .map(|i| Entry::new(Key::new(5_000 + i, i), format!("{i:>6} ").repeat(140), None::<String>))
        .collect()
}

fn try_build(fs: &FaultFs, path: &Path, entries: &[Entry<'_>]) -> Result<TableStats, Error> {
    let mut builder = TableBuilder::create(Arc::new(fs.clone()), path, TableOptions::default())?;
    for entry in entries {
        builder.add(entry)?;
    }
    builder.finish()
}

const CRASHES: [CrashMode; 3] =
    [CrashMode::DropUnsynced, CrashMode::TornPrefix { seed: 1 }, CrashMode::TornPrefix { seed: 7 }];

/// After a crash, the table is either absent or whole; when `must_exist`, it is whole.
fn check_after_crash(fs: &FaultFs, path: &Path, stats: Option<TableStats>) {
    match stats {
        Some(stats) => {
            let table = open(fs, path).expect("a finished table survives a crash");
            assert_eq!(table.verify().unwrap(), stats);
        }
        None => {
            assert!(!fs.exists(path).unwrap(), "a failed build left a table under its final name")
        }
    }
}

#[test]
fn failed_writes_leave_no_table() {
    let entries = big_entries();
    let path = db_path("t.sst");
    // Count the writes of a clean build, then fail each one in turn.
    let fs = fault_fs();
    let before = fs.writes();
    try_build(&fs, &path, &entries).unwrap();
    let writes = fs.writes() - before;
    assert!(writes >= 3, "the table takes {writes} writes");
    for n in 0..writes {
        for mode in CRASHES {
            let fs = fault_fs();
            fs.fail_write_after(n);
            let err = try_build(&fs, &path, &entries).expect_err("the write fails");
            assert!(matches!(err, Error::Poisoned { .. }), "{err}");
            assert!(err.to_string().contains("injected failure"), "{err}");
            assert!(!fs.exists(&path).unwrap());
            assert!(!fs.exists(&temp_path(&path)).unwrap(), "the builder removes its temp file");
            fs.crash(mode);
            check_after_crash(&fs, &path, None);
        }
    }
}

#[test]
fn failed_syncs_leave_no_table() {
    let entries = sample_entries(500);
    let path = db_path("t.sst");
    // The builder syncs twice: the file, then the directory after the rename.
    for n in 0..2 {
        for mode in CRASHES {
            let fs = fault_fs();
            fs.fail_sync_after(n);
            let err = try_build(&fs, &path, &entries).expect_err("the sync fails");
            assert!(err.to_string().contains("injected failure of sync"), "{err}");
            assert!(!fs.exists(&path).unwrap(), "sync {n} failed, the table is still there");
            fs.crash(mode);
            check_after_crash(&fs, &path, None);
        }
    }
}

#[test]
fn full_disk_leaves_no_table() {
    let entries = big_entries();
    let path = db_path("t.sst");
    let file_bytes = try_build(&fault_fs(), &path, &entries).unwrap().file_bytes;
    for capacity_bytes in [0, 1_000, 1 << 20, 2 << 20, file_bytes - 1] {
        let fs = fault_fs();
        fs.set_capacity_bytes(Some(capacity_bytes));
        let err = try_build(&fs, &path, &entries).expect_err("the disk is too small");
        assert!(
            err.to_string().contains(&format!("{}", std::io::Error::from_raw_os_error(28))),
            "{err}"
        );
        assert!(!fs.exists(&path).unwrap());
        fs.crash(CrashMode::DropUnsynced);
        check_after_crash(&fs, &path, None);
    }
}

#[test]
fn crash_before_finish_leaves_no_table() {
    let entries = big_entries();
    let path = db_path("t.sst");
    for added in [0, 1, 1_500, entries.len()] {
        for mode in CRASHES {
            let fs = fault_fs();
            let mut builder =
                TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap();
            for entry in &entries[..added] {
                builder.add(entry).unwrap();
            }
            fs.crash(mode);
            // The process died here: the builder is never finished.
            std::mem::forget(builder);
            check_after_crash(&fs, &path, None);
            // A rebuild of the same name replaces the leftover temp file, if it survived.
            let stats = try_build(&fs, &path, &entries).unwrap();
            fs.crash(mode);
            check_after_crash(&fs, &path, Some(stats));
        }
    }
}

#[test]
fn finished_tables_survive_crashes() {
    let entries = sample_entries(2_000);
    for mode in CRASHES {
        let fs = fault_fs();
        let path = db_path("t.sst");
        let stats = build(&fs, &path, &entries, TableOptions::default());
        fs.crash(mode);
        check_after_crash(&fs, &path, Some(stats));
        assert_eq!(fs.list_dir(Path::new("/db")).unwrap(), ["t.sst"]);
    }
}

#[test]
fn poisoned_builder_refuses_more_work() {
    let fs = fault_fs();
    let path = db_path("t.sst");
    let entries = big_entries();
    fs.fail_write_after(0);
    let mut builder =
        TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap();
    let mut first_error = None;
    for entry in &entries {
        if let Err(e) = builder.add(entry) {
            first_error = Some(e);
            break;
        }
    }
    assert!(matches!(first_error, Some(Error::Poisoned { .. })), "{first_error:?}");
    fs.heal();
    let again = builder.add(&Entry::new(Key::MAX, "late", None::<&str>)).unwrap_err();
    assert!(matches!(again, Error::Poisoned { .. }), "{again}");
    assert!(matches!(builder.finish(), Err(Error::Poisoned { .. })));
    assert!(!fs.exists(&temp_path(&path)).unwrap());
    assert!(!fs.exists(&path).unwrap());
}

#[test]
fn refused_input_does_not_poison() {
    let fs = fault_fs();
    let path = db_path("t.sst");
    let mut builder =
        TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap();
    builder.add(&Entry::new(Key::new(5, 5), "a", None::<&str>)).unwrap();
    for stale in [Key::new(5, 5), Key::new(5, 4), Key::new(4, 9)] {
        match builder.add(&Entry::new(stale, "b", None::<&str>)) {
            Err(Error::UnsortedInput { previous, key, .. }) => {
                assert_eq!((previous, key), (Key::new(5, 5), stale));
            }
            other => panic!("{other:?}"),
        }
    }
    builder.add(&Entry::new(Key::new(5, 6), "c", None::<&str>)).unwrap();
    let stats = builder.finish().unwrap();
    assert_eq!(stats.entry_count, 2);
}

#[test]
fn empty_tables_and_taken_names_are_refused() {
    let fs = fault_fs();
    let path = db_path("t.sst");
    let builder =
        TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap();
    assert!(matches!(builder.finish(), Err(Error::EmptyTable { .. })));
    assert!(!fs.exists(&temp_path(&path)).unwrap());
    assert!(!fs.exists(&path).unwrap());

    fs.open(&path, OpenMode::CreateNew).unwrap();
    let err =
        TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");

    let abandoned =
        TableBuilder::create(Arc::new(fs.clone()), db_path("u.sst"), TableOptions::default())
            .unwrap();
    assert!(fs.exists(&temp_path(&db_path("u.sst"))).unwrap());
    abandoned.abandon().unwrap();
    assert!(!fs.exists(&temp_path(&db_path("u.sst"))).unwrap());
}

/// `finish_unsynced` names the table without a sync: readable at once, gone after a crash,
/// and durable once its file and then its directory are synced by the caller.
#[test]
fn unsynced_tables_are_durable_only_once_the_caller_syncs_them() {
    let entries = sample_entries(500);
    let path = db_path("t.sst");
    let build = |fs: &FaultFs| {
        let mut builder =
            TableBuilder::create(Arc::new(fs.clone()), &path, TableOptions::default()).unwrap();
        for entry in &entries {
            builder.add(entry).unwrap();
        }
        let syncs = fs.syncs();
        let stats = builder.finish_unsynced().unwrap();
        assert_eq!(fs.syncs(), syncs, "finish_unsynced synced");
        assert!(!fs.exists(&temp_path(&path)).unwrap());
        assert_eq!(open(fs, &path).unwrap().verify().unwrap(), stats);
        stats
    };
    for mode in CRASHES {
        let fs = fault_fs();
        build(&fs);
        fs.crash(mode);
        check_after_crash(&fs, &path, None);
    }
    // The file's bytes alone: the name may still be lost.
    let fs = fault_fs();
    build(&fs);
    fs.open(&path, OpenMode::Read).unwrap().sync_data().unwrap();
    fs.crash(CrashMode::DropUnsynced);
    check_after_crash(&fs, &path, None);
    // The bytes, then the name.
    let fs = fault_fs();
    let stats = build(&fs);
    fs.open(&path, OpenMode::Read).unwrap().sync_data().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
    for mode in CRASHES {
        fs.crash(mode);
        check_after_crash(&fs, &path, Some(stats));
    }
}
