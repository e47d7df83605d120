//! A direct exchange transfer and a single-source repository fetch between two nodes on
//! loopback, against a raw quinn stream copying the same file with the same cipher, in the
//! same run.
//!
//! The baseline copies a file of F bytes over one raw quinn stream (the quinn, rustls and
//! aws-lc crypto libp2p-quic uses, ChaCha20-Poly1305 first as libp2p-tls configures it):
//! read in 1 MiB blocks, written and synced. The gaiamesh side is one 2-node
//! `gaiamesh devnet --once --repo-mib F --exchange-mib F`: node1 fetches the repository
//! component from node0 (bao segments, BLAKE3 verification, file writes, fsyncs) and then
//! negotiates a contract and fetches the asset over `/gaiamesh/transfer/1` (read from disk,
//! hashed as it arrives, verified, synced, moved into place); the devnet's summary gives
//! each step's time. Rounds alternate which side runs first, so neither always meets a cold
//! page cache; the median ratio counts.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{
    quinn_baseline::{self, Payload, Suites},
    report::{Bound, Check, Row},
};

/// One round's throughputs, bytes per second.
#[derive(Clone, Copy, Debug)]
struct Round {
    copy: f64,
    exchange: f64,
    fetch: f64,
}

fn devnet_round(bin: &Path, mib: u64) -> Result<(f64, f64)> {
    let m = mib.to_string();
    let v = quinn_baseline::two_node_devnet(
        bin,
        "transfer",
        &["--repo-mib", &m, "--exchange-mib", &m],
    )?;
    let bytes = (mib * 1024 * 1024) as f64;
    let exchange_ms = v["exchange"]["transfer_ms"]
        .as_f64()
        .context("the devnet summary has no exchange step")?;
    let fetch_ms = v["repository"]["replicated_ms"]
        .as_f64()
        .context("the devnet summary has no repository step")?;
    Ok((bytes / (exchange_ms / 1e3), bytes / (fetch_ms / 1e3)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The transfer and repository-fetch rows for a blob of `mib` MiB over `rounds` rounds.
pub fn run(bin: &Path, mib: u64, rounds: usize) -> Result<Vec<Row>> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Removed when dropped, on an error too (the source file alone is `mib` MiB).
    let tmp = tempfile::Builder::new()
        .prefix("gaiamesh-bench-copy-")
        .tempdir()?;
    let (src, dst) = (tmp.path().join("src.bin"), tmp.path().join("dst.bin"));
    quinn_baseline::write_source(&src, mib)?;
    let copy = Payload::File {
        src,
        dst: dst.clone(),
    };
    let mut all = Vec::new();
    for round in 0..rounds {
        let mut r = Round {
            copy: 0.0,
            exchange: 0.0,
            fetch: 0.0,
        };
        for k in 0..2 {
            let _ = std::fs::remove_file(&dst);
            if (k + round) % 2 == 0 {
                r.copy =
                    rt.block_on(quinn_baseline::raw_quinn_with(copy.clone(), Suites::Libp2p))?;
            } else {
                (r.exchange, r.fetch) = devnet_round(bin, mib)?;
            }
        }
        eprintln!(
            "transfer: round {}/{rounds}: quinn copy {:.0} MB/s, exchange {:.0} MB/s, repository fetch {:.0} MB/s",
            round + 1,
            r.copy / 1e6,
            r.exchange / 1e6,
            r.fetch / 1e6
        );
        all.push(r);
    }
    drop(tmp);
    let copy_mbs = median(all.iter().map(|r| r.copy).collect()) / 1e6;
    let size = if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    };
    let row = |path: String, pick: fn(&Round) -> f64| {
        let ratio = median(all.iter().map(|r| pick(r) / r.copy).collect());
        Row {
            path,
            ours: format!("{:.0} MB/s", median(all.iter().map(pick).collect()) / 1e6),
            baseline: format!("raw quinn file copy (ChaCha20) {copy_mbs:.0} MB/s"),
            ratio: Some(ratio),
            checks: vec![Check::new("ratio", ratio, Bound::AtLeast(0.9))],
        }
    };
    Ok(vec![
        row(format!("transfer {size}, one stream"), |r| r.exchange),
        row(format!("repository fetch {size}, one source"), |r| r.fetch),
    ])
}
