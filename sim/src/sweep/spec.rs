//! The sweep file: its base scenario, seeds and grid, and the scenario of each run.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Most runs one sweep may have.
pub const MAX_RUNS: usize = 1_000_000;
/// Grids up to this many points have every point's scenario checked when loaded.
const CHECK_ALL_POINTS: usize = 10_000;
/// Most values one grid key may take.
const MAX_VALUES: usize = 10_000;

/// Why a sweep cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The sweep file is not valid.
    #[error("sweep {path}: {message}")]
    Invalid {
        /// The sweep file.
        path: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A point's scenario is not valid (the override does not fit the scenario).
    #[error("sweep {path}, point {point}: {message}")]
    Point {
        /// The sweep file.
        path: String,
        /// The point, as `key = value, …`.
        point: String,
        /// What the scenario parser said.
        message: String,
    },
    /// A run failed.
    #[error("run {index} ({point}, seed {seed}): {source}")]
    Run {
        /// The run's index.
        index: usize,
        /// Its point.
        point: String,
        /// Its seed.
        seed: u64,
        /// Why.
        #[source]
        source: Box<crate::SimError>,
    },
    /// `--index` beyond the last run.
    #[error("run index {index} is out of range: the sweep has {runs} runs (0–{})", runs.saturating_sub(1))]
    NoSuchRun {
        /// The index asked for.
        index: usize,
        /// How many runs there are.
        runs: usize,
    },
}

/// The seeds as written: a count (1..=N) or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// The sweep file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    scenario: PathBuf,
    #[serde(default = "one_seed")]
    seeds: Seeds,
    #[serde(default)]
    grid: BTreeMap<String, Vec<toml::Value>>,
}

fn one_seed() -> Seeds {
    Seeds::Count(1)
}

/// A loaded sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The sweep file.
    pub path: PathBuf,
    /// The base scenario's path (relative paths in it resolve next to it).
    pub scenario_path: PathBuf,
    base: toml::Table,
    /// The seeds each point runs with.
    pub seeds: Vec<u64>,
    /// Grid keys (dotted scenario paths) and their values, in key order.
    pub grid: Vec<(String, Vec<toml::Value>)>,
}

/// One point of the grid: a value for every key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The point's number (row-major over the grid, the last key fastest).
    pub point: usize,
    /// Key → value.
    pub params: BTreeMap<String, toml::Value>,
}

impl Point {
    /// `key = value, …`, for messages and labels.
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return "the base scenario".into();
        }
        self.params
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One run: a point and a seed (`point.json` in its directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Its index in the sweep.
    pub index: usize,
    /// The point.
    #[serde(flatten)]
    pub point: Point,
    /// The seed.
    pub seed: u64,
}

