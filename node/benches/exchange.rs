//! Direct data exchange: one consumer node fetching a 1 GiB asset from one provider node
//! over loopback, against a raw quinn stream and a plain TCP connection moving the same
//! bytes in the same run; and the contract negotiation's round trip against a raw quinn
//! request/answer round trip.
//!
//! The baselines move bytes from memory to memory, and copy a file (read in 1 MiB blocks,
//! written, synced) over one raw quinn stream — with rustls' default cipher order and with
//! the ChaCha20-first order libp2p-tls configures — and over plain TCP. The gaiamesh side
//! is a 2-node
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

use gaiamesh_bench::quinn_baseline as baseline;

use anyhow::{Context, Result};

/// (bytes per second, negotiation ms) of one devnet exchange of `mib` MiB.
fn gaiamesh_exchange(mib: u64) -> Result<(f64, f64)> {
    let mib_s = mib.to_string();
    let v = baseline::two_node_devnet(
        std::path::Path::new(env!("CARGO_BIN_EXE_gaiamesh")),
        "exchange",
        &["--repo-mib", "0", "--exchange-mib", &mib_s],
    )?;
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
    let tmp = std::env::temp_dir().join(format!("gaiamesh-bench-copy-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let src = tmp.join("src.bin");
    let dst = tmp.join("dst.bin");
    baseline::write_source(&src, mib)?;
    let copy = baseline::Payload::File {
        src: src.clone(),
        dst: dst.clone(),
    };
    // Five rounds; within a round the six measurements run in an order rotated by one
    // each round, so none always runs first on a cold page cache or last on a full one.
    let mut rows = Vec::new();
    for round in 0..5 {
        let mut r = [0f64; 7];
        for k in 0..6 {
            let which = (k + round) % 6;
            let _ = std::fs::remove_file(&dst);
            match which {
                0 => r[0] = rt.block_on(baseline::raw_quinn(bytes))?,
                1 => {
                    r[1] = rt.block_on(baseline::raw_quinn_with(
                        copy.clone(),
                        baseline::Suites::Default,
                    ))?;
                }
                2 => {
                    r[2] = rt.block_on(baseline::raw_quinn_with(
                        copy.clone(),
                        baseline::Suites::Libp2p,
                    ))?;
                }
                3 => r[3] = rt.block_on(baseline::raw_tcp(copy.clone()))?,
                4 => (r[4], r[6]) = gaiamesh_exchange(mib)?,
                _ => r[5] = rt.block_on(baseline::raw_quinn_rtt_ms(50))?,
            }
        }
        let _ = std::fs::remove_file(&dst);
        eprintln!(
            "round {}: quinn {:.0} MB/s, quinn copy {:.0} (ChaCha20 {:.0}), TCP copy {:.0}, gaiamesh {:.0} MB/s",
            round + 1,
            r[0] / 1e6,
            r[1] / 1e6,
            r[2] / 1e6,
            r[3] / 1e6,
            r[4] / 1e6
        );
        rows.push(r);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!(
        "| run | size | raw quinn, memory | raw quinn, file copy | same, ChaCha20 (as libp2p) | TCP file copy | gaiamesh exchange | vs quinn memory | vs quinn copy | vs quinn copy ChaCha20 | vs TCP copy | negotiation (quinn RTT) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let ratios = |j: usize| {
        let mut v: Vec<f64> = rows.iter().map(|r| r[4] / r[j]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians = [ratios(0), ratios(1), ratios(2), ratios(3)];
    for (i, [quinn, copy, chacha, tcp, ours, rtt, negotiation]) in rows.into_iter().enumerate() {
        let mb = |x: f64| format!("{:.0} MB/s", x / 1e6);
        println!(
            "| {} | {mib} MiB | {} | {} | {} | {} | {} | {:.2}× | **{:.2}×** | **{:.2}×** | {:.2}× | {negotiation:.1} ms ({rtt:.2} ms) |",
            i + 1,
            mb(quinn),
            mb(copy),
            mb(chacha),
            mb(tcp),
            mb(ours),
            ours / quinn,
            ours / copy,
            ours / chacha,
            ours / tcp,
        );
    }
    println!(
        "| median ratio | | | | | | | {:.2}× | **{:.2}×** | **{:.2}×** | {:.2}× | |",
        medians[0], medians[1], medians[2], medians[3]
    );
    Ok(())
}
