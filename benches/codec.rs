//! Entry codecs: encode and decode time per entry, and encoded size against the raw text.
//!
//! ```text
//! cargo bench -p logstore-benches --bench codec
//! ```
//!
//! The workload is [`logstore_benches::entries`]`(10_000, 42)`: messages of 16..=1,024 bytes,
//! metadata on every other entry. Each iteration encodes (or decodes) all 10,000 entries, so
//! the time per entry is the reported time divided by 10,000 (criterion's `thrpt` line gives
//! entries per second). Encoding appends every entry to one reused buffer, as a block builder
//! does; decoding reads each entry from its own slice of one buffer, as a block reader does.

use std::hint::black_box;
use std::ops::Range;

use criterion::{Criterion, Throughput, criterion_group};
use logstore_entry::{CodecId, Entry};

const ENTRIES: usize = 10_000;
const SEED: u64 = 42;

/// All entries encoded back to back, and where each one is.
fn encode_all(codec: CodecId, entries: &[Entry<'_>]) -> (Vec<u8>, Vec<Range<usize>>) {
    let codec = codec.codec();
    let mut buffer = Vec::new();
    let mut spans = Vec::with_capacity(entries.len());
    for entry in entries {
        let start = buffer.len();
        codec.encode(entry, &mut buffer);
        spans.push(start..buffer.len());
    }
    (buffer, spans)
}

/// Prints encoded bytes against payload bytes (message + metadata) for each codec, on the
/// generated workload and, when present, on the Loghub lines as messages without metadata.
fn print_sizes() {
    let generated = logstore_benches::entries(ENTRIES, SEED);
    let mut workloads = vec![("generated", generated)];
    if let Some(lines) = logstore_benches::loghub_lines() {
        let loghub = lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let key = logstore_entry::Key::new(1_700_000_000_000 + i as u64, i as u64 + 1);
                Entry::new(key, line, None::<&str>)
            })
            .collect();
        workloads.push(("loghub", loghub));
    }
    for (name, entries) in &workloads {
        let payload_bytes: usize = entries.iter().map(Entry::payload_bytes).sum();
        eprintln!(
            "sizes/{name}: {} entries, payload {payload_bytes} bytes ({:.1} per entry)",
            entries.len(),
            payload_bytes as f64 / entries.len() as f64
        );
        for codec in CodecId::ALL {
            let (buffer, _) = encode_all(codec, entries);
            let overhead_bytes = buffer.len() - payload_bytes;
            eprintln!(
                "sizes/{name}/{codec}: {} bytes, {:.4}x payload, +{:.2} bytes per entry",
                buffer.len(),
                buffer.len() as f64 / payload_bytes as f64,
                overhead_bytes as f64 / entries.len() as f64
            );
        }
    }
}

fn codecs(c: &mut Criterion) {
    let entries = logstore_benches::entries(ENTRIES, SEED);

    let mut group = c.benchmark_group("codec/encode");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for id in CodecId::ALL {
        let codec = id.codec();
        let mut buffer = Vec::with_capacity(encode_all(id, &entries).0.len());
        group.bench_function(id.name(), |b| {
            b.iter(|| {
                buffer.clear();
                for entry in &entries {
                    codec.encode(entry, &mut buffer);
                }
                black_box(buffer.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("codec/decode");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for id in CodecId::ALL {
        let codec = id.codec();
        let (buffer, spans) = encode_all(id, &entries);
        for (span, entry) in spans.iter().zip(&entries) {
            assert_eq!(codec.decode(&buffer[span.clone()]).as_ref(), Ok(entry));
        }
        group.bench_function(id.name(), |b| {
            b.iter(|| {
                for span in &spans {
                    let _ = black_box(codec.decode(black_box(&buffer[span.clone()])));
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("codec/decode_trusted");
    group.throughput(Throughput::Elements(ENTRIES as u64));
    for id in CodecId::ALL {
        let codec = id.codec();
        let (buffer, spans) = encode_all(id, &entries);
        group.bench_function(id.name(), |b| {
            b.iter(|| {
                for span in &spans {
                    let _ = black_box(codec.decode_trusted(black_box(&buffer[span.clone()])));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codecs);

fn main() {
    print_sizes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
