//! # gaiamesh-sim
//!
//! A deterministic discrete-event simulator of gaiamesh federations (DESIGN §10): virtual
//! time, one seeded ChaCha RNG per run, no wall clock in the model — the same scenario and
//! seed give byte-identical output files.
//!
//! - [`engine`]: the event queue and virtual time;
//! - [`net`]: regions, the latency matrix (built-in EU-weighted or CSV), jitter, loss,
//!   bandwidth queues, partitions and node up/down state;
//! - [`kad`]: Kademlia routing tables and the iterative lookup (k = 20, α = 3);
//!   [`providers`]: provider records of attribute keys and provider lookups;
//! - [`model`]: the federation — gossip mesh, directory views merged with the node's real
//!   merge rules, anti-entropy with the real reconciliation state machine, churn, faults,
//!   adversaries;
//! - [`swarm`]: repository releases spread by chunk exchange under per-node bandwidth;
//! - [`scenario`]: the TOML scenario format; [`output`]: summary, CSV series, SVG and PNG plots.
//!
//! ```
//! let sc = gaiamesh_sim::scenario::Scenario::parse(
//!     "name = \"doc\"\nnodes = 50\nduration = \"20s\"\n[kademlia]\nlookups_per_second = 2.0\n",
//!     std::path::Path::new("doc.toml"),
//! ).unwrap();
//! let results = gaiamesh_sim::simulate(sc, 7, gaiamesh_sim::net::LatencyMatrix::default_eu(), |_, _| {}).unwrap();
//! assert!(results.updates > 0 && results.final_convergence > 0.99);
//! ```

pub mod engine;
pub mod kad;
pub mod model;
pub mod net;
pub mod output;
mod outsiders;
#[cfg(feature = "png")]
mod png;
pub mod providers;
pub mod scenario;
pub mod stats;
pub mod swarm;
pub mod sweep;
pub mod trace;

use std::path::Path;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The scenario is unusable.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    /// The scenario's placement does not fit its latency matrix.
    #[error(transparent)]
    Placement(#[from] net::PlacementError),
    /// The simulated federation could not be set up.
    #[error("the simulated federation's genesis: {0}")]
    Genesis(#[from] gaiamesh_protocol::federation::GenesisError),
    /// An output file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The output directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Runs `sc` with `seed`; `progress(fraction of simulated time, events)` is called about a
/// hundred times.
pub fn simulate(
    sc: scenario::Scenario,
    seed: u64,
    matrix: net::LatencyMatrix,
    progress: impl FnMut(f64, u64),
) -> Result<model::Results, SimError> {
    let m = model::Model::new(sc, seed, matrix)?;
    Ok(m.run(progress))
}

/// Loads the scenario at `path`, runs it with `seed` (the scenario's own when `None`) and
/// writes the outputs into `out`. Returns the summary.
pub fn run_file(
    path: &Path,
    seed: Option<u64>,
    out: &Path,
    progress: impl FnMut(f64, u64),
) -> Result<output::Summary, SimError> {
    let bytes = std::fs::read(path).map_err(|source| scenario::ScenarioError::Read {
        path: path.display().to_string(),
        source,
    })?;
    run_text(&String::from_utf8_lossy(&bytes), path, seed, out, progress)
}

/// Runs the scenario `text` as if read from `path` (files it names, such as a latency
/// matrix, are found next to `path`; a sweep passes each point's scenario this way), with
/// `seed` (the scenario's own when `None`), writing the outputs into `out`.
pub fn run_text(
    text: &str,
    path: &Path,
    seed: Option<u64>,
    out: &Path,
    progress: impl FnMut(f64, u64),
) -> Result<output::Summary, SimError> {
    let sc = scenario::Scenario::parse(text, path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let matrix = sc.latency(base)?;
    let seed = seed.unwrap_or(sc.seed);
    let name = sc.name.clone();
    let nodes = sc.nodes;
    let seconds = sc.duration.as_secs_f64();
    let results = simulate(sc, seed, matrix, progress)?;
    let summary = output::Summary::new(&name, seed, nodes, seconds, &results);
    let manifest = serde_json::json!({
        "scenario": path.file_name().map(|f| f.to_string_lossy().into_owned()),
        "scenario_blake3": blake3::hash(text.as_bytes()).to_hex().to_string(),
        "seed": seed,
        "gaiamesh_version": env!("CARGO_PKG_VERSION"),
        "files": output::file_names(&results),
    });
    output::write_all(out, &summary, &results, &manifest).map_err(|source| SimError::Write {
        path: out.display().to_string(),
        source,
    })?;
    Ok(summary)
}
