//! Turning measurements into the outputs: the median of runs, the ratios to the floors and
//! to the report, the engine's targets, the tables (stdout and `report.md`) and
//! `results.json`.

use crate::cases::Case;
use crate::machine::Machine;
use crate::run::{Measurement, median};
use crate::versions::{REPORT, ReportFigure, Version};
use serde::Serialize;
use std::fmt::Write;

/// How the run was configured.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    /// The command line.
    pub command: String,
    /// `--scale` as given (`seed` or a number).
    pub scale: String,
    /// The engine targets' scale.
    pub engine_scale: u64,
    /// The second memory check's scale, if run.
    pub memory_scale: Option<u64>,
    /// Runs per case; figures are medians.
    pub runs: usize,
    /// The workload's seed.
    pub seed: u64,
    /// Where messages came from (`generated` or a corpus folder).
    pub messages: String,
    /// Where the stores' files were.
    pub data_dir: String,
    /// Each version run, as configured.
    pub versions: Vec<crate::versions::VersionConfig>,
}

/// Every run of one case, and the median of each figure over them.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub case: String,
    /// The per-figure median of `runs`.
    pub median: Measurement,
    /// Every run, in order.
    pub runs: Vec<Measurement>,
}

impl CaseResult {
    /// Combines the runs of one case: each figure is the median of its values.
    pub fn new(runs: Vec<Measurement>) -> CaseResult {
        let first = runs.first().cloned().unwrap_or_default();
        let med =
            |f: &dyn Fn(&Measurement) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        let med_opt = |f: &dyn Fn(&Measurement) -> Option<f64>| {
            let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| median(&mut v))
        };
        let med_u64 = |f: &dyn Fn(&Measurement) -> u64| med(&|m| f(m) as f64).round() as u64;
        let mut m = Measurement {
            write_s: med(&|m| m.write_s),
            write_p50_us: med_opt(&|m| m.write_p50_us),
            write_p99_us: med_opt(&|m| m.write_p99_us),
            read_s: med(&|m| m.read_s),
            newest_s: med(&|m| m.newest_s),
            disk_bytes: med_u64(&|m| m.disk_bytes),
            input_rss_bytes: med_u64(&|m| m.input_rss_bytes),
            peak_rss_bytes: med_u64(&|m| m.peak_rss_bytes),
            peak_above_input_bytes: med_u64(&|m| m.peak_above_input_bytes),
            peak_reset: runs.iter().all(|m| m.peak_reset),
            ..first
        };
        if let Some(e) = &mut m.engine {
            e.close_ms = med(&|m| m.engine.as_ref().map_or(0.0, |e| e.close_ms));
            e.reopen_ms = med(&|m| m.engine.as_ref().map_or(0.0, |e| e.reopen_ms));
            e.reopened_read_s = med_opt(&|m| m.engine.as_ref().and_then(|e| e.reopened_read_s));
            e.reopened_newest_s = med_opt(&|m| m.engine.as_ref().and_then(|e| e.reopened_newest_s));
            if let Some(r) = &mut e.sync_ratio {
                // The whole comparison of the run whose ratio is the median: medians of its
                // parts, taken from different runs, would not agree with one another.
                let mut ratios: Vec<_> =
                    runs.iter().filter_map(|m| m.engine.as_ref()?.sync_ratio.as_ref()).collect();
                ratios.sort_by(|a, b| a.ratio_median.total_cmp(&b.ratio_median));
                if let Some(&middle) = ratios.get(ratios.len() / 2) {
                    *r = middle.clone();
                }
            }
        }
        CaseResult { case: m.case.clone(), median: m, runs }
    }
}

