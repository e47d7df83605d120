//! `gaiamesh compute run|status|cancel|result|inspect|embed`: run a released WebAssembly algorithm on a provider's
//! asset offered for computation, through the running node; only the result comes back,
//! with a usage record signed by both and its price (docs/exchange.md, "Compute-to-data").

use std::{path::PathBuf, time::Duration, time::Instant};

use anyhow::{Context, Result, bail};

use super::{DataDirArg, ProgressLine, parse_duration, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    daemon::{ComputeJobView, ComputeRequest, ReviewDecision, ReviewView},
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
    /// Write a completed job's result to standard output or a file.
    Result(ResultArgs),
    /// As a provider: results waiting for this operator's review (assets whose policy has
    /// `review = true`).
    Reviews(ReviewsArgs),
    /// As a provider: show one result waiting for review, then approve it (it goes to the
    /// consumer) or reject it with a reason (only the signed usage record goes).
    Review(ReviewArgs),
    /// Check an algorithm component as a provider would (a WASI 0.2 command, no network,
    /// a valid manifest) and print what it declares; needs no node.
    Inspect(InspectArgs),
    /// Add a manifest (what the algorithm reads, writes and needs) to a component built by
    /// any toolchain, before `gaiamesh repo publish --platform wasm32-wasip2`; needs no node.
    Embed(EmbedArgs),
}

/// Arguments of `compute result`.
#[derive(Debug, clap::Args)]
pub struct ResultArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// The job id `compute run` printed.
    job: u64,
    /// Write it to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Arguments of `compute reviews`.
#[derive(Debug, clap::Args)]
pub struct ReviewsArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print them as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `compute review`.
#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// The review id `compute reviews` lists.
    id: u64,
    /// Let the result go to the consumer.
    #[arg(long, conflicts_with = "reject")]
    approve: bool,
    /// Keep the result here; REASON goes to the consumer in the usage record.
    #[arg(long, value_name = "REASON")]
    reject: Option<String>,
    /// Print the result (or the decision) as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `compute inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The component (`.wasm`).
    file: PathBuf,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `compute embed`.
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// The component (`.wasm`), without a manifest.
    file: PathBuf,
    /// The manifest, TOML (see config/examples/algorithms/column-stats/algorithm.toml).
    #[arg(long)]
    manifest: PathBuf,
    /// Where to write the component with its manifest.
    #[arg(long)]
    out: PathBuf,
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
        ComputeCommand::Result(a) => result(a),
        ComputeCommand::Reviews(a) => {
            let reviews = api(&a.data_dir)?.compute_reviews()?;
            if a.json {
                return print_json(&reviews);
            }
            if reviews.is_empty() {
                println!("no result waits for review");
            }
            for r in &reviews {
                print_review(r);
            }
            Ok(())
        }
        ComputeCommand::Review(a) => review(a),
        ComputeCommand::Inspect(a) => inspect(a),
        ComputeCommand::Embed(a) => embed(a),
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

fn review(a: ReviewArgs) -> Result<()> {
    let api = api(&a.data_dir)?;
    let decision = match (a.approve, a.reject) {
        (true, _) => Some(ReviewDecision {
            approve: true,
            reason: None,
        }),
        (false, Some(reason)) => Some(ReviewDecision {
            approve: false,
            reason: Some(reason),
        }),
        (false, None) => None,
    };
    let Some(decision) = decision else {
        let view = api.compute_review(a.id)?;
        if a.json {
            return print_json(&view);
        }
        print_review(&view);
        println!("{}", view.result.trim_end());
        println!(
            "decide with gaiamesh compute review {} --approve, or --reject REASON",
            a.id
        );
        return Ok(());
    };
    let view = api.compute_decide(a.id, &decision)?;
    if a.json {
        return print_json(&view);
    }
    if decision.approve {
        println!(
            "approved: result {} ({} bytes) goes to {}",
            a.id, view.result_bytes, view.consumer
        );
    } else {
        println!(
            "rejected: result {} stays here; {} gets the usage record with the reason",
            a.id, view.consumer
        );
    }
    Ok(())
}

fn print_review(r: &ReviewView) {
    println!(
        "review {}: {} on {} for {} — {} bytes (BLAKE3 {}), args {:?}, withheld at {} unless decided",
        r.id,
        r.algorithm,
        r.asset,
        r.consumer,
        r.result_bytes,
        r.result_blake3,
        r.args,
        gaiamesh_protocol::time::UnixMillis(r.decide_by)
    );
}

fn result(a: ResultArgs) -> Result<()> {
    let view = api(&a.data_dir)?.compute_job(a.job)?;
    let Some(result) = view.result else {
        bail!(
            "job {} has no result: it is {}{}",
            a.job,
            view.state,
            view.error.map(|e| format!(" ({e})")).unwrap_or_default()
        );
    };
    // The view carries the result as text; exact bytes are in the file `run --out` named.
    let bytes = match &view.out {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the job's result file {path}"))?,
        None => result.into_bytes(),
    };
    match a.out {
        Some(path) => std::fs::write(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display())),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
            Ok(())
        }
    }
}

#[derive(serde::Serialize)]
struct Inspected {
    file: String,
    bytes: usize,
    blake3: String,
    manifest: gaiamesh_compute::Manifest,
}

fn inspect(a: InspectArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let manifest = gaiamesh_compute::Manifest::require(&bytes)
        .with_context(|| format!("{} has no valid manifest", a.file.display()))?;
    // Compiling it runs the provider's own checks (a command component, permitted imports).
    gaiamesh_compute::Sandbox::new()?
        .load(&bytes)
        .with_context(|| format!("a provider would refuse {}", a.file.display()))?;
    let found = Inspected {
        file: a.file.display().to_string(),
        bytes: bytes.len(),
        blake3: blake3::hash(&bytes).to_hex().to_string(),
        manifest,
    };
    if a.json {
        return print_json(&found);
    }
    println!(
        "{}: a runnable {} algorithm ({} bytes, blake3 {})",
        found.file,
        gaiamesh_compute::manifest::PLATFORM,
        found.bytes,
        found.blake3
    );
    print!("{}", found.manifest.to_toml());
    Ok(())
}

fn embed(a: EmbedArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.manifest)
        .with_context(|| format!("cannot read {}", a.manifest.display()))?;
    let manifest = gaiamesh_compute::Manifest::parse(&text)
        .with_context(|| format!("in {}", a.manifest.display()))?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let declared = manifest
        .embed(&bytes)
        .with_context(|| format!("cannot add a manifest to {}", a.file.display()))?;
    std::fs::write(&a.out, &declared)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "wrote {} ({} bytes, blake3 {}); publish it with gaiamesh repo publish --platform {}",
        a.out.display(),
        declared.len(),
        blake3::hash(&declared).to_hex(),
        gaiamesh_compute::manifest::PLATFORM
    );
    Ok(())
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

/// A charge as one line: `0.0011 EUR (0.0226 Gfuel at 0.05 EUR per Gfuel)`.
pub(super) fn price(c: &gaiamesh_exchange::metering::Charge) -> String {
    format!(
        "{} {} ({} {} at {} {} per {})",
        c.amount, c.currency, c.quantity, c.unit, c.unit_price, c.currency, c.unit
    )
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
        Some(c) => println!("price: {}", price(c)),
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
