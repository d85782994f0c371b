//! The log entry shared by every logstore crate: its key, its limits, and the codecs that turn
//! it into bytes and back.
//!
//! A log entry is a [`Key`] (a millisecond timestamp plus a sequence number that orders entries
//! of the same millisecond by write order), a UTF-8 `message` and optional `metadata`, a JSON
//! object kept as the exact text the writer gave (key order and spacing included).
//!
//! [`Entry`] borrows or owns its text through [`Cow`], so one type serves the writer (owned),
//! the memtable (borrowed from its storage) and a table reader (borrowed from a decoded block
//! when the codec allows it).
//!
//! ```
//! use logstore_entry::{CodecId, Entry, Key, Limits};
//!
//! let entry = Entry::new(Key::new(1_700_000_000_000, 7), "disk full", Some(r#"{"host":"a"}"#));
//! Limits::default().check(&entry).unwrap();
//! assert_eq!(entry.key.to_string(), "1700000000000-7");
//!
//! // A table records the codec's id byte, and encodes its entries back to back.
//! let codec = CodecId::Binary.codec();
//! let mut block = Vec::new();
//! codec.encode(&entry, &mut block);
//! assert_eq!(block.len(), 25 + 9 + 12);
//!
//! // Reading back borrows the text from the block.
//! let codec = CodecId::from_byte(CodecId::Binary.as_byte()).unwrap().codec();
//! assert_eq!(codec.decode(&block).unwrap(), entry);
//! ```
//!
//! # Codecs
//!
//! A table is written with one codec and records its [`CodecId`] byte; [`CodecId::codec`] gives
//! the reader the same codec back. Each codec's layout is documented in its module:
//! [`codec::binary`] (a 21- or 25-byte header, then the text), [`codec::cbor`] (a four-item
//! array) and [`codec::json`] (one object, the metadata embedded verbatim). All three decode
//! without copying text (JSON copies a message only when it has escapes), refuse truncated,
//! malformed and trailing input with a [`CodecError`] naming the codec and the byte offset,
//! and never allocate by a length the input declares. [`EntryCodec::decode_trusted`] skips
//! re-checking that metadata is a JSON object, for checksummed bytes the store wrote itself.
//!
//! Per entry, on the benchmark workload (10,000 entries, messages of 16..=1,024 bytes, metadata
//! on every other entry, 554.6 bytes of text per entry):
//!
//! | codec  | encode | decode | decode_trusted | encoded size | on Loghub lines |
//! |--------|-------:|-------:|---------------:|-------------:|----------------:|
//! | binary |  49 ns | 103 ns |          65 ns | +23.0 B (1.042x) | +21.0 B (1.153x) |
//! | cbor   |  64 ns | 228 ns |         196 ns | +17.2 B (1.031x) | +16.1 B (1.117x) |
//! | json   | 178 ns | 300 ns |         341 ns | +67.9 B (1.122x) | +70.7 B (1.515x) |
//!
//! Times are `cargo bench -p logstore-benches --bench codec` (criterion's median for 10,000
//! entries, divided by 10,000), the best of the three to five runs made on a 2-core VM shared
//! with two other benchmark runs: they varied by up to 2x between runs. JSON's `decode_trusted`
//! is its `decode`. Instruction counts (callgrind, independent of load) rank the codecs the same
//! way: encode 195 / 521 / 1,702, decode 1,172 / 1,868 / 3,949, decode_trusted 539 / 1,234 /
//! 3,949 instructions per entry for binary / cbor / json. What `decode_trusted` saves is the
//! metadata check (serde_json over each metadata object); what remains of the binary codec's
//! decoding is mostly UTF-8 validation of the text. The Loghub column is the size overhead on
//! the 32,000 real log lines in `shared/data/loghub` (137.4 bytes each, no metadata).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod key;
mod limits;
mod metadata;

pub mod codec;
#[doc(hidden)]
pub mod fuzzing;

pub use codec::{BinaryCodec, CborCodec, CodecError, CodecId, EntryCodec, JsonCodec};
pub use key::{Key, KeyParseError};
pub use limits::{
    EntryError, Limits, MESSAGE_BYTES_MAX_DEFAULT, METADATA_BYTES_MAX_DEFAULT, TEXT_BYTES_MAX,
};
pub use metadata::{MetadataError, validate_metadata};

use std::borrow::Cow;

/// One log entry, borrowing or owning its text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry<'a> {
    /// Where the entry sorts: timestamp, then write order.
    pub key: Key,
    /// The log line, UTF-8.
    pub message: Cow<'a, str>,
    /// A JSON object as the writer gave it, byte for byte; `None` when the entry has none.
    pub metadata: Option<Cow<'a, str>>,
}

impl<'a> Entry<'a> {
    /// An entry borrowing (or owning, given `String`s) its message and metadata.
    ///
    /// This does not check limits or that the metadata is a JSON object: see [`Limits::check`].
    pub fn new(
        key: Key,
        message: impl Into<Cow<'a, str>>,
        metadata: Option<impl Into<Cow<'a, str>>>,
    ) -> Self {
        Entry { key, message: message.into(), metadata: metadata.map(Into::into) }
    }

    /// The same entry owning all of its text.
    pub fn into_owned(self) -> Entry<'static> {
        Entry {
            key: self.key,
            message: Cow::Owned(self.message.into_owned()),
            metadata: self.metadata.map(|m| Cow::Owned(m.into_owned())),
        }
    }

    /// A copy borrowing this entry's text (cheap: no allocation).
    pub fn borrowed(&self) -> Entry<'_> {
        Entry {
            key: self.key,
            message: Cow::Borrowed(&self.message),
            metadata: self.metadata.as_deref().map(Cow::Borrowed),
        }
    }

    /// Bytes of text the entry carries: message plus metadata (not the key).
    pub fn payload_bytes(&self) -> usize {
        self.message.len() + self.metadata.as_ref().map_or(0, |m| m.len())
    }
}
