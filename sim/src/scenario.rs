//! Scenario files (TOML): the federation, the network, the protocol parameters (defaults are
//! the node's), the workload, faults, churn and adversaries. Unknown keys are errors; every
//! bad value is reported with its key.

use std::{path::Path, time::Duration};

use serde::{Deserialize, Serialize};

use crate::net::LatencyMatrix;

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and key).
        message: String,
    },
    /// Values that parse but make no sense, one per line with their keys.
    #[error("{path}: invalid scenario:\n{}", .problems.join("\n"))]
    Invalid {
        /// The file.
        path: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The latency matrix file is not usable.
    #[error("{0}")]
    Latency(String),
}

/// A scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name (shown in the summary).
    pub name: String,
    /// Number of nodes (members) at the start.
    pub nodes: u32,
    /// Simulated time.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Seed used when `--seed` is not given.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Where the nodes are.
    #[serde(default)]
    pub placement: Placement,
    /// Links.
    #[serde(default)]
    pub network: NetworkParams,
    /// Gossip mesh parameters.
    #[serde(default)]
    pub gossip: GossipParams,
    /// Kademlia parameters and lookup workload.
    #[serde(default)]
    pub kademlia: KademliaParams,
    /// Anti-entropy by set reconciliation.
    #[serde(default)]
    pub anti_entropy: AntiEntropyParams,
    /// Self-description updates.
    #[serde(default)]
    pub workload: Workload,
    /// Nodes leaving and coming back.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// Scheduled partitions, heals and crashes.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Misbehaving members and outsiders.
    #[serde(default)]
    pub adversaries: Adversaries,
    /// Software repository releases spread by swarming.
    #[serde(default)]
    pub repository: RepositoryParams,
    /// Sampling of the time series.
    #[serde(default = "default_sample", with = "humantime_serde")]
    pub sample_every: Duration,
    /// Record this node's core trace (every input its [`gaiamesh_core::node::NodeState`]
    /// got and what it decided; `core-trace.jsonl` in the output), as `GAIAMESH_CORE_TRACE`
    /// does for a daemon.
    #[serde(default)]
    pub trace_node: Option<u32>,
}

fn default_seed() -> u64 {
    1
}

fn default_sample() -> Duration {
    Duration::from_secs(1)
}

/// Node placement.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Region → weight. Empty: the EU-weighted default of [`crate::net::DEFAULT_REGIONS`].
    #[serde(default)]
    pub regions: std::collections::BTreeMap<String, f64>,
    /// A CSV latency matrix (round-trip ms between regions; header row of region names),
    /// relative to the scenario file. Default: the built-in matrix.
    #[serde(default)]
    pub latency_csv: Option<String>,
}

/// Link parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkParams {
    /// Jitter: each delay is the base one-way latency × (1 ± jitter), uniform.
    pub jitter: f64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Upload bandwidth per node (Mbit/s).
    pub up_mbps: f64,
    /// Download bandwidth per node (Mbit/s).
    pub down_mbps: f64,
    /// Time to validate one received self-description (signature + merge), ms.
    pub validate_ms: f64,
    /// Time from a publication until the publisher sends it (signing, storing, committing),
    /// ms.
    pub publish_ms: f64,
    /// 0: every node runs on its own machine. N > 0: all nodes share one machine with N
    /// cores (a devnet): a node's first copy of a self-description occupies one of those
    /// cores (for a time drawn around `cpu_ms`) before it reaches the merge step, first come
    /// first served in the order the copies were sent.
    pub shared_cores: u32,
    /// With `shared_cores`: the mean core time one node's first copy of an update takes,
    /// ms; each copy's time is drawn from an exponential distribution with this mean (on a
    /// real shared machine most of it is waiting for the other nodes' work on the same
    /// update, which varies from copy to copy and makes the tail).
    /// `tests/tests/calibration.rs` fits it on a smaller devnet.
    pub cpu_ms: f64,
}

impl Default for NetworkParams {
    fn default() -> Self {
        Self {
            jitter: 0.1,
            loss: 0.0,
            up_mbps: 100.0,
            down_mbps: 100.0,
            validate_ms: 0.1,
            publish_ms: 0.0,
            shared_cores: 0,
            cpu_ms: 0.0,
        }
    }
}

