//! logstore's network servers over one [`LogStore`]: an HTTP API (axum routes, hyper
//! connections, on tokio) and the
//! original's newline-delimited JSON TCP protocol. They use only the engine's public API.
//!
//! ```no_run
//! use logstore_engine::{LogStore, StoreOptions};
//! use logstore_server::{Server, ServerConfig};
//! use std::sync::Arc;
//!
//! # async fn run() -> std::io::Result<()> {
//! let store = Arc::new(LogStore::open("./logstore-data", StoreOptions::default()).unwrap());
//! let server = Server::bind(store.clone(), ServerConfig::default()).await?;
//! println!("HTTP on {:?}, TCP on {:?}", server.http_addr(), server.tcp_addr());
//! server.run(async { tokio::signal::ctrl_c().await.unwrap() }).await; // drains in-flight requests
//! store.close().unwrap(); // flushes and syncs
//! # Ok(()) }
//! ```
//!
//! # HTTP API
//! - `POST /api/v1/logs`: a body of NDJSON, one JSON object or a JSON array of entries
//!   `{"message": str, "metadata"?: object, "timestamp"?: ms | RFC 3339}`, appended all or
//!   nothing with one [`LogStore::append_batch`]. `200 {"written": n, "first": key, "last": key}`
//!   once durable per the store's durability. Errors are `{"error": {"code", "message",
//!   "line"?}}`: 400 (bad JSON, bad field, timestamp out of the window; `line` is the body line
//!   of the culprit), 413 (an entry or the body over its limit), 401 (token missing or wrong),
//!   503 (the store refuses writes), 500 (an I/O failure).
//! - `GET /api/v1/logs?from&to&limit&order&contains&meta.KEY=VALUE&cursor`: NDJSON lines
//!   `{"timestamp", "seq", "message", "metadata"}` streamed as read, newest first unless
//!   `order=asc`, at most `limit` (default 1,000); `cursor=<ts>-<seq>` resumes after that entry.
//!   A bad parameter is a 400 naming it. If the read fails part-way the response is cut off
//!   (no final chunk), so a client never mistakes a partial result for a complete one.
//! - `GET /health`: 200 `{"status":"ok"}`, or 503 with the cause once the store refuses writes.
//!   Never needs the token.
//! - `GET /metrics`: Prometheus text.
//!
//! HTTP/1.1 connections are served by hyper with a timer: a request head must arrive whole
//! within [`ServerConfig::http_header_timeout`] (30 s) of the connection opening or of the
//! previous response, its body within [`ServerConfig::http_body_timeout`] (2 min) of the head,
//! and at most [`ServerConfig::http_connections_max`] are served at once.
//!
//! # TCP protocol
//! One JSON request per line, one reply line per request, in order, on any number of
//! connections at once: `write` and `read` as the original (see the `tcp` module docs).
//! It has no authentication: keep it on loopback or turn it off when a token is needed. A
//! connection that sends no whole request for [`ServerConfig::tcp_idle_timeout`] (5 min) is
//! closed, and at most [`ServerConfig::tcp_connections_max`] are served at once.
//!
//! On both, a connection whose client leaves the replies unread (the server's writes blocked)
//! for [`ServerConfig::write_stall_timeout`] (1 min) is closed, freeing its slots.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod http;
mod http_conn;
mod metrics;
mod parse;
mod stall;
mod stream;
mod tcp;

pub use parse::{
    METADATA_DEPTH_MAX, QUERY_LIMIT_DEFAULT, TCP_LINE_BYTES_MAX, TCP_MESSAGE_BYTES_MAX,
    filter_value, metadata_text, parse_absolute_time, parse_time, single_line_json,
};

use logstore_engine::LogStore;
use metrics::Metrics;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Default HTTP address: loopback only.
pub const HTTP_ADDR_DEFAULT: &str = "127.0.0.1:9470";
/// Default TCP protocol address: loopback only (the original's port).
pub const TCP_ADDR_DEFAULT: &str = "127.0.0.1:5260";
/// Default [`ServerConfig::body_bytes_max`]: 64 MiB.
pub const BODY_BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Default [`ServerConfig::tcp_connections_max`].
pub const TCP_CONNECTIONS_MAX_DEFAULT: usize = 1024;

