//! Request parsers, free of I/O: the HTTP ingest body, the HTTP query string, the TCP protocol's
//! request line, and timestamps. The servers call these and the fuzz target calls them directly.

use logstore_engine::{Key, NewEntry, Order, Query};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;

/// `limit` of a `GET /api/v1/logs` without one.
pub const QUERY_LIMIT_DEFAULT: usize = 1_000;

/// A message longer than this is refused by the TCP protocol with `message_too_large` (the
/// original's entry limit, 1 MiB).
pub const TCP_MESSAGE_BYTES_MAX: usize = 1 << 20;
/// The longest TCP request line: the entry limit plus 2 KiB of JSON overhead. A longer line is
/// answered with `request_too_large` and discarded up to its newline.
pub const TCP_LINE_BYTES_MAX: usize = TCP_MESSAGE_BYTES_MAX + 2048;

/// Why an HTTP request body was refused. `line` (1-based, in the body) and `entry` (0-based
/// position among the entries) point at the culprit when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError {
    /// A stable machine-readable code, e.g. `invalid_json`.
    pub code: &'static str,
    /// What was wrong, for a human.
    pub message: String,
    /// The line of the body.
    pub line: Option<u64>,
}

/// The entries of an ingest body, borrowing from it, and the line each starts on.
#[derive(Debug)]
pub struct ParsedBody<'a> {
    /// The entries, in body order.
    pub entries: Vec<NewEntry<'a>>,
    /// `lines[i]` is the 1-based line of the body where entry `i` starts.
    pub lines: Vec<u64>,
}

#[derive(Deserialize)]
struct WireEntry<'a> {
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timestamp: Option<&'a RawValue>,
}

/// Parses an ingest body: NDJSON (one entry per line; blank lines are skipped), one JSON object,
/// or a JSON array of entries. Each entry is `{"message": str, "metadata"?: object|null,
/// "timestamp"?: ms | RFC 3339 string}`; other fields are ignored.
pub fn parse_ingest_body(body: &[u8]) -> Result<ParsedBody<'_>, BodyError> {
    let body = std::str::from_utf8(body).map_err(|e| {
        let line = line_of(body, e.valid_up_to());
        BodyError {
            code: "invalid_json",
            message: format!("body is not UTF-8: {e}"),
            line: Some(line),
        }
    })?;
    let start = body.len() - body.trim_start().len();
    let mut parsed = ParsedBody { entries: Vec::new(), lines: Vec::new() };
    let json_error = |e: serde_json::Error| BodyError {
        code: "invalid_json",
        message: e.to_string(),
        line: Some(e.line() as u64),
    };
    if body[start..].starts_with('[') {
        let wire: Vec<&RawValue> = serde_json::from_str(body).map_err(json_error)?;
        for raw in wire {
            // Position of this element in the body, for its line number.
            let offset = raw.get().as_ptr() as usize - body.as_ptr() as usize;
            let line = line_of(body.as_bytes(), offset);
            push_entry(&mut parsed, raw.get(), line)?;
        }
    } else {
        let mut stream = serde_json::Deserializer::from_str(body).into_iter::<&RawValue>();
        let (mut counted_to, mut line) = (0, 1);
        loop {
            match stream.next() {
                None => break,
                Some(Err(e)) => return Err(json_error(e)),
                Some(Ok(raw)) => {
                    let offset = raw.get().as_ptr() as usize - body.as_ptr() as usize;
                    line += count_newlines(&body.as_bytes()[counted_to..offset]);
                    counted_to = offset;
                    push_entry(&mut parsed, raw.get(), line)?;
                }
            }
        }
    }
    if parsed.entries.is_empty() {
        return Err(BodyError {
            code: "empty_request",
            message: "the body holds no entries".into(),
            line: None,
        });
    }
    Ok(parsed)
}

