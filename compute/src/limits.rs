//! What one job may use.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The resources one job may use; a job that reaches one is stopped with the matching
/// [`crate::StopReason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory, bytes (all memories of the component together).
    pub memory_bytes: u64,
    /// Fuel: roughly one unit per WebAssembly instruction executed.
    pub fuel: u64,
    /// Wall-clock time.
    #[serde(with = "humantime_serde")]
    pub wall: Duration,
    /// The result (standard output), bytes.
    pub output_bytes: u64,
    /// Diagnostics kept from standard error, bytes (more is dropped, not an error).
    pub stderr_bytes: u64,
}

impl Default for Limits {
    /// 256 MiB of memory, 10^11 fuel (tens of seconds of compute), 60 s, a 16 MiB result.
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            fuel: 100_000_000_000,
            wall: Duration::from_secs(60),
            output_bytes: 16 * 1024 * 1024,
            stderr_bytes: 64 * 1024,
        }
    }
}

impl Limits {
    /// Each limit the smaller of `self` and `cap` (a policy's limits within the node's).
    #[must_use]
    pub fn within(self, cap: Self) -> Self {
        Self {
            memory_bytes: self.memory_bytes.min(cap.memory_bytes),
            fuel: self.fuel.min(cap.fuel),
            wall: self.wall.min(cap.wall),
            output_bytes: self.output_bytes.min(cap.output_bytes),
            stderr_bytes: self.stderr_bytes.min(cap.stderr_bytes),
        }
    }
}