/// One row of the table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The case's id.
    pub case: String,
    /// What it is.
    pub label: String,
    /// Entries.
    pub scale: u64,
    /// Threads appending.
    pub writers: usize,
    /// Write time, s.
    pub write_s: f64,
    /// Write time per entry, µs (for several writers: the inverse of the throughput).
    pub write_us: f64,
    /// Per-append latency median / p99, µs.
    pub write_p50_us: Option<f64>,
    /// See `write_p50_us`.
    pub write_p99_us: Option<f64>,
    /// Full-range read time, s.
    pub read_s: f64,
    /// ... per entry, µs.
    pub read_us: f64,
    /// `write_s / read_s`, as the report's Write:Read.
    pub write_read: f64,
    /// Newest-1,000 read, ms.
    pub newest_ms: f64,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Peak memory above the input, bytes.
    pub peak_above_input_bytes: u64,
    /// Peak memory of the process, bytes.
    pub peak_rss_bytes: u64,
    /// The floor its writes are compared with, and the ratio (ours / floor).
    pub write_floor: Option<(String, f64)>,
    /// The floor its reads are compared with, and the ratio.
    pub read_floor: Option<(String, f64)>,
    /// The report's figure for it, if any.
    pub report: Option<ReportFigure>,
    /// Write latency / the report's.
    pub write_vs_report: Option<f64>,
    /// Read latency / the report's.
    pub read_vs_report: Option<f64>,
}

/// One of the engine's targets (issue 4).
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// What is measured.
    pub name: String,
    /// The figure, in `unit`.
    pub measured: f64,
    /// The unit.
    pub unit: &'static str,
    /// The target: at most this.
    pub limit: f64,
    /// `measured <= limit`.
    pub met: bool,
    /// The best peer's figure for the same measure, if peers ran and it applies.
    pub best_peer: Option<String>,
    /// How it was measured.
    pub note: String,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// When (UTC).
    pub date: String,
    /// `git rev-parse HEAD` (`-dirty` with local changes).
    pub git_commit: String,
    /// How it was run.
    pub config: RunConfig,
    /// The report's figures, for the ratios.
    pub report_figures: &'static [ReportFigure],
    /// The table.
    pub rows: Vec<Row>,
    /// The engine's targets.
    pub targets: Vec<Target>,
    /// Every case with every run.
    pub cases: Vec<CaseResult>,
}

fn per_entry_us(s: f64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { s / n as f64 * 1e6 }
}

/// The floor of `case` (by id) at the scale nearest to `scale`.
fn floor_of(cases: &[CaseResult], floor: Case, scale: u64) -> Option<&Measurement> {
    cases
        .iter()
        .map(|c| &c.median)
        .filter(|m| m.case == floor.id())
        .min_by_key(|m| m.scale.abs_diff(scale))
}

/// The table's rows, in the order the cases ran.
pub fn rows(cases: &[CaseResult]) -> Vec<Row> {
    cases
        .iter()
        .map(|c| {
            let m = &c.median;
            let case = Case::parse(&m.case);
            let (write_floor, read_floor) = match case {
                Some(Case::Version(Version::V1)) => {
                    (Some(Case::FloorVecSmall), Some(Case::FloorVecSmall))
                }
                Some(Case::Version(Version::V2)) => {
                    (Some(Case::FloorFile), Some(Case::FloorVecSmall))
                }
                Some(Case::Version(_)) | Some(Case::Fjall) | Some(Case::Redb) => {
                    (Some(Case::FloorFile), Some(Case::FloorVec))
                }
                Some(Case::Engine) | Some(Case::EngineMemory) => (None, Some(Case::FloorVec)),
                _ => (None, None),
            };
            let write_us = per_entry_us(m.write_s, m.scale);
            let read_us = per_entry_us(m.read_s, m.scale);
            let ratio = |floor: Option<Case>, ours: f64, theirs: &dyn Fn(&Measurement) -> f64| {
                let floor = floor?;
                let f = floor_of(cases, floor, m.scale)?;
                let t = theirs(f);
                (t > 0.0).then(|| (floor.id().to_owned(), ours / t))
            };
            let report = match case {
                Some(Case::Version(v)) => v.report_figure(m.scale),
                _ => None,
            };
            Row {
                case: m.case.clone(),
                label: m.label.clone(),
                scale: m.scale,
                writers: m.writers,
                write_s: m.write_s,
                write_us,
                write_p50_us: m.write_p50_us,
                write_p99_us: m.write_p99_us,
                read_s: m.read_s,
                read_us,
                write_read: if m.read_s > 0.0 { m.write_s / m.read_s } else { 0.0 },
                newest_ms: m.newest_s * 1e3,
                disk_bytes: m.disk_bytes,
                peak_above_input_bytes: m.peak_above_input_bytes,
                peak_rss_bytes: m.peak_rss_bytes,
                write_floor: ratio(write_floor, write_us, &|f| per_entry_us(f.write_s, f.scale)),
                read_floor: ratio(read_floor, read_us, &|f| per_entry_us(f.read_s, f.scale)),
                report,
                write_vs_report: report.map(|r| write_us / r.write_us),
                read_vs_report: report.map(|r| read_us / r.read_us),
            }
        })
        .collect()
}

