//! Opens arbitrary bytes as a table and reads all of it (see `logstore_sstable::fuzzing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logstore_sstable::fuzzing::open_and_read(data));
