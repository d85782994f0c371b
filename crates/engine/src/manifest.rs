//! The manifest: which tables make up the store, and how far the WAL is flushed into them.
//!
//! # Format
//! One file, `MANIFEST`, replaced whole at every checkpoint (`crate::checkpoint`): written as
//! `MANIFEST.tmp`, synced, renamed over `MANIFEST`, and the directory synced, so a crash leaves
//! either the old or the new manifest, never a mix. It is a header line followed by a JSON body, so an operator can read
//! it:
//! ```text
//! logstore-manifest 1 crc32c=<8 hex digits> bytes=<body length>\n
//! {"flushed_seq":1001,"clock_ms":1700000000123,"next_table_id":3,"tables":[{"id":1,...}]}
//! ```
//! The CRC32C covers exactly the body's bytes. A manifest that is truncated, has a bad
//! checksum, an unknown version, or is larger than [`MANIFEST_BYTES_MAX`] is an error naming the
//! file: the store refuses to open rather than guess which tables exist.

use crate::error::{Result, StoreError, io_err};
use logstore_entry::Key;
use logstore_fs::{FileSystem, OpenMode};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version written in the header line.
pub(crate) const MANIFEST_VERSION: u32 = 1;
/// Largest manifest read back (about a million tables).
pub(crate) const MANIFEST_BYTES_MAX: u64 = 256 << 20;
const MAGIC: &str = "logstore-manifest";

/// What the store is made of, as of the last checkpoint (stored), or now (the worker's next).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// Every entry with a WAL sequence number below this is in a table.
    pub flushed_seq: u64,
    /// The newest store-assigned timestamp in the tables: the clock's floor after a restart.
    pub clock_ms: u64,
    /// The id the next table gets.
    pub next_table_id: u64,
    /// The tables, in no particular order.
    pub tables: Vec<TableRecord>,
}

/// One table as the manifest knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TableRecord {
    pub id: u64,
    pub generation: u32,
    pub entries: u64,
    pub bytes: u64,
    pub min_timestamp_ms: u64,
    pub min_seq: u64,
    pub max_timestamp_ms: u64,
    pub max_seq: u64,
}

impl TableRecord {
    pub(crate) fn min_key(&self) -> Key {
        Key::new(self.min_timestamp_ms, self.min_seq)
    }

    pub(crate) fn max_key(&self) -> Key {
        Key::new(self.max_timestamp_ms, self.max_seq)
    }
}

impl Manifest {
    /// Encodes the header line and body.
    fn encode(&self) -> Vec<u8> {
        let body = serde_json::to_vec(self).expect("a manifest always serialises");
        let crc = crc_fast::crc32_iscsi(&body);
        let mut out = format!("{MAGIC} {MANIFEST_VERSION} crc32c={crc:08x} bytes={}\n", body.len())
            .into_bytes();
        out.extend_from_slice(&body);
        out
    }

