//! Gathering a sweep's runs: `sweep.csv` (a row per run: its parameters, seed and metrics),
//! `points.csv` (a row per point: each metric's mean over its seeds with a 95 % confidence
//! interval, Student's t) and a chart per metric against the first grid key, one line per
//! combination of the other keys, the interval drawn as error bars.

use std::{collections::BTreeMap, fmt::Write, path::Path};

use super::{Run, SweepError};

/// The metrics taken from each run's `summary.json`: column name and JSON path.
pub const METRICS: &[(&str, &str)] = &[
    ("propagation_p50_ms", "/propagation_ms/p50"),
    ("propagation_p99_ms", "/propagation_ms/p99"),
    ("convergence_p50_ms", "/update_convergence_ms/p50"),
    ("final_convergence", "/final_convergence"),
    ("lookup_latency_p50_ms", "/lookups/latency_ms/p50"),
    ("lookup_mean_hops", "/lookups/mean_hops"),
    ("bytes_per_node_mean", "/bytes_per_node/mean"),
    ("events", "/events"),
];

/// One finished run as read back.
#[derive(Clone, Debug)]
struct Finished {
    run: Run,
    values: Vec<f64>,
}

/// What [`merge`] found and wrote.
#[derive(Debug)]
pub struct Merged {
    /// Runs gathered.
    pub runs: usize,
    /// Points with at least one run.
    pub points: usize,
    /// Run directories that could not be read, with why (left out).
    pub unreadable: Vec<String>,
    /// Files written.
    pub files: Vec<String>,
}

/// Reads every finished run under `out/runs/` and writes the CSV files and charts into
/// `out`.
pub fn merge(out: &Path) -> Result<Merged, SweepError> {
    let runs_dir = out.join("runs");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| SweepError::Io { path, source }
    };
    let mut dirs: Vec<_> = std::fs::read_dir(&runs_dir)
        .map_err(io(&runs_dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut finished = Vec::new();
    let mut unreadable = Vec::new();
    for dir in dirs {
        match read_run(&dir) {
            Ok(f) => finished.push(f),
            Err(why) => unreadable.push(why.to_string()),
        }
    }
    if finished.is_empty() {
        return Err(SweepError::Invalid {
            path: runs_dir.display().to_string(),
            message: "no finished run (each needs point.json and summary.json)".into(),
        });
    }
    finished.sort_by_key(|f| f.run.index);
    let keys: Vec<String> = finished[0].run.point.params.keys().cloned().collect();
    let mut files = Vec::new();
    let write = |name: &str, text: &str, files: &mut Vec<String>| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(io(&path))?;
        files.push(name.to_owned());
        Ok::<(), SweepError>(())
    };
    write("sweep.csv", &runs_csv(&keys, &finished), &mut files)?;
    let points = point_stats(&finished);
    write("points.csv", &points_csv(&keys, &points), &mut files)?;
    if let Some(x_key) = keys.first() {
        for (m, (metric, _)) in METRICS.iter().enumerate() {
            let series = series(&keys, &points, m);
            let svg = crate::output::svg_interval_chart(metric, x_key, metric, &series);
            let name = format!("sweep_{metric}");
            crate::output::write_chart(out, &name, &svg).map_err(io(out))?;
            files.push(format!("{name}.svg"));
        }
    }
    Ok(Merged {
        runs: finished.len(),
        points: points.len(),
        unreadable,
        files,
    })
}

fn read_run(dir: &Path) -> Result<Finished, SweepError> {
    let read = |name: &str| -> Result<serde_json::Value, SweepError> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).map_err(|source| SweepError::Io {
            path: path.display().to_string(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| SweepError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    };
    let run: Run =
        serde_json::from_value(read("point.json")?).map_err(|e| SweepError::Invalid {
            path: dir.join("point.json").display().to_string(),
            message: e.to_string(),
        })?;
    let summary = read("summary.json")?;
    let values = METRICS
        .iter()
        .map(|(_, path)| {
            summary
                .pointer(path)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(f64::NAN)
        })
        .collect();
    Ok(Finished { run, values })
}

/// A CSV field: quoted when it holds a comma, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn runs_csv(keys: &[String], runs: &[Finished]) -> String {
    let mut s = String::new();
    let mut header: Vec<String> = vec!["run".into(), "point".into()];
    header.extend(keys.iter().map(|k| field(k)));
    header.push("seed".into());
    header.extend(METRICS.iter().map(|(m, _)| (*m).to_owned()));
    let _ = writeln!(s, "{}", header.join(","));
    for f in runs {
        let mut row = vec![f.run.index.to_string(), f.run.point.point.to_string()];
        row.extend(keys.iter().map(|k| {
            f.run
                .point
                .params
                .get(k)
                .map(|v| field(&value_text(v)))
                .unwrap_or_default()
        }));
        row.push(f.run.seed.to_string());
        row.extend(f.values.iter().map(|v| number(*v)));
        let _ = writeln!(s, "{}", row.join(","));
    }
    s
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// Mean and 95 % interval of one metric at one point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// Seeds with a value.
    pub n: usize,
    /// Their mean.
    pub mean: f64,
    /// Half the interval's width (0 with one seed).
    pub half_width: f64,
}