/// The engine's targets, from the `engine` and `engine-memory` cases (and the peers'
/// figures beside them).
pub fn targets(cases: &[CaseResult], rows: &[Row]) -> Vec<Target> {
    let mut out = Vec::new();
    let peers: Vec<&Row> = rows.iter().filter(|r| r.case == "fjall" || r.case == "redb").collect();
    let best_peer = |f: &dyn Fn(&Row) -> f64, unit: &str| {
        peers
            .iter()
            .map(|r| (f(r), &r.case))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(v, name)| format!("{name}: {} {unit}", fmt_num(v)))
    };
    let mut target = |name: String, measured: f64, unit, limit, best_peer, note: String| {
        out.push(Target { name, measured, unit, limit, met: measured <= limit, best_peer, note });
    };
    for c in cases.iter().filter(|c| c.case == "engine" || c.case == "engine-memory") {
        let m = &c.median;
        let scale = fmt_scale(m.scale);
        let Some(e) = &m.engine else { continue };
        if c.case == "engine" {
            target(
                format!("durable batches of {} ({scale})", fmt_num(e.batch_entries as f64)),
                per_entry_us(m.write_s, m.scale),
                "µs/entry",
                2.0,
                None,
                "append_batch, Sync, engine defaults, flushes and compactions included".into(),
            );
            target(
                format!("full-range read ({scale})"),
                per_entry_us(m.read_s, m.scale),
                "µs/entry",
                0.2,
                best_peer(&|r| r.read_us, "µs/entry"),
                "verified (count + digest); the digest's fold of every byte is included".into(),
            );
            target(
                format!("newest 1,000 ({scale})"),
                m.newest_s * 1e3,
                "ms",
                0.2,
                best_peer(&|r| r.newest_ms, "ms"),
                "descending, narrow time range, limit 1,000; median of 5, verified".into(),
            );
            if let (Some(read_s), Some(newest_s)) = (e.reopened_read_s, e.reopened_newest_s) {
                target(
                    format!("full-range read after reopen ({scale})"),
                    per_entry_us(read_s, m.scale),
                    "µs/entry",
                    0.2,
                    None,
                    "as above, just after the reopen below, on the tables the clean close left \
                     (the row above reads while the worker merges the tables just flushed)"
                        .into(),
                );
                target(
                    format!("newest 1,000 after reopen ({scale})"),
                    newest_s * 1e3,
                    "ms",
                    0.2,
                    None,
                    "as above, just after the reopen below".into(),
                );
            }
            target(
                format!("reopen after clean close ({scale})"),
                e.reopen_ms,
                "ms",
                5.0,
                None,
                "LogStore::open, then both reads verified again".into(),
            );
            if let Some(r) = &e.sync_ratio {
                let floor_file = rows.iter().find(|r| r.case == Case::FloorFile.id());
                let best = floor_file.and_then(|f| {
                    best_peer(&|r| r.write_us / f.write_us, "x floor (separate runs)")
                });
                target(
                    "single-writer Sync append / write+fdatasync floor".into(),
                    r.ratio_median,
                    "x",
                    0.85,
                    best,
                    format!(
                        "{} appends each, alternating blocks of {}; store {} µs, floor {} µs, \
                         ratio of means {:.2}",
                        fmt_num(r.appends as f64),
                        crate::engine::RATIO_BLOCK_ENTRIES,
                        fmt_num(r.store_us),
                        fmt_num(r.floor_us),
                        r.ratio_of_means
                    ),
                );
            }
        }
        target(
            format!("peak memory above the input ({scale})"),
            m.peak_above_input_bytes as f64 / MIB,
            "MiB",
            32.0,
            None,
            format!(
                "VmHWM {} MiB - RSS once the input and the record of its keys are in memory {} MiB{}",
                fmt_num(m.peak_rss_bytes as f64 / MIB),
                fmt_num(m.input_rss_bytes as f64 / MIB),
                if m.peak_reset { "" } else { " (peak could not be reset: includes generation)" }
            ),
        );
    }
    out
}

