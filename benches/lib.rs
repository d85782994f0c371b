//! Workloads shared by the criterion benchmarks in this folder.
//!
//! They are `logstore-bench`'s generator ([`logstore_bench::workload`]), re-exported so the
//! criterion benches and `cargo xtask bench` measure the same bytes from one generator:
//! everything deterministic from a seed, messages of 16..=1,024 bytes, metadata (a small JSON
//! object) on every other entry, and [`loghub_lines`] for the real log samples beside the
//! project.

pub use logstore_bench::workload::{
    MESSAGE_BYTES_MAX, MESSAGE_BYTES_MIN, SplitMix64, entries, loghub_dir, loghub_lines, message,
};
