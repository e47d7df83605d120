//! `gaiamesh sim run`: the deterministic simulator on a scenario file; `gaiamesh sim
//! replay`: a recorded core trace fed back to the node core.

use std::{path::PathBuf, time::Instant};

use anyhow::{Context, Result};

/// `gaiamesh sim` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Run a scenario (see config/examples/sim/) and write summary.json, CSV series, SVG
    /// plots and manifest.json into --out. Same scenario and seed: byte-identical outputs.
    Run(RunArgs),
    /// Replay a core trace through the node core and check it decides the same at every
    /// step. Traces come from a daemon run with GAIAMESH_CORE_TRACE=1
    /// (DATADIR/core-trace.jsonl) or from a scenario's `trace_node` (OUT/core-trace.jsonl).
    /// Exit status 1 and the first divergence when the decisions differ.
    Replay(ReplayArgs),
    /// Run a parameter sweep (a grid of scenario overrides × seeds, see
    /// config/examples/sim/sweep.toml): every run on this machine's cores (runs already done
    /// in --out are skipped), one run with --index (what a cluster task does), or, with
    /// --emit, the same sweep as a Kubernetes Indexed Job or a Slurm job array.
    Sweep(SweepArgs),
    /// Gather a sweep's runs in DIR into sweep.csv (a row per run), points.csv (a row per
    /// point: mean and 95 % confidence interval over its seeds) and a chart per metric.
    Merge(MergeArgs),
}

/// Where `sim sweep --emit` targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Emit {
    /// DIR/kubernetes/: a ConfigMap with the sweep and its scenario, a NetworkPolicy (the
    /// runs need no network), and an Indexed Job with one completion per run writing to a
    /// PersistentVolumeClaim (`kubectl apply -f DIR/kubernetes/`).
    Kubernetes,
    /// DIR/sweep.slurm: a job array with one task per run (`sbatch DIR/sweep.slurm`).
    Slurm,
}

/// Arguments of `gaiamesh sim sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// The sweep file (TOML).
    sweep: PathBuf,
    /// Output directory: runs/NNNNNN/ per run (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Runs at once (default: every core).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only this run (0-based), e.g. $JOB_COMPLETION_INDEX or $SLURM_ARRAY_TASK_ID.
    #[arg(long, conflicts_with_all = ["emit", "jobs"])]
    index: Option<usize>,
    /// Write the sweep for a cluster instead of running it.
    #[arg(long, value_enum)]
    emit: Option<Emit>,
    /// (--emit kubernetes) The image with gaiamesh on its PATH (deploy/container builds it).
    #[arg(long, default_value = concat!("gaiamesh:", env!("CARGO_PKG_VERSION")))]
    image: String,
    /// (--emit kubernetes) The namespace of the Job.
    #[arg(long, default_value = "gaiamesh")]
    namespace: String,
    /// (--emit kubernetes) The PersistentVolumeClaim for the results.
    #[arg(long, default_value = "gaiamesh-sweep-results")]
    claim: String,
    /// (--emit) Runs at once on the cluster.
    #[arg(long, default_value_t = 32)]
    parallelism: usize,
    /// (--emit slurm) The gaiamesh binary on the cluster's nodes.
    #[arg(long, default_value = "gaiamesh")]
    binary: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Arguments of `gaiamesh sim merge`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The sweep's output directory.
    dir: PathBuf,
}

/// Arguments of `gaiamesh sim replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The trace (JSON lines).
    trace: PathBuf,
}

/// Arguments of `gaiamesh sim run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Seed of the run's random generator (default: the scenario's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory (created if missing; files in it are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

pub(super) fn run(cmd: SimCommand) -> Result<()> {
    match cmd {
        SimCommand::Run(a) => run_scenario(a),
        SimCommand::Replay(a) => replay(&a),
        SimCommand::Sweep(a) => sweep(a),
        SimCommand::Merge(a) => merge(&a),
    }
}

