//! Run outputs: `summary.json`, CSV series, SVG plots and `manifest.json`. Everything here
//! is a function of the results only (no wall clock), so two runs with the same scenario and
//! seed write byte-identical files; the wall-clock figures go to stderr and `timing.json`.

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use crate::{
    model::Results,
    stats::{Quantiles, quantile_sorted, round3},
    swarm::ReleaseResult,
};

/// The summary of a run.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Simulated seconds.
    pub simulated_seconds: f64,
    /// Events processed.
    pub events: u64,
    /// Valid honest updates published.
    pub updates: u64,
    /// Propagation of updates: ms from publication to first receipt at each node.
    pub propagation_ms: Quantiles,
    /// Per update that reached every other node, when the last one had it, ms.
    pub update_convergence_ms: Quantiles,
    /// Fraction of nodes holding the newest version of every updated subject, at the end.
    pub final_convergence: f64,
    /// Time after each heal until every node held every newest version again.
    pub heals: Vec<HealResult>,
    /// Kademlia lookups.
    pub lookups: LookupSummary,
    /// Provider lookups of attribute keys (absent when none ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_lookups: Option<ProviderSummary>,
    /// Anti-entropy.
    pub anti_entropy: AntiEntropySummary,
    /// Adversaries.
    pub adversaries: AdversarySummary,
    /// Bytes sent per node.
    pub bytes_per_node: Quantiles,
    /// Repository releases spread by swarming.
    pub repository: Vec<ReleaseSummary>,
}

/// How one repository release spread.
#[derive(Debug, Serialize)]
pub struct ReleaseSummary {
    /// Publication time (s).
    pub at_s: f64,
    /// Blob size in bytes.
    pub bytes: u64,
    /// Chunks (requests of `repository.chunk_kib`).
    pub chunks: u32,
    /// Nodes that had to fetch it.
    pub downloaders: u32,
    /// Nodes that completed it before the end.
    pub completed: u32,
    /// ms from publication to completion, over the nodes that completed.
    pub completion_ms: Quantiles,
    /// Swarm lower bound (ms): max(F / min(up, down), (N − 1)·F / (N·up)).
    pub lower_bound_ms: f64,
    /// Last completion / lower bound (only when every downloader completed).
    pub ratio_to_lower_bound: Option<f64>,
    /// A client-server copy from the publisher alone (ms).
    pub client_server_ms: f64,
    /// Share of the chunk bytes the publisher uploaded itself (1.0 = client-server).
    pub publisher_share: f64,
    /// Requests that timed out (peer down, partitioned or withholding).
    pub timeouts: u64,
    /// Requests hedged to a second peer.
    pub hedges: u64,
}

impl ReleaseSummary {
    fn new(r: &ReleaseResult) -> Self {
        let c = &r.completion_ms;
        let q = |x: f64| {
            if c.is_empty() {
                0.0
            } else {
                c[(((c.len() - 1) as f64) * x).round() as usize]
            }
        };
        let max = c.last().copied().unwrap_or(0.0);
        let all = c.len() as u32 == r.downloaders;
        let needed = r.bytes as f64 * f64::from(r.downloaders);
        Self {
            at_s: round3(r.at_s),
            bytes: r.bytes,
            chunks: r.chunks,
            downloaders: r.downloaders,
            completed: c.len() as u32,
            completion_ms: Quantiles {
                count: c.len() as u64,
                mean: round3(c.iter().sum::<f64>() / c.len().max(1) as f64),
                p50: round3(q(0.5)),
                p90: round3(q(0.9)),
                p99: round3(q(0.99)),
                max: round3(max),
            },
            lower_bound_ms: round3(r.lower_bound_ms),
            ratio_to_lower_bound: (all && r.lower_bound_ms > 0.0)
                .then(|| round3(max / r.lower_bound_ms)),
            client_server_ms: round3(r.client_server_ms),
            publisher_share: round3(r.publisher_uploaded as f64 / needed.max(1.0)),
            timeouts: r.timeouts,
            hedges: r.hedges,
        }
    }
}