/// Gossipsub-like mesh parameters (the node's defaults).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GossipParams {
    /// Target mesh degree.
    pub d: u32,
    /// Graft below this.
    pub d_lo: u32,
    /// Prune above this.
    pub d_hi: u32,
    /// Peers that receive IHAVE lazy gossip per heartbeat.
    pub d_lazy: u32,
    /// Heartbeat interval.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Connections each node keeps (mesh candidates).
    pub peers: u32,
    /// Heartbeats a message id is advertised in IHAVE.
    pub history: u32,
    /// A publisher sends its own message to every connected peer, not only its mesh
    /// (gossipsub's `flood_publish`, on in the node as in libp2p's default).
    pub flood_publish: bool,
}

impl Default for GossipParams {
    /// The node's own ([`gaiamesh_core::Params`]), and 24 connections per node.
    fn default() -> Self {
        let g = gaiamesh_core::Params::default().gossip;
        Self {
            d: g.mesh_n,
            d_lo: g.mesh_n_low,
            d_hi: g.mesh_n_high,
            d_lazy: g.lazy,
            heartbeat: g.heartbeat,
            peers: 24,
            history: g.history_gossip,
            flood_publish: g.flood_publish,
        }
    }
}

/// Kademlia parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KademliaParams {
    /// Bucket size and replication factor.
    pub k: u32,
    /// Parallel requests per lookup.
    pub alpha: u32,
    /// Lookups per second over the whole federation (random target keys, random origins).
    pub lookups_per_second: f64,
    /// A request unanswered this long counts as failed.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
    /// Attribute keys nodes provide (the node: one per indexed field value).
    pub attribute_keys: u32,
    /// Keys each node provides.
    pub keys_per_node: u32,
    /// Provider lookups per second over the federation (random keys, random origins); 0:
    /// none.
    pub provider_lookups_per_second: f64,
    /// Provider records are re-published this often (the node: hourly).
    #[serde(with = "humantime_serde")]
    pub provider_republish: Duration,
}

impl Default for KademliaParams {
    /// The node's k, α and re-publish interval ([`gaiamesh_core::Params`]); a workload of one
    /// lookup a second.
    fn default() -> Self {
        let k = gaiamesh_core::Params::default().kademlia;
        Self {
            k: k.k,
            alpha: k.alpha,
            lookups_per_second: 1.0,
            rpc_timeout: Duration::from_secs(2),
            attribute_keys: 64,
            keys_per_node: 4,
            provider_lookups_per_second: 0.0,
            provider_republish: k.republish,
        }
    }
}

/// Anti-entropy parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AntiEntropyParams {
    /// Each online node reconciles with one random peer this often. `0s` disables it.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for AntiEntropyParams {
    /// The node's reconcile interval ([`gaiamesh_core::Params`]).
    fn default() -> Self {
        Self {
            interval: gaiamesh_core::Params::default().sync.reconcile_interval,
        }
    }
}

/// The update workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Self-description updates per second over the federation (random honest subjects).
    pub updates_per_second: f64,
    /// When updates start.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// When updates stop (default: 80% of the duration, so the tail can converge).
    #[serde(with = "humantime_serde::option")]
    pub stop: Option<Duration>,
    /// Bytes of one signed self-description on the wire.
    pub sd_bytes: u32,
    /// How updates arrive: `poisson` (independent publishers, the default) or `periodic`
    /// (one every 1/updates_per_second, as `gaiamesh devnet` measures one at a time).
    pub arrivals: Arrivals,
}

/// How updates arrive in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Exponential gaps: independent publishers.
    #[default]
    Poisson,
    /// Equal gaps.
    Periodic,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            updates_per_second: 1.0,
            start: Duration::from_secs(5),
            stop: None,
            sd_bytes: 4096,
            arrivals: Arrivals::Poisson,
        }
    }
}

/// Session-length distribution.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "distribution", rename_all = "lowercase")]
pub enum Session {
    /// Exponential with this mean.
    Exponential {
        /// Mean session.
        #[serde(with = "humantime_serde")]
        mean: Duration,
    },
    /// Weibull with this scale and shape (shape < 1: heavy tail, as measured in P2P systems).
    Weibull {
        /// Scale λ.
        #[serde(with = "humantime_serde")]
        scale: Duration,
        /// Shape k.
        shape: f64,
    },
}

/// Churn: a fraction of the nodes alternate sessions and downtimes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Fraction of nodes that churn (the rest stay up).
    pub fraction: f64,
    /// Online session lengths.
    pub session: Session,
    /// Mean offline time (exponential).
    #[serde(with = "humantime_serde")]
    pub downtime_mean: Duration,
}