    /// Decodes and checks a manifest file's bytes; the error says what is wrong.
    fn decode(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let newline = bytes
            .iter()
            .position(|&b| b == b'\n')
            .filter(|&at| at <= 128)
            .ok_or("no header line")?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not UTF-8")?;
        let fields: Vec<&str> = header.split(' ').collect();
        let [magic, version, crc, len] = fields[..] else {
            return Err(format!("malformed header {header:?}"));
        };
        if magic != MAGIC {
            return Err(format!("not a logstore manifest (header {header:?})"));
        }
        if version != MANIFEST_VERSION.to_string() {
            return Err(format!("manifest version {version}, this build reads {MANIFEST_VERSION}"));
        }
        let crc = crc
            .strip_prefix("crc32c=")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .ok_or_else(|| format!("malformed checksum field {crc:?}"))?;
        let len: usize = len
            .strip_prefix("bytes=")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("malformed length field {len:?}"))?;
        let body = &bytes[newline + 1..];
        if body.len() != len {
            return Err(format!("body is {} bytes, header says {len}", body.len()));
        }
        let actual = crc_fast::crc32_iscsi(body);
        if actual != crc {
            return Err(format!("checksum {actual:08x} does not match {crc:08x}"));
        }
        serde_json::from_slice(body).map_err(|e| format!("body: {e}"))
    }

    /// Reads `path`, or `None` if there is no manifest yet.
    pub(crate) fn load(fs: &dyn FileSystem, path: &Path) -> Result<Option<Manifest>> {
        if !fs.exists(path).map_err(io_err("stat", path))? {
            return Ok(None);
        }
        let file = fs.open(path, OpenMode::Read).map_err(io_err("open", path))?;
        let len = file.len().map_err(io_err("stat", path))?;
        if len > MANIFEST_BYTES_MAX {
            return Err(StoreError::Corruption {
                path: path.to_owned(),
                offset: 0,
                reason: format!(
                    "manifest of {len} bytes exceeds the limit of {MANIFEST_BYTES_MAX}"
                ),
            });
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).map_err(io_err("read", path))?;
        Manifest::decode(&bytes).map(Some).map_err(|reason| StoreError::Corruption {
            path: path.to_owned(),
            offset: 0,
            reason,
        })
    }

    /// Replaces the manifest at `path` atomically and durably.
    pub(crate) fn store(&self, fs: &dyn FileSystem, path: &Path) -> Result<()> {
        let dir = path.parent().expect("the manifest lives in the data directory");
        let temp = path.with_extension("tmp");
        if fs.exists(&temp).map_err(io_err("stat", &temp))? {
            fs.remove_file(&temp).map_err(io_err("remove", &temp))?;
        }
        let file = fs.open(&temp, OpenMode::CreateNew).map_err(io_err("create", &temp))?;
        file.write_all_at(&self.encode(), 0).map_err(io_err("write", &temp))?;
        file.sync_data().map_err(io_err("fdatasync", &temp))?;
        fs.rename(&temp, path).map_err(io_err("rename", &temp))?;
        fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logstore_fs::{CrashMode, FaultFs};
    use std::path::PathBuf;

    fn sample() -> Manifest {
        Manifest {
            flushed_seq: 1001,
            clock_ms: 1_700_000_000_123,
            next_table_id: 3,
            tables: vec![TableRecord {
                id: 2,
                generation: 0,
                entries: 1000,
                bytes: 520_000,
                min_timestamp_ms: 1,
                min_seq: 1,
                max_timestamp_ms: 9,
                max_seq: 1000,
            }],
        }
    }

    #[test]
    fn round_trip_and_crash_keeps_old_or_new() {
        let fs = FaultFs::new();
        let dir = PathBuf::from("/db");
        fs.create_dir_all(&dir).unwrap();
        let path = dir.join("MANIFEST");
        assert_eq!(Manifest::load(&fs, &path).unwrap(), None);
        let first = sample();
        first.store(&fs, &path).unwrap();
        assert_eq!(Manifest::load(&fs, &path).unwrap(), Some(first.clone()));
        let mut second = sample();
        second.flushed_seq = 2001;
        second.store(&fs, &path).unwrap();
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(Manifest::load(&fs, &path).unwrap(), Some(second.clone()));
        // A crash in the middle of a store (the write never synced) leaves the old one.
        fs.fail_sync_after(0);
        let mut third = sample();
        third.flushed_seq = 3001;
        assert!(third.store(&fs, &path).is_err());
        fs.crash(CrashMode::DropUnsynced);
        assert_eq!(Manifest::load(&fs, &path).unwrap(), Some(second));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Manifest::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            // A flip is caught, or (inside the decimal numbers of the header) still names a
            // mismatching length or checksum: never a wrong manifest.
            if let Ok(m) = Manifest::decode(&bad) {
                panic!("flip at {at} decoded to {m:?}");
            }
        }
    }
}
