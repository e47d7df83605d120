//! What a job used and how it ended.

use gaiamesh_exchange::metering::Usage;
use serde::{Deserialize, Serialize};

/// Why a job ended without a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// It used all its fuel (CPU).
    #[error("CPU limit: all {limit} fuel used")]
    Fuel {
        /// The fuel it had.
        limit: u64,
    },
    /// It ran longer than its wall-clock limit.
    #[error("wall-clock limit: still running after {limit_ms} ms")]
    WallClock {
        /// The limit, ms.
        limit_ms: u64,
    },
    /// It asked for more memory than allowed.
    #[error("memory limit: asked for {requested} bytes, {limit} allowed")]
    Memory {
        /// What it asked for (the memory's new size).
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// Its result grew beyond the output limit.
    #[error("output limit: the result exceeded {limit} bytes")]
    Output {
        /// The limit.
        limit: u64,
    },
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// It exited with a failure status.
    #[error("the algorithm exited with status {code}")]
    Exit {
        /// The status (WASI 0.2 reports failure as 1, whatever number the program gave).
        code: i32,
    },
    /// It trapped (an `unreachable`, an out-of-bounds access, a panic).
    #[error("the algorithm trapped: {message}")]
    Trap {
        /// wasmtime's description.
        message: String,
    },
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// `None`: it completed (exit status 0) and `output` is its result.
    pub stopped: Option<StopReason>,
    /// What it used, also when stopped.
    pub usage: Usage,
    /// Its result (standard output); empty when stopped.
    #[serde(skip)]
    pub output: Vec<u8>,
    /// The start of its standard error (diagnostics, a panic message).
    pub stderr: String,
}

impl Report {
    /// Whether it completed.
    pub fn completed(&self) -> bool {
        self.stopped.is_none()
    }
}
