//! A limit on how long a connection's peer may leave the server's replies unread.
//!
//! A client that sends requests (a large read, or many pipelined ones) and then stops reading
//! would otherwise hold its connection slot, and a streaming query's slot and blocking thread,
//! for as long as it stays connected: the server's writes wait on a full socket buffer forever.
//! [`StallLimit`] wraps a connection's stream and fails a write, flush or shutdown with
//! [`io::ErrorKind::TimedOut`] once the peer has accepted no byte for the limit, so the
//! connection's task ends and frees what it held. The clock runs only while a write is
//! blocked: a connection that is slow to send requests, or a query slow to produce its reply,
//! is not stalled (those have limits of their own). Reads pass through untouched.
//!
//! "No byte" as the socket reports it: a blocked socket becomes writable again only once a
//! good share of its send buffer is free, so a client reading a trickle far slower than the
//! server writes may also be closed. A write the caller abandons while blocked (neither
//! server does) leaves the clock running for the next one.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose writes fail once the peer has accepted nothing for `limit`.
pub(crate) struct StallLimit<S> {
    inner: S,
    /// Zero: no limit.
    limit: Duration,
    /// The timer, kept between blocks so a client that reads slowly costs no allocation per
    /// block; it counts only while `blocked`.
    timer: Option<Pin<Box<Sleep>>>,
    /// A write is blocked and `timer` runs from when it first was.
    blocked: bool,
    /// Counts the connections given up on.
    stalled_total: Arc<AtomicU64>,
}

impl<S> StallLimit<S> {
    pub(crate) fn new(inner: S, limit: Duration, stalled_total: Arc<AtomicU64>) -> Self {
        StallLimit { inner, limit, timer: None, blocked: false, stalled_total }
    }

    /// After the inner write returned `poll`: progress stops the clock; a block starts it (if
    /// it is not running) and fails once it runs out.
    fn limit<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() || self.limit.is_zero() {
            self.blocked = false;
            return poll;
        }
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if !self.blocked {
            timer.as_mut().reset(tokio::time::Instant::now() + limit);
            self.blocked = true;
        }
        ready!(timer.as_mut().poll(cx));
        self.blocked = false;
        self.stalled_total.fetch_add(1, Relaxed);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the peer accepted no reply bytes for {limit:?}"),
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallLimit<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallLimit<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.limit(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.limit(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.limit(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.limit(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_blocked_write_fails_after_the_limit_and_progress_resets_the_clock() {
        let stalled = Arc::new(AtomicU64::new(0));
        // A pipe that holds 64 bytes: writes block until the other end reads.
        let (client, server) = tokio::io::duplex(64);
        let mut writer = StallLimit::new(server, Duration::from_secs(10), stalled.clone());
        let mut reader = client;

        // Blocked for 6 s, then the peer reads: the write completes.
        let read_later = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let mut buf = vec![0u8; 64];
            tokio::io::AsyncReadExt::read_exact(&mut reader, &mut buf).await.unwrap();
            reader
        });
        writer.write_all(&[1u8; 128]).await.unwrap();
        let reader = read_later.await.unwrap();
        assert_eq!(stalled.load(Relaxed), 0);

        // Blocked again: 6 s more would be 12 since the first block, but progress restarted
        // the clock, so it takes the whole 10 s from now to fail.
        let began = tokio::time::Instant::now();
        let err = writer.write_all(&[2u8; 128]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("accepted no reply bytes for 10s"), "{err}");
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
            "{waited:?}"
        );
        assert_eq!(stalled.load(Relaxed), 1);
        drop(reader);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_limit_waits_without_end() {
        let stalled = Arc::new(AtomicU64::new(0));
        let (_client, server) = tokio::io::duplex(64);
        let mut writer = StallLimit::new(server, Duration::ZERO, stalled.clone());
        let blocked = tokio::time::timeout(Duration::from_secs(3600), writer.write_all(&[0; 128]));
        assert!(blocked.await.is_err(), "still blocked after an hour");
        assert_eq!(stalled.load(Relaxed), 0);
    }
}
