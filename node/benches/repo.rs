//! Repository replication on a loopback devnet against the swarm lower bound.
//!
//! For each (size, upload cap) it runs `gaiamesh devnet --once --json --repo-mib SIZE
//! --upload-limit-kib-s CAP`: node0 publishes a mandatory component and every other node
//! fetches it from the mesh. Baselines, for the same N, F and cap u: the swarm lower bound
//! max(F / u, (N − 1)·F / (N·u)) and a client-server copy (N − 1)·F / u. An uncapped run
//! shows what the machine itself allows (all nodes share its cores), and so does the machine
//! bound measured in the same run: N − 1 raw quinn connections moving F bytes each at once
//! with libp2p's cipher, memory to memory and as file copies (read, written, synced), with
//! no verification and no protocol.
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench repo
//! GAIAMESH_BENCH_NODES=8 GAIAMESH_BENCH_CASES=64:4883,256:48828,256:0 cargo bench -p gaiamesh-node --bench repo
//! GAIAMESH_BENCH_ROUNDS=3 GAIAMESH_BENCH_CASES=256:48828 cargo bench -p gaiamesh-node --bench repo
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_bench::quinn_baseline as baseline;

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let n: u64 = std::env::var("GAIAMESH_BENCH_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let cases: Vec<(u64, u64)> = std::env::var("GAIAMESH_BENCH_CASES")
        .unwrap_or_else(|_| "64:4883,256:48828,256:0".into())
        .split(',')
        .filter_map(|c| {
            let (mib, cap) = c.split_once(':')?;
            Some((mib.trim().parse().ok()?, cap.trim().parse().ok()?))
        })
        .collect();
    let bin = env!("CARGO_BIN_EXE_gaiamesh");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "| nodes | blob | upload cap per node | replicated to all | swarm lower bound | ratio | {} raw quinn streams at once: memory / file copies | ratio to max(swarm bound, file copies) | client-server | speed-up over client-server |",
        n - 1
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let rounds: usize = std::env::var("GAIAMESH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for (mib, cap_kib) in cases.iter().flat_map(|c| std::iter::repeat_n(*c, rounds)) {
        let dir = std::env::temp_dir().join(format!("gaiamesh-bench-repo-{}", std::process::id()));
        let out = Command::new(bin)
            // No light node and no exchange step: N full nodes and the replication alone.
            .args([
                "devnet",
                "--once",
                "--json",
                "--reset",
                "--no-light",
                "--exchange-mib",
                "0",
                "--nodes",
            ])
            .arg(n.to_string())
            .arg("--dir")
            .arg(&dir)
            .args(["--repo-mib", &mib.to_string()])
            .args(["--upload-limit-kib-s", &cap_kib.to_string()])
            .output()?;
        if !out.status.success() {
            bail!("devnet failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let ms = v["repository"]["replicated_ms"]
            .as_f64()
            .context("no repository step in the devnet summary")?;
        let f = (mib * 1024 * 1024) as f64;
        let _ = std::fs::remove_dir_all(&dir);
        // The same bytes through QUIC on the same cores, with nothing else to do: N − 1
        // copies of F at once (the swarm must receive that much in total, and send it).
        let machine = rt.block_on(baseline::parallel_quinn_secs(
            usize::try_from(n - 1)?,
            usize::try_from(mib * 1024 * 1024)?,
        ))?;
        let tmp = std::env::temp_dir().join(format!("gaiamesh-bench-pcopy-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)?;
        baseline::write_source(&tmp.join("src.bin"), mib)?;
        let copies = rt.block_on(baseline::parallel_quinn_copy_secs(
            usize::try_from(n - 1)?,
            &tmp.join("src.bin"),
            &tmp,
        ))?;
        let _ = std::fs::remove_dir_all(&tmp);
        if cap_kib == 0 {
            println!(
                "| {n} | {mib} MiB | none | {:.1} s | — | — | {machine:.1} s / {copies:.1} s | {:.2}× | — | — |",
                ms / 1e3,
                ms / 1e3 / copies
            );
            continue;
        }
        let u = (cap_kib * 1024) as f64;
        let nf = n as f64;
        let lower = (f / u).max((nf - 1.0) * f / (nf * u));
        let client_server = (nf - 1.0) * f / u;
        println!(
            "| {n} | {mib} MiB | {:.1} MB/s | {:.1} s | {:.1} s | **{:.2}×** | {machine:.1} s / {copies:.1} s | {:.2}× | {:.1} s | {:.1}× |",
            u / 1e6,
            ms / 1e3,
            lower,
            ms / 1e3 / lower,
            ms / 1e3 / lower.max(copies),
            client_server,
            client_server / (ms / 1e3)
        );
    }
    Ok(())
}
