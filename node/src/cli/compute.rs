//! `gaiamesh compute run|status`: run a released WebAssembly algorithm on a provider's
//! asset offered for computation, through the running node; only the result comes back,
//! with a usage record signed by both and its price (docs/exchange.md, "Compute-to-data").

use std::{path::PathBuf, time::Duration, time::Instant};

use anyhow::{Context, Result, bail};

use super::{DataDirArg, ProgressLine, parse_duration, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    daemon::{ComputeJobView, ComputeRequest},
    datadir::DataDir,
};

/// `gaiamesh compute …`.
#[derive(Debug, clap::Subcommand)]
pub enum ComputeCommand {
    /// Negotiate an agreement for an asset offered for computation and run a released
    /// algorithm on it next to the data; prints the result, what it used and its price.
    Run(RunArgs),
    /// A compute job this node asked for.
    Status(StatusArgs),
    /// Cancel a running compute job; the provider stops the algorithm.
    Cancel(StatusArgs),
}

/// Arguments of `compute run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// The provider, or a query whose providers are tried in order until one runs the job,
    /// and the asset offered for computation.
    #[command(flatten)]
    providers: super::exchange::ProviderArgs,
    /// The algorithm: a released repository target NAME@VERSION, or NAME for its newest
    /// version (e.g. column-stats@1.0.0).
    #[arg(long)]
    algorithm: String,
    /// The purpose (checked against the usage policy), e.g. `research.climate`.
    #[arg(long)]
    purpose: String,
    /// An argument for the algorithm (repeat for several).
    #[arg(long = "arg")]
    args: Vec<String>,
    /// Also write the result to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Give up waiting after this long (the job goes on on the provider).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `compute status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// The job id `compute run` printed.
    job: u64,
    /// Print the job as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `gaiamesh compute …`.
pub(super) fn run(cmd: ComputeCommand) -> Result<()> {
    match cmd {
        ComputeCommand::Run(a) => run_job(a),
        ComputeCommand::Cancel(a) => {
            let view = api(&a.data_dir)?.compute_cancel(a.job)?;
            if a.json {
                return print_json(&view);
            }
            print_view(&view);
            Ok(())
        }
        ComputeCommand::Status(a) => {
            let view = api(&a.data_dir)?.compute_job(a.job)?;
            if a.json {
                return print_json(&view);
            }
            print_view(&view);
            Ok(())
        }
    }
}

fn api(data_dir: &DataDirArg) -> Result<NodeApi> {
    let dir = DataDir::new(&data_dir.data_dir);
    if !node_running(&dir) {
        bail!(
            "no node is running on {}: compute jobs go through the node (start it with gaiamesh run)",
            dir.root().display()
        );
    }
    Ok(NodeApi::of(&dir)?)
}

fn run_job(a: RunArgs) -> Result<()> {
    let api = api(&a.data_dir)?;
    let out = a
        .out
        .as_ref()
        .map(std::path::absolute)
        .transpose()
        .context("cannot resolve --out")?;
    let job = api.compute_start(&ComputeRequest {
        provider: a.providers.provider,
        query: a.providers.query,
        asset: a.providers.asset,
        algorithm: a.algorithm,
        purpose: a.purpose,
        args: a.args,
        out,
    })?;
    let t0 = Instant::now();
    let progress = ProgressLine::count(1, "compute job", a.json);
    let view = loop {
        let v = api.compute_job(job)?;
        if matches!(v.state.as_str(), "completed" | "failed") {
            break v;
        }
        if t0.elapsed() > a.timeout {
            bail!(
                "job {job} still {} after {:?}; follow it with gaiamesh compute status {job}",
                v.state,
                a.timeout
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    progress.done();
    if a.json {
        return print_json(&view);
    }
    print_view(&view);
    if view.state == "failed" {
        bail!(
            "compute job {job} failed: {}",
            view.error.as_deref().unwrap_or("unknown error")
        );
    }
    Ok(())
}

fn print_view(v: &ComputeJobView) {
    println!(
        "job {}: {} — {} on {} at {}",
        v.id, v.state, v.algorithm, v.asset, v.provider
    );
    if let Some(result) = &v.result {
        println!(
            "result ({} bytes, BLAKE3 {}):",
            result.len(),
            v.result_blake3.as_deref().unwrap_or("?")
        );
        println!("{}", result.trim_end());
    }
    if let Some(u) = &v.usage {
        println!(
            "usage: {} fuel, {:.1} ms, peak memory {} KiB, read {} bytes, wrote {} bytes",
            u.fuel,
            u.wall_us as f64 / 1e3,
            u.peak_memory_bytes / 1024,
            u.bytes_read,
            u.bytes_written
        );
    }
    match &v.charge {
        Some(c) => println!(
            "price: {} {} ({} {} at {} {} per {})",
            c.amount, c.currency, c.quantity, c.unit, c.unit_price, c.currency, c.unit
        ),
        None if v.usage.is_some() => println!("price: the provider publishes no price for it"),
        None => {}
    }
    for t in &v.attempts {
        println!("tried {} ({}): {}", t.provider, t.asset, t.error);
    }
    if let Some(a) = &v.agreement {
        println!("agreement {a}; usage record signed by both, in both audit logs");
    }
    if let Some(e) = &v.error {
        println!("error: {e}");
    }
}
