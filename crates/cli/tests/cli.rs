//! The `logstore` commands that work on a data directory directly.

mod common;

use common::{BIN, Served};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn logstore(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(dir: &Path, args: &[&str], stdin: &[u8]) -> String {
    let output = logstore(dir, args, stdin);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a command that must fail with exactly one line on stderr, and returns that line.
fn fails(dir: &Path, args: &[&str], stdin: &[u8]) -> String {
    let output = logstore(dir, args, stdin);
    assert!(!output.status.success(), "{args:?} succeeded");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("logstore: error: ") && !stderr.contains("panicked"), "{stderr}");
    stderr
}

fn messages(ndjson: &str) -> Vec<String> {
    ndjson
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn write_import_query_export_compact_inspect() {
    let temp = tempfile::tempdir().unwrap();
    let dir = &temp.path().join("data");
    let key = ok(dir, &["write", "--metadata", "{\"host\": \"db-1\"}", "first"], b"");
    assert!(key.trim().split_once('-').is_some(), "{key}");
    ok(dir, &["write", "--timestamp", "-1h", "an hour ago"], b"");

    let text = b"plain one\n\nplain two\r\n";
    assert_eq!(ok(dir, &["import", "--format", "text"], text).trim(), "imported 2 entries");
    let ndjson = b"{\"message\":\"nd 1\",\"metadata\":{\"host\":\"db-2\",\"code\":500}}\n{\"message\":\"nd 2\"}\n";
    let file = temp.path().join("in.ndjson");
    std::fs::write(&file, ndjson).unwrap();
    assert_eq!(ok(dir, &["import", file.to_str().unwrap()], b"").trim(), "imported 2 entries");

    let newest_first = messages(&ok(dir, &["query"], b""));
    assert_eq!(newest_first, ["nd 2", "nd 1", "plain two", "plain one", "first", "an hour ago"]);
    assert_eq!(
        messages(&ok(dir, &["query", "--where", "host=db-2", "--where", "code=500"], b"")),
        ["nd 1"]
    );
    assert_eq!(
        messages(&ok(dir, &["query", "--contains", "plain", "--order", "asc"], b"")),
        ["plain one", "plain two"]
    );
    assert_eq!(messages(&ok(dir, &["query", "--to", "-30m"], b"")), ["an hour ago"]);
    assert_eq!(messages(&ok(dir, &["query", "--from", "-30m", "--limit", "1"], b"")), ["nd 2"]);
    let text = ok(dir, &["query", "--format", "text", "--limit", "1", "--order", "asc"], b"");
    assert!(text.ends_with("Z an hour ago\n"), "{text}");
    let exported = messages(&ok(dir, &["export"], b""));
    assert_eq!(exported, ["an hour ago", "first", "plain one", "plain two", "nd 1", "nd 2"]);

    assert!(ok(dir, &["compact"], b"").contains("6 entries"));
    let inspected = ok(dir, &["inspect", "--verify"], b"");
    assert!(
        inspected.contains("verified") && inspected.contains("total: 6 entries"),
        "{inspected}"
    );
    assert_eq!(messages(&ok(dir, &["export"], b"")), exported);

    // Damage a table: --verify names the file and fails.
    let tables = dir.join("tables");
    let table = std::fs::read_dir(&tables).unwrap().next().unwrap().unwrap().path();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&table, bytes).unwrap();
    let error = fails(dir, &["inspect", "--verify"], b"");
    assert!(error.contains(table.file_name().unwrap().to_str().unwrap()), "{error}");
}

#[test]
fn import_stops_at_a_bad_line_claiming_only_durable_batches() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let input = b"{\"message\":\"1\"}\n{\"message\":\"2\"}\n{\"message\":\"3\"}\n{\"message\":\"4\"}\n{\"message\":\"5\"}\n{\"message\": 6}\n{\"message\":\"7\"}\n";
    let error = fails(dir, &["import", "--batch-entries", "2"], input);
    assert!(error.contains("line 6"), "{error}");
    assert!(error.contains("the 4 entries before it are written"), "{error}");
    // Entry 5 was in a batch never committed: not written, as claimed.
    assert_eq!(messages(&ok(dir, &["export"], b"")), ["1", "2", "3", "4"]);
    // An entry the store refuses (timestamp outside the window) names its line too.
    let error =
        fails(dir, &["import"], b"{\"message\":\"a\"}\n{\"message\":\"b\",\"timestamp\":5}\n");
    assert!(error.contains("line 2") && error.contains("the 0 entries"), "{error}");
}

#[test]
fn errors_are_one_line() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    fails(dir, &["query", "--from", "yesterday"], b"");
    fails(dir, &["query", "--where", "novalue"], b"");
    fails(dir, &["write", "--timestamp", "-5parsecs", "m"], b"");
    fails(dir, &["write", "--metadata", "[1]", "m"], b"");
    fails(dir, &["import", "/nonexistent/file"], b"");
    fails(&dir.join("missing"), &["inspect"], b"");
    fails(dir, &["serve", "--http", "nonsense"], b"");
    // A data directory in use by a server.
    let server = Served::start(dir, &[]);
    let error = fails(dir, &["write", "m"], b"");
    assert!(error.contains("logstore serve"), "{error}");
    assert!(server.terminate().success());
}
