//! `TableBuilder::append_table`: a table built by copying other tables' blocks holds exactly
//! the entries a table built entry by entry would, and bad input is refused.

mod common;

use common::{build, db_path, fault_fs, open, read_range, sample_entries};
use logstore_entry::{CodecId, Key};
use logstore_fs::{FileSystem, OpenMode};
use logstore_sstable::{
    Compression, Direction, Error, ReadOptions, Table, TableBuilder, TableOptions,
};
use std::sync::Arc;

fn options(compression: Compression) -> TableOptions {
    TableOptions { compression, block_target_bytes: 512, ..TableOptions::default() }
}

#[test]
fn appended_tables_hold_the_same_entries_as_one_built_entry_by_entry() {
    let entries = sample_entries(1_000);
    // Sources read in place through their view (the default) and through `pread`.
    for (compression, mmap) in Compression::ALL.into_iter().flat_map(|c| [(c, true), (c, false)]) {
        let fs = fault_fs();
        let options = options(compression);
        // Entries 0..10 added one by one, 10..400 and 400..900 from tables, then 900.. again.
        build(&fs, &db_path("a.sst"), &entries[10..400], options);
        build(&fs, &db_path("b.sst"), &entries[400..900], options);
        let read = ReadOptions { mmap, ..ReadOptions::default() };
        let a = Table::open(&fs, db_path("a.sst"), read).unwrap();
        let b = Table::open(&fs, db_path("b.sst"), read).unwrap();
        let mut builder =
            TableBuilder::create(Arc::new(fs.clone()), db_path("out.sst"), options).unwrap();
        for entry in &entries[..10] {
            builder.add(entry).unwrap();
        }
        builder.append_table(&a).unwrap();
        builder.append_table(&b).unwrap();
        for entry in &entries[900..] {
            builder.add(entry).unwrap();
        }
        let stats = builder.finish().unwrap();
        let whole = build(&fs, &db_path("whole.sst"), &entries, options);
        let out = open(&fs, &db_path("out.sst")).unwrap();
        assert_eq!(out.verify().unwrap(), stats, "{compression:?}");
        let blocks = a.stats().block_count + b.stats().block_count;
        assert!(stats.block_count > blocks, "{compression:?}: {stats:?}");
        assert_eq!(
            (stats.entry_count, stats.min_key, stats.max_key, stats.payload_bytes),
            (whole.entry_count, whole.min_key, whole.max_key, whole.payload_bytes),
            "{compression:?}"
        );
        for direction in [Direction::Forward, Direction::Backward] {
            let mut got = read_range(&out, Key::MIN, Key::MAX, direction).unwrap();
            if direction == Direction::Backward {
                got.reverse();
            }
            assert_eq!(got, entries, "{compression:?} {direction:?}");
        }
        // A range inside the copied blocks, found through the rewritten index.
        let (lo, hi) = (entries[450].key, entries[460].key);
        assert_eq!(read_range(&out, lo, hi, Direction::Forward).unwrap(), &entries[450..=460]);
    }
}

#[test]
fn overlapping_or_foreign_tables_are_refused() {
    let entries = sample_entries(300);
    let fs = fault_fs();
    build(&fs, &db_path("a.sst"), &entries[100..200], options(Compression::None));
    let a = open(&fs, &db_path("a.sst")).unwrap();
    let mut builder =
        TableBuilder::create(Arc::new(fs.clone()), db_path("out.sst"), options(Compression::None))
            .unwrap();
    builder.add(&entries[150]).unwrap();
    let refused = builder.append_table(&a);
    assert!(matches!(refused, Err(Error::UnsortedInput { .. })), "{refused:?}");
    // Refused input does not poison: the builder goes on.
    builder.add(&entries[250]).unwrap();
    assert_eq!(builder.finish().unwrap().entry_count, 2);

    for foreign in [
        options(Compression::Lz4),
        TableOptions { codec: CodecId::Json, ..options(Compression::None) },
    ] {
        let mut builder =
            TableBuilder::create(Arc::new(fs.clone()), db_path("other.sst"), foreign).unwrap();
        let refused = builder.append_table(&a);
        assert!(matches!(refused, Err(Error::FormatMismatch { .. })), "{refused:?}");
        builder.abandon().unwrap();
    }
}

#[test]
fn a_damaged_block_is_not_copied() {
    for mmap in [true, false] {
        a_damaged_block_is_not_copied_when(ReadOptions { mmap, ..ReadOptions::default() });
    }
}

fn a_damaged_block_is_not_copied_when(read: ReadOptions) {
    let entries = sample_entries(300);
    let fs = fault_fs();
    build(&fs, &db_path("a.sst"), &entries, options(Compression::None));
    let file = fs.open(&db_path("a.sst"), OpenMode::ReadWrite).unwrap();
    file.write_all_at(b"\xff", 700).unwrap();
    let a = Table::open(&fs, db_path("a.sst"), read).unwrap();
    let mut builder =
        TableBuilder::create(Arc::new(fs.clone()), db_path("out.sst"), options(Compression::None))
            .unwrap();
    let copied = builder.append_table(&a);
    assert!(matches!(copied, Err(Error::Poisoned { .. })), "{copied:?}");
    assert!(copied.unwrap_err().to_string().contains("checksum mismatch"));
    assert!(matches!(builder.finish(), Err(Error::Poisoned { .. })));
    assert!(!fs.exists(&db_path("out.sst")).unwrap());
}
