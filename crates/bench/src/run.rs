//! The `writeManyLogs` workload: write every entry one at a time, read them all back by the
//! full time range, read the newest 1,000 by a narrow range, verify both reads, and measure.
//!
//! One driver ([`drive`]) runs it on anything that implements [`Subject`]: the engine in each
//! version's configuration, and the peers. The floors ([`crate::floors`]) do the same steps in
//! the simplest code that could.

use crate::digest::Digest;
use crate::machine;
use crate::progress::Progress;
use crate::workload::InputEntry;
use anyhow::{Context, Result, bail};
use logstore_engine::{LogStore, Order, Query};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Entries the narrow read asks for: the newest 1,000.
pub const NEWEST_COUNT: usize = 1_000;
/// Times the narrow read is repeated; its median is reported (one read is ~0.1 ms, noisy).
pub const NEWEST_REPEATS: usize = 5;

/// A key as `(timestamp_ms, seq)`.
pub type KeyPair = (u64, u64);

/// What one of several writers returns: `(entry index, key)` per append, and latencies (ns).
type WriterResult = (Vec<(usize, KeyPair)>, Vec<u32>);

/// A store under test.
pub trait Subject: Sync {
    /// Appends one entry, durable as the configuration says, and returns its key.
    fn append(&self, entry: &InputEntry) -> Result<KeyPair>;
    /// Reads every entry, oldest first, into `digest`.
    fn read_all(&self, digest: &mut Digest) -> Result<()>;
    /// Reads the newest `count` entries at or after `from_ms`, newest first, into `digest`.
    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()>;
}

impl Subject for LogStore {
    fn append(&self, entry: &InputEntry) -> Result<KeyPair> {
        let key = LogStore::append(self, &entry.message, entry.metadata.as_deref())?;
        Ok((key.timestamp_ms, key.seq))
    }

    fn read_all(&self, digest: &mut Digest) -> Result<()> {
        read_query(self, &Query::new().time_range(0..=u64::MAX), digest)
    }

    fn read_newest(&self, from_ms: u64, count: usize, digest: &mut Digest) -> Result<()> {
        let query =
            Query::new().time_range(from_ms..=u64::MAX).order(Order::Descending).limit(count);
        read_query(self, &query, digest)
    }
}

/// Runs `query` on `store`, folding every entry into `digest` without copying it.
pub fn read_query(store: &LogStore, query: &Query, digest: &mut Digest) -> Result<()> {
    let mut iter = store.query(query)?;
    while let Some(entry) = iter.next_entry() {
        let e = entry?;
        digest.add(e.key.timestamp_ms, e.key.seq, &e.message, e.metadata.as_deref());
    }
    Ok(())
}

/// Everything one run of one case measured. Times in seconds, sizes in bytes.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Measurement {
    /// The case's id (`V1`, `floor-vec`, `engine`, `fjall`, ...).
    pub case: String,
    /// What it is, in a few words.
    pub label: String,
    /// Entries written.
    pub scale: u64,
    /// Threads appending.
    pub writers: usize,
    /// Wall time of all the writes.
    pub write_s: f64,
    /// Per-append latency, median and 99th percentile, µs (each writer's own appends).
    pub write_p50_us: Option<f64>,
    /// See `write_p50_us`.
    pub write_p99_us: Option<f64>,
    /// Wall time of the full-range read (verified).
    pub read_s: f64,
    /// Wall time of the newest-1,000 read (verified), median of [`NEWEST_REPEATS`].
    pub newest_s: f64,
    /// Entries the newest read returned.
    pub newest_count: u64,
    /// Bytes on disk after the writes and reads (allocated blocks; 0 for memory only).
    pub disk_bytes: u64,
    /// Bytes of text written (messages and metadata).
    pub input_bytes: u64,
    /// Resident memory once the input was generated, before the store was opened.
    pub input_rss_bytes: u64,
    /// Peak resident memory of the process (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// `peak_rss_bytes - input_rss_bytes`: what the store and the reads added at their peak.
    pub peak_above_input_bytes: u64,
    /// Whether the peak was reset after the input was generated (else it may include that).
    pub peak_reset: bool,
    /// Tables on disk after the writes, when the subject has tables.
    pub tables: Option<u64>,
    /// The engine's targets (issue 4), for the `engine` cases.
    pub engine: Option<crate::engine::EngineFigures>,
}

/// Room for the `n` keys the appends return, its pages written now (a `vec!` of zeros would
/// map them lazily), so that the harness's record of the keys counts in the memory baseline,
/// with the input it describes, and not in the peak of the store under test: at 1,000,000
/// entries it is 16 MB.
pub fn key_record(n: usize) -> Vec<KeyPair> {
    vec![(u64::MAX, u64::MAX); n]
}

/// Resident memory now, after resetting the peak to it: the baseline of
/// [`Measurement::peak_above_input_bytes`].
pub fn memory_baseline() -> (u64, bool) {
    let reset = machine::reset_peak_rss();
    (machine::rss_bytes().0, reset)
}