/// The mean of `values` with its 95 % confidence interval (Student's t, n − 1 degrees of
/// freedom); NaN values are left out.
pub fn interval(values: &[f64]) -> Interval {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return Interval {
            n,
            mean: f64::NAN,
            half_width: f64::NAN,
        };
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Interval {
            n,
            mean,
            half_width: 0.0,
        };
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Interval {
        n,
        mean,
        half_width: t975(n - 1) * (var / n as f64).sqrt(),
    }
}

/// The 97.5th percentile of Student's t with `df` degrees of freedom (two-sided 95 %).
fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        31..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// Per point (in order): its parameters and one interval per metric.
fn point_stats(runs: &[Finished]) -> Vec<(super::Point, Vec<Interval>)> {
    let mut by_point: BTreeMap<usize, (super::Point, Vec<Vec<f64>>)> = BTreeMap::new();
    for f in runs {
        let entry = by_point
            .entry(f.run.point.point)
            .or_insert_with(|| (f.run.point.clone(), vec![Vec::new(); METRICS.len()]));
        for (m, v) in f.values.iter().enumerate() {
            entry.1[m].push(*v);
        }
    }
    by_point
        .into_values()
        .map(|(p, values)| (p, values.iter().map(|v| interval(v)).collect()))
        .collect()
}

fn points_csv(keys: &[String], points: &[(super::Point, Vec<Interval>)]) -> String {
    let mut s = String::new();
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(keys.iter().map(|k| field(k)));
    header.push("seeds".into());
    for (m, _) in METRICS {
        header.push(format!("{m}_mean"));
        header.push(format!("{m}_ci95_low"));
        header.push(format!("{m}_ci95_high"));
    }
    let _ = writeln!(s, "{}", header.join(","));
    for (p, stats) in points {
        let mut row = vec![p.point.to_string()];
        row.extend(keys.iter().map(|k| {
            p.params
                .get(k)
                .map(|v| field(&value_text(v)))
                .unwrap_or_default()
        }));
        row.push(stats.iter().map(|i| i.n).max().unwrap_or(0).to_string());
        for i in stats {
            row.push(number(i.mean));
            row.push(number(i.mean - i.half_width));
            row.push(number(i.mean + i.half_width));
        }
        let _ = writeln!(s, "{}", row.join(","));
    }
    s
}

/// One chart series per combination of the keys after the first: (label, points of
/// (x, mean, low, high)), x being the first key's value (its position when not a number).
fn series(
    keys: &[String],
    points: &[(super::Point, Vec<Interval>)],
    metric: usize,
) -> Vec<crate::output::IntervalSeries> {
    let mut out: BTreeMap<String, Vec<crate::output::IntervalPoint>> = BTreeMap::new();
    let mut positions: Vec<String> = Vec::new();
    for (p, stats) in points {
        let xv = &p.params[&keys[0]];
        let x = match xv {
            toml::Value::Integer(i) => *i as f64,
            toml::Value::Float(f) => *f,
            other => {
                let t = value_text(other);
                let at = positions.iter().position(|q| *q == t).unwrap_or_else(|| {
                    positions.push(t);
                    positions.len() - 1
                });
                at as f64
            }
        };
        let label = keys[1..]
            .iter()
            .map(|k| format!("{k}={}", value_text(&p.params[k])))
            .collect::<Vec<_>>()
            .join(" ");
        let i = stats[metric];
        if i.mean.is_finite() {
            out.entry(label).or_default().push((
                x,
                i.mean,
                i.mean - i.half_width,
                i.mean + i.half_width,
            ));
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::interval;

    #[test]
    fn the_interval_is_students_t_and_degenerate_cases_are_explicit() {
        // 2, 4, 6: mean 4, s = 2, t(2) = 4.303 → half width 4.303 · 2 / √3
        let i = interval(&[2.0, 4.0, 6.0]);
        assert_eq!(i.n, 3);
        assert!((i.mean - 4.0).abs() < 1e-12);
        assert!((i.half_width - 4.303 * 2.0 / 3f64.sqrt()).abs() < 1e-9);
        let one = interval(&[5.0, f64::NAN]);
        assert_eq!((one.n, one.mean, one.half_width), (1, 5.0, 0.0));
        assert!(interval(&[]).mean.is_nan());
    }
}
