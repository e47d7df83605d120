//! One row per hot path: what we measured, what the baseline measured in the same run, their
//! ratio, the targets and whether they are met; and the quick mode's regression check
//! against reference ratios.

use std::{collections::BTreeMap, fmt, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Which way a figure is good.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Good when at most this.
    AtMost(f64),
    /// Good when at least this.
    AtLeast(f64),
}

impl Bound {
    /// Whether `value` is within the bound.
    pub fn holds(self, value: f64) -> bool {
        match self {
            Bound::AtMost(b) => value <= b,
            Bound::AtLeast(b) => value >= b,
        }
    }

    /// How many times worse `value` is than `reference` (1.0 = as good; 2.0 = twice as bad),
    /// in this bound's direction.
    pub fn worse_by(self, value: f64, reference: f64) -> f64 {
        match self {
            Bound::AtMost(_) => value / reference,
            Bound::AtLeast(_) => reference / value,
        }
    }
}

/// One target of a path: a named figure and its bound.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What the figure is: "ratio", "bytes", "round trips", "wall s", "RSS MiB", "ready ms".
    pub figure: String,
    /// The measured value.
    pub value: f64,
    /// The target.
    pub bound: Bound,
}

impl Check {
    /// A check of `figure` = `value` against `bound`.
    pub fn new(figure: &str, value: f64, bound: Bound) -> Self {
        Self {
            figure: figure.to_owned(),
            value,
            bound,
        }
    }

    /// Whether the target is met.
    pub fn met(&self) -> bool {
        self.value.is_finite() && self.bound.holds(self.value)
    }
}

/// One hot path's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The path, e.g. "query 100k, full scan".
    pub path: String,
    /// Our figure, with its unit ("15.1 ms p50").
    pub ours: String,
    /// The baseline's figure, with its name ("SQLite 11.3 ms p50"), or "none".
    pub baseline: String,
    /// Ours relative to the baseline, in the direction the ratio check states; `None` when
    /// the path has no baseline.
    pub ratio: Option<f64>,
    /// Every target of the path.
    pub checks: Vec<Check>,
}

impl Row {
    /// Whether every target is met.
    pub fn met(&self) -> bool {
        self.checks.iter().all(Check::met)
    }

    /// The ratio check, if the path has a baseline.
    pub fn ratio_check(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.figure == "ratio")
    }
}

fn bound_text(figure: &str, b: Bound) -> String {
    match b {
        Bound::AtMost(v) => format!("{figure} <= {}", number(v)),
        Bound::AtLeast(v) => format!("{figure} >= {}", number(v)),
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl fmt::Display for Row {
    /// `bench: <path> <ours> vs <baseline> ratio <r> target <t> met` (or `NOT MET`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ratio = self
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let targets: Vec<String> = self
            .checks
            .iter()
            .map(|c| bound_text(&c.figure, c.bound))
            .collect();
        write!(
            f,
            "bench: {} {} vs {} ratio {ratio} target {} {}",
            self.path,
            self.ours,
            self.baseline,
            targets.join(", "),
            if self.met() { "met" } else { "NOT MET" }
        )
    }
}

/// The Markdown table of a run (BENCHMARKS.md).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| path | ours | baseline (same run) | ratio | target | met |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let targets: Vec<String> = r
            .checks
            .iter()
            .map(|c| {
                format!(
                    "{} (is {})",
                    bound_text(&c.figure, c.bound),
                    number(c.value)
                )
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.path,
            r.ours,
            r.baseline,
            r.ratio
                .map_or_else(|| "—".to_owned(), |x| format!("{x:.2}×")),
            targets.join("; "),
            if r.met() { "met" } else { "**NOT MET**" }
        ));
    }
    out
}

/// Reference figures the quick mode compares against: per path, the ratio a quick run gave
/// on the reference machine (`gaiamesh-bench --quick --write-reference`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct References {
    /// Path → reference ratio.
    pub quick: BTreeMap<String, f64>,
}

/// How much worse than its reference a path may get before the quick mode fails: a path
/// twice as slow against its own baseline is a regression, noise is not.
pub const REGRESSION_FACTOR: f64 = 2.0;

impl References {
    /// Reads a reference file; a missing file is an empty set (nothing to compare).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the ratios of `rows` as the new references.
    pub fn from_rows(rows: &[Row]) -> Self {
        Self {
            quick: rows
                .iter()
                .filter_map(|r| Some((r.path.clone(), r.ratio?)))
                .collect(),
        }
    }

