//! `gaiamesh exchange fetch`: negotiate a contract with a provider (or with each provider a
//! directory query matches, in order) and fetch the asset through the running node.

use std::{path::PathBuf, time::Duration, time::Instant};

use anyhow::{Context, Result, bail};

use super::{DataDirArg, ProgressLine, parse_duration, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    daemon::FetchRequest,
    datadir::DataDir,
};

/// `gaiamesh exchange …`.
#[derive(Debug, clap::Subcommand)]
pub enum ExchangeCommand {
    /// Negotiate and fetch an asset: `--provider PEER --asset ID`, or `--query EXPR` to try
    /// the matching providers in order until one delivers. Resumes an interrupted fetch of
    /// the same --out.
    Fetch(FetchArgs),
}

/// Which providers a fetch or a compute job goes to (`exchange fetch`, `compute run`).
#[derive(Debug, clap::Args)]
pub(super) struct ProviderArgs {
    /// The provider's peer id.
    #[arg(long, conflicts_with = "query", required_unless_present = "query")]
    pub(super) provider: Option<String>,
    /// A directory query; its matching providers are tried in order (failover), e.g.
    /// `service.kind = data.resource and service.id = weather-2026`.
    #[arg(long)]
    pub(super) query: Option<String>,
    /// The asset id (required with --provider; with --query, defaults to each matching
    /// data resource's id).
    #[arg(long, required_unless_present = "query")]
    pub(super) asset: Option<String>,
}

/// Arguments of `exchange fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    #[command(flatten)]
    providers: ProviderArgs,
    /// The purpose the data will be used for (checked against the usage policy),
    /// e.g. `research.climate`.
    #[arg(long)]
    purpose: String,
    /// Say that the data will be passed on (policies may forbid it).
    #[arg(long)]
    onward_transfer: bool,
    /// Where the asset goes (a file, or a directory for a directory asset). Staged as
    /// OUT.part until verified.
    #[arg(long)]
    out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Attempts per provider, each resuming where the last stopped.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// Give up waiting after this long (the node goes on; run again to follow or resume).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `gaiamesh exchange …`.
pub(super) fn run(cmd: ExchangeCommand) -> Result<()> {
    let ExchangeCommand::Fetch(a) = cmd;
    let dir = DataDir::new(&a.data_dir.data_dir);
    if !node_running(&dir) {
        bail!(
            "no node is running on {}: exchanges go through the node (start it with gaiamesh run)",
            dir.root().display()
        );
    }
    let out = std::path::absolute(&a.out)
        .with_context(|| format!("cannot resolve {}", a.out.display()))?;
    let request = FetchRequest {
        provider: a.providers.provider,
        query: a.providers.query,
        asset: a.providers.asset,
        purpose: a.purpose,
        onward_transfer: a.onward_transfer,
        out: out.clone(),
        attempts: a.attempts,
        overwrite: a.overwrite,
    };
    let api = NodeApi::of(&dir)?;
    let job = api.exchange_fetch(&request)?;
    let t0 = Instant::now();
    let mut progress = ProgressLine::bytes(a.json);
    let view = loop {
        let v = api.exchange_job(job)?;
        if v.finished() {
            break v;
        }
        if t0.elapsed() > a.timeout {
            bail!(
                "not complete after {:?} ({} of {} bytes); the node goes on — run the same command again to follow or resume",
                a.timeout,
                v.bytes,
                v.total
            );
        }
        let label = format!(
            "{} from {}",
            v.asset,
            short(v.provider.as_deref().unwrap_or("…"))
        );
        progress.draw(&label, &v.state, v.bytes, v.total);
        std::thread::sleep(Duration::from_millis(200));
    };
    progress.done();
    for attempt in &view.attempts {
        eprintln!(
            "  {} ({}): {}",
            short(&attempt.provider),
            attempt.asset,
            attempt.error
        );
    }
    if view.state == "failed" {
        bail!(
            "fetch failed: {}",
            view.error.as_deref().unwrap_or("unknown error")
        );
    }
    if a.json {
        return print_json(&view);
    }
    let secs = view.transfer_ms.unwrap_or(0.0) / 1e3;
    let bytes = view.bytes;
    println!(
        "fetched {} ({bytes} bytes, BLAKE3 verified) from {} into {}",
        view.asset,
        view.provider.as_deref().unwrap_or("?"),
        out.display()
    );
    println!(
        "  negotiation {}, transfer {secs:.2} s ({:.1} MB/s){}",
        view.negotiation_ms
            .map_or("reused a kept agreement".to_owned(), |ms| format!(
                "{ms:.1} ms"
            )),
        bytes as f64 / secs.max(1e-9) / 1e6,
        if view.resumed_from > 0 {
            format!(", resumed from byte {}", view.resumed_from)
        } else {
            String::new()
        }
    );
    println!("  agreement {}", view.agreement.as_deref().unwrap_or("?"));
    if let Some(u) = &view.usage {
        println!(
            "  metered by the provider: {} bytes sent in {:.1} ms; usage record signed by both, in both audit logs",
            u.bytes_read,
            u.wall_us as f64 / 1e3
        );
        if let Some(c) = &view.charge {
            println!("  price: {}", super::compute::price(c));
        }
    }
    Ok(())
}

fn short(peer: &str) -> String {
    if peer.len() > 16 {
        format!("{}…{}", &peer[..8], &peer[peer.len() - 6..])
    } else {
        peer.to_owned()
    }
}
