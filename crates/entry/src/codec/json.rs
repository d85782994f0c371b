//! The JSON codec: one JSON object per entry, readable by any JSON tool.
//!
//! # Layout
//!
//! ```text
//! {"timestamp_ms":1700000000000,"seq":42,"message":"disk full","metadata":{"host": "a"}}
//! {"timestamp_ms":1700000000001,"seq":43,"message":"no metadata","metadata":null}
//! ```
//!
//! The encoder writes the four members in this order with no whitespace of its own. `message`
//! is a JSON string (escaping `"`, `\` and control characters, as serde_json does); `metadata`
//! is the metadata text itself, byte for byte, or `null`.
//!
//! The decoder (serde_json) accepts the members in any order and whitespace between tokens, and
//! refuses unknown or repeated members, trailing bytes, invalid UTF-8 and metadata that is not an
//! object. A missing `metadata` member reads as `null`. The metadata text returned is the exact
//! span of the value in the input, including any whitespace that surrounds it up to the `:` and
//! the following `,` or `}`: an entry whose metadata starts or ends with whitespace therefore
//! round-trips exactly.
//!
//! # Decoding cost
//!
//! The message is borrowed from the input unless it contains an escape (then one allocation);
//! the metadata is always borrowed. Error offsets are byte offsets computed from serde_json's
//! line and column.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{CodecError, CodecId, EntryCodec, utf8_field};
use crate::{Entry, Key};

const CODEC: CodecId = CodecId::Json;

/// One JSON object per entry (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonCodec;

/// The entry as serde sees it on the way in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    timestamp_ms: u64,
    seq: u64,
    #[serde(borrow)]
    message: Cow<'a, str>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
}

impl EntryCodec for JsonCodec {
    fn id(&self) -> CodecId {
        CODEC
    }

    /// Appends the object described above. The metadata is copied verbatim: it must be a JSON
    /// object (as [`Limits::check`](crate::Limits::check) ensures), otherwise the bytes
    /// written do not decode.
    fn encode(&self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        let metadata_bytes = entry.metadata.as_ref().map_or(4, |m| m.len());
        out.reserve(72 + entry.message.len() + metadata_bytes);
        out.extend_from_slice(b"{\"timestamp_ms\":");
        push_decimal(entry.key.timestamp_ms, out);
        out.extend_from_slice(b",\"seq\":");
        push_decimal(entry.key.seq, out);
        out.extend_from_slice(b",\"message\":");
        push_json_string(&entry.message, out);
        out.extend_from_slice(b",\"metadata\":");
        match &entry.metadata {
            Some(metadata) => out.extend_from_slice(metadata.as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }

    fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        let text = utf8_field(CODEC, bytes, 0, "input")?;
        let wire: Wire<'a> = serde_json::from_str(text).map_err(|e| serde_error(text, &e))?;
        let metadata = match wire.metadata {
            None => None,
            Some(raw) => Some(Cow::Borrowed(metadata_span(text, raw.get())?)),
        };
        Ok(Entry { key: Key::new(wire.timestamp_ms, wire.seq), message: wire.message, metadata })
    }
}

/// Whitespace as JSON defines it.
fn is_json_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The metadata's text in `text`: the raw value `value` (a sub-slice of `text`, as serde_json
/// returns it) widened over the whitespace around it, once checked to be an object.
fn metadata_span<'a>(text: &'a str, value: &'a str) -> Result<&'a str, CodecError> {
    // serde_json borrows raw values from the input, so `value` lies inside `text`; the subtraction
    // finds where. Checked, so a violation of that would be an error, not a wrong slice.
    let start = (value.as_ptr() as usize)
        .checked_sub(text.as_ptr() as usize)
        .filter(|start| start + value.len() <= text.len())
        .ok_or_else(|| CodecError::malformed(CODEC, 0, "metadata not borrowed from the input"))?;
    if !value.starts_with('{') {
        let found = match value.as_bytes().first() {
            Some(b'[') => "array",
            Some(b'"') => "string",
            Some(b't' | b'f') => "boolean",
            _ => "number",
        };
        return Err(CodecError::malformed(
            CODEC,
            start,
            format!("metadata must be a JSON object, got {found}"),
        ));
    }
    let bytes = text.as_bytes();
    let mut from = start;
    while from > 0 && is_json_space(bytes[from - 1]) {
        from -= 1;
    }
    let mut to = start + value.len();
    while to < bytes.len() && is_json_space(bytes[to]) {
        to += 1;
    }
    // Whitespace is ASCII, so both ends stay on character boundaries.
    Ok(&text[from..to])
}

/// A serde_json error as a [`CodecError`] with a byte offset.
fn serde_error(text: &str, error: &serde_json::Error) -> CodecError {
    let offset = byte_offset(text, error.line(), error.column());
    if error.is_eof() {
        // serde_json stops at the end of input and cannot say how much more it needed: at least
        // one byte.
        return CodecError::truncated(CODEC, offset, 1, 0);
    }
    // serde_json's message ends with its own "at line L column C"; the offset replaces it.
    let detail = error.to_string();
    let detail = match detail.rfind(" at line ") {
        Some(at) => detail[..at].to_owned(),
        None => detail,
    };
    CodecError::malformed(CODEC, offset, detail)
}

/// The byte offset of serde_json's 1-based `line` and `column` (a column counts bytes; column 0
/// means the error is at the newline ending the previous line).
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        text.bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .nth(line - 2)
            .map_or(text.len(), |(at, _)| at + 1)
    };
    (line_start + column).saturating_sub(1).min(text.len())
}

