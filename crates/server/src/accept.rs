//! Accepting connections, at most so many open at once, until shutdown: shared by the HTTP
//! and TCP servers.

use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A listener that hands out connections while fewer than its limit are open.
pub(crate) struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    /// The protocol, for messages.
    protocol: &'static str,
}

impl Acceptor {
    pub(crate) fn new(
        listener: TcpListener,
        connections_max: usize,
        protocol: &'static str,
    ) -> Self {
        Acceptor { listener, slots: Arc::new(Semaphore::new(connections_max.max(1))), protocol }
    }

    /// The next connection, with the slot it holds until the permit drops; `None` once `token`
    /// is cancelled. Waits while every slot is taken.
    pub(crate) async fn next(
        &self,
        token: &CancellationToken,
    ) -> Option<(TcpStream, OwnedSemaphorePermit)> {
        loop {
            let slot = tokio::select! {
                _ = token.cancelled() => return None,
                slot = self.slots.clone().acquire_owned() => slot.ok()?,
            };
            tokio::select! {
                _ = token.cancelled() => return None,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _peer)) => return Some((stream, slot)),
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
