//! The devnet's repository step: node0 publishes a mandatory component and every node
//! fetches it from the mesh by itself; the step reports how long that took per node.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{path_str, sub};
use crate::{api_client::api_get, datadir::DataDir};

/// The component the devnet publishes.
pub(super) const TARGET_NAME: &str = "identity/devnet-bridge";

/// What the step measured.
#[derive(Debug, serde::Serialize)]
pub(super) struct Replication {
    pub(super) target: String,
    pub(super) bytes: u64,
    /// From the end of `repo publish` until the last node held a verified copy.
    pub(super) replicated_ms: u64,
    /// Per node (node0 first, 0), sorted by node.
    pub(super) per_node_ms: Vec<u64>,
}

fn complete(dir: &Path, target: &str) -> bool {
    api_get(&DataDir::new(dir), "/api/v1/repo")
        .ok()
        .and_then(|s| {
            s["targets"].as_array().map(|ts| {
                ts.iter()
                    .any(|t| t["target"] == target && t["local"] == "complete")
            })
        })
        .unwrap_or(false)
}

/// Publishes `mib` MiB as a mandatory component on node0 and waits until every node in
/// `dirs` has it.
pub(super) fn run(
    root: &Path,
    dirs: &[PathBuf],
    mib: u64,
    timeout: Duration,
) -> Result<Replication> {
    let bytes = mib * 1024 * 1024;
    let file = root.join("component.bin");
    let mut content = vec![0u8; usize::try_from(bytes)?];
    blake3::Hasher::new()
        .update(b"gaiamesh devnet component")
        .finalize_xof()
        .fill(&mut content);
    std::fs::write(&file, &content)?;
    drop(content);
    let keys = root.join("federation").join("keys");
    let k0 = keys.join("repository-root-0.key");
    let k1 = keys.join("repository-root-1.key");
    eprintln!(
        "publishing a {mib} MiB mandatory component on node0; every node fetches it from the mesh"
    );
    let published = sub(&[
        "repo",
        "publish",
        path_str(&file)?,
        "--name",
        TARGET_NAME,
        "--version",
        "1.0.0",
        "--category",
        "mandatory",
        "--key",
        path_str(&k0)?,
        "--key",
        path_str(&k1)?,
        "--data-dir",
        path_str(&dirs[0])?,
        "--json",
    ])?;
    let published: serde_json::Value = serde_json::from_str(&published)?;
    let target = published["target"].as_str().unwrap_or_default().to_owned();
    let t0 = Instant::now();
    let mut done: Vec<Option<u64>> = vec![None; dirs.len()];
    done[0] = Some(0);
    let mut last_report = Instant::now();
    while done.iter().any(Option::is_none) {
        for (i, d) in dirs.iter().enumerate() {
            if done[i].is_none() && complete(d, &target) {
                done[i] = Some(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX));
            }
        }
        if t0.elapsed() > timeout {
            let missing: Vec<usize> = (0..dirs.len()).filter(|i| done[*i].is_none()).collect();
            bail!(
                "{target} did not reach nodes {missing:?} within {timeout:?} (logs: DIR/node*/node.log)"
            );
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            let n = done.iter().filter(|d| d.is_some()).count();
            eprintln!("  {n}/{} nodes hold {target}", dirs.len());
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let per_node_ms: Vec<u64> = done.into_iter().map(|d| d.unwrap_or(0)).collect();
    Ok(Replication {
        target,
        bytes,
        replicated_ms: per_node_ms.iter().copied().max().unwrap_or(0),
        per_node_ms,
    })
}
