//! The write-ahead log on the real disk: synced appends against a plain `write` + `fdatasync`
//! loop, group commit with 32 appending threads, and unsynced append throughput.
//!
//! ```text
//! cargo bench -p logstore-benches --bench wal
//! ```
//!
//! Everything runs on [`StdFs`] in a fresh temporary directory (`$TMPDIR`, else `/tmp`; the
//! path is printed first), with [`WalOptions::default`] but for the durability: 64 MiB
//! segments, preallocated. Payloads are 512 bytes (plus the log's 20-byte frame) unless named
//! otherwise. Every benchmark times a whole run of `iters` appends (`iter_custom`), so the
//! reported time is the wall time per record, rotation to new segments included; the
//! `thrpt` line is records (or bytes) per second.
//!
//! - `wal/sync_512/wal`: one thread, `Durability::Sync`: each `append` returns after its
//!   `fdatasync`.
//! - `wal/sync_512/baseline`: the same bytes the simplest way: a file opened for append,
//!   `write` of 512 bytes then `fdatasync`, per record; the file grows every time, so every
//!   sync also commits a new size.
//! - `wal/sync_512/threads_32`: 32 threads appending concurrently in `Durability::Sync`; the
//!   `iters` appends are shared out between them and timed from a common start to the last
//!   one's return: the time per record is the inverse of the log's total throughput.
//! - `wal/none/{512,4096}`: one thread, `Durability::None` (each append is one `pwrite` to the
//!   page cache; a sync only when a segment fills). Segments are truncated between samples
//!   so the disk does not fill.
//! - `wal/none/floor` (printed, not a criterion benchmark): `None` appends against the same
//!   I/O without the log, alternating 16 MiB blocks over 12 rounds: `pwrite` of the same framed
//!   records into preallocated 64 MiB files, writeback started every MiB and a sync per file, as
//!   the log does; finished files are removed between blocks, untimed, as the log's
//!   segments are. It prints both in MB/s (10^6 bytes, the unit of the target) and their ratio:
//!   what the machine allows for this I/O is the floor the log's figure is read against.
//!
//! Then it prints the ratios the design targets: synced append time against the baseline's
//! (target <= 0.8), and 32-thread against single-thread synced throughput (target >= 20), with
//! the records per `fdatasync` of the 32 threads and how long their leaders waited for the
//! appenders on their way (the commit delay) per `fdatasync`. Each ratio comes from a
//! measurement of its own that alternates the sides in blocks, 30 rounds, on fresh files: 50
//! records for one thread; for the 32 threads, a window of steady state (32 threads started
//! once and kept between blocks append for 5 ms, then the appends returning in the next 20 ms
//! are counted, so neither thread start-up nor a block's ramps are measured). It is given as
//! the ratio of the means and as the
//! median of the rounds' ratios: `fdatasync` latency follows whatever else the machine's disk
//! and CPUs are doing (on a shared VM it moves between 0.2 ms and 4 ms within minutes), and
//! alternating exposes the sides to the same conditions, which criterion's back-to-back runs do
//! not. A third side, `raw`, does the log's I/O without the log (`pwrite` + `fdatasync` at
//! growing offsets of a preallocated file), to tell the file layout's share from the log's own.
//! The mean per record of the criterion runs is printed too. The filter `wal/sync_512/ratios`
//! runs only this.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use logstore_fs::{FileSystem, OpenMode, StdFs};
use logstore_wal::{
    Durability, RECORD_HEADER_BYTES, SEGMENT_BYTES_MAX_DEFAULT, WRITEBACK_INTERVAL_BYTES_DEFAULT,
    Wal, WalOptions,
};

const RECORD_BYTES: usize = 512;
const THREADS: usize = 32;

/// Total time and records of every timed run of one benchmark, for the ratios at the end.
#[derive(Default)]
struct Tally {
    elapsed: Duration,
    records: u64,
}

impl Tally {
    fn add(tally: &Mutex<Tally>, elapsed: Duration, records: u64) {
        let mut tally = tally.lock().expect("tally");
        tally.elapsed += elapsed;
        tally.records += records;
    }

    fn nanos_per_record(tally: &Mutex<Tally>) -> f64 {
        let tally = tally.lock().expect("tally");
        tally.elapsed.as_nanos() as f64 / tally.records.max(1) as f64
    }
}

