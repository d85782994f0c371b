//! The limits an entry must respect before anything is written.

use crate::{Entry, MetadataError, validate_metadata};

/// Default largest message: 1 MiB.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 1 << 20;
/// Default largest metadata text: 64 KiB.
pub const METADATA_BYTES_MAX_DEFAULT: usize = 64 << 10;

/// Hard ceiling on a message or a metadata text, whatever [`Limits`] say: the binary codec stores
/// each length as a `u32`. [`Limits::check`] applies it on top of the configured limits.
pub const TEXT_BYTES_MAX: usize = u32::MAX as usize;

/// Size limits on an entry's text.
///
/// A limit above [`TEXT_BYTES_MAX`] acts as [`TEXT_BYTES_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes of UTF-8.
    pub message_bytes_max: usize,
    /// Largest metadata text accepted, in bytes.
    pub metadata_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            metadata_bytes_max: METADATA_BYTES_MAX_DEFAULT,
        }
    }
}

/// Why an entry is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The message is longer than [`Limits::message_bytes_max`].
    #[error("message of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    MessageTooLarge {
        /// The message's size.
        size_bytes: usize,
        /// The limit it exceeds.
        limit_bytes: usize,
    },
    /// The metadata is longer than [`Limits::metadata_bytes_max`].
    #[error("metadata of {size_bytes} bytes exceeds the limit of {limit_bytes} bytes")]
    MetadataTooLarge {
        /// The metadata's size.
        size_bytes: usize,
        /// The limit it exceeds.
        limit_bytes: usize,
    },
    /// The metadata is not one JSON object.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

impl Limits {
    /// Checks sizes first (cheap), then that the metadata is one JSON object.
    pub fn check(&self, entry: &Entry<'_>) -> Result<(), EntryError> {
        let size_bytes = entry.message.len();
        let limit_bytes = self.message_bytes_max.min(TEXT_BYTES_MAX);
        if size_bytes > limit_bytes {
            return Err(EntryError::MessageTooLarge { size_bytes, limit_bytes });
        }
        if let Some(metadata) = &entry.metadata {
            let size_bytes = metadata.len();
            let limit_bytes = self.metadata_bytes_max.min(TEXT_BYTES_MAX);
            if size_bytes > limit_bytes {
                return Err(EntryError::MetadataTooLarge { size_bytes, limit_bytes });
            }
            validate_metadata(metadata)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

    #[test]
    fn limits_are_inclusive_and_named() {
        let limits = Limits { message_bytes_max: 4, metadata_bytes_max: 2 };
        let at = Entry::new(Key::MIN, "abcd", Some("{}"));
        assert_eq!(limits.check(&at), Ok(()));
        let long = Entry::new(Key::MIN, "abcde", None::<&str>);
        assert_eq!(
            limits.check(&long),
            Err(EntryError::MessageTooLarge { size_bytes: 5, limit_bytes: 4 })
        );
        let meta = Entry::new(Key::MIN, "", Some("{ }"));
        assert_eq!(
            limits.check(&meta),
            Err(EntryError::MetadataTooLarge { size_bytes: 3, limit_bytes: 2 })
        );
        let array = Entry::new(Key::MIN, "", Some("[]"));
        assert!(matches!(limits.check(&array), Err(EntryError::Metadata(_))));
    }
}
