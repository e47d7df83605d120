//! The testbed's outputs: `summary.json`, `propagation.csv`, and the propagation plots
//! drawn with the simulator's chart code.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::Result;
use gaiamesh_sim::net::LatencyMatrix;
use gaiamesh_testbed::{router::Counts, scenario::Scenario};
use serde::Serialize;

use super::{
    churn::ChurnFigures,
    fetch::FetchFigures,
    flood::FloodFigures,
    measure::{Heal, PublishStep, quantile},
    nat::NatFigures,
    release::ReleaseFigures,
};

/// One node's figures in a publish step.
#[derive(Debug, Serialize)]
pub(super) struct NodeFigures {
    node: usize,
    region: String,
    p50_ms: Option<u64>,
    p99_ms: Option<u64>,
}

/// A publish step's figures.
#[derive(Debug, Serialize)]
pub(super) struct PublishFigures {
    from: usize,
    updates: usize,
    receipts: usize,
    expected: usize,
    p50_ms: Option<u64>,
    p99_ms: Option<u64>,
    max_ms: Option<u64>,
    /// Median over the updates that reached every node of when the last node had it.
    convergence_p50_ms: Option<u64>,
    per_node: Vec<NodeFigures>,
}

/// `summary.json`.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
    scenario: String,
    nodes: usize,
    regions: Vec<String>,
    jitter: f64,
    loss: f64,
    up_mbps: Option<f64>,
    mesh_formed_s: f64,
    publish: Vec<PublishFigures>,
    heals: Vec<&'static str>,
    convergence_after_heal_s: Vec<Option<f64>>,
    churn: Vec<ChurnFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fetch: Vec<FetchFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    release: Vec<ReleaseFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    flood: Vec<FloodFigures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nat: Option<NatFigures>,
    packets: Counts,
    wall_s: f64,
}

impl Summary {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        sc: &Scenario,
        matrix: &LatencyMatrix,
        regions: &[usize],
        formed: Duration,
        publishes: &[PublishStep],
        heals: &[Heal],
        churn: Vec<ChurnFigures>,
        fetch: Vec<FetchFigures>,
        release: Vec<ReleaseFigures>,
        flood: Vec<FloodFigures>,
        nat: Option<NatFigures>,
        packets: Counts,
        wall: Duration,
    ) -> Self {
        let name = |i: usize| matrix.regions[regions[i]].clone();
        let publish = publishes
            .iter()
            .map(|p| {
                let d = p.delays();
                let (expected, receipts) = p.reached();
                PublishFigures {
                    from: p.from,
                    updates: p.updates.len(),
                    receipts,
                    expected,
                    p50_ms: quantile(&d, 0.5),
                    p99_ms: quantile(&d, 0.99),
                    max_ms: d.last().copied(),
                    convergence_p50_ms: quantile(&p.convergence(), 0.5),
                    per_node: (0..sc.nodes)
                        .filter(|&i| i != p.from)
                        .map(|i| {
                            let nd = p.node_delays(i);
                            NodeFigures {
                                node: i,
                                region: name(i),
                                p50_ms: quantile(&nd, 0.5),
                                p99_ms: quantile(&nd, 0.99),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        Self {
            scenario: sc.name.clone(),
            nodes: sc.nodes,
            regions: (0..sc.nodes).map(name).collect(),
            jitter: sc.links.jitter,
            loss: sc.links.loss,
            up_mbps: sc.links.up_mbps,
            mesh_formed_s: formed.as_secs_f64(),
            publish,
            heals: heals.iter().map(|_| "heal").collect(),
            convergence_after_heal_s: heals.iter().map(|h| h.converged_s).collect(),
            churn,
            fetch,
            release,
            flood,
            nat,
            packets,
            wall_s: wall.as_secs_f64(),
        }
    }

    /// The summary for a terminal.
    pub(super) fn text(&self) -> String {
        let mut s = format!(
            "{}: {} nodes, mesh formed in {:.1} s",
            self.scenario, self.nodes, self.mesh_formed_s
        );
        let ms = |x: Option<u64>| x.map_or("-".into(), |x| format!("{x} ms"));
        for p in &self.publish {
            let _ = write!(
                s,
                "\n  {} updates from node{}: {}/{} receipts, p50 {}, p99 {}, max {}",
                p.updates,
                p.from,
                p.receipts,
                p.expected,
                ms(p.p50_ms),
                ms(p.p99_ms),
                ms(p.max_ms)
            );
        }
        for c in &self.convergence_after_heal_s {
            let _ = write!(
                s,
                "\n  after the heal: {}",
                c.map_or("not converged".into(), |c| format!(
                    "every node holds every update after {c:.1} s"
                ))
            );
        }
        for c in &self.churn {
            let _ = write!(s, "\n  churn: {}", c.line());
        }
        for f in &self.fetch {
            let _ = write!(s, "\n  fetch: {}", f.line());
        }
        for r in &self.release {
            let _ = write!(s, "\n  release: {}", r.line());
        }
        for f in &self.flood {
            let _ = write!(s, "\n  flood: {}", f.line());
        }
        if let Some(n) = &self.nat {
            let _ = write!(s, "\n  NAT: {}", n.line());
        }
        let _ = write!(
            s,
            "\n  packets: {} forwarded, {} lost, {} dropped by partitions, {} overflowed",
            self.packets.forwarded,
            self.packets.lost,
            self.packets.partitioned,
            self.packets.overflow
        );
        s
    }
}

/// Writes `summary.json`, `propagation.csv` and the plots into `out`.
pub(super) fn write(
    out: &Path,
    summary: &Summary,
    publishes: &[PublishStep],
    matrix: &LatencyMatrix,
    regions: &[usize],
) -> Result<()> {
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(summary)? + "\n",
    )?;
    let mut csv = String::from("step,update,seq,node,region,delay_ms\n");
    for (k, p) in publishes.iter().enumerate() {
        for (u, up) in p.updates.iter().enumerate() {
            for (i, d) in up.delays_ms.iter().enumerate() {
                if i == p.from {
                    continue;
                }
                let d = d.map_or(String::new(), |d| d.to_string());
                let region = &matrix.regions[regions[i]];
                let _ = writeln!(csv, "{k},{u},{},{i},{region},{d}", up.seq);
            }
        }
    }
    std::fs::write(out.join("propagation.csv"), csv)?;
    let all: Vec<u64> = {
        let mut v: Vec<u64> = publishes.iter().flat_map(PublishStep::delays).collect();
        v.sort_unstable();
        v
    };
    if !all.is_empty() {
        let cdf: Vec<(f64, f64)> = all
            .iter()
            .enumerate()
            .map(|(k, d)| (*d as f64, (k + 1) as f64 / all.len() as f64))
            .collect();
        let svg = gaiamesh_sim::output::svg_chart(
            "Propagation of self-description updates (testbed)",
            "delay (ms)",
            "fraction of receipts",
            &cdf,
            false,
        );
        gaiamesh_sim::output::write_chart(out, "propagation_cdf", &svg)?;
        let per_node: Vec<(f64, f64)> = summary
            .publish
            .iter()
            .flat_map(|p| &p.per_node)
            .filter_map(|f| Some((f.node as f64, f.p50_ms? as f64)))
            .collect();
        let svg = gaiamesh_sim::output::svg_chart(
            "Median propagation per node (testbed)",
            "node",
            "p50 delay (ms)",
            &per_node,
            true,
        );
        gaiamesh_sim::output::write_chart(out, "propagation_per_node", &svg)?;
    }
    Ok(())
}