fn payload(len: usize) -> Vec<u8> {
    let mut rng = logstore_benches::SplitMix64::new(7);
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn append(wal: &Wal, payload: &[u8]) {
    black_box(wal.append(payload).expect("append"));
}

fn options(durability: Durability) -> WalOptions {
    WalOptions { durability, fs: Arc::new(StdFs), ..WalOptions::default() }
}

/// Appends `iters` records from `THREADS` threads; returns the time from their common start to
/// the last append's return.
fn concurrent_appends(wal: &Wal, payload: &[u8], iters: u64) -> Duration {
    let start = Barrier::new(THREADS + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS as u64)
            .map(|t| {
                let share = iters / THREADS as u64 + u64::from(t < iters % THREADS as u64);
                let start = &start;
                scope.spawn(move || {
                    start.wait();
                    for _ in 0..share {
                        append(wal, payload);
                    }
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        for worker in workers {
            worker.join().expect("appender thread");
        }
        began.elapsed()
    })
}

/// `THREADS` appender threads that stay alive between the blocks of the alternating
/// measurement, so that a block measures the log's steady state: not thread start-up, nor the
/// ramps at either end of a fixed share of appends, when fewer threads are left to group.
struct AppenderPool<'a> {
    start: &'a Barrier,
    end: &'a Barrier,
    stop: &'a std::sync::atomic::AtomicBool,
    quit: &'a std::sync::atomic::AtomicBool,
    /// Start and end of the current block's counting window.
    window: &'a Mutex<(Instant, Instant)>,
    counted: &'a std::sync::atomic::AtomicU64,
}

/// A threads block: appends run for `POOL_WARM_UP`, then those that return within the next
/// `POOL_WINDOW` are counted; the block's time is that window.
const POOL_WARM_UP: Duration = Duration::from_millis(5);
const POOL_WINDOW: Duration = Duration::from_millis(20);

impl AppenderPool<'_> {
    /// Starts the threads, runs `f` with the pool, stops them.
    fn run<T>(wal: &Wal, payload: &[u8], f: impl FnOnce(&AppenderPool<'_>) -> T) -> T {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let (start, end) = (Barrier::new(THREADS + 1), Barrier::new(THREADS + 1));
        let (stop, quit) = (AtomicBool::new(false), AtomicBool::new(false));
        let now = Instant::now();
        let window = Mutex::new((now, now));
        let counted = AtomicU64::new(0);
        let pool = AppenderPool {
            start: &start,
            end: &end,
            stop: &stop,
            quit: &quit,
            window: &window,
            counted: &counted,
        };
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                let pool = &pool;
                scope.spawn(move || {
                    loop {
                        pool.start.wait();
                        if pool.quit.load(Ordering::Acquire) {
                            return;
                        }
                        let (from, to) = *pool.window.lock().expect("window");
                        let mut counted = 0;
                        while !pool.stop.load(Ordering::Acquire) {
                            append(wal, payload);
                            let done = Instant::now();
                            counted += u64::from(from <= done && done < to);
                        }
                        pool.counted.fetch_add(counted, Ordering::Relaxed);
                        pool.end.wait();
                    }
                });
            }
            let result = f(&pool);
            quit.store(true, Ordering::Release);
            start.wait();
            result
        })
    }

    /// One block: every thread appends until the window closes; returns the window and the
    /// appends that returned inside it.
    fn window(&self) -> Block {
        use std::sync::atomic::Ordering;
        let from = Instant::now() + POOL_WARM_UP;
        let to = from + POOL_WINDOW;
        *self.window.lock().expect("window") = (from, to);
        self.counted.store(0, Ordering::Relaxed);
        self.stop.store(false, Ordering::Release);
        self.start.wait();
        std::thread::sleep(to.saturating_duration_since(Instant::now()));
        self.stop.store(true, Ordering::Release);
        self.end.wait();
        (to - from, self.counted.load(Ordering::Relaxed))
    }
}

