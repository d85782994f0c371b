//! The binary codec: a fixed header, then the text, decoded without copying.
//!
//! # Layout
//!
//! All integers are little-endian. The header is 21 bytes, or 25 when the entry has metadata;
//! the text follows it directly, and the encoding ends exactly where the text does.
//!
//! ```text
//!  offset  size  field
//!  ------  ----  -----------------------------------------------------------------
//!       0     8  timestamp_ms        u64 LE
//!       8     8  seq                 u64 LE
//!      16     1  flags               bit 0: metadata present; bits 1..=7 must be 0
//!      17     4  message_bytes  (m)  u32 LE
//!      21     4  metadata_bytes (d)  u32 LE, only when flags bit 0 is set
//!       h     m  message             UTF-8                 (h = 21, or 25 with metadata)
//!     h+m     d  metadata            UTF-8, one JSON object, exact text
//!
//!  0       8       16  17      21      25                25+m               25+m+d
//!  +-------+-------+---+-------+-------+-----------------+------------------+
//!  | ts_ms | seq   |fl | m     | d     | message ...     | metadata ...     |
//!  +-------+-------+---+-------+-------+-----------------+------------------+
//! ```
//!
//! Both lengths sit in the header, so one bounds check covers the whole entry, and a declared
//! length larger than the input is refused before anything is read or allocated.
//!
//! There is no checksum here: an entry is always read from a block whose checksum the table
//! reader verified first. There is no version either: a different layout gets a new
//! [`CodecId`], the byte each table records. Reserved flag bits are refused, so a future flag
//! cannot be silently ignored by this reader.
//!
//! # Decoding cost
//!
//! Decoding allocates nothing: message and metadata are [`Cow::Borrowed`] from the input after
//! UTF-8 validation. [`decode`](EntryCodec::decode) also checks the metadata is one JSON object
//! ([`validate_metadata`](crate::validate_metadata)), so a decoded entry always satisfies the
//! entry model; [`decode_trusted`](EntryCodec::decode_trusted), for checksummed bytes this
//! store wrote, skips that check, which is most of the cost (see the crate docs for figures).

use std::borrow::Cow;

use super::{CodecError, CodecId, EntryCodec, metadata_field, utf8_field};
use crate::{Entry, Key};

const CODEC: CodecId = CodecId::Binary;

/// Header bytes of an entry without metadata.
pub const HEADER_BYTES: usize = 21;
/// Header bytes of an entry with metadata.
pub const HEADER_WITH_METADATA_BYTES: usize = 25;
/// Flag bit: a metadata length and text follow.
const FLAG_METADATA: u8 = 1;
/// Offset of the flags byte.
const FLAGS_AT: usize = 16;
/// Offset of the message length.
const MESSAGE_BYTES_AT: usize = 17;
/// Offset of the metadata length, when present.
const METADATA_BYTES_AT: usize = 21;

/// logstore's own compact layout (see the [module docs](self)): 21 or 25 bytes of header,
/// zero-copy decoding.
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryCodec;

impl BinaryCodec {
    /// Bytes [`encode`](EntryCodec::encode) appends for `entry`.
    pub fn encoded_bytes(entry: &Entry<'_>) -> usize {
        let header =
            if entry.metadata.is_some() { HEADER_WITH_METADATA_BYTES } else { HEADER_BYTES };
        header + entry.payload_bytes()
    }
}

/// A text length as stored in the header.
///
/// # Panics
///
/// If `len` exceeds `u32::MAX`; [`Limits::check`](crate::Limits::check) refuses such text
/// whatever the configured limits ([`TEXT_BYTES_MAX`](crate::TEXT_BYTES_MAX)).
fn length_u32(len: usize, field: &str) -> [u8; 4] {
    match u32::try_from(len) {
        Ok(len) => len.to_le_bytes(),
        Err(_) => panic!("{field} of {len} bytes exceeds the binary codec's u32 length"),
    }
}

/// The 8 bytes at `at`; the caller has checked they exist.
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// The 4 bytes at `at`, as a length; the caller has checked they exist.
fn u32_at(bytes: &[u8], at: usize) -> usize {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word) as usize
}

impl EntryCodec for BinaryCodec {
    fn id(&self) -> CodecId {
        CODEC
    }

