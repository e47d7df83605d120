//! Data exchange in the testbed: assets offered before the nodes start (`[[assets]]`), and
//! `fetch` steps in which a consumer negotiates a contract with the provider and fetches the
//! asset directly — through whatever connects them: a direct link, a relay, a punched hole.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use gaiamesh_testbed::scenario::{Asset, Fetch};
use rand::{RngCore, SeedableRng};
use serde::Serialize;

use super::Bed;
use crate::{
    cli::devnet::{path_str, sub},
    daemon::FetchRequest,
};

/// Writes `asset`'s bytes (seeded by the node, so a run is repeatable) into the node's data
/// dir and registers them with an open policy (offline, before the node starts).
pub(super) fn offer(dir: &Path, asset: &Asset) -> Result<()> {
    let file = dir.join(format!("{}.bin", Asset::id(asset.node)));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(asset.node as u64);
    let mut bytes = vec![0u8; asset.mib as usize * 1024 * 1024];
    rng.fill_bytes(&mut bytes);
    std::fs::write(&file, &bytes).with_context(|| format!("{}", file.display()))?;
    // Every key is optional: an empty policy lets any member use it for any purpose.
    let policy = dir.join("open-policy.toml");
    std::fs::write(&policy, "")?;
    sub(&[
        "asset",
        "add",
        path_str(&file)?,
        "--id",
        &Asset::id(asset.node),
        "--policy",
        path_str(&policy)?,
        "--data-dir",
        path_str(dir)?,
    ])?;
    Ok(())
}

/// A fetch step's figures.
#[derive(Debug, Serialize)]
pub(super) struct FetchFigures {
    consumer: usize,
    provider: usize,
    /// `completed`, or what the job ended in.
    state: String,
    bytes: u64,
    negotiation_ms: Option<u64>,
    transfer_ms: Option<u64>,
    mbit_s: Option<f64>,
    /// The consumer's copy is byte-identical to the provider's file.
    identical: bool,
    error: Option<String>,
}

impl FetchFigures {
    pub(super) fn line(&self) -> String {
        match (&self.error, self.mbit_s) {
            (None, Some(rate)) => format!(
                "node{} fetched {} MiB from node{}: negotiated in {} ms, transferred in {} ms ({rate:.1} Mbit/s){}",
                self.consumer,
                self.bytes / (1024 * 1024),
                self.provider,
                self.negotiation_ms.unwrap_or(0),
                self.transfer_ms.unwrap_or(0),
                if self.identical {
                    ", identical"
                } else {
                    ", NOT identical"
                },
            ),
            _ => format!(
                "node{} fetching from node{}: {} ({})",
                self.consumer,
                self.provider,
                self.state,
                self.error.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// Runs a fetch step: starts the job on the consumer through its API and follows it.
/// `step`: the step's index (names the consumer's copy).
pub(super) fn run(bed: &Bed, f: &Fetch, peers: &[String], step: usize) -> Result<FetchFigures> {
    let id = Asset::id(f.provider);
    let out = bed.members[f.consumer]
        .dir
        .join(format!("fetched-{id}-step{step}.bin"));
    let request = FetchRequest {
        provider: Some(peers[f.provider].clone()),
        query: None,
        asset: Some(id.clone()),
        purpose: "research.testbed".to_owned(),
        onward_transfer: false,
        out: out.clone(),
        attempts: 3,
        overwrite: false,
    };
    let job = bed.on(f.consumer, move |api| api.exchange_fetch(&request))?;
    let begun = Instant::now();
    let status = loop {
        let s = bed.on(f.consumer, move |api| api.exchange_job(job))?;
        if s.finished() || begun.elapsed() > f.timeout {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let state = status.state.clone();
    let bytes = status.bytes;
    // The job reports milliseconds as floats.
    let ms = |x: Option<f64>| x.map(|x| x.round() as u64);
    let transfer_ms = ms(status.transfer_ms);
    let original = bed.members[f.provider].dir.join(format!("{id}.bin"));
    let identical = state == "completed"
        && std::fs::read(&out)
            .ok()
            .is_some_and(|got| std::fs::read(&original).is_ok_and(|want| want == got));
    Ok(FetchFigures {
        consumer: f.consumer,
        provider: f.provider,
        error: if state == "completed" {
            None
        } else if state == "failed" {
            Some(status.error.clone().unwrap_or_default())
        } else {
            Some(format!("still {state} after {:?}", f.timeout))
        },
        state,
        bytes,
        negotiation_ms: ms(status.negotiation_ms),
        mbit_s: transfer_ms
            .filter(|ms| *ms > 0)
            .map(|ms| bytes as f64 * 8.0 / 1e6 / (ms as f64 / 1e3)),
        transfer_ms,
        identical,
    })
}
