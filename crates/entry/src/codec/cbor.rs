//! The CBOR codec (RFC 8949): a four-item array per entry.
//!
//! # Layout
//!
//! ```text
//! array(4)                      0x84
//!   unsigned  timestamp_ms      major 0, shortest form
//!   unsigned  seq               major 0, shortest form
//!   text      message           major 3, definite length, UTF-8
//!   text      metadata | null   major 3 (the exact JSON object text), or simple value 22 (0xf6)
//! ```
//!
//! An entry of key `1700000000000-42`, message `"hi"` and no metadata is 16 bytes:
//! `84 1b 00 00 01 8b cf e5 68 00 18 2a 62 68 69 f6` (9 bytes of timestamp, 2 of seq, 3 of
//! message, 1 of null, 1 of array header).
//!
//! Headers are read and written with `ciborium-ll`. The decoder accepts any well-formed
//! integer width (not only the shortest) and refuses indefinite-length items, tags, floats and
//! every other type, trailing bytes, invalid UTF-8 and metadata that is not a JSON object.
//!
//! # Hostile lengths
//!
//! A text header declares its length before its bytes; the decoder compares that length with
//! the bytes left *before* looking at them, so a 9-byte input declaring a 16 EiB string fails at
//! once with [`CodecError::Truncated`]. Text is borrowed from the input, never copied, so
//! decoding allocates nothing.

use std::borrow::Cow;
use std::convert::Infallible;

use ciborium_ll::{Decoder, Encoder, Header, simple};

use super::{CodecError, CodecId, EntryCodec, metadata_field, utf8_field};
use crate::{Entry, Key};

const CODEC: CodecId = CodecId::Cbor;

/// Items in the entry array.
const ARRAY_ITEMS: usize = 4;

/// A four-item CBOR array per entry (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct CborCodec;

/// Appends to a `Vec`, which cannot fail. (Our own type, so the code does not depend on which
/// `ciborium-io` features other crates of the build enable.)
struct Sink<'a>(&'a mut Vec<u8>);

impl ciborium_io::Write for Sink<'_> {
    type Error = Infallible;

    fn write_all(&mut self, data: &[u8]) -> Result<(), Infallible> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Reads from a slice; running out is the only error.
struct Source<'a>(&'a [u8]);

/// The input ended inside a header.
struct EndOfInput;

impl ciborium_io::Read for Source<'_> {
    type Error = EndOfInput;

    fn read_exact(&mut self, data: &mut [u8]) -> Result<(), EndOfInput> {
        let (head, rest) = self.0.split_at_checked(data.len()).ok_or(EndOfInput)?;
        data.copy_from_slice(head);
        self.0 = rest;
        Ok(())
    }
}

/// Bytes of the header that `initial` (its first byte) starts, from its additional-info bits.
fn header_bytes(initial: u8) -> u64 {
    match initial & 0x1f {
        24 => 2,
        25 => 3,
        26 => 5,
        27 => 9,
        _ => 1,
    }
}

/// A short description of a header for error messages.
fn describe(header: Header) -> String {
    match header {
        Header::Positive(n) => format!("unsigned integer {n}"),
        Header::Negative(_) => "negative integer".to_owned(),
        Header::Float(_) => "float".to_owned(),
        Header::Simple(simple::NULL) => "null".to_owned(),
        Header::Simple(n) => format!("simple value {n}"),
        Header::Tag(n) => format!("tag {n}"),
        Header::Break => "break".to_owned(),
        Header::Bytes(_) => "byte string".to_owned(),
        Header::Text(None) => "indefinite-length text".to_owned(),
        Header::Text(Some(_)) => "text".to_owned(),
        Header::Array(None) => "indefinite-length array".to_owned(),
        Header::Array(Some(n)) => format!("array of {n} items"),
        Header::Map(_) => "map".to_owned(),
    }
}

