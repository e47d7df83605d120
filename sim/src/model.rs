//! The federation model: every node's gossip mesh, directory view, Kademlia lookups,
//! anti-entropy, churn, faults and adversaries, driven by one event queue and one seeded RNG.
//!
//! What runs the node's real code:
//! - every merge decision is [`gaiamesh_directory::merge::decide`] on (seq, content hash);
//! - anti-entropy between two nodes whose directory views differ runs the real
//!   reconciliation state machine ([`gaiamesh_directory::reconcile`]) over their items, and
//!   the encoded message sizes are what the network carries;
//! - what a node does with a gossiped update once merged (forward, drop, or penalise the
//!   sender) is the node's own [`gaiamesh_core::ingest::GossipVerdict`];
//! - who may join is the node's admission verdict ([`crate::outsiders`]).
//!
//! Record validity is modelled: each update carries a `valid` flag (forgers' updates are
//! invalid) instead of signatures, and costs `network.validate_ms` to check.
//!
//! What is modelled: the directory content before the run is identical everywhere (only
//! updates during the run are tracked, one bitset per update); gossip is a gossipsub-like
//! mesh (GRAFT/PRUNE within D_lo..D_hi, IHAVE/IWANT lazy gossip over the last `history`
//! heartbeats, invalid senders graylisted); Kademlia is the XOR-metric iterative lookup.

use std::collections::BTreeMap;

use std::time::Duration;

use gaiamesh_core::{
    ingest::GossipVerdict,
    node::{Action as NodeAction, NodeState, trace::Entry},
};
use gaiamesh_directory::{
    merge::{MergeOutcome, Version, decide},
    reconcile::{Initiator, Item, ReconcileSet, respond},
};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::{
    engine::{Queue, SimTime},
    kad::{Kademlia, Lookup},
    net::Network,
    scenario::{Scenario, Session},
    stats::LogHistogram,
    swarm::{Ctx, ReleaseResult, Swarm, SwarmEv},
};

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Follows the protocol.
    Honest,
    /// Gossips forged self-descriptions.
    Forger,
    /// Signs two versions with one seq.
    Equivocator,
    /// Never forwards.
    Withholder,
}

/// One self-description version published during the run.
#[derive(Clone, Debug)]
pub struct Update {
    /// Subject node.
    pub subject: u32,
    /// Version (seq, content hash).
    pub version: Version,
    /// When it was published.
    pub at: SimTime,
    /// Whether it passes validation (false: forged).
    pub valid: bool,
    /// Nodes that have seen it (bitset).
    seen: Vec<u64>,
    /// Nodes a first copy is on its way to, through their CPU (bitset): later copies are
    /// duplicates that gossipsub drops by message id, at no CPU cost.
    queued: Vec<u64>,
    /// Nodes holding it as their current version of the subject.
    pub holders: u32,
    /// Nodes other than the subject it reached, and when the last of them did (µs after
    /// publication, at their merge step).
    reached: u32,
    last_us: u64,
    /// Its reconciliation item (subject key and item id), hashed once: every
    /// reconciliation that holds it lists it.
    item: Item,
}

/// A node's mesh peers.
type Mesh = smallvec::SmallVec<[u32; 12]>;

/// A node's connections, inline: heartbeats, flood publishing and the repository swarm read
/// them without a second, scattered heap block (24 per node on average at the default
/// `gossip.peers`; up to 32 stay inline, a node with more spills to the heap).
pub(crate) type Peers = smallvec::SmallVec<[u32; 32]>;

/// Events.
#[derive(Clone, Debug)]
enum Ev {
    Publish,
    Lookup,
    Heartbeat(u32),
    /// Node `i`'s core asked to be woken now (anti-entropy, redials).
    NodeTimer(u32),
    /// The idle timeout after a partition began, for node `i`'s connections across it.
    PartitionIdle(u32),
    Deliver {
        to: u32,
        from: u32,
        update: u32,
        gossip: bool,
    },
    IHave {
        to: u32,
        from: u32,
        ids: std::rc::Rc<[u32]>,
    },
    IWant {
        to: u32,
        from: u32,
        ids: Vec<u32>,
    },
    Graft {
        to: u32,
        from: u32,
    },
    Prune {
        to: u32,
        from: u32,
    },
    KadRequest {
        lookup: u32,
        to: u32,
        from: u32,
    },
    KadAnswer {
        lookup: u32,
        from: u32,
        closer: Vec<u32>,
        /// The answering node holds the provider records the lookup is for.
        found: bool,
    },
    ProviderLookup,
    ProviderRepublish,
    KadTimeout {
        lookup: u32,
        peer: u32,
    },
    Down(u32),
    Up(u32),
    Fault(usize),
    Sybil,
    Sample,
    Swarm(SwarmEv),
}

/// Results of a run.
pub struct Results {
    /// First receipt of a valid honest update at a node, ms after publication.
    pub propagation_ms: LogHistogram,
    /// Per valid honest update that reached every other node: when the last one had it,
    /// ms after publication (the federation's convergence time for the update).
    pub update_convergence_ms: LogHistogram,
    /// Lookup hop counts (index = hops).
    pub hops: Vec<u64>,
    /// Lookup latency, ms.
    pub lookup_ms: LogHistogram,
    /// Lookups that found the true closest live node.
    pub lookups_exact: u64,
    /// Lookups finished.
    pub lookups: u64,
    /// (time s, nodes up, fraction of nodes holding the newest version, bytes sent so far).
    pub series: Vec<(f64, u32, f64, u64)>,
    /// Forged records rejected.
    pub rejected: u64,
    /// Equivocations detected (a node saw two versions with one seq).
    pub equivocations: u64,
    /// Sybil connection attempts refused by admission.
    pub sybils_refused: u64,
    /// Forged records a node stored and forwarded (only with the defences off).
    pub forged_accepted: u64,
    /// Sybil connection attempts admitted (open federation, or the defences off).
    pub sybils_admitted: u64,
    /// Anti-entropy exchanges, and those whose views differed (real reconciliation ran).
    pub anti_entropy: u64,
    /// Exchanges that ran the real reconciliation.
    pub reconciliations: u64,
    /// Connections closed by the idle timeout across a partition.
    pub connections_closed: u64,
    /// Connections a node's core dialled again and got back.
    pub redialled: u64,
    /// Their round trips.
    pub reconcile_rounds: LogHistogram,
    /// Updates published (valid, honest).
    pub updates: u64,
    /// Events processed.
    pub events: u64,
    /// Bytes sent per node.
    pub sent_bytes: Vec<u64>,
    /// (fault time s, time until every up node held every newest version again, s).
    pub heal_convergence: Vec<(f64, Option<f64>)>,
    /// Fraction of nodes holding the newest version at the end.
    pub final_convergence: f64,
    /// Repository releases and how they spread.
    pub releases: Vec<ReleaseResult>,
    /// Provider lookups finished, and those that found the records.
    pub provider_lookups: u64,
    /// Provider lookups that found the records.
    pub provider_found: u64,
    /// Hops of successful provider lookups (index = hops).
    pub provider_hops: Vec<u64>,
    /// Latency of successful provider lookups, ms.
    pub provider_ms: LogHistogram,
    /// The core trace of the scenario's `trace_node`, over its restarts.
    pub core_trace: Vec<Entry<u32>>,
}