/// A heal's outcome.
#[derive(Debug, Serialize)]
pub struct HealResult {
    /// When the heal happened (s).
    pub at_s: f64,
    /// Seconds until full convergence, if it happened before the end.
    pub converged_after_s: Option<f64>,
}

/// Lookup figures.
#[derive(Debug, Serialize)]
pub struct LookupSummary {
    /// Lookups finished.
    pub count: u64,
    /// Fraction that found the closest live node.
    pub exact_fraction: f64,
    /// Mean hops.
    pub mean_hops: f64,
    /// Latency, ms.
    pub latency_ms: Quantiles,
}

/// Provider lookup figures.
#[derive(Debug, Serialize)]
pub struct ProviderSummary {
    /// Lookups finished.
    pub count: u64,
    /// Fraction that reached a node holding the records.
    pub found_fraction: f64,
    /// Mean hops to the first holder.
    pub mean_hops: f64,
    /// Latency of successful lookups, ms.
    pub latency_ms: Quantiles,
}

/// Anti-entropy figures.
#[derive(Debug, Serialize)]
pub struct AntiEntropySummary {
    /// Exchanges.
    pub exchanges: u64,
    /// Exchanges whose views differed (the real reconciliation ran).
    pub reconciliations: u64,
    /// Their rounds (round trips).
    pub rounds: Quantiles,
    /// Connections closed by the idle timeout across a partition.
    pub connections_closed: u64,
    /// Connections the nodes dialled again and got back (lost members).
    pub redialled: u64,
}

/// Adversary figures.
#[derive(Debug, Serialize)]
pub struct AdversarySummary {
    /// Forged records rejected.
    pub forged_rejected: u64,
    /// Equivocations detected.
    pub equivocations_detected: u64,
    /// Sybil connection attempts refused.
    pub sybils_refused: u64,
    /// Forged records a node stored (0 unless `adversaries.defences = false`).
    pub forged_accepted: u64,
    /// Sybil connection attempts admitted (0 unless the federation is open or
    /// `adversaries.defences = false`).
    pub sybils_admitted: u64,
}

impl Summary {
    /// Builds the summary.
    pub fn new(name: &str, seed: u64, nodes: u32, seconds: f64, r: &Results) -> Self {
        let mut bytes = r.sent_bytes.clone();
        bytes.sort_unstable();
        let total_hops: u64 = r.hops.iter().enumerate().map(|(h, c)| h as u64 * c).sum();
        let counted: u64 = r.hops.iter().sum();
        let mean = |s: u64, n: u64| if n == 0 { 0.0 } else { s as f64 / n as f64 };
        Self {
            scenario: name.to_owned(),
            seed,
            nodes,
            simulated_seconds: seconds,
            events: r.events,
            updates: r.updates,
            propagation_ms: r.propagation_ms.summary(),
            update_convergence_ms: r.update_convergence_ms.summary(),
            final_convergence: round3(r.final_convergence * 1000.0) / 1000.0,
            heals: r
                .heal_convergence
                .iter()
                .map(|(at, after)| HealResult {
                    at_s: round3(*at),
                    converged_after_s: after.map(round3),
                })
                .collect(),
            lookups: LookupSummary {
                count: r.lookups,
                exact_fraction: round3(mean(r.lookups_exact, r.lookups)),
                mean_hops: round3(mean(total_hops, counted)),
                latency_ms: r.lookup_ms.summary(),
            },
            provider_lookups: (r.provider_lookups > 0).then(|| {
                let hops: u64 = r
                    .provider_hops
                    .iter()
                    .enumerate()
                    .map(|(h, c)| h as u64 * c)
                    .sum();
                ProviderSummary {
                    count: r.provider_lookups,
                    found_fraction: round3(mean(r.provider_found, r.provider_lookups)),
                    mean_hops: round3(mean(hops, r.provider_found)),
                    latency_ms: r.provider_ms.summary(),
                }
            }),
            anti_entropy: AntiEntropySummary {
                exchanges: r.anti_entropy,
                reconciliations: r.reconciliations,
                rounds: r.reconcile_rounds.summary(),
                connections_closed: r.connections_closed,
                redialled: r.redialled,
            },
            adversaries: AdversarySummary {
                forged_rejected: r.rejected,
                equivocations_detected: r.equivocations,
                sybils_refused: r.sybils_refused,
                forged_accepted: r.forged_accepted,
                sybils_admitted: r.sybils_admitted,
            },
            bytes_per_node: Quantiles {
                count: bytes.len() as u64,
                mean: round3(mean(bytes.iter().sum(), bytes.len() as u64)),
                p50: quantile_sorted(&bytes, 0.5) as f64,
                p90: quantile_sorted(&bytes, 0.9) as f64,
                p99: quantile_sorted(&bytes, 0.99) as f64,
                max: bytes.last().copied().unwrap_or(0) as f64,
            },
            repository: r.releases.iter().map(ReleaseSummary::new).collect(),
        }
    }
}

