//! The same workload on other embedded stores (the `peers` feature): fjall (an LSM tree) and
//! redb (a copy-on-write B-tree), each made as durable per write as V2 on: fjall persists its
//! journal with `SyncData` after every insert, redb commits one write transaction per entry
//! (its default `Immediate` durability: fsync before `commit` returns).
//!
//! Keys are `(timestamp_ms, seq)` big-endian, assigned like the store's (a clock that never
//! goes back, a counter); values are `[u8 has metadata][u32 message length LE][message]
//! [metadata]`. Reads decode every value back to text, as the store's reads do.

use crate::digest::Digest;
use crate::run::{KeyPair, Subject};
use crate::workload::InputEntry;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Hands out keys: milliseconds that never go back, and a counter.
#[derive(Debug, Default)]
struct Keys(Mutex<(u64, u64)>);

impl Keys {
    fn next(&self) -> KeyPair {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.max(now);
        state.1 += 1;
        *state
    }
}

fn encode_key((ms, seq): KeyPair) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&ms.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn encode_value(entry: &InputEntry) -> Vec<u8> {
    let meta = entry.metadata.as_deref();
    let mut v = Vec::with_capacity(5 + entry.message.len() + meta.map_or(0, str::len));
    v.push(u8::from(meta.is_some()));
    v.extend_from_slice(&(entry.message.len() as u32).to_le_bytes());
    v.extend_from_slice(entry.message.as_bytes());
    v.extend_from_slice(meta.unwrap_or("").as_bytes());
    v
}

fn fold(key: &[u8], value: &[u8], digest: &mut Digest) -> Result<()> {
    let ms = u64::from_be_bytes(key.get(..8).context("short key")?.try_into()?);
    let seq = u64::from_be_bytes(key.get(8..16).context("short key")?.try_into()?);
    let len = u32::from_le_bytes(value.get(1..5).context("short value")?.try_into()?) as usize;
    let message = std::str::from_utf8(value.get(5..5 + len).context("short value")?)?;
    let metadata = match value[0] {
        0 => None,
        _ => Some(std::str::from_utf8(&value[5 + len..])?),
    };
    digest.add(ms, seq, message, metadata);
    Ok(())
}

/// fjall 2, one partition, journal persisted (`SyncData`) after every insert.
pub struct Fjall {
    keyspace: fjall::Keyspace,
    logs: fjall::PartitionHandle,
    keys: Keys,
}

impl Fjall {
    /// Opens a fresh keyspace in `dir`.
    pub fn open(dir: &Path) -> Result<Fjall> {
        let keyspace = fjall::Config::new(dir).open()?;
        let logs = keyspace.open_partition("logs", fjall::PartitionCreateOptions::default())?;
        Ok(Fjall { keyspace, logs, keys: Keys::default() })
    }
}

impl Subject for Fjall {
    fn append(&self, entry: &InputEntry) -> Result<KeyPair> {
        let key = self.keys.next();
        self.logs.insert(encode_key(key), encode_value(entry))?;
        self.keyspace.persist(fjall::PersistMode::SyncData)?;
        Ok(key)
    }

    fn read_all(&self, digest: &mut Digest) -> Result<()> {
        for kv in self.logs.iter() {
            let (k, v) = kv?;
            fold(&k, &v, digest)?;
        }
        Ok(())
    }

    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()> {
        for kv in self.logs.range(encode_key((from_ms, 0))..).rev().take(count) {
            let (k, v) = kv?;
            fold(&k, &v, digest)?;
        }
        Ok(())
    }
}

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("logs");

/// redb 2, one table, one committed (fsynced) write transaction per entry.
pub struct Redb {
    db: redb::Database,
    keys: Keys,
}

impl Redb {
    /// Creates a fresh database file in `dir`.
    pub fn open(dir: &Path) -> Result<Redb> {
        std::fs::create_dir_all(dir)?;
        let db = redb::Database::create(dir.join("logs.redb"))?;
        Ok(Redb { db, keys: Keys::default() })
    }
}

impl Subject for Redb {
    fn append(&self, entry: &InputEntry) -> Result<KeyPair> {
        let key = self.keys.next();
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(REDB_TABLE)?;
            table.insert(encode_key(key).as_slice(), encode_value(entry).as_slice())?;
        }
        tx.commit()?;
        Ok(key)
    }

    fn read_all(&self, digest: &mut Digest) -> Result<()> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(REDB_TABLE)?;
        for kv in table.range::<&[u8]>(..)? {
            let (k, v) = kv?;
            fold(k.value(), v.value(), digest)?;
        }
        Ok(())
    }

    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(REDB_TABLE)?;
        let from = encode_key((from_ms, 0));
        for kv in table.range::<&[u8]>(from.as_slice()..)?.rev().take(count) {
            let (k, v) = kv?;
            fold(k.value(), v.value(), digest)?;
        }
        Ok(())
    }
}
