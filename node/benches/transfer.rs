//! Single-source transfer: one node fetching a blob from one other node over loopback,
//! against a raw quinn stream of the same size in the same run.
//!
//! The baseline sends F bytes from memory over one QUIC stream (quinn with the rustls and
//! aws-lc crypto libp2p-quic uses) and reads them into memory. The gaiamesh side is a
//! 2-node `gaiamesh devnet --repo-mib F`: node1 fetches the component from node0 — 1 MiB
//! bao segments, BLAKE3 verification per 16 KiB group, file writes and an fsync per
//! segment, all included.
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench transfer
//! GAIAMESH_BENCH_MIB=64 cargo bench -p gaiamesh-node --bench transfer
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "baseline/mod.rs"]
mod baseline;

use std::process::Command;

use anyhow::{Context, Result, bail};
use baseline::raw_quinn;

fn gaiamesh_single_source(mib: u64) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("gaiamesh-bench-transfer-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_gaiamesh"))
        .args([
            "devnet", "--once", "--json", "--reset", "--nodes", "2", "--dir",
        ])
        .arg(&dir)
        .args(["--repo-mib", &mib.to_string(), "--exchange-mib", "0"])
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!("devnet failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ms = v["repository"]["replicated_ms"]
        .as_f64()
        .context("no repository step")?;
    Ok((mib * 1024 * 1024) as f64 / (ms / 1e3))
}

fn main() -> Result<()> {
    let mib: u64 = std::env::var("GAIAMESH_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for round in 0..2 {
        let quinn = rt.block_on(raw_quinn(usize::try_from(mib * 1024 * 1024)?))?;
        let ours = gaiamesh_single_source(mib)?;
        rows.push((round, quinn, ours));
    }
    println!("| run | blob | raw quinn stream | gaiamesh fetch (verified, on disk) | ratio |");
    println!("|---|---|---|---|---|");
    for (round, quinn, ours) in rows {
        println!(
            "| {} | {mib} MiB | {:.0} MB/s | {:.0} MB/s | **{:.2}×** |",
            round + 1,
            quinn / 1e6,
            ours / 1e6,
            ours / quinn
        );
    }
    Ok(())
}
