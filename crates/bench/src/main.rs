//! `logstore-bench`: runs the `writeManyLogs` workload on every version of the engine (see the
//! library docs), each case in a child process (this binary re-invoked with `--child`), and
//! writes the table, `results.json`, `report.md` and `latency.svg`.

use anyhow::{Context, Result, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use logstore_bench::cases::{Case, PEERS_BUILT, run_case};
use logstore_bench::machine::{self, Machine};
use logstore_bench::progress;
use logstore_bench::report::{self, CaseResult, Results, RunConfig};
use logstore_bench::run::Measurement;
use logstore_bench::versions::Version;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Entries per version by default: synced versions pay one `fdatasync` each (0.2-4 ms on this
/// 2-core VM), so 2,000 keeps the default run under three minutes here.
const SCALE_DEFAULT: u64 = 2_000;
/// Entries of the engine targets (issue 4's scale).
const ENGINE_SCALE_DEFAULT: u64 = 100_000;
/// Entries of the second memory check.
const MEMORY_SCALE_DEFAULT: u64 = 1_000_000;
/// The file floor is a per-entry cost: it is measured on at most this many entries.
const FLOOR_FILE_SCALE_MAX: u64 = 10_000;

/// The writeManyLogs benchmark: every version of the engine, floors and peers.
#[derive(Parser, Debug)]
#[command(name = "logstore-bench", version)]
struct Args {
    /// Versions to run, comma-separated (V1..V8).
    #[arg(long, value_delimiter = ',', default_value = "V1,V2,V3,V4,V5,V6,V7,V8")]
    versions: Vec<String>,
    /// Entries per version: a number, or `seed` for the report's scales (10k for V1-V3, 100k
    /// from V4; peers at 10k).
    #[arg(long, default_value_t = SCALE_DEFAULT.to_string())]
    scale: String,
    /// Runs per case, round-robin over the cases; each figure is the median over them.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Take messages from the `*.log` files in this folder (e.g. ../shared/data/loghub).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Where results.json, report.md and latency.svg go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Where the stores' files go while a case runs (default: OUT/data; must be a real disk).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also run fjall and redb (needs the `peers` feature; `cargo xtask bench --peers` enables it).
    #[arg(long)]
    peers: bool,
    /// Entries of the engine targets (issue 4); 0 skips them.
    #[arg(long, default_value_t = ENGINE_SCALE_DEFAULT)]
    engine_scale: u64,
    /// Entries of the second peak-memory check; 0 skips it.
    #[arg(long, default_value_t = MEMORY_SCALE_DEFAULT)]
    memory_scale: u64,
    /// The workload's seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Internal: run one case and print its measurement as JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Internal: the child's scale.
    #[arg(long, hide = true)]
    child_scale: Option<u64>,
    /// Internal: the child reports progress on stderr.
    #[arg(long, hide = true)]
    child_progress: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(id) = &args.child {
        let case = Case::parse(id).with_context(|| format!("unknown case {id}"))?;
        let dir = args.data_dir.clone().context("--child needs --data-dir")?;
        let scale = args.child_scale.context("--child needs --child-scale")?;
        let m =
            run_case(case, scale, args.seed, args.corpus.as_deref(), &dir, args.child_progress)?;
        println!("{}", serde_json::to_string(&m)?);
        return Ok(());
    }
    parent(args)
}

/// The cases to run, in order, with their scales.
fn plan(args: &Args) -> Result<Vec<(Case, u64)>> {
    let seed_scales = args.scale == "seed";
    let fixed: Option<u64> = if seed_scales {
        None
    } else {
        Some(
            args.scale
                .parse()
                .with_context(|| format!("--scale {}: a number or `seed`", args.scale))?,
        )
    };
    if fixed == Some(0) {
        bail!("--scale must be at least 1");
    }
    let mut versions = Vec::new();
    for name in &args.versions {
        versions.push(
            Version::parse(name.trim())
                .with_context(|| format!("unknown version {name}: V1..V8"))?,
        );
    }
    versions.sort();
    versions.dedup();
    let scale_of = |v: Version| fixed.unwrap_or_else(|| v.seed_scale());
    let mut scales: Vec<u64> = versions.iter().map(|&v| scale_of(v)).collect();
    scales.sort();
    scales.dedup();
    let mut plan = Vec::new();
    // Floors first, at every scale the versions use (the file floor capped: a per-entry cost).
    if versions.iter().any(|&v| v <= Version::V2) {
        for &s in &scales {
            plan.push((Case::FloorVecSmall, s));
        }
    }
    if versions.iter().any(|&v| v >= Version::V3) || args.peers {
        for &s in &scales {
            plan.push((Case::FloorVec, s));
        }
    }
    if versions.iter().any(|&v| v >= Version::V2) || args.peers {
        let s = scales.first().copied().unwrap_or(SCALE_DEFAULT).min(FLOOR_FILE_SCALE_MAX);
        plan.push((Case::FloorFile, s));
    }
    for &v in &versions {
        plan.push((Case::Version(v), scale_of(v)));
    }
    if args.peers {
        if !PEERS_BUILT {
            bail!(
                "--peers needs the `peers` feature: run `cargo xtask bench --peers`, or build with --features peers"
            );
        }
        let s = fixed.unwrap_or(Version::V3.seed_scale());
        plan.push((Case::Fjall, s));
        plan.push((Case::Redb, s));
    }
    if args.engine_scale > 0 {
        plan.push((Case::Engine, args.engine_scale));
    }
    if args.memory_scale > 0 {
        plan.push((Case::EngineMemory, args.memory_scale));
    }
    Ok(plan)
}

fn parent(args: Args) -> Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let plan = plan(&args)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| args.out.join("data"));
    let mut machine = Machine::describe();
    let date = machine::utc_now();
    let exe = std::env::current_exe()?;
    let show = std::io::stderr().is_terminal();
    // Round-robin: run k of every case before run k + 1 of any, so every case meets the
    // machine's changing conditions (fdatasync latency here moves between ~0.1 and ~4 ms
    // within minutes) across its runs, rather than one case getting one bad stretch.
    let mut runs: Vec<Vec<Measurement>> = vec![Vec::new(); plan.len()];
    for run in 0..args.runs {
        for ((case, scale), case_runs) in plan.iter().zip(&mut runs) {
            let dir = data_dir.join(format!("{}-{}", case.id(), run));
            let _ = std::fs::remove_dir_all(&dir);
            let result = child(&exe, &args, *case, *scale, &dir, run, show);
            let _ = std::fs::remove_dir_all(&dir);
            case_runs
                .push(result.with_context(|| format!("case {} (run {})", case.id(), run + 1))?);
        }
    }
    let cases: Vec<CaseResult> = runs.into_iter().map(CaseResult::new).collect();
    let _ = std::fs::remove_dir(&data_dir);
    machine.load_1m_end = machine::load_1m();
    let rows = report::rows(&cases);
    let targets = report::targets(&cases, &rows);
    let results = Results {
        machine,
        date,
        git_commit: machine::git_commit(Path::new(env!("CARGO_MANIFEST_DIR"))),
        config: RunConfig {
            command: std::iter::once("logstore-bench".to_owned())
                .chain(std::env::args().skip(1))
                .collect::<Vec<_>>()
                .join(" "),
            scale: args.scale.clone(),
            engine_scale: args.engine_scale,
            memory_scale: (args.memory_scale > 0).then_some(args.memory_scale),
            runs: args.runs,
            seed: args.seed,
            messages: args
                .corpus
                .as_ref()
                .map_or("generated".to_owned(), |d| format!("lines of {}", d.display())),
            data_dir: data_dir.display().to_string(),
            versions: plan
                .iter()
                .filter_map(|(case, _)| match case {
                    Case::Version(v) => Some(v.config()),
                    _ => None,
                })
                .collect(),
        },
        report_figures: logstore_bench::versions::REPORT,
        rows,
        targets,
        cases,
    };
    println!("{}", report::header(&results));
    println!("{}", report::table(&results.rows));
    if !results.targets.is_empty() {
        println!("{}", report::targets_table(&results.targets));
    }
    let json = args.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
    std::fs::write(args.out.join("report.md"), report::markdown(&results))?;
    logstore_bench::chart::latency_svg(&results.rows, &args.out.join("latency.svg"))?;
    println!("Wrote {}, report.md and latency.svg in {}", json.display(), args.out.display());
    Ok(())
}

