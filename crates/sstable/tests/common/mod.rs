//! Helpers shared by the integration tests: building tables on the in-memory file system and
//! reading them back whole.
#![allow(dead_code)] // each test file uses its own subset

use logstore_entry::{Entry, Key};
use logstore_fs::{FaultFs, FileSystem};
use logstore_sstable::{
    Direction, ReadOptions, Result, Table, TableBuilder, TableOptions, TableStats,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fresh in-memory file system with the directory `/db`.
pub fn fault_fs() -> FaultFs {
    let fs = FaultFs::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    fs
}

/// `/db/<name>`.
pub fn db_path(name: &str) -> PathBuf {
    Path::new("/db").join(name)
}

/// Builds a table of `entries` at `path`.
pub fn build(
    fs: &FaultFs,
    path: &Path,
    entries: &[Entry<'_>],
    options: TableOptions,
) -> TableStats {
    let mut builder = TableBuilder::create(Arc::new(fs.clone()), path, options).unwrap();
    for entry in entries {
        builder.add(entry).unwrap();
    }
    builder.finish().unwrap()
}

/// Every entry of `table` with a key in `lo..=hi`, in `direction`, owned, through the
/// borrowing cursor API.
pub fn read_range(
    table: &Table,
    lo: Key,
    hi: Key,
    direction: Direction,
) -> Result<Vec<Entry<'static>>> {
    let mut cursor = table.range(lo..=hi, direction)?;
    let mut out = Vec::new();
    while let Some(entry) = cursor.entry() {
        let entry = entry?;
        assert_eq!(cursor.key(), Some(entry.key));
        out.push(entry.into_owned());
        cursor.advance()?;
    }
    Ok(out)
}

/// A small log-like vocabulary, so that LZ4 has something to find.
pub const WORDS: &[&str] = &[
    "error", "disk", "full", "on", "node-7", "retry", "in", "5s", "GET", "/api", "200", "é", "日本",
];

/// An entry at `key` whose text is built from `seed`, with metadata when `seed` is odd.
pub fn entry_for(key: Key, seed: u64) -> Entry<'static> {
    let words = 1 + (seed % 12) as usize;
    let message: Vec<&str> =
        (0..words).map(|i| WORDS[((seed >> 3) as usize + i * 7) % WORDS.len()]).collect();
    let metadata =
        (seed % 2 == 1).then(|| format!(r#"{{"n":{seed},"w":"{}"}}"#, WORDS[(seed % 5) as usize]));
    Entry::new(key, message.join(" "), metadata)
}

/// `count` entries with increasing keys, several per millisecond.
pub fn sample_entries(count: u64) -> Vec<Entry<'static>> {
    (0..count).map(|i| entry_for(Key::new(1_000 + i / 3, i * 11), i)).collect()
}

/// Opens with default read options.
pub fn open(fs: &FaultFs, path: &Path) -> Result<Table> {
    Table::open(fs, path, ReadOptions::default())
}
