//! Replays the seed corpus of the `wal_segment` fuzz target (`fuzz/corpus/wal_segment/`)
//! through [`logstore_wal::fuzzing::segment`] on stable, measuring the heap each input makes
//! recovery use.
//!
//! The corpus is made by the real log (`make_corpus` below, ignored by default): regenerate it
//! after a format change with
//! `cargo test -p logstore-wal --test fuzz_corpus -- --ignored make_corpus`.

use logstore_fs::{FaultFs, FileSystem};
use logstore_wal::{Durability, Wal, WalOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Counts the live heap bytes of each thread and their high-water mark, to bound what an input
/// makes recovery allocate (per thread, so the other tests running meanwhile do not count).
struct PeakAlloc;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread (negative if it frees others' memory).
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the counters may be gone while the thread is being torn down.
    let _ = LIVE_BYTES.try_with(|live| {
        live.set(live.get() + delta);
        let _ = PEAK_BYTES.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

// SAFETY: every call is forwarded to `System` with the caller's arguments; the counters are
// only bookkeeping, in const-initialised thread-locals that never allocate.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }
}

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// What one input may make `segment` hold at once: each mode keeps the input a few times over
/// (the in-memory file's live and durable copies, the read window, the records replayed twice),
/// plus a fixed allowance for a new preallocated segment (`fuzzing::SEGMENT_BYTES_MAX`, also
/// held twice), options, paths and reports. Believing a length read from the input would blow
/// through this at once.
fn heap_bytes_allowed(input_bytes: usize) -> usize {
    16 * input_bytes + 16 * logstore_wal::fuzzing::SEGMENT_BYTES_MAX as usize + (32 << 10)
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/wal_segment")
}

#[test]
fn corpus_replays_within_the_heap_bound() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 10, "the corpus has only {} inputs", paths.len());
    for path in paths {
        let bytes = std::fs::read(&path).expect("a corpus file");
        let base = LIVE_BYTES.with(Cell::get);
        PEAK_BYTES.with(|peak| peak.set(base));
        logstore_wal::fuzzing::segment(&bytes);
        let used = (PEAK_BYTES.with(Cell::get) - base) as usize;
        let allowed = heap_bytes_allowed(bytes.len());
        assert!(
            used <= allowed,
            "{}: {used} heap bytes for {} bytes of input (allowed {allowed})",
            path.display(),
            bytes.len()
        );
    }
}

/// A segment as the real log writes it: the first segment of a log that got `requests`
/// (one payload: `append`, several: `append_batch`) and was closed. No preallocation unless
/// `preallocated_bytes` is given, to keep the files small.
fn real_segment(requests: &[&[&[u8]]], preallocated_bytes: Option<u64>) -> Vec<u8> {
    let fs = FaultFs::new();
    let dir = Path::new("/corpus/wal");
    let options = WalOptions {
        durability: Durability::None,
        segment_bytes_max: preallocated_bytes.unwrap_or(64 << 10),
        preallocate: preallocated_bytes.is_some(),
        fs: Arc::new(fs.clone()),
        ..WalOptions::default()
    };
    let wal = Wal::open(dir, options).unwrap();
    for request in requests {
        match request {
            [payload] => drop(wal.append(payload).unwrap()),
            batch => drop(wal.append_batch(batch).unwrap()),
        }
    }
    assert_eq!(wal.stats().segments, 1, "the corpus is one segment");
    wal.close().unwrap();
    let segments: Vec<String> =
        fs.list_dir(dir).unwrap().into_iter().filter(|name| name.ends_with(".wal")).collect();
    assert_eq!(segments, ["00000000000000000001.wal"]);
    fs.read_file(&dir.join("00000000000000000001.wal")).unwrap()
}

/// Offsets of the frames in a segment written by [`real_segment`].
fn frame_offsets(segment: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = logstore_wal::SEGMENT_HEADER_BYTES as usize;
    while at + logstore_wal::RECORD_HEADER_BYTES <= segment.len()
        && segment[at..at + logstore_wal::RECORD_HEADER_BYTES].iter().any(|&b| b != 0)
    {
        offsets.push(at);
        let len = u32::from_le_bytes(segment[at + 4..at + 8].try_into().unwrap()) as usize;
        at += logstore_wal::RECORD_HEADER_BYTES + len;
    }
    offsets
}

#[test]
#[ignore = "writes the seed corpus into the source tree; run after a format change"]
fn make_corpus() {
    let text: &[u8] = b"2026-11-24T00:00:00Z INFO connection accepted from 10.0.0.7 port 4242";
    let mixed = real_segment(
        &[
            &[b"first"],
            &[b""],
            &[b"second", b"third", b"fourth"],
            &[text],
            &[&[0u8; 3], &[0xFF; 200]],
            &[b"last"],
        ],
        None,
    );
    let frames = frame_offsets(&mixed);
    assert_eq!(frames.len(), 9);
    let batch_start = frames[2];
    let in_batch_payload = frames[3] + logstore_wal::RECORD_HEADER_BYTES + 2;
    let last_frame = frames[8];

    let mut inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", real_segment(&[], None)),
        ("empty-preallocated", real_segment(&[], Some(512))),
        ("one-record", real_segment(&[&[b"hello"]], None)),
        ("one-batch", real_segment(&[&[b"a", b"bb", b"ccc"]], None)),
        ("mixed", mixed.clone()),
        ("preallocated", real_segment(&[&[text], &[b"x", b"y"], &[b""]], Some(1024))),
        ("record-at-limit", real_segment(&[&[&[7u8; 1024]], &[b"after"]], None)),
        ("over-limit", real_segment(&[&[&[7u8; 1025]], &[b"after"]], None)),
    ];
    // Torn writes: cut in a frame header, in a payload, inside a batch, in the segment header.
    for (name, len) in [
        ("torn-in-frame", last_frame + 7),
        ("torn-in-payload", last_frame + logstore_wal::RECORD_HEADER_BYTES + 2),
        ("torn-in-batch", in_batch_payload),
        ("torn-at-batch-start", batch_start),
        ("torn-in-segment-header", 20),
    ] {
        inputs.push((name, mixed[..len].to_vec()));
    }
    // Bit flips: in a payload mid-log (valid records follow), a length, a kind byte, a sequence
    // number, the segment header's first_seq; and a run of zeros before a valid record.
    let flips = [
        ("flip-payload-mid-log", in_batch_payload, 0x01),
        ("flip-length", frames[4] + 5, 0x40),
        ("flip-kind", frames[1] + 8, 0x07),
        ("flip-seq", frames[5] + 12, 0x02),
        ("flip-first-seq", 20, 0x01),
    ];
    for (name, at, mask) in flips {
        let mut bytes = mixed.clone();
        bytes[at] ^= mask;
        inputs.push((name, bytes));
    }
    let mut hole = mixed.clone();
    hole[frames[1]..frames[3]].fill(0);
    inputs.push(("zeroed-hole", hole));

    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in inputs {
        logstore_wal::fuzzing::segment(&bytes);
        std::fs::write(dir.join(format!("{name}.wal")), bytes).unwrap();
    }
}

