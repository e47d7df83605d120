//! A repository release in the testbed: the devnet's repository step (node0 publishes a
//! mandatory component, every node fetches it from the mesh) run on the testbed's nodes,
//! each reached inside its namespace, and held against the swarm lower bound when the
//! uplinks are capped.

use std::{process::Stdio, time::Duration};

use anyhow::Result;
use gaiamesh_testbed::scenario::Release;
use serde::Serialize;

use super::{Bed, measure::quantile};
use crate::cli::devnet::{
    output_of,
    replication::{self, Nodes},
};
use crate::daemon::RepoStatus;

impl Nodes for Bed {
    fn len(&self) -> usize {
        self.members.len()
    }

    fn repo(&self, i: usize) -> Result<RepoStatus> {
        self.on(i, |api| api.repo())
    }

    fn on_node0(&self, args: &[&str]) -> Result<String> {
        let mut c = self.members[0].ns.command(&self.exe);
        c.args(args).stdin(Stdio::null());
        output_of(
            c,
            &format!("gaiamesh {} (in node0's namespace)", args.join(" ")),
        )
    }
}

/// A release step's figures.
#[derive(Debug, Serialize)]
pub(super) struct ReleaseFigures {
    bytes: u64,
    /// From the end of `repo publish` until each node held a verified copy (node0: 0).
    per_node_ms: Vec<u64>,
    p50_ms: Option<u64>,
    last_ms: u64,
    /// The swarm lower bound with every uplink capped at `up_mbps` and downlinks free:
    /// max(F / up, (N − 1)·F / (N·up)) = F / up (docs/simulator.md).
    lower_bound_ms: Option<u64>,
    /// `last_ms / lower_bound_ms`.
    ratio: Option<f64>,
}

impl ReleaseFigures {
    pub(super) fn line(&self) -> String {
        format!(
            "{} MiB reached every node in {:.1} s (median node {:.1} s){}",
            self.bytes / (1024 * 1024),
            self.last_ms as f64 / 1e3,
            self.p50_ms.unwrap_or(0) as f64 / 1e3,
            match (self.lower_bound_ms, self.ratio) {
                (Some(b), Some(r)) =>
                    format!(", {r:.2}× the swarm lower bound of {:.1} s", b as f64 / 1e3),
                _ => String::new(),
            }
        )
    }
}

/// Runs a release step on `bed`, whose federation (with its repository keys) is in `root`.
pub(super) fn run(
    bed: &Bed,
    root: &std::path::Path,
    r: &Release,
    up_mbps: Option<f64>,
) -> Result<ReleaseFigures> {
    let node0 = bed.members[0].dir.clone();
    let got = replication::run_on(bed, root, &node0, u64::from(r.mib), r.timeout)?;
    let mut others: Vec<u64> = got.per_node_ms.iter().skip(1).copied().collect();
    others.sort_unstable();
    let lower_bound_ms = up_mbps.map(|mbps| {
        let up_bytes_per_ms = mbps * 1e6 / 8.0 / 1e3;
        (got.bytes as f64 / up_bytes_per_ms).round() as u64
    });
    Ok(ReleaseFigures {
        bytes: got.bytes,
        p50_ms: quantile(&others, 0.5),
        last_ms: got.replicated_ms,
        ratio: lower_bound_ms
            .filter(|b| *b > 0)
            .map(|b| got.replicated_ms as f64 / b as f64),
        lower_bound_ms,
        per_node_ms: got.per_node_ms,
    })
}

/// The step, for the progress output.
pub(super) fn describe(r: &Release) -> String {
    format!(
        "node0 publishes a {} MiB mandatory component; every node fetches it (at most {:?})",
        r.mib,
        Duration::from_secs(r.timeout.as_secs())
    )
}