/// A whole simulated federation.
pub struct Model {
    sc: Scenario,
    /// The protocol's randomness: jitter and loss, gossip and timer choices.
    rng: ChaCha8Rng,
    /// The workload's: when and what is published and looked up, who churns and when, what
    /// adversaries do. A stream of its own, so that a change to the protocol (or to how
    /// much randomness it draws) meets the very same workload: two runs of one seed differ
    /// only by what was changed (common random numbers for comparisons and sweeps).
    workload: ChaCha8Rng,
    q: Queue<Ev>,
    /// The network.
    pub net: Network,
    role: Vec<Role>,
    peers: Vec<Peers>,
    /// Each node's mesh, inline: heartbeats and forwards read it without a second,
    /// scattered heap block (D_hi is 12 by default; a larger mesh spills to the heap).
    mesh: Vec<Mesh>,
    graylist: Vec<Vec<u32>>,
    /// Whether any node has graylisted a peer yet: until then no list is read (every
    /// delivery and heartbeat would otherwise load the receiver's list header, a cache miss).
    any_graylisted: bool,
    /// Update ids seen recently per node (for IHAVE), with the number of the node's last
    /// heartbeat instant before they arrived ([`Model::heartbeat_number`]). Entries older
    /// than the gossip history stay until the node's next heartbeat drops them.
    recent: Vec<Vec<(u32, u32)>>,
    hb_scheduled: Vec<bool>,
    /// Published updates; `by_subject` lists a subject's updates.
    pub updates: Vec<Update>,
    by_subject: BTreeMap<u32, Vec<u32>>,
    /// Each node's directory digest: XOR of a hash of each current version it holds (equal
    /// digests: equal views, so anti-entropy stops after the root fingerprint).
    digest: Vec<u64>,
    kad: Kademlia,
    lookups: Vec<Option<(Lookup, u32, SimTime)>>,
    /// Provider lookups among `lookups`: lookup id → attribute key.
    provider_of: std::collections::HashMap<u32, u32>,
    /// Provider records of attribute keys.
    pub providers: crate::providers::Providers,
    seq_counter: u64,
    res: Results,
    honest: Vec<u32>,
    forgers: Vec<u32>,
    equivocators: Vec<u32>,
    /// Pending heal measurements: (fault index, heal time).
    heals: Vec<(usize, SimTime)>,
    msg_overhead: u32,
    /// With `network.shared_cores`: when each core of the shared machine is next free (µs).
    cores: std::collections::BinaryHeap<std::cmp::Reverse<u64>>,
    /// Reused buffer for heartbeat candidate lists.
    scratch: Vec<u32>,
    swarm: Swarm,
    /// Reused buffer for the swarm's scheduled events.
    swarm_out: Vec<(SimTime, SwarmEv)>,
    /// The federation Sybils try to join (with `adversaries.sybils`).
    outsiders: Option<crate::outsiders::Outsiders>,
    /// `adversaries.defences`: validation, penalties and admission on.
    defences: bool,
    /// Each node's core ([`NodeState`]): when to reconcile and with whom, and what follows
    /// a (re)connection. Presence is not modelled, so its heartbeats are off.
    nodes: Vec<NodeState<u32>>,
    /// When each node's timer event is scheduled (µs; older events are stale).
    timer_at: Vec<u64>,
}

/// Up to `d_lazy` peers drawn uniformly at random, without repetition, from `peers` that are
/// neither in the mesh nor graylisted: the targets of a heartbeat's IHAVE (into `out`).
///
/// Every heartbeat of every node with recent ids draws them, so a node with many peers does
/// not copy and filter all of them each time (a quarter of a 10k-node run did): when at most
/// half the peers are excluded and at least `2·d_lazy` are not, random peers are drawn and
/// the excluded or already chosen ones drawn again (at least a quarter of the draws succeed;
/// with the defaults, 24 peers and a mesh of 6–12, about two thirds); otherwise the eligible
/// peers are listed and a partial Fisher–Yates shuffle picks them. Both give every subset
/// of the eligible peers the same chance.
fn lazy_gossip_targets(
    peers: &[u32],
    mesh: &[u32],
    graylist: &[u32],
    d_lazy: usize,
    rng: &mut ChaCha8Rng,
    out: &mut Vec<u32>,
) {
    out.clear();
    let excluded = mesh.len() + graylist.len();
    let eligible = |p: &u32| !mesh.contains(p) && !graylist.contains(p);
    if excluded <= peers.len() / 2 && peers.len() >= excluded + 2 * d_lazy {
        // at most `excluded + out.len()` of the peers are refused: at most three quarters
        while out.len() < d_lazy {
            let p = peers[rng.gen_range(0..peers.len())];
            if eligible(&p) && !out.contains(&p) {
                out.push(p);
            }
        }
        return;
    }
    out.extend(peers.iter().copied().filter(eligible));
    let take = d_lazy.min(out.len());
    for k in 0..take {
        let j = rng.gen_range(k..out.len());
        out.swap(k, j);
    }
    out.truncate(take);
}

/// Whether heartbeat number `hb` advertises an id that arrived after heartbeat number
/// `arrived`: the first `history` heartbeats after it do, as gossipsub's message cache does
/// (`history_gossip` windows gossiped, then shifted, at each heartbeat).
fn advertised_at(hb: u32, arrived: u32, history: u32) -> bool {
    hb.saturating_sub(arrived) <= history
}

fn bit(bits: &[u64], i: u32) -> bool {
    bits[(i / 64) as usize] & (1 << (i % 64)) != 0
}

fn set_bit(bits: &mut [u64], i: u32) {
    bits[(i / 64) as usize] |= 1 << (i % 64);
}

