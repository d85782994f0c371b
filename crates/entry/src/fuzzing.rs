//! What the fuzz targets in `fuzz/` run, and what `tests/fuzz_corpus.rs` replays on the seed
//! corpus so the stable test suite runs the same checks. Not part of the API.
//!
//! Each function panics when an invariant breaks; that panic is what the fuzzer reports.

use crate::{CodecError, CodecId, Entry, Limits, validate_metadata};

/// Decodes `data` with `codec` and checks everything a decoder promises:
///
/// - an error names `codec` and an offset within the input, and renders as text;
/// - [`decode_trusted`](crate::EntryCodec::decode_trusted) agrees with `decode` whenever
///   `decode` succeeds, and otherwise fails too or differs only by metadata that is not a JSON
///   object;
/// - a decoded entry passes [`Limits::check`] with unbounded sizes (its metadata is an object);
/// - re-encoded with every codec, it decodes to the same entry, and encoding is a fixed point
///   (encode, decode, encode gives the same bytes).
pub fn decode(codec: CodecId, data: &[u8]) {
    let implementation = codec.codec();
    assert_eq!(implementation.id(), codec);
    let full = implementation.decode(data);
    let trusted = implementation.decode_trusted(data);
    let entry = match full {
        Ok(entry) => entry,
        Err(error) => {
            check_error(codec, data, &error);
            match trusted {
                Err(trusted_error) => check_error(codec, data, &trusted_error),
                Ok(entry) => {
                    let metadata = entry.metadata.as_deref().unwrap_or("{}");
                    assert!(
                        validate_metadata(metadata).is_err(),
                        "decode_trusted accepted what decode refused ({error}) for a reason other \
                         than metadata"
                    );
                }
            }
            return;
        }
    };
    assert_eq!(trusted.as_ref(), Ok(&entry), "decode_trusted disagrees with decode");
    let unbounded = Limits { message_bytes_max: usize::MAX, metadata_bytes_max: usize::MAX };
    if let Err(error) = unbounded.check(&entry) {
        panic!("{codec} decoded an entry that fails Limits::check: {error}");
    }
    for other in CodecId::ALL {
        round_trip(other, &entry);
    }
}

/// Encodes `entry` with `codec`, decodes it back, and checks it is the same entry and that a
/// second encoding gives the same bytes.
pub fn round_trip(codec: CodecId, entry: &Entry<'_>) {
    let implementation = codec.codec();
    let mut bytes = Vec::new();
    implementation.encode(entry, &mut bytes);
    let decoded = match implementation.decode(&bytes) {
        Ok(decoded) => decoded,
        Err(error) => panic!("{codec} cannot decode its own encoding of {entry:?}: {error}"),
    };
    assert_eq!(&decoded, entry, "{codec} round trip changed the entry");
    assert_eq!(implementation.decode_trusted(&bytes).as_ref(), Ok(entry));
    let mut again = Vec::new();
    implementation.encode(&decoded, &mut again);
    assert_eq!(again, bytes, "{codec} encoding is not a fixed point");
}

fn check_error(codec: CodecId, data: &[u8], error: &CodecError) {
    let (named, offset) = match error {
        CodecError::Truncated { codec, offset, .. } => (*codec, *offset),
        CodecError::Malformed { codec, offset, .. } => (*codec, *offset),
        CodecError::UnknownCodec { .. } => panic!("a decoder returned UnknownCodec: {error}"),
    };
    assert_eq!(named, codec, "error names the wrong codec: {error}");
    assert!(offset <= data.len(), "error offset beyond the input ({} bytes): {error}", data.len());
    assert!(!error.to_string().is_empty());
}