impl Sweep {
    /// Reads and checks the sweep at `path`: every point's scenario must parse.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|source| SweepError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the sweep `text` found at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SweepError> {
        let invalid = |message: String| SweepError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let file: SweepFile = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let seeds = match file.seeds {
            Seeds::Count(0) => return Err(invalid("seeds: at least 1".into())),
            Seeds::Count(n) => (1..=n).collect(),
            Seeds::List(l) if l.is_empty() => {
                return Err(invalid("seeds: an empty list runs nothing".into()));
            }
            Seeds::List(l) => l,
        };
        for (key, values) in &file.grid {
            if values.is_empty() || values.len() > MAX_VALUES {
                return Err(invalid(format!(
                    "grid.{key}: between 1 and {MAX_VALUES} values"
                )));
            }
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(invalid(format!(
                    "grid: {key:?} is not a dotted scenario path"
                )));
            }
        }
        let runs = file
            .grid
            .values()
            .try_fold(seeds.len(), |n, v| n.checked_mul(v.len()))
            .filter(|n| *n <= MAX_RUNS)
            .ok_or_else(|| invalid(format!("more than {MAX_RUNS} runs")))?;
        let scenario_path = path.parent().unwrap_or(Path::new(".")).join(&file.scenario);
        let base_text =
            std::fs::read_to_string(&scenario_path).map_err(|source| SweepError::Io {
                path: scenario_path.display().to_string(),
                source,
            })?;
        let base: toml::Table = toml::from_str(&base_text)
            .map_err(|e| invalid(format!("scenario {}: {e}", scenario_path.display())))?;
        let sweep = Self {
            path: path.to_owned(),
            scenario_path,
            base,
            seeds,
            grid: file.grid.into_iter().collect(),
        };
        debug_assert_eq!(sweep.runs(), runs);
        // Every point's scenario must parse; a huge grid is checked on every value of every
        // key (with the other keys at their first value), each run checks its own again.
        if sweep.points() <= CHECK_ALL_POINTS {
            for p in 0..sweep.points() {
                sweep.scenario(&sweep.point(p))?;
            }
        } else {
            let first = sweep.point(0);
            for (key, values) in &sweep.grid {
                for v in values {
                    let mut point = first.clone();
                    point.params.insert(key.clone(), v.clone());
                    sweep.scenario(&point)?;
                }
            }
        }
        Ok(sweep)
    }

    /// Points in the grid.
    pub fn points(&self) -> usize {
        self.grid.iter().map(|(_, v)| v.len()).product()
    }

    /// Runs in the sweep (points × seeds).
    pub fn runs(&self) -> usize {
        self.points() * self.seeds.len()
    }

    /// Point `p` (row-major, the last key fastest).
    pub fn point(&self, p: usize) -> Point {
        let mut rest = p;
        let mut params = BTreeMap::new();
        for (key, values) in self.grid.iter().rev() {
            params.insert(key.clone(), values[rest % values.len()].clone());
            rest /= values.len();
        }
        Point { point: p, params }
    }

    /// Run `index`: its point and seed.
    pub fn run(&self, index: usize) -> Result<Run, SweepError> {
        if index >= self.runs() {
            return Err(SweepError::NoSuchRun {
                index,
                runs: self.runs(),
            });
        }
        Ok(Run {
            index,
            point: self.point(index / self.seeds.len()),
            seed: self.seeds[index % self.seeds.len()],
        })
    }

    /// The scenario text of `point`: the base with each key set to its value (tables
    /// created as needed), checked by the scenario parser.
    pub fn scenario(&self, point: &Point) -> Result<String, SweepError> {
        let bad = |message: String| SweepError::Point {
            path: self.path.display().to_string(),
            point: point.label(),
            message,
        };
        let mut table = self.base.clone();
        for (key, value) in &point.params {
            let mut parts: Vec<&str> = key.split('.').collect();
            let last = parts.pop().unwrap_or_default();
            let mut at = &mut table;
            for part in parts {
                at = at
                    .entry(part)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| bad(format!("{key}: {part} is not a table in the scenario")))?;
            }
            at.insert(last.to_owned(), value.clone());
        }
        let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
        Scenario::parse(&text, &self.scenario_path).map_err(|e| bad(e.to_string()))?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::{Sweep, SweepError};

    fn write(dir: &std::path::Path, sweep: &str) -> std::path::PathBuf {
        std::fs::write(
            dir.join("base.toml"),
            "name = \"base\"\nnodes = 50\nduration = \"10s\"\nseed = 1\n",
        )
        .unwrap();
        let p = dir.join("sweep.toml");
        std::fs::write(&p, sweep).unwrap();
        p
    }

    #[test]
    fn points_cover_the_grid_row_major_and_runs_repeat_them_over_seeds() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "scenario = \"base.toml\"\nseeds = 2\n[grid]\nnodes = [50, 80]\n\"workload.updates_per_second\" = [1.0, 2.0, 3.0]\n",
        );
        let s = Sweep::load(&p).unwrap();
        assert_eq!((s.points(), s.runs()), (6, 12));
        let r = s.run(7).unwrap();
        assert_eq!((r.point.point, r.seed), (3, 2));
        assert_eq!(r.point.params["nodes"].as_integer(), Some(80));
        assert_eq!(
            r.point.params["workload.updates_per_second"].as_float(),
            Some(1.0)
        );
        let text = s.scenario(&r.point).unwrap();
        assert!(text.contains("nodes = 80"), "{text}");
        assert!(text.contains("[workload]") && text.contains("updates_per_second = 1.0"));
        assert!(matches!(
            s.run(12).unwrap_err(),
            SweepError::NoSuchRun {
                index: 12,
                runs: 12
            }
        ));
    }

    #[test]
    fn bad_sweeps_name_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let err = |text: &str| {
            Sweep::load(&write(dir.path(), text))
                .unwrap_err()
                .to_string()
        };
        assert!(err("scenario = \"base.toml\"\nseeds = 0\n").contains("seeds"));
        assert!(err("scenario = \"base.toml\"\n[grid]\nnodes = []\n").contains("grid.nodes"));
        assert!(err("scenario = \"nowhere.toml\"\n").contains("nowhere.toml"));
        assert!(err("scenario = \"base.toml\"\nextra = 1\n").contains("extra"));
        // an override the scenario does not accept names the point
        let e = err("scenario = \"base.toml\"\n[grid]\nnodes = [10, \"many\"]\n");
        assert!(e.contains("nodes = \"many\""), "{e}");
        let e = err("scenario = \"base.toml\"\n[grid]\n\"nodes.x\" = [1]\n");
        assert!(e.contains("nodes is not a table"), "{e}");
    }
}
