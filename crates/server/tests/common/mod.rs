//! The server on loopback sockets over a store on the in-memory file system, for the tests of
//! connection handling. Each test binary uses part of it.
#![allow(dead_code)]

use logstore_engine::testing::FaultFs;
use logstore_engine::{Durability, LogStore, StoreOptions};
use logstore_server::{Server, ServerConfig};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A running server; [`Running::stop`] shuts it down and checks it stopped cleanly.
pub struct Running {
    runtime: tokio::runtime::Runtime,
    pub http_addr: Option<SocketAddr>,
    pub tcp_addr: Option<SocketAddr>,
    stop: tokio::sync::oneshot::Sender<()>,
    running: tokio::task::JoinHandle<()>,
}

/// Starts a server with `config` (give it `127.0.0.1:0` addresses) on a fresh store.
pub fn start(config: ServerConfig) -> Running {
    let options = StoreOptions {
        fs: Arc::new(FaultFs::new()),
        durability: Durability::None,
        ..StoreOptions::default()
    };
    let store = Arc::new(LogStore::open("/store", options).unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::bind(store, config)).unwrap();
    let (http_addr, tcp_addr) = (server.http_addr(), server.tcp_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = runtime.spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running { runtime, http_addr, tcp_addr, stop, running }
}

impl Running {
    pub fn stop(self) {
        let _ = self.stop.send(());
        self.runtime.block_on(self.running).unwrap();
    }
}

/// Reads until the server closes the connection, failing if it stays open for 30 s; returns
/// what the server sent before closing.
pub fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => {}
        // Closed with bytes of ours still unread on its side: the kernel resets instead.
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    received
}