// Regressions of `RecoveryMode::SkipAnyCorruptedRecords`, the first found by the fuzz target
// (its input is `regression-skip-then-torn-batch.wal` in the corpus).

fn skip_any_options(fs: &FaultFs, segment_bytes_max: u64) -> WalOptions {
    WalOptions {
        durability: Durability::None,
        segment_bytes_max,
        preallocate: false,
        recovery_mode: logstore_wal::RecoveryMode::SkipAnyCorruptedRecords,
        fs: Arc::new(fs.clone()),
        ..WalOptions::default()
    }
}

/// A fresh in-memory file system whose log directory `dir` holds `bytes` as segment 1.
fn fs_with_segment(dir: &Path, bytes: &[u8]) -> (FaultFs, std::path::PathBuf) {
    let fs = FaultFs::new();
    fs.create_dir_all(dir).unwrap();
    let path = dir.join("00000000000000000001.wal");
    drop(fs.open(&path, logstore_fs::OpenMode::CreateNew).unwrap());
    fs.overwrite_file(&path, bytes).unwrap();
    (fs, path)
}

fn all_records(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    let first = wal.stats().first_seq;
    wal.replay(first).unwrap().map(|r| r.map(|r| (r.seq, r.payload)).unwrap()).collect()
}

/// Damage skipped, then a torn batch cut off as the tail: recovery kept the sequence number
/// read after the skip (`next_seq` 3) but cut the file before the skip, so the next append
/// (seq 3) followed record 1 directly, and the next open took it for damage and dropped it.
#[test]
fn regression_skip_any_skip_then_torn_tail_loses_the_next_append() {
    let fs = FaultFs::new();
    let dir = Path::new("/regression/wal");
    let path = dir.join("00000000000000000001.wal");
    let options = skip_any_options(&fs, 64 << 10);
    let wal = Wal::open(dir, options.clone()).unwrap();
    wal.append(b"first").unwrap();
    wal.append(b"second").unwrap();
    wal.append_batch(&[b"third".as_slice(), b"fourth"]).unwrap();
    wal.close().unwrap();
    let mut bytes = fs.read_file(&path).unwrap();
    let frames = frame_offsets(&bytes);
    bytes[frames[1] + 8] = 0; // record 2's kind: damage, with a valid batch after it
    bytes.truncate(frames[3] + 22); // the batch torn in its last record
    fs.overwrite_file(&path, &bytes).unwrap();

    let wal = Wal::open(dir, options.clone()).unwrap();
    assert_eq!(all_records(&wal), [(1, b"first".to_vec())]);
    assert_eq!(wal.next_seq(), 2, "the log goes on right after what it kept");
    assert_eq!(wal.append(b"appended").unwrap(), 2);
    wal.close().unwrap();

    let wal = Wal::open(dir, options).unwrap();
    assert_eq!(all_records(&wal), [(1, b"first".to_vec()), (2, b"appended".to_vec())]);
    assert!(wal.recovery().skipped.is_empty() && wal.recovery().torn_tail.is_none());
}

