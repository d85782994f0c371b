//! HTTP connections that send no whole request head within `http_header_timeout` (from the
//! connection opening, or from the previous response on a keep-alive connection) are closed,
//! so idle or trickling clients cannot hold every connection slot; nor can a body that does not
//! arrive whole within `http_body_timeout`.

mod common;

use logstore_server::ServerConfig;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_millis(800);

/// Reads until the server closes the connection; returns what it sent.
fn read_until_closed(stream: &mut TcpStream) -> String {
    String::from_utf8_lossy(&common::read_until_closed(stream)).into_owned()
}

#[test]
fn silent_trickling_and_idle_connections_are_closed_and_free_their_slot() {
    let server = common::start(ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: None,
        http_connections_max: 1,
        http_header_timeout: TIMEOUT,
        ..ServerConfig::default()
    });
    let addr = server.http_addr.unwrap();

    // Served once (so it holds the only slot), then idle: a second client's request waits
    // unanswered until the idle one is closed, then is served.
    let mut holder = TcpStream::connect(addr).unwrap();
    holder.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 15];
    holder.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    waiting.set_read_timeout(Some(TIMEOUT / 2)).unwrap();
    let mut byte = [0u8; 1];
    let early = waiting.read(&mut byte);
    assert!(early.is_err(), "answered while the only slot was taken: {early:?}");
    read_until_closed(&mut holder);
    let reply = read_until_closed(&mut waiting);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");

    // Silent from the start: closed.
    let mut silent = TcpStream::connect(addr).unwrap();
    read_until_closed(&mut silent);

    // A request head that never ends: closed too.
    let mut trickling = TcpStream::connect(addr).unwrap();
    trickling.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    // (read_until_closed fails if the server keeps it open.)
    read_until_closed(&mut trickling);

    // A keep-alive client is answered, then closed once it stays idle past the timeout.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let reply = read_until_closed(&mut idle);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");

    // And the slot is free again for a well-behaved request.
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let reply = read_until_closed(&mut client);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("logstore_http_connections 1\n"), "{reply}");
    server.stop();
}

#[test]
fn a_zero_header_timeout_means_no_limit() {
    let server = common::start(ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: None,
        http_header_timeout: Duration::ZERO,
        ..ServerConfig::default()
    });
    let mut client = TcpStream::connect(server.http_addr.unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    client.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let reply = read_until_closed(&mut client);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    server.stop();
}

#[test]
fn a_body_that_does_not_arrive_whole_in_time_is_answered_408_and_closed() {
    let server = common::start(ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: None,
        http_connections_max: 1,
        http_body_timeout: TIMEOUT,
        ..ServerConfig::default()
    });
    let addr = server.http_addr.unwrap();
    // Head whole, body short of its declared length, then nothing more: the header timeout
    // does not apply to a body, the body timeout does.
    let mut trickling = TcpStream::connect(addr).unwrap();
    trickling
        .write_all(b"POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mes")
        .unwrap();
    let reply = read_until_closed(&mut trickling);
    assert!(reply.starts_with("HTTP/1.1 408 Request Timeout"), "{reply}");
    assert!(reply.contains("body_timeout"), "{reply}");
    // The only slot is free again.
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let reply = read_until_closed(&mut client);
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    server.stop();
}
