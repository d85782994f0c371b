//! Tables: full scan, reading the newest 1,000 entries, open, and size against the raw payload.
//!
//! ```text
//! cargo bench -p logstore-benches --bench sstable
//! ```
//!
//! The table holds [`logstore_benches::entries`]`(100_000, 42)` (messages of 16..=1,024 bytes,
//! metadata on every other entry) in 16 KiB blocks, on the real file system ([`StdFs`]) in a
//! temporary directory. It was just written and is read once more before anything is timed,
//! and criterion warms up each benchmark: every read is served from a warm page cache.
//!
//! - `sstable/scan_100k/*`: one iteration reads all 100,000 entries through a new cursor and
//!   touches each one's text (sums its lengths); time per entry = reported time / 100,000
//!   (the `thrpt` line gives entries per second). `borrowed` uses [`TableCursor::entry`]
//!   (text borrowed from the block), `owned` the `Iterator` of owned entries, `keys` only
//!   walks keys without decoding entries, `verify` is [`Table::verify`] (every entry decoded
//!   fully, metadata JSON included).
//! - `sstable/tail_1000/*`: the newest 1,000 entries of the table, by a forward range from the
//!   1,000th-newest key, and by a backward scan stopped after 1,000 entries.
//!   Tables are read through their memory map ([`ReadOptions::mmap`], the default); the
//!   `best_of` lines ending in `_pread` read the same table through `pread` into a buffer.
//! - `sstable/scan_100k_pread/*`: the binary scan through `pread`, with several read-ahead
//!   limits (256 KiB is the default).
//! - `sstable/floor_100k/*`: what any reader of this format pays with `pread`, each alone, over
//!   the same 100,000 entries: copying the file out of the page cache (256 KiB reads), CRC32C
//!   of every 16 KiB, and UTF-8 validation (`simdutf8`, as the codecs do) of every message and metadata text.
//! - `sstable/open`: [`Table::open`] (footer and index, nothing else).
//!
//! Before criterion runs, it prints the fastest and the median of 30 full scans and of 300
//! tail reads (`best_of_*` lines: on a shared machine, criterion's mean measures the
//! neighbours too), and each table's size against its raw payload, which is
//! defined as Σ (16-byte key + message bytes + metadata bytes), for every codec, without and
//! with LZ4, on the generated entries and on the Loghub samples (every line a message, no
//! metadata).

use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group};
use logstore_entry::{CodecId, Entry, Key};
use logstore_fs::StdFs;
use logstore_sstable::{
    Compression, Direction, ReadOptions, Table, TableBuilder, TableCursor, TableOptions, TableStats,
};

const ENTRIES: usize = 100_000;
const SEED: u64 = 42;
const TAIL: usize = 1_000;

