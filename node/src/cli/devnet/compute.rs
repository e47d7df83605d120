//! The devnet's compute-to-data step: node0 offers a weather dataset for computation only,
//! the federation releases the example algorithm (`config/examples/algorithms/column-stats`),
//! and node1 has it run on node0's data: only the aggregates come back, with a usage record
//! signed by both in both audit logs and a price from node0's price model.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{path_str, sub};
use crate::{
    api_client::NodeApi,
    daemon::{ComputeJobView, ComputeRequest},
    datadir::DataDir,
};

/// The example algorithm, built from its source by `scripts/build-algorithms.sh`.
const COLUMN_STATS: &[u8] =
    include_bytes!("../../../../config/examples/algorithms/column-stats.wasm");
/// The asset id.
const ASSET: &str = "devnet-weather";
/// Rows of the dataset.
const ROWS: u32 = 10_000;

/// What the step measured.
#[derive(Debug, serde::Serialize)]
pub(super) struct ComputeRun {
    pub(super) asset: String,
    pub(super) algorithm: String,
    pub(super) algorithm_blake3: String,
    pub(super) dataset_bytes: u64,
    pub(super) result: String,
    pub(super) result_bytes: u64,
    pub(super) fuel: u64,
    pub(super) wall_ms: f64,
    pub(super) price: Option<String>,
    /// Usage records in node0's and node1's audit logs.
    pub(super) usage_records: [usize; 2],
}

/// The dataset: `station,temperature,humidity` rows; returns it and the temperature sum.
fn dataset() -> (String, f64) {
    let mut csv = String::from("station,temperature,humidity\n");
    let mut sum = 0.0;
    for i in 0..ROWS {
        let t = f64::from(i % 400) / 10.0 - 5.0;
        sum += t;
        let _ = writeln!(csv, "S{:04},{t},{}", i % 97, 40 + i % 50);
    }
    (csv, sum)
}

/// Runs the step on node0 (provider) and node1 (consumer).
pub(super) fn run(root: &Path, dirs: &[PathBuf], timeout: Duration) -> Result<ComputeRun> {
    let [provider_dir, consumer_dir, ..] = dirs else {
        bail!("the compute step needs two nodes");
    };
    let dir = root.join("compute");
    std::fs::create_dir_all(&dir)?;
    let (csv, sum) = dataset();
    let data = dir.join("weather.csv");
    std::fs::write(&data, &csv)?;
    let policy = dir.join("compute-only.toml");
    std::fs::write(
        &policy,
        "# research only; the rows never leave node0, only what column-stats computes\n\
         purposes = [\"research\"]\n[compute]\nalgorithms = [\"column-stats\"]\nmax_output_bytes = 4096\n",
    )?;
    sub(&[
        "asset",
        "add",
        path_str(&data)?,
        "--id",
        ASSET,
        "--policy",
        path_str(&policy)?,
        "--price",
        "0.05 EUR/Gfuel",
        "--data-dir",
        path_str(provider_dir)?,
    ])?;
    let wasm = dir.join("column-stats.wasm");
    std::fs::write(&wasm, COLUMN_STATS)?;
    let keys = root.join("federation").join("keys");
    sub(&[
        "repo",
        "publish",
        path_str(&wasm)?,
        "--name",
        "column-stats",
        "--version",
        "1.0.0",
        "--category",
        "optional",
        "--platform",
        "wasm32-wasip2",
        "--key",
        path_str(&keys.join("repository-root-0.key"))?,
        "--key",
        path_str(&keys.join("repository-root-1.key"))?,
        "--data-dir",
        path_str(provider_dir)?,
    ])?;
    let (p, c) = (
        NodeApi::of(&DataDir::new(provider_dir))?,
        NodeApi::of(&DataDir::new(consumer_dir))?,
    );
    // node1 learns the release from the mesh (it needs the hash, not the blob).
    let t0 = Instant::now();
    while !c
        .repo()?
        .targets
        .iter()
        .any(|t| t.target == "column-stats@1.0.0")
    {
        if t0.elapsed() > timeout {
            bail!("node1 did not learn the column-stats release within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "compute: node1 runs column-stats on node0's {ASSET} ({} bytes); only the result leaves node0",
        csv.len()
    );
    let job = c.compute_start(&ComputeRequest {
        provider: Some(p.status()?.peer_id),
        query: None,
        asset: Some(ASSET.to_owned()),
        algorithm: "column-stats".to_owned(),
        purpose: "research.climate".to_owned(),
        args: vec!["temperature".to_owned()],
        out: None,
    })?;
    let view: ComputeJobView = loop {
        let v = c.compute_job(job)?;
        match v.state.as_str() {
            "completed" => break v,
            "failed" => bail!(
                "the devnet compute job failed: {}",
                v.error.as_deref().unwrap_or("?")
            ),
            _ if t0.elapsed() > timeout => {
                bail!("the devnet compute job did not finish in {timeout:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let result = view.result.clone().unwrap_or_default();
    let stats: serde_json::Value = serde_json::from_str(&result)?;
    if stats["rows"] != ROWS || (stats["sum"].as_f64().unwrap_or(f64::NAN) - sum).abs() > 1e-6 {
        bail!("column-stats answered {result}, expected {ROWS} rows summing to {sum}");
    }
    // The provider appends the countersigned record when it arrives, just after the job.
    let mut usage_records = [0usize; 2];
    let deadline = Instant::now() + Duration::from_secs(10);
    for (i, api) in [&p, &c].into_iter().enumerate() {
        loop {
            let list = api.audit(0, 10_000)?;
            // (a job's records: the exchange step's transfer has its own, without algorithm)
            let n = list
                .entries
                .iter()
                .filter(|e| {
                    e.kind == "usage"
                        && e.event["usage"]["record"]["body"]["algorithm"]
                            .as_str()
                            .is_some_and(|a| !a.is_empty())
                })
                .count();
            if n > usize::from(i == 0) || Instant::now() > deadline {
                usage_records[i] = n;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let usage = view.usage.unwrap_or_default();
    Ok(ComputeRun {
        asset: ASSET.to_owned(),
        algorithm: view.algorithm.clone(),
        algorithm_blake3: view.algorithm_blake3.clone(),
        dataset_bytes: csv.len() as u64,
        result_bytes: result.len() as u64,
        result,
        fuel: usage.fuel,
        wall_ms: usage.wall_us as f64 / 1e3,
        price: view
            .charge
            .map(|ch| format!("{} {}", ch.amount, ch.currency)),
        usage_records,
    })
}