    /// The file's text, with a header saying where it comes from.
    pub fn to_text(&self) -> Result<String> {
        Ok(format!(
            "# Reference ratios of `gaiamesh-bench --quick` (written by --write-reference).\n\
             # The quick mode fails when a path's ratio to its own baseline gets {REGRESSION_FACTOR}x\n\
             # worse than the figure here.\n{}",
            toml::to_string(self)?
        ))
    }

    /// Paths whose ratio is [`REGRESSION_FACTOR`] times worse than their reference, each
    /// with a sentence saying by how much.
    pub fn regressions(&self, rows: &[Row]) -> Vec<String> {
        let mut out = Vec::new();
        for r in rows {
            let (Some(ratio), Some(check)) = (r.ratio, r.ratio_check()) else {
                continue;
            };
            let Some(&reference) = self.quick.get(&r.path) else {
                continue;
            };
            let worse = check.bound.worse_by(ratio, reference);
            if !worse.is_finite() || worse >= REGRESSION_FACTOR {
                out.push(format!(
                    "{}: ratio {ratio:.2} is {worse:.1}x worse than its reference {reference:.2}",
                    r.path
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, ratio: f64, bound: Bound) -> Row {
        Row {
            path: path.into(),
            ours: "1 ms".into(),
            baseline: "SQLite 1 ms".into(),
            ratio: Some(ratio),
            checks: vec![Check::new("ratio", ratio, bound)],
        }
    }

    #[test]
    fn a_row_prints_the_line_the_issue_names() {
        let r = row("query 100k, full scan", 1.34, Bound::AtMost(1.0));
        assert_eq!(
            r.to_string(),
            "bench: query 100k, full scan 1 ms vs SQLite 1 ms ratio 1.34 target ratio <= 1 NOT MET"
        );
        let r = row("transfer 1 GiB", 0.93, Bound::AtLeast(0.9));
        assert!(r.to_string().ends_with("target ratio >= 0.90 met"), "{r}");
    }

    #[test]
    fn every_check_must_hold() {
        let mut r = row("reconciliation", 10.0, Bound::AtMost(20.0));
        r.checks
            .push(Check::new("bytes", 5000.0, Bound::AtMost(4096.0)));
        assert!(!r.met());
        r.checks[1].value = 4000.0;
        assert!(r.met());
        r.checks[0].value = f64::NAN;
        assert!(!r.met(), "a figure that could not be measured is not met");
    }

    #[test]
    fn regressions_are_twice_as_bad_in_the_bound_direction() {
        let refs = References::from_rows(&[
            row("scan", 1.3, Bound::AtMost(1.0)),
            row("copy", 0.8, Bound::AtLeast(0.9)),
        ]);
        let fine = [
            row("scan", 2.5, Bound::AtMost(1.0)),
            row("copy", 0.45, Bound::AtLeast(0.9)),
        ];
        assert!(refs.regressions(&fine).is_empty());
        let bad = [
            row("scan", 2.7, Bound::AtMost(1.0)),
            row("copy", 0.39, Bound::AtLeast(0.9)),
            row("new path", 100.0, Bound::AtMost(1.0)),
        ];
        let found = refs.regressions(&bad);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("scan: ratio 2.70 is 2.1x worse"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("copy: ratio 0.39 is 2.1x worse"),
            "{found:?}"
        );
    }

    #[test]
    fn references_round_trip_through_their_file() {
        let refs = References::from_rows(&[row("query 10k, selective", 0.61, Bound::AtMost(0.5))]);
        let dir = std::env::temp_dir().join(format!("gaiamesh-bench-refs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("reference.toml");
        std::fs::write(&file, refs.to_text().unwrap()).unwrap();
        assert_eq!(References::load(&file).unwrap(), refs);
        assert_eq!(
            References::load(&dir.join("missing.toml")).unwrap(),
            References::default()
        );
        std::fs::write(&file, "quick = 3").unwrap();
        assert!(References::load(&file).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_markdown_table_has_a_line_per_path() {
        let t = markdown(&[
            row("a", 0.4, Bound::AtMost(0.5)),
            row("b", 0.6, Bound::AtMost(0.5)),
        ]);
        assert_eq!(t.lines().count(), 4);
        assert!(
            t.contains("| a | 1 ms | SQLite 1 ms | 0.40× | ratio <= 0.50 (is 0.40) | met |"),
            "{t}"
        );
        assert!(t.contains("**NOT MET**"));
    }
}