    /// Appends the layout above.
    ///
    /// # Panics
    ///
    /// If the message or metadata is longer than `u32::MAX` bytes, which an entry that passed
    /// [`Limits::check`](crate::Limits::check) never is.
    fn encode(&self, entry: &Entry<'_>, out: &mut Vec<u8>) {
        out.reserve(Self::encoded_bytes(entry));
        out.extend_from_slice(&entry.key.timestamp_ms.to_le_bytes());
        out.extend_from_slice(&entry.key.seq.to_le_bytes());
        let message_bytes = length_u32(entry.message.len(), "message");
        match &entry.metadata {
            None => {
                out.push(0);
                out.extend_from_slice(&message_bytes);
                out.extend_from_slice(entry.message.as_bytes());
            }
            Some(metadata) => {
                out.push(FLAG_METADATA);
                out.extend_from_slice(&message_bytes);
                out.extend_from_slice(&length_u32(metadata.len(), "metadata"));
                out.extend_from_slice(entry.message.as_bytes());
                out.extend_from_slice(metadata.as_bytes());
            }
        }
    }

    fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        decode(bytes, true)
    }

    fn decode_trusted<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        decode(bytes, false)
    }
}

/// Decodes the layout above, checking the metadata is an object when `check_metadata`.
fn decode(bytes: &[u8], check_metadata: bool) -> Result<Entry<'_>, CodecError> {
    if bytes.len() < HEADER_BYTES {
        return Err(CodecError::truncated(CODEC, 0, HEADER_BYTES as u64, bytes.len()));
    }
    let key = Key::new(u64_at(bytes, 0), u64_at(bytes, 8));
    let flags = bytes[FLAGS_AT];
    if flags & !FLAG_METADATA != 0 {
        return Err(CodecError::malformed(
            CODEC,
            FLAGS_AT,
            format!("reserved flag bits set in {flags:#04x}"),
        ));
    }
    let message_bytes = u32_at(bytes, MESSAGE_BYTES_AT);
    let has_metadata = flags & FLAG_METADATA != 0;
    let (header_bytes, metadata_bytes) = if has_metadata {
        if bytes.len() < HEADER_WITH_METADATA_BYTES {
            return Err(CodecError::truncated(
                CODEC,
                METADATA_BYTES_AT,
                4,
                bytes.len() - METADATA_BYTES_AT,
            ));
        }
        (HEADER_WITH_METADATA_BYTES, u32_at(bytes, METADATA_BYTES_AT))
    } else {
        (HEADER_BYTES, 0)
    };
    // Both lengths are below 2^32, so this sum cannot overflow a 64-bit usize; on 32-bit
    // targets it could, hence the checked form.
    let text_bytes = message_bytes.checked_add(metadata_bytes);
    let available_bytes = bytes.len() - header_bytes;
    match text_bytes {
        Some(text_bytes) if text_bytes == available_bytes => {}
        Some(text_bytes) if text_bytes < available_bytes => {
            return Err(CodecError::malformed(
                CODEC,
                header_bytes + text_bytes,
                format!("{} trailing bytes after the entry", available_bytes - text_bytes),
            ));
        }
        _ => {
            return Err(CodecError::truncated(
                CODEC,
                header_bytes,
                message_bytes as u64 + metadata_bytes as u64,
                available_bytes,
            ));
        }
    }
    let metadata_at = header_bytes + message_bytes;
    let (message, metadata) = match (has_metadata, texts(&bytes[header_bytes..], message_bytes)) {
        (true, Some((message, metadata))) => (message, Some(metadata)),
        (false, Some((message, _))) => (message, None),
        // Invalid text somewhere: validate each field alone to name the field and the offset.
        (_, None) => {
            let message =
                utf8_field(CODEC, &bytes[header_bytes..metadata_at], header_bytes, "message")?;
            let metadata = utf8_field(CODEC, &bytes[metadata_at..], metadata_at, "metadata")?;
            (message, has_metadata.then_some(metadata))
        }
    };
    if let (Some(text), true) = (metadata, check_metadata) {
        metadata_field(CODEC, text, metadata_at)?;
    }
    Ok(Entry { key, message: Cow::Borrowed(message), metadata: metadata.map(Cow::Borrowed) })
}

