//! Damage is an error, never a panic and never wrong data: every truncation and every
//! single-byte corruption of small tables, read every way; `verify` catches all of it.

mod common;

use common::{build, db_path, fault_fs, open, read_range, sample_entries};
use logstore_entry::{CodecId, Entry, Key};
use logstore_fs::FaultFs;
use logstore_sstable::{Compression, Direction, Error, ReadOptions, Region, Table, TableOptions};
use std::path::Path;

/// The ranges every damaged table is read with: the whole table, and slices that touch only
/// some blocks (so damage elsewhere must not affect them).
fn probe_ranges(entries: &[Entry<'_>]) -> Vec<(Key, Key)> {
    let k = |i: usize| entries[i].key;
    let n = entries.len();
    vec![
        (Key::MIN, Key::MAX),
        (k(0), k(2)),
        (k(n / 3), k(n / 2)),
        (k(n - 3), k(n - 1)),
        (k(n / 2), k(n / 2)),
    ]
}

/// Everything a reader can see of the table at `path`, each read's result on its own.
#[derive(Debug)]
struct Reading {
    ranges: Vec<Result<Vec<Entry<'static>>, String>>,
    verified: Result<(), String>,
}

/// Both ways a table is read: in place through its view (`mmap`), and through `pread` into a
/// buffer with read-ahead; each damage test runs both.
const READ_MODES: [bool; 2] = [true, false];

fn open_reading(fs: &FaultFs, path: &Path, mmap: bool) -> Result<Table, Error> {
    Table::open(fs, path, ReadOptions { mmap, ..ReadOptions::default() })
}

fn read_everything(
    fs: &FaultFs,
    path: &Path,
    ranges: &[(Key, Key)],
    mmap: bool,
) -> Result<Reading, Error> {
    let table = open_reading(fs, path, mmap)?;
    let mut out = Vec::new();
    for &(lo, hi) in ranges {
        for direction in [Direction::Forward, Direction::Backward] {
            out.push(read_range(&table, lo, hi, direction).map_err(|e| e.to_string()));
        }
    }
    Ok(Reading { ranges: out, verified: table.verify().map(|_| ()).map_err(|e| e.to_string()) })
}

struct Case {
    name: String,
    fs: FaultFs,
    bytes: Vec<u8>,
    ranges: Vec<(Key, Key)>,
    good: Reading,
}

/// Small tables with many blocks, one per codec and compression.
fn cases() -> Vec<Case> {
    let entries = sample_entries(24);
    let mut cases = Vec::new();
    for codec in CodecId::ALL {
        for compression in Compression::ALL {
            let fs = fault_fs();
            let path = db_path("t.sst");
            let options = TableOptions { codec, compression, block_target_bytes: 256 };
            let stats = build(&fs, &path, &entries, options);
            assert!(stats.block_count >= 4, "{stats:?}");
            if compression == Compression::Lz4 {
                assert!(
                    stats.data_bytes < stats.raw_data_bytes,
                    "some block compresses: {stats:?}"
                );
            }
            let ranges = probe_ranges(&entries);
            let good = read_everything(&fs, &path, &ranges, false).unwrap();
            assert!(good.verified.is_ok());
            assert_eq!(good.ranges[0].as_ref().unwrap(), &entries);
            let bytes = fs.read_file(&path).unwrap();
            cases.push(Case { name: format!("{codec}/{compression}"), fs, bytes, ranges, good });
        }
    }
    cases
}

#[test]
fn every_truncation_is_an_error() {
    for case in cases() {
        let path = db_path("t.sst");
        for len in 0..case.bytes.len() {
            case.fs.overwrite_file(&path, &case.bytes[..len]).unwrap();
            // The footer is the end of the file, so a cut file does not open: a reader never
            // sees a silently shorter table.
            let err =
                open(&case.fs, &path).expect_err(&format!("{}: cut to {len} opened", case.name));
            assert!(
                matches!(err, Error::Truncated { .. } | Error::NotATable { .. }),
                "{}: cut to {len}: {err}",
                case.name
            );
            assert!(err.to_string().contains("/db/t.sst"), "{err}");
        }
    }
}

#[test]
fn every_single_byte_corruption_is_detected_or_harmless() {
    let mut detected_by = std::collections::BTreeMap::<&str, usize>::new();
    for case in cases() {
        let path = db_path("t.sst");
        for at in 0..case.bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = case.bytes.clone();
                bytes[at] ^= flip;
                case.fs.overwrite_file(&path, &bytes).unwrap();
                for mmap in READ_MODES {
                    let what = format!("{}: byte {at} ^ {flip:#04x}, mmap {mmap}", case.name);
                    match read_everything(&case.fs, &path, &case.ranges, mmap) {
                        Err(e) => {
                            *detected_by.entry(error_kind(&e)).or_default() += 1;
                            assert!(e.to_string().contains("/db/t.sst"), "{what}: {e}");
                        }
                        Ok(reading) => {
                            // Every checksum covers every byte: verify must see the damage.
                            assert!(reading.verified.is_err(), "{what}: verify passed");
                            *detected_by.entry("verify").or_default() += 1;
                            // Each read either fails or returns exactly the undamaged result.
                            for (got, want) in reading.ranges.iter().zip(&case.good.ranges) {
                                if let Ok(got) = got {
                                    assert_eq!(got, want.as_ref().unwrap(), "{what}: wrong data");
                                }
                            }
                            // The whole-table reads pass over the damage: they must fail.
                            assert!(
                                reading.ranges[0].is_err() && reading.ranges[1].is_err(),
                                "{what}"
                            );
                        }
                    }
                }
            }
        }
    }
    println!("detections: {detected_by:?}");
    // Damage in blocks is found when reading, damage in the index or footer at open.
    assert!(detected_by["verify"] > 0 && detected_by["checksum"] > 0, "{detected_by:?}");
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::ChecksumMismatch { .. } => "checksum",
        Error::NotATable { .. } => "magic",
        Error::UnsupportedVersion { .. } => "version",
        Error::Corrupt { .. } => "corrupt",
        Error::LimitExceeded { .. } => "limit",
        Error::Truncated { .. } => "truncated",
        _ => "other",
    }
}

