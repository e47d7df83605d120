//! Direct data exchange: one consumer node fetching a 1 GiB asset from one provider node
//! over loopback, against a raw quinn stream and a plain TCP connection moving the same
//! bytes in the same run; and the contract negotiation's round trip against a raw quinn
//! request/answer round trip.
//!
//! The baselines move bytes from memory to memory. The gaiamesh side is a 2-node
//! `gaiamesh devnet --exchange-mib F`: node1 negotiates a contract with node0 (four
//! messages, credential verification, policy evaluation, two signatures each way, the
//! agreement in both audit logs), then fetches the file over `/gaiamesh/transfer/1` — read
//! from node0's disk, written to node1's disk, BLAKE3-hashed as it arrives, verified,
//! synced and moved into place, all inside the measured time.
//!
//! ```sh
//! cargo bench -p gaiamesh-node --bench exchange
//! GAIAMESH_BENCH_MIB=256 cargo bench -p gaiamesh-node --bench exchange
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "baseline/mod.rs"]
mod baseline;

use std::process::Command;

use anyhow::{Context, Result, bail};

/// (bytes per second, negotiation ms) of one devnet exchange of `mib` MiB.
fn gaiamesh_exchange(mib: u64) -> Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("gaiamesh-bench-exchange-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_gaiamesh"))
        .args([
            "devnet",
            "--once",
            "--json",
            "--reset",
            "--nodes",
            "2",
            "--repo-mib",
            "0",
            "--exchange-mib",
        ])
        .arg(mib.to_string())
        .arg("--dir")
        .arg(&dir)
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!("devnet failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let x = &v["exchange"];
    let ms = x["transfer_ms"].as_f64().context("no exchange step")?;
    let negotiation = x["negotiation_ms"]
        .as_f64()
        .context("no negotiation time")?;
    Ok(((mib * 1024 * 1024) as f64 / (ms / 1e3), negotiation))
}

fn main() -> Result<()> {
    let mib: u64 = std::env::var("GAIAMESH_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let bytes = usize::try_from(mib * 1024 * 1024)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for round in 0..3 {
        let quinn = rt.block_on(baseline::raw_quinn(bytes))?;
        let quinn_chacha =
            rt.block_on(baseline::raw_quinn_with(bytes, baseline::Suites::Libp2p))?;
        let tcp = rt.block_on(baseline::raw_tcp(bytes))?;
        let rtt = rt.block_on(baseline::raw_quinn_rtt_ms(50))?;
        let (ours, negotiation) = gaiamesh_exchange(mib)?;
        eprintln!(
            "round {}: quinn {:.0} MB/s (ChaCha20 {:.0}), tcp {:.0} MB/s, gaiamesh {:.0} MB/s",
            round + 1,
            quinn / 1e6,
            quinn_chacha / 1e6,
            tcp / 1e6,
            ours / 1e6
        );
        rows.push((round, quinn, quinn_chacha, tcp, ours, rtt, negotiation));
    }
    println!(
        "| run | size | raw quinn (AES-GCM) | raw quinn (ChaCha20, as libp2p) | plain TCP | gaiamesh exchange (disk to disk, verified) | vs quinn | vs quinn ChaCha20 | vs TCP | quinn RTT | negotiation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (round, quinn, chacha, tcp, ours, rtt, negotiation) in rows {
        println!(
            "| {} | {mib} MiB | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s | {:.0} MB/s | **{:.2}×** | **{:.2}×** | {:.2}× | {rtt:.2} ms | {negotiation:.1} ms ({:.0}× RTT) |",
            round + 1,
            quinn / 1e6,
            chacha / 1e6,
            tcp / 1e6,
            ours / 1e6,
            ours / quinn,
            ours / chacha,
            ours / tcp,
            negotiation / rtt
        );
    }
    Ok(())
}
