//! `cargo run --release -p gaiamesh-bench [-- --quick]`: every hot path against its
//! baseline, one table of ratios (see the library's documentation).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use gaiamesh_bench::{
    paths,
    report::{self, References, Row},
};

/// Every hot path against a baseline measured in the same run, one table of ratios.
///
/// Prints one line per path, `bench: <path> <ours> vs <baseline> ratio <r> target <t> met`
/// (or `NOT MET`), progress on standard error. The full run takes about 8 minutes on a
/// 2-core machine (most of it the 100k-node simulation, 1 GiB transfers and signing a 100k
/// catalogue); `--quick` about a minute.
#[derive(Debug, Parser)]
#[command(name = "gaiamesh-bench", version)]
struct Args {
    /// Smaller sizes (10k catalogue, 256 MiB transfers, 10k-node simulation); fails when a
    /// path's ratio to its baseline is 2x worse than its reference (what CI runs).
    #[arg(long)]
    quick: bool,
    /// Only these paths (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<PathName>,
    /// The gaiamesh binary to run (default: build it with cargo next to this binary).
    #[arg(long, env = "GAIAMESH_BIN", value_name = "FILE")]
    gaiamesh: Option<PathBuf>,
    /// Also simulate 1M nodes (target: at most 8 GiB); takes long.
    #[arg(long)]
    large: bool,
    /// Reference ratios of the quick mode.
    #[arg(long, value_name = "FILE", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/reference.toml"))]
    reference: PathBuf,
    /// Write this quick run's ratios as the new references (after an intended change).
    #[arg(long, requires = "quick")]
    write_reference: bool,
    /// Also write the table as Markdown (for BENCHMARKS.md).
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

/// A hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PathName {
    Query,
    Transfer,
    Reconcile,
    Sim,
    Idle,
}

impl PathName {
    fn needs_binary(self) -> bool {
        matches!(self, Self::Transfer | Self::Sim | Self::Idle)
    }
}

/// The gaiamesh binary: the one given, or the one cargo builds next to this binary (built
/// now, so it is never stale).
fn gaiamesh_binary(given: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_file() {
            bail!("--gaiamesh {}: no such file", p.display());
        }
        return Ok(p);
    }
    let me = std::env::current_exe()?;
    let dir = me.parent().context("this binary has no directory")?;
    let bin = dir.join("gaiamesh");
    if let Ok(cargo) = std::env::var("CARGO") {
        // this binary's profile: target/debug is `dev`, other directories are named after
        // theirs (`release`, or a custom profile)
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        eprintln!("building the gaiamesh binary (profile {profile})");
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--quiet", "--profile", profile]);
        cmd.args(["-p", "gaiamesh-node", "--bin", "gaiamesh"]);
        if !cmd.status()?.success() {
            bail!("building the gaiamesh binary failed");
        }
    }
    if !bin.is_file() {
        bail!(
            "no gaiamesh binary at {}: run through cargo (`cargo run --release -p gaiamesh-bench`), \
             or pass --gaiamesh FILE",
            bin.display()
        );
    }
    Ok(bin)
}

fn run_path(name: PathName, args: &Args, bin: Option<&Path>) -> Result<Vec<Row>> {
    let bin = || bin.context("no gaiamesh binary");
    let examples = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/examples/sim"
    ));
    match name {
        PathName::Query => paths::query::run(if args.quick { 10_000 } else { 100_000 }, args.quick),
        PathName::Reconcile => paths::reconcile::run(),
        PathName::Transfer => {
            // Quick: big enough that start-up costs do not dominate, three rounds' median
            // (a single 64 MiB round varied 2x between runs).
            let (mib, rounds) = if args.quick { (256, 3) } else { (1024, 3) };
            paths::transfer::run(bin()?, mib, rounds)
        }
        PathName::Sim => paths::sim::run(bin()?, examples, args.quick, args.large),
        PathName::Idle => {
            let (starts, idle) = if args.quick { (3, 1) } else { (5, 3) };
            paths::idle::run(bin()?, starts, Duration::from_secs(idle))
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    let all = [
        PathName::Reconcile,
        PathName::Query,
        PathName::Transfer,
        PathName::Idle,
        PathName::Sim,
    ];
    let chosen: Vec<PathName> = all
        .into_iter()
        .filter(|p| args.only.is_empty() || args.only.contains(p))
        .collect();
    let bin = if chosen.iter().any(|p| p.needs_binary()) {
        Some(gaiamesh_binary(args.gaiamesh.clone())?)
    } else {
        None
    };
    let mut rows = Vec::new();
    // Which path produced each row.
    let mut owner: Vec<PathName> = Vec::new();
    let mut failed = Vec::new();
    for name in chosen {
        match run_path(name, &args, bin.as_deref()) {
            Ok(r) => {
                for row in &r {
                    println!("{row}");
                    owner.push(name);
                }
                rows.extend(r);
            }
            Err(e) => {
                eprintln!("error: {name:?} could not be measured: {e:#}");
                failed.push(format!("{name:?}"));
            }
        }
    }
    let not_met = rows.iter().filter(|r| !r.met()).count();
    eprintln!(
        "\n{} paths measured in {:.0?}; {} of {} targets met",
        rows.len(),
        started.elapsed(),
        rows.len() - not_met,
        rows.len()
    );
    if let Some(file) = &args.markdown {
        std::fs::write(file, report::markdown(&rows))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if !failed.is_empty() {
        eprintln!("not measured: {}", failed.join(", "));
        return Ok(ExitCode::from(2));
    }
    if args.quick {
        if args.write_reference {
            let text = References::from_rows(&rows).to_text()?;
            std::fs::write(&args.reference, text)
                .with_context(|| format!("writing {}", args.reference.display()))?;
            eprintln!("references written to {}", args.reference.display());
            return Ok(ExitCode::SUCCESS);
        }
        let refs = References::load(&args.reference)?;
        let mut regressions = refs.regressions(&rows);
        if !regressions.is_empty() {
            // A regression must show twice: a shared machine has noisy minutes, so the
            // paths flagged are measured once more and only a repeat fails.
            let mut again: Vec<PathName> = rows
                .iter()
                .zip(&owner)
                .filter(|(r, _)| !refs.regressions(std::slice::from_ref(*r)).is_empty())
                .map(|(_, n)| *n)
                .collect();
            again.dedup();
            for r in &regressions {
                eprintln!("possible regression, measuring again: {r}");
            }
            for name in again {
                let fresh = run_path(name, &args, bin.as_deref())?;
                for row in fresh {
                    println!("{row} (measured again)");
                    if let Some(old) = rows.iter_mut().find(|r| r.path == row.path) {
                        *old = row;
                    }
                }
            }
            regressions = refs.regressions(&rows);
        }
        if !regressions.is_empty() {
            for r in &regressions {
                eprintln!("regression: {r}");
            }
            return Ok(ExitCode::FAILURE);
        }
        eprintln!(
            "no path is {}x worse than its reference ({})",
            report::REGRESSION_FACTOR,
            args.reference.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
