//! Streaming a query's results: the engine's blocking [`QueryIter`](logstore_engine::QueryIter)
//! runs on a blocking thread and hands encoded chunks to the async side through a bounded
//! channel, so a response of any size holds at most a few chunks in memory.

use crate::metrics::Metrics;
use axum::body::Bytes;
use logstore_engine::{Entry, LogStore, Query, StoreError};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// A chunk is sent once it holds this many bytes.
const CHUNK_BYTES: usize = 64 << 10;
/// Chunks waiting in the channel: with [`CHUNK_BYTES`], at most ~256 KiB per stream.
const CHUNKS_QUEUED_MAX: usize = 4;

/// How entries are written into the stream.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Encoding {
    /// `GET /api/v1/logs`: one `{"timestamp","seq","message","metadata"}` object per line.
    Ndjson,
    /// The TCP protocol's read reply: `{"status":"ok","data":[...]}` and a newline, the entries
    /// as `{"timestamp","message","metadata","version":1}`.
    TcpReply,
}

/// Runs `query` on a blocking thread, holding `slot` (one of [`crate::ServerConfig::queries_max`]). The first item received is `Err` if the query could
/// not start (nothing was encoded), otherwise every item is a chunk, and a later `Err` means
/// the read failed part-way (the stream is incomplete and must be cut off, not ended).
/// The stream ends after the last chunk; it always sends at least one item. Dropping the
/// receiver stops the read.
pub(crate) fn spawn_query(
    store: Arc<LogStore>,
    query: Query,
    encoding: Encoding,
    metrics: Arc<Metrics>,
    slot: OwnedSemaphorePermit,
) -> mpsc::Receiver<Result<Bytes, StoreError>> {
    let (tx, rx) = mpsc::channel(CHUNKS_QUEUED_MAX);
    tokio::task::spawn_blocking(move || {
        let _slot = slot; // held until the read ends
        let mut iter = match store.query(&query) {
            Ok(iter) => iter,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut chunk = Vec::with_capacity(CHUNK_BYTES + 4096);
        if let Encoding::TcpReply = encoding {
            chunk.extend_from_slice(br#"{"status":"ok","data":["#);
        }
        let mut count: u64 = 0;
        while let Some(item) = iter.next_entry() {
            let entry = match item {
                Ok(entry) => entry,
                Err(e) => {
                    metrics.entries_read.fetch_add(count, Relaxed);
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            encode(&entry, encoding, count == 0, &mut chunk);
            count += 1;
            if chunk.len() >= CHUNK_BYTES {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
                if tx.blocking_send(Ok(Bytes::from(full))).is_err() {
                    metrics.entries_read.fetch_add(count, Relaxed);
                    return; // the client went away
                }
            }
        }
        metrics.entries_read.fetch_add(count, Relaxed);
        if let Encoding::TcpReply = encoding {
            chunk.extend_from_slice(b"]}\n");
        }
        let _ = tx.blocking_send(Ok(Bytes::from(chunk)));
    });
    rx
}

fn encode(entry: &Entry<'_>, encoding: Encoding, first: bool, out: &mut Vec<u8>) {
    use std::io::Write;
    let metadata = entry.metadata.as_deref().unwrap_or("null");
    match encoding {
        Encoding::Ndjson => {
            let _ = write!(
                out,
                r#"{{"timestamp":{},"seq":{},"message":"#,
                entry.key.timestamp_ms, entry.key.seq
            );
            let _ = serde_json::to_writer(&mut *out, &*entry.message);
            let _ = writeln!(out, r#","metadata":{metadata}}}"#);
        }
        Encoding::TcpReply => {
            if !first {
                out.push(b',');
            }
            let _ = write!(out, r#"{{"timestamp":{},"message":"#, entry.key.timestamp_ms);
            let _ = serde_json::to_writer(&mut *out, &*entry.message);
            let _ = write!(out, r#","metadata":{metadata},"version":1}}"#);
        }
    }
}
