//! Parses arbitrary bytes as an HTTP ingest body, a TCP protocol line and a query string, and
//! checks the parsers' promises (see `logstore_server::fuzzing::parse_requests`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| logstore_server::fuzzing::parse_requests(data));