const MIB: f64 = 1_048_576.0;

/// A number with about three significant digits and thousands separators.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000.0 {
        let s = format!("{:.0}", v);
        let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        format!("{sign}{out}")
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Seconds as the report writes them (`12.2 s`, `1,151 ms`, `1.1 ms`, `84 µs`).
pub fn fmt_time(s: f64) -> String {
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1e-3 {
        format!("{} ms", fmt_num(s * 1e3))
    } else {
        format!("{} µs", fmt_num(s * 1e6))
    }
}

fn fmt_us(us: f64) -> String {
    format!("{} µs", fmt_num(us))
}

fn fmt_bytes(b: u64) -> String {
    if b == 0 { "-".into() } else { format!("{} MiB", fmt_num(b as f64 / MIB)) }
}

/// `10k`, `100k`, `1M`, `2,000`.
pub fn fmt_scale(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 10_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        fmt_num(n as f64)
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |r| format!("{}x", fmt_num(r)))
}

/// The main table, as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| Version | What | Scale | Write Time | Write Latency | p50 / p99 | Read Time | Read Latency \
         | Write:Read | Newest 1,000 | Disk | Peak above input | Write vs floor | Read vs floor \
         | Write vs report | Read vs report |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let pct = match (r.write_p50_us, r.write_p99_us) {
            (Some(a), Some(b)) => format!("{} / {}", fmt_us(a), fmt_us(b)),
            _ => "-".into(),
        };
        let writers =
            if r.writers > 1 { format!(", {} writers", r.writers) } else { String::new() };
        let _ = writeln!(
            t,
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.label,
            writers,
            fmt_scale(r.scale),
            fmt_time(r.write_s),
            fmt_us(r.write_us),
            pct,
            fmt_time(r.read_s),
            fmt_us(r.read_us),
            fmt_num(r.write_read),
            fmt_time(r.newest_ms / 1e3),
            fmt_bytes(r.disk_bytes),
            fmt_bytes(r.peak_above_input_bytes),
            fmt_ratio(r.write_floor.as_ref().map(|f| f.1)),
            fmt_ratio(r.read_floor.as_ref().map(|f| f.1)),
            fmt_ratio(r.write_vs_report),
            fmt_ratio(r.read_vs_report),
        );
    }
    t
}

/// The engine targets' table, as Markdown.
pub fn targets_table(targets: &[Target]) -> String {
    let mut t = String::from(
        "| Engine target (issue 4) | Measured | Target | Met | Best peer | How |\n|---|--:|--:|---|---|---|\n",
    );
    for x in targets {
        let _ = writeln!(
            t,
            "| {} | {} {} | ≤ {} {} | {} | {} | {} |",
            x.name,
            fmt_num(x.measured),
            x.unit,
            fmt_num(x.limit),
            x.unit,
            if x.met { "yes" } else { "**no**" },
            x.best_peer.as_deref().unwrap_or("-"),
            x.note
        );
    }
    t
}