/// Default [`ServerConfig::http_connections_max`].
pub const HTTP_CONNECTIONS_MAX_DEFAULT: usize = 1024;
/// Default [`ServerConfig::http_header_timeout`]: 30 seconds (hyper's default).
pub const HTTP_HEADER_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Default [`ServerConfig::http_body_timeout`]: 2 minutes (a body of the default 64 MiB limit
/// then needs at least 0.56 MB/s).
pub const HTTP_BODY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(120);
/// Default [`ServerConfig::tcp_idle_timeout`]: 5 minutes.
pub const TCP_IDLE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(300);

/// Default [`ServerConfig::write_stall_timeout`]: 1 minute.
pub const WRITE_STALL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(60);

/// Default [`ServerConfig::queries_max`].
pub const QUERIES_MAX_DEFAULT: usize = 64;
/// Default [`ServerConfig::shutdown_grace`].
pub const SHUTDOWN_GRACE_DEFAULT: Duration = Duration::from_secs(30);

/// What to listen on and the limits of requests.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The HTTP API's address; `None` turns it off.
    pub http_addr: Option<SocketAddr>,
    /// The TCP protocol's address; `None` turns it off.
    pub tcp_addr: Option<SocketAddr>,
    /// When set, HTTP requests other than `/health` need `Authorization: Bearer <token>`.
    pub auth_token: Option<String>,
    /// Largest `POST /api/v1/logs` body, in bytes (413 above).
    pub body_bytes_max: usize,
    /// Most HTTP connections served at once; more wait to be accepted.
    pub http_connections_max: usize,
    /// An HTTP connection whose next request head has not arrived whole this long after the
    /// connection opened or the previous response was sent is closed (idle keep-alive
    /// connections included), so slow or idle clients cannot hold every connection slot.
    /// Zero turns it off.
    pub http_header_timeout: Duration,
    /// A request body must arrive whole within this long of its head, or the request is
    /// answered 408 and the connection closed: a client trickling a body (which the header
    /// timeout does not cover) cannot hold its connection slot, nor the body's memory, for
    /// long. Zero turns it off.
    pub http_body_timeout: Duration,
    /// Most TCP connections served at once; more wait to be accepted.
    pub tcp_connections_max: usize,
    /// A TCP connection whose next request has not arrived whole this long after the previous
    /// reply (or the connection) is closed: idle or trickling senders cannot hold the
    /// [`tcp_connections_max`](Self::tcp_connections_max) slots forever. Zero turns it off.
    pub tcp_idle_timeout: Duration,
    /// A connection (HTTP or TCP) whose peer accepts no byte of the server's replies for this
    /// long, while the server has some to send, is closed: a client that sends requests and
    /// stops reading cannot hold its connection slot, nor a query slot and its thread,
    /// forever. The clock runs only while a write is blocked. Zero turns it off.
    pub write_stall_timeout: Duration,
    /// Most queries streaming at once (HTTP and TCP together); more wait their turn. Each holds
    /// a blocking thread while its client reads, so this keeps slow readers from taking the
    /// threads writes need.
    pub queries_max: usize,
    /// After the shutdown signal, how long requests in flight may take before the server stops
    /// waiting for them (a client slowly reading a huge result must not hold a shutdown).
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_addr: HTTP_ADDR_DEFAULT.parse().ok(),
            tcp_addr: TCP_ADDR_DEFAULT.parse().ok(),
            auth_token: None,
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            http_connections_max: HTTP_CONNECTIONS_MAX_DEFAULT,
            http_header_timeout: HTTP_HEADER_TIMEOUT_DEFAULT,
            http_body_timeout: HTTP_BODY_TIMEOUT_DEFAULT,
            tcp_connections_max: TCP_CONNECTIONS_MAX_DEFAULT,
            tcp_idle_timeout: TCP_IDLE_TIMEOUT_DEFAULT,
            write_stall_timeout: WRITE_STALL_TIMEOUT_DEFAULT,
            queries_max: QUERIES_MAX_DEFAULT,
            shutdown_grace: SHUTDOWN_GRACE_DEFAULT,
        }
    }
}