/// A scheduled fault.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// When.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Split the network: the listed regions, or a random fraction of nodes, lose every
    /// link to the rest.
    #[serde(default)]
    pub partition: Option<PartitionSpec>,
    /// Remove every partition.
    #[serde(default)]
    pub heal: bool,
    /// Crash a random fraction of the online nodes.
    #[serde(default)]
    pub crash: Option<CrashSpec>,
}

/// Which nodes a partition cuts off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionSpec {
    /// These regions form the minority side.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Or this fraction of nodes, chosen at random.
    #[serde(default)]
    pub fraction: Option<f64>,
}

/// A crash of many nodes at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSpec {
    /// Fraction of online nodes.
    pub fraction: f64,
    /// They restart (keeping their state) this long after; never if absent.
    #[serde(default, with = "humantime_serde::option")]
    pub restart_after: Option<Duration>,
}

/// Repository swarming: releases and the download parameters of the node. The defaults are
/// the node's ([`gaiamesh_core::Params`]), and every node runs the node's piece scheduler.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepositoryParams {
    /// Bytes asked per request (KiB): the node's segment. The node verifies in 16 KiB
    /// chunk groups; a request covers many of them.
    pub chunk_kib: u32,
    /// Requests each node keeps in flight (`[repository] requests_in_flight`).
    pub parallel: u32,
    /// Requests in flight per provider (`[repository] requests_per_peer`).
    pub per_peer: u32,
    /// A request unanswered this long fails (a strike against its provider).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A request unanswered this long is also asked from another provider; 0 disables
    /// hedging.
    #[serde(with = "humantime_serde")]
    pub hedge_after: Duration,
    /// Releases published during the run (every node fetches each one: mandatory).
    pub releases: Vec<ReleaseSpec>,
}

impl Default for RepositoryParams {
    fn default() -> Self {
        let r = gaiamesh_core::Params::default().repository;
        Self {
            chunk_kib: u32::try_from(r.segment_bytes / 1024).unwrap_or(1024),
            parallel: r.requests_in_flight,
            per_peer: r.requests_per_peer,
            request_timeout: r.request_timeout,
            hedge_after: r.hedge_after.unwrap_or(Duration::ZERO),
            releases: Vec::new(),
        }
    }
}

/// One release.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// When a random honest node publishes it.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// Blob size (MiB).
    pub size_mib: f64,
}

/// Adversarial nodes, counted among `nodes` except Sybils.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Adversaries {
    /// Members that gossip forged self-descriptions (bad signatures) at the update rate of
    /// one honest node each.
    pub forgers: u32,
    /// Members that sign two versions with one seq and send each to half their mesh.
    pub equivocators: u32,
    /// Members that receive but never forward.
    pub withholders: u32,
    /// Outsiders without credentials trying to join (admission refuses them when the
    /// federation requires membership).
    pub sybils: u32,
    /// Whether the federation requires membership (default true).
    pub require_membership: Option<bool>,
    /// Whether nodes defend themselves (default true). `false` switches off what contains
    /// the adversaries — record validation (forged records are stored and forwarded),
    /// penalising senders, and admission (Sybils join) — to measure what the defences are
    /// worth, and to show that the containment checks can fail.
    pub defences: Option<bool>,
}

impl Scenario {
    /// The protocol parameters this scenario runs with, in the node's terms
    /// ([`gaiamesh_core::Params`]), e.g. to print them as `gaiamesh devnet` does.
    pub fn params(&self) -> gaiamesh_core::Params {
        let mut p = gaiamesh_core::Params::default();
        let g = &self.gossip;
        p.gossip.mesh_n = g.d;
        p.gossip.mesh_n_low = g.d_lo;
        p.gossip.mesh_n_high = g.d_hi;
        p.gossip.lazy = g.d_lazy;
        p.gossip.heartbeat = g.heartbeat;
        p.gossip.history_gossip = g.history;
        p.gossip.flood_publish = g.flood_publish;
        p.sync.reconcile_interval = self.anti_entropy.interval;
        p.kademlia.k = self.kademlia.k;
        p.kademlia.alpha = self.kademlia.alpha;
        p.kademlia.republish = self.kademlia.provider_republish;
        p.repository.segment_bytes = u64::from(self.repository.chunk_kib) * 1024;
        p.repository.requests_in_flight = self.repository.parallel;
        p.repository.requests_per_peer = self.repository.per_peer;
        p.repository.request_timeout = self.repository.request_timeout;
        p.repository.hedge_after =
            (!self.repository.hedge_after.is_zero()).then_some(self.repository.hedge_after);
        p
    }