fn sync_appends(c: &mut Criterion) {
    let dir = tempfile::Builder::new().prefix("logstore-bench-wal-").tempdir().expect("tempdir");
    println!("wal benchmarks in {}", dir.path().display());
    let payload = payload(RECORD_BYTES);
    let tallies: [Mutex<Tally>; 3] = Default::default();
    let [single, baseline, threads] = &tallies;

    let mut group = c.benchmark_group("wal/sync_512");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(8));

    let wal = Wal::open(dir.path().join("single"), options(Durability::Sync)).expect("open");
    group.bench_function("wal", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                append(&wal, &payload);
            }
            let elapsed = began.elapsed();
            Tally::add(single, elapsed, iters);
            elapsed
        })
    });
    wal.close().expect("close");

    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("baseline.log"))
        .expect("baseline file");
    group.bench_function("baseline", |b| {
        b.iter_custom(|iters| {
            let began = Instant::now();
            for _ in 0..iters {
                file.write_all(&payload).expect("write");
                file.sync_data().expect("fdatasync");
            }
            let elapsed = began.elapsed();
            Tally::add(baseline, elapsed, iters);
            elapsed
        })
    });
    drop(file);

    let wal = Wal::open(dir.path().join("threads"), options(Durability::Sync)).expect("open");
    group.bench_function(format!("threads_{THREADS}"), |b| {
        b.iter_custom(|iters| {
            let elapsed = concurrent_appends(&wal, &payload, iters);
            Tally::add(threads, elapsed, iters);
            elapsed
        })
    });
    wal.close().expect("close");
    group.finish();

    if Tally::nanos_per_record(single) > 0.0 && Tally::nanos_per_record(baseline) > 0.0 {
        println!(
            "sync 512 B, criterion runs, mean per record: wal {:.1} us, baseline {:.1} us, \
             {THREADS} threads {:.1} us",
            Tally::nanos_per_record(single) / 1e3,
            Tally::nanos_per_record(baseline) / 1e3,
            Tally::nanos_per_record(threads) / 1e3,
        );
    }
    if !selected(RATIOS_ID) {
        return;
    }
    // The ratios, measured again in alternation (the disk is shared, its latency drifts).
    // `raw` is the log's I/O without the log: `pwrite` + `fdatasync` at growing offsets of a
    // file preallocated as the log does, to tell the file layout's effect from the log's own.
    let wal = Wal::open(dir.path().join("paired"), options(Durability::Sync)).expect("open");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("paired-baseline.log"))
        .expect("baseline file");
    let raw =
        StdFs.open(&dir.path().join("paired-raw.log"), OpenMode::CreateNew).expect("raw file");
    raw.allocate(SEGMENT_BYTES_MAX_DEFAULT).expect("fallocate");
    raw.sync_data().expect("fdatasync");
    let mut raw_offset = 0;
    let blocks = alternate(&mut [
        &mut || timed(PAIRED_BLOCK, || append(&wal, &payload)),
        &mut || {
            timed(PAIRED_BLOCK, || {
                file.write_all(&payload).expect("write");
                file.sync_data().expect("fdatasync");
            })
        },
        &mut || {
            timed(PAIRED_BLOCK, || {
                raw.write_all_at(&payload, raw_offset).expect("pwrite");
                raw.sync_data().expect("fdatasync");
                raw_offset += payload.len() as u64;
            })
        },
    ]);
    let [wal_blocks, baseline_blocks, raw_blocks] = &blocks[..] else { unreachable!() };
    let (mut thread_syncs, mut thread_delay_us, mut thread_records) = (0, 0, 0);
    let blocks = AppenderPool::run(&wal, &payload, |pool| {
        alternate(&mut [&mut || timed(PAIRED_BLOCK, || append(&wal, &payload)), &mut || {
            let before = wal.stats();
            let block = pool.window();
            let after = wal.stats();
            thread_syncs += after.syncs - before.syncs;
            thread_delay_us += after.commit_delay_us - before.commit_delay_us;
            thread_records += after.next_seq - before.next_seq;
            block
        }])
    });
    let [single_blocks, threads_blocks] = &blocks[..] else { unreachable!() };
    wal.close().expect("close");
    println!(
        "sync 512 B, alternating {PAIRED_ROUNDS} x {PAIRED_BLOCK} records: wal {:.1} us, \
         baseline {:.1} us, raw preallocated {:.1} us per record; wal/baseline = {:.2}, median \
         of rounds {:.2} (target <= 0.8); raw/baseline median {:.2}",
        mean_nanos(wal_blocks) / 1e3,
        mean_nanos(baseline_blocks) / 1e3,
        mean_nanos(raw_blocks) / 1e3,
        mean_nanos(wal_blocks) / mean_nanos(baseline_blocks),
        median_ratio(wal_blocks, baseline_blocks),
        median_ratio(raw_blocks, baseline_blocks),
    );
    println!(
        "sync 512 B, alternating: {THREADS} threads {:.0} records/s, one thread {:.0} \
         records/s: {:.1}x, median of rounds {:.1}x (target >= 20); {:.1} records per \
         fdatasync, {:.0} us of commit delay per fdatasync",
        1e9 / mean_nanos(threads_blocks),
        1e9 / mean_nanos(single_blocks),
        mean_nanos(single_blocks) / mean_nanos(threads_blocks),
        median_ratio(single_blocks, threads_blocks),
        thread_records as f64 / thread_syncs as f64,
        thread_delay_us as f64 / thread_syncs as f64,
    );
}

