//! Replays the fuzz seed corpus (`fuzz/corpus/codec_*/`) through the functions the fuzz targets
//! call, so `cargo test` checks the same inputs on the stable toolchain.
//!
//! The seeds are written by `cargo test -p logstore-entry --test fuzz_corpus -- --ignored`;
//! crash inputs found by the fuzzer are added to the same folders by hand.

use std::path::{Path, PathBuf};

use logstore_entry::{CodecId, Entry, Key, fuzzing};

/// The corpus folder of the fuzz target for `codec`.
fn corpus_dir(codec: CodecId) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(format!("codec_{}", codec.name()))
}

fn replay(codec: CodecId) {
    let dir = corpus_dir(codec);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(files.len() >= 8, "{} holds only {} seeds", dir.display(), files.len());
    for file in files {
        let data = std::fs::read(&file).unwrap();
        eprintln!("{}", file.display());
        fuzzing::decode(codec, &data);
    }
}

#[test]
fn replay_json_corpus() {
    replay(CodecId::Json);
}

#[test]
fn replay_cbor_corpus() {
    replay(CodecId::Cbor);
}

#[test]
fn replay_binary_corpus() {
    replay(CodecId::Binary);
}

/// Valid entries the seeds encode.
fn seed_entries() -> Vec<(&'static str, Entry<'static>)> {
    vec![
        ("plain", Entry::new(Key::new(1_700_000_000_000, 1), "disk full", None::<&str>)),
        ("empty", Entry::new(Key::MIN, "", Some("{}"))),
        (
            "unicode",
            Entry::new(
                Key::new(1_700_000_000_001, 2),
                "naïve café 😀 \u{2028}",
                Some(r#"{"é":"€"}"#),
            ),
        ),
        (
            "escapes",
            Entry::new(
                Key::new(3, 4),
                "tab\tquote\"back\\slash\nnul\u{0}",
                Some("{\"a\":\"\\u0000\"}"),
            ),
        ),
        (
            "spaced_metadata",
            Entry::new(
                Key::new(5, 6),
                "m",
                Some(" {\n  \"a\" : [ 1 , 2.5e3 , null ] ,\t\"b\":{}\r\n} "),
            ),
        ),
        (
            "nested_metadata",
            Entry::new(Key::MAX, "deep", Some(r#"{"a":{"b":{"c":[[[{"d":true}]]]}}}"#)),
        ),
        ("long", Entry::new(Key::new(7, 8), "x".repeat(2_000), Some(r#"{"host":"node-1"}"#))),
    ]
}

/// Inputs a decoder must refuse, per codec.
fn hostile(codec: CodecId) -> Vec<(&'static str, Vec<u8>)> {
    let mut valid = Vec::new();
    codec.codec().encode(&seed_entries()[2].1, &mut valid);
    let mut trailing = valid.clone();
    trailing.push(0);
    let mut truncated = valid.clone();
    truncated.pop();
    let mut cases =
        vec![("trailing_byte", trailing), ("truncated", truncated), ("empty_input", vec![])];
    match codec {
        CodecId::Binary => {
            let mut huge = vec![0u8; 16];
            huge.push(0);
            huge.extend_from_slice(&u32::MAX.to_le_bytes());
            cases.push(("huge_length", huge));
            let mut array = Vec::new();
            codec.codec().encode(&Entry::new(Key::MIN, "m", Some("[1]")), &mut array);
            cases.push(("metadata_array", array));
            let mut utf8 = Vec::new();
            codec.codec().encode(&Entry::new(Key::MIN, "ab", None::<&str>), &mut utf8);
            let at = utf8.len() - 1;
            utf8[at] = 0xff;
            cases.push(("invalid_utf8", utf8));
        }
        CodecId::Cbor => {
            cases.push(("huge_length_4gib", vec![0x84, 0x00, 0x00, 0x7a, 0xff, 0xff, 0xff, 0xff]));
            cases.push((
                "huge_length_u64",
                vec![0x84, 0, 0, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ));
            cases.push(("indefinite_text", vec![0x84, 0, 0, 0x7f, 0x61, b'a', 0xff, 0xf6]));
            cases.push(("metadata_array", vec![0x84, 0, 0, 0x60, 0x63, b'[', b'1', b']']));
            cases.push(("invalid_utf8", vec![0x84, 0, 0, 0x61, 0xff, 0xf6]));
        }
        CodecId::Json => {
            cases.push((
                "metadata_array",
                br#"{"timestamp_ms":0,"seq":0,"message":"","metadata":[1]}"#.to_vec(),
            ));
            cases.push((
                "unknown_field",
                br#"{"timestamp_ms":0,"seq":0,"message":"","x":1}"#.to_vec(),
            ));
            cases.push((
                "lone_surrogate",
                br#"{"timestamp_ms":0,"seq":0,"message":"\ud800"}"#.to_vec(),
            ));
            cases.push((
                "invalid_utf8",
                b"{\"timestamp_ms\":0,\"seq\":0,\"message\":\"\xff\"}".to_vec(),
            ));
            cases.push(("negative_seq", br#"{"timestamp_ms":0,"seq":-1,"message":""}"#.to_vec()));
        }
        _ => {}
    }
    cases
}

#[test]
#[ignore = "writes the seed corpus into fuzz/corpus; run by hand after changing the seeds"]
fn write_seed_corpus() {
    for codec in CodecId::ALL {
        let dir = corpus_dir(codec);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, entry) in seed_entries() {
            let mut bytes = Vec::new();
            codec.codec().encode(&entry, &mut bytes);
            std::fs::write(dir.join(format!("seed_{name}")), bytes).unwrap();
        }
        for (name, bytes) in hostile(codec) {
            assert!(codec.codec().decode(&bytes).is_err(), "{codec} {name} decodes");
            std::fs::write(dir.join(format!("hostile_{name}")), bytes).unwrap();
        }
    }
}
