//! Single-source transfer: one node fetching a blob from one other node over loopback,
//! against raw quinn streams in the same run.
//!
//! Baselines: F bytes from memory into memory over one QUIC stream (quinn with the rustls
//! and aws-lc crypto libp2p-quic uses), and a file of F bytes copied over one stream with
//! the cipher order libp2p-tls configures (ChaCha20 first) — read, written and synced, the
//! like-for-like case. The gaiamesh side is a 2-node `gaiamesh devnet --repo-mib F
//! --no-light`: node1 fetches the component from node0 — 1 MiB bao segments, BLAKE3
//! verification per 16 KiB group, file writes and batched fsyncs, all included.
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench transfer            # 1 GiB, five rounds
//! GAIAMESH_BENCH_MIB=256 cargo bench -p gaiamesh-node --bench transfer
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "baseline/mod.rs"]
mod baseline;

use anyhow::{Context, Result};
use baseline::raw_quinn;

fn gaiamesh_single_source(mib: u64) -> Result<f64> {
    let mib_s = mib.to_string();
    let v = baseline::two_node_devnet("transfer", &["--repo-mib", &mib_s, "--exchange-mib", "0"])?;
    let ms = v["repository"]["replicated_ms"]
        .as_f64()
        .context("no repository step")?;
    Ok((mib * 1024 * 1024) as f64 / (ms / 1e3))
}

fn main() -> Result<()> {
    let mib: u64 = std::env::var("GAIAMESH_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let tmp = std::env::temp_dir().join(format!("gaiamesh-bench-tcopy-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let (src, dst) = (tmp.join("src.bin"), tmp.join("dst.bin"));
    baseline::write_source(&src, mib)?;
    let copy = baseline::Payload::File {
        src,
        dst: dst.clone(),
    };
    // Five rounds; within a round the three measurements run in an order rotated by one
    // each round, so none always runs first on a cold page cache or last on a full one.
    let mut rows = Vec::new();
    for round in 0..5 {
        let mut r = [0f64; 3];
        for k in 0..3 {
            let _ = std::fs::remove_file(&dst);
            match (k + round) % 3 {
                0 => r[0] = rt.block_on(raw_quinn(usize::try_from(mib * 1024 * 1024)?))?,
                1 => {
                    r[1] = rt.block_on(baseline::raw_quinn_with(
                        copy.clone(),
                        baseline::Suites::Libp2p,
                    ))?;
                }
                _ => r[2] = gaiamesh_single_source(mib)?,
            }
        }
        let _ = std::fs::remove_file(&dst);
        eprintln!(
            "round {}: quinn {:.0} MB/s, quinn ChaCha20 copy {:.0} MB/s, gaiamesh {:.0} MB/s",
            round + 1,
            r[0] / 1e6,
            r[1] / 1e6,
            r[2] / 1e6
        );
        rows.push(r);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "| run | blob | raw quinn, memory | raw quinn file copy, ChaCha20 (as libp2p) | gaiamesh fetch (verified, on disk) | vs memory | vs copy |"
    );
    println!("|---|---|---|---|---|---|---|");
    let median = |j: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[2] / r[j]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (vs_memory, vs_copy) = (median(0), median(1));
    for (i, [quinn, chacha, ours]) in rows.into_iter().enumerate() {
        println!(
            "| {} | {mib} MiB | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s | {:.2}× | **{:.2}×** |",
            i + 1,
            quinn / 1e6,
            chacha / 1e6,
            ours / 1e6,
            ours / quinn,
            ours / chacha
        );
    }
    println!("| median ratio | | | | | {vs_memory:.2}× | **{vs_copy:.2}×** |");
    Ok(())
}
