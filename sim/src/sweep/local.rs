//! Running a sweep's runs on this machine: one ([`run_one`], what a cluster task does) or
//! all of them on `jobs` worker threads ([`run_all`]).

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{Run, Sweep, SweepError};

/// The directory of run `index` under the sweep's output directory.
pub fn run_dir(out: &Path, index: usize) -> PathBuf {
    out.join("runs").join(format!("{index:06}"))
}

/// Whether run `index` already finished (its `summary.json` and `point.json` are there).
pub fn done(out: &Path, index: usize) -> bool {
    let dir = run_dir(out, index);
    dir.join("summary.json").is_file() && dir.join("point.json").is_file()
}

/// Runs run `index` of `sweep` into its directory under `out` (again, if it ran before).
/// `point.json` is written last, so a run cut short is not taken for a finished one.
pub fn run_one(sweep: &Sweep, index: usize, out: &Path) -> Result<Run, SweepError> {
    let run = sweep.run(index)?;
    let text = sweep.scenario(&run.point)?;
    let dir = run_dir(out, index);
    let io = |source| SweepError::Io {
        path: dir.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(dir.join("point.json"));
    std::fs::create_dir_all(&dir).map_err(io)?;
    crate::run_text(&text, &sweep.scenario_path, Some(run.seed), &dir, |_, _| {}).map_err(
        |source| SweepError::Run {
            index,
            point: run.point.label(),
            seed: run.seed,
            source: Box::new(source),
        },
    )?;
    let json = serde_json::to_string_pretty(&run).unwrap_or_default() + "\n";
    std::fs::write(dir.join("point.json"), json).map_err(io)?;
    Ok(run)
}

/// What [`run_all`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Runs done now.
    pub ran: usize,
    /// Runs found done already and skipped.
    pub skipped: usize,
    /// Runs that failed, with why (the others go on).
    pub failed: Vec<SweepError>,
}

/// Runs every run of `sweep` not done yet into `out`, on `jobs` threads (each run is one
/// single-threaded simulation); `progress(finished, total)` after each. A failed run is
/// reported and the others go on. A sweep stopped half-way (Ctrl-C, a crash) resumes where
/// it was when run again: only runs whose `point.json` was written count as done.
pub fn run_all(
    sweep: &Sweep,
    out: &Path,
    jobs: usize,
    progress: impl Fn(usize, usize) + Sync,
) -> Outcome {
    let total = sweep.runs();
    let todo: Vec<usize> = (0..total).filter(|i| !done(out, *i)).collect();
    let outcome = Mutex::new(Outcome {
        skipped: total - todo.len(),
        ..Outcome::default()
    });
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(total - todo.len());
    progress(finished.load(Ordering::Relaxed), total);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, todo.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let Some(&index) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let result = run_one(sweep, index, out);
                    {
                        let mut o = outcome.lock().unwrap_or_else(PoisonError::into_inner);
                        match result {
                            Ok(_) => o.ran += 1,
                            Err(e) => o.failed.push(e),
                        }
                    }
                    progress(finished.fetch_add(1, Ordering::Relaxed) + 1, total);
                }
            });
        }
    });
    outcome.into_inner().unwrap_or_else(PoisonError::into_inner)
}