/// The header lines: machine, date, commit, configuration.
pub fn header(r: &Results) -> String {
    let m = &r.machine;
    format!(
        "Machine: {} cores ({}), {} GiB, Linux {}; load average {:.1} at start, {:.1} at end \
         (a shared machine: other work ran too).\n\
         Date: {}. Commit: {}.\n\
         Command: `{}`. Runs per case: {} (figures are per-figure medians). Seed: {}. \
         Messages: {}. Data: {}.\n",
        m.cores,
        m.cpu_model,
        m.memory_bytes / (1 << 30),
        m.kernel,
        m.load_1m_start,
        m.load_1m_end,
        r.date,
        r.git_commit,
        r.config.command,
        r.config.runs,
        r.config.seed,
        r.config.messages,
        r.config.data_dir
    )
}

/// `report.md`.
pub fn markdown(r: &Results) -> String {
    let mut s = String::from("# writeManyLogs on logstore\n\n");
    s.push_str(&header(r));
    s.push_str("\n## Versions, floors and peers\n\n");
    s.push_str(&table(&r.rows));
    s.push_str(
        "\nWrite Latency is write time / entries (for several writers, the inverse of the \
         throughput); p50 / p99 are per-append latencies. Read Time is one full-range read, \
         verified by count and an order-sensitive digest that reads every byte (its cost is \
         part of the time, as it is of the floors'). Newest 1,000: a descending read of a narrow time \
         range, limit 1,000, verified, median of 5. Disk: allocated bytes after the reads \
         (WAL segments are preallocated). Peak above input: the child process's `VmHWM`, reset \
         once the input was generated, minus its resident memory then. Ratios are ours / \
         theirs: below 1 is faster. Write vs floor: V1 against `floor-vec-small`, the rest \
         against `floor-fdatasync`; Read vs floor: V1-V2 against `floor-vec-small`, the rest \
         against `floor-vec`. The floors run in their own child processes, at other moments \
         than the versions: on a shared machine `fdatasync` latency moves by 10x within \
         minutes, so Write vs floor is indicative; the engine targets' single-writer row \
         alternates store and floor in one process and is the comparison to trust. Report: \
         `writeManyLogs-report.md`'s figure nearest in scale.\n",
    );
    if !r.targets.is_empty() {
        s.push_str("\n## Engine targets\n\n");
        s.push_str(&targets_table(&r.targets));
    }
    s.push_str("\nThe report's own figures used for the ratios:\n\n| Version | Scale | Write | Read |\n|---|--:|--:|--:|\n");
    for f in REPORT {
        let _ = writeln!(
            s,
            "| {} | {} | {} µs | {} µs |",
            f.version.name(),
            fmt_scale(f.scale),
            fmt_num(f.write_us),
            fmt_num(f.read_us)
        );
    }
    s.push_str("\nChart: `latency.svg`. Every figure: `results.json`.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_format_like_the_report() {
        assert_eq!(fmt_num(1151.0), "1,151");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(0.11), "0.110");
        assert_eq!(fmt_time(12.2), "12.2 s");
        assert_eq!(fmt_time(1.151), "1,151 ms");
        assert_eq!(fmt_time(0.0011), "1.10 ms");
        assert_eq!(fmt_scale(100_000), "100k");
        assert_eq!(fmt_scale(1_000_000), "1M");
        assert_eq!(fmt_scale(200), "200");
    }

    #[test]
    fn medians_per_figure() {
        let m = |w: f64, r: f64| Measurement {
            case: "V3".into(),
            scale: 10,
            write_s: w,
            read_s: r,
            ..Measurement::default()
        };
        let c = CaseResult::new(vec![m(1.0, 9.0), m(3.0, 1.0), m(2.0, 5.0)]);
        assert_eq!((c.median.write_s, c.median.read_s), (2.0, 5.0));
        assert_eq!(c.runs.len(), 3);
    }
}
