//! Reading a table through its memory map keeps only about [`VIEW_RELEASE_BYTES`] of it mapped
//! into the process: a scan (either way), `verify` and a block copy of a table much larger
//! than that leave the process's file-backed resident memory about where it was.
//!
//! One test in its own binary (its own process), so no other test's memory moves the figure.

use logstore_entry::{Entry, Key};
use logstore_fs::StdFs;
use logstore_sstable::{
    Direction, ReadOptions, Table, TableBuilder, TableOptions, VIEW_RELEASE_BYTES,
};
use std::sync::Arc;

/// Pages of files mapped into this process and resident, in bytes: `RssFile`, plus `RssShmem`
/// (where a tmpfs `$TMPDIR`'s pages are counted).
fn rss_file_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = |field: &str| -> usize {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (kib("RssFile:") + kib("RssShmem:")) * 1024
}

const TABLE_BYTES_MIN: usize = 24 << 20;

#[test]
fn reading_a_large_table_keeps_little_of_it_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.sst");
    let message = "x".repeat(1_000);
    let count = (TABLE_BYTES_MIN / 1_000) as u64;
    let mut builder =
        TableBuilder::create(Arc::new(StdFs), &path, TableOptions::default()).unwrap();
    for i in 0..count {
        builder.add(&Entry::new(Key::new(i, i), message.as_str(), None::<&str>)).unwrap();
    }
    let stats = builder.finish().unwrap();
    assert!(stats.file_bytes as usize >= TABLE_BYTES_MIN);
    let table = Table::open(&StdFs, &path, ReadOptions::default()).unwrap();
    // Growth allowed: the release window, a block either side, and slack for the allocator's
    // and the test harness's own file pages.
    let allowed = VIEW_RELEASE_BYTES + (4 << 20);

    let base = rss_file_bytes();
    for direction in [Direction::Forward, Direction::Backward] {
        let mut cursor = table.scan(direction).unwrap();
        let (mut seen, mut peak) = (0u64, base);
        while let Some(entry) = cursor.entry() {
            assert_eq!(entry.unwrap().message.len(), 1_000);
            seen += 1;
            if seen % 256 == 0 {
                peak = peak.max(rss_file_bytes());
            }
            cursor.advance().unwrap();
        }
        assert_eq!(seen, count);
        drop(cursor);
        assert!(
            peak - base <= allowed,
            "{direction:?} scan of a {} MiB table: mapped resident memory grew by {} KiB",
            stats.file_bytes >> 20,
            (peak - base) >> 10
        );
        assert!(rss_file_bytes() <= base + (2 << 20), "pages stay mapped after the scan");
    }

    table.verify().unwrap();
    assert!(rss_file_bytes() <= base + (2 << 20), "verify leaves its pages mapped");

    let copy = dir.path().join("copy.sst");
    let mut builder =
        TableBuilder::create(Arc::new(StdFs), &copy, TableOptions::default()).unwrap();
    builder.append_table(&table).unwrap();
    builder.finish().unwrap();
    assert!(rss_file_bytes() <= base + (2 << 20), "a block copy leaves its pages mapped");
}