fn build(
    dir: &Path,
    name: &str,
    entries: &[Entry<'_>],
    options: TableOptions,
) -> (PathBuf, TableStats) {
    let path = dir.join(name);
    let mut builder = TableBuilder::create(Arc::new(StdFs), &path, options).expect("create");
    for entry in entries {
        builder.add(entry).expect("add");
    }
    (path, builder.finish().expect("finish"))
}

/// Reads the whole cursor through the borrowing API; returns the text bytes seen.
fn drain_borrowed(mut cursor: TableCursor, limit: usize) -> usize {
    let mut bytes = 0;
    let mut seen = 0;
    while let Some(entry) = cursor.entry() {
        let entry = entry.expect("decode");
        bytes += entry.message.len() + entry.metadata.as_ref().map_or(0, |m| m.len());
        seen += 1;
        if seen == limit {
            break;
        }
        cursor.advance().expect("advance");
    }
    bytes
}

/// Runs `f` `runs` times; prints the fastest and the median run, per item of `items`.
fn best_of(name: &str, runs: usize, items: usize, mut f: impl FnMut() -> usize) {
    let mut times: Vec<std::time::Duration> = (0..runs)
        .map(|_| {
            let start = std::time::Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    times.sort();
    let per_item_us = |d: std::time::Duration| d.as_secs_f64() * 1e6 / items as f64;
    eprintln!(
        "best_of_{runs}/{name}: min {:.3} µs, median {:.3} µs{}",
        per_item_us(times[0]),
        per_item_us(times[runs / 2]),
        if items > 1 { " per entry" } else { "" },
    );
}

fn print_sizes(dir: &Path, generated: &[Entry<'_>]) {
    let mut workloads: Vec<(&str, Vec<Entry<'_>>)> =
        vec![("generated", generated.iter().map(Entry::borrowed).collect())];
    match logstore_benches::loghub_lines() {
        Some(lines) => {
            let entries = lines
                .into_iter()
                .enumerate()
                .map(|(i, line)| {
                    Entry::new(
                        Key::new(1_700_000_000_000 + i as u64, i as u64 + 1),
                        line,
                        None::<String>,
                    )
                })
                .collect();
            workloads.push(("loghub", entries));
        }
        None => eprintln!("sizes/loghub: samples absent, skipped"),
    }
    for (name, entries) in &workloads {
        for codec in CodecId::ALL {
            for compression in Compression::ALL {
                let options = TableOptions { codec, compression, ..TableOptions::default() };
                let file = format!("size-{name}-{codec}-{compression}.sst");
                let (path, stats) = build(dir, &file, entries, options);
                eprintln!(
                    "sizes/{name}/{codec}/{compression}: {} entries, payload {} B, file {} B = {:.4}x payload \
                     (blocks {} B stored / {} B decoded, index {} B, {} blocks)",
                    stats.entry_count,
                    stats.payload_bytes,
                    stats.file_bytes,
                    stats.size_ratio(),
                    stats.data_bytes,
                    stats.raw_data_bytes,
                    stats.index_bytes,
                    stats.block_count,
                );
                std::fs::remove_file(path).expect("remove");
            }
        }
    }
}

fn tables(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let entries = logstore_benches::entries(ENTRIES, SEED);
    print_sizes(dir.path(), &entries);

    let mut opened = Vec::new();
    for (name, codec, compression) in [
        ("binary", CodecId::Binary, Compression::None),
        ("binary_lz4", CodecId::Binary, Compression::Lz4),
        ("cbor", CodecId::Cbor, Compression::None),
        ("json", CodecId::Json, Compression::None),
    ] {
        let options = TableOptions { codec, compression, ..TableOptions::default() };
        let (path, stats) = build(dir.path(), &format!("{name}.sst"), &entries, options);
        let table = Table::open(&StdFs, &path, ReadOptions::default()).expect("open");
        // Read it all once: the page cache is warm, and the table is right.
        assert_eq!(table.verify().expect("verify"), stats);
        opened.push((name, path, table));
    }

    // Robust to a shared machine: the fastest and the median of many runs.
    let (_, _, binary) = &opened[0];
    let from = entries[ENTRIES - TAIL].key;
    best_of("scan_100k/binary/borrowed", 30, ENTRIES, || {
        drain_borrowed(binary.scan(Direction::Forward).expect("scan"), usize::MAX)
    });
    best_of("tail_1000/binary/forward_range", 300, 1, || {
        drain_borrowed(binary.range(from.., Direction::Forward).expect("range"), usize::MAX)
    });
    best_of("tail_1000/binary/backward_take", 300, 1, || {
        drain_borrowed(binary.scan(Direction::Backward).expect("scan"), TAIL)
    });
    // The same reads through `pread` into a buffer instead of the memory map.
    let pread_options = ReadOptions { mmap: false, ..ReadOptions::default() };
    let binary_pread = Table::open(&StdFs, &opened[0].1, pread_options).expect("open");
    best_of("scan_100k/binary/borrowed_pread", 30, ENTRIES, || {
        drain_borrowed(binary_pread.scan(Direction::Forward).expect("scan"), usize::MAX)
    });
    best_of("tail_1000/binary/forward_range_pread", 300, 1, || {
        drain_borrowed(binary_pread.range(from.., Direction::Forward).expect("range"), usize::MAX)
    });

    let mut group = c.benchmark_group("sstable/scan_100k");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for (name, _, table) in &opened {
        group.bench_function(format!("{name}/borrowed"), |b| {
            b.iter(|| {
                black_box(drain_borrowed(table.scan(Direction::Forward).expect("scan"), usize::MAX))
            })
        });
    }
    let (_, binary_path, _) = &opened[0];
    group.bench_function("binary/owned", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for entry in binary.scan(Direction::Forward).expect("scan").into_entries() {
                let entry = entry.expect("decode");
                bytes += entry.message.len() + entry.metadata.as_ref().map_or(0, |m| m.len());
            }
            black_box(bytes)
        })
    });
    group.bench_function("binary/backward_borrowed", |b| {
        b.iter(|| {
            black_box(drain_borrowed(binary.scan(Direction::Backward).expect("scan"), usize::MAX))
        })
    });
    // Verify reads everything again with full decoding (metadata JSON re-parsed): the cost a
    // scan would pay without the codec's trusted decoding, plus the per-entry accounting.
    group.bench_function("binary/verify", |b| {
        b.iter(|| black_box(binary.verify().expect("verify")))
    });
    group.bench_function("binary/keys", |b| {
        b.iter(|| {
            let mut cursor = binary.scan(Direction::Forward).expect("scan");
            let mut sum = 0u64;
            while let Some(key) = cursor.key() {
                sum = sum.wrapping_add(key.seq);
                cursor.advance().expect("advance");
            }
            black_box(sum)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("sstable/tail_1000");
    group.throughput(Throughput::Elements(TAIL as u64));
    for (name, _, table) in &opened {
        group.bench_function(format!("{name}/forward_range"), |b| {
            b.iter(|| {
                let cursor = table.range(from.., Direction::Forward).expect("range");
                black_box(drain_borrowed(cursor, usize::MAX))
            })
        });
    }
    group.bench_function("binary/backward_take", |b| {
        b.iter(|| black_box(drain_borrowed(binary.scan(Direction::Backward).expect("scan"), TAIL)))
    });
    group.finish();

    // The scan through `pread` (not the memory map), with read-ahead limits around the default
    // of 256 KiB.
    let mut group = c.benchmark_group("sstable/scan_100k_pread");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for readahead_bytes_max in [16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20] {
        let options = ReadOptions { readahead_bytes_max, mmap: false, ..ReadOptions::default() };
        let table = Table::open(&StdFs, binary_path, options).expect("open");
        group.bench_function(format!("binary/{}KiB", readahead_bytes_max >> 10), |b| {
            b.iter(|| {
                black_box(drain_borrowed(table.scan(Direction::Forward).expect("scan"), usize::MAX))
            })
        });
    }
    group.finish();

    // What no reader of this format can avoid with `pread`, each on its own: copying the
    // file out of the page cache, its CRC32C, and validating its text as UTF-8.
    let mut group = c.benchmark_group("sstable/floor_100k");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    let file_bytes = std::fs::read(binary_path).expect("read");
    group.bench_function("pread_256KiB", |b| {
        let file = std::fs::File::open(binary_path).expect("open");
        let mut buffer = vec![0u8; 256 << 10];
        b.iter(|| {
            let mut offset = 0;
            while offset < file_bytes.len() {
                offset += file.read_at(&mut buffer, offset as u64).expect("read");
            }
            black_box(&buffer);
        })
    });
    group.bench_function("crc32c_16KiB", |b| {
        b.iter(|| {
            black_box(file_bytes.chunks(16 << 10).fold(0, |acc, c| acc ^ crc_fast::crc32_iscsi(c)))
        })
    });
    group.bench_function("utf8_validation", |b| {
        b.iter(|| {
            let mut valid = 0;
            for entry in &entries {
                valid += simdutf8::basic::from_utf8(black_box(entry.message.as_bytes()))
                    .map_or(0, str::len);
                if let Some(metadata) = &entry.metadata {
                    valid += simdutf8::basic::from_utf8(black_box(metadata.as_bytes()))
                        .map_or(0, str::len);
                }
            }
            black_box(valid)
        })
    });
    group.finish();

    c.bench_function("sstable/open", |b| {
        b.iter(|| {
            black_box(Table::open(&StdFs, binary_path, ReadOptions::default()).expect("open"))
        })
    });
}

criterion_group!(benches, tables);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