    /// Parses and validates a scenario; `path` is used in messages and to resolve
    /// `placement.latency_csv`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let p = path.display().to_string();
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let problems = s.problems();
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(ScenarioError::Invalid { path: p, problems })
        }
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The latency matrix: from `placement.latency_csv` (relative to `base`) or built in.
    pub fn latency(&self, base: &Path) -> Result<LatencyMatrix, ScenarioError> {
        match &self.placement.latency_csv {
            None => Ok(LatencyMatrix::default_eu()),
            Some(f) => {
                let path = base.join(f);
                let text =
                    std::fs::read_to_string(&path).map_err(|source| ScenarioError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
                LatencyMatrix::from_csv(&text)
                    .map_err(|e| ScenarioError::Latency(format!("{}: {e}", path.display())))
            }
        }
    }

    /// Every problem with the values, with its key.
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                p.push(msg.to_owned());
            }
        };
        check(
            (2..=2_000_000).contains(&self.nodes),
            "nodes: must be between 2 and 2000000",
        );
        check(!self.duration.is_zero(), "duration: must be positive");
        check(
            self.trace_node.is_none_or(|i| i < self.nodes),
            "trace_node: must name a node below `nodes`",
        );
        let prob = |x: f64| (0.0..=1.0).contains(&x);
        check(
            prob(self.network.jitter),
            "network.jitter: must be in [0, 1]",
        );
        check(prob(self.network.loss), "network.loss: must be in [0, 1]");
        check(
            self.network.up_mbps > 0.0,
            "network.up_mbps: must be positive",
        );
        check(
            self.network.down_mbps > 0.0,
            "network.down_mbps: must be positive",
        );
        check(
            self.network.validate_ms >= 0.0,
            "network.validate_ms: must be ≥ 0",
        );
        check(
            self.network.publish_ms >= 0.0 && self.network.publish_ms.is_finite(),
            "network.publish_ms: must be ≥ 0",
        );
        check(
            self.network.cpu_ms >= 0.0 && self.network.cpu_ms.is_finite(),
            "network.cpu_ms: must be ≥ 0",
        );

        check(
            self.network.shared_cores <= 4096,
            "network.shared_cores: at most 4096",
        );
        let g = &self.gossip;
        check(
            g.d_lo <= g.d && g.d <= g.d_hi && g.d_lo >= 1,
            "gossip: need 1 ≤ d_lo ≤ d ≤ d_hi",
        );
        check(g.peers >= g.d, "gossip.peers: must be ≥ gossip.d");
        check(g.peers <= 256, "gossip.peers: at most 256");
        check(!g.heartbeat.is_zero(), "gossip.heartbeat: must be positive");
        check(
            (1..=64).contains(&self.kademlia.k),
            "kademlia.k: must be between 1 and 64",
        );
        check(
            (1..=16).contains(&self.kademlia.alpha),
            "kademlia.alpha: must be between 1 and 16",
        );
        check(
            self.kademlia.lookups_per_second >= 0.0,
            "kademlia.lookups_per_second: must be ≥ 0",
        );
        check(
            self.kademlia.provider_lookups_per_second >= 0.0,
            "kademlia.provider_lookups_per_second: must be ≥ 0",
        );
        check(
            (1..=100_000).contains(&self.kademlia.attribute_keys),
            "kademlia.attribute_keys: must be between 1 and 100000",
        );
        check(
            self.kademlia.keys_per_node <= self.kademlia.attribute_keys,
            "kademlia.keys_per_node: at most kademlia.attribute_keys",
        );
        check(
            !self.kademlia.provider_republish.is_zero(),
            "kademlia.provider_republish: must be positive",
        );
        check(
            self.workload.updates_per_second >= 0.0,
            "workload.updates_per_second: must be ≥ 0",
        );
        check(
            (256..=65_536).contains(&self.workload.sd_bytes),
            "workload.sd_bytes: must be between 256 and 65536",
        );
        check(
            !self.sample_every.is_zero(),
            "sample_every: must be positive",
        );
        for (r, w) in &self.placement.regions {
            check(
                *w >= 0.0 && w.is_finite(),
                &format!("placement.regions.{r}: weight must be ≥ 0"),
            );
        }
        if let Some(c) = &self.churn {
            check(prob(c.fraction), "churn.fraction: must be in [0, 1]");
            if let Session::Weibull { shape, .. } = c.session {
                check(shape > 0.0, "churn.session.shape: must be positive");
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let kinds = usize::from(f.partition.is_some())
                + usize::from(f.heal)
                + usize::from(f.crash.is_some());
            check(
                kinds == 1,
                &format!("faults[{i}]: exactly one of partition, heal, crash"),
            );
            check(
                f.at <= self.duration,
                &format!("faults[{i}].at: after the end of the run"),
            );
            if let Some(ps) = &f.partition {
                check(
                    ps.regions.is_empty() != ps.fraction.is_none(),
                    &format!("faults[{i}].partition: give regions or fraction"),
                );
                if let Some(x) = ps.fraction {
                    check(
                        prob(x),
                        &format!("faults[{i}].partition.fraction: in [0, 1]"),
                    );
                }
            }
            if let Some(c) = &f.crash {
                check(
                    prob(c.fraction),
                    &format!("faults[{i}].crash.fraction: in [0, 1]"),
                );
            }
        }
        let r = &self.repository;
        check(
            (1..=65_536).contains(&r.chunk_kib),
            "repository.chunk_kib: must be between 1 and 65536",
        );
        check(
            (1..=64).contains(&r.parallel),
            "repository.parallel: must be between 1 and 64",
        );
        check(
            (1..=r.parallel.max(1)).contains(&r.per_peer),
            "repository.per_peer: must be between 1 and parallel",
        );
        check(
            !r.request_timeout.is_zero(),
            "repository.request_timeout: must be positive",
        );
        for (i, rel) in r.releases.iter().enumerate() {
            check(
                rel.size_mib > 0.0 && rel.size_mib <= 65_536.0,
                &format!("repository.releases[{i}].size_mib: must be in (0, 65536]"),
            );
            check(
                rel.at <= self.duration,
                &format!("repository.releases[{i}].at: after the end of the run"),
            );
            let chunks = rel.size_mib * 1024.0 / f64::from(r.chunk_kib.max(1));
            check(
                chunks <= 1_048_576.0,
                &format!("repository.releases[{i}]: more than 2^20 chunks; raise chunk_kib"),
            );
        }
        let a = &self.adversaries;
        check(
            u64::from(a.forgers) + u64::from(a.equivocators) + u64::from(a.withholders)
                < u64::from(self.nodes),
            "adversaries: forgers + equivocators + withholders must be fewer than nodes",
        );
        p
    }

    /// When updates stop.
    pub fn updates_stop(&self) -> Duration {
        self.workload
            .stop
            .unwrap_or(self.duration.mul_f64(0.8))
            .min(self.duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario_gets_the_node_defaults() {
        let s = Scenario::parse(
            "name = \"t\"\nnodes = 100\nduration = \"1m\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        // The node's own parameters, from the one struct both use.
        let p = gaiamesh_core::Params::default();
        assert_eq!(
            (s.gossip.d, s.gossip.d_lo, s.gossip.d_hi),
            (p.gossip.mesh_n, p.gossip.mesh_n_low, p.gossip.mesh_n_high)
        );
        assert_eq!((s.gossip.d, s.gossip.d_lo, s.gossip.d_hi), (6, 4, 12));
        assert_eq!((s.kademlia.k, s.kademlia.alpha), (20, 3));
        assert_eq!(s.gossip.heartbeat, Duration::from_millis(500));
        assert_eq!(s.anti_entropy.interval, p.sync.reconcile_interval);
        assert_eq!(s.updates_stop(), Duration::from_secs(48));
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let err = Scenario::parse(
            "name = \"t\"\nnodes = 1\nduration = \"1m\"\n[network]\nloss = 2.0\n\
             [gossip]\nd = 20\n[[faults]]\nat = \"2m\"\nheal = true\n",
            Path::new("bad.toml"),
        )
        .unwrap_err()
        .to_string();
        for key in ["nodes:", "network.loss", "gossip:", "faults[0].at"] {
            assert!(err.contains(key), "{key} missing in {err}");
        }
        let err = Scenario::parse(
            "name = \"t\"\nnodes = 10\nduration = \"1m\"\nbogus = 1\n",
            Path::new("x.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("bogus"), "{err}");
    }
}
