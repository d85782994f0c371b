//! `logstore serve` end to end: the real binary on free loopback ports, over real sockets.

mod common;

use common::{Served, Tcp, all_messages, get, http, post};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn http_ingest_query_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &["--body-bytes-max", "2000000"]);
    let addr = server.http;

    // Three body shapes.
    let response = post(
        addr,
        b"{\"message\":\"n1\",\"metadata\":{\"host\":\"a\",\"code\":500}}\n{\"message\":\"n2\"}\n",
    );
    assert_eq!(response.status, 200, "{:?}", response);
    let reply = response.json();
    assert_eq!(reply["written"], 2);
    assert_ne!(reply["first"], reply["last"]);
    let response = post(addr, b"{\n \"message\": \"o1\",\n \"metadata\": {\"host\": \"b\"}\n}");
    assert_eq!((response.status, response.json()["written"].clone()), (200, json!(1)));
    let ts = now_ms() - 60_000;
    let array =
        json!([{"message": "a1", "timestamp": ts}, {"message": "a2 needle", "timestamp": ts}]);
    let response = post(addr, array.to_string().as_bytes());
    assert_eq!(response.status, 200);
    let last_key = response.json()["last"].as_str().unwrap().to_owned();
    assert!(last_key.starts_with(&format!("{ts}-")));

    // Newest first by default, with key, seq, message and metadata.
    let response = get(addr, "/api/v1/logs");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/x-ndjson"));
    let lines = response.lines();
    let messages: Vec<&str> = lines.iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["o1", "n2", "n1", "a2 needle", "a1"]);
    assert_eq!(lines[2]["metadata"], json!({"host": "a", "code": 500}));
    assert_eq!(lines[1]["metadata"], Value::Null);
    assert!(lines[0]["seq"].is_u64() && lines[0]["timestamp"].is_u64());
    assert_eq!(format!("{}-{}", lines[3]["timestamp"], lines[3]["seq"]), last_key);

    // Filters, order, limit, time range.
    let messages = |path: &str| -> Vec<String> {
        let response = get(addr, path);
        assert_eq!(response.status, 200, "{path}: {:?}", String::from_utf8_lossy(&response.body));
        response.lines().iter().map(|l| l["message"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(messages("/api/v1/logs?order=asc&limit=2"), ["a1", "a2 needle"]);
    assert_eq!(messages("/api/v1/logs?contains=needle"), ["a2 needle"]);
    assert_eq!(messages("/api/v1/logs?meta.host=a&meta.code=500"), ["n1"]);
    assert_eq!(messages("/api/v1/logs?meta.code=%22500%22"), Vec::<String>::new());
    assert_eq!(messages(&format!("/api/v1/logs?to={}", ts)), ["a2 needle", "a1"]);
    let rfc3339 = "2001-09-09T01:46:40Z"; // 1,000,000,000,000 ms
    assert_eq!(messages(&format!("/api/v1/logs?to={rfc3339}")), Vec::<String>::new());
    assert_eq!(messages(&format!("/api/v1/logs?from={rfc3339}&order=asc&limit=1")), ["a1"]);

    // Cursor paging in both orders visits every entry once.
    for order in ["asc", "desc"] {
        let (mut seen, mut cursor) = (Vec::new(), String::new());
        loop {
            let page = get(addr, &format!("/api/v1/logs?order={order}&limit=2{cursor}")).lines();
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap();
            cursor = format!("&cursor={}-{}", last["timestamp"], last["seq"]);
            seen.extend(page.iter().map(|l| l["message"].as_str().unwrap().to_owned()));
        }
        let mut expected = messages(&format!("/api/v1/logs?order={order}"));
        assert_eq!(seen, expected);
        expected.sort();
        expected.dedup();
        assert_eq!(expected.len(), 5);
    }

    // 400s name the parameter or the line.
    for (query, param) in [
        ("limit=x", "limit"),
        ("order=sideways", "order"),
        ("cursor=1", "cursor"),
        ("bogus=1", "bogus"),
        ("from=5&to=1", "from"),
    ] {
        let response = get(addr, &format!("/api/v1/logs?{query}"));
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.code(), "invalid_parameter");
        assert!(response.json()["error"]["message"].as_str().unwrap().contains(param), "{query}");
    }
    let bad = |body: &[u8], status: u16, code: &str, line: Option<u64>| {
        let response = post(addr, body);
        assert_eq!(
            (response.status, response.code()),
            (status, code.to_owned()),
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(
            response.json()["error"]["line"].as_u64(),
            line,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert!(!response.json()["error"]["message"].as_str().unwrap().is_empty());
    };
    bad(b"{\"message\":\"ok\"}\n{\"message\": nope}\n", 400, "invalid_json", Some(2));
    bad(b"{\"message\":\"ok\"}\n\n{\"text\":\"x\"}\n", 400, "invalid_entry", Some(3));
    bad(b"{\"message\":\"ok\",\"metadata\":\"str\"}", 400, "invalid_entry", Some(1));
    bad(b"{\"message\":\"ok\",\"timestamp\":\"yesterday\"}", 400, "invalid_entry", Some(1));
    bad(
        b"{\"message\":\"ok\"}\n{\"message\":\"old\",\"timestamp\":1}",
        400,
        "timestamp_out_of_range",
        Some(2),
    );
    bad(b"", 400, "empty_request", None);
    bad(b"[1]", 400, "invalid_entry", Some(1));
    let huge = json!({"message": "x".repeat((1 << 20) + 1)}).to_string();
    bad(format!("{{\"message\":\"ok\"}}\n{huge}").as_bytes(), 413, "entry_too_large", Some(2));
    bad(&vec![b' '; 2_000_001], 413, "body_too_large", None);
    // Nothing of a refused request was written.
    assert_eq!(messages("/api/v1/logs").len(), 5);

    // Health, metrics, unknown route, wrong method.
    let health = get(addr, "/health");
    assert_eq!((health.status, health.json()["status"].clone()), (200, json!("ok")));
    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    for name in [
        "logstore_appended_entries_total 5",
        "logstore_written_entries_total{protocol=\"http\"} 5",
        "logstore_queries_total",
        "logstore_flushes_total",
        "logstore_compactions_total",
        "logstore_tables",
        "logstore_wal_bytes",
        "logstore_request_duration_seconds_bucket{protocol=\"http\",endpoint=\"POST /api/v1/logs\",le=\"+Inf\"}",
        "logstore_http_responses_total{class=\"4xx\"}",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}:\n{text}");
    }
    assert_eq!(get(addr, "/nope").status, 404);
    assert_eq!(http(addr, "DELETE", "/api/v1/logs", &[], b"").status, 405);

    // A clean stop.
    assert!(server.terminate().success());
}

#[test]
fn http_auth_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &["--auth-token", "s3cret"]);
    let addr = server.http;
    let body = br#"{"message":"m"}"#;
    let response = post(addr, body);
    assert_eq!((response.status, response.code()), (401, "unauthorized".to_owned()));
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        http(addr, "POST", "/api/v1/logs", &[("Authorization", "Bearer wrong!")], body).status,
        401
    );
    assert_eq!(
        http(addr, "POST", "/api/v1/logs", &[("Authorization", "s3cret")], body).status,
        401
    );
    assert_eq!(get(addr, "/api/v1/logs").status, 401);
    assert_eq!(get(addr, "/metrics").status, 401);
    assert_eq!(get(addr, "/health").status, 200);
    let auth = [("Authorization", "Bearer s3cret")];
    assert_eq!(http(addr, "POST", "/api/v1/logs", &auth, body).status, 200);
    let response = http(addr, "GET", "/api/v1/logs", &auth, b"");
    assert_eq!((response.status, response.lines().len()), (200, 1));
    assert_eq!(http(addr, "GET", "/metrics", &auth, b"").status, 200);
}

