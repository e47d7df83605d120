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
    }
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