#[test]
fn errors_name_the_region_and_offset() {
    let fs = fault_fs();
    let path = db_path("t.sst");
    let entries = sample_entries(24);
    let stats = build(
        &fs,
        &path,
        &entries,
        TableOptions { block_target_bytes: 256, ..TableOptions::default() },
    );
    let bytes = fs.read_file(&path).unwrap();
    // Find block 1's offset from the index (first index entry's stored_bytes, at 40..44).
    let index_offset = u64::from_le_bytes(bytes[bytes.len() - 88..][..8].try_into().unwrap());
    let at = index_offset as usize;
    let block0_bytes = u32::from_le_bytes(bytes[at + 40..at + 44].try_into().unwrap()) as u64;
    let mut damaged = bytes.clone();
    damaged[block0_bytes as usize + 1] ^= 0x40;
    fs.overwrite_file(&path, &damaged).unwrap();
    let table = open(&fs, &path).unwrap();
    match table.verify() {
        Err(Error::ChecksumMismatch { region: Region::Block(1), offset, path: p, .. }) => {
            assert_eq!(offset, block0_bytes);
            assert_eq!(p, path);
        }
        other => panic!("{other:?}"),
    }
    // Reads that do not touch block 1 still work; one that does fails, naming it.
    let first = read_range(&table, Key::MIN, entries[0].key, Direction::Forward).unwrap();
    assert_eq!(first, &entries[..1]);
    let err = read_range(&table, Key::MIN, Key::MAX, Direction::Forward).unwrap_err();
    assert!(err.to_string().contains("data block 1"), "{err}");
    assert!(err.to_string().contains(&format!("offset {block0_bytes}")), "{err}");

    // Index damage is found at open.
    let mut damaged = bytes.clone();
    damaged[at + 5] ^= 1;
    fs.overwrite_file(&path, &damaged).unwrap();
    match Table::open(&fs, &path, Default::default()) {
        Err(Error::ChecksumMismatch { region: Region::Index, offset, len_bytes, .. }) => {
            assert_eq!(offset, index_offset);
            assert_eq!(len_bytes, u64::from(stats.block_count) * 60);
        }
        other => panic!("{other:?}"),
    }
    // Footer damage too.
    let mut damaged = bytes.clone();
    let footer_at = bytes.len() - 88;
    damaged[footer_at + 30] ^= 1;
    fs.overwrite_file(&path, &damaged).unwrap();
    match Table::open(&fs, &path, Default::default()) {
        Err(Error::ChecksumMismatch { region: Region::Footer, offset, len_bytes: 76, .. }) => {
            assert_eq!(offset, footer_at as u64);
        }
        other => panic!("{other:?}"),
    }
}

/// `(offset, stored_bytes)` of every block, read from the index as the format describes it.
fn block_places(bytes: &[u8]) -> Vec<(usize, usize)> {
    let footer_at = bytes.len() - 88;
    let le = |at: usize, n: usize| {
        bytes[at..at + n].iter().rev().fold(0usize, |a, &b| a << 8 | b as usize)
    };
    let (index_at, index_bytes) = (le(footer_at, 8), le(footer_at + 8, 4));
    (index_at..index_at + index_bytes).step_by(60).map(|e| (le(e + 32, 8), le(e + 40, 4))).collect()
}

#[test]
fn open_and_ranges_read_only_what_they_need() {
    // One entry per block; every block but one destroyed. Opening reads no block, and a range
    // over the surviving entry reads only its block, either way.
    let entries = sample_entries(30);
    for compression in Compression::ALL {
        let fs = fault_fs();
        let path = db_path("t.sst");
        let options =
            TableOptions { compression, block_target_bytes: 1, ..TableOptions::default() };
        build(&fs, &path, &entries, options);
        let bytes = fs.read_file(&path).unwrap();
        let places = block_places(&bytes);
        assert_eq!(places.len(), entries.len());
        for keep in [0, 13, 29] {
            let mut damaged = bytes.clone();
            for (i, &(offset, len)) in places.iter().enumerate() {
                if i != keep {
                    damaged[offset..offset + len].fill(0xee);
                }
            }
            fs.overwrite_file(&path, &damaged).unwrap();
            for mmap in READ_MODES {
                let table = open_reading(&fs, &path, mmap).unwrap();
                let key = entries[keep].key;
                for direction in [Direction::Forward, Direction::Backward] {
                    let read = read_range(&table, key, key, direction);
                    assert_eq!(read.unwrap(), &entries[keep..=keep], "mmap {mmap}");
                }
                assert!(table.verify().is_err());
                assert!(read_range(&table, Key::MIN, Key::MAX, Direction::Forward).is_err());
            }
        }
    }
}
