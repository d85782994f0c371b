//! Replays the seed corpus of the `sstable_open_read` fuzz target through the same function
//! the target calls, on stable, so every `cargo test` runs the fuzzer's checks on its inputs.
//!
//! The corpus is written by `write_seed_corpus` (ignored; run it with
//! `cargo test -p logstore-sstable --test fuzz_corpus -- --ignored` after a format change).

mod common;

use common::{build, db_path, fault_fs, sample_entries};
use logstore_entry::CodecId;
use logstore_fs::{FileSystem, OpenMode};
use logstore_sstable::fuzzing::{fix_checksums, open_and_read};
use logstore_sstable::{Compression, ReadOptions, Table, TableOptions};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/sstable_open_read")
}

#[test]
fn replay_seed_corpus() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the seed corpus is committed")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "only {} corpus files", files.len());
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let result = std::panic::catch_unwind(|| open_and_read(&bytes));
        assert!(result.is_ok(), "{} panics the reader", file.display());
        // The valid seeds must still be valid tables (else the format changed: regenerate).
        let name = file.file_name().unwrap().to_string_lossy();
        if name.ends_with("-valid") || name.ends_with("-one-entry") {
            let mut fixed = bytes.clone();
            assert!(fix_checksums(&mut fixed), "{name}");
            assert_eq!(fixed, bytes, "{name}: fixing a valid table's checksums changed it");
            let fs = fault_fs();
            let path = db_path("t.sst");
            fs.open(&path, OpenMode::CreateNew).unwrap();
            fs.overwrite_file(&path, &bytes).unwrap();
            let table = Table::open(&fs, &path, ReadOptions::default()).unwrap();
            table.verify().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Valid tables in every codec and compression, many blocks, and damaged copies of them.
#[test]
#[ignore = "writes the seed corpus into the source tree"]
fn write_seed_corpus() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: String, bytes: &[u8]| std::fs::write(dir.join(name), bytes).unwrap();
    write("empty".into(), b"");
    write("garbage".into(), &[0x5a; 200]);
    for codec in CodecId::ALL {
        for compression in Compression::ALL {
            let fs = fault_fs();
            let path = db_path("t.sst");
            let options = TableOptions { codec, compression, block_target_bytes: 150 };
            build(&fs, &path, &sample_entries(12), options);
            let bytes = fs.read_file(&path).unwrap();
            let name = format!("{codec}-{compression}");
            write(format!("{name}-valid"), &bytes);
            let cut = bytes.len() / 2;
            write(format!("{name}-truncated"), &bytes[..cut]);
            for (region, at) in [("block", 5), ("footer", bytes.len() - 40)] {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x21;
                write(format!("{name}-damaged-{region}"), &damaged);
            }
        }
    }
    // One entry per block, single-entry table.
    let fs = fault_fs();
    let path = db_path("t.sst");
    build(&fs, &path, &sample_entries(1), TableOptions::default());
    write("binary-none-one-entry".into(), &fs.read_file(&path).unwrap());
}