/// The plot area of a chart and its data ranges.
struct Frame {
    ml: f64,
    mt: f64,
    pw: f64,
    ph: f64,
    xmin: f64,
    xmax: f64,
    ymax: f64,
}

impl Frame {
    const W: f64 = 640.0;
    const H: f64 = 400.0;

    /// The frame for data from `xmin` to `xmax` (x) and 0 to `ymax` (y).
    fn new(xmin: f64, xmax: f64, ymax: f64) -> Self {
        let (ml, mb, mt, mr) = (70.0, 50.0, 40.0, 20.0);
        Self {
            ml,
            mt,
            pw: Self::W - ml - mr,
            ph: Self::H - mt - mb,
            xmin,
            xmax: xmax.max(1e-9),
            ymax: ymax.max(1e-9),
        }
    }

    fn sx(&self, x: f64) -> f64 {
        self.ml + (x - self.xmin) / (self.xmax - self.xmin).max(1e-9) * self.pw
    }

    fn sy(&self, y: f64) -> f64 {
        self.mt + self.ph - y / self.ymax * self.ph
    }

    /// The opening of the SVG: background, title, axes, ticks and labels.
    fn open(&self, title: &str, x_label: &str, y_label: &str) -> String {
        let (w, h, ml, mt, pw, ph) = (Self::W, Self::H, self.ml, self.mt, self.pw, self.ph);
        let mut s = String::new();
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{title}</text>\n",
            w / 2.0
        );
        let _ = writeln!(
            s,
            "<line x1=\"{ml}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\
             <line x1=\"{ml}\" y1=\"{mt}\" x2=\"{ml}\" y2=\"{}\" stroke=\"black\"/>",
            mt + ph,
            ml + pw,
            mt + ph,
            mt + ph
        );
        for i in 0..=4 {
            let f = f64::from(i) / 4.0;
            let (xv, yv) = (self.xmin + f * (self.xmax - self.xmin), f * self.ymax);
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                self.sx(xv),
                mt + ph + 16.0,
                fmt_num(xv),
                ml - 6.0,
                self.sy(yv) + 4.0,
                fmt_num(yv)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_label}</text>\
             <text transform=\"translate(16,{:.1}) rotate(-90)\" text-anchor=\"middle\">{y_label}</text>",
            ml + pw / 2.0,
            h - 10.0,
            mt + ph / 2.0
        );
        s
    }
}

