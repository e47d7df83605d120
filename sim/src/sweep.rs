//! Parameter sweeps: a grid of scenario overrides × seeds, each run an ordinary simulation.
//!
//! ```toml
//! scenario = "quickstart.toml"        # the base scenario, next to this file
//! seeds = 5                           # seeds 1..=5 (or a list: seeds = [1, 7, 42])
//! [grid]                              # dotted paths into the scenario, and their values
//! nodes = [500, 1000, 2000]
//! "workload.updates_per_second" = [1.0, 4.0]
//! ```
//!
//! Run `i` of a sweep is point `i / seeds` of the grid (the last key varies fastest) with
//! seed number `i % seeds`; its outputs go to `OUT/runs/NNNNN/` with `point.json` (what it
//! ran). The same index always means the same run, so the sweep can run on this machine
//! ([`local::run_all`], every core, runs already done are skipped), or one index per task
//! on a cluster ([`emit`]: a Kubernetes Indexed Job or a Slurm job array calling
//! `gaiamesh sim sweep … --index I`); [`merge`] gathers every run's `summary.json` into
//! CSV files and charts with 95 % confidence intervals.

pub mod emit;
pub mod local;
pub mod merge;
mod spec;

pub use spec::{MAX_RUNS, Point, Run, Sweep, SweepError};
