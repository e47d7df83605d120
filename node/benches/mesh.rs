//! Sustained self-description updates on a loopback devnet, with none lost.
//!
//! Starts `gaiamesh devnet` (its summary gives convergence, propagation and light-node DHT
//! query times), then for each offered rate re-publishes self-descriptions round-robin over
//! all nodes for a fixed time and checks that every node ends with every subject's last
//! version ("none lost"), how long that took after the load stopped, and how many updates
//! every node merged as the newest version (an update can be superseded before it arrives;
//! that is not a loss).
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench mesh
//! GAIAMESH_BENCH_NODES=8 GAIAMESH_BENCH_RATES=20,50 GAIAMESH_BENCH_SECONDS=5 cargo bench -p gaiamesh-node --bench mesh
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use gaiamesh_node::{api_client::NodeApi, datadir::DataDir};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sum over nodes of `gaiamesh_directory_merges_total{outcome="replaced"}`.
fn replaced_total(dirs: &[PathBuf]) -> u64 {
    dirs.iter()
        .map(|d| {
            let text = metrics(d).unwrap_or_default();
            text.lines()
                .find(|l| l.starts_with("gaiamesh_directory_merges_total{outcome=\"replaced\"}"))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse::<f64>().ok())
                .map_or(0, |v| v as u64)
        })
        .sum()
}

fn metrics(dir: &Path) -> Result<String> {
    Ok(NodeApi::of(&DataDir::new(dir))?.metrics()?)
}

fn main() -> Result<()> {
    let n: usize = env_or("GAIAMESH_BENCH_NODES", 32);
    let seconds: u64 = env_or("GAIAMESH_BENCH_SECONDS", 10);
    let rates: Vec<u64> = std::env::var("GAIAMESH_BENCH_RATES")
        .unwrap_or_else(|_| "25,50,100,200".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let root = std::env::temp_dir().join(format!("gaiamesh-bench-mesh-{}", std::process::id()));
    let bin = env!("CARGO_BIN_EXE_gaiamesh");
    eprintln!("starting a {n}-node devnet in {}", root.display());
    let mut devnet = Command::new(bin)
        .args(["devnet", "--nodes", &n.to_string(), "--reset", "--dir"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = devnet.stdout.take().context("devnet stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let Some(line) = lines.next() else {
            bail!("devnet exited before it was ready");
        };
        let line = line?;
        if line.starts_with("  ") && line.contains(" ms") || line.contains("converged") {
            println!("{line}");
        }
        if line.starts_with("running;") {
            break;
        }
    }
    let dirs: Vec<PathBuf> = (0..n).map(|i| root.join(format!("node{i}"))).collect();
    let data: Vec<DataDir> = dirs.iter().map(DataDir::new).collect();
    let apis: Vec<NodeApi> = data.iter().map(NodeApi::of).collect::<Result<_, _>>()?;
    let subjects: Vec<String> = data
        .iter()
        .map(|d| Ok(NodeApi::of(d)?.status()?.peer_id))
        .collect::<Result<_>>()?;

    println!(
        "\n| offered updates/s | achieved updates/s | updates | all nodes have every last version | \
         drained after load | merged as newest |"
    );
    println!("|---|---|---|---|---|---|");
    for rate in rates {
        // One publisher thread per node, each at rate/n (a publish waits for the node's
        // signature, merge and redb commit, so one sequential client could not offer much).
        let per_node = (rate * seconds).div_ceil(n as u64);
        let total = per_node * n as u64;
        let before = replaced_total(&dirs);
        let start = Instant::now();
        let last: HashMap<usize, u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = apis
                .iter()
                .enumerate()
                .map(|(i, api)| {
                    scope.spawn(move || -> Result<(usize, u64)> {
                        let mut seq = 0;
                        for k in 0..per_node {
                            let at = (k as f64 + i as f64 / n as f64) * n as f64 / rate as f64;
                            let due = start + Duration::from_secs_f64(at);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            let r: serde_json::Value = api.post_empty("/api/v1/sd")?;
                            seq = r["seq"].as_u64().context("no seq")?;
                        }
                        Ok((i, seq))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("publisher thread"))
                .collect::<Result<_>>()
        })?;
        let load = start.elapsed();
        let drain_start = Instant::now();
        // Nodes still behind; one query per node and pass returns every subject's seq there.
        let everything = [("q", "alive = true or alive = false"), ("limit", "10000")];
        let mut behind: Vec<usize> = (0..n).collect();
        while !behind.is_empty() && drain_start.elapsed() < Duration::from_secs(60) {
            behind.retain(|d| {
                let Ok(reply) =
                    apis[*d].get_with::<serde_json::Value>("/api/v1/directory", &everything)
                else {
                    return true;
                };
                let mut seqs: HashMap<&str, u64> = HashMap::new();
                for m in reply["matches"].as_array().into_iter().flatten() {
                    if let (Some(s), Some(q)) = (m["subject"].as_str(), m["seq"].as_u64()) {
                        seqs.insert(s, q);
                    }
                }
                last.iter()
                    .any(|(i, seq)| seqs.get(subjects[*i].as_str()).is_none_or(|s| s < seq))
            });
            if !behind.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let complete = behind.is_empty();
        let drained = drain_start.elapsed();
        let merged = replaced_total(&dirs) - before;
        let expected = total * (n as u64 - 1);
        println!(
            "| {rate} | {:.0} | {total} | {} | {:.1} s | {:.1} % |",
            total as f64 / load.as_secs_f64(),
            if complete { "yes" } else { "NO" },
            drained.as_secs_f64(),
            100.0 * merged as f64 / expected as f64,
        );
    }
    let _ = Command::new("kill")
        .args(["-INT", &devnet.id().to_string()])
        .status();
    let _ = devnet.wait();
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
