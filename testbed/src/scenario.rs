//! Testbed scenario files (TOML; examples in `config/examples/testbed/`).
//!
//! ```toml
//! name = "eu-8"
//! nodes = 8
//! [placement]
//! latency_csv = "eu-cities.csv"   # the simulator's format; default: its built-in matrix
//! regions = ["frankfurt", "paris"] # node i in regions[i % len]; default: every region in turn
//! [links]
//! jitter = 0.1                     # each delay × (1 ± jitter)
//! loss = 0.0
//! up_mbps = 20                     # each node's uplink (tbf on its device); default: none
//! [[steps]]
//! publish = { updates = 20, every = "2s", from = 0, warmup = 2 }
//! [[steps]]
//! partition = "halves"             # or [[0, 1, 2], [3, 4, 5]]
//! [[steps]]
//! wait = "30s"
//! [[steps]]
//! heal = true
//! [[steps]]
//! churn = { fraction = 0.2, every = "30s", rounds = 10, publish_every = "2s" }
//! ```

use std::{path::Path, time::Duration};

use gaiamesh_sim::net::LatencyMatrix;
use serde::Deserialize;

use crate::TestbedError;

/// Most nodes a testbed runs (one address block; each node is a real process).
pub const MAX_NODES: usize = 250;

/// A scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name (in the summary).
    pub name: String,
    /// Nodes (members of one federation).
    pub nodes: usize,
    /// Seed of jitter and loss.
    #[serde(default = "one")]
    pub seed: u64,
    /// Where the nodes are.
    #[serde(default)]
    pub placement: Placement,
    /// Link properties.
    #[serde(default)]
    pub links: Links,
    /// Node settings that differ from the defaults.
    #[serde(default)]
    pub node: NodeSettings,
    /// Nodes behind NAT, and the relays they are reachable through.
    #[serde(default)]
    pub nat: Nat,
    /// Data assets offered before the nodes start (for `fetch` steps).
    #[serde(default)]
    pub assets: Vec<Asset>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

fn one() -> u64 {
    1
}

/// Regions and their round-trip times.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// A latency matrix in the simulator's CSV format, relative to the scenario file.
    pub latency_csv: Option<String>,
    /// Node i is in `regions[i % len]`; empty: every region of the matrix in turn.
    #[serde(default)]
    pub regions: Vec<String>,
}

/// Link properties.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Links {
    /// Each one-way delay × (1 ± jitter), uniform.
    pub jitter: f64,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Each node's uplink in Mbit/s (a `tbf` qdisc on its device); `None`: uncapped.
    pub up_mbps: Option<f64>,
}

impl Default for Links {
    fn default() -> Self {
        Self {
            jitter: 0.1,
            loss: 0.0,
            up_mbps: None,
        }
    }
}

/// Node configuration the scenario sets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// `directory.reconcile_interval` (default: the node's).
    #[serde(default, with = "humantime_serde::option")]
    pub reconcile_interval: Option<Duration>,
}

/// Nodes behind NAT (each in a namespace of its own behind a gateway that masquerades and
/// lets nothing unsolicited in: [`crate::nat`]).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nat {
    /// The nodes behind NAT.
    #[serde(default)]
    pub behind: Vec<usize>,
    /// The nodes that relay for them (`network.relay_server`); default, when some node is
    /// behind NAT: node 0.
    #[serde(default)]
    pub relays: Vec<usize>,
}

impl Nat {
    /// The relays in use: as written, or node 0 when nodes are behind NAT.
    pub fn relays(&self) -> Vec<usize> {
        if self.relays.is_empty() && !self.behind.is_empty() {
            vec![0]
        } else {
            self.relays.clone()
        }
    }
}