/// Runs one case in a child process, drawing its progress, and returns what it measured.
fn child(
    exe: &Path,
    args: &Args,
    case: Case,
    scale: u64,
    dir: &Path,
    run: usize,
    show: bool,
) -> Result<Measurement> {
    let mut cmd = Command::new(exe);
    cmd.arg("--child")
        .arg(case.id())
        .arg("--child-scale")
        .arg(scale.to_string())
        .arg("--seed")
        .arg(args.seed.to_string())
        .arg("--data-dir")
        .arg(dir)
        .arg("--child-progress")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(corpus) = &args.corpus {
        cmd.arg("--corpus").arg(corpus);
    }
    let bar = ProgressBar::new(scale);
    if !show {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos:>9}/{len:9} {msg:10} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let runs = if args.runs > 1 { format!(" #{}", run + 1) } else { String::new() };
    bar.set_prefix(format!("{} {}{runs}", case.id(), report::fmt_scale(scale)));
    let mut child = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
    let stderr = child.stderr.take().context("child stderr")?;
    let mut other = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        match progress::parse(&line) {
            Some((phase, done, total)) => {
                bar.set_length(total.max(1));
                bar.set_position(done);
                bar.set_message(phase.to_owned());
            }
            None => {
                bar.suspend(|| eprintln!("{line}"));
                other.push(line);
            }
        }
    }
    let output = child.wait_with_output()?;
    bar.finish_with_message("done");
    if !output.status.success() {
        bail!("the child failed ({}): {}", output.status, other.join("\n"));
    }
    let stdout = String::from_utf8(output.stdout)?;
    let last = stdout.lines().last().context("the child printed no measurement")?;
    serde_json::from_str(last).context("parsing the child's measurement")
}
