//! `gaiamesh-bench`: every performance target of the project in one command, each hot path
//! measured against a baseline in the same run and printed as one line of a ratio table
//! (`bench: <path> <ours> vs <baseline> ratio <r> target <t> met`).
//!
//! - [`paths::query`]: selective and full-scan queries against SQLite on the same rows;
//! - [`paths::transfer`]: a direct exchange transfer and a repository fetch between two
//!   nodes against a raw quinn file copy with the same cipher;
//! - [`paths::reconcile`]: reconciliation bytes and round trips against the differing ids;
//! - [`paths::sim`]: the simulator at 100k nodes (wall time, peak memory);
//! - [`paths::idle`]: an idle node's memory and start-up time.
//!
//! The quick mode (`--quick`, run by CI) measures smaller sizes and fails when a path gets
//! [`report::REGRESSION_FACTOR`] times worse against its own baseline than the reference
//! ratios in `bench/reference.toml`; it never compares absolute times.

pub mod paths;
pub mod quinn_baseline;
pub mod report;
