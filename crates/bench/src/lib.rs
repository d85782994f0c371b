//! logstore's benchmark driver: the report's `writeManyLogs` workload
//! (`../shared/seed/writeManyLogs-report.md`) on every version of the engine, beside floors
//! measured in the same run and, with the `peers` feature, other embedded stores.
//!
//! Run it with `cargo xtask bench` (flags: `--help`). Each version is one configuration of
//! the same [`logstore_engine::LogStore`] ([`versions`]); each case runs in a child process
//! (the binary re-invoked) so peak memory figures do not mix; each read is verified
//! ([`digest`]) so a fast wrong answer is an error. The outputs: the table on stdout,
//! `results.json`, `report.md` and `latency.svg` in `--out` (default `target/bench`).
//!
//! The workload generator ([`workload`]) is also what the criterion benches in `benches/` use.
//!
//! ```
//! use logstore_bench::{cases::{Case, run_case}, versions::Version};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let m = run_case(Case::Version(Version::V1), 100, 42, None, dir.path(), false).unwrap();
//! assert_eq!((m.scale, m.newest_count), (100, 100)); // written, read back and verified
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod cases;
pub mod chart;
pub mod digest;
pub mod engine;
pub mod floors;
pub mod machine;
#[cfg(feature = "peers")]
pub mod peers;
pub mod progress;
pub mod report;
pub mod run;
pub mod versions;
pub mod workload;

pub use workload::{
    InputEntry, MESSAGE_BYTES_MAX, MESSAGE_BYTES_MIN, MessageSize, SplitMix64, entries, loghub_dir,
    loghub_lines, message,
};