/// One step.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Let time pass.
    Wait(#[serde(with = "humantime_serde")] Duration),
    /// A node re-publishes its self-description, and every node's receipt is measured.
    Publish(Publish),
    /// Split the federation: `"halves"`, or lists of node indices (one per side; nodes in
    /// none form a side of their own).
    Partition(PartitionSpec),
    /// Remove the partition and measure how long until every node holds every update.
    Heal(bool),
    /// SIGKILL these nodes.
    Kill(Vec<usize>),
    /// Start these (killed) nodes again on their data dirs.
    Restart(Vec<usize>),
    /// Kill -9 and restart a share of the nodes, round after round, while node0 publishes;
    /// then measure how long until every node holds every acknowledged update.
    Churn(Churn),
    /// A consumer negotiates a contract for a provider's asset and fetches it directly.
    Fetch(Fetch),
    /// node0 publishes a mandatory repository component of `mib` MiB (threshold-signed
    /// with the federation's repository keys); every node fetches it from the mesh.
    Release(Release),
    /// A member floods the directory topic with invalid messages while node0 publishes
    /// and the API of another node is probed.
    Flood(Flood),
}

/// A flooding member (its API gets `fault_injection = true`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flood {
    /// The misbehaving member (not node0, which publishes meanwhile).
    pub from: usize,
    /// Invalid messages a second (1–100000).
    pub per_second: u32,
    /// For how long (1 s to 1 h).
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// The node whose API health is probed every 100 ms meanwhile.
    #[serde(default = "one_node")]
    pub probe: usize,
}

fn one_node() -> usize {
    1
}

/// A repository release, measured until every node holds a verified copy.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Its size in MiB (1–4096).
    pub mib: u32,
    /// Give up after this long.
    #[serde(default = "ten_minutes", with = "humantime_serde")]
    pub timeout: Duration,
}

fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

/// An asset a node offers: `mib` MiB of seeded random bytes under the id `asset-<node>`,
/// with a policy that lets any member use it for any purpose.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// The providing node.
    pub node: usize,
    /// Its size in MiB (1–1024).
    pub mib: u32,
}

impl Asset {
    /// Its id.
    pub fn id(node: usize) -> String {
        format!("asset-{node}")
    }
}

/// A fetch: negotiation and transfer, measured.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fetch {
    /// The fetching node.
    pub consumer: usize,
    /// The node offering the asset (one of `[[assets]]`).
    pub provider: usize,
    /// Give up after this long.
    #[serde(default = "two_minutes", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Churn: every `every`, the nodes killed in the previous round are restarted and
/// `fraction` of the others (never node0, the bootstrap and publisher) each publish an update
/// and are killed with SIGKILL as soon as it is acknowledged.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Share of the nodes killed per round.
    pub fraction: f64,
    /// Length of a round.
    #[serde(default = "thirty_seconds", with = "humantime_serde")]
    pub every: Duration,
    /// Rounds.
    pub rounds: u32,
    /// node0 publishes an update this often meanwhile.
    #[serde(default = "two_seconds", with = "humantime_serde")]
    pub publish_every: Duration,
    /// How long to wait for convergence after the last restart.
    #[serde(default = "two_minutes", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Churn {
    /// Nodes killed per round among `n`.
    pub fn victims(&self, n: usize) -> usize {
        ((n as f64 * self.fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1))
    }
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

fn two_minutes() -> Duration {
    Duration::from_secs(120)
}

/// Updates to publish.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// How many.
    pub updates: u32,
    /// Time between them (the next is not published before every node has the last, or
    /// the wait for it ended).
    #[serde(default = "two_seconds", with = "humantime_serde")]
    pub every: Duration,
    /// The publishing node.
    #[serde(default)]
    pub from: usize,
    /// Updates published first and waited for, but not measured: the first updates after
    /// start-up open gossip streams to peers outside the publisher's mesh (flood publishing),
    /// which steady-state figures should not include.
    #[serde(default)]
    pub warmup: u32,
    /// How long to wait for every node to have each update (a partition keeps some from
    /// it: they are then counted as not reached).
    #[serde(default = "ten_seconds", with = "humantime_serde")]
    pub timeout: Duration,
}