/// The name under which a criterion filter selects the alternating measurements.
const RATIOS_ID: &str = "wal/sync_512/ratios";

/// Whether criterion's command-line filter (its one free argument, a regex that a plain name
/// matches as a substring) selects `id`; the alternating measurements are not criterion
/// benchmarks, so they check it themselves.
fn selected(id: &str) -> bool {
    const VALUED: [&str; 19] = [
        "-c",
        "--color",
        "-s",
        "--save-baseline",
        "-b",
        "--baseline",
        "--baseline-lenient",
        "--format",
        "--profile-time",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--plotting-backend",
        "--output-format",
    ];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if VALUED.contains(&arg.as_str()) {
            args.next();
        } else if !arg.starts_with('-') {
            return id.contains(&arg);
        }
    }
    true
}

/// Rounds of the alternating measurements, and records per block.
const PAIRED_ROUNDS: u64 = 30;
const PAIRED_BLOCK: u64 = 50;

/// Time taken and records done by one block of a measurement.
type Block = (Duration, u64);

/// Runs the sides by turns, one block each per round, `PAIRED_ROUNDS` rounds; returns each
/// side's blocks.
fn alternate(sides: &mut [&mut dyn FnMut() -> Block]) -> Vec<Vec<Block>> {
    alternate_rounds(PAIRED_ROUNDS, sides)
}

/// Runs the sides by turns, one block each per round, `rounds` rounds; returns each side's
/// blocks.
fn alternate_rounds(rounds: u64, sides: &mut [&mut dyn FnMut() -> Block]) -> Vec<Vec<Block>> {
    let mut blocks = vec![Vec::new(); sides.len()];
    for _ in 0..rounds {
        for (side, blocks) in sides.iter_mut().zip(&mut blocks) {
            blocks.push(side());
        }
    }
    blocks
}

fn nanos_per_record((elapsed, records): Block) -> f64 {
    elapsed.as_nanos() as f64 / records as f64
}

/// Mean time per record over all blocks.
fn mean_nanos(blocks: &[Block]) -> f64 {
    let elapsed = blocks.iter().map(|block| block.0).sum();
    nanos_per_record((elapsed, blocks.iter().map(|block| block.1).sum()))
}

/// The median over rounds of a's time per record over b's: robust to the disk's latency
/// moving between rounds.
fn median_ratio(a: &[Block], b: &[Block]) -> f64 {
    let mut ratios: Vec<f64> =
        a.iter().zip(b).map(|(&a, &b)| nanos_per_record(a) / nanos_per_record(b)).collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Times `records` calls of `f`.
fn timed(records: u64, mut f: impl FnMut()) -> Block {
    let began = Instant::now();
    for _ in 0..records {
        f();
    }
    (began.elapsed(), records)
}

fn unsynced_appends(c: &mut Criterion) {
    let dir = tempfile::Builder::new().prefix("logstore-bench-wal-").tempdir().expect("tempdir");
    let mut group = c.benchmark_group("wal/none");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    for len in [RECORD_BYTES, 4096] {
        let payload = payload(len);
        let wal = Wal::open(dir.path().join(format!("none-{len}")), options(Durability::None))
            .expect("open");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::from_parameter(len), &payload, |b, payload| {
            b.iter_custom(|iters| {
                let began = Instant::now();
                for _ in 0..iters {
                    append(&wal, payload);
                }
                let elapsed = began.elapsed();
                // Untimed: keep only the current segment, so the disk does not fill.
                wal.truncate_before(wal.next_seq()).expect("truncate");
                elapsed
            })
        });
        wal.close().expect("close");
    }
    group.finish();
    if selected(NONE_FLOOR_ID) {
        for len in [RECORD_BYTES, 4096] {
            none_against_floor(dir.path(), len);
        }
    }
}

