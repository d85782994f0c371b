//! Helpers shared by the criterion benchmarks in this folder.