/// A cursor over the input that reads one entry's items.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// The next header, and the offset it starts at.
    fn header(&mut self) -> Result<(Header, usize), CodecError> {
        let start = self.at;
        let rest = &self.bytes[start..];
        let Some(&initial) = rest.first() else {
            return Err(CodecError::truncated(CODEC, start, 1, 0));
        };
        let mut decoder = Decoder::from(Source(rest));
        match decoder.pull() {
            Ok(header) => {
                self.at += decoder.offset();
                Ok((header, start))
            }
            Err(ciborium_ll::Error::Io(EndOfInput)) => {
                Err(CodecError::truncated(CODEC, start, header_bytes(initial), rest.len()))
            }
            Err(ciborium_ll::Error::Syntax(_)) => Err(CodecError::malformed(
                CODEC,
                start,
                format!("invalid CBOR initial byte {initial:#04x}"),
            )),
        }
    }

    /// An unsigned integer, for `field`.
    fn unsigned(&mut self, field: &str) -> Result<u64, CodecError> {
        match self.header()? {
            (Header::Positive(n), _) => Ok(n),
            (other, at) => Err(unexpected(at, field, "an unsigned integer", other)),
        }
    }

    /// The `len` bytes of a text item whose header was just read, checked against the bytes
    /// left before they are touched, and the offset they start at.
    fn text_body(&mut self, len: usize, field: &str) -> Result<(&'a str, usize), CodecError> {
        let start = self.at;
        let available_bytes = self.bytes.len() - start;
        if len > available_bytes {
            return Err(CodecError::truncated(CODEC, start, len as u64, available_bytes));
        }
        self.at += len;
        Ok((utf8_field(CODEC, &self.bytes[start..self.at], start, field)?, start))
    }
}

/// The error for finding `found` at `at` where `field` (of type `expected`) should be.
fn unexpected(at: usize, field: &str, expected: &str, found: Header) -> CodecError {
    CodecError::malformed(
        CODEC,
        at,
        format!("{field}: expected {expected}, found {}", describe(found)),
    )
}

impl EntryCodec for CborCodec {
    fn id(&self) -> CodecId {
        CODEC
    }

    /// Appends the array described above. The metadata text is copied verbatim; it must be a
    /// JSON object (as [`Limits::check`](crate::Limits::check) ensures) for the bytes to decode.
    fn encode(&self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        let metadata_bytes = entry.metadata.as_ref().map_or(0, |m| m.len());
        out.reserve(32 + entry.message.len() + metadata_bytes);
        let mut encoder = Encoder::from(Sink(out));
        let written: Result<(), Infallible> = (|| {
            encoder.push(Header::Array(Some(ARRAY_ITEMS)))?;
            encoder.push(Header::Positive(entry.key.timestamp_ms))?;
            encoder.push(Header::Positive(entry.key.seq))?;
            encoder.text(&entry.message, None)?;
            match &entry.metadata {
                Some(metadata) => encoder.text(metadata, None),
                None => encoder.push(Header::Simple(simple::NULL)),
            }
        })();
        match written {
            Ok(()) => {}
            Err(never) => match never {},
        }
    }

    fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        decode(bytes, true)
    }

    fn decode_trusted<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        decode(bytes, false)
    }
}

