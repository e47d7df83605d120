//! `gaiamesh testbed compare`: a testbed run held against simulator runs of the same
//! scenario — propagation p50/p99 and per-update convergence (from simulator runs without
//! faults), convergence after a heal (from those with one) — as a Markdown table with the
//! ratio simulator/testbed and whether it lies within ±25%.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};

use super::measure::quantile;

/// How far a prediction may lie from the measurement (issue 19's goal).
const TOLERANCE: f64 = 0.25;

/// One figure from both sides.
#[derive(Debug, PartialEq)]
pub(super) struct Row {
    pub(super) figure: &'static str,
    pub(super) testbed: Option<f64>,
    pub(super) simulator: Option<f64>,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.testbed, self.simulator) {
            (Some(t), Some(s)) if t > 0.0 => Some(s / t),
            _ => None,
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The testbed's figures: delays of the publish steps in which every update reached every
/// node (steps under a partition are left out), and the first heal.
fn testbed_figures(dir: &Path) -> Result<[Option<f64>; 4]> {
    let summary = read_json(&dir.join("summary.json"))?;
    if summary.get("packets").is_none() {
        bail!("{} is not a testbed run's output", dir.display());
    }
    let csv_path = dir.join("propagation.csv");
    let csv = std::fs::read_to_string(&csv_path)
        .with_context(|| format!("reading {}", csv_path.display()))?;
    // (step, update) -> delays; a step with any receipt missing is left out.
    let mut updates: BTreeMap<(u32, u32), Vec<Option<u64>>> = BTreeMap::new();
    for (k, line) in csv.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("{}:{}: malformed line {line:?}", csv_path.display(), k + 1);
        if f.len() != 6 {
            bail!(bad());
        }
        let step = f[0].parse().with_context(bad)?;
        let update = f[1].parse().with_context(bad)?;
        let delay = if f[5].is_empty() {
            None
        } else {
            Some(f[5].parse().with_context(bad)?)
        };
        updates.entry((step, update)).or_default().push(delay);
    }
    let partial: Vec<u32> = updates
        .iter()
        .filter(|(_, d)| d.iter().any(Option::is_none))
        .map(|((s, _), _)| *s)
        .collect();
    let full: Vec<Vec<u64>> = updates
        .into_iter()
        .filter(|((s, _), _)| !partial.contains(s))
        .map(|(_, d)| d.into_iter().flatten().collect())
        .collect();
    let mut all: Vec<u64> = full.iter().flatten().copied().collect();
    all.sort_unstable();
    let mut last: Vec<u64> = full
        .iter()
        .filter_map(|d| d.iter().max().copied())
        .collect();
    last.sort_unstable();
    let f = |x: Option<u64>| x.map(|x| x as f64);
    let heal_ms = summary["convergence_after_heal_s"][0]
        .as_f64()
        .map(|s| s * 1000.0);
    Ok([
        f(quantile(&all, 0.5)),
        f(quantile(&all, 0.99)),
        f(quantile(&last, 0.5)),
        heal_ms,
    ])
}

/// The simulator's figures, each from the first run that has it: propagation from runs
/// without a heal, the heal from runs with one.
fn simulator_figures(dirs: &[&Path]) -> Result<[Option<f64>; 4]> {
    let mut out = [None; 4];
    for dir in dirs {
        let s = read_json(&dir.join("summary.json"))?;
        if s.get("propagation_ms").is_none() {
            bail!("{} is not a simulator run's output", dir.display());
        }
        let heals = s["heals"].as_array().map_or(0, Vec::len);
        if heals == 0 {
            out[0] = out[0].or(s["propagation_ms"]["p50"].as_f64());
            out[1] = out[1].or(s["propagation_ms"]["p99"].as_f64());
            out[2] = out[2].or(s["update_convergence_ms"]["p50"].as_f64());
        } else {
            out[3] = out[3].or(s["heals"][0]["converged_after_s"]
                .as_f64()
                .map(|x| x * 1000.0));
        }
    }
    Ok(out)
}

