//! The original's TCP protocol: one JSON request per line, one reply line per request.
//!
//! - `{"action":"write","message":str,"metadata"?:object}` → `{"status":"ok"}` once durable.
//! - `{"action":"read","start_ts":u64,"end_ts":u64}` (inclusive, ms; a u64 may be a decimal
//!   string) → `{"status":"ok","data":[{"timestamp","message","metadata","version":1},...]}`
//!   in write order (key order), streamed as it is read rather than built in memory.
//! - Errors: `{"status":"error","errcode":code,"detail"?:{...}}` with the original's codes.
//!
//! Unlike the original: connections are served concurrently; any line gets a reply and the
//! connection stays in step (a line over [`TCP_LINE_BYTES_MAX`] is answered with
//! `request_too_large` and discarded up to its newline); blank lines are ignored; a read
//! with `start_ts > end_ts` returns no entries. If a read fails part-way the connection is
//! closed, so a client never takes a partial reply for a whole one. A connection whose next
//! request does not arrive whole within [`ServerConfig::tcp_idle_timeout`](crate::ServerConfig)
//! is closed (replies already written are flushed first), and so is one whose client leaves
//! its replies unread for [`ServerConfig::write_stall_timeout`](crate::ServerConfig).

use crate::Shared;
use crate::accept::Acceptor;
use crate::metrics::Endpoint;
use crate::parse::{
    TCP_LINE_BYTES_MAX, TcpError, TcpRequest, parse_tcp_line, tcp_request_too_large,
};
use crate::stall::StallLimit;
use crate::stream::{Encoding, spawn_query};
use logstore_engine::Query;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Accepts connections until `token` is cancelled; each runs on its own task in `tracker`.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let open = shared.metrics.tcp_connections_open.clone();
    let acceptor = Acceptor::new(listener, shared.config.tcp_connections_max, open, "tcp");
    while let Some((stream, slot)) = acceptor.next(&token).await {
        let (shared, token) = (shared.clone(), token.clone());
        tracker.spawn(async move {
            shared.metrics.tcp_connections_total.fetch_add(1, Relaxed);
            let _ = connection(stream, &shared, &token).await;
            drop(slot);
        });
    }
}

enum LineRead {
    /// A complete line is in the buffer (without its newline).
    Line,
    /// The line was longer than the limit and has been discarded through its newline.
    TooLong,
    /// The peer closed the connection between lines.
    Eof,
}

/// Reads one line into `line`, keeping at most `bytes_max` bytes of it: a longer line is read
/// through its newline and dropped, so the next read starts at the next request.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    bytes_max: usize,
) -> io::Result<LineRead> {
    line.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // End of input: a last line without a newline still counts.
            return Ok(if too_long {
                LineRead::TooLong
            } else if line.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let newline = available.iter().position(|&b| b == b'\n');
        let part = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if line.len() + part.len() > bytes_max {
                too_long = true;
                *line = Vec::new(); // give the memory back
            } else {
                line.extend_from_slice(part);
            }
        }
        let consumed = part.len() + usize::from(newline.is_some());
        reader.consume(consumed);
        if newline.is_some() {
            return Ok(if too_long { LineRead::TooLong } else { LineRead::Line });
        }
    }
}

/// [`read_line`] of a request of at most [`TCP_LINE_BYTES_MAX`], given up (`None`) if it has
/// not arrived whole within `idle_timeout`; zero waits without limit.
async fn read_line_within<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    idle_timeout: std::time::Duration,
) -> Option<io::Result<LineRead>> {
    let read = read_line(reader, line, TCP_LINE_BYTES_MAX);
    if idle_timeout.is_zero() {
        Some(read.await)
    } else {
        tokio::time::timeout(idle_timeout, read).await.ok()
    }
}