/// A 64-bit mix of an update id (splitmix64), for digests.
fn mix(u: u32) -> u64 {
    let mut z = u64::from(u).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn us(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Exponential sample with this mean (µs).
fn exp_us(rng: &mut ChaCha8Rng, mean_us: f64) -> u64 {
    let u: f64 = rng.r#gen::<f64>().max(1e-12);
    (-u.ln() * mean_us) as u64
}

impl Model {
    /// Builds the federation of `sc` with `seed`. `net` places the nodes.
    pub fn new(
        sc: Scenario,
        seed: u64,
        net_matrix: crate::net::LatencyMatrix,
    ) -> Result<Self, crate::SimError> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = sc.nodes as usize;
        let outsiders = if sc.adversaries.sybils > 0 {
            let require = sc.adversaries.require_membership.unwrap_or(true);
            Some(crate::outsiders::Outsiders::new(require, seed ^ 0x5b11)?)
        } else {
            None
        };
        let net = Network::new(n, net_matrix, &sc.placement.regions, &sc.network, &mut rng)?;
        // Roles: adversaries are random distinct nodes.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.shuffle(&mut rng);
        let mut role = vec![Role::Honest; n];
        let a = &sc.adversaries;
        let mut it = order.iter().copied();
        let mut take = |count: u32, r: Role, role: &mut Vec<Role>| -> Vec<u32> {
            let v: Vec<u32> = it.by_ref().take(count as usize).collect();
            for x in &v {
                role[*x as usize] = r;
            }
            v
        };
        let forgers = take(a.forgers, Role::Forger, &mut role);
        let equivocators = take(a.equivocators, Role::Equivocator, &mut role);
        take(a.withholders, Role::Withholder, &mut role);
        let honest: Vec<u32> = (0..n as u32)
            .filter(|i| role[*i as usize] == Role::Honest)
            .collect();
        // Connections: each node dials `peers/2` random others; links are symmetric.
        let want = (sc.gossip.peers as usize / 2).max(1).min(n - 1);
        let mut peers: Vec<Peers> = vec![Peers::new(); n];
        for i in 0..n as u32 {
            let mut tries = 0;
            let mut added = 0;
            while added < want && tries < want * 8 {
                tries += 1;
                let j = rng.gen_range(0..n as u32);
                if j == i || peers[i as usize].contains(&j) {
                    continue;
                }
                peers[i as usize].push(j);
                peers[j as usize].push(i);
                added += 1;
            }
        }
        let kad = Kademlia::new(n, sc.kademlia.k as usize, &mut rng);
        let providers = if sc.kademlia.provider_lookups_per_second > 0.0 {
            crate::providers::Providers::new(
                sc.kademlia.attribute_keys,
                sc.kademlia.keys_per_node,
                &kad,
                |_| true,
                &mut rng,
            )
        } else {
            crate::providers::Providers::disabled()
        };
        let res = Results {
            propagation_ms: LogHistogram::default(),
            update_convergence_ms: LogHistogram::default(),
            hops: vec![0; 32],
            lookup_ms: LogHistogram::default(),
            lookups_exact: 0,
            lookups: 0,
            series: Vec::new(),
            rejected: 0,
            equivocations: 0,
            sybils_refused: 0,
            forged_accepted: 0,
            sybils_admitted: 0,
            anti_entropy: 0,
            connections_closed: 0,
            redialled: 0,
            reconciliations: 0,
            reconcile_rounds: LogHistogram::default(),
            updates: 0,
            events: 0,
            sent_bytes: Vec::new(),
            heal_convergence: Vec::new(),
            final_convergence: 1.0,
            releases: Vec::new(),
            provider_lookups: 0,
            provider_found: 0,
            provider_hops: Vec::new(),
            provider_ms: LogHistogram::default(),
            core_trace: Vec::new(),
        };
        let swarm = Swarm::new(
            sc.repository.clone(),
            (&sc.params().repository).into(),
            n,
            &honest,
            sc.network.up_mbps,
            sc.network.down_mbps,
            &mut rng,
        );
        let mut workload = ChaCha8Rng::seed_from_u64(seed);
        workload.set_stream(1);
        let mut m = Self {
            rng,
            workload,
            q: Queue::default(),
            net,
            role,
            mesh: vec![Mesh::new(); n],
            graylist: vec![Vec::new(); n],
            any_graylisted: false,
            recent: vec![Vec::new(); n],
            hb_scheduled: vec![false; n],
            peers,
            updates: Vec::new(),
            by_subject: BTreeMap::new(),
            digest: vec![0; n],
            kad,
            lookups: Vec::new(),
            provider_of: std::collections::HashMap::new(),
            providers,
            seq_counter: 1,
            res,
            honest,
            forgers,
            equivocators,
            heals: Vec::new(),
            msg_overhead: 64,
            cores: (0..sc.network.shared_cores)
                .map(|_| std::cmp::Reverse(0))
                .collect(),
            scratch: Vec::new(),
            swarm,
            swarm_out: Vec::new(),
            outsiders,
            defences: sc.adversaries.defences.unwrap_or(true),
            nodes: Vec::new(),
            timer_at: vec![u64::MAX; n],
            sc,
        };
        m.schedule_start();
        Ok(m)
    }

    fn schedule_start(&mut self) {
        let n = self.net.len() as u32;
        let hb = us(self.sc.gossip.heartbeat);
        for i in 0..n {
            // Initial mesh: D random connections, then heartbeats keep it within bounds.
            let mut p = self.peers[i as usize].clone();
            p.shuffle(&mut self.rng);
            p.truncate(self.sc.gossip.d as usize);
            for j in p {
                self.graft_local(i, j);
            }
            let phase = self.rng.gen_range(0..hb.max(1));
            self.q.after(phase, Ev::Heartbeat(i));
            self.hb_scheduled[i as usize] = true;
        }
        // Every node runs the node's core from a formed federation: its connections are
        // admitted already, and its anti-entropy runs at a random phase.
        let params = self.sc.params();
        for i in 0..n {
            let mut node = NodeState::new(&params, Duration::ZERO, false)
                .without_presence()
                .reconcile_phase(self.rng.r#gen::<u64>());
            if self.sc.trace_node == Some(i) {
                node = node.traced(Vec::new());
            }
            for &p in &self.peers[i as usize] {
                node.assume_admitted(p);
            }
            self.nodes.push(node);
            self.arm_timer(i);
        }
        if self.sc.workload.updates_per_second > 0.0 {
            self.q.after(us(self.sc.workload.start), Ev::Publish);
        }
        if self.sc.kademlia.lookups_per_second > 0.0 {
            let mean = 1e6 / self.sc.kademlia.lookups_per_second;
            let first = exp_us(&mut self.workload, mean);
            self.q.after(first, Ev::Lookup);
        }
        if self.sc.kademlia.provider_lookups_per_second > 0.0 {
            let mean = 1e6 / self.sc.kademlia.provider_lookups_per_second;
            let first = exp_us(&mut self.workload, mean);
            self.q.after(first, Ev::ProviderLookup);
            self.q.after(
                us(self.sc.kademlia.provider_republish),
                Ev::ProviderRepublish,
            );
        }
        if let Some(c) = self.sc.churn.clone() {
            let churners = ((f64::from(n)) * c.fraction) as usize;
            let mut order: Vec<u32> = (0..n).collect();
            order.shuffle(&mut self.workload);
            for &i in order.iter().take(churners) {
                let s = self.session_us(&c.session);
                self.q.after(s, Ev::Down(i));
            }
        }
        for (i, f) in self.sc.faults.iter().enumerate() {
            self.q.at(SimTime(us(f.at)), Ev::Fault(i));
        }
        if self.sc.adversaries.sybils > 0 {
            self.q.after(1000, Ev::Sybil);
        }
        self.q.at(SimTime(0), Ev::Sample);
        for (at, ev) in self.swarm.start_events() {
            self.q.at(at, Ev::Swarm(ev));
        }
    }

    fn session_us(&mut self, s: &Session) -> u64 {
        match s {
            Session::Exponential { mean } => exp_us(&mut self.workload, mean.as_micros() as f64),
            Session::Weibull { scale, shape } => {
                let u: f64 = self.workload.r#gen::<f64>().max(1e-12);
                (scale.as_micros() as f64 * (-u.ln()).powf(1.0 / shape)) as u64
            }
        }
    }

    /// Runs to the end, calling `progress(fraction)` now and then.
    pub fn run(mut self, mut progress: impl FnMut(f64, u64)) -> Results {
        let end = SimTime(us(self.sc.duration));
        let mut next_report = 0.0;
        while let Some((now, ev)) = self.q.pop_until(end) {
            self.handle(now, ev);
            let f = now.as_secs_f64() / end.as_secs_f64().max(1e-9);
            if f >= next_report {
                progress(f, self.q.processed());
                next_report = f + 0.01;
            }
        }
        progress(1.0, self.q.processed());
        self.res.events = self.q.processed();
        self.res.final_convergence = self.convergence();
        let others = self.net.len().saturating_sub(1) as u32;
        for u in &self.updates {
            if u.valid && u.reached == others && self.role[u.subject as usize] == Role::Honest {
                self.res
                    .update_convergence_ms
                    .add(u.last_us as f64 / 1000.0);
            }
        }
        self.res.sent_bytes = std::mem::take(&mut self.net.sent_bytes);
        self.res.releases = self.swarm.results(self.net.len());
        self.res.provider_lookups = self.providers.lookups;
        self.res.provider_found = self.providers.found;
        self.res.provider_hops = std::mem::take(&mut self.providers.hops);
        self.res.provider_ms = std::mem::take(&mut self.providers.latency_ms);
        if let Some(i) = self.sc.trace_node {
            self.res.core_trace = self.nodes[i as usize].take_trace().unwrap_or_default();
        }
        for (i, _) in std::mem::take(&mut self.heals) {
            let at = self.sc.faults[i].at.as_secs_f64();
            self.res.heal_convergence.push((at, None));
        }
        self.res
    }

    fn handle(&mut self, now: SimTime, ev: Ev) {
        match ev {
            Ev::Publish => self.on_publish(now),
            Ev::Lookup => self.on_lookup_start(now),
            Ev::Heartbeat(i) => self.on_heartbeat(i),
            Ev::NodeTimer(i) => self.on_node_timer(i, now),
            Ev::Deliver {
                to,
                from,
                update,
                gossip,
            } => self.on_deliver(to, from, update, gossip, now),
            Ev::IHave { to, from, ids } => self.on_ihave(to, from, &ids, now),
            Ev::IWant { to, from, ids } => self.on_iwant(to, from, ids, now),
            Ev::Graft { to, from } => {
                if self.net.is_up(to) && !self.graylisted(to, from) {
                    self.graft_local(to, from);
                    // above D_hi, the next heartbeat prunes
                    if self.mesh[to as usize].len() > self.sc.gossip.d_hi as usize {
                        self.ensure_heartbeat(to);
                    }
                }
            }
            Ev::Prune { to, from } => self.mesh[to as usize].retain(|x| *x != from),
            Ev::KadRequest { lookup, to, from } => self.on_kad_request(lookup, to, from, now),
            Ev::KadAnswer {
                lookup,
                from,
                closer,
                found,
            } => self.on_kad_answer(lookup, from, &closer, found, now),
            Ev::ProviderLookup => self.on_provider_lookup_start(now),
            Ev::ProviderRepublish => {
                self.providers.republish(&self.kad, |i| self.net.is_up(i));
                let every = us(self.sc.kademlia.provider_republish);
                self.q.after(every, Ev::ProviderRepublish);
            }
            Ev::KadTimeout { lookup, peer } => {
                if let Some(Some((l, _, _))) = self.lookups.get_mut(lookup as usize) {
                    l.on_failure(peer);
                }
                self.advance_lookup(lookup, now);
            }
            Ev::Down(i) => self.on_down(i, now),
            Ev::PartitionIdle(i) => self.on_partition_idle(i, now),
            Ev::Up(i) => self.on_up(i, now),
            Ev::Fault(i) => self.on_fault(i, now),
            Ev::Sybil => {
                // An outsider dials a member and presents no credential: the node's
                // admission verdict decides.
                let refused = match &mut self.outsiders {
                    Some(o) if self.defences => !o.attempt(now.0 / 1000),
                    _ => false,
                };
                if refused {
                    self.res.sybils_refused += 1;
                } else {
                    self.res.sybils_admitted += 1;
                }
                let every = us(self.sc.duration) / u64::from(self.sc.adversaries.sybils.max(1)) / 4;
                self.q.after(every.max(1000), Ev::Sybil);
            }
            Ev::Sample => self.on_sample(now),
            Ev::Swarm(ev) => self.with_swarm(now, |swarm, cx| swarm.handle(cx, now, ev)),
        }
    }

    /// Runs `f` on the swarm with the network, RNG and connections, then schedules what it
    /// asked for.
    fn with_swarm(&mut self, now: SimTime, f: impl FnOnce(&mut Swarm, &mut Ctx<'_>)) {
        let mut out = std::mem::take(&mut self.swarm_out);
        let mut cx = Ctx {
            net: &mut self.net,
            rng: &mut self.rng,
            peers: &self.peers,
            role: &self.role,
            out: &mut out,
        };
        f(&mut self.swarm, &mut cx);
        for (at, ev) in out.drain(..) {
            self.q.at(at.max(now), Ev::Swarm(ev));
        }
        self.swarm_out = out;
    }

    // ---------------------------------------------------------------- directory and gossip

    fn graft_local(&mut self, a: u32, b: u32) {
        if !self.mesh[a as usize].contains(&b) {
            self.mesh[a as usize].push(b);
        }
        if !self.mesh[b as usize].contains(&a) && !self.graylisted(b, a) {
            self.mesh[b as usize].push(a);
        }
    }

    fn new_version(&mut self) -> Version {
        self.seq_counter += 1;
        let mut hash = [0u8; 32];
        self.workload.fill(&mut hash);
        Version {
            seq: self.seq_counter,
            hash,
        }
    }

    fn add_update(&mut self, subject: u32, version: Version, valid: bool, now: SimTime) -> u32 {
        let id = self.updates.len() as u32;
        let n = self.net.len();
        self.updates.push(Update {
            subject,
            version,
            at: now,
            valid,
            seen: vec![0; n.div_ceil(64)],
            queued: vec![0; n.div_ceil(64)],
            holders: 0,
            reached: 0,
            last_us: 0,
            item: Self::item(subject, &version),
        });
        if valid {
            self.by_subject.entry(subject).or_default().push(id);
        }
        id
    }

    fn on_publish(&mut self, now: SimTime) {
        let stop = SimTime(us(self.sc.updates_stop()));
        let mean = 1e6 / self.sc.workload.updates_per_second;
        let next = match self.sc.workload.arrivals {
            crate::scenario::Arrivals::Poisson => exp_us(&mut self.workload, mean),
            crate::scenario::Arrivals::Periodic => mean as u64,
        };
        if now.plus_us(next) <= stop {
            self.q.after(next, Ev::Publish);
        }
        // An honest subject publishes; forgers and equivocators act at the same rate each.
        let honest_n = self.honest.len().max(1);
        let subject = self.honest[self.workload.gen_range(0..honest_n)];
        if self.net.is_up(subject) {
            let v = self.new_version();
            let u = self.add_update(subject, v, true, now);
            self.res.updates += 1;
            self.accept_own(subject, u, now);
        }
        let p_each = 1.0 / honest_n as f64;
        for f in self.forgers.clone() {
            if self.net.is_up(f) && self.workload.r#gen::<f64>() < p_each {
                // A forged version of a random honest subject.
                let victim = self.honest[self.workload.gen_range(0..honest_n)];
                let v = self.new_version();
                let u = self.add_update(victim, v, false, now);
                for p in self.mesh[f as usize].clone() {
                    self.send_update(f, p, u, true, now);
                }
            }
        }
        for e in self.equivocators.clone() {
            if self.net.is_up(e) && self.workload.r#gen::<f64>() < p_each {
                let a = self.new_version();
                let b = Version {
                    seq: a.seq,
                    hash: {
                        let mut h = [0u8; 32];
                        self.workload.fill(&mut h);
                        h
                    },
                };
                let ua = self.add_update(e, a, true, now);
                let ub = self.add_update(e, b, true, now);
                self.store(e, ua, now);
                let mesh = self.mesh[e as usize].clone();
                for (i, p) in mesh.into_iter().enumerate() {
                    self.send_update(e, p, if i % 2 == 0 { ua } else { ub }, true, now);
                }
            }
        }
    }

    /// The publisher stores its own update and pushes it to its mesh, or to every
    /// connection that has not graylisted it with `flood_publish`.
    fn accept_own(&mut self, node: u32, u: u32, now: SimTime) {
        self.store(node, u, now);
        self.remember(node, u);
        let targets = if self.sc.gossip.flood_publish {
            self.peers[node as usize].to_vec()
        } else {
            self.mesh[node as usize].to_vec()
        };
        // The publisher signs, stores and commits before it sends.
        let send_at = now.plus_us((self.sc.network.publish_ms * 1000.0) as u64);
        for p in targets {
            if !self.graylisted(p, node) {
                self.send_update(node, p, u, true, send_at);
            }
        }
    }

    fn send_update(&mut self, from: u32, to: u32, u: u32, gossip: bool, now: SimTime) {
        let bytes = self.sc.workload.sd_bytes + self.msg_overhead;
        if let Some(at) = self.net.send(from, to, bytes, now, &mut self.rng) {
            // A copy for a node that has already seen the update is a duplicate whatever
            // happens next: its bytes and link time are accounted above; it needs no event.
            let upd = &mut self.updates[u as usize];
            if upd.valid && (bit(&upd.seen, to) || bit(&upd.queued, to)) {
                return;
            }
            if upd.valid {
                set_bit(&mut upd.queued, to);
            }
            let at = self.on_shared_cpu(at);
            let at = at.plus_us((self.sc.network.validate_ms * 1000.0) as u64);
            self.q.at(
                at,
                Ev::Deliver {
                    to,
                    from,
                    update: u,
                    gossip,
                },
            );
        }
    }

    /// With a shared machine (`network.shared_cores`), when a first copy that arrives at
    /// `at` has had its CPU time on the first free core; otherwise `at`. The time is
    /// exponential with mean `cpu_ms`.
    fn on_shared_cpu(&mut self, at: SimTime) -> SimTime {
        let Some(std::cmp::Reverse(free)) = self.cores.pop() else {
            return at;
        };
        let done = at.0.max(free) + exp_us(&mut self.rng, self.sc.network.cpu_ms * 1000.0);
        self.cores.push(std::cmp::Reverse(done));
        SimTime(done)
    }

    /// The node's current version of `subject` (among the updates of the run): the winner
    /// of the merge rules over the versions it has seen.
    fn current(&self, node: u32, subject: u32) -> Option<u32> {
        let ids = self.by_subject.get(&subject)?;
        let mut best: Option<u32> = None;
        for &u in ids {
            if !bit(&self.updates[u as usize].seen, node) {
                continue;
            }
            best = match best {
                None => Some(u),
                Some(b) => {
                    let stored = self.updates[b as usize].version;
                    let incoming = self.updates[u as usize].version;
                    Some(if decide(Some(stored), incoming).changed() {
                        u
                    } else {
                        b
                    })
                }
            };
        }
        best
    }

    /// Marks `u` seen at `node` and makes it current if it wins the merge.
    fn store(&mut self, node: u32, u: u32, now: SimTime) -> MergeOutcome {
        let upd = &self.updates[u as usize];
        let subject = upd.subject;
        let incoming = upd.version;
        let first_time = !bit(&upd.seen, node);
        let old = self.current(node, subject);
        set_bit(&mut self.updates[u as usize].seen, node);
        let stored = old.map(|c| self.updates[c as usize].version);
        let outcome = decide(stored, incoming);
        if outcome.changed() {
            if let Some(old) = old {
                self.updates[old as usize].holders -= 1;
                self.digest[node as usize] ^= mix(old);
            }
            self.updates[u as usize].holders += 1;
            self.digest[node as usize] ^= mix(u);
        }
        if first_time && self.role[subject as usize] == Role::Honest && subject != node {
            // Measured when the record reaches the node's merge step, like the node's
            // `received_at_ms`: the receiver's own validation comes after.
            let validate = (self.sc.network.validate_ms * 1000.0) as u64;
            let delay = now
                .0
                .saturating_sub(self.updates[u as usize].at.0)
                .saturating_sub(validate);
            self.res.propagation_ms.add(delay as f64 / 1000.0);
            let upd = &mut self.updates[u as usize];
            upd.reached += 1;
            upd.last_us = upd.last_us.max(delay);
        }
        outcome
    }

    fn remember(&mut self, node: u32, u: u32) {
        let hb = self.heartbeat_number(node, self.q.now());
        self.recent[node as usize].push((u, hb));
        self.ensure_heartbeat(node);
    }

    /// The gossip heartbeat interval (µs, at least 1).
    fn heartbeat_us(&self) -> u64 {
        us(self.sc.gossip.heartbeat).max(1)
    }

    /// Where `node`'s heartbeats fall within the interval (µs).
    fn heartbeat_phase(&self, node: u32) -> u64 {
        u64::from(node).wrapping_mul(2_654_435_761) % self.heartbeat_us()
    }

    /// The number of `node`'s last heartbeat instant at or before `t`: heartbeats follow
    /// the clock (one every interval, at the node's phase), as the node's do, whether or
    /// not the model spends an event on one that would do nothing.
    fn heartbeat_number(&self, node: u32, t: SimTime) -> u32 {
        let n = t.0.saturating_sub(self.heartbeat_phase(node)) / self.heartbeat_us();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn ensure_heartbeat(&mut self, node: u32) {
        if !self.hb_scheduled[node as usize] {
            self.hb_scheduled[node as usize] = true;
            let hb = self.heartbeat_us();
            // Keep the node's heartbeat phase: next multiple of the interval after now.
            let now = self.q.now().0;
            let phase = self.heartbeat_phase(node);
            let next = (now.saturating_sub(phase) / hb + 1) * hb + phase;
            self.q.at(SimTime(next), Ev::Heartbeat(node));
        }
    }

    /// Node `i` lost its connection to `gone`: when `gone` was in `i`'s mesh, `i`'s next
    /// heartbeat repairs it (gossipsub drops a disconnected peer from the mesh at once and
    /// grafts another at the next heartbeat).
    fn mesh_peer_lost(&mut self, i: u32, gone: u32) {
        if self.mesh[i as usize].contains(&gone) {
            self.ensure_heartbeat(i);
        }
    }

    fn on_deliver(&mut self, to: u32, from: u32, u: u32, gossip: bool, now: SimTime) {
        // The copy is no longer on its way: if it is dropped here, another may take its place.
        let queued = &mut self.updates[u as usize].queued;
        if let Some(w) = queued.get_mut((to / 64) as usize) {
            *w &= !(1 << (to % 64));
        }
        if !self.net.is_up(to) || self.graylisted(to, from) {
            return;
        }
        let upd = &self.updates[u as usize];
        if !upd.valid && !self.defences {
            // Nothing checks it: stored and forwarded like a valid record.
            if !bit(&upd.seen, to) {
                set_bit(&mut self.updates[u as usize].seen, to);
                self.res.forged_accepted += 1;
                if gossip {
                    self.forward(to, from, u, now);
                }
            }
            return;
        }
        if !upd.valid {
            // Rejected by validation; the sender is graylisted (peer score below −80).
            self.res.rejected += 1;
            self.penalise(to, from);
            return;
        }
        if bit(&upd.seen, to) {
            return;
        }
        let subject = upd.subject;
        let outcome = self.store(to, u, now);
        if matches!(outcome, MergeOutcome::Equivocation { .. }) {
            self.res.equivocations += 1;
        }
        match GossipVerdict::of(&outcome, from == subject) {
            GossipVerdict::Reject => self.penalise(to, from),
            GossipVerdict::Accept if gossip => self.forward(to, from, u, now),
            _ => {}
        }
    }

    /// `node` forwards update `u`, which came from `from`, to its mesh (a withholder does
    /// not).
    fn forward(&mut self, node: u32, from: u32, u: u32, now: SimTime) {
        if self.role[node as usize] == Role::Withholder {
            return;
        }
        self.remember(node, u);
        for k in 0..self.mesh[node as usize].len() {
            let p = self.mesh[node as usize][k];
            if p != from {
                self.send_update(node, p, u, true, now);
            }
        }
    }

    /// Whether `node` graylisted `peer`.
    fn graylisted(&self, node: u32, peer: u32) -> bool {
        self.any_graylisted && self.graylist[node as usize].contains(&peer)
    }

    fn penalise(&mut self, node: u32, bad: u32) {
        if !self.defences {
            return;
        }
        if !self.graylisted(node, bad) {
            self.any_graylisted = true;
            self.graylist[node as usize].push(bad);
        }
        self.mesh[node as usize].retain(|x| *x != bad);
        self.ensure_heartbeat(node);
    }

    fn on_heartbeat(&mut self, i: u32) {
        self.hb_scheduled[i as usize] = false;
        if !self.net.is_up(i) {
            return;
        }
        let idx = i as usize;
        let now = self.q.now();
        let g = self.sc.gossip.clone();
        // Drop mesh peers that are gone; graft up to D when below D_lo; prune above D_hi.
        let net = &self.net;
        self.mesh[idx].retain(|p| net.linked(i, *p));
        let mut changed = false;
        if self.mesh[idx].len() < g.d_lo as usize {
            let mut cands: Vec<u32> = self.peers[idx]
                .iter()
                .copied()
                .filter(|p| {
                    self.net.linked(i, *p) && !self.mesh[idx].contains(p) && !self.graylisted(i, *p)
                })
                .collect();
            cands.shuffle(&mut self.rng);
            for p in cands.into_iter().take(g.d as usize - self.mesh[idx].len()) {
                self.mesh[idx].push(p);
                if let Some(at) = self.net.send(i, p, self.msg_overhead, now, &mut self.rng) {
                    self.q.at(at, Ev::Graft { to: p, from: i });
                }
                changed = true;
            }
        } else if self.mesh[idx].len() > g.d_hi as usize {
            self.mesh[idx].shuffle(&mut self.rng);
            let pruned: Vec<u32> = self.mesh[idx].drain(g.d as usize..).collect();
            for p in pruned {
                if let Some(at) = self.net.send(i, p, self.msg_overhead, now, &mut self.rng) {
                    self.q.at(at, Ev::Prune { to: p, from: i });
                }
            }
        }
        // Lazy gossip: advertise recent ids to D_lazy non-mesh peers.
        let hb = self.heartbeat_number(i, now);
        let history = g.history;
        self.recent[idx].retain(|(_, h)| advertised_at(hb, *h, history));
        if !self.recent[idx].is_empty() && self.role[idx] != Role::Withholder {
            // the id list is shared by the IHAVEs that carry news, made when the first does
            let mut ids: Option<std::rc::Rc<[u32]>> = None;
            let mut lazy = std::mem::take(&mut self.scratch);
            lazy_gossip_targets(
                &self.peers[idx],
                &self.mesh[idx],
                if self.any_graylisted {
                    &self.graylist[idx]
                } else {
                    &[]
                },
                g.d_lazy as usize,
                &mut self.rng,
                &mut lazy,
            );
            let bytes = self.msg_overhead + 40 * self.recent[idx].len() as u32;
            for &p in &lazy {
                // An IHAVE listing only ids the peer has seen is ignored there: bytes only.
                let news = self.recent[idx]
                    .iter()
                    .any(|(u, _)| !bit(&self.updates[*u as usize].seen, p));
                if let Some(at) = self.net.send(i, p, bytes, now, &mut self.rng)
                    && news
                {
                    let ids = ids
                        .get_or_insert_with(|| self.recent[idx].iter().map(|(u, _)| *u).collect())
                        .clone();
                    self.q.at(
                        at,
                        Ev::IHave {
                            to: p,
                            from: i,
                            ids,
                        },
                    );
                }
            }
            self.scratch = lazy;
        }
        // The next heartbeat is an event only when it has work: ids still to advertise then,
        // or a mesh to repair. One that would only age the last ids out is skipped (they are
        // dropped by number at the next heartbeat that runs; a lost mesh peer schedules one).
        let advertise_next = self.recent[idx]
            .iter()
            .any(|(_, h)| advertised_at(hb.saturating_add(1), *h, history));
        if advertise_next || changed || self.mesh[idx].len() < g.d_lo as usize {
            self.ensure_heartbeat(i);
        }
    }

    fn on_ihave(&mut self, to: u32, from: u32, ids: &[u32], now: SimTime) {
        if !self.net.is_up(to) || self.graylisted(to, from) {
            return;
        }
        let want: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|u| !bit(&self.updates[*u as usize].seen, to))
            .collect();
        if want.is_empty() {
            return;
        }
        let bytes = self.msg_overhead + 40 * want.len() as u32;
        if let Some(at) = self.net.send(to, from, bytes, now, &mut self.rng) {
            self.q.at(
                at,
                Ev::IWant {
                    to: from,
                    from: to,
                    ids: want,
                },
            );
        }
    }

    fn on_iwant(&mut self, to: u32, from: u32, ids: Vec<u32>, now: SimTime) {
        if !self.net.is_up(to) || self.role[to as usize] == Role::Withholder {
            return;
        }
        for u in ids {
            if bit(&self.updates[u as usize].seen, to) {
                self.send_update(to, from, u, true, now);
            }
        }
    }

    // ----------------------------------------------------------------------- anti-entropy

    /// The node's current version of every updated subject it has a version of.
    fn view(&self, node: u32) -> BTreeMap<u32, u32> {
        self.by_subject
            .keys()
            .filter_map(|s| self.current(node, *s).map(|u| (*s, u)))
            .collect()
    }

    /// The reconciliation item of `subject` at `version` (keyed like real subjects: see
    /// [`subject_key`]; the id as the directory makes it).
    fn item(subject: u32, version: &Version) -> Item {
        let key = subject_key(subject);
        let mut h = blake3::Hasher::new();
        h.update(&key);
        h.update(&version.seq.to_le_bytes());
        h.update(&version.hash);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Item { key, id }
    }

    /// The node's reconciliation items, in the order of its view.
    fn items(view: &BTreeMap<u32, u32>, updates: &[Update]) -> Vec<Item> {
        view.values().map(|u| updates[*u as usize].item).collect()
    }

    /// Schedules node `i`'s timer at what its core asks, rounded *up* to the simulator's
    /// microsecond clock: rounded down, a deadline with a nanosecond part would fire before
    /// it is due, the core would do nothing and ask for the same instant again, for ever.
    fn arm_timer(&mut self, i: u32) {
        let at = u64::try_from(
            self.nodes[i as usize]
                .poll_timeout()
                .as_nanos()
                .div_ceil(1000),
        )
        .unwrap_or(u64::MAX);
        let at = at.max(self.q.now().0);
        if self.timer_at[i as usize] != at {
            self.timer_at[i as usize] = at;
            self.q.at(SimTime(at), Ev::NodeTimer(i));
        }
    }

    fn on_node_timer(&mut self, i: u32, now: SimTime) {
        if self.timer_at[i as usize] != now.0 || !self.net.is_up(i) {
            return; // rescheduled meanwhile, or down (re-armed when it comes back)
        }
        self.timer_at[i as usize] = u64::MAX;
        self.nodes[i as usize].handle_timeout(Duration::from_micros(now.0), &mut self.rng);
        self.run_node_actions(i, now);
        self.arm_timer(i);
    }

    /// Carries out what node `i`'s core decided. Reconciliation is the one action with an
    /// effect here (it runs at once, as one exchange); presence is not modelled, DHT
    /// re-publication is the provider model's, and members' admissions are given.
    fn run_node_actions(&mut self, i: u32, now: SimTime) {
        while let Some(action) = self.nodes[i as usize].poll_action() {
            match action {
                NodeAction::Reconcile(p) => {
                    self.reconcile(i, p, now);
                    self.nodes[i as usize].set_reconciling(&p, false);
                }
                // The dial gets through only if the peer is reachable; otherwise the core
                // tries again after its backoff.
                NodeAction::Redial(p) if self.net.reachable(i, p) => {
                    self.res.redialled += 1;
                    self.connect(i, p, now);
                }
                _ => {}
            }
        }
    }

    /// A connection between `i` and `p` comes up: both cores admit each other (members'
    /// admissions are given) and decide what follows; `i`'s actions and timer are left to
    /// its caller.
    fn connect(&mut self, i: u32, p: u32, now: SimTime) {
        self.net.reopen(i, p);
        let t = Duration::from_micros(now.0);
        for (a, b) in [(i, p), (p, i)] {
            let node = &mut self.nodes[a as usize];
            node.handle_connected(t, b);
            node.handle_admission(t, b, Ok(()), &mut self.rng);
        }
        self.run_node_actions(p, now);
        self.arm_timer(p);
    }

    /// One anti-entropy exchange between `a` (initiator) and `b`.
    fn reconcile(&mut self, a: u32, b: u32, now: SimTime) {
        if !self.net.linked(a, b) || self.role[b as usize] == Role::Withholder {
            return;
        }
        self.res.anti_entropy += 1;
        let same = self.digest[a as usize] == self.digest[b as usize];
        if same {
            // The first message's root fingerprint matches: one round trip.
            let _ = self.net.send(a, b, 96, now, &mut self.rng);
            let _ = self.net.send(b, a, 96, now, &mut self.rng);
            return;
        }
        self.res.reconciliations += 1;
        let (view_a, view_b) = (self.view(a), self.view(b));
        let set_a = ReconcileSet::new(Self::items(&view_a, &self.updates));
        let set_b = ReconcileSet::new(Self::items(&view_b, &self.updates));
        let (mut init, mut msg) = Initiator::start(set_a, self.rng.r#gen());
        let mut t = now;
        loop {
            let size = msg.encode().map_or(1024, |m| m.len()) as u32;
            let Some(at) = self.net.send(a, b, size, t, &mut self.rng) else {
                return;
            };
            let Ok(reply) = respond(&set_b, &msg) else {
                return;
            };
            let rsize = reply.encode().map_or(1024, |m| m.len()) as u32;
            let Some(back) = self.net.send(b, a, rsize, at, &mut self.rng) else {
                return;
            };
            t = back;
            match init.handle(&reply) {
                Ok(Some(next)) => msg = next,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        self.res.reconcile_rounds.add(init.rounds() as f64);
        // Transfer: a fetches b's versions it lacks, pushes those b lacks.
        // What the state machine found: keys a holds that b lacks (push), and b's short ids
        // a lacks (fetch). Map both back to update ids.
        let subject_of: std::collections::HashMap<[u8; 32], u32> = view_a
            .iter()
            .map(|(s, u)| (self.updates[*u as usize].item.key, *s))
            .collect();
        let diff_a: Vec<u32> = init
            .have()
            .filter_map(|k| view_a.get(subject_of.get(k)?))
            .copied()
            .collect();
        let need: std::collections::BTreeSet<[u8; 8]> = init.need().copied().collect();
        let diff_b: Vec<u32> = Self::items(&view_b, &self.updates)
            .iter()
            .zip(view_b.values())
            .filter(|(item, _)| need.contains(&item.short()))
            .map(|(_, u)| *u)
            .collect();
        for u in diff_b {
            self.send_update(b, a, u, false, t);
        }
        for u in diff_a {
            self.send_update(a, b, u, false, t);
        }
    }

    // -------------------------------------------------------------------------- Kademlia

    fn on_lookup_start(&mut self, now: SimTime) {
        let mean = 1e6 / self.sc.kademlia.lookups_per_second;
        let next = exp_us(&mut self.workload, mean);
        self.q.after(next, Ev::Lookup);
        let n = self.net.len() as u32;
        let origin = self.workload.gen_range(0..n);
        let target: u64 = self.workload.r#gen();
        if !self.net.is_up(origin) {
            return;
        }
        let l = Lookup::new(&self.kad, origin, target, self.sc.kademlia.alpha as usize);
        let id = self.lookups.len() as u32;
        self.lookups.push(Some((l, origin, now)));
        self.advance_lookup(id, now);
    }

    fn on_provider_lookup_start(&mut self, now: SimTime) {
        let mean = 1e6 / self.sc.kademlia.provider_lookups_per_second;
        let next = exp_us(&mut self.workload, mean);
        self.q.after(next, Ev::ProviderLookup);
        let n = self.net.len() as u32;
        let origin = self.workload.gen_range(0..n);
        if !self.net.is_up(origin) || self.providers.key_id.is_empty() {
            return;
        }
        let key = self
            .workload
            .gen_range(0..self.providers.key_id.len() as u32);
        let target = self.providers.key_id[key as usize];
        let l = Lookup::new(&self.kad, origin, target, self.sc.kademlia.alpha as usize);
        let id = self.lookups.len() as u32;
        self.lookups.push(Some((l, origin, now)));
        self.provider_of.insert(id, key);
        self.advance_lookup(id, now);
    }

    fn advance_lookup(&mut self, id: u32, now: SimTime) {
        let Some(Some((l, origin, started))) = self.lookups.get_mut(id as usize) else {
            return;
        };
        let (origin, started) = (*origin, *started);
        let ask = l.to_ask();
        let done = ask.is_empty() && l.done();
        if done {
            let result = l.result();
            let target = l.target;
            self.lookups[id as usize] = None;
            if self.provider_of.remove(&id).is_some() {
                // Every candidate answered and none held the records.
                self.providers.record(None);
                return;
            }
            self.res.lookups += 1;
            if let Some((found, hops)) = result {
                let h = (hops as usize).min(self.res.hops.len() - 1);
                self.res.hops[h] += 1;
                self.res
                    .lookup_ms
                    .add(now.0.saturating_sub(started.0) as f64 / 1000.0);
                if self.closest_live(target) == Some(found) {
                    self.res.lookups_exact += 1;
                }
            }
            return;
        }
        let timeout = us(self.sc.kademlia.rpc_timeout);
        for p in ask {
            match self.net.send(origin, p, 80, now, &mut self.rng) {
                Some(at) => self.q.at(
                    at,
                    Ev::KadRequest {
                        lookup: id,
                        to: p,
                        from: origin,
                    },
                ),
                None => self.q.after(
                    timeout,
                    Ev::KadTimeout {
                        lookup: id,
                        peer: p,
                    },
                ),
            }
        }
    }

    fn closest_live(&self, target: u64) -> Option<u32> {
        // Ground truth among nodes up (for the accuracy figure); linear in N but lookups
        // are rare compared to messages.
        (0..self.net.len() as u32)
            .filter(|n| self.net.is_up(*n))
            .min_by_key(|n| self.kad.id[*n as usize] ^ target)
    }

    fn on_kad_request(&mut self, lookup: u32, to: u32, from: u32, now: SimTime) {
        let Some(Some((l, _, _))) = self.lookups.get(lookup as usize) else {
            return;
        };
        let closer = self.kad.closest(to, l.target, self.kad.k);
        let found = self
            .provider_of
            .get(&lookup)
            .is_some_and(|k| self.providers.holds(*k, to));
        // A holder answers with up to k providers (peer id + addresses) as well.
        let bytes = 64 + 40 * closer.len() as u32 + if found { 20 * 80 } else { 0 };
        match self.net.send(to, from, bytes, now, &mut self.rng) {
            Some(at) => self.q.at(
                at,
                Ev::KadAnswer {
                    lookup,
                    from: to,
                    closer,
                    found,
                },
            ),
            None => {
                let timeout = us(self.sc.kademlia.rpc_timeout);
                self.q.after(timeout, Ev::KadTimeout { lookup, peer: to });
            }
        }
    }

    fn on_kad_answer(&mut self, lookup: u32, from: u32, closer: &[u32], found: bool, now: SimTime) {
        if found && self.provider_of.contains_key(&lookup) {
            // A provider lookup ends at the first node holding the records.
            if let Some(Some((l, _, started))) = self.lookups.get(lookup as usize) {
                let hops = l.depth_of(from).unwrap_or(1);
                let ms = now.0.saturating_sub(started.0) as f64 / 1000.0;
                self.providers.record(Some((hops, ms)));
            }
            self.provider_of.remove(&lookup);
            self.lookups[lookup as usize] = None;
            return;
        }
        if let Some(Some((l, origin, _))) = self.lookups.get_mut(lookup as usize) {
            let origin = *origin;
            l.on_answer(&self.kad, from, closer, origin);
        }
        self.advance_lookup(lookup, now);
    }

    // ------------------------------------------------------------------ churn and faults

    fn on_down(&mut self, i: u32, now: SimTime) {
        if !self.net.is_up(i) {
            return;
        }
        self.take_down(i, now);
        if let Some(c) = &self.sc.churn {
            let down = exp_us(&mut self.workload, c.downtime_mean.as_micros() as f64);
            self.q.after(down, Ev::Up(i));
        }
    }

    /// Node `i` stops: its peers' connections to it close (their cores dial it again).
    fn take_down(&mut self, i: u32, now: SimTime) {
        self.net.set_up(i, false);
        let t = Duration::from_micros(now.0);
        for k in 0..self.peers[i as usize].len() {
            let p = self.peers[i as usize][k];
            if self.net.is_up(p) {
                self.nodes[p as usize].handle_disconnected(t, &i);
                self.arm_timer(p);
                self.mesh_peer_lost(p, i);
            }
        }
    }

    /// A partition outlasted node `i`'s idle timeout: its connections across it close (the
    /// other ends too), and both cores dial the members they lost — which gets through once
    /// the sides can reach each other again.
    fn on_partition_idle(&mut self, i: u32, now: SimTime) {
        let t = Duration::from_micros(now.0);
        for k in 0..self.peers[i as usize].len() {
            let p = self.peers[i as usize][k];
            if self.net.is_up(i)
                && self.net.is_up(p)
                && !self.net.reachable(i, p)
                && !self.net.is_closed(i, p)
            {
                self.net.close(i, p);
                self.res.connections_closed += 1;
                for (a, b) in [(i, p), (p, i)] {
                    self.nodes[a as usize].handle_disconnected(t, &b);
                    self.mesh_peer_lost(a, b);
                }
                self.arm_timer(p);
            }
        }
        self.arm_timer(i);
    }

    fn on_up(&mut self, i: u32, now: SimTime) {
        if self.net.is_up(i) {
            return;
        }
        self.net.set_up(i, true);
        self.ensure_heartbeat(i);
        self.with_swarm(now, |swarm, cx| swarm.on_up(cx, i, now));
        // A restarted node: a fresh core; its connections come back and pass admission,
        // and the core decides what follows (each side reconciles with the other at once).
        let t = Duration::from_micros(now.0);
        let earlier = self.nodes[i as usize].take_trace();
        let mut fresh = NodeState::new(&self.sc.params(), t, false)
            .without_presence()
            .reconcile_phase(self.rng.r#gen::<u64>());
        if let Some(earlier) = earlier {
            fresh = fresh.traced(earlier);
        }
        self.nodes[i as usize] = fresh;
        self.timer_at[i as usize] = u64::MAX;
        // Those it cannot reach (across a partition) dial it again after the heal.
        let peers: Vec<u32> = self.peers[i as usize]
            .iter()
            .copied()
            .filter(|p| self.net.reachable(i, *p))
            .collect();
        for p in peers {
            self.connect(i, p, now);
        }
        self.run_node_actions(i, now);
        self.arm_timer(i);
        if let Some(c) = self.sc.churn.clone() {
            let s = self.session_us(&c.session);
            self.q.after(s, Ev::Down(i));
        }
    }

    fn on_fault(&mut self, i: usize, now: SimTime) {
        let f = self.sc.faults[i].clone();
        let n = self.net.len();
        if let Some(p) = &f.partition {
            if let Some(frac) = p.fraction {
                for x in 0..n as u32 {
                    if self.workload.r#gen::<f64>() < frac {
                        self.net.set_side(x, 1);
                    }
                }
            } else {
                let regions: Vec<usize> = p
                    .regions
                    .iter()
                    .filter_map(|r| self.net.matrix().index(r))
                    .collect();
                for x in 0..n as u32 {
                    if regions.contains(&usize::from(self.net.region(x))) {
                        self.net.set_side(x, 1);
                    }
                }
            }
            // A connection's idle timer runs from the last packet it received: with
            // keep-alives every half timeout, that fell anywhere in the half timeout before
            // the cut, so each node's connections close between half and all of the
            // timeout after it (node by node, not all at one instant).
            let idle = us(self.sc.params().sync.idle_timeout);
            let mut closes = Vec::with_capacity(n);
            for x in 0..n as u32 {
                let early = self.rng.gen_range(0..=idle / 2);
                self.q.after(idle - early, Ev::PartitionIdle(x));
                closes.push(now.plus_us(idle - early));
            }
            // What is sent across it on a connection still open at the heal arrives after
            // the heal (the faults are known in advance, so the heal time is too).
            let heal = self
                .sc
                .faults
                .iter()
                .filter(|g| g.heal && g.at >= f.at)
                .map(|g| SimTime(us(g.at)))
                .min();
            self.net
                .set_hold(heal.map(|heal| crate::net::Hold { heal, closes }));
        }
        if f.heal {
            self.net.set_hold(None);
            self.net.heal_sides();
            self.heals.push((i, now));
            for x in 0..n as u32 {
                self.ensure_heartbeat(x);
            }
            self.with_swarm(now, |swarm, cx| swarm.on_heal(cx, now));
        }
        if let Some(c) = &f.crash {
            for x in 0..n as u32 {
                if self.net.is_up(x) && self.workload.r#gen::<f64>() < c.fraction {
                    self.take_down(x, now);
                    if let Some(r) = c.restart_after {
                        self.q.after(us(r), Ev::Up(x));
                    }
                }
            }
        }
    }

    // --------------------------------------------------------------------------- metrics

    /// Fraction of (node, updated subject) pairs where the node holds the newest version.
    fn convergence(&self) -> f64 {
        let n = self.net.len() as f64;
        if self.by_subject.is_empty() {
            return 1.0;
        }
        let mut sum = 0.0;
        for ids in self.by_subject.values() {
            let newest = ids
                .iter()
                .copied()
                .reduce(|best, u| {
                    let (b, c) = (
                        self.updates[best as usize].version,
                        self.updates[u as usize].version,
                    );
                    if decide(Some(b), c).changed() {
                        u
                    } else {
                        best
                    }
                })
                .unwrap_or(0);
            sum += f64::from(self.updates[newest as usize].holders) / n;
        }
        sum / self.by_subject.len() as f64
    }

    fn on_sample(&mut self, now: SimTime) {
        let up = self.net.up_count() as u32;
        let conv = self.convergence();
        let bytes: u64 = self.net.sent_bytes.iter().sum();
        self.res.series.push((now.as_secs_f64(), up, conv, bytes));
        // Heals: converged when every node holds every newest version (churned-out nodes
        // count, so with churn this may not happen).
        let mut still = Vec::new();
        for (i, at) in std::mem::take(&mut self.heals) {
            if conv >= 0.999_999 {
                let t = self.sc.faults[i].at.as_secs_f64();
                self.res
                    .heal_convergence
                    .push((t, Some(now.as_secs_f64() - at.as_secs_f64())));
            } else {
                still.push((i, at));
            }
        }
        self.heals = still;
        self.q.after(us(self.sc.sample_every), Ev::Sample);
    }
}

impl std::fmt::Debug for Results {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").finish_non_exhaustive()
    }
}

/// The reconciliation key of simulated subject `s`. Real keys are public keys, uniform over
/// 32 bytes; a key made of the subject number (big-endian, zero-padded) put every subject of
/// a network under 2^24 nodes below one first-byte prefix, so the 16-way fingerprint tree
/// spent its first levels splitting a single branch.
pub(crate) fn subject_key(s: u32) -> [u8; 32] {
    *blake3::hash(&s.to_be_bytes()).as_bytes()
}

#[cfg(test)]
mod heartbeat_tests;

#[cfg(test)]
mod key_tests {
    use super::subject_key;

    #[test]
    fn subject_keys_spread_over_the_tree_like_public_keys() {
        let mut nibbles = [0usize; 16];
        for s in 0..1600u32 {
            nibbles[usize::from(subject_key(s)[0] >> 4)] += 1;
        }
        // 100 expected per branch; the old keys put all 1600 under nibble 0.
        assert!(
            nibbles.iter().all(|&n| (50..=150).contains(&n)),
            "{nibbles:?}"
        );
        assert_ne!(subject_key(1), subject_key(2));
    }
}

#[cfg(test)]
mod lazy_gossip_tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::lazy_gossip_targets;

    /// How often each peer is drawn over many heartbeats, and that every draw is a set of
    /// eligible peers of the right size.
    fn draws(peers: &[u32], mesh: &[u32], gray: &[u32], d_lazy: usize, n: usize) -> Vec<usize> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut out = Vec::new();
        let mut count = vec![0usize; peers.iter().max().map_or(0, |m| *m as usize + 1)];
        let eligible = peers
            .iter()
            .filter(|p| !mesh.contains(p) && !gray.contains(p))
            .count();
        for _ in 0..n {
            lazy_gossip_targets(peers, mesh, gray, d_lazy, &mut rng, &mut out);
            assert_eq!(out.len(), d_lazy.min(eligible), "{out:?}");
            for (i, p) in out.iter().enumerate() {
                assert!(peers.contains(p), "{p} is not a peer");
                assert!(!mesh.contains(p) && !gray.contains(p), "{p} is excluded");
                assert!(!out[..i].contains(p), "{p} drawn twice: {out:?}");
                count[*p as usize] += 1;
            }
        }
        count
    }

    #[test]
    fn many_peers_are_sampled_uniformly_without_the_mesh_and_graylist() {
        // 60 peers, 8 in the mesh, 2 graylisted: the rejection-sampling branch (as are the
        // defaults: 24 peers, a mesh of 6–12)
        let peers: Vec<u32> = (0..60).collect();
        let mesh: Vec<u32> = (0..8).collect();
        let gray = [20, 30];
        let count = draws(&peers, &mesh, &gray, 6, 20_000);
        // 50 eligible peers, 6 of them per draw: 2,400 each expected
        for p in &peers {
            let c = count[*p as usize];
            if mesh.contains(p) || gray.contains(p) {
                assert_eq!(c, 0);
            } else {
                assert!((2_150..=2_650).contains(&c), "peer {p} drawn {c} times");
            }
        }
    }

    #[test]
    fn few_peers_are_listed_and_shuffled() {
        // 12 peers, 8 in the mesh: 4 eligible, fewer than D_lazy: all of them every time
        let peers: Vec<u32> = (0..12).collect();
        let mesh: Vec<u32> = (0..8).collect();
        let count = draws(&peers, &mesh, &[], 6, 100);
        assert!(count[8..12].iter().all(|c| *c == 100), "{count:?}");
        // 16 peers, 6 in the mesh, 10 eligible, 6 per draw: 6,000 each over 10,000 draws
        let peers: Vec<u32> = (0..16).collect();
        let count = draws(&peers, &mesh[..6], &[], 6, 10_000);
        assert!(
            count[6..16].iter().all(|c| (5_700..=6_300).contains(c)),
            "{count:?}"
        );
        // 30 peers, 16 of them graylisted: more than half excluded, listed too
        let peers: Vec<u32> = (0..30).collect();
        let gray: Vec<u32> = (14..30).collect();
        let count = draws(&peers, &mesh, &gray, 6, 6_000);
        // 6 eligible (8..14), 6 per draw: all of them every time
        assert!(count[8..14].iter().all(|c| *c == 6_000), "{count:?}");
    }

    #[test]
    fn the_default_peer_count_is_sampled_uniformly() {
        // 24 peers, 12 in the mesh (D_hi): the rejection branch at its least efficient
        let peers: Vec<u32> = (0..24).collect();
        let mesh: Vec<u32> = (0..12).collect();
        let count = draws(&peers, &mesh, &[], 6, 12_000);
        // 12 eligible, 6 per draw: 6,000 each
        assert!(
            count[12..24].iter().all(|c| (5_700..=6_300).contains(c)),
            "{count:?}"
        );
    }

    #[test]
    fn nothing_eligible_gives_no_targets() {
        let peers: Vec<u32> = (0..6).collect();
        let count = draws(&peers, &peers, &[], 6, 10);
        assert!(count.iter().all(|c| *c == 0));
        let count = draws(&[], &[], &[], 6, 10);
        assert!(count.is_empty());
    }
}
