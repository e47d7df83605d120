//! The devnet's data-exchange step: node0 offers a dataset under a research-in-the-EU
//! policy, node1 negotiates a contract for it and fetches it directly; the step reports the
//! negotiation round trip and the transfer rate, and checks both audit logs.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{path_str, sub};
use crate::{api_client::NodeApi, daemon::FetchRequest, datadir::DataDir};

/// The asset id the devnet registers.
pub(super) const ASSET: &str = "devnet-dataset";

/// What the step measured.
#[derive(Debug, serde::Serialize)]
pub(super) struct ExchangeRun {
    pub(super) asset: String,
    pub(super) bytes: u64,
    pub(super) provider: String,
    pub(super) consumer: String,
    pub(super) agreement: String,
    /// REQUESTED → FINALIZED, as the consumer saw it.
    pub(super) negotiation_ms: f64,
    /// Manifest, every byte, verification and the move into place.
    pub(super) transfer_ms: f64,
    pub(super) mb_per_s: f64,
    /// Entries in each side's audit log after the exchange (both chains verified).
    pub(super) audit_entries: [u64; 2],
}

/// Writes `bytes` of deterministic data to `path` in 1 MiB pieces.
fn write_dataset(path: &Path, bytes: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut xof = blake3::Hasher::new()
        .update(b"gaiamesh devnet dataset")
        .finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64))?;
        xof.fill(&mut buf[..n]);
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

/// Registers `mib` MiB on node0 and has node1 fetch it.
pub(super) fn run(
    root: &Path,
    dirs: &[PathBuf],
    mib: u64,
    timeout: Duration,
) -> Result<ExchangeRun> {
    let [provider_dir, consumer_dir, ..] = dirs else {
        bail!("the exchange step needs two nodes");
    };
    let assets = root.join("assets");
    std::fs::create_dir_all(&assets)?;
    let file = assets.join(format!("{ASSET}.bin"));
    let bytes = mib * 1024 * 1024;
    write_dataset(&file, bytes)?;
    let policy = assets.join("research-eu.toml");
    std::fs::write(
        &policy,
        "# research only, by consumers established in the EU, not passed on\n\
         purposes = [\"research\"]\njurisdiction = [\"EU\"]\nonward_transfer = false\n",
    )?;
    sub(&[
        "asset",
        "add",
        path_str(&file)?,
        "--id",
        ASSET,
        "--policy",
        path_str(&policy)?,
        "--data-dir",
        path_str(provider_dir)?,
    ])?;
    let (p, c) = (DataDir::new(provider_dir), DataDir::new(consumer_dir));
    let (p, c) = (NodeApi::of(&p)?, NodeApi::of(&c)?);
    let provider = p.status()?.peer_id;
    let consumer = c.status()?.peer_id;
    let out = std::path::absolute(root.join("received").join(format!("{ASSET}.bin")))?;
    eprintln!(
        "exchange: node1 negotiates for {ASSET} ({mib} MiB, purpose research.climate) and fetches it from node0"
    );
    let job = c.exchange_fetch(&FetchRequest {
        provider: Some(provider.clone()),
        query: None,
        asset: Some(ASSET.to_owned()),
        purpose: "research.climate".to_owned(),
        onward_transfer: false,
        out,
        attempts: 3,
        overwrite: false,
    })?;
    let t0 = Instant::now();
    let view = loop {
        let v = c.exchange_job(job)?;
        match v.state.as_str() {
            "completed" => break v,
            "failed" => bail!(
                "the devnet exchange failed: {}",
                v.error.as_deref().unwrap_or("?")
            ),
            _ if t0.elapsed() > timeout => {
                bail!("the devnet exchange did not finish in {timeout:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut audit_entries = [0u64; 2];
    for (i, d) in [&p, &c].into_iter().enumerate() {
        // The provider records the receipt just after the consumer finishes.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let n = d.audit_verify()?.entries;
            if n >= 3 || Instant::now() > deadline {
                audit_entries[i] = n;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let transfer_ms = view.transfer_ms.unwrap_or(0.0);
    Ok(ExchangeRun {
        asset: ASSET.into(),
        bytes,
        provider,
        consumer,
        agreement: view.agreement.unwrap_or_default(),
        negotiation_ms: view.negotiation_ms.unwrap_or(0.0),
        transfer_ms,
        mb_per_s: bytes as f64 / (transfer_ms / 1e3).max(1e-9) / 1e6,
        audit_entries,
    })
}