/// Appends `value` in decimal.
fn push_decimal(mut value: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Whether `byte` must be escaped inside a JSON string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Where the first byte of `bytes` that must be escaped is. Eight bytes at a time: a word has
/// such a byte when one of its bytes is below 0x20 or equals `"` or `\`, tested with the usual
/// "has a zero byte" bit trick (which can flag a byte above a true hit, never below it, so the
/// first flag is exact).
fn escape_position(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES)
            & !(word ^ (ONES * u64::from(b'"')));
        let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES)
            & !(word ^ (ONES * u64::from(b'\\')));
        let hits = (control | quote | backslash) & HIGH;
        if hits != 0 {
            return Some(base + hits.trailing_zeros() as usize / 8);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| needs_escape(b)).map(|at| base + at)
}

/// Appends `text` as a JSON string: `"`, `\` and control characters escaped, as serde_json does.
fn push_json_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = text.as_bytes();
    while let Some(at) = escape_position(rest) {
        out.extend_from_slice(&rest[..at]);
        let byte = rest[at];
        rest = &rest[at + 1..];
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(byte >> 4) as usize]);
                out.push(HEX[(byte & 0xf) as usize]);
                continue;
            }
        };
        out.extend_from_slice(escape);
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entry: &Entry<'_>) -> String {
        let mut out = Vec::new();
        JsonCodec.encode(entry, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn layout_matches_the_docs() {
        let entry =
            Entry::new(Key::new(1_700_000_000_000, 42), "disk full", Some(r#"{"host": "a"}"#));
        assert_eq!(
            encode(&entry),
            r#"{"timestamp_ms":1700000000000,"seq":42,"message":"disk full","metadata":{"host": "a"}}"#
        );
        let plain = Entry::new(Key::new(0, u64::MAX), "", None::<&str>);
        assert_eq!(
            encode(&plain),
            r#"{"timestamp_ms":0,"seq":18446744073709551615,"message":"","metadata":null}"#
        );
    }

    #[test]
    fn escapes_match_serde_json() {
        let text: String = (0u8..0x80).map(char::from).chain("é€😀\u{2028}".chars()).collect();
        let mut ours = Vec::new();
        push_json_string(&text, &mut ours);
        assert_eq!(ours, serde_json::to_vec(&text).unwrap());
    }

    #[test]
    fn escape_position_finds_the_first() {
        for len in 0..24 {
            for at in 0..len {
                for special in [0u8, 0x1f, b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    // Bytes just above the classes must not be flagged.
                    if at + 1 < len {
                        bytes[at + 1] = 0x20;
                    }
                    assert_eq!(escape_position(&bytes), Some(at), "{bytes:?}");
                    let mut plain = vec![0x20u8; len];
                    plain[at] = [b'!', b'#', b']', 0x7f, 0xff][at % 5];
                    assert_eq!(escape_position(&plain), None, "{plain:?}");
                }
            }
        }
    }

    #[test]
    fn decimals() {
        for value in [0, 9, 10, 99, 100, 1_700_000_000_000, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(value, &mut out);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }

    #[test]
    fn borrows_unescaped_text() {
        let entry = Entry::new(Key::new(1, 2), "plain", Some("{}"));
        let bytes = encode(&entry);
        let decoded = JsonCodec.decode(bytes.as_bytes()).unwrap();
        assert!(matches!(decoded.message, Cow::Borrowed(_)));
        assert!(matches!(decoded.metadata, Some(Cow::Borrowed(_))));
        let escaped = Entry::new(Key::new(1, 2), "line\nbreak", None::<&str>);
        assert_eq!(JsonCodec.decode(encode(&escaped).as_bytes()), Ok(escaped));
    }

    #[test]
    fn accepts_other_member_order_and_whitespace() {
        let text = "{ \"metadata\" : {\"a\":1} ,\n \"seq\":2,\"message\":\"m\",\"timestamp_ms\":1}";
        let entry = JsonCodec.decode(text.as_bytes()).unwrap();
        assert_eq!(entry, Entry::new(Key::new(1, 2), "m", Some(" {\"a\":1} ")));
        let missing = r#"{"timestamp_ms":1,"seq":2,"message":"m"}"#;
        assert_eq!(JsonCodec.decode(missing.as_bytes()).unwrap().metadata, None);
    }

    #[test]
    fn metadata_whitespace_round_trips() {
        for metadata in [" {}", "{} ", "\n\t{ \"a\" :\r\n[1, 2] }\n "] {
            let entry = Entry::new(Key::new(3, 4), "m", Some(metadata));
            assert_eq!(JsonCodec.decode(encode(&entry).as_bytes()), Ok(entry));
        }
    }

    #[test]
    fn errors_name_what_and_where() {
        let cases: &[(&str, usize, &str)] = &[
            (r#"{"timestamp_ms":1,"seq":2,"message":"m","metadata":[1]}"#, 51, "got array"),
            (r#"{"timestamp_ms":1,"seq":2,"message":"m","metadata":"{}"}"#, 51, "got string"),
            (r#"{"timestamp_ms":1,"seq":2,"message":"m","extra":1}"#, 46, "unknown field"),
            (r#"{"timestamp_ms":1,"seq":2,"seq":3,"message":"m"}"#, 30, "duplicate field"),
            (r#"{"timestamp_ms":-1,"seq":2,"message":"m"}"#, 17, "invalid value"),
            (r#"{"seq":2,"message":"m"}"#, 22, "missing field"),
            ("{\"timestamp_ms\":1,\"seq\":2,\n\"message\":\"m\"} x", 42, "trailing"),
        ];
        for &(text, offset, detail) in cases {
            match JsonCodec.decode(text.as_bytes()) {
                Err(CodecError::Malformed { codec: CodecId::Json, offset: at, detail: d }) => {
                    assert!(d.contains(detail), "{text}: {d}");
                    assert_eq!(at, offset, "{text}: {d}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            JsonCodec.decode(br#"{"timestamp_ms":1,"seq""#),
            Err(CodecError::Truncated { codec: CodecId::Json, offset: 22, .. })
        ));
        assert!(matches!(
            JsonCodec.decode(b"{\"message\":\"\xff\"}"),
            Err(CodecError::Malformed { offset: 12, .. })
        ));
    }
}