async fn connection(
    stream: TcpStream,
    shared: &Shared,
    token: &CancellationToken,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 << 10, read_half);
    let stalled = shared.metrics.tcp_stalled_closed_total.clone();
    let write_half = StallLimit::new(write_half, shared.config.write_stall_timeout, stalled);
    let mut writer = BufWriter::with_capacity(64 << 10, write_half);
    let mut line = Vec::new();
    loop {
        // Flush replies only when no further request is already buffered (pipelining).
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
        let read = tokio::select! {
            // Shutting down: stop between requests (a request already read is answered).
            _ = token.cancelled() => break,
            read = read_line_within(&mut reader, &mut line, shared.config.tcp_idle_timeout) => {
                match read {
                    Some(read) => read?,
                    None => {
                        shared.metrics.tcp_idle_closed_total.fetch_add(1, Relaxed);
                        break;
                    }
                }
            }
        };
        let started = Instant::now();
        let endpoint = match read {
            LineRead::Eof => break,
            LineRead::TooLong => reply_error(&mut writer, &tcp_request_too_large()).await?,
            LineRead::Line => {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match parse_tcp_line(&line) {
                    Err(error) => reply_error(&mut writer, &error).await?,
                    Ok(request) => handle(request, shared, &mut writer).await?,
                }
            }
        };
        shared.metrics.observe(endpoint, started.elapsed());
    }
    writer.flush().await?;
    writer.shutdown().await
}

async fn reply_error<W: AsyncWrite + Unpin>(
    writer: &mut W,
    error: &TcpError,
) -> io::Result<Endpoint> {
    let mut line = error.to_line();
    line.push('\n');
    writer.write_all(line.as_bytes()).await?;
    Ok(Endpoint::TcpError)
}

async fn handle<W: AsyncWrite + Unpin>(
    request: TcpRequest,
    shared: &Shared,
    writer: &mut W,
) -> io::Result<Endpoint> {
    match request {
        TcpRequest::Write { message, metadata } => {
            let store = shared.store.clone();
            let appended =
                tokio::task::spawn_blocking(move || store.append(&message, metadata.as_deref()))
                    .await;
            match appended {
                Ok(Ok(_key)) => {
                    shared.metrics.tcp_entries_written.fetch_add(1, Relaxed);
                    writer.write_all(b"{\"status\":\"ok\"}\n").await?;
                    Ok(Endpoint::TcpWrite)
                }
                Ok(Err(e)) => write_log_error(writer, e.to_string()).await,
                Err(e) => write_log_error(writer, format!("write task failed: {e}")).await,
            }
        }
        TcpRequest::Read { start_ts, end_ts } => {
            if start_ts > end_ts {
                writer.write_all(b"{\"status\":\"ok\",\"data\":[]}\n").await?;
                return Ok(Endpoint::TcpRead);
            }
            let query = Query::new().time_range(start_ts..=end_ts);
            let Ok(slot) = shared.query_slots.clone().acquire_owned().await else {
                let detail = serde_json::json!({ "message": "the server is stopping" });
                return reply_error(writer, &TcpError::new("read_error", Some(detail))).await;
            };
            let mut chunks = spawn_query(
                shared.store.clone(),
                query,
                Encoding::TcpReply,
                shared.metrics.clone(),
                slot,
            );
            let mut first = true;
            while let Some(chunk) = chunks.recv().await {
                match chunk {
                    Ok(chunk) => writer.write_all(&chunk).await?,
                    Err(e) if first => {
                        let detail = serde_json::json!({ "message": e.to_string() });
                        return reply_error(writer, &TcpError::new("read_error", Some(detail)))
                            .await;
                    }
                    // Part of the reply is out: close rather than leave the client a broken line.
                    Err(e) => return Err(io::Error::other(e)),
                }
                first = false;
            }
            Ok(Endpoint::TcpRead)
        }
    }
}

async fn write_log_error<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: String,
) -> io::Result<Endpoint> {
    let detail = serde_json::json!({ "message": message });
    reply_error(writer, &TcpError::new("write_log_error", Some(detail))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_lines_are_discarded_through_their_newline() {
        let input: &[u8] = b"abc\n0123456789\nxy\r\nlast";
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line(&mut reader, &mut line, 5).await.unwrap() {
                LineRead::Eof => break,
                LineRead::TooLong => seen.push("<too long>".to_owned()),
                LineRead::Line => seen.push(String::from_utf8(line.clone()).unwrap()),
            }
        }
        assert_eq!(seen, ["abc", "<too long>", "xy\r", "last"]);
    }
}
