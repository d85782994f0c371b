//! TCP connections that send no whole request within `tcp_idle_timeout` are closed, so idle or
//! trickling clients cannot hold every connection slot; a client that keeps sending stays.

mod common;

use logstore_server::ServerConfig;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const IDLE: Duration = Duration::from_millis(800);

/// Reads until the server closes the connection, which must send nothing first.
fn closed_by_server(mut stream: TcpStream) {
    let rest = common::read_until_closed(&mut stream);
    assert!(rest.is_empty(), "no reply expected: {:?}", String::from_utf8_lossy(&rest));
}

fn write_request(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, message: &str) {
    writeln!(stream, r#"{{"action":"write","message":"{message}"}}"#).unwrap();
    let mut reply = String::new();
    reader.read_line(&mut reply).unwrap();
    assert_eq!(reply.trim_end(), r#"{"status":"ok"}"#);
}

#[test]
fn idle_and_trickling_connections_are_closed_and_free_their_slot() {
    let server = common::start(ServerConfig {
        http_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_connections_max: 1,
        tcp_idle_timeout: IDLE,
        ..ServerConfig::default()
    });
    let (http_addr, tcp_addr) = (server.http_addr.unwrap(), server.tcp_addr.unwrap());

    // Served once (so it holds the only slot), then idle: a second client's request waits
    // unanswered until the idle one is closed, then is served.
    let mut holder = TcpStream::connect(tcp_addr).unwrap();
    let mut holder_reader = BufReader::new(holder.try_clone().unwrap());
    write_request(&mut holder, &mut holder_reader, "holder");
    let mut waiting = TcpStream::connect(tcp_addr).unwrap();
    let mut waiting_reader = BufReader::new(waiting.try_clone().unwrap());
    writeln!(waiting, r#"{{"action":"write","message":"waiting"}}"#).unwrap();
    waiting.set_read_timeout(Some(IDLE / 2)).unwrap();
    let mut early = String::new();
    let read = waiting_reader.read_line(&mut early);
    assert!(read.is_err() && early.is_empty(), "answered while the only slot was taken: {early}");
    drop(holder_reader);
    closed_by_server(holder);
    waiting.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reply = String::new();
    waiting_reader.read_line(&mut reply).unwrap();
    assert_eq!(reply.trim_end(), r#"{"status":"ok"}"#);
    drop(waiting_reader);
    closed_by_server(waiting);

    // Silent from the start: closed.
    closed_by_server(TcpStream::connect(tcp_addr).unwrap());

    // A request that never ends, a byte every quarter of the timeout: closed too, without a
    // reply. The sender keeps going until the connection is closed, so only the request's
    // deadline can close it, not silence.
    let trickling = TcpStream::connect(tcp_addr).unwrap();
    let mut sender = trickling.try_clone().unwrap();
    let trickle_stop = Arc::new(AtomicBool::new(false));
    let trickle = std::thread::spawn({
        let stop = trickle_stop.clone();
        move || {
            sender.write_all(br#"{"action":"write","message":""#).unwrap();
            while !stop.load(Ordering::Relaxed) {
                if sender.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(IDLE / 4);
            }
        }
    });
    closed_by_server(trickling);
    trickle_stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();

    // A client that keeps sending, each request within the timeout of the previous reply, is
    // served over several timeouts' worth of time; then, silent, it is closed.
    let mut active = TcpStream::connect(tcp_addr).unwrap();
    let mut reader = BufReader::new(active.try_clone().unwrap());
    for i in 0..6 {
        write_request(&mut active, &mut reader, &format!("m{i}"));
        std::thread::sleep(IDLE / 3);
    }
    drop(reader);
    closed_by_server(active);

    let mut metrics = TcpStream::connect(http_addr).unwrap();
    metrics.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    metrics.read_to_string(&mut text).unwrap();
    assert!(text.contains("logstore_tcp_idle_closed_total 5\n"), "{text}");
    server.stop();
}

#[test]
fn a_zero_idle_timeout_means_no_limit() {
    let server = common::start(ServerConfig {
        http_addr: None,
        tcp_addr: Some("127.0.0.1:0".parse().unwrap()),
        tcp_idle_timeout: Duration::ZERO,
        ..ServerConfig::default()
    });
    let tcp_addr = server.tcp_addr.unwrap();
    let mut client = TcpStream::connect(tcp_addr).unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    write_request(&mut client, &mut reader, "late but served");
    server.stop();
}