/// The rows for testbed output `testbed` and simulator outputs `sims`.
pub(super) fn rows(testbed: &Path, sims: &[&Path]) -> Result<Vec<Row>> {
    let t = testbed_figures(testbed)?;
    let s = simulator_figures(sims)?;
    let names = [
        "propagation p50 (ms)",
        "propagation p99 (ms)",
        "convergence per update, p50 (ms)",
        "convergence after the heal (ms)",
    ];
    Ok((0..4)
        .map(|k| Row {
            figure: names[k],
            testbed: t[k],
            simulator: s[k],
        })
        .collect())
}

/// The rows as a Markdown table.
pub(super) fn table(rows: &[Row]) -> String {
    let num = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.1}"));
    let mut s = String::from(
        "| figure | testbed | simulator | simulator / testbed | within ±25% |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let (ratio, ok) = r.ratio().map_or(("-".into(), "-"), |q| {
            (
                format!("{q:.2}"),
                if (q - 1.0).abs() <= TOLERANCE {
                    "yes"
                } else {
                    "no"
                },
            )
        });
        s.push_str(&format!(
            "| {} | {} | {} | {ratio} | {ok} |\n",
            r.figure,
            num(r.testbed),
            num(r.simulator)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn partitioned_steps_are_left_out_and_ratios_are_simulator_over_testbed() {
        let dir = tempfile::tempdir().unwrap();
        let tb = dir.path().join("tb");
        let (sim, heal) = (dir.path().join("sim"), dir.path().join("heal"));
        for d in [&tb, &sim, &heal] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(
            tb.join("summary.json"),
            r#"{"packets": {}, "convergence_after_heal_s": [2.0]}"#,
        )
        .unwrap();
        // Step 0: two updates, both reached both nodes; step 1 (partitioned): one missing.
        std::fs::write(
            tb.join("propagation.csv"),
            "step,update,seq,node,region,delay_ms\n0,0,2,1,a,10\n0,0,2,2,a,20\n\
             0,1,3,1,a,10\n0,1,3,2,a,40\n1,0,4,1,a,5\n1,0,4,2,a,\n",
        )
        .unwrap();
        std::fs::write(
            sim.join("summary.json"),
            r#"{"propagation_ms": {"p50": 12.0, "p99": 30.0}, "update_convergence_ms": {"p50": 40.0}, "heals": []}"#,
        )
        .unwrap();
        std::fs::write(
            heal.join("summary.json"),
            r#"{"propagation_ms": {"p50": 1.0}, "heals": [{"at_s": 1.0, "converged_after_s": 10.0}]}"#,
        )
        .unwrap();
        let r = rows(&tb, &[&sim, &heal]).unwrap();
        // Delays 10, 10, 20, 40: p50 (index round(1.5) = 2) is 20, p99 40; per update the
        // last receipt: 20 and 40 -> p50 40.
        assert_eq!(
            r.iter().map(|r| r.testbed).collect::<Vec<_>>(),
            vec![Some(20.0), Some(40.0), Some(40.0), Some(2000.0)]
        );
        assert_eq!(
            r.iter().map(|r| r.simulator).collect::<Vec<_>>(),
            vec![Some(12.0), Some(30.0), Some(40.0), Some(10000.0)]
        );
        let t = table(&r);
        assert!(
            t.contains("| propagation p50 (ms) | 20.0 | 12.0 | 0.60 | no |"),
            "{t}"
        );
        assert!(t.contains("| 40.0 | 40.0 | 1.00 | yes |"), "{t}");
        // Outputs swapped: each side says what it is not.
        let e = rows(&sim, &[&tb]).unwrap_err().to_string();
        assert!(e.contains("not a testbed run"), "{e}");
        let e = rows(&tb, &[&tb]).unwrap_err().to_string();
        assert!(e.contains("not a simulator run"), "{e}");
    }
}
