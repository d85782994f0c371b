//! A client that sends requests and then stops reading the replies is disconnected once the
//! server's writes have been blocked for `write_stall_timeout`, freeing its connection slot
//! (and the query slot its read held), on the TCP protocol and on HTTP alike.

mod common;

use logstore_server::ServerConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const STALL: Duration = Duration::from_millis(2000);
/// Entries in the store, and the size of each message: a full read's reply is ~2 MB, and the
/// pipelined requests below ask for far more than loopback sockets buffer.
const ENTRIES: usize = 2_000;
const MESSAGE_BYTES: usize = 1_000;
const PIPELINED_READS: usize = 100;

/// Writes the store's entries over TCP, pipelined, and waits for every acknowledgement.
fn fill(tcp_addr: SocketAddr) {
    let mut stream = TcpStream::connect(tcp_addr).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let message = "m".repeat(MESSAGE_BYTES);
    let request = format!("{{\"action\":\"write\",\"message\":\"{message}\"}}\n");
    let writer = std::thread::spawn(move || {
        for _ in 0..ENTRIES {
            stream.write_all(request.as_bytes()).unwrap();
        }
        stream
    });
    let mut reply = String::new();
    for _ in 0..ENTRIES {
        reply.clear();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(reply.trim_end(), r#"{"status":"ok"}"#);
    }
    drop(writer.join().unwrap());
}

/// Sends `request` and asserts no reply comes within `STALL / 3` (the only slot is held), then
/// that the reply comes once the stalled connection is closed; returns the reply's first line.
fn served_only_after_the_stall(addr: SocketAddr, request: &[u8]) -> String {
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.write_all(request).unwrap();
    waiting.set_read_timeout(Some(STALL / 3)).unwrap();
    let mut byte = [0u8; 1];
    let early = waiting.read(&mut byte);
    assert!(early.is_err(), "answered while the only slot was held: {early:?}");
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut line = String::new();
    BufReader::new(waiting).read_line(&mut line).expect("served once the staller was closed");
    line
}

fn metrics(http_addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(http_addr).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn clients_that_stop_reading_replies_are_disconnected_and_free_their_slot() {
    let server = common::start(ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: Some("127.0.0.1:0".parse().unwrap()),
        http_connections_max: 1,
        tcp_connections_max: 1,
        // One query at a time: the HTTP staller's reads can only start once the TCP
        // staller's read has let go of the query slot it held while blocked.
        queries_max: 1,
        write_stall_timeout: STALL,
        ..ServerConfig::default()
    });
    let (http_addr, tcp_addr) = (server.http_addr.unwrap(), server.tcp_addr.unwrap());
    fill(tcp_addr);

    // TCP: full-range reads, pipelined, never read. The server fills the socket buffers, its
    // writes block, and after the stall limit it closes the connection.
    let mut staller = TcpStream::connect(tcp_addr).unwrap();
    let read = "{\"action\":\"read\",\"start_ts\":0,\"end_ts\":18446744073709551615}\n";
    staller.write_all(read.repeat(PIPELINED_READS).as_bytes()).unwrap();
    let reply = served_only_after_the_stall(
        tcp_addr,
        b"{\"action\":\"write\",\"message\":\"after the stall\"}\n",
    );
    assert_eq!(reply.trim_end(), r#"{"status":"ok"}"#);
    common::read_until_closed(&mut staller);

    // HTTP: the same with pipelined queries of the whole store.
    let mut staller = TcpStream::connect(http_addr).unwrap();
    let query = format!("GET /api/v1/logs?limit={} HTTP/1.1\r\nHost: x\r\n\r\n", ENTRIES + 1);
    staller.write_all(query.repeat(PIPELINED_READS).as_bytes()).unwrap();
    let status = served_only_after_the_stall(
        http_addr,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(status.starts_with("HTTP/1.1 200 OK"), "{status}");
    common::read_until_closed(&mut staller);

    let text = metrics(http_addr);
    for protocol in ["tcp", "http"] {
        let line = format!("logstore_write_stalled_closed_total{{protocol=\"{protocol}\"}} 1\n");
        assert!(text.contains(&line), "no {line:?} in:\n{text}");
    }
    server.stop();
}