/// Decodes the array above, checking the metadata is an object when `check_metadata`.
fn decode(bytes: &[u8], check_metadata: bool) -> Result<Entry<'_>, CodecError> {
    let mut reader = Reader { bytes, at: 0 };
    match reader.header()? {
        (Header::Array(Some(ARRAY_ITEMS)), _) => {}
        (other, at) => {
            return Err(unexpected(at, "entry", "an array of 4 items", other));
        }
    }
    let timestamp_ms = reader.unsigned("timestamp_ms")?;
    let seq = reader.unsigned("seq")?;
    let (message, _) = match reader.header()? {
        (Header::Text(Some(len)), _) => reader.text_body(len, "message")?,
        (other, at) => return Err(unexpected(at, "message", "text", other)),
    };
    let metadata = match reader.header()? {
        (Header::Text(Some(len)), _) => {
            let (text, at) = reader.text_body(len, "metadata")?;
            if check_metadata {
                metadata_field(CODEC, text, at)?;
            }
            Some(Cow::Borrowed(text))
        }
        (Header::Simple(simple::NULL), _) => None,
        (other, at) => return Err(unexpected(at, "metadata", "text or null", other)),
    };
    if reader.at != bytes.len() {
        return Err(CodecError::malformed(
            CODEC,
            reader.at,
            format!("{} trailing bytes after the entry", bytes.len() - reader.at),
        ));
    }
    Ok(Entry { key: Key::new(timestamp_ms, seq), message: Cow::Borrowed(message), metadata })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entry: &Entry<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        CborCodec.encode(entry, &mut out);
        out
    }

    #[test]
    fn layout_matches_the_docs() {
        let entry = Entry::new(Key::new(1_700_000_000_000, 42), "hi", None::<&str>);
        let bytes = encode(&entry);
        assert_eq!(
            bytes,
            [
                0x84, 0x1b, 0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x18, 0x2a, 0x62, b'h', b'i',
                0xf6
            ]
        );
        let with = Entry::new(Key::new(1, 2), "", Some("{}"));
        assert_eq!(encode(&with), [0x84, 0x01, 0x02, 0x60, 0x62, b'{', b'}']);
        for entry in [entry, with] {
            let bytes = encode(&entry);
            let decoded = CborCodec.decode(&bytes).unwrap();
            assert!(matches!(decoded.message, Cow::Borrowed(_)));
            assert_eq!(decoded, entry);
        }
    }

    #[test]
    fn wider_integers_are_accepted() {
        // timestamp 1 written in 8 bytes, seq 2 in 2 bytes.
        let bytes = [0x84, 0x1b, 0, 0, 0, 0, 0, 0, 0, 1, 0x19, 0, 2, 0x60, 0xf6];
        assert_eq!(CborCodec.decode(&bytes), Ok(Entry::new(Key::new(1, 2), "", None::<&str>)));
    }

    #[test]
    fn a_huge_declared_length_fails_fast() {
        // array(4), 0, 0, text of 2^64-1 bytes (on 64-bit) followed by nothing.
        let bytes = [0x84, 0x00, 0x00, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            CborCodec.decode(&bytes),
            Err(CodecError::Truncated {
                codec: CodecId::Cbor,
                offset: 12,
                needed_bytes: u64::MAX,
                available_bytes: 0
            })
        );
        // A 4 GiB string in a 5-byte header.
        let bytes = [0x84, 0x00, 0x00, 0x7a, 0xff, 0xff, 0xff, 0xff, b'x'];
        assert!(matches!(
            CborCodec.decode(&bytes),
            Err(CodecError::Truncated {
                offset: 8,
                needed_bytes: 0xffff_ffff,
                available_bytes: 1,
                ..
            })
        ));
    }

    #[test]
    fn errors_name_what_and_where() {
        let cases: &[(&[u8], usize, &str)] = &[
            (&[0x83, 0, 0, 0x60], 0, "expected an array of 4 items, found array of 3 items"),
            (&[0x9f, 0, 0, 0x60, 0xf6, 0xff], 0, "indefinite-length array"),
            (&[0x84, 0x20, 0, 0x60, 0xf6], 1, "timestamp_ms: expected an unsigned integer"),
            (&[0x84, 0, 0xc1, 0, 0x60, 0xf6], 2, "seq: expected an unsigned integer, found tag 1"),
            (&[0x84, 0, 0, 0xf6, 0xf6], 3, "message: expected text, found null"),
            (&[0x84, 0, 0, 0x7f, 0x60, 0xff, 0xf6], 3, "indefinite-length text"),
            (&[0x84, 0, 0, 0x60, 0x40], 4, "metadata: expected text or null, found byte string"),
            (&[0x84, 0, 0, 0x61, 0xff, 0xf6], 4, "message is not UTF-8"),
            (&[0x84, 0, 0, 0x60, 0x62, b'[', b']'], 5, "must be a JSON object"),
            (&[0x84, 0, 0, 0x60, 0xf6, 0x00], 5, "1 trailing bytes"),
            (&[0x84, 0x1c], 1, "invalid CBOR initial byte 0x1c"),
        ];
        for &(bytes, offset, detail) in cases {
            match CborCodec.decode(bytes) {
                Err(CodecError::Malformed { codec: CodecId::Cbor, offset: at, detail: d }) => {
                    assert!(d.contains(detail), "{bytes:x?}: {d}");
                    assert_eq!(at, offset, "{bytes:x?}: {d}");
                }
                other => panic!("{bytes:x?}: {other:?}"),
            }
        }
        assert_eq!(
            CborCodec.decode(&[0x84, 0x1b, 0, 0]),
            Err(CodecError::truncated(CodecId::Cbor, 1, 9, 3))
        );
        assert_eq!(CborCodec.decode(&[]), Err(CodecError::truncated(CodecId::Cbor, 0, 1, 0)));
    }
}
