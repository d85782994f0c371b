//! The floors: the same workload done the simplest way, measured in the same run.
//!
//! - [`VecFloor`]: entries copied into a `Vec` behind a mutex (the floor for V1: what keeping
//!   entries in memory costs at least, the copy of each message included).
//! - [`FileFloor`]: each entry framed and written to a plain file with one `write` and one
//!   `fdatasync` (the floor for synced writes: one sync per write, the file growing every time,
//!   as a WAL's would without preallocation); reads parse the whole file back.
//!
//! Both run through [`crate::run::drive`], so they are timed and verified exactly like the
//! store: the same clock reads, the same digests. Keys are `(START_MS, n)`, `n` counting from 1.

use crate::digest::Digest;
use crate::run::{KeyPair, Subject};
use crate::workload::{InputEntry, START_MS};
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

type Owned = (u64, String, Option<String>);

/// Entries in a `Vec`.
#[derive(Debug, Default)]
pub struct VecFloor {
    entries: Mutex<Vec<Owned>>,
}

impl VecFloor {
    /// An empty one with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> VecFloor {
        VecFloor { entries: Mutex::new(Vec::with_capacity(capacity)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Owned>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Subject for VecFloor {
    fn append(&self, entry: &InputEntry) -> Result<KeyPair> {
        let mut entries = self.lock();
        let seq = entries.len() as u64 + 1;
        entries.push((seq, entry.message.clone(), entry.metadata.clone()));
        Ok((START_MS, seq))
    }

    fn read_all(&self, digest: &mut Digest) -> Result<()> {
        for (seq, message, metadata) in self.lock().iter() {
            digest.add(START_MS, *seq, message, metadata.as_deref());
        }
        Ok(())
    }

    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()> {
        let entries = self.lock();
        let start = if from_ms <= START_MS { 0 } else { entries.len() };
        for (seq, message, metadata) in entries[start..].iter().rev().take(count) {
            digest.add(START_MS, *seq, message, metadata.as_deref());
        }
        Ok(())
    }
}

/// Frame: `[u64 seq][u32 message length][u32 metadata length, u32::MAX if none][message]
/// [metadata]`, little-endian.
const FRAME_HEADER_BYTES: usize = 16;

/// Entries appended to a file, `write` + `fdatasync` each.
#[derive(Debug)]
pub struct FileFloor {
    path: PathBuf,
    state: Mutex<(File, Vec<u8>, u64)>,
}

impl FileFloor {
    /// Creates (truncating) the file `path`.
    pub fn create(path: &Path) -> Result<FileFloor> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(FileFloor { path: path.to_owned(), state: Mutex::new((file, Vec::new(), 0)) })
    }

    /// Every entry in the file, in write order, handed to `each` as borrowed text.
    fn scan(&self, mut each: impl FnMut(u64, &str, Option<&str>)) -> Result<()> {
        let bytes = std::fs::read(&self.path)?;
        let mut at = 0;
        while at < bytes.len() {
            let header = bytes.get(at..at + FRAME_HEADER_BYTES).context("torn frame header")?;
            let seq = u64::from_le_bytes(header[..8].try_into()?);
            let message_len = u32::from_le_bytes(header[8..12].try_into()?) as usize;
            let metadata_len = u32::from_le_bytes(header[12..16].try_into()?);
            at += FRAME_HEADER_BYTES;
            let message = bytes.get(at..at + message_len).context("torn message")?;
            at += message_len;
            let metadata = if metadata_len == u32::MAX {
                None
            } else {
                let m = bytes.get(at..at + metadata_len as usize).context("torn metadata")?;
                at += metadata_len as usize;
                Some(std::str::from_utf8(m)?)
            };
            each(seq, std::str::from_utf8(message)?, metadata);
        }
        Ok(())
    }
}

impl Subject for FileFloor {
    fn append(&self, entry: &InputEntry) -> Result<KeyPair> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (file, buf, seq) = &mut *state;
        *seq += 1;
        buf.clear();
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&(entry.message.len() as u32).to_le_bytes());
        let metadata = entry.metadata.as_deref();
        buf.extend_from_slice(&metadata.map_or(u32::MAX, |m| m.len() as u32).to_le_bytes());
        buf.extend_from_slice(entry.message.as_bytes());
        buf.extend_from_slice(metadata.unwrap_or("").as_bytes());
        file.write_all(buf)?;
        file.sync_data()?;
        Ok((START_MS, *seq))
    }

    fn read_all(&self, digest: &mut Digest) -> Result<()> {
        self.scan(|seq, message, metadata| digest.add(START_MS, seq, message, metadata))
    }

    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()> {
        if from_ms > START_MS {
            bail!("the file floor's entries are all at {START_MS}");
        }
        // No index: parse the whole file, keep the last `count` frames.
        let mut newest = std::collections::VecDeque::with_capacity(count + 1);
        self.scan(|seq, message, metadata| {
            newest.push_back((seq, message.to_owned(), metadata.map(str::to_owned)));
            if newest.len() > count {
                newest.pop_front();
            }
        })?;
        for (seq, message, metadata) in newest.iter().rev() {
            digest.add(START_MS, *seq, message, metadata.as_deref());
        }
        Ok(())
    }
}
