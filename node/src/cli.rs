//! The `gaiamesh` command line. Commands that print data accept `--json`. Exit codes: 0 ok,
//! 1 failure, 2 usage error.

mod asset;
mod audit;
mod backup;
mod completions;
mod compute;
mod devnet;
mod directory;
mod exchange;
mod federation;
mod gaiax;
mod init;
mod progress;
mod query;
mod repo;
mod run;
mod sd;
mod sim;
mod testbed;

use progress::ProgressLine;

pub(crate) use crate::datadir::read_document;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

pub use crate::VERSION;

/// gaiamesh: a peer-to-peer mesh for federated data infrastructure.
///
/// Every provider node runs one daemon; the daemons gossip signed self-descriptions into a
/// distributed directory. These commands create a federation, admit nodes, and sign and
/// verify self-descriptions offline.
#[derive(Debug, Parser)]
#[command(
    name = "gaiamesh",
    version = VERSION,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node's data dir: node key, config, and optionally genesis and credential.
    Init(init::InitArgs),
    /// Create a federation, admit members, revoke them, attest certifications.
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// Check, sign and verify self-descriptions.
    #[command(subcommand)]
    Sd(sd::SdCommand),
    /// Work on the local catalogue of a data dir (offline, when no node is running).
    #[command(subcommand)]
    Directory(directory::DirectoryCommand),
    /// Start a fresh federation of N nodes on loopback, wait for convergence, run example
    /// queries and print a summary (the quickest way to see gaiamesh work).
    Devnet(devnet::DevnetArgs),
    /// Run the node daemon until SIGINT/SIGTERM.
    Run(run::RunArgs),
    /// Show a running node's status (peers, directory size).
    Status(StatusArgs),
    /// List a running node's connected peers and whether they passed admission.
    Peers(StatusArgs),
    /// Put a revocation list (from `federation revoke`) in force on a node.
    #[command(subcommand)]
    Revocations(run::RevocationsCommand),
    /// Query the catalogue: `gaiamesh query 'service.kind = storage.object and node.location.country = DE'`.
    Query(query::QueryArgs),
    /// Simulate a federation at scale (deterministic; see config/examples/sim/).
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// The real-network testbed: every node in a network namespace of its own, European
    /// latencies, partitions, kills and restarts emulated between them (needs root).
    #[command(subcommand)]
    Testbed(testbed::TestbedCommand),
    /// The federation's software repository: signing keys, threshold-signed releases.
    #[command(subcommand)]
    Repo(repo::RepoCommand),
    /// Data assets offered under usage policies (files, directories).
    #[command(subcommand)]
    Asset(asset::AssetCommand),
    /// Data exchange: negotiate a contract and fetch an asset directly from its provider.
    #[command(subcommand)]
    Exchange(exchange::ExchangeCommand),
    /// Compute-to-data: run a released WebAssembly algorithm on a provider's data, next to
    /// it; only the result comes back, metered and priced.
    #[command(subcommand)]
    Compute(compute::ComputeCommand),
    /// The node's tamper-evident log of agreements, transfers, receipts and refusals.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Gaia-X Trust Framework credentials: import them as a self-description, export one.
    #[command(subcommand)]
    Gaiax(gaiax::GaiaxCommand),
    /// Back up a node's data dir (key, configuration, catalogue, audit log) into one archive;
    /// a running node snapshots itself while it keeps running.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new data dir (same PeerId, same directory) and check it.
    Restore(backup::RestoreArgs),
    /// Print a shell completion script: `gaiamesh completions bash > /etc/bash_completion.d/gaiamesh`.
    Completions(completions::CompletionsArgs),
    /// Write man pages for every command: `gaiamesh man --out /usr/share/man/man1`.
    Man(completions::ManArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(args) => init::run(args),
        Command::Federation(cmd) => federation::run(cmd),
        Command::Sd(cmd) => sd::run(cmd),
        Command::Directory(cmd) => directory::run(cmd),
        Command::Query(args) => query::run(args),
        Command::Run(args) => run::run(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Status(args) => run::status(args),
        Command::Peers(args) => run::peers(args),
        Command::Revocations(cmd) => run::revocations(cmd),
        Command::Sim(cmd) => sim::run(cmd),
        Command::Testbed(cmd) => testbed::run(cmd),
        Command::Gaiax(cmd) => gaiax::run(cmd),
        Command::Asset(cmd) => asset::run(cmd),
        Command::Exchange(cmd) => exchange::run(cmd),
        Command::Compute(cmd) => compute::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Repo(cmd) => repo::run(cmd),
        Command::Backup(args) => backup::backup(args),
        Command::Restore(args) => backup::restore(args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man(args) => completions::man(&args),
    }
}

/// `--data-dir` shared by node commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// The node's data directory.
    #[arg(long, short = 'd', env = "GAIAMESH_DATA_DIR", value_name = "DIR")]
    pub data_dir: PathBuf,
}

/// `--data-dir` and `--json`: the arguments of commands that only read a node's state.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn parse_duration(s: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(s)
        .map_err(|e| anyhow::anyhow!("{s:?} is not a duration like 7d or 12h: {e}"))
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a binary file, refusing files larger than `limit` before reading them.
fn read_limited(path: &std::path::Path, limit: usize) -> Result<Vec<u8>> {
    use anyhow::Context;
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > limit as u64 {
        anyhow::bail!(
            "{} is {len} bytes, more than the {limit} a record may have",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
