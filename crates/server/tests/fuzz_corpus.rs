//! Replays the seed corpus of the `server_requests` fuzz target (`fuzz/corpus/server_requests/`)
//! through the function the target calls, so the stable test suite runs the same checks.

use std::path::PathBuf;

#[test]
fn server_requests_corpus() {
    let corpus =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/server_requests");
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("{}: {e}", corpus.display()))
        .map(|item| item.unwrap().path())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "the corpus lost its seeds: {seeds:?}");
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        logstore_server::fuzzing::parse_requests(&data);
    }
    // Each seed also with its last byte cut off and with a byte flipped in the middle, the
    // mutations a fuzzer starts with.
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        if let Some((_, prefix)) = data.split_last() {
            logstore_server::fuzzing::parse_requests(prefix);
        }
        for flip in [0x01, 0x20, 0x80] {
            let mut mutated = data.clone();
            if let Some(byte) = mutated.get_mut(data.len() / 2) {
                *byte ^= flip;
                logstore_server::fuzzing::parse_requests(&mutated);
            }
        }
    }
}
