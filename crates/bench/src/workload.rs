//! The deterministic workload generator: messages, metadata and whole entries from a seed, or
//! messages from real logs.
//!
//! Everything is generated from a seed with [`SplitMix64`], so two runs (and two machines)
//! measure the same bytes. The message mix of the report's V3 on (and of the criterion benches)
//! is lengths uniform in [`MESSAGE_BYTES_MIN`]`..=`[`MESSAGE_BYTES_MAX`] bytes; the report's V1
//! and V2 use small messages ([`MESSAGE_BYTES_MIN`]`..=`[`SMALL_MESSAGE_BYTES_MAX`]).
//! Metadata (a small JSON object) is on every other entry. [`corpus_lines`] reads real log
//! lines (the Loghub samples beside the project, [`loghub_dir`]) to use as messages instead.

use logstore_entry::{Entry, Key};
use std::path::{Path, PathBuf};

/// Shortest generated message, in bytes.
pub const MESSAGE_BYTES_MIN: usize = 16;
/// Longest generated message, in bytes.
pub const MESSAGE_BYTES_MAX: usize = 1_024;
/// Longest "small" message (the report's V1 and V2), in bytes.
pub const SMALL_MESSAGE_BYTES_MAX: usize = 64;
/// Timestamp of the first generated entry of [`entries`] (November 2023), in milliseconds.
pub const START_MS: u64 = 1_700_000_000_000;

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

/// The metadata of entry `i`: a small JSON object on even `i`, none on odd.
pub fn metadata(rng: &mut SplitMix64, i: u64) -> Option<String> {
    (i % 2 == 0).then(|| {
        format!(
            r#"{{"host":"node-{}","service":"api","level":"{}","attempt":{}}}"#,
            rng.range(1, 64),
            ["info", "warn", "error"][(i % 3) as usize],
            rng.range(0, 9)
        )
    })
}

/// `count` entries with increasing keys (one millisecond apart from [`START_MS`], `seq` from
/// 1), messages of 16..=1,024 bytes and metadata on every other entry.
pub fn entries(count: usize, seed: u64) -> Vec<Entry<'static>> {
    let mut rng = SplitMix64::new(seed);
    (0..count as u64)
        .map(|i| {
            let len = rng.range(MESSAGE_BYTES_MIN as u64, MESSAGE_BYTES_MAX as u64) as usize;
            let metadata = metadata(&mut rng, i);
            Entry::new(Key::new(START_MS + i, i + 1), message(&mut rng, len), metadata)
        })
        .collect()
}

/// Sizes of generated messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MessageSize {
    /// Uniform in [`MESSAGE_BYTES_MIN`]`..=`[`SMALL_MESSAGE_BYTES_MAX`] (the report's V1, V2).
    Small,
    /// Uniform in [`MESSAGE_BYTES_MIN`]`..=`[`MESSAGE_BYTES_MAX`] (V3 on).
    Mixed,
}

impl MessageSize {
    /// The inclusive range of message lengths, in bytes.
    pub fn bytes_range(self) -> (usize, usize) {
        match self {
            MessageSize::Small => (MESSAGE_BYTES_MIN, SMALL_MESSAGE_BYTES_MAX),
            MessageSize::Mixed => (MESSAGE_BYTES_MIN, MESSAGE_BYTES_MAX),
        }
    }
}

/// One entry to write: what a client sends (the store assigns the key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputEntry {
    /// The message text.
    pub message: String,
    /// The metadata, a JSON object, on every other entry.
    pub metadata: Option<String>,
}

/// `count` entries to write: messages generated from `seed` in `size`, or taken in turn from
/// `corpus` (cycling when it is shorter than `count`); metadata generated on every other entry.
pub fn input(
    count: usize,
    seed: u64,
    size: MessageSize,
    corpus: Option<&[String]>,
) -> Vec<InputEntry> {
    let mut rng = SplitMix64::new(seed);
    let (lo, hi) = size.bytes_range();
    let mut out = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let message = match corpus {
            Some(lines) if !lines.is_empty() => lines[i as usize % lines.len()].clone(),
            _ => {
                let len = rng.range(lo as u64, hi as u64) as usize;
                message(&mut rng, len)
            }
        };
        out.push(InputEntry { message, metadata: metadata(&mut rng, i) });
    }
    out
}

/// Bytes of text (messages and metadata) in `input`: the payload the store is handed.
pub fn input_bytes(input: &[InputEntry]) -> u64 {
    input
        .iter()
        .map(|e| (e.message.len() + e.metadata.as_ref().map_or(0, String::len)) as u64)
        .sum()
}

/// Where the real log samples live: `../shared/data/loghub/` beside the project root.
pub fn loghub_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub")
}

/// Every non-empty line of every `*.log` file in `dir`, in file-name order (invalid UTF-8
/// replaced), or an error when the folder cannot be read or holds no log lines.
pub fn corpus_lines(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read(&file)?;
        lines.extend(
            String::from_utf8_lossy(&text).lines().filter(|l| !l.is_empty()).map(str::to_owned),
        );
    }
    if lines.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no lines in *.log files under {}", dir.display()),
        ));
    }
    Ok(lines)
}

/// Every line of the Loghub samples ([`loghub_dir`]), or `None` (with a note on stderr) when
/// they are absent.
pub fn loghub_lines() -> Option<Vec<String>> {
    let dir = loghub_dir();
    match corpus_lines(&dir) {
        Ok(lines) => Some(lines),
        Err(e) => {
            eprintln!("note: no Loghub samples in {} ({e}); using generated text", dir.display());
            None
        }
    }
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

    #[test]
    fn input_is_deterministic_in_range_and_uses_the_corpus() {
        let small = input(300, 3, MessageSize::Small, None);
        assert_eq!(small, input(300, 3, MessageSize::Small, None));
        assert!(small.iter().all(|e| (16..=64).contains(&e.message.len())));
        assert!(small.iter().step_by(2).all(|e| e.metadata.is_some()));
        assert!(small.iter().skip(1).step_by(2).all(|e| e.metadata.is_none()));
        let corpus = ["a line".to_owned(), "another".to_owned()];
        let from_corpus = input(5, 3, MessageSize::Mixed, Some(&corpus));
        let messages: Vec<_> = from_corpus.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["a line", "another", "a line", "another", "a line"]);
    }
}