fn two_seconds() -> Duration {
    Duration::from_secs(2)
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

/// How to split.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PartitionSpec {
    /// `"halves"`: the first half of the nodes against the second.
    Named(String),
    /// Explicit sides.
    Groups(Vec<Vec<usize>>),
}

impl PartitionSpec {
    /// The sides for `n` nodes.
    pub fn groups(&self, n: usize) -> Vec<Vec<usize>> {
        match self {
            Self::Named(_) => vec![(0..n / 2).collect(), (n / 2..n).collect()],
            Self::Groups(g) => g.clone(),
        }
    }
}

impl Scenario {
    /// Reads and checks the scenario at `path`.
    pub fn load(path: &Path) -> Result<Self, TestbedError> {
        let text = std::fs::read_to_string(path).map_err(|e| TestbedError::Scenario {
            path: path.display().to_string(),
            problems: vec![e.to_string()],
        })?;
        Self::parse(&text, path)
    }

    /// Parses and checks `text` (from `path`, named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, TestbedError> {
        let bad = |problems| TestbedError::Scenario {
            path: path.display().to_string(),
            problems,
        };
        let sc: Self = toml::from_str(text).map_err(|e| bad(vec![e.to_string()]))?;
        let problems = sc.problems();
        if problems.is_empty() {
            Ok(sc)
        } else {
            Err(bad(problems))
        }
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let n = self.nodes;
        if !(2..=MAX_NODES).contains(&n) {
            p.push(format!("nodes: must be between 2 and {MAX_NODES}"));
        }
        if !(0.0..=1.0).contains(&self.links.jitter) {
            p.push("links.jitter: must be in [0, 1]".into());
        }
        if !(0.0..1.0).contains(&self.links.loss) {
            p.push("links.loss: must be in [0, 1)".into());
        }
        if self
            .links
            .up_mbps
            .is_some_and(|m| !(m.is_finite() && (0.1..=100_000.0).contains(&m)))
        {
            p.push("links.up_mbps: must be between 0.1 and 100000".into());
        }
        let node = |what: String, i: usize, p: &mut Vec<String>| {
            if i >= n {
                p.push(format!("{what}: node {i} does not exist (nodes = {n})"));
            }
        };
        for &i in &self.nat.behind {
            node("nat.behind".into(), i, &mut p);
        }
        for &i in &self.nat.relays() {
            node("nat.relays".into(), i, &mut p);
            if self.nat.behind.contains(&i) {
                p.push(format!(
                    "nat.relays: node {i} is behind NAT (a relay must be reachable)"
                ));
            }
        }
        if self.nat.behind.contains(&0) {
            p.push(
                "nat.behind: node 0 publishes and is everyone's bootstrap; it cannot be behind NAT"
                    .into(),
            );
        }
        for (k, a) in self.assets.iter().enumerate() {
            node(format!("assets[{k}].node"), a.node, &mut p);
            if !(1..=1024).contains(&a.mib) {
                p.push(format!("assets[{k}].mib: must be between 1 and 1024"));
            }
        }
        for (k, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{k}]");
            match step {
                Step::Publish(x) => {
                    node(format!("{at}.publish.from"), x.from, &mut p);
                    if x.updates == 0 {
                        p.push(format!("{at}.publish.updates: must be at least 1"));
                    }
                }
                Step::Partition(PartitionSpec::Named(s)) if s != "halves" => {
                    p.push(format!(
                        "{at}.partition: \"{s}\" is not \"halves\" or a list of sides"
                    ));
                }
                Step::Partition(PartitionSpec::Groups(g)) => {
                    for &i in g.iter().flatten() {
                        node(format!("{at}.partition"), i, &mut p);
                    }
                }
                Step::Kill(v) | Step::Restart(v) => {
                    for &i in v {
                        node(at.clone(), i, &mut p);
                    }
                }
                Step::Heal(false) => p.push(format!("{at}.heal: write `heal = true`")),
                Step::Flood(f) => {
                    node(format!("{at}.flood.from"), f.from, &mut p);
                    node(format!("{at}.flood.probe"), f.probe, &mut p);
                    if f.from == 0 {
                        p.push(format!(
                            "{at}.flood.from: node0 publishes meanwhile; pick another"
                        ));
                    }
                    if !(1..=100_000).contains(&f.per_second) {
                        p.push(format!(
                            "{at}.flood.per_second: must be between 1 and 100000"
                        ));
                    }
                    if !(1..=3600).contains(&f.duration.as_secs()) {
                        p.push(format!("{at}.flood.duration: must be between 1s and 1h"));
                    }
                }
                Step::Release(r) if !(1..=4096).contains(&r.mib) => {
                    p.push(format!("{at}.release.mib: must be between 1 and 4096"));
                }
                Step::Fetch(f) => {
                    node(format!("{at}.fetch.consumer"), f.consumer, &mut p);
                    node(format!("{at}.fetch.provider"), f.provider, &mut p);
                    if f.provider < n && !self.assets.iter().any(|a| a.node == f.provider) {
                        p.push(format!(
                            "{at}.fetch.provider: node {} offers no asset (add [[assets]] node = {})",
                            f.provider, f.provider
                        ));
                    }
                    if f.consumer == f.provider {
                        p.push(format!("{at}.fetch: a node cannot fetch from itself"));
                    }
                }
                Step::Churn(c) => {
                    if !(c.fraction > 0.0 && c.fraction < 1.0) {
                        p.push(format!("{at}.churn.fraction: must be in (0, 1)"));
                    }
                    if c.rounds == 0 {
                        p.push(format!("{at}.churn.rounds: must be at least 1"));
                    }
                    if c.every < Duration::from_secs(5) {
                        p.push(format!(
                            "{at}.churn.every: at least 5s (killed nodes restart each round)"
                        ));
                    }
                    if c.publish_every.is_zero() {
                        p.push(format!("{at}.churn.publish_every: must be positive"));
                    }
                }
                _ => {}
            }
        }
        if self.steps.is_empty() {
            p.push("steps: at least one".into());
        }
        p
    }

    /// The latency matrix (`base`: the scenario file's directory).
    pub fn matrix(&self, base: &Path) -> Result<LatencyMatrix, TestbedError> {
        match &self.placement.latency_csv {
            None => Ok(LatencyMatrix::default_eu()),
            Some(f) => {
                let path = base.join(f);
                let text = std::fs::read_to_string(&path).map_err(|e| TestbedError::Scenario {
                    path: path.display().to_string(),
                    problems: vec![e.to_string()],
                })?;
                LatencyMatrix::from_csv(&text).map_err(|e| TestbedError::Scenario {
                    path: path.display().to_string(),
                    problems: vec![e.to_string()],
                })
            }
        }
    }

    /// Each node's region (an index into `matrix.regions`).
    pub fn regions(&self, matrix: &LatencyMatrix) -> Result<Vec<usize>, TestbedError> {
        let names: Vec<usize> = if self.placement.regions.is_empty() {
            (0..matrix.regions.len()).collect()
        } else {
            self.placement
                .regions
                .iter()
                .map(|r| {
                    matrix.index(r).ok_or_else(|| TestbedError::Scenario {
                        path: "placement.regions".into(),
                        problems: vec![format!(
                            "unknown region {r:?}; the matrix has {}",
                            matrix.regions.join(", ")
                        )],
                    })
                })
                .collect::<Result<_, _>>()?
        };
        Ok((0..self.nodes).map(|i| names[i % names.len()]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, TestbedError> {
        Scenario::parse(text, Path::new("t.toml"))
    }

    #[test]
    fn every_example_scenario_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/testbed");
        let mut seen = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                let sc = Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
                let m = sc.matrix(&dir).unwrap();
                sc.regions(&m).unwrap();
                seen += 1;
            }
        }
        assert!(seen >= 6, "{seen} example scenarios");
    }

    #[test]
    fn a_scenario_with_every_step_parses() {
        let sc = parse(
            "name = \"t\"\nnodes = 4\n[links]\nloss = 0.01\n[node]\nreconcile_interval = \"5s\"\n\
             [[steps]]\nwait = \"1s\"\n[[steps]]\npublish = { updates = 3, from = 1, warmup = 1 }\n\
             [[steps]]\npartition = \"halves\"\n[[steps]]\npartition = [[0], [1, 2]]\n\
             [[steps]]\nheal = true\n[[steps]]\nkill = [3]\n[[steps]]\nrestart = [3]\n\
             [[steps]]\nchurn = { fraction = 0.25, rounds = 2 }\n\
             [[assets]]\nnode = 2\nmib = 1\n[[steps]]\nfetch = { consumer = 1, provider = 2 }\n\
             [[steps]]\nrelease = { mib = 8 }\n",
        )
        .unwrap();
        assert_eq!(sc.steps.len(), 10);
        assert!(matches!(&sc.steps[8], Step::Fetch(f) if f.consumer == 1 && f.provider == 2));
        assert!(
            matches!(&sc.steps[9], Step::Release(r) if r.mib == 8 && r.timeout == ten_minutes())
        );
        let Step::Churn(c) = &sc.steps[7] else {
            panic!()
        };
        assert_eq!((c.every, c.victims(4)), (Duration::from_secs(30), 1));
        assert!(
            matches!(&sc.steps[1], Step::Publish(p) if p.updates == 3 && p.warmup == 1 && p.every == two_seconds())
        );
        let Step::Partition(h) = &sc.steps[2] else {
            panic!()
        };
        assert_eq!(h.groups(4), vec![vec![0, 1], vec![2, 3]]);
        assert_eq!(sc.node.reconcile_interval, Some(Duration::from_secs(5)));
        let m = sc.matrix(Path::new(".")).unwrap();
        let r = sc.regions(&m).unwrap();
        assert_eq!(r, vec![0, 1, 2, 3]);
    }

    #[test]
    fn every_bad_value_is_named() {
        let e = parse(
            "name = \"t\"\nnodes = 3\n[links]\njitter = 2.0\nup_mbps = 0.0\n[[steps]]\nkill = [5]\n\
             [[steps]]\npartition = \"thirds\"\n[[steps]]\npublish = { updates = 0, from = 9 }\n\
             [[steps]]\nchurn = { fraction = 1.5, rounds = 0, every = \"1s\" }\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "links.jitter",
            "steps[0]: node 5 does not exist",
            "steps[1].partition: \"thirds\"",
            "steps[2].publish.from: node 9",
            "steps[2].publish.updates",
            "links.up_mbps",
            "steps[3].churn.fraction",
            "steps[3].churn.rounds",
            "steps[3].churn.every",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let e = parse(
            "name = \"t\"\nnodes = 3\n[nat]\nbehind = [0, 2, 7]\nrelays = [2]\n[[assets]]\nnode = 1\nmib = 0\n\
             [[steps]]\nfetch = { consumer = 1, provider = 2 }\n[[steps]]\nfetch = { consumer = 1, provider = 1 }\n[[steps]]\nrelease = { mib = 0 }\n",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "nat.behind: node 7 does not exist",
            "nat.relays: node 2 is behind NAT",
            "nat.behind: node 0",
            "assets[0].mib",
            "steps[0].fetch.provider: node 2 offers no asset",
            "steps[1].fetch: a node cannot fetch from itself",
            "steps[2].release.mib",
        ] {
            assert!(e.contains(want), "{want} in {e}");
        }
        let ok = parse("name = \"t\"\nnodes = 3\n[nat]\nbehind = [2]\n[[steps]]\nwait = \"1s\"\n")
            .unwrap();
        assert_eq!(ok.nat.relays(), vec![0], "node 0 relays by default");
        let e = parse("name = \"t\"\nnodes = 3\nsteps = []\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