/// State shared by every request.
pub(crate) struct Shared {
    pub(crate) store: Arc<LogStore>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// One permit per query allowed to stream ([`ServerConfig::queries_max`]).
    pub(crate) query_slots: Arc<Semaphore>,
}

/// Bound listeners, ready to [`run`](Server::run).
pub struct Server {
    shared: Arc<Shared>,
    http: Option<TcpListener>,
    tcp: Option<TcpListener>,
}

impl Server {
    /// Binds the configured addresses (port 0 picks a free port; see [`Server::http_addr`]).
    pub async fn bind(store: Arc<LogStore>, config: ServerConfig) -> io::Result<Server> {
        let bind = |addr: Option<SocketAddr>, what: &'static str| async move {
            match addr {
                None => Ok(None),
                Some(addr) => TcpListener::bind(addr).await.map(Some).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
                }),
            }
        };
        let http = bind(config.http_addr, "HTTP").await?;
        let tcp = bind(config.tcp_addr, "the TCP protocol").await?;
        let metrics = Arc::new(Metrics::default());
        let query_slots = Arc::new(Semaphore::new(config.queries_max.max(1)));
        let shared = Arc::new(Shared { store, config, metrics, query_slots });
        Ok(Server { shared, http, tcp })
    }

    /// The HTTP API's bound address.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The TCP protocol's bound address.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then stops accepting, lets every request in flight
    /// finish (and its reply go out) and returns. The store stays open: close it after.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let token = CancellationToken::new();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        let tracker = TaskTracker::new();
        if let Some(listener) = self.tcp {
            tracker.spawn(tcp::serve(
                listener,
                self.shared.clone(),
                token.clone(),
                tracker.clone(),
            ));
        }
        if let Some(listener) = self.http {
            tracker.spawn(http_conn::serve(
                listener,
                http::router(self.shared.clone()),
                self.shared.clone(),
                token.clone(),
                tracker.clone(),
            ));
        }
        let grace = self.shared.config.shutdown_grace;
        let drained = async {
            tracker.close();
            tracker.wait().await;
        };
        tokio::pin!(drained);
        tokio::select! {
            () = &mut drained => return,
            _ = token.cancelled() => {}
        }
        if tokio::time::timeout(grace, drained).await.is_err() {
            eprintln!(
                "logstore: requests still in flight {} s after the shutdown signal; stopping without them",
                grace.as_secs()
            );
        }
    }
}

/// The request parsers as plain functions, for the fuzz target and its corpus replay.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::parse::{
        BodyError, ParamError, ParsedBody, TcpError, TcpRequest, parse_ingest_body,
        parse_query_params, parse_tcp_line,
    };

    /// Runs every parser on `data` (the fuzz target's body): none may panic, and what they
    /// accept must be consistent with their contracts.
    pub fn parse_requests(data: &[u8]) {
        if let Ok(parsed) = parse_ingest_body(data) {
            assert_eq!(parsed.entries.len(), parsed.lines.len());
            assert!(!parsed.entries.is_empty());
            for entry in &parsed.entries {
                if let Some(metadata) = &entry.metadata {
                    assert!(!metadata.contains(['\n', '\r']));
                    assert!(
                        serde_json::from_str::<serde_json::Value>(metadata)
                            .is_ok_and(|v| v.is_object())
                    );
                }
            }
        }
        match parse_tcp_line(data) {
            Ok(TcpRequest::Write { message, metadata }) => {
                assert!(message.len() <= crate::TCP_MESSAGE_BYTES_MAX);
                if let Some(metadata) = metadata {
                    assert!(!metadata.contains(['\n', '\r']));
                }
            }
            Ok(TcpRequest::Read { .. }) => {}
            Err(error) => assert!(!error.to_line().contains('\n')),
        }
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(query) = parse_query_params(text) {
                assert!(query.from_ms <= query.to_ms);
            }
            let _ = crate::parse_time(text, u64::MAX / 2);
        }
    }
}