/// Writes `input` into `subject` with `writers` threads (entry `i` by thread `i % writers`),
/// then reads and verifies; see the module docs.
pub fn drive(
    subject: &dyn Subject,
    input: &[InputEntry],
    writers: usize,
    progress: &Progress,
) -> Result<Measurement> {
    let n = input.len();
    let writers = writers.clamp(1, n.max(1));
    // What the harness keeps per entry, resident before the memory baseline.
    let mut keys = key_record(n);
    let mut latencies_ns: Vec<u32> = vec![u32::MAX; n];
    latencies_ns.clear(); // its pages stay resident
    let (input_rss_bytes, peak_reset) = memory_baseline();

    progress.phase("write");
    let done = AtomicU64::new(0);
    let start = Instant::now();
    if writers == 1 {
        let mut prev = start;
        for (i, entry) in input.iter().enumerate() {
            keys[i] = subject.append(entry).with_context(|| format!("append of entry {i}"))?;
            let now = Instant::now();
            latencies_ns.push(now.duration_since(prev).as_nanos().min(u32::MAX as u128) as u32);
            prev = now;
            progress.tick(i as u64 + 1);
        }
    } else {
        let results: Vec<Result<WriterResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..writers)
                .map(|w| {
                    let done = &done;
                    s.spawn(move || -> Result<WriterResult> {
                        let mut mine = Vec::with_capacity(n / writers + 1);
                        let mut lat = Vec::with_capacity(n / writers + 1);
                        for i in (w..n).step_by(writers) {
                            let t = Instant::now();
                            let key = subject
                                .append(&input[i])
                                .with_context(|| format!("append of entry {i} by writer {w}"))?;
                            lat.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                            mine.push((i, key));
                            progress.tick(done.fetch_add(1, Ordering::Relaxed) + 1);
                        }
                        Ok((mine, lat))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("writer thread panicked")).collect()
        });
        for result in results {
            let (mine, lat) = result?;
            for (i, key) in mine {
                keys[i] = key;
            }
            latencies_ns.extend(lat);
        }
    }
    let write_s = start.elapsed().as_secs_f64();

    let expected = Expected::new(&keys, input, writers == 1)?;
    progress.phase("read");
    let (read_s, newest_s) = read_and_verify(subject, &expected)?;
    let (_, peak_rss_bytes) = machine::rss_bytes();
    let (p50, p99) = percentiles_us(&mut latencies_ns);
    Ok(Measurement {
        scale: n as u64,
        writers,
        write_s,
        write_p50_us: p50,
        write_p99_us: p99,
        read_s,
        newest_s,
        newest_count: expected.newest_count as u64,
        input_bytes: crate::workload::input_bytes(input),
        input_rss_bytes,
        peak_rss_bytes,
        peak_above_input_bytes: peak_rss_bytes.saturating_sub(input_rss_bytes),
        peak_reset,
        ..Measurement::default()
    })
}

/// What the reads of a run must return.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Every entry in key order.
    pub all: Digest,
    /// The newest [`NEWEST_COUNT`] (or all, if fewer), newest first.
    pub newest: Digest,
    /// The timestamp of the oldest of those: the narrow read's lower bound.
    pub from_ms: u64,
    /// How many the narrow read must return.
    pub newest_count: usize,
}

impl Expected {
    /// From the key each entry of `input` was given (`keys[i]` for `input[i]`). Keys must be
    /// unique, and increase with write order when there was one writer.
    pub fn new(keys: &[KeyPair], input: &[InputEntry], single_writer: bool) -> Result<Expected> {
        let n = input.len();
        assert_eq!(keys.len(), n, "one key per entry");
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| keys[i as usize]);
        if order.windows(2).any(|w| keys[w[0] as usize] == keys[w[1] as usize]) {
            bail!("two appends were given the same key");
        }
        if single_writer && keys.windows(2).any(|w| w[0] >= w[1]) {
            bail!("a single writer's keys did not increase with write order");
        }
        let fold = |idx: &mut dyn Iterator<Item = &u32>| {
            let mut d = Digest::default();
            for &i in idx {
                let (t, s) = keys[i as usize];
                let e = &input[i as usize];
                d.add(t, s, &e.message, e.metadata.as_deref());
            }
            d
        };
        let newest_count = NEWEST_COUNT.min(n);
        Ok(Expected {
            all: fold(&mut order.iter()),
            newest: fold(&mut order[n - newest_count..].iter().rev()),
            from_ms: order.get(n - newest_count).map_or(0, |&i| keys[i as usize].0),
            newest_count,
        })
    }
}

/// Reads everything (once) and the newest entries ([`NEWEST_REPEATS`] times) from `subject`,
/// verifies every read against `expected`, and returns the full read's time and the narrow
/// read's median, in seconds.
pub fn read_and_verify(subject: &dyn Subject, expected: &Expected) -> Result<(f64, f64)> {
    let (read_s, digest) = timed(|d| subject.read_all(d))?;
    digest.verify(&expected.all, "the full-range read")?;
    let mut newest_times = Vec::with_capacity(NEWEST_REPEATS);
    for _ in 0..NEWEST_REPEATS {
        let (t, digest) =
            timed(|d| subject.read_newest(expected.from_ms, expected.newest_count, d))?;
        digest.verify(&expected.newest, "the newest-1,000 read")?;
        newest_times.push(t);
    }
    Ok((read_s, median(&mut newest_times)))
}

/// Runs `read` into a fresh digest and times it.
pub fn timed(read: impl FnOnce(&mut Digest) -> Result<()>) -> Result<(f64, Digest)> {
    let mut digest = Digest::default();
    let start = Instant::now();
    read(&mut digest)?;
    Ok((start.elapsed().as_secs_f64(), digest))
}

/// The median of `values` (the mean of the middle two for an even count); 0 if empty.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// The median and 99th percentile of `ns`, in µs.
fn percentiles_us(ns: &mut [u32]) -> (Option<f64>, Option<f64>) {
    if ns.is_empty() {
        return (None, None);
    }
    ns.sort_unstable();
    let at = |q: f64| f64::from(ns[((ns.len() - 1) as f64 * q).round() as usize]) / 1_000.0;
    (Some(at(0.5)), Some(at(0.99)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
        let mut ns: Vec<u32> = (1..=100).map(|i| i * 1_000).collect();
        let (p50, p99) = percentiles_us(&mut ns);
        assert_eq!((p50, p99), (Some(51.0), Some(99.0)));
    }
}
