//! Decodes arbitrary bytes as a binary entry and checks the codec's promises (see
//! `logstore_entry::fuzzing::decode`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logstore_entry::fuzzing::decode(logstore_entry::CodecId::Binary, data)
});
