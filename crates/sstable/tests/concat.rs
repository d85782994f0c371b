//! [`TableBuilder::add_table`]: tables of consecutive key ranges concatenated block by block
//! read back exactly as the entries they hold, and every refusal leaves nothing wrong behind.

mod common;

use common::{build, db_path, fault_fs, open, sample_entries};
use logstore_entry::{CodecId, Entry};
use logstore_fs::{FaultFs, FileSystem};
use logstore_sstable::{
    Compression, Direction, Error, ReadOptions, Table, TableBuilder, TableOptions,
};
use std::sync::Arc;

fn options(codec: CodecId, compression: Compression) -> TableOptions {
    // Small blocks: many blocks per table, and partial blocks at every seam.
    TableOptions { codec, compression, block_target_bytes: 512 }
}

fn scan(table: &Table, direction: Direction) -> Vec<Entry<'static>> {
    table.scan(direction).unwrap().into_entries().collect::<Result<_, _>>().unwrap()
}

/// Splits `entries` into tables `/db/<name>-<i>.sst` at `cuts`.
fn parts(
    fs: &FaultFs,
    name: &str,
    entries: &[Entry<'_>],
    cuts: &[usize],
    options: TableOptions,
) -> Vec<Table> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(entries.len());
    bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let path = db_path(&format!("{name}-{i}.sst"));
            build(fs, &path, &entries[w[0]..w[1]], options);
            open(fs, &path).unwrap()
        })
        .collect()
}

#[test]
fn concatenated_tables_read_back_whole_in_both_directions() {
    let entries = sample_entries(2_000);
    for codec in CodecId::ALL {
        for compression in Compression::ALL {
            for mmap in [false, true] {
                let fs = fault_fs();
                let options = options(codec, compression);
                // Entries 0..10 and 1990.. are added one by one around the copied tables.
                let tables = parts(&fs, "part", &entries[10..1_990], &[1, 700, 1_500], options);
                let path = db_path("whole.sst");
                let mut builder =
                    TableBuilder::create(Arc::new(fs.clone()), &path, options).unwrap();
                for entry in &entries[..10] {
                    builder.add(entry).unwrap();
                }
                for table in &tables {
                    builder.add_table(table).unwrap();
                }
                for entry in &entries[1_990..] {
                    builder.add(entry).unwrap();
                }
                let stats = builder.finish().unwrap();
                let read_options = ReadOptions { mmap, ..ReadOptions::default() };
                let whole = Table::open(&fs, &path, read_options).unwrap();
                assert_eq!(whole.verify().unwrap(), stats);
                assert_eq!(stats.entry_count, 2_000);
                let parts_payload: u64 = tables.iter().map(|t| t.stats().payload_bytes).sum();
                let own: u64 = entries[..10]
                    .iter()
                    .chain(&entries[1_990..])
                    .map(|e| 16 + e.payload_bytes() as u64)
                    .sum();
                assert_eq!(stats.payload_bytes, parts_payload + own);
                assert_eq!(scan(&whole, Direction::Forward), entries, "{codec} {compression}");
                let mut backward = scan(&whole, Direction::Backward);
                backward.reverse();
                assert_eq!(backward, entries);
                // A range across the seams.
                let got: Vec<Entry<'static>> = whole
                    .range(entries[5].key..=entries[1_995].key, Direction::Backward)
                    .unwrap()
                    .into_entries()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(got.iter().eq(entries[5..=1_995].iter().rev()));
            }
        }
    }
}

#[test]
fn refusals_name_the_problem_and_leave_the_builder_usable() {
    let entries = sample_entries(300);
    let fs = fault_fs();
    let binary = options(CodecId::Binary, Compression::None);
    let tables = parts(&fs, "binary", &entries, &[100, 200], binary);
    let mut builder =
        TableBuilder::create(Arc::new(fs.clone()), db_path("out.sst"), binary).unwrap();
    builder.add_table(&tables[1]).unwrap();
    // Out of order: refused, nothing added.
    let err = builder.add_table(&tables[0]).unwrap_err();
    assert!(matches!(err, Error::UnsortedInput { key, .. } if key == entries[0].key), "{err}");
    // Another codec or compression: refused.
    let cbor = parts(&fs, "cbor", &entries[250..], &[], options(CodecId::Cbor, Compression::None));
    let err = builder.add_table(&cbor[0]).unwrap_err();
    assert!(matches!(err, Error::IncompatibleTable { .. }), "{err}");
    assert!(err.to_string().contains("cbor"), "{err}");
    let lz4 = parts(&fs, "lz4", &entries[250..], &[], options(CodecId::Binary, Compression::Lz4));
    assert!(matches!(builder.add_table(&lz4[0]), Err(Error::IncompatibleTable { .. })));
    // Still usable.
    builder.add_table(&tables[2]).unwrap();
    let stats = builder.finish().unwrap();
    assert_eq!(stats.entry_count, 200);
    let out = open(&fs, &db_path("out.sst")).unwrap();
    assert_eq!(scan(&out, Direction::Forward), entries[100..]);
}

#[test]
fn a_damaged_block_is_not_copied() {
    let entries = sample_entries(400);
    for mmap in [false, true] {
        let fs = fault_fs();
        let binary = options(CodecId::Binary, Compression::None);
        let path = db_path("part-0.sst");
        build(&fs, &path, &entries, binary);
        let mut bytes = fs.read_file(&path).unwrap();
        bytes[700] ^= 0x20; // inside a data block (blocks are about 512 bytes)
        fs.overwrite_file(&path, &bytes).unwrap();
        let damaged =
            Table::open(&fs, &path, ReadOptions { mmap, ..ReadOptions::default() }).unwrap();
        let out = db_path("out.sst");
        let mut builder = TableBuilder::create(Arc::new(fs.clone()), &out, binary).unwrap();
        let err = builder.add_table(&damaged).unwrap_err();
        let Error::Poisoned { cause, .. } = &err else { panic!("{err}") };
        assert!(matches!(&**cause, Error::ChecksumMismatch { .. }), "{cause}");
        // The builder is poisoned: nothing can be finished from it.
        assert!(builder.finish().is_err());
        assert!(!fs.exists(&out).unwrap());
    }
}
