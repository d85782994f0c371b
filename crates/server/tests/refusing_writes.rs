//! A store that fails an fsync refuses writes: the HTTP API answers 503 (and `/health` says
//! why), the TCP protocol `write_log_error`, and reads go on. The store runs on the engine's
//! fault-injecting file system, behind the real server on loopback sockets.

use logstore_engine::testing::FaultFs;
use logstore_engine::{LogStore, StoreOptions};
use logstore_server::{Server, ServerConfig};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn tcp_request(addr: SocketAddr, line: &str) -> Value {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn a_failed_sync_turns_writes_into_503_and_reads_go_on() {
    let fs = Arc::new(FaultFs::new());
    let options = StoreOptions { fs: fs.clone(), ..StoreOptions::default() };
    let store = Arc::new(LogStore::open("/store", options).unwrap());
    let config = ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::bind(store.clone(), config)).unwrap();
    let (http_addr, tcp_addr) = (server.http_addr().unwrap(), server.tcp_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = runtime.spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let (status, _) = http(http_addr, "POST", "/api/v1/logs", r#"{"message":"before"}"#);
    assert_eq!(status, 200);
    fs.fail_sync_after(0);
    let (status, body) = http(http_addr, "POST", "/api/v1/logs", r#"{"message":"during"}"#);
    assert_eq!(status, 503, "{body}");
    let (status, body) = http(http_addr, "POST", "/api/v1/logs", r#"{"message":"after"}"#);
    assert_eq!(status, 503, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "unavailable");
    let (status, body) = http(http_addr, "GET", "/health", "");
    assert_eq!(status, 503, "{body}");
    assert!(http(http_addr, "GET", "/metrics", "").1.contains("logstore_poisoned 1\n"));

    let reply = tcp_request(tcp_addr, r#"{"action":"write","message":"tcp"}"#);
    assert_eq!(reply["errcode"], "write_log_error", "{reply}");
    // Reads still work and see the acknowledged entry.
    let (status, body) = http(http_addr, "GET", "/api/v1/logs", "");
    assert_eq!(status, 200);
    assert!(body.contains("\"before\""), "{body}");
    let reply =
        tcp_request(tcp_addr, r#"{"action":"read","start_ts":0,"end_ts":"18446744073709551615"}"#);
    assert_eq!(reply["status"], "ok");

    let _ = stop.send(());
    runtime.block_on(running).unwrap();
}
