//! What one child process runs: a case (a version, a floor, the engine targets or a peer) at
//! a scale, and the [`Measurement`] it prints.

use crate::engine;
use crate::floors::{FileFloor, VecFloor};
use crate::progress::Progress;
use crate::run::{self, Measurement};
use crate::versions::Version;
use crate::workload::{self, InputEntry, MessageSize};
use anyhow::{Context, Result};
use logstore_engine::LogStore;
use std::path::Path;

/// One thing to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    /// The engine configured as a version.
    Version(Version),
    /// Entries kept in a `Vec`, small messages: the floor for V1 and V2's reads.
    FloorVecSmall,
    /// Entries kept in a `Vec`, 16..=1,024-byte messages: the floor for V3 on's reads.
    FloorVec,
    /// `write` + `fdatasync` per entry to a plain file: the floor for synced writes.
    FloorFile,
    /// The engine's own targets (issue 4), with the single-writer comparison.
    Engine,
    /// The engine's targets again at another scale, without the comparison (memory at 1M).
    EngineMemory,
    /// fjall, synced per write.
    Fjall,
    /// redb, a committed transaction per write.
    Redb,
}

impl Case {
    /// The id used on the command line between parent and child, and in the results.
    pub fn id(self) -> &'static str {
        match self {
            Case::Version(v) => v.name(),
            Case::FloorVecSmall => "floor-vec-small",
            Case::FloorVec => "floor-vec",
            Case::FloorFile => "floor-fdatasync",
            Case::Engine => "engine",
            Case::EngineMemory => "engine-memory",
            Case::Fjall => "fjall",
            Case::Redb => "redb",
        }
    }

    /// The case with id `id`.
    pub fn parse(id: &str) -> Option<Case> {
        if let Some(v) = Version::parse(id) {
            return Some(Case::Version(v));
        }
        [
            Case::FloorVecSmall,
            Case::FloorVec,
            Case::FloorFile,
            Case::Engine,
            Case::EngineMemory,
            Case::Fjall,
            Case::Redb,
        ]
        .into_iter()
        .find(|c| c.id() == id)
    }

    /// What it is, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Case::Version(v) => v.label(),
            Case::FloorVecSmall => "floor: Vec, small messages",
            Case::FloorVec => "floor: Vec",
            Case::FloorFile => "floor: write + fdatasync",
            Case::Engine => "engine defaults, batches of 1,000",
            Case::EngineMemory => "engine defaults, batches of 1,000",
            Case::Fjall => "peer: fjall 2, SyncData per write",
            Case::Redb => "peer: redb 2, commit per write",
        }
    }

    /// The messages it writes.
    pub fn message_size(self) -> MessageSize {
        match self {
            Case::Version(v) => v.message_size(),
            Case::FloorVecSmall => MessageSize::Small,
            _ => MessageSize::Mixed,
        }
    }
}

/// Generates the input for `case` and runs it in `dir` (a fresh directory for its files),
/// reporting progress on stderr when `show_progress`.
pub fn run_case(
    case: Case,
    scale: u64,
    seed: u64,
    corpus: Option<&Path>,
    dir: &Path,
    show_progress: bool,
) -> Result<Measurement> {
    let lines = match corpus {
        Some(d) => {
            Some(workload::corpus_lines(d).with_context(|| format!("--corpus {}", d.display()))?)
        }
        None => None,
    };
    let input = workload::input(scale as usize, seed, case.message_size(), lines.as_deref());
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let progress = Progress::new(scale, show_progress);
    let mut m = match case {
        Case::Version(v) => run_version(v, &input, dir, &progress)?,
        Case::FloorVecSmall | Case::FloorVec => {
            run::drive(&VecFloor::with_capacity(input.len()), &input, 1, &progress)?
        }
        Case::FloorFile => {
            let floor = FileFloor::create(&dir.join("floor.log"))?;
            let mut m = run::drive(&floor, &input, 1, &progress)?;
            m.disk_bytes = crate::machine::disk_bytes(dir);
            m
        }
        Case::Engine => engine::run(&input, dir, true, &progress)?,
        Case::EngineMemory => engine::run(&input, dir, false, &progress)?,
        Case::Fjall | Case::Redb => run_peer(case, &input, dir, &progress)?,
    };
    m.case = case.id().to_owned();
    m.label = case.label().to_owned();
    Ok(m)
}

fn run_version(
    v: Version,
    input: &[InputEntry],
    dir: &Path,
    progress: &Progress,
) -> Result<Measurement> {
    let store_dir = dir.join("store");
    let store = LogStore::open(&store_dir, v.store_options())?;
    let mut m = run::drive(&store, input, v.writers(), progress)?;
    if v.on_disk() {
        m.disk_bytes = crate::machine::disk_bytes(&store_dir);
    }
    m.tables = Some(store.stats().tables as u64);
    progress.phase("close");
    store.close()?;
    Ok(m)
}

#[cfg(feature = "peers")]
fn run_peer(
    case: Case,
    input: &[InputEntry],
    dir: &Path,
    progress: &Progress,
) -> Result<Measurement> {
    let peer_dir = dir.join(case.id());
    let subject: Box<dyn run::Subject> = match case {
        Case::Fjall => Box::new(crate::peers::Fjall::open(&peer_dir)?),
        _ => Box::new(crate::peers::Redb::open(&peer_dir)?),
    };
    let mut m = run::drive(subject.as_ref(), input, 1, progress)?;
    m.disk_bytes = crate::machine::disk_bytes(&peer_dir);
    Ok(m)
}

#[cfg(not(feature = "peers"))]
fn run_peer(case: Case, _: &[InputEntry], _: &Path, _: &Progress) -> Result<Measurement> {
    anyhow::bail!(
        "{} needs the `peers` feature: `cargo xtask bench --peers` enables it, or build \
         logstore-bench with `--features peers`",
        case.id()
    )
}

/// Whether this build can run the peers.
pub const PEERS_BUILT: bool = cfg!(feature = "peers");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for case in [Case::Version(Version::V7), Case::FloorFile, Case::Engine, Case::Redb] {
            assert_eq!(Case::parse(case.id()), Some(case));
        }
        assert_eq!(Case::parse("V9"), None);
    }
}