/// A line or bar chart as SVG (no dependencies, deterministic text). The testbed draws its
/// figures with it too.
pub fn svg_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &[(f64, f64)],
    bars: bool,
) -> String {
    let xmax = points.iter().map(|p| p.0).fold(0.0_f64, f64::max);
    let ymax = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let xmin = points
        .iter()
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let f = Frame::new(xmin, xmax, ymax);
    let mut s = f.open(title, x_label, y_label);
    if bars {
        let bw = (f.pw / points.len().max(1) as f64 * 0.8).max(1.0);
        for (x, y) in points {
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"#4477aa\"/>",
                f.sx(*x) - bw / 2.0,
                f.sy(*y),
                f.mt + f.ph - f.sy(*y)
            );
        }
    } else {
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", f.sx(*x), f.sy(*y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"#4477aa\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One point of an interval chart: x, the value, the interval's low and high ends.
pub type IntervalPoint = (f64, f64, f64, f64);

/// A labelled line of an interval chart.
pub type IntervalSeries = (String, Vec<IntervalPoint>);

/// Lines with error bars as SVG: each series is a label and its points (x, value, low,
/// high), drawn in its own colour with a legend (a sweep's means and their intervals).
pub fn svg_interval_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[IntervalSeries],
) -> String {
    const COLOURS: [&str; 6] = [
        "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377",
    ];
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let xmax = all().map(|p| p.0).fold(0.0_f64, f64::max);
    let xmin = all().map(|p| p.0).fold(f64::INFINITY, f64::min).min(0.0);
    let ymax = all().map(|p| p.3.max(p.1)).fold(0.0_f64, f64::max);
    let f = Frame::new(if xmin.is_finite() { xmin } else { 0.0 }, xmax, ymax);
    let mut s = f.open(title, x_label, y_label);
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut sorted = points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let path: Vec<String> = sorted
            .iter()
            .map(|p| format!("{:.1},{:.1}", f.sx(p.0), f.sy(p.1)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (x, y, lo, hi) in &sorted {
            let (px, cap) = (f.sx(*x), 4.0);
            let _ = writeln!(
                s,
                "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/>\
                 <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/>\
                 <line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\"/>\
                 <circle cx=\"{px:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                f.sy(lo.max(0.0)),
                f.sy(*hi),
                px - cap,
                f.sy(*hi),
                px + cap,
                f.sy(*hi),
                px - cap,
                f.sy(lo.max(0.0)),
                px + cap,
                f.sy(lo.max(0.0)),
                f.sy(*y)
            );
        }
        if !label.is_empty() {
            let ly = f.mt + 14.0 * i as f64 + 8.0;
            let lx = f.ml + 12.0;
            let _ = writeln!(
                s,
                "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                ly - 9.0,
                lx + 14.0,
                ly,
                xml_escape(label)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// `text` safe inside an SVG text element.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x.abs() >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x.abs() >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The files [`write_all`] writes for these results (the manifest lists them).
pub fn file_names(r: &Results) -> Vec<String> {
    let mut v: Vec<String> = [
        "summary.json",
        "timeseries.csv",
        "propagation_cdf.csv",
        "lookup_hops.csv",
        "bandwidth.csv",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if !r.releases.is_empty() {
        v.push("repository_completion.csv".to_owned());
    }
    if !r.core_trace.is_empty() {
        v.push("core-trace.jsonl".to_owned());
    }
    let mut charts = vec!["propagation_cdf", "convergence", "lookup_hops", "bandwidth"];
    if !r.releases.is_empty() {
        charts.push("repository_completion");
    }
    for chart in charts {
        v.push(format!("{chart}.svg"));
        v.push(format!("{chart}.png"));
    }
    v
}

/// Writes every output file into `dir`: the data files, each chart as SVG and PNG, and
/// `manifest.json`.
pub fn write_all(
    dir: &Path,
    summary: &Summary,
    r: &Results,
    manifest: &serde_json::Value,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("summary.json"), pretty(summary))?;
    std::fs::write(dir.join("manifest.json"), pretty(manifest))?;
    write_data(dir, r)?;
    for (name, svg) in charts(r, summary.simulated_seconds) {
        write_chart(dir, name, &svg)?;
    }
    Ok(())
}

/// Writes `svg` as `dir/name.svg` and, with the `png` feature, `dir/name.png`.
pub fn write_chart(dir: &Path, name: &str, svg: &str) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{name}.svg")), svg)?;
    #[cfg(feature = "png")]
    {
        let png = crate::png::render(svg).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(format!("{name}.png")), png)?;
    }
    Ok(())
}

fn write_data(dir: &Path, r: &Results) -> std::io::Result<()> {
    let mut ts = String::from("time_s,nodes_up,convergence,bytes_sent_total\n");
    for (t, up, c, b) in &r.series {
        let _ = writeln!(ts, "{t:.3},{up},{c:.6},{b}");
    }
    std::fs::write(dir.join("timeseries.csv"), ts)?;
    if !r.core_trace.is_empty() {
        std::fs::write(
            dir.join("core-trace.jsonl"),
            crate::trace::to_jsonl(&r.core_trace),
        )?;
    }
    let cdf = r.propagation_ms.cdf();
    let mut c = String::from("delay_ms,fraction\n");
    for (x, f) in &cdf {
        let _ = writeln!(c, "{x:.3},{f:.6}");
    }
    std::fs::write(dir.join("propagation_cdf.csv"), c)?;
    let mut hops = String::from("hops,lookups\n");
    let last = r.hops.iter().rposition(|c| *c > 0).unwrap_or(0);
    for (h, n) in r.hops.iter().enumerate().take(last + 1) {
        let _ = writeln!(hops, "{h},{n}");
    }
    std::fs::write(dir.join("lookup_hops.csv"), hops)?;
    let mut bytes = r.sent_bytes.clone();
    bytes.sort_unstable();
    let mut bw = String::from("percentile,bytes_sent\n");
    for p in 0..=100 {
        let v = quantile_sorted(&bytes, f64::from(p) / 100.0);
        let _ = writeln!(bw, "{p},{v}");
    }
    std::fs::write(dir.join("bandwidth.csv"), bw)?;
    if !r.releases.is_empty() {
        let mut c = String::from("release,completion_ms,fraction_of_downloaders\n");
        for (i, rel) in r.releases.iter().enumerate() {
            for (k, ms) in rel.completion_ms.iter().enumerate() {
                let f = (k + 1) as f64 / f64::from(rel.downloaders.max(1));
                let _ = writeln!(c, "{i},{ms:.3},{f:.6}");
            }
        }
        std::fs::write(dir.join("repository_completion.csv"), c)?;
    }
    Ok(())
}

/// Pretty JSON with a final newline.
fn pretty<T: Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Every chart of a run: (file stem, SVG text).
fn charts(r: &Results, simulated_seconds: f64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    out.push((
        "propagation_cdf",
        svg_chart(
            "Propagation of self-description updates",
            "delay (ms)",
            "fraction of deliveries",
            &r.propagation_ms.cdf(),
            false,
        ),
    ));
    let conv: Vec<(f64, f64)> = r.series.iter().map(|(t, _, c, _)| (*t, *c)).collect();
    out.push((
        "convergence",
        svg_chart(
            "Directory convergence",
            "time (s)",
            "nodes holding the newest versions",
            &conv,
            false,
        ),
    ));
    let last = r.hops.iter().rposition(|c| *c > 0).unwrap_or(0);
    let hop_points: Vec<(f64, f64)> = r
        .hops
        .iter()
        .enumerate()
        .take(last + 1)
        .map(|(h, n)| (h as f64, *n as f64))
        .collect();
    out.push((
        "lookup_hops",
        svg_chart("Kademlia lookup hops", "hops", "lookups", &hop_points, true),
    ));
    let mut bytes = r.sent_bytes.clone();
    bytes.sort_unstable();
    let secs = simulated_seconds.max(1e-9);
    let bw_points: Vec<(f64, f64)> = (0..=100)
        .map(|p| {
            let v = quantile_sorted(&bytes, f64::from(p) / 100.0);
            (f64::from(p), v as f64 * 8.0 / secs / 1000.0)
        })
        .collect();
    out.push((
        "bandwidth",
        svg_chart(
            "Upload per node (mean over the run)",
            "percentile of nodes",
            "kbit/s",
            &bw_points,
            false,
        ),
    ));
    if let Some(rel) = r.releases.first() {
        let n = f64::from(rel.downloaders.max(1));
        let points: Vec<(f64, f64)> = rel
            .completion_ms
            .iter()
            .enumerate()
            .map(|(k, ms)| (ms / 1000.0, (k + 1) as f64 / n))
            .collect();
        out.push((
            "repository_completion",
            svg_chart(
                "Repository release: nodes holding the blob",
                "seconds after publication",
                "fraction of nodes",
                &points,
                false,
            ),
        ));
    }
    out
}
