//! Workloads shared by the criterion benchmarks in this folder.
//!
//! Everything is generated deterministically from a seed, so two runs measure the same bytes.
//! The message mix is the issue's: lengths uniform in 16..=1,024 bytes, metadata (a small JSON
//! object) on every other entry. [`loghub_lines`] reads the real log samples that sit beside the
//! project, for size and compression figures on real text.

use logstore_entry::{Entry, Key};
use std::path::{Path, PathBuf};

/// Shortest generated message, in bytes.
pub const MESSAGE_BYTES_MIN: usize = 16;
/// Longest generated message, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 1_024;

/// A small, fast, deterministic generator (SplitMix64); not for cryptography.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

const WORDS: &[&str] = &[
    "connection",
    "accepted",
    "from",
    "10.0.0.7",
    "port",
    "closed",
    "error",
    "timeout",
    "user",
    "session",
    "opened",
    "block",
    "replica",
    "INFO",
    "WARN",
    "ERROR",
    "request",
    "completed",
    "in",
    "ms",
    "status=200",
    "GET",
    "/api/v1/items",
    "retrying",
    "after",
    "failure",
    "disk",
];

/// A message of exactly `len` bytes of ASCII words, drawn from `rng`.
pub fn message(rng: &mut SplitMix64, len: usize) -> String {
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
    }
    out.truncate(len);
    out
}

/// `count` entries with increasing keys (one millisecond apart, `seq` from 1), messages of
/// 16..=1,024 bytes and metadata on every other entry.
pub fn entries(count: usize, seed: u64) -> Vec<Entry<'static>> {
    let mut rng = SplitMix64::new(seed);
    let start_ms = 1_700_000_000_000;
    (0..count as u64)
        .map(|i| {
            let len = rng.range(MESSAGE_BYTES_MIN as u64, MESSAGE_BYTES_MAX as u64) as usize;
            let metadata = (i % 2 == 0).then(|| {
                format!(
                    r#"{{"host":"node-{}","service":"api","level":"{}","attempt":{}}}"#,
                    rng.range(1, 64),
                    ["info", "warn", "error"][(i % 3) as usize],
                    rng.range(0, 9)
                )
            });
            Entry::new(Key::new(start_ms + i, i + 1), message(&mut rng, len), metadata)
        })
        .collect()
}

/// Where the real log samples live: `../shared/data/loghub/` beside the project root.
pub fn loghub_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub")
}

/// Every line of every `*.log` file in the Loghub samples, in file-name order, or `None` (with a
/// note on stderr) when the folder is absent.
pub fn loghub_lines() -> Option<Vec<String>> {
    let dir = loghub_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "log"))
        .collect();
    if files.is_empty() {
        eprintln!("note: no Loghub samples in {}; using generated text", dir.display());
        return None;
    }
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read(&file).ok()?;
        lines.extend(String::from_utf8_lossy(&text).lines().map(str::to_owned));
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_deterministic_and_in_range() {
        let a = entries(200, 7);
        assert_eq!(a, entries(200, 7));
        assert_ne!(a, entries(200, 8));
        assert!(a.windows(2).all(|w| w[0].key < w[1].key));
        for (i, e) in a.iter().enumerate() {
            assert!((MESSAGE_BYTES_MIN..=MESSAGE_BYTES_MAX).contains(&e.message.len()));
            assert_eq!(e.metadata.is_some(), i % 2 == 0);
        }
    }
}
