//! Serving HTTP/1.1 connections: the accept loop, the connection limit, the header timeout and
//! graceful shutdown.
//!
//! `axum::serve` installs no timer, so hyper's header read timeout never applies there: a client
//! that connects and sends nothing, trickles a request head, or keeps an idle keep-alive
//! connection holds its task and file descriptor forever. Here each connection runs hyper's
//! HTTP/1.1 server with a timer, so a request head must arrive whole within
//! [`ServerConfig::http_header_timeout`](crate::ServerConfig) of the connection opening or of the
//! previous response (hyper starts the clock again while it waits for the next request), and at
//! most [`ServerConfig::http_connections_max`](crate::ServerConfig) connections are served at
//! once (more wait to be accepted). A request body is bounded by its size limit and must arrive
//! within [`ServerConfig::http_body_timeout`](crate::ServerConfig) (see `http::read_body`); a response whose
//! client stops reading it fails once the client has accepted no byte of it for
//! [`ServerConfig::write_stall_timeout`](crate::ServerConfig) (see [`StallLimit`]). HTTP/1.1 only
//! (what `axum::serve` added beyond it, h2c and upgrades, no route of this API uses).

use crate::Shared;
use crate::accept::Acceptor;
use crate::stall::StallLimit;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Accepts connections until `token` is cancelled; each runs on its own task in `tracker` and,
/// once `token` is cancelled, finishes the request in flight and closes.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    token: CancellationToken,
    tracker: TaskTracker,
) {
    let header_timeout = shared.config.http_header_timeout;
    let (stall_limit, stalled) =
        (shared.config.write_stall_timeout, shared.metrics.http_stalled_closed_total.clone());
    let open = shared.metrics.http_connections_open.clone();
    let acceptor = Acceptor::new(listener, shared.config.http_connections_max, open, "http");
    while let Some((stream, slot)) = acceptor.next(&token).await {
        let _ = stream.set_nodelay(true);
        let (service, token) = (TowerToHyperService::new(app.clone()), token.clone());
        let stalled = stalled.clone();
        tracker.spawn(async move {
            let mut builder = http1::Builder::new();
            // Zero turns the timeout off.
            builder
                .timer(TokioTimer::new())
                .header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
            let stream = StallLimit::new(stream, stall_limit, stalled);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = token.cancelled() => {
                    // Let the request in flight finish; close an idle connection now.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            drop(slot);
        });
    }
}