fn push_entry<'a>(parsed: &mut ParsedBody<'a>, raw: &'a str, line: u64) -> Result<(), BodyError> {
    let field_error =
        |message: String| BodyError { code: "invalid_entry", message, line: Some(line) };
    if !raw.starts_with('{') {
        return Err(field_error(format!("an entry must be a JSON object, got {}", kind_of(raw))));
    }
    let wire: WireEntry<'a> =
        serde_json::from_str(raw).map_err(|e| field_error(format!("entry: {e}")))?;
    let message = wire.message.ok_or_else(|| field_error("entry has no \"message\"".into()))?;
    let mut entry = NewEntry::new(message);
    if let Some(metadata) = wire.metadata {
        match metadata.get().as_bytes().first() {
            Some(b'{') => {
                check_metadata_depth(metadata.get()).map_err(field_error)?;
                entry = entry.metadata(single_line_json(metadata.get()));
            }
            Some(b'n') => {} // null
            _ => {
                return Err(field_error(format!(
                    "\"metadata\" must be a JSON object or null, got {}",
                    kind_of(metadata.get())
                )));
            }
        }
    }
    if let Some(timestamp) = wire.timestamp {
        match json_timestamp(timestamp.get()) {
            Ok(Some(ms)) => entry = entry.timestamp_ms(ms),
            Ok(None) => {}
            Err(why) => return Err(field_error(format!("\"timestamp\": {why}"))),
        }
    }
    parsed.entries.push(entry);
    parsed.lines.push(line);
    Ok(())
}

/// A JSON timestamp field: milliseconds as a number, or a string (RFC 3339 or decimal
/// milliseconds); `null` means none.
fn json_timestamp(raw: &str) -> Result<Option<u64>, String> {
    if raw == "null" {
        return Ok(None);
    }
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        return parse_absolute_time(&text).map(Some);
    }
    serde_json::from_str::<u64>(raw).map(Some).map_err(|_| {
        format!("expected milliseconds since the Unix epoch (an unsigned integer) or an RFC 3339 string, got {raw}")
    })
}

/// Deepest nesting of objects and arrays accepted in metadata (below serde_json's recursion
/// limit of 128, so every JSON library a reader is likely to use can parse what is stored).
pub const METADATA_DEPTH_MAX: usize = 64;

/// How deeply objects and arrays nest in a JSON text (0 for a scalar).
fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for byte in json.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn check_metadata_depth(raw: &str) -> Result<(), String> {
    let depth = json_depth(raw);
    if depth > METADATA_DEPTH_MAX {
        return Err(format!(
            "\"metadata\" nests {depth} levels deep, more than the limit of {METADATA_DEPTH_MAX}"
        ));
    }
    Ok(())
}

/// Checks a metadata text given on its own (the CLI's `--metadata`): one JSON object, nested
/// at most [`METADATA_DEPTH_MAX`] deep; returns it on one line.
pub fn metadata_text(text: &str) -> Result<Cow<'_, str>, String> {
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !raw.get().starts_with('{') {
        return Err(format!("must be a JSON object, got {}", kind_of(raw.get())));
    }
    check_metadata_depth(raw.get())?;
    Ok(single_line_json(raw.get()))
}

/// Valid JSON text without line breaks: the whitespace outside strings (the only place a JSON
/// text can hold a line break) is removed when there is a line break, so a stored metadata
/// object never breaks the line framing of NDJSON or the TCP protocol.
pub fn single_line_json(json: &str) -> Cow<'_, str> {
    if !json.contains(['\n', '\r']) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn kind_of(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + count_newlines(&bytes[..offset.min(bytes.len())])
}

/// An absolute time: milliseconds since the Unix epoch, or RFC 3339 (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.250+02:00`). Before the epoch is refused.
pub fn parse_absolute_time(text: &str) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text:?} is out of range for milliseconds"));
    }
    let timestamp: jiff::Timestamp = text.parse().map_err(|e| {
        format!("{text:?} is neither milliseconds since the Unix epoch nor an RFC 3339 time ({e})")
    })?;
    u64::try_from(timestamp.as_millisecond())
        .map_err(|_| format!("{text:?} is before the Unix epoch"))
}

