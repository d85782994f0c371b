//! Opens arbitrary bytes as the segment of a log in every recovery mode and replays it (see
//! `logstore_wal::fuzzing::segment`). Run with an allocation cap, so that a length believed from
//! the input fails the run: `cargo +nightly fuzz run wal_segment -- -malloc_limit_mb=16`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logstore_wal::fuzzing::segment(data));
