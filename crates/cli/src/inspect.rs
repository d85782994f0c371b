//! `logstore inspect`: what is on disk, read without opening the store (so it also works next
//! to a running server, and never repairs anything).
//!
//! Tables are opened with `logstore-sstable` (footer and index; `--verify` reads and checks
//! every block). WAL segments are listed with their sizes; `--verify` recovers a copy of the
//! WAL directory with `logstore-wal` (recovery repairs what it opens, so never the original)
//! and reports any damage it finds, with the original file's name and offset.

use anyhow::{Context, Result, bail};
use logstore_engine::{Key, MANIFEST_FILE, TABLES_DIR, WAL_DIR};
use logstore_fs::StdFs;
use logstore_sstable::{ReadOptions, Table};
use std::path::{Path, PathBuf};

pub(crate) fn run(dir: &Path, verify: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!("{} is not a data directory (it does not exist)", dir.display());
    }
    let mut damaged: Vec<String> = Vec::new();
    println!("data directory {}", dir.display());
    let manifest = dir.join(MANIFEST_FILE);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => println!("manifest: {}", text.lines().next().unwrap_or("(empty)")),
        Err(e) => println!("manifest: none ({e})"),
    }

    let segments = files(&dir.join(WAL_DIR), "wal")?;
    let wal_bytes: u64 = segments.iter().map(|(_, bytes)| bytes).sum();
    println!("wal: {} segments, {wal_bytes} bytes", segments.len());
    for (path, bytes) in &segments {
        println!("  {}  {bytes} bytes", name(path));
    }
    if verify && !segments.is_empty() {
        match verify_wal(&dir.join(WAL_DIR), &segments) {
            Ok(summary) => println!("  verified: {summary}"),
            Err(e) => damaged.push(format!("{e:#}")),
        }
    }

    let tables = files(&dir.join(TABLES_DIR), "sst")?;
    println!("tables: {}", tables.len());
    let (mut entries, mut bytes) = (0u64, 0u64);
    for (path, _) in &tables {
        let opened = Table::open(&StdFs, path, ReadOptions::default());
        let stats = match opened.and_then(|t| if verify { t.verify() } else { Ok(t.stats()) }) {
            Ok(stats) => stats,
            Err(e) => {
                println!("  {}  DAMAGED: {e}", name(path));
                damaged.push(e.to_string());
                continue;
            }
        };
        entries += stats.entry_count;
        bytes += stats.file_bytes;
        println!(
            "  {}  {} entries  {} .. {}  {} bytes ({} raw)  codec {:?}  compression {}{}",
            name(path),
            stats.entry_count,
            time(stats.min_key),
            time(stats.max_key),
            stats.file_bytes,
            stats.raw_data_bytes,
            stats.codec,
            stats.compression.name(),
            if verify { "  verified" } else { "" },
        );
    }
    println!(
        "total: {entries} entries in tables, {bytes} bytes of tables, {wal_bytes} bytes of WAL"
    );
    if !damaged.is_empty() {
        bail!("{} damaged: {}", damaged.len(), damaged.join("; "));
    }
    Ok(())
}

fn time(key: Key) -> String {
    let ms = i64::try_from(key.timestamp_ms).unwrap_or(i64::MAX);
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms}ms"), |t| format!("{t:.3}"))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The files of `dir` ending in `.ext`, sorted, with their sizes; none if `dir` is missing.
fn files(dir: &Path, ext: &str) -> Result<Vec<(PathBuf, u64)>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    let mut found = Vec::new();
    for item in listing {
        let item = item.with_context(|| format!("list {}", dir.display()))?;
        let path = item.path();
        if path.extension().is_some_and(|e| e == ext) {
            let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((path, bytes));
        }
    }
    found.sort();
    Ok(found)
}

/// Recovers a copy of the WAL and reports what recovery would find.
fn verify_wal(wal_dir: &Path, segments: &[(PathBuf, u64)]) -> Result<String> {
    // A fresh directory of an unpredictable name, removed when `copy_dir` drops, on every path
    // out of this function.
    let copy_dir = tempfile::Builder::new()
        .prefix("logstore-inspect-")
        .tempdir()
        .context("create a temporary directory for the WAL copy")?;
    let copy = copy_dir.path();
    for (path, _) in segments {
        std::fs::copy(path, copy.join(name(path)))
            .with_context(|| format!("copy {}", path.display()))?;
    }
    let unmap = |text: String| text.replace(&*copy.to_string_lossy(), &wal_dir.to_string_lossy());
    let opened = logstore_wal::Wal::open(copy, logstore_wal::WalOptions::default());
    match opened {
        Err(e) => Err(anyhow::anyhow!("{}", unmap(e.to_string()))),
        Ok(wal) => {
            let report = wal.recovery().clone();
            let _ = wal.close();
            let mut problems: Vec<String> = Vec::new();
            if let Some(torn) = &report.torn_tail {
                if !report.clean_shutdown {
                    // A torn tail is what a crash leaves: reported, not counted as damage.
                    println!(
                        "  torn tail in {} at offset {} ({} bytes): {}",
                        name(&torn.path),
                        torn.offset,
                        torn.len_bytes,
                        torn.reason
                    );
                }
            }
            for damage in &report.skipped {
                problems.push(format!(
                    "{} at offset {}: {}",
                    name(&damage.path),
                    damage.offset,
                    damage.reason
                ));
            }
            for dropped in &report.dropped_segments {
                problems.push(format!("{} dropped", name(dropped)));
            }
            if problems.is_empty() {
                Ok(format!(
                    "{} records, sequence {}..{}",
                    report.records, report.first_seq, report.next_seq
                ))
            } else {
                Err(anyhow::anyhow!("WAL in {}: {}", wal_dir.display(), problems.join(", ")))
            }
        }
    }
}