/// A time that may also be relative to `now_ms`: `-15m`, `-2h`, `-7d`, `-30s`, `-500ms`
/// (the past), or an absolute time ([`parse_absolute_time`]).
pub fn parse_time(text: &str, now_ms: u64) -> Result<u64, String> {
    let Some(relative) = text.strip_prefix('-') else {
        return parse_absolute_time(text);
    };
    let split = relative.find(|c: char| !c.is_ascii_digit()).unwrap_or(relative.len());
    let (count, unit) = relative.split_at(split);
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => {
            return Err(format!(
                "{text:?}: a relative time is -<n><unit>, unit one of ms, s, m, h, d, w"
            ));
        }
    };
    let count: u64 = count.parse().map_err(|_| format!("{text:?}: expected a number after '-'"))?;
    Ok(now_ms.saturating_sub(count.saturating_mul(unit_ms)))
}

/// A `KEY=VALUE` metadata filter's value: JSON if it parses as JSON (`500`, `true`, `"500"`),
/// otherwise the text as a string (`db-1`).
pub fn filter_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Why a query string was refused: the parameter and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's name as given.
    pub param: String,
    /// What is wrong.
    pub message: String,
}

/// Parses the query string of `GET /api/v1/logs`:
/// `from`, `to` (ms or RFC 3339), `limit` (default [`QUERY_LIMIT_DEFAULT`]), `order`
/// (`desc`, the default, or `asc`), `contains`, `meta.KEY=VALUE` (repeatable; VALUE as in
/// [`filter_value`]) and `cursor` (`<ts>-<seq>`: resume after that entry). Unknown parameters
/// are refused so a typo does not silently widen a query.
pub fn parse_query_params(query: &str) -> Result<Query, ParamError> {
    let mut out = Query::new().order(Order::Descending).limit(QUERY_LIMIT_DEFAULT);
    let mut seen: HashMap<String, ()> = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let error = |message: String| ParamError { param: name.to_string(), message };
        if !name.starts_with("meta.") && seen.insert(name.to_string(), ()).is_some() {
            return Err(error("given more than once".into()));
        }
        match &*name {
            "from" => out.from_ms = parse_absolute_time(&value).map_err(error)?,
            "to" => out.to_ms = parse_absolute_time(&value).map_err(error)?,
            "limit" => {
                out.limit = Some(
                    value
                        .parse()
                        .map_err(|_| error(format!("{value:?} is not a non-negative integer")))?,
                )
            }
            "order" => {
                out.order = match &*value {
                    "asc" | "ascending" => Order::Ascending,
                    "desc" | "descending" => Order::Descending,
                    _ => return Err(error(format!("{value:?}: expected asc or desc"))),
                }
            }
            "contains" => out.contains = Some(value.into_owned()),
            "cursor" => {
                let key: Key = value.parse().map_err(|e| error(format!("{e}")))?;
                out.after = Some(key);
            }
            _ => match name.strip_prefix("meta.") {
                Some(key) if !key.is_empty() => {
                    out.metadata_equals.push((key.to_owned(), filter_value(&value)))
                }
                _ => {
                    return Err(error(
                        "unknown parameter (known: from, to, limit, order, contains, cursor, meta.KEY)"
                            .into(),
                    ));
                }
            },
        }
    }
    if out.from_ms > out.to_ms {
        return Err(ParamError {
            param: "from".into(),
            message: format!("from {} ms is after to {} ms", out.from_ms, out.to_ms),
        });
    }
    Ok(out)
}

/// A request of the TCP protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum TcpRequest {
    /// `{"action":"write","message":...,"metadata"?:{...}}`
    Write {
        /// The message.
        message: String,
        /// The metadata object's JSON text, as sent.
        metadata: Option<String>,
    },
    /// `{"action":"read","start_ts":...,"end_ts":...}`, both inclusive.
    Read {
        /// Oldest timestamp, ms.
        start_ts: u64,
        /// Newest timestamp, ms.
        end_ts: u64,
    },
}

/// A TCP protocol error reply: `{"status":"error","errcode":code,"detail":detail}`.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpError {
    /// The protocol's error code.
    pub code: &'static str,
    /// The `detail` object, if any.
    pub detail: Option<Value>,
}

impl TcpError {
    pub(crate) fn new(code: &'static str, detail: Option<Value>) -> TcpError {
        TcpError { code, detail }
    }