/// The name under which a criterion filter selects the alternating `None` measurement.
const NONE_FLOOR_ID: &str = "wal/none/floor";
/// Bytes of records per block of the alternating `None` measurement.
const NONE_BLOCK_BYTES: u64 = 16 << 20;
/// Rounds of the alternating `None` measurement.
const NONE_ROUNDS: u64 = 12;

/// `Durability::None` appends against what this machine allows for the same I/O, alternating
/// blocks: `raw` writes the same framed records (payload plus the 20-byte frame) with one
/// `pwrite` each at growing offsets of a preallocated 64 MiB file, starts writeback every MiB
/// (as the log does), and, as the log must when a segment fills, syncs the file and moves on
/// to a fresh preallocated one.
fn none_against_floor(dir: &std::path::Path, len: usize) {
    let payload = payload(len);
    let wal =
        Wal::open(dir.join(format!("floor-wal-{len}")), options(Durability::None)).expect("open");
    let mut raw = RawLog::new(dir.join(format!("floor-raw-{len}")), len + RECORD_HEADER_BYTES);
    let records = NONE_BLOCK_BYTES / len as u64;
    let blocks = alternate_rounds(
        NONE_ROUNDS,
        &mut [
            &mut || {
                let block = timed(records, || append(&wal, &payload));
                // Untimed: keep only the current segment, so the disk does not fill.
                wal.truncate_before(wal.next_seq()).expect("truncate");
                block
            },
            &mut || {
                let block = timed(records, || raw.append());
                // Untimed, as for the log: remove the files before the current one.
                raw.trim();
                block
            },
        ],
    );
    let [wal_blocks, raw_blocks] = &blocks[..] else { unreachable!() };
    wal.close().expect("close");
    let mb_per_s = |blocks: &[Block]| len as f64 * 1e3 / mean_nanos(blocks);
    println!(
        "none {len} B, alternating {NONE_ROUNDS} x {} MiB: wal {:.0} MB/s, raw pwrite floor \
         {:.0} MB/s; wal/raw = {:.2}, median of rounds {:.2} (target >= 500 MB/s)",
        NONE_BLOCK_BYTES >> 20,
        mb_per_s(wal_blocks),
        mb_per_s(raw_blocks),
        mean_nanos(raw_blocks) / mean_nanos(wal_blocks),
        median_ratio(raw_blocks, wal_blocks),
    );
}

/// The floor of `None` appends: a log's I/O without the log (see [`none_against_floor`]).
struct RawLog {
    dir: std::path::PathBuf,
    record: Vec<u8>,
    file: Box<dyn logstore_fs::FsFile>,
    /// Files created: `0..files` are finished, `files` is current.
    files: u64,
    /// Files removed: `0..trimmed`.
    trimmed: u64,
    offset: u64,
}

impl RawLog {
    fn new(dir: std::path::PathBuf, record_bytes: usize) -> RawLog {
        StdFs.create_dir_all(&dir).expect("raw directory");
        let file = Self::segment(&dir, 0);
        RawLog { dir, record: payload(record_bytes), file, files: 0, trimmed: 0, offset: 0 }
    }

    fn segment(dir: &std::path::Path, n: u64) -> Box<dyn logstore_fs::FsFile> {
        let file = StdFs.open(&dir.join(format!("{n}.raw")), OpenMode::CreateNew).expect("raw");
        file.allocate(SEGMENT_BYTES_MAX_DEFAULT).expect("fallocate");
        file
    }

    /// Removes the files before the current one (untimed, between blocks, as the log's
    /// `truncate_before`), so the disk does not fill.
    fn trim(&mut self) {
        for n in self.trimmed..self.files {
            StdFs.remove_file(&self.dir.join(format!("{n}.raw"))).expect("remove");
        }
        self.trimmed = self.files;
    }

    fn append(&mut self) {
        let len = self.record.len() as u64;
        if self.offset + len > SEGMENT_BYTES_MAX_DEFAULT {
            self.file.sync_data().expect("fdatasync");
            self.files += 1;
            self.file = Self::segment(&self.dir, self.files);
            self.offset = 0;
        }
        self.file.write_all_at(&self.record, self.offset).expect("pwrite");
        let interval = WRITEBACK_INTERVAL_BYTES_DEFAULT;
        let end = self.offset + len;
        if self.offset / interval != end / interval {
            let to = end / interval * interval;
            self.file.start_writeback(to - interval, interval).expect("writeback");
        }
        self.offset = end;
    }
}

criterion_group!(benches, sync_appends, unsynced_appends);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
