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
