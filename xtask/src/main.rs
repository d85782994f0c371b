//! Project tasks, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! - `cargo xtask bench [flags]`: builds `logstore-bench` in release and runs it with the flags
//!   (`cargo xtask bench --help` lists them). `--peers` also enables the `peers` feature.
//!   Results go to `target/bench/` in the workspace (whatever `CARGO_TARGET_DIR` is) unless
//!   `--out` says otherwise; relative paths in the flags are from the current folder.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Parser, Debug)]
#[command(name = "cargo xtask", about = "logstore's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Build the benchmark driver in release and run it (the report's writeManyLogs and more).
    /// Every flag goes to logstore-bench, `--help` too.
    #[command(disable_help_flag = true)]
    Bench {
        /// Flags for logstore-bench (`--versions V1,V3`, `--scale N|seed`, `--runs K`,
        /// `--corpus DIR`, `--out DIR`, `--peers`, `--help`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Bench { args } => bench(&args),
    }
}

/// The workspace root: xtask's parent folder.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn bench(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    let manifest = root.join("Cargo.toml");
    cmd.args(["run", "--release", "--quiet", "--package", "logstore-bench", "--manifest-path"]);
    cmd.arg(&manifest);
    if args.iter().any(|a| a == "--peers") {
        cmd.args(["--features", "peers"]);
    }
    cmd.arg("--");
    let out_given = args.iter().any(|a| a == "--out" || a.starts_with("--out="));
    if !out_given {
        cmd.arg("--out").arg(root.join("target").join("bench"));
    }
    cmd.args(args);
    eprintln!("xtask: building logstore-bench (release) and running it");
    let status = cmd.status().context("running cargo")?;
    if !status.success() {
        bail!("logstore-bench failed ({status})");
    }
    Ok(())
}
