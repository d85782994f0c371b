//! Starting the real `logstore` binary on free loopback ports, and minimal HTTP/1.1 and TCP
//! protocol clients over real sockets.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_logstore");

/// A running `logstore serve`, killed if still running when dropped.
pub struct Served {
    pub child: Child,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub dir: PathBuf,
}

impl Served {
    /// Starts `logstore serve` on `dir` with ports picked by the OS, plus `extra` flags, and
    /// waits for its startup line.
    pub fn start(dir: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn logstore");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the startup line");
        let field = |name: &str| -> SocketAddr {
            let prefix = format!("{name}=");
            let value = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {name}= in startup line {line:?}"));
            value.parse().unwrap()
        };
        let (http, tcp) = (field("http"), field("tcp"));
        Served { child, http, tcp, dir: dir.to_owned() }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(mut self) -> ExitStatus {
        signal(&self.child, "TERM");
        wait_timeout(&mut self.child, Duration::from_secs(30))
            .expect("server did not stop after SIGTERM")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(child: &Child, name: &str) {
    let status =
        Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// An HTTP response; `complete` is false when a chunked body was cut off.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub complete: bool,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn lines(&self) -> Vec<Value> {
        assert!(self.complete, "response cut off");
        std::str::from_utf8(&self.body)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The error code of a JSON error reply.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    // The server may answer (413) before reading all of a large body and close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    http(addr, "GET", path, &[], b"")
}

pub fn post(addr: SocketAddr, body: &[u8]) -> Response {
    http(addr, "POST", "/api/v1/logs", &[], body)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("no response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if !chunked {
        return Response { status, headers, body: rest.to_vec(), complete: true };
    }
    let (mut body, mut at, mut complete) = (Vec::new(), 0, false);
    while let Some(end) = rest[at..].windows(2).position(|w| w == b"\r\n") {
        let size_text = std::str::from_utf8(&rest[at..at + end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        at += end + 2;
        if size == 0 {
            complete = true;
            break;
        }
        if at + size + 2 > rest.len() {
            break;
        }
        body.extend_from_slice(&rest[at..at + size]);
        at += size + 2;
    }
    Response { status, headers, body, complete }
}

/// A TCP protocol connection.
pub struct Tcp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Tcp {
    pub fn connect(addr: SocketAddr) -> Tcp {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Tcp { reader: BufReader::new(stream.try_clone().unwrap()), writer: stream }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Closes the sending side (the server sees the end of input).
    pub fn writer_shutdown(&mut self) {
        self.writer.shutdown(std::net::Shutdown::Write).unwrap();
    }

    pub fn reply(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "reply not a whole line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends one request line and reads its reply.
    pub fn request(&mut self, line: &str) -> Value {
        self.send_raw(format!("{line}\n").as_bytes());
        self.reply()
    }

    pub fn write(&mut self, message: &str) -> Value {
        self.request(&serde_json::json!({"action": "write", "message": message}).to_string())
    }

    pub fn read_all(&mut self) -> Vec<Value> {
        let reply =
            self.request(r#"{"action":"read","start_ts":0,"end_ts":"18446744073709551615"}"#);
        assert_eq!(reply["status"], "ok", "{reply}");
        reply["data"].as_array().unwrap().clone()
    }
}

/// Messages of every entry over HTTP, oldest first.
pub fn all_messages(addr: SocketAddr) -> Vec<String> {
    let response = get(addr, "/api/v1/logs?order=asc&limit=100000000");
    assert_eq!(response.status, 200);
    response.lines().iter().map(|e| e["message"].as_str().unwrap().to_owned()).collect()
}
