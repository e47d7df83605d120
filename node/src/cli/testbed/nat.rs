//! What the nodes report about NAT traversal at the end of a run: reservations at their
//! relays, relayed connections, and which pairs of nodes hole punching connected directly
//! (a pair counts once, direct when either side punched through), with how long the
//! successful punches took from the relayed connection.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Bed, measure::quantile};

/// One node behind NAT.
#[derive(Debug, Serialize)]
pub(super) struct NatNode {
    node: usize,
    reservations: u64,
    relayed_connections: u64,
    /// Nodes it has a punched direct connection with (either side punched).
    direct_with: Vec<usize>,
    /// Nodes every punch with failed.
    relayed_only_with: Vec<usize>,
    /// Admitted peers at the end (every other node, when the federation is whole).
    admitted_peers: u64,
}

/// `nat` in `summary.json`.
#[derive(Debug, Serialize)]
pub(super) struct NatFigures {
    behind: Vec<usize>,
    relays: Vec<usize>,
    nodes: Vec<NatNode>,
    /// Pairs of nodes that attempted hole punching (either side), and those that ended
    /// with a direct connection (either side succeeded).
    pairs_attempted: usize,
    pairs_direct: usize,
    /// `pairs_direct / pairs_attempted` (`None` when none was attempted).
    direct_rate: Option<f64>,
    /// From the relayed connection to the direct one, over every success.
    punch_p50_ms: Option<u64>,
    punch_max_ms: Option<u64>,
}

/// Pairs as (lower, higher) node indices.
type Pairs = BTreeSet<(usize, usize)>;

/// The nodes `i` is paired with in `set`.
fn partners(i: usize, set: &Pairs) -> Vec<usize> {
    set.iter()
        .filter_map(|&(a, b)| {
            if a == i {
                Some(b)
            } else {
                (b == i).then_some(a)
            }
        })
        .collect()
}

impl NatFigures {
    /// Reads every node's `status.nat` (`peers[i]`: node i's PeerId); the relays and the
    /// public nodes count too, as the other side of a punch.
    pub(super) fn collect(bed: &Bed, peers: &[String], behind: &[usize], relays: &[usize]) -> Self {
        let statuses: Vec<(usize, serde_json::Value)> = (0..bed.members.len())
            .filter_map(|i| bed.get(i, "/api/v1/status").ok().map(|s| (i, s)))
            .collect();
        Self::from_statuses(&statuses, peers, behind, relays)
    }

    fn from_statuses(
        statuses: &[(usize, serde_json::Value)],
        peers: &[String],
        behind: &[usize],
        relays: &[usize],
    ) -> Self {
        let index =
            |p: &serde_json::Value| p.as_str().and_then(|p| peers.iter().position(|x| x == p));
        let (mut punched, mut failed) = (Pairs::new(), Pairs::new());
        let mut times = Vec::new();
        for (i, s) in statuses {
            let i = *i;
            let nat = &s["nat"];
            let list = |k: &str| nat[k].as_array().cloned().unwrap_or_default();
            for p in list("punched_peers").iter().filter_map(index) {
                punched.insert((i.min(p), i.max(p)));
            }
            for p in list("unpunched_peers").iter().filter_map(index) {
                failed.insert((i.min(p), i.max(p)));
            }
            times.extend(
                list("hole_punch_ms")
                    .iter()
                    .filter_map(serde_json::Value::as_u64),
            );
        }
        let attempted: Pairs = punched.union(&failed).copied().collect();
        let failed_only: Pairs = failed.difference(&punched).copied().collect();
        let nodes = statuses
            .iter()
            .filter(|(i, _)| behind.contains(i))
            .map(|(i, s)| {
                let n = |k: &str| s["nat"][k].as_u64().unwrap_or(0);
                NatNode {
                    node: *i,
                    reservations: n("reservations"),
                    relayed_connections: n("relayed_connections"),
                    direct_with: partners(*i, &punched),
                    relayed_only_with: partners(*i, &failed_only),
                    admitted_peers: s["admitted_peers"].as_u64().unwrap_or(0),
                }
            })
            .collect();
        times.sort_unstable();
        Self {
            behind: behind.to_vec(),
            relays: relays.to_vec(),
            nodes,
            pairs_attempted: attempted.len(),
            pairs_direct: punched.len(),
            direct_rate: (!attempted.is_empty())
                .then(|| punched.len() as f64 / attempted.len() as f64),
            punch_p50_ms: quantile(&times, 0.5),
            punch_max_ms: times.last().copied(),
        }
    }

    /// One line for the terminal.
    pub(super) fn line(&self) -> String {
        let reserved = self.nodes.iter().filter(|n| n.reservations > 0).count();
        let ms = |x: Option<u64>| x.map_or("-".into(), |x| format!("{x} ms"));
        let rate = self
            .direct_rate
            .map_or("none attempted".into(), |r| format!("{:.0}%", r * 100.0));
        format!(
            "{} nodes behind NAT, {reserved} reachable through relay(s) {:?}; hole punching: \
             {}/{} pairs direct ({rate}), p50 {}, max {}",
            self.nodes.len(),
            self.relays,
            self.pairs_direct,
            self.pairs_attempted,
            ms(self.punch_p50_ms),
            ms(self.punch_max_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_pair_is_direct_when_either_side_punched_and_counted_once() {
        let peers: Vec<String> = ["p0", "p1", "p2", "p3"].map(String::from).to_vec();
        let st = |punched: &[&str], unpunched: &[&str], ms: &[u64]| {
            json!({ "admitted_peers": 3, "nat": {
                "reservations": 1, "relayed_connections": 2,
                "punched_peers": punched, "unpunched_peers": unpunched, "hole_punch_ms": ms,
            }})
        };
        let statuses = vec![
            (0, st(&[], &[], &[])),
            // 1 and 2 behind NAT: 1 punched to 2, 2's own attempt failed (already direct).
            (1, st(&["p2"], &["p3"], &[300])),
            (2, st(&[], &["p1"], &[])),
            (3, st(&[], &["p1"], &[])),
        ];
        let f = NatFigures::from_statuses(&statuses, &peers, &[1, 2], &[0]);
        assert_eq!((f.pairs_attempted, f.pairs_direct), (2, 1));
        assert_eq!(f.direct_rate, Some(0.5));
        assert_eq!(f.nodes[0].direct_with, vec![2]);
        assert_eq!(f.nodes[0].relayed_only_with, vec![3]);
        assert_eq!(f.nodes[1].direct_with, vec![1]);
        assert!(f.nodes[1].relayed_only_with.is_empty());
        assert_eq!(f.punch_p50_ms, Some(300));
        assert!(f.line().contains("1/2 pairs direct (50%)"), "{}", f.line());
    }
}
