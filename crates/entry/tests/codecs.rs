//! Every codec against the same properties: exact round trips over arbitrary entries, no panic
//! on arbitrary or mutated bytes, every truncation refused.

use std::borrow::Cow;

use logstore_entry::{CodecError, CodecId, Entry, Key, Limits, fuzzing};
use proptest::prelude::*;
use serde_json::Value;

/// Messages: arbitrary Unicode, the characters JSON must escape, or empty.
fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[\\x00-\\x1f\"\\\\/\\x7f\u{80}-\u{10ffff}]{0,24}",
        1 => Just(String::new()),
        1 => ".{200,2000}",
    ]
}

/// JSON values up to four levels deep, with Unicode and escapes in strings and keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Appends `value` as JSON, putting whitespace drawn from `spaces` (cycled) around every token.
fn write_spaced(value: &Value, spaces: &[&str], next: &mut usize, out: &mut String) {
    let space = |out: &mut String, next: &mut usize| {
        if !spaces.is_empty() {
            out.push_str(spaces[*next % spaces.len()]);
            *next += 1;
        }
    };
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, next);
                write_spaced(item, spaces, next, out);
                space(out, next);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(out, next);
                out.push_str(&serde_json::to_string(key).unwrap());
                space(out, next);
                out.push(':');
                space(out, next);
                write_spaced(item, spaces, next, out);
                space(out, next);
            }
            out.push('}');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap()),
    }
}

/// Metadata: a JSON object printed with odd spacing (including before and after it), or none.
fn metadata() -> impl Strategy<Value = Option<String>> {
    let members = prop::collection::vec((any::<String>(), json_value()), 0..6);
    let spaces =
        prop::collection::vec(prop::sample::select(vec!["", " ", "\n", "\t", "\r\n  "]), 0..6);
    let object = (members, spaces).prop_map(|(members, spaces)| {
        let object = Value::Object(members.into_iter().collect());
        let mut text = String::new();
        let mut next = 0;
        if let Some(first) = spaces.first() {
            text.push_str(first);
        }
        write_spaced(&object, &spaces, &mut next, &mut text);
        if let Some(last) = spaces.last() {
            text.push_str(last);
        }
        text
    });
    prop_oneof![1 => Just(None), 3 => object.prop_map(Some)]
}

fn entry() -> impl Strategy<Value = Entry<'static>> {
    (any::<u64>(), any::<u64>(), message(), metadata())
        .prop_map(|(ts, seq, message, metadata)| Entry::new(Key::new(ts, seq), message, metadata))
}

fn encode(codec: CodecId, entry: &Entry<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    codec.codec().encode(entry, &mut out);
    out
}

fn codec() -> impl Strategy<Value = CodecId> {
    prop::sample::select(CodecId::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn round_trips_exactly(entry in entry()) {
        prop_assert_eq!(Limits::default().check(&entry), Ok(()));
        for codec in CodecId::ALL {
            fuzzing::round_trip(codec, &entry);
        }
    }

    #[test]
    fn encode_appends_without_touching_the_prefix(entry in entry(), codec in codec(), prefix in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut out = prefix.clone();
        codec.codec().encode(&entry, &mut out);
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        prop_assert_eq!(codec.codec().decode(&out[prefix.len()..]), Ok(entry));
    }

    #[test]
    fn every_truncation_is_refused(entry in entry(), codec in codec()) {
        let bytes = encode(codec, &entry);
        for len in 0..bytes.len() {
            let result = codec.codec().decode(&bytes[..len]);
            prop_assert!(result.is_err(), "{} accepted {} of {} bytes", codec, len, bytes.len());
            prop_assert!(codec.codec().decode_trusted(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(codec in codec(), data in prop::collection::vec(any::<u8>(), 0..300)) {
        fuzzing::decode(codec, &data);
    }

    /// Bytes that start as a valid encoding, then have bytes flipped, inserted or removed.
    #[test]
    fn mutated_encodings_never_panic(
        entry in entry(),
        codec in codec(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut bytes = encode(codec, &entry);
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.push(byte),
            }
        }
        fuzzing::decode(codec, &bytes);
    }
}

#[test]
fn largest_default_entry_round_trips() {
    let message = "é".repeat(512 * 1024); // 1 MiB of two-byte characters
    let mut metadata = String::from("{\"k\":\"");
    metadata.push_str(&"x".repeat((64 << 10) - 8));
    metadata.push_str("\"}");
    assert_eq!(message.len(), 1 << 20);
    assert_eq!(metadata.len(), 64 << 10);
    let entry = Entry::new(Key::MAX, message, Some(metadata));
    assert_eq!(Limits::default().check(&entry), Ok(()));
    for codec in CodecId::ALL {
        fuzzing::round_trip(codec, &entry);
    }
}

#[test]
fn binary_and_cbor_decode_without_copying() {
    let entry = Entry::new(Key::new(1, 2), "a \"quoted\"\nline", Some("{ \"a\" : 1 }"));
    for codec in [CodecId::Binary, CodecId::Cbor] {
        let bytes = encode(codec, &entry);
        let decoded = codec.codec().decode(&bytes).unwrap();
        assert!(matches!(decoded.message, Cow::Borrowed(_)), "{codec}");
        assert!(matches!(decoded.metadata, Some(Cow::Borrowed(_))), "{codec}");
    }
}

#[test]
fn trusted_decoding_skips_only_the_metadata_check() {
    let entry = Entry::new(Key::new(1, 2), "m", Some("[1, 2]"));
    for codec in CodecId::ALL {
        let bytes = encode(codec, &entry);
        let full = codec.codec().decode(&bytes);
        assert!(
            matches!(&full, Err(CodecError::Malformed { detail, .. }) if detail.contains("object")),
            "{codec}: {full:?}"
        );
        let trusted = codec.codec().decode_trusted(&bytes);
        match codec {
            CodecId::Json => assert_eq!(trusted, full),
            _ => assert_eq!(trusted, Ok(entry.clone())),
        }
    }
}

#[test]
fn codec_ids_name_their_codec() {
    for id in CodecId::ALL {
        assert_eq!(id.codec().id(), id);
        assert_eq!(CodecId::from_byte(id.as_byte()), Ok(id));
    }
    assert_eq!(CodecId::from_byte(0), Err(CodecError::UnknownCodec { id: 0 }));
}
