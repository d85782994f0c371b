//! Tables on the real file system: the memory-mapped read path ([`ReadOptions::mmap`], the
//! default) and the `pread` path read the same entries, and a table stays readable through its
//! map after its file is unlinked (as compaction does to tables a query may still be reading).

mod common;

use common::sample_entries;
use logstore_entry::{Entry, Key};
use logstore_fs::{FileSystem, OpenMode, StdFs};
use logstore_sstable::{Compression, Direction, ReadOptions, Table, TableBuilder, TableOptions};
use std::sync::Arc;

fn read(table: &Table, direction: Direction) -> Vec<Entry<'static>> {
    table.scan(direction).unwrap().into_entries().collect::<Result<_, _>>().unwrap()
}

#[test]
fn mapped_and_pread_tables_read_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let entries = sample_entries(3_000);
    for compression in Compression::ALL {
        let path = dir.path().join(format!("{compression}.sst"));
        let options =
            TableOptions { compression, block_target_bytes: 4 << 10, ..TableOptions::default() };
        let mut builder = TableBuilder::create(Arc::new(StdFs), &path, options).unwrap();
        for entry in &entries {
            builder.add(entry).unwrap();
        }
        builder.finish().unwrap();

        // The real file system hands out a real map, not a copy.
        let file = StdFs.open(&path, OpenMode::Read).unwrap();
        assert!(file.map_read_only().unwrap().unwrap().is_mapped());

        let mapped = Table::open(&StdFs, &path, ReadOptions::default()).unwrap();
        let pread =
            Table::open(&StdFs, &path, ReadOptions { mmap: false, ..Default::default() }).unwrap();
        assert_eq!(mapped.verify().unwrap(), pread.verify().unwrap());
        assert_eq!(read(&mapped, Direction::Forward), entries);
        assert_eq!(read(&pread, Direction::Forward), entries);
        let mut backward = read(&mapped, Direction::Backward);
        backward.reverse();
        assert_eq!(backward, entries);
        let (lo, hi) = (entries[1_000].key, entries[1_234].key);
        let range: Vec<Entry<'static>> = mapped
            .range(lo..=hi, Direction::Backward)
            .unwrap()
            .into_entries()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(range.iter().eq(entries[1_000..=1_234].iter().rev()), "{compression}");

        // Unlinked while open: the map keeps the bytes.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read(&mapped, Direction::Forward), entries);
        assert!(mapped.range(Key::MIN..=Key::MAX, Direction::Forward).is_ok());
    }
}