fn sweep(a: SweepArgs) -> Result<()> {
    use gaiamesh_sim::sweep::{Sweep, emit, local};
    let sweep = Sweep::load(&a.sweep)?;
    if let Some(index) = a.index {
        let run = local::run_one(&sweep, index, &a.out)?;
        if !a.quiet {
            println!(
                "run {index}: {}, seed {} -> {}",
                run.point.label(),
                run.seed,
                local::run_dir(&a.out, index).display()
            );
        }
        return Ok(());
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let cluster = emit::Cluster {
        image: a.image,
        claim: a.claim,
        namespace: a.namespace,
        parallelism: a.parallelism,
        binary: a.binary,
    };
    match a.emit {
        Some(Emit::Kubernetes) => {
            let sweep_text = std::fs::read_to_string(&a.sweep)?;
            let scenario_text = std::fs::read_to_string(&sweep.scenario_path)?;
            let dir = a.out.join("kubernetes");
            std::fs::create_dir_all(&dir)?;
            for (file, object) in emit::kubernetes(&sweep, &sweep_text, &scenario_text, &cluster) {
                std::fs::write(
                    dir.join(file),
                    serde_json::to_string_pretty(&object)? + "\n",
                )?;
            }
            println!(
                "wrote {} ({} runs as an Indexed Job in namespace {}, {} at once, results to the \
                 claim {}); kubectl apply -f {}, then gaiamesh sim merge on the claim's contents",
                dir.display(),
                sweep.runs(),
                cluster.namespace,
                cluster.parallelism.min(sweep.runs()),
                cluster.claim,
                dir.display()
            );
            return Ok(());
        }
        Some(Emit::Slurm) => {
            let sweep_path = std::path::absolute(&a.sweep)?;
            let out = std::path::absolute(&a.out)?;
            let path = a.out.join("sweep.slurm");
            std::fs::write(&path, emit::slurm(&sweep, &sweep_path, &out, &cluster))?;
            println!(
                "wrote {} ({} runs as a job array); submit it with sbatch {}",
                path.display(),
                sweep.runs(),
                path.display()
            );
            return Ok(());
        }
        None => {}
    }
    let jobs = a
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    eprintln!(
        "{}: {} points x {} seeds = {} runs on {jobs} threads into {}",
        a.sweep.display(),
        sweep.points(),
        sweep.seeds.len(),
        sweep.runs(),
        a.out.display()
    );
    let bar = super::ProgressLine::count(sweep.runs() as u64, "runs", a.quiet);
    let started = Instant::now();
    let outcome = local::run_all(&sweep, &a.out, jobs, |done, _| {
        bar.set_count(done as u64);
    });
    bar.done();
    println!(
        "{} runs done in {:.1?} ({} found done already); gather them with gaiamesh sim merge {}",
        outcome.ran,
        started.elapsed(),
        outcome.skipped,
        a.out.display()
    );
    if !outcome.failed.is_empty() {
        for e in &outcome.failed {
            eprintln!("error: {e}");
        }
        anyhow::bail!(
            "{} of {} runs failed (run the sweep again to retry them)",
            outcome.failed.len(),
            sweep.runs()
        );
    }
    Ok(())
}

fn merge(a: &MergeArgs) -> Result<()> {
    let merged = gaiamesh_sim::sweep::merge::merge(&a.dir)?;
    for u in &merged.unreadable {
        eprintln!("warning: left out {u}");
    }
    println!(
        "{} runs of {} points gathered into {}: {} (charts also as PNG)",
        merged.runs,
        merged.points,
        a.dir.display(),
        merged.files.join(", ")
    );
    Ok(())
}

fn replay(a: &ReplayArgs) -> Result<()> {
    let entries = gaiamesh_sim::trace::load(&a.trace)?;
    let done = gaiamesh_sim::trace::check(&entries, &a.trace.display().to_string())?;
    println!(
        "{}: {} inputs to {} core start(s) replayed, the same {} decisions",
        a.trace.display(),
        done.steps,
        done.starts,
        done.decisions
    );
    Ok(())
}

fn run_scenario(a: RunArgs) -> Result<()> {
    let started = Instant::now();
    let bar = super::ProgressLine::fraction(a.quiet);
    let progress = |f: f64, events: u64| {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        bar.set_fraction(
            f,
            format!("{events} events  {:.0} events/s", events as f64 / secs),
        );
    };
    // The same line `gaiamesh devnet` prints for its nodes (an unreadable scenario is
    // reported by run_file below).
    if let Ok(text) = std::fs::read_to_string(&a.scenario)
        && let Ok(sc) = gaiamesh_sim::scenario::Scenario::parse(&text, &a.scenario)
    {
        eprintln!("{}", sc.params().summary());
    }
    let summary = gaiamesh_sim::run_file(&a.scenario, a.seed, &a.out, progress)
        .with_context(|| format!("simulation of {}", a.scenario.display()))?;
    bar.done();
    let wall = started.elapsed();
    let timing = serde_json::json!({
        "wall_seconds": wall.as_secs_f64(),
        "events_per_second": summary.events as f64 / wall.as_secs_f64().max(1e-9),
        "peak_rss_mib": peak_rss_mib(),
    });
    std::fs::write(
        a.out.join("timing.json"),
        serde_json::to_string_pretty(&timing)? + "\n",
    )?;
    println!(
        "{}: {} nodes, {:.0} s simulated, seed {}",
        summary.scenario, summary.nodes, summary.simulated_seconds, summary.seed
    );
    println!(
        "  updates {}   propagation p50 {} ms  p99 {} ms  max {} ms   final convergence {:.4}",
        summary.updates,
        summary.propagation_ms.p50,
        summary.propagation_ms.p99,
        summary.propagation_ms.max,
        summary.final_convergence
    );
    println!(
        "  lookups {}   mean hops {}   latency p50 {} ms  p99 {} ms   exact {:.3}",
        summary.lookups.count,
        summary.lookups.mean_hops,
        summary.lookups.latency_ms.p50,
        summary.lookups.latency_ms.p99,
        summary.lookups.exact_fraction
    );
    for h in &summary.heals {
        match h.converged_after_s {
            Some(s) => println!("  heal at {} s: converged {s} s later", h.at_s),
            None => println!("  heal at {} s: NOT converged by the end", h.at_s),
        }
    }
    if let Some(p) = &summary.provider_lookups {
        println!(
            "  provider lookups {}   found {:.3}   mean hops {}   latency p50 {} ms  p99 {} ms",
            p.count, p.found_fraction, p.mean_hops, p.latency_ms.p50, p.latency_ms.p99
        );
    }
    for (i, r) in summary.repository.iter().enumerate() {
        println!(
            "  release {i} ({} MiB at {} s): {}/{} nodes completed, p50 {:.1} s, max {:.1} s; \
             lower bound {:.1} s ({}), client-server {:.1} s",
            r.bytes >> 20,
            r.at_s,
            r.completed,
            r.downloaders,
            r.completion_ms.p50 / 1e3,
            r.completion_ms.max / 1e3,
            r.lower_bound_ms / 1e3,
            r.ratio_to_lower_bound
                .map_or("not all completed".to_owned(), |x| format!(
                    "last at {x:.2}x"
                )),
            r.client_server_ms / 1e3
        );
    }
    println!(
        "  adversaries: {} forged rejected, {} equivocations detected, {} sybil attempts refused",
        summary.adversaries.forged_rejected,
        summary.adversaries.equivocations_detected,
        summary.adversaries.sybils_refused
    );
    println!(
        "  {} events in {:.1?} ({:.0}/s), peak RSS {} MiB; outputs in {}",
        summary.events,
        wall,
        summary.events as f64 / wall.as_secs_f64().max(1e-9),
        peak_rss_mib().map_or("?".into(), |m| m.to_string()),
        a.out.display()
    );
    Ok(())
}

/// Peak resident memory of this process (Linux `VmHWM`), MiB.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