/// Damage at the end of a segment that is not the last: the records after it are in the next
/// segment, whose header starts past the skipped records. Recovery did not allow that gap and
/// dropped the whole (intact) next segment.
#[test]
fn regression_skip_any_damage_at_the_end_of_a_segment_keeps_the_next_segment() {
    let fs = FaultFs::new();
    let dir = Path::new("/regression/wal");
    // A 32-byte header and two records of 20 + 10 bytes fill a segment.
    let options = skip_any_options(&fs, 92);
    let wal = Wal::open(dir, options.clone()).unwrap();
    for payload in [b"record-01", b"record-02", b"record-03", b"record-04", b"record-05"] {
        wal.append(payload).unwrap();
    }
    assert_eq!(wal.stats().segments, 3);
    wal.close().unwrap();
    let first = dir.join("00000000000000000001.wal");
    let mut bytes = fs.read_file(&first).unwrap();
    let frames = frame_offsets(&bytes);
    assert_eq!(frames.len(), 2);
    bytes[frames[1] + 25] ^= 0x01; // record 2's payload: its checksum fails
    fs.overwrite_file(&first, &bytes).unwrap();

    let wal = Wal::open(dir, options).unwrap();
    let seqs: Vec<u64> = all_records(&wal).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [1, 3, 4, 5]);
    let report = wal.recovery();
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert!(report.dropped_segments.is_empty(), "{report:?}");
}

/// A segment header with a valid checksum but first sequence number 0 (found by the fuzz
/// target once it fixed up checksums): `PointInTime` kept the header, gave the next append
/// sequence number 0, which no frame may carry, and the next open dropped it.
#[test]
fn regression_header_with_first_seq_zero_is_damage() {
    let mut segment = real_segment(&[&[b"one"]], None);
    segment[20..28].copy_from_slice(&0u64.to_le_bytes());
    let crc = crc_fast::crc32_iscsi(&segment[..28]);
    segment[28..32].copy_from_slice(&crc.to_le_bytes());
    let dir = Path::new("/regression/wal");
    let (fs, path) = fs_with_segment(dir, &segment);

    let mut options = skip_any_options(&fs, 64 << 10);
    options.recovery_mode = logstore_wal::RecoveryMode::TolerateCorruptedTail;
    let error = Wal::open(dir, options.clone()).unwrap_err().to_string();
    assert!(error.contains("first sequence number 0"), "{error}");

    options.recovery_mode = logstore_wal::RecoveryMode::PointInTime;
    let wal = Wal::open(dir, options.clone()).unwrap();
    assert_eq!(wal.recovery().dropped_segments, [path]);
    assert_eq!(wal.append(b"appended").unwrap(), 1);
    wal.close().unwrap();
    let wal = Wal::open(dir, options).unwrap();
    assert_eq!(all_records(&wal), [(1, b"appended".to_vec())]);
}

/// The corpus's `mixed.wal` was written before the checksum moved from the `crc32c` crate's
/// two-step form (the frame's bytes, then the payload appended) to one pass of `crc-fast` over
/// both: it must still recover whole, every record with its payload, under the strictest mode.
#[test]
fn a_segment_written_by_the_earlier_checksum_code_recovers_whole() {
    let segment = std::fs::read(corpus_dir().join("mixed.wal")).expect("the corpus file");
    let dir = Path::new("/compat/wal");
    let (fs, _path) = fs_with_segment(dir, &segment);
    let mut options = skip_any_options(&fs, 64 << 10);
    options.recovery_mode = logstore_wal::RecoveryMode::AbsoluteConsistency;
    let wal = Wal::open(dir, options).unwrap();
    assert!(wal.recovery().skipped.is_empty() && wal.recovery().dropped_segments.is_empty());
    let text: &[u8] = b"2026-11-24T00:00:00Z INFO connection accepted from 10.0.0.7 port 4242";
    let expected: Vec<&[u8]> =
        vec![b"first", b"", b"second", b"third", b"fourth", text, &[0u8; 3], &[0xFF; 200], b"last"];
    let records = all_records(&wal);
    assert_eq!(
        records.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    assert_eq!(records.iter().map(|(_, p)| p.as_slice()).collect::<Vec<_>>(), expected);
}
