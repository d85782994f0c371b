//! Codecs: one entry to bytes and back, behind one trait.
//!
//! A table records the [`CodecId`] it was written with (one byte), so a reader finds the codec
//! with [`CodecId::codec`]. Every decoder rejects malformed bytes with a [`CodecError`], never a
//! panic, and never allocates more than the input's length justifies.

use crate::Entry;

pub mod binary;
pub mod cbor;
pub mod json;

pub use binary::BinaryCodec;
pub use cbor::CborCodec;
pub use json::JsonCodec;

/// The codecs a table can be written with. The discriminant is the byte stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum CodecId {
    /// JSON text (serde_json).
    Json = 1,
    /// CBOR (ciborium).
    Cbor = 2,
    /// logstore's own length-prefixed binary layout.
    Binary = 3,
}

impl CodecId {
    /// Every codec, in id order.
    pub const ALL: [CodecId; 3] = [CodecId::Json, CodecId::Cbor, CodecId::Binary];

    /// The id stored on disk.
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// The codec stored as `byte`, or an error naming the unknown byte.
    pub fn from_byte(byte: u8) -> Result<CodecId, CodecError> {
        CodecId::ALL
            .into_iter()
            .find(|id| id.as_byte() == byte)
            .ok_or(CodecError::UnknownCodec { id: byte })
    }

    /// The codec this id names.
    pub fn codec(self) -> &'static dyn EntryCodec {
        match self {
            CodecId::Json => &JsonCodec,
            CodecId::Cbor => &CborCodec,
            CodecId::Binary => &BinaryCodec,
        }
    }

    /// A short lowercase name (`json`, `cbor`, `binary`).
    pub fn name(self) -> &'static str {
        match self {
            CodecId::Json => "json",
            CodecId::Cbor => "cbor",
            CodecId::Binary => "binary",
        }
    }
}

impl std::fmt::Display for CodecId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why bytes did not decode as an entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A codec id byte that no codec has.
    #[error("unknown codec id {id}")]
    UnknownCodec {
        /// The byte found.
        id: u8,
    },
    /// The bytes end before the entry does.
    #[error(
        "{codec} entry truncated: needed {needed_bytes} bytes at offset {offset}, {available_bytes} available"
    )]
    Truncated {
        /// Which codec was decoding.
        codec: CodecId,
        /// Where in the input the missing field starts.
        offset: usize,
        /// Bytes the field needs.
        needed_bytes: u64,
        /// Bytes left in the input.
        available_bytes: usize,
    },
    /// The bytes are not a well-formed entry for this codec.
    #[error("malformed {codec} entry at offset {offset}: {detail}")]
    Malformed {
        /// Which codec was decoding.
        codec: CodecId,
        /// Where in the input the problem was found (0 when the codec cannot say).
        offset: usize,
        /// What was wrong.
        detail: String,
    },
}

/// Turns entries into bytes and back.
///
/// `encode` appends to `out` so a caller can pack many entries into one buffer; `decode` takes
/// exactly the bytes one `encode` produced and borrows from them where it can.
pub trait EntryCodec: Send + Sync {
    /// The id recorded on disk for this codec.
    fn id(&self) -> CodecId;

    /// Appends the encoding of `entry` to `out`.
    fn encode(&self, entry: &Entry<'_>, out: &mut Vec<u8>);

    /// Decodes one entry from exactly `bytes`; trailing bytes are an error.
    ///
    /// Every check is made: framing, lengths, UTF-8, and that the metadata is one JSON object.
    fn decode<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError>;

    /// [`decode`](EntryCodec::decode) without the check that the metadata is a JSON object,
    /// for bytes this store encoded itself and read back under a verified checksum.
    ///
    /// The engine checks every entry ([`Limits::check`](crate::Limits::check)) before it is
    /// written, and a table verifies each block's checksum before decoding it, so re-parsing
    /// the metadata of every entry read (about 60% of the binary codec's decoding time on the
    /// benchmark workload) proves nothing new. Framing, lengths and UTF-8 are still checked:
    /// on any input this returns an error or an entry, never panics and never allocates more
    /// than the input justifies; only an entry whose metadata is not an object may come back.
    ///
    /// The default is [`decode`](EntryCodec::decode); the JSON codec keeps it, since parsing
    /// the entry parses the metadata anyway.
    fn decode_trusted<'a>(&self, bytes: &'a [u8]) -> Result<Entry<'a>, CodecError> {
        self.decode(bytes)
    }
}

impl CodecError {
    /// The input ends `needed_bytes - available_bytes` bytes short of a field starting at `offset`.
    pub(crate) fn truncated(
        codec: CodecId,
        offset: usize,
        needed_bytes: u64,
        available_bytes: usize,
    ) -> Self {
        CodecError::Truncated { codec, offset, needed_bytes, available_bytes }
    }

    /// The input is not a well-formed entry; `detail` says why.
    pub(crate) fn malformed(codec: CodecId, offset: usize, detail: impl Into<String>) -> Self {
        CodecError::Malformed { codec, offset, detail: detail.into() }
    }
}

/// `bytes` (found at `offset` of the input) as UTF-8 text, or an error naming the first bad byte.
///
/// Validation is the largest cost of decoding a message, so valid text goes through
/// `simdutf8` (SIMD, selected at run time: several times faster than `std` on long text);
/// only invalid text pays for `std`'s slower pass, which finds the offset for the error.
pub(crate) fn utf8_field<'a>(
    codec: CodecId,
    bytes: &'a [u8],
    offset: usize,
    field: &str,
) -> Result<&'a str, CodecError> {
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return Ok(text);
    }
    std::str::from_utf8(bytes).map_err(|e| {
        CodecError::malformed(codec, offset + e.valid_up_to(), format!("{field} is not UTF-8"))
    })
}

/// Checks that `metadata` (found at `offset` of the input) is one JSON object.
pub(crate) fn metadata_field(
    codec: CodecId,
    metadata: &str,
    offset: usize,
) -> Result<(), CodecError> {
    crate::validate_metadata(metadata)
        .map_err(|e| CodecError::malformed(codec, offset, format!("metadata: {e}")))
}