    /// Renders the reply line, without the newline.
    pub fn to_line(&self) -> String {
        let mut reply = serde_json::json!({"status": "error", "errcode": self.code});
        if let Some(detail) = &self.detail {
            reply["detail"] = detail.clone();
        }
        reply.to_string()
    }
}

fn message_detail(message: impl Into<String>) -> Option<Value> {
    Some(serde_json::json!({ "message": message.into() }))
}

/// The `request_too_large` error of a line over [`TCP_LINE_BYTES_MAX`].
pub fn tcp_request_too_large() -> TcpError {
    TcpError::new(
        "request_too_large",
        Some(serde_json::json!({"max_size": TCP_LINE_BYTES_MAX, "unit": "byte"})),
    )
}

/// Parses one TCP request line (without its newline). Never panics, whatever the bytes.
pub fn parse_tcp_line(line: &[u8]) -> Result<TcpRequest, TcpError> {
    if line.len() > TCP_LINE_BYTES_MAX {
        return Err(tcp_request_too_large());
    }
    let invalid_json = |m: String| TcpError::new("invalid_json", message_detail(m));
    let text = std::str::from_utf8(line).map_err(|e| invalid_json(format!("not UTF-8: {e}")))?;
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| invalid_json(e.to_string()))?;
    if !raw.get().starts_with('{') {
        return Err(invalid_json(format!(
            "a request must be a JSON object, got {}",
            kind_of(raw.get())
        )));
    }
    let fields: HashMap<String, &RawValue> =
        serde_json::from_str(raw.get()).map_err(|e| invalid_json(e.to_string()))?;
    let field = |name: &str| fields.get(name).map(|raw| raw.get()).filter(|raw| *raw != "null");
    let action_raw = field("action").ok_or_else(|| TcpError::new("missing_action", None))?;
    let action: Option<String> = serde_json::from_str(action_raw).ok();
    match action.as_deref() {
        Some("write") => {
            let message = field("message").ok_or_else(|| TcpError::new("missing_message", None))?;
            let message: String = serde_json::from_str(message).map_err(|_| {
                TcpError::new(
                    "missing_message",
                    message_detail(format!(
                        "\"message\" must be a string, got {}",
                        kind_of(message)
                    )),
                )
            })?;
            if message.len() > TCP_MESSAGE_BYTES_MAX {
                return Err(TcpError::new(
                    "message_too_large",
                    Some(serde_json::json!({"max_size": TCP_MESSAGE_BYTES_MAX, "unit": "byte"})),
                ));
            }
            let metadata = match field("metadata") {
                None => None,
                Some(raw) if raw.starts_with('{') => {
                    check_metadata_depth(raw)
                        .map_err(|m| TcpError::new("write_log_error", message_detail(m)))?;
                    Some(single_line_json(raw).into_owned())
                }
                Some(raw) => {
                    return Err(TcpError::new(
                        "write_log_error",
                        message_detail(format!(
                            "\"metadata\" must be a JSON object, got {}",
                            kind_of(raw)
                        )),
                    ));
                }
            };
            Ok(TcpRequest::Write { message, metadata })
        }
        Some("read") => {
            let start_ts = tcp_u64(field("start_ts"), "missing_start_ts", "invalid_start_ts")?;
            let end_ts = tcp_u64(field("end_ts"), "missing_end_ts", "invalid_end_ts")?;
            Ok(TcpRequest::Read { start_ts, end_ts })
        }
        _ => Err(TcpError::new(
            "unknown_action",
            Some(serde_json::json!({
                "given_action": serde_json::from_str::<Value>(action_raw).unwrap_or(Value::Null),
                "supported_actions": "write,read",
            })),
        )),
    }
}