/// The message (the first `message_bytes` of `text`) and the metadata (the rest) as UTF-8,
/// validated in one pass, or `None` if either is not valid UTF-8.
///
/// Validating the two texts in one call is what makes it fast: `simdutf8` hands inputs
/// shorter than 64 bytes (most metadata) to `std`'s slower validator. The concatenation is
/// valid and the split falls on a character boundary exactly when both halves are valid.
fn texts(text: &[u8], message_bytes: usize) -> Option<(&str, &str)> {
    let text = simdutf8::basic::from_utf8(text).ok()?;
    text.is_char_boundary(message_bytes).then(|| text.split_at(message_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(entry: &Entry<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        BinaryCodec.encode(entry, &mut out);
        out
    }

    #[test]
    fn layout_matches_the_diagram() {
        let entry = Entry::new(Key::new(0x0102, 7), "hé", Some("{}"));
        let bytes = encode(&entry);
        let mut expected = Vec::new();
        expected.extend_from_slice(&0x0102u64.to_le_bytes());
        expected.extend_from_slice(&7u64.to_le_bytes());
        expected.push(1);
        expected.extend_from_slice(&3u32.to_le_bytes());
        expected.extend_from_slice(&2u32.to_le_bytes());
        expected.extend_from_slice("hé{}".as_bytes());
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), BinaryCodec::encoded_bytes(&entry));

        let plain = Entry::new(Key::new(1, 2), "x", None::<&str>);
        let bytes = encode(&plain);
        assert_eq!(bytes.len(), HEADER_BYTES + 1);
        assert_eq!(bytes[FLAGS_AT], 0);
        assert_eq!(BinaryCodec.decode(&bytes), Ok(plain));
    }

    #[test]
    fn decode_borrows_from_the_input() {
        let entry = Entry::new(Key::new(5, 6), "message", Some(r#"{"a": 1}"#));
        let bytes = encode(&entry);
        let decoded = BinaryCodec.decode(&bytes).unwrap();
        assert_eq!(decoded, entry);
        assert!(matches!(decoded.message, Cow::Borrowed(_)));
        assert!(matches!(decoded.metadata, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn a_character_split_between_message_and_metadata_is_rejected() {
        // "é" is C3 A9: the message ends with its first byte, the metadata starts with the
        // second, so the two texts together are valid UTF-8 but neither is alone.
        let bytes = encode(&Entry::new(Key::new(5, 6), "aé", Some("{}")));
        let message_at = HEADER_WITH_METADATA_BYTES;
        let mut split = bytes.clone();
        split[MESSAGE_BYTES_AT..MESSAGE_BYTES_AT + 4].copy_from_slice(&2u32.to_le_bytes());
        split[METADATA_BYTES_AT..METADATA_BYTES_AT + 4].copy_from_slice(&3u32.to_le_bytes());
        let err = BinaryCodec.decode(&split).unwrap_err();
        assert!(
            matches!(&err, CodecError::Malformed { offset, detail, .. }
                if *offset == message_at + 1 && detail == "message is not UTF-8"),
            "{err:?}"
        );
        // The same bytes with the lengths at the character boundary decode.
        assert_eq!(BinaryCodec.decode(&bytes).unwrap().message, "aé");
    }

    #[test]
    fn errors_name_the_offset() {
        let bytes = encode(&Entry::new(Key::new(5, 6), "abc", Some("{}")));

        let mut flags = bytes.clone();
        flags[FLAGS_AT] = 0x83;
        assert!(matches!(
            BinaryCodec.decode(&flags),
            Err(CodecError::Malformed { codec: CodecId::Binary, offset: 16, .. })
        ));

        let mut long = bytes.clone();
        long.push(b' ');
        assert!(matches!(BinaryCodec.decode(&long), Err(CodecError::Malformed { offset: 30, .. })));

        let mut utf8 = bytes.clone();
        utf8[26] = 0xff;
        assert!(matches!(BinaryCodec.decode(&utf8), Err(CodecError::Malformed { offset: 26, .. })));

        let mut not_object = bytes.clone();
        not_object[28..30].copy_from_slice(b"[]");
        let err = BinaryCodec.decode(&not_object).unwrap_err();
        assert!(matches!(err, CodecError::Malformed { offset: 28, .. }), "{err}");
        assert!(err.to_string().contains("must be a JSON object"), "{err}");
    }

    #[test]
    fn a_huge_declared_length_fails_without_allocating() {
        let mut bytes = encode(&Entry::new(Key::new(5, 6), "", None::<&str>));
        bytes[MESSAGE_BYTES_AT..MESSAGE_BYTES_AT + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            BinaryCodec.decode(&bytes),
            Err(CodecError::Truncated {
                codec: CodecId::Binary,
                offset: HEADER_BYTES,
                needed_bytes: u32::MAX as u64,
                available_bytes: 0
            })
        );
    }
}
