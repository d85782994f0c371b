//! The code the `sstable_open_read` fuzz target runs, and the stable test replaying its
//! corpus: open arbitrary bytes as a table and read everything, checking that the reader never
//! panics and that what it returns is consistent.
//!
//! Random mutations almost never keep a CRC32C valid, so on their own they would only ever
//! exercise the checksum checks. Each input is therefore read twice: as it is, and with every
//! checksum recomputed over the mutated bytes ([`fix_checksums`]), as a buggy writer would
//! produce them. The second pass reaches the index rules, the block parser, decompression and
//! the codecs with arbitrary structure.

use crate::format::{FOOTER_BYTES, INDEX_ENTRY_BYTES, MAGIC, crc32c};
use crate::{Direction, ReadOptions, Table, TableCursor};
use logstore_entry::{Entry, Key};
use logstore_fs::{FaultFs, FileSystem, OpenMode};
use std::path::Path;

/// Limits small enough that a fuzz input cannot make the reader allocate much.
const FUZZ_OPTIONS: ReadOptions = ReadOptions {
    block_bytes_max: 1 << 20,
    block_entries_max: 1 << 14,
    index_bytes_max: 1 << 20,
    readahead_bytes_max: 4 << 10,
    mmap: false,
};

/// Every entry of `cursor`, owned, or the first error.
fn drain(cursor: crate::Result<TableCursor>) -> Option<Vec<Entry<'static>>> {
    let mut cursor = cursor.ok()?;
    let mut out = Vec::new();
    while let Some(entry) = cursor.entry() {
        let entry = entry.ok()?;
        assert_eq!(Some(entry.key), cursor.key(), "entry() and key() disagree");
        out.push(entry.into_owned());
        cursor.advance().ok()?;
    }
    Some(out)
}

/// Opens `bytes` as a table and reads all of it, forwards, backwards, by sub-ranges, and with
/// [`Table::verify`].
///
/// # Panics
///
/// When the reader breaks a promise, which is what the fuzzer looks for: a panic anywhere
/// inside, entries out of order or outside the asked range, the two directions disagreeing,
/// or `verify` accepting a table that does not read back whole.
pub fn open_and_read(bytes: &[u8]) {
    read_both_ways(bytes);
    let mut fixed = bytes.to_vec();
    if fix_checksums(&mut fixed) {
        read_both_ways(&fixed);
    }
}

/// [`read_all`] through `pread` and through the file system's read-only view: the two paths
/// must return the same entries (or both fail the same way).
fn read_both_ways(bytes: &[u8]) {
    let pread = read_all(bytes, FUZZ_OPTIONS);
    let mapped = read_all(bytes, ReadOptions { mmap: true, ..FUZZ_OPTIONS });
    assert_eq!(pread, mapped, "pread and the read-only view disagree");
}

/// Recomputes, in place, the checksum of every block the index locates inside the file, then
/// the index checksum, then the footer checksum. Returns whether `bytes` ends with the magic
/// and a footer locating an index inside the file (otherwise nothing is changed).
pub fn fix_checksums(bytes: &mut [u8]) -> bool {
    let Some(footer_at) = bytes.len().checked_sub(FOOTER_BYTES) else { return false };
    if bytes[footer_at + 80..] != MAGIC {
        return false;
    }
    let le = |b: &[u8]| b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let index_at = le(&bytes[footer_at..footer_at + 8]);
    let index_bytes = le(&bytes[footer_at + 8..footer_at + 12]);
    let Some(index_end) = index_at.checked_add(index_bytes) else { return false };
    if index_end > footer_at as u64 {
        return false;
    }
    let (index_at, index_end) = (index_at as usize, index_end as usize);
    for entry_at in (index_at..index_end).step_by(INDEX_ENTRY_BYTES) {
        if entry_at + INDEX_ENTRY_BYTES > index_end {
            break;
        }
        let offset = le(&bytes[entry_at + 32..entry_at + 40]);
        let stored = le(&bytes[entry_at + 40..entry_at + 44]);
        match offset.checked_add(stored) {
            Some(end) if end <= index_at as u64 => {
                let crc = crc32c(&bytes[offset as usize..end as usize]);
                bytes[entry_at + 52..entry_at + 56].copy_from_slice(&crc.to_le_bytes());
            }
            _ => {}
        }
    }
    let crc = crc32c(&bytes[index_at..index_end]);
    bytes[footer_at + 12..footer_at + 16].copy_from_slice(&crc.to_le_bytes());
    let crc = crc32c(&bytes[footer_at..footer_at + 76]);
    bytes[footer_at + 76..footer_at + 80].copy_from_slice(&crc.to_le_bytes());
    true
}

/// Opens `bytes` as a table with `options` and reads it every way; returns the forward scan and
/// the result of `verify` (as text), for comparing reading paths.
fn read_all(bytes: &[u8], options: ReadOptions) -> Option<(Option<Vec<Entry<'static>>>, String)> {
    let fs = FaultFs::new();
    let dir = Path::new("/fuzz");
    let path = dir.join("table");
    let created = fs
        .create_dir_all(dir)
        .and_then(|()| fs.open(&path, OpenMode::CreateNew))
        .and_then(|_| fs.overwrite_file(&path, bytes));
    assert!(created.is_ok(), "the in-memory file system refused a file: {created:?}");
    let Ok(table) = Table::open(&fs, &path, options) else { return None };
    let stats = table.stats();
    assert!(stats.min_key <= stats.max_key);
    let verified = table.verify();
    let forward = drain(table.scan(Direction::Forward));
    let backward = drain(table.scan(Direction::Backward));
    if verified.is_ok() {
        assert!(forward.is_some() && backward.is_some(), "verify passed, a scan failed");
    }
    if let Some(forward) = &forward {
        assert!(forward.windows(2).all(|w| w[0].key < w[1].key), "forward scan out of order");
        assert!(forward.len() as u64 <= stats.entry_count);
        if verified.is_ok() {
            assert_eq!(forward.len() as u64, stats.entry_count, "verify passed, entries missing");
        }
        if let Some(backward) = &backward {
            assert!(forward.iter().eq(backward.iter().rev()), "directions disagree");
        }
        // Sub-ranges: each must be exactly the matching slice of the full scan.
        assert!(!forward.is_empty(), "a table of {} entries scanned empty", stats.entry_count);
        let keys: Vec<Key> = forward.iter().map(|e| e.key).collect();
        let probes = [stats.min_key, stats.max_key, keys[keys.len() / 2], keys[keys.len() / 3]];
        for &lo in &probes {
            for &hi in &probes {
                let want: Vec<&Entry<'_>> =
                    forward.iter().filter(|e| lo <= e.key && e.key <= hi).collect();
                for direction in [Direction::Forward, Direction::Backward] {
                    // The blocks a range reads all read fine in the full scan.
                    let got = drain(table.range(lo..=hi, direction));
                    let Some(got) = got else { panic!("range {lo}..={hi} failed, scan did not") };
                    match direction {
                        Direction::Forward => assert!(got.iter().eq(want.iter().copied())),
                        Direction::Backward => assert!(got.iter().eq(want.iter().rev().copied())),
                    }
                }
            }
        }
    }
    let _ = drain(table.range_timestamps(stats.min_timestamp_ms().., Direction::Backward));
    Some((forward, format!("{verified:?}")))
}