/// A u64 given as a JSON number or a decimal string.
fn tcp_u64(
    raw: Option<&str>,
    missing: &'static str,
    invalid: &'static str,
) -> Result<u64, TcpError> {
    let raw = raw.ok_or_else(|| TcpError::new(missing, None))?;
    let parsed = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok().and_then(|s| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        })
    } else {
        serde_json::from_str::<u64>(raw).ok()
    };
    parsed.ok_or_else(|| {
        TcpError::new(
            invalid,
            message_detail(format!(
                "expected an unsigned 64-bit integer (a number or a decimal string), got {raw}"
            )),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_object_and_array_bodies() {
        let ndjson =
            b"{\"message\":\"a\"}\n\n{\"message\":\"b\",\"metadata\":{\"k\": 1},\"timestamp\":5}\n";
        let parsed = parse_ingest_body(ndjson).unwrap();
        assert_eq!(parsed.entries.len(), 2);
        assert_eq!(parsed.lines, [1, 3]);
        assert_eq!(parsed.entries[1].metadata.as_deref(), Some("{\"k\": 1}"));
        assert_eq!(parsed.entries[1].timestamp_ms, Some(5));

        let object = b"{\n  \"message\": \"x\",\n  \"timestamp\": \"1970-01-01T00:00:01.5Z\"\n}";
        let parsed = parse_ingest_body(object).unwrap();
        assert_eq!(parsed.entries[0].timestamp_ms, Some(1500));

        let array = b"[{\"message\":\"a\"},\n {\"message\":\"b\",\"metadata\":null}]";
        let parsed = parse_ingest_body(array).unwrap();
        assert_eq!(parsed.lines, [1, 2]);
        assert_eq!(parsed.entries[1].metadata, None);
    }

    #[test]
    fn body_errors_name_the_line() {
        let err = parse_ingest_body(b"{\"message\":\"a\"}\n{\"message\":\n").unwrap_err();
        assert_eq!((err.code, err.line), ("invalid_json", Some(3)));
        let err = parse_ingest_body(b"{\"message\":\"a\"}\n{\"msg\":\"b\"}\n").unwrap_err();
        assert_eq!((err.code, err.line), ("invalid_entry", Some(2)));
        let err = parse_ingest_body(b"[{\"message\":\"a\"},\n5]").unwrap_err();
        assert_eq!((err.code, err.line), ("invalid_entry", Some(2)));
        let err = parse_ingest_body(b"{\"message\":\"a\",\"metadata\":[1]}").unwrap_err();
        assert_eq!(err.code, "invalid_entry");
        let err = parse_ingest_body(b"{\"message\":\"a\",\"timestamp\":-1}").unwrap_err();
        assert_eq!(err.code, "invalid_entry");
        let err = parse_ingest_body(b"{\"message\":7}").unwrap_err();
        assert_eq!(err.code, "invalid_entry");
        assert_eq!(parse_ingest_body(b" \n ").unwrap_err().code, "empty_request");
        assert_eq!(parse_ingest_body(b"[]").unwrap_err().code, "empty_request");
        assert_eq!(parse_ingest_body(b"\xff").unwrap_err().code, "invalid_json");
    }

    #[test]
    fn metadata_is_kept_on_one_line() {
        let body = b"[{\"message\":\"a\",\"metadata\":{\n \"k\" : \"x \\\" y\",\r\n\"z\":[1, 2]}}]";
        let parsed = parse_ingest_body(body).unwrap();
        assert_eq!(parsed.entries[0].metadata.as_deref(), Some(r#"{"k":"x \" y","z":[1,2]}"#));
        assert_eq!(single_line_json(r#"{"a": "b c"}"#), r#"{"a": "b c"}"#);
    }

    #[test]
    fn metadata_depth_is_limited() {
        let nested = |depth: usize| {
            format!(
                r#"{{"message":"m","metadata":{}1{}}}"#,
                r#"{"a":"#.repeat(depth),
                "}".repeat(depth)
            )
        };
        assert!(parse_ingest_body(nested(METADATA_DEPTH_MAX).as_bytes()).is_ok());
        let err = parse_ingest_body(nested(METADATA_DEPTH_MAX + 1).as_bytes()).unwrap_err();
        assert_eq!(err.code, "invalid_entry");
        let line = nested(200).replacen('{', r#"{"action":"write","#, 1);
        assert_eq!(parse_tcp_line(line.as_bytes()).unwrap_err().code, "write_log_error");
        assert_eq!(json_depth(r#"{"a":"{[{[","b":[[]]}"#), 3);
    }

    #[test]
    fn times() {
        assert_eq!(parse_absolute_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_absolute_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_absolute_time("2023-11-15T00:13:20.250+02:00"), Ok(1_700_000_000_250));
        assert!(parse_absolute_time("1969-12-31T23:59:59Z").is_err());
        assert!(parse_absolute_time("yesterday").is_err());
        assert!(parse_absolute_time("").is_err());
        assert_eq!(parse_time("-15m", 1_000_000), Ok(100_000));
        assert_eq!(parse_time("-2h", 10), Ok(0));
        assert_eq!(parse_time("-7d", 7 * 86_400_000 + 1), Ok(1));
        assert!(parse_time("-7y", 0).is_err());
        assert!(parse_time("-m", 0).is_err());
    }

    #[test]
    fn query_params() {
        let q = parse_query_params("").unwrap();
        assert_eq!((q.order, q.limit), (Order::Descending, Some(QUERY_LIMIT_DEFAULT)));
        let q = parse_query_params(
            "from=5&to=1970-01-01T00:00:01Z&limit=3&order=asc&contains=a%20b&meta.host=db-1&meta.code=500&cursor=7-8",
        )
        .unwrap();
        assert_eq!((q.from_ms, q.to_ms, q.limit, q.order), (5, 1000, Some(3), Order::Ascending));
        assert_eq!(q.contains.as_deref(), Some("a b"));
        assert_eq!(
            q.metadata_equals,
            [("host".to_owned(), Value::from("db-1")), ("code".to_owned(), Value::from(500))]
        );
        assert_eq!(q.after, Some(Key::new(7, 8)));
        for (bad, param) in [
            ("limit=-1", "limit"),
            ("order=up", "order"),
            ("from=x", "from"),
            ("cursor=5", "cursor"),
            ("colour=red", "colour"),
            ("meta.=1", "meta."),
            ("from=9&to=3", "from"),
            ("limit=1&limit=2", "limit"),
        ] {
            assert_eq!(parse_query_params(bad).unwrap_err().param, param, "{bad}");
        }
    }

    #[test]
    fn tcp_lines() {
        let code = |line: &[u8]| parse_tcp_line(line).unwrap_err().code;
        assert_eq!(
            parse_tcp_line(br#"{"action":"write","message":"m","metadata":{"a":1}}"#),
            Ok(TcpRequest::Write { message: "m".into(), metadata: Some(r#"{"a":1}"#.into()) })
        );
        assert_eq!(
            parse_tcp_line(br#"{"action":"read","start_ts":"18446744073709551615","end_ts":3}"#),
            Ok(TcpRequest::Read { start_ts: u64::MAX, end_ts: 3 })
        );
        assert_eq!(code(b"not json"), "invalid_json");
        assert_eq!(code(b"[1,2]"), "invalid_json");
        assert_eq!(code(b"5"), "invalid_json");
        assert_eq!(code(b"{}"), "missing_action");
        assert_eq!(code(br#"{"action":5}"#), "unknown_action");
        assert_eq!(code(br#"{"action":"delete"}"#), "unknown_action");
        assert_eq!(code(br#"{"action":"write"}"#), "missing_message");
        assert_eq!(code(br#"{"action":"write","message":5}"#), "missing_message");
        assert_eq!(code(br#"{"action":"write","message":"m","metadata":5}"#), "write_log_error");
        assert_eq!(code(br#"{"action":"read","end_ts":1}"#), "missing_start_ts");
        assert_eq!(code(br#"{"action":"read","start_ts":1}"#), "missing_end_ts");
        assert_eq!(code(br#"{"action":"read","start_ts":-1,"end_ts":1}"#), "invalid_start_ts");
        assert_eq!(code(br#"{"action":"read","start_ts":1,"end_ts":"1x"}"#), "invalid_end_ts");
        let big = format!(
            r#"{{"action":"write","message":"{}"}}"#,
            "x".repeat(TCP_MESSAGE_BYTES_MAX + 1)
        );
        assert_eq!(code(big.as_bytes()), "message_too_large");
        assert_eq!(code(&vec![b' '; TCP_LINE_BYTES_MAX + 1]), "request_too_large");
        let unknown = parse_tcp_line(br#"{"action":5}"#).unwrap_err();
        assert_eq!(unknown.detail.unwrap()["given_action"], 5);
    }
}
