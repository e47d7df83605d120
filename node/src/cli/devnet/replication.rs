//! The repository step of the devnet and the testbed: node0 publishes a mandatory
//! component and every node fetches it from the mesh by itself; the step reports how long
//! that took per node. The caller says how to reach the nodes ([`Nodes`]): the devnet's
//! share this machine's loopback, the testbed's each sit in a namespace of their own.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{path_str, sub};
use crate::{
    api_client::NodeApi,
    daemon::{LocalState, RepoStatus},
    datadir::DataDir,
};

/// The component the devnet publishes.
pub(crate) const TARGET_NAME: &str = "identity/devnet-bridge";

/// What the step measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Replication {
    pub(crate) target: String,
    pub(crate) bytes: u64,
    /// From the end of `repo publish` until the last node held a verified copy.
    pub(crate) replicated_ms: u64,
    /// Per node (node0 first, 0), sorted by node.
    pub(crate) per_node_ms: Vec<u64>,
}

/// Whether a node's `GET /api/v1/repo` answer shows `target` complete.
fn complete(repo: &RepoStatus, target: &str) -> bool {
    repo.targets
        .iter()
        .any(|t| t.target == target && t.local == LocalState::Complete)
}

/// How the step reaches the nodes.
pub(crate) trait Nodes {
    /// How many.
    fn len(&self) -> usize;
    /// `GET /api/v1/repo` on node `i`.
    fn repo(&self, i: usize) -> Result<RepoStatus>;
    /// Runs `gaiamesh ARGS` against node 0 (its API must be reachable); its stdout.
    fn on_node0(&self, args: &[&str]) -> Result<String>;
}

/// The devnet's nodes: data dirs on this machine's loopback.
struct Local<'a>(&'a [PathBuf]);

impl Nodes for Local<'_> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn repo(&self, i: usize) -> Result<RepoStatus> {
        Ok(NodeApi::of(&DataDir::new(&self.0[i]))?.repo()?)
    }
    fn on_node0(&self, args: &[&str]) -> Result<String> {
        sub(args)
    }
}

/// Publishes `mib` MiB as a mandatory component on node0 and waits until every node in
/// `dirs` has it.
pub(super) fn run(
    root: &Path,
    dirs: &[PathBuf],
    mib: u64,
    timeout: Duration,
) -> Result<Replication> {
    run_on(&Local(dirs), root, &dirs[0], mib, timeout)
}

/// The step on any [`Nodes`]: `root` holds the federation (its repository keys), `node0`
/// is node 0's data dir.
pub(crate) fn run_on(
    nodes: &impl Nodes,
    root: &Path,
    node0: &Path,
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
    let published = nodes.on_node0(&[
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
        path_str(node0)?,
        "--json",
    ])?;
    let published: serde_json::Value = serde_json::from_str(&published)?;
    let target = published["target"].as_str().unwrap_or_default().to_owned();
    let t0 = Instant::now();
    let n = nodes.len();
    let mut done: Vec<Option<u64>> = vec![None; n];
    done[0] = Some(0);
    let mut last_report = Instant::now();
    while done.iter().any(Option::is_none) {
        for (i, d) in done.iter_mut().enumerate() {
            if d.is_none() && nodes.repo(i).is_ok_and(|r| complete(&r, &target)) {
                *d = Some(u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX));
            }
        }
        if t0.elapsed() > timeout {
            let missing: Vec<usize> = (0..n).filter(|i| done[*i].is_none()).collect();
            bail!(
                "{target} did not reach nodes {missing:?} within {timeout:?} (logs: DIR/node*/node.log)"
            );
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            let have = done.iter().filter(|d| d.is_some()).count();
            eprintln!("  {have}/{n} nodes hold {target}");
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