#[test]
fn tcp_protocol_every_code_and_framing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let mut tcp = Tcp::connect(server.tcp);
    let code = |reply: Value| reply["errcode"].as_str().unwrap_or_default().to_owned();

    assert_eq!(tcp.write("first"), json!({"status": "ok"}));
    let reply = tcp.request(r#"{"action":"write","message":"second","metadata":{"k":"v"}}"#);
    assert_eq!(reply, json!({"status": "ok"}));
    for (line, expected) in [
        ("not json", "invalid_json"),
        ("[1,2,3]", "invalid_json"),
        ("42", "invalid_json"),
        ("\"write\"", "invalid_json"),
        ("{}", "missing_action"),
        (r#"{"action":5}"#, "unknown_action"),
        (r#"{"action":{"nested":true}}"#, "unknown_action"),
        (r#"{"action":"delete"}"#, "unknown_action"),
        (r#"{"action":"write"}"#, "missing_message"),
        (r#"{"action":"write","message":["x"]}"#, "missing_message"),
        (r#"{"action":"write","message":"m","metadata":[1]}"#, "write_log_error"),
        (r#"{"action":"read","end_ts":1}"#, "missing_start_ts"),
        (r#"{"action":"read","start_ts":1}"#, "missing_end_ts"),
        (r#"{"action":"read","start_ts":"abc","end_ts":1}"#, "invalid_start_ts"),
        (r#"{"action":"read","start_ts":1,"end_ts":-5}"#, "invalid_end_ts"),
        (r#"{"action":"read","start_ts":1,"end_ts":18446744073709551616}"#, "invalid_end_ts"),
    ] {
        let reply = tcp.request(line);
        assert_eq!(reply["status"], "error", "{line}");
        assert_eq!(code(reply), expected, "{line}");
    }
    let reply = tcp.request(r#"{"action":5}"#);
    assert_eq!(reply["detail"], json!({"given_action": 5, "supported_actions": "write,read"}));
    let reply =
        tcp.request(&json!({"action": "write", "message": "x".repeat((1 << 20) + 1)}).to_string());
    assert_eq!(code(reply.clone()), "message_too_large");
    assert_eq!(reply["detail"], json!({"max_size": 1 << 20, "unit": "byte"}));
    // Metadata over the store's limit: refused by the store, reported as write_log_error.
    let big_metadata =
        json!({"action": "write", "message": "m", "metadata": {"k": "v".repeat(100_000)}});
    assert_eq!(code(tcp.request(&big_metadata.to_string())), "write_log_error");

    // An oversized line, then two requests in the same packet: exactly three replies, in step.
    let mut batch = vec![b'{'; (1 << 20) + 4096];
    batch.extend_from_slice(
        b"\n{\"action\":\"write\",\"message\":\"third\"}\n\n{\"action\":\"bogus\"}\r\n",
    );
    tcp.send_raw(&batch);
    let reply = tcp.reply();
    assert_eq!(code(reply.clone()), "request_too_large");
    assert_eq!(reply["detail"], json!({"max_size": (1 << 20) + 2048, "unit": "byte"}));
    assert_eq!(tcp.reply(), json!({"status": "ok"}));
    assert_eq!(code(tcp.reply()), "unknown_action");

    // Reads: write order, u64 as string, inclusive range, entry shape.
    let data = tcp.read_all();
    let messages: Vec<&str> = data.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(messages, ["first", "second", "third"]);
    assert_eq!(data[1]["metadata"], json!({"k": "v"}));
    assert_eq!(data[0]["metadata"], Value::Null);
    assert_eq!(data[0]["version"], 1);
    let ts = data[1]["timestamp"].as_u64().unwrap();
    let reply = tcp.request(&format!(r#"{{"action":"read","start_ts":"{ts}","end_ts":{ts}}}"#));
    assert!(reply["data"].as_array().unwrap().iter().all(|e| e["timestamp"] == ts));
    assert!(reply["data"].as_array().unwrap().iter().any(|e| e["message"] == "second"));
    let reply = tcp.request(r#"{"action":"read","start_ts":10,"end_ts":5}"#);
    assert_eq!(reply, json!({"status": "ok", "data": []}));

    // Many entries in one millisecond come back in write order.
    for i in 0..300 {
        assert_eq!(tcp.write(&format!("burst {i:03}"))["status"], "ok");
    }
    let burst: Vec<String> = tcp
        .read_all()
        .iter()
        .filter_map(|e| e["message"].as_str().filter(|m| m.starts_with("burst")).map(str::to_owned))
        .collect();
    let expected: Vec<String> = (0..300).map(|i| format!("burst {i:03}")).collect();
    assert_eq!(burst, expected);

    // A non-UTF-8 line and a last line without a newline.
    tcp.send_raw(b"\xff\xfe\n");
    assert_eq!(code(tcp.reply()), "invalid_json");
    tcp.send_raw(br#"{"action":"write","message":"no newline"}"#);
    tcp.writer_shutdown();
    assert_eq!(tcp.reply(), json!({"status": "ok"}));
    assert_eq!(all_messages(server.http).last().map(String::as_str), Some("no newline"));
}

#[test]
fn hundred_concurrent_clients_lose_nothing_and_read_their_writes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &[]);
    let (http_addr, tcp_addr) = (server.http, server.tcp);
    const CLIENTS: usize = 100;
    const WRITES: usize = 10;
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                let mut tcp = (client % 2 == 0).then(|| Tcp::connect(tcp_addr));
                for i in 0..WRITES {
                    let message = format!("client {client} entry {i}");
                    match &mut tcp {
                        Some(tcp) => {
                            assert_eq!(tcp.write(&message), json!({"status": "ok"}));
                            // Read after write, on the same connection.
                            let data = tcp.read_all();
                            assert!(
                                data.iter().any(|e| e["message"] == message.as_str()),
                                "{message} not read back"
                            );
                        }
                        None => {
                            let response =
                                post(http_addr, json!({"message": message}).to_string().as_bytes());
                            assert_eq!(response.status, 200, "{response:?}");
                            let query = format!(
                                "/api/v1/logs?limit=1&contains={}",
                                message.replace(' ', "%20")
                            );
                            let found = get(http_addr, &query).lines();
                            assert_eq!(found.len(), 1, "{message} not read back");
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let messages = all_messages(http_addr);
    assert_eq!(messages.len(), CLIENTS * WRITES);
    let unique: HashSet<&String> = messages.iter().collect();
    assert_eq!(unique.len(), CLIENTS * WRITES);
    // Each client's entries are in its write order.
    for client in 0..CLIENTS {
        let prefix = format!("client {client} entry ");
        let own: Vec<usize> = messages
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix))
            .map(|i| i.parse().unwrap())
            .collect();
        assert_eq!(own, (0..WRITES).collect::<Vec<_>>());
    }
}

#[test]
fn sigterm_during_writes_loses_nothing_acknowledged_and_restart_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    // Batch durability: only the clean shutdown's flush makes the newest acknowledged writes
    // durable, so this checks that it happens.
    let server = Served::start(dir.path(), &["--durability", "batch"]);
    let (http_addr, tcp_addr) = (server.http, server.tcp);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let timeout = Some(Duration::from_secs(10));
                let mut tcp = (writer % 2 == 0).then(|| {
                    let stream = std::net::TcpStream::connect(tcp_addr)?;
                    stream.set_read_timeout(timeout)?;
                    Ok::<_, std::io::Error>(stream)
                });
                for i in 0.. {
                    let message = format!("w{writer} {i}");
                    let ok = match &mut tcp {
                        Some(Ok(stream)) => {
                            use std::io::{BufRead, Write};
                            let request = json!({"action": "write", "message": message}).to_string() + "\n";
                            if stream.write_all(request.as_bytes()).is_err() {
                                return;
                            }
                            let mut reply = String::new();
                            let mut reader = std::io::BufReader::new(&*stream);
                            matches!(reader.read_line(&mut reply), Ok(n) if n > 0) && reply.contains("\"ok\"")
                        }
                        Some(Err(_)) => return,
                        None => {
                            let Ok(mut stream) = std::net::TcpStream::connect(http_addr) else { return };
                            let _ = stream.set_read_timeout(timeout);
                            use std::io::{Read, Write};
                            let body = json!({"message": message}).to_string();
                            let request = format!(
                                "POST /api/v1/logs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            let mut raw = Vec::new();
                            stream.write_all(request.as_bytes()).is_ok()
                                && stream.read_to_end(&mut raw).is_ok()
                                && raw.starts_with(b"HTTP/1.1 200")
                        }
                    };
                    if !ok {
                        return;
                    }
                    acknowledged.lock().unwrap().push(message);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 50, "only {} writes before SIGTERM", acknowledged.len());

    let restarted = Served::start(dir.path(), &[]);
    let stored: HashSet<String> = all_messages(restarted.http).into_iter().collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|m| !stored.contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    // And it keeps accepting writes after the restart.
    let mut tcp = Tcp::connect(restarted.tcp);
    assert_eq!(tcp.write("after restart"), json!({"status": "ok"}));
    assert_eq!(tcp.read_all().len(), stored.len() + 1);
    assert!(restarted.terminate().success());
}

#[test]
fn a_client_that_stops_reading_does_not_hold_shutdown_beyond_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(dir.path(), &["--shutdown-grace-s", "1"]);
    let message = "y".repeat(1000);
    let batch: String =
        (0..1000).map(|_| json!({ "message": message }).to_string() + "\n").collect();
    for _ in 0..30 {
        assert_eq!(post(server.http, batch.as_bytes()).status, 200);
    }
    // 30 MB of results, more than the socket buffers hold: the stream blocks on this client.
    use std::io::{Read, Write};
    let mut reader = std::net::TcpStream::connect(server.http).unwrap();
    reader.write_all(b"GET /api/v1/logs?limit=1000000 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = [0u8; 1024];
    let n = reader.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(200));
    let started = std::time::Instant::now();
    assert!(server.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
    drop(reader);
    let restarted = Served::start(dir.path(), &[]);
    let response = get(restarted.http, "/api/v1/logs?limit=1000000");
    assert_eq!(response.lines().len(), 30_000);
}
