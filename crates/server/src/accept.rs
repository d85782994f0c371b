//! Accepting connections, at most so many open at once, until shutdown: shared by the HTTP
//! and TCP servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A listener that hands out connections while fewer than its limit are open.
pub(crate) struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    /// The gauge of open connections kept by each [`Slot`].
    open: Arc<AtomicU64>,
    /// The protocol, for messages.
    protocol: &'static str,
}

/// An accepted connection's place under the limit: counted in the open-connections gauge
/// while it lives, freed (and uncounted) when it drops, whatever ends the connection's task.
pub(crate) struct Slot {
    _permit: OwnedSemaphorePermit,
    open: Arc<AtomicU64>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Relaxed);
    }
}

impl Acceptor {
    pub(crate) fn new(
        listener: TcpListener,
        connections_max: usize,
        open: Arc<AtomicU64>,
        protocol: &'static str,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(connections_max.max(1)));
        Acceptor { listener, slots, open, protocol }
    }

    /// The next connection, with the slot it holds until dropped; `None` once `token` is
    /// cancelled. Waits while every slot is taken.
    pub(crate) async fn next(&self, token: &CancellationToken) -> Option<(TcpStream, Slot)> {
        loop {
            let permit = tokio::select! {
                _ = token.cancelled() => return None,
                permit = self.slots.clone().acquire_owned() => permit.ok()?,
            };
            tokio::select! {
                _ = token.cancelled() => return None,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _peer)) => {
                        self.open.fetch_add(1, Relaxed);
                        return Some((stream, Slot { _permit: permit, open: self.open.clone() }));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little rather than spin.
                        eprintln!("logstore: {} accept failed: {e}", self.protocol);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }
}
