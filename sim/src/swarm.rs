//! Repository swarming: a release (one content-addressed blob) spreads from its publisher to
//! every node by segment exchange over the same connections and link queues as gossip.
//!
//! Every node runs the node's own piece scheduler ([`gaiamesh_core::pieces::Download`]) and
//! the publisher the node's super-seeding ([`gaiamesh_core::pieces::SuperSeed`]): which
//! segment a node asks from which peer, hedging, strikes, busy backoff and when a round of
//! providers ends are decided by the same code as in the daemon. What this module is, is the
//! rest of the world around them:
//! - the publisher announces the release to its peers; a node that learns of it forwards the
//!   announcement once and starts fetching (mandatory components are fetched at once);
//! - requests, announcements, busy and refusal answers are control messages that QUIC
//!   interleaves with bulk data: they do not queue behind segments on the uplink;
//! - a peer serves a request through its uplink, the same FIFO queue at `network.up_mbps`
//!   that gossip uses, so the per-node upload cap binds; a withholder never answers, a peer
//!   that lacks the segment refuses;
//! - a request unanswered after `request_timeout` fails (a strike, as in the daemon);
//! - a node that completes a segment sends HAVE to its peers; the bytes are counted, and a
//!   peer waiting with nothing to ask is woken when the HAVE arrives. (The holdings a HAVE
//!   carries are applied to the peers' schedulers at once rather than as events of their
//!   own: that keeps the event count linear in segments × nodes. The daemon asks HAVE every
//!   250 ms; here the news is immediate.)
//! - a node whose scheduler ends a round (every holder of a segment failed it) starts a new
//!   round with fresh holdings, as the daemon does after looking up providers again; a node
//!   that restarts resumes with the segments it had.
//!
//! The figure to compare against is the swarm lower bound: no node can finish before
//! `F / min(up, down)` with equal links, and the whole swarm needs at least
//! `(N − 1) · F / (N · up)` of aggregate upload time; a client-server copy from the
//! publisher alone takes `(N − 1) · F / up`.

use std::time::Duration;

use gaiamesh_core::pieces::{
    Bits, Download, Failure, Outcome, SchedulerParams, Status, SuperSeed, turn_wait,
};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{engine::SimTime, model::Role, net::Network, scenario::RepositoryParams};

/// Bytes of an announcement, a request, an answer without data and a HAVE on the wire.
const ANNOUNCE_BYTES: u32 = 200;
const REQUEST_BYTES: u32 = 64;
const ANSWER_BYTES: u32 = 16;
const HAVE_BYTES: u64 = 16;
/// Framing overhead of a segment response.
const CHUNK_OVERHEAD: u32 = 64;

/// Swarm events (scheduled by the model's queue).
#[derive(Clone, Debug)]
pub enum SwarmEv {
    /// Release `r` is published.
    Publish(u32),
    /// `to` learns of release `r` from `from`.
    Announce {
        /// Release.
        r: u32,
        /// Receiver.
        to: u32,
        /// Sender.
        from: u32,
    },
    /// `to` is asked for segment `chunk` of release `r` by `from`.
    Request {
        /// Release.
        r: u32,
        /// Server.
        to: u32,
        /// Requester.
        from: u32,
        /// Segment index.
        chunk: u32,
    },
    /// Segment `chunk` of `r` arrives at `to` from `from`.
    Chunk {
        /// Release.
        r: u32,
        /// Requester.
        to: u32,
        /// Server.
        from: u32,
        /// Segment index.
        chunk: u32,
    },
    /// `from` answered `to`'s request for `chunk` without the data.
    Answer {
        /// Release.
        r: u32,
        /// Requester.
        to: u32,
        /// Server.
        from: u32,
        /// Segment index.
        chunk: u32,
        /// Busy (super-seeding) or refused (does not hold it).
        busy: bool,
    },
    /// The request of `node` to `peer` for `chunk` may have timed out.
    Timeout {
        /// Release.
        r: u32,
        /// Requester.
        node: u32,
        /// Server.
        peer: u32,
        /// Segment index.
        chunk: u32,
    },
    /// `node`'s scheduler asked to be woken (a hedge is due).
    Tick {
        /// Release.
        r: u32,
        /// Node.
        node: u32,
    },
    /// `node` looks again for segments to ask (a peer's HAVE arrived, a busy backoff
    /// ended, or it came back up).
    Wake {
        /// Release.
        r: u32,
        /// Node.
        node: u32,
    },
}

/// What the swarm needs from the rest of the model for one event.
pub struct Ctx<'a> {
    /// The network (link queues, up state, partitions, byte counters).
    pub net: &'a mut Network,
    /// The run's RNG.
    pub rng: &'a mut ChaCha8Rng,
    /// Each node's connections.
    pub peers: &'a [crate::model::Peers],
    /// Each node's role (withholders never serve).
    pub role: &'a [Role],
    /// Events to schedule: (time, event).
    pub out: &'a mut Vec<(SimTime, SwarmEv)>,
}

/// The outcome of one release.
#[derive(Clone, Debug)]
pub struct ReleaseResult {
    /// When it was published (s).
    pub at_s: f64,
    /// Blob size in bytes.
    pub bytes: u64,
    /// Number of chunks.
    pub chunks: u32,
    /// Nodes that had to download it (all but the publisher).
    pub downloaders: u32,
    /// ms from publication to completion at each node that completed, sorted.
    pub completion_ms: Vec<f64>,
    /// The swarm lower bound (ms): `max(F / min(up, down), (N−1)·F / (N·up))` plus the
    /// largest one-way latency is not included (it is small against the transfer time).
    pub lower_bound_ms: f64,
    /// A client-server copy from the publisher alone (ms): `(N − 1) · F / up`.
    pub client_server_ms: f64,
    /// Chunk bytes uploaded by the publisher.
    pub publisher_uploaded: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Requests hedged to a second peer.
    pub hedges: u64,
}

struct Release {
    at: SimTime,
    bytes: u64,
    chunks: u32,
    chunk_bytes: u32,
    publisher: u32,
    /// Segments each node holds (empty until it learns of the release).
    have: Vec<Bits>,
    known: Vec<bool>,
    /// Each node's scheduler while it downloads.
    dl: Vec<Option<Download<u32>>>,
    /// The publisher's super-seeding.
    seed: SuperSeed,
    /// Nodes with nothing to ask (woken by a HAVE).
    starving: Vec<bool>,
    /// When a node's scheduler tick is scheduled.
    tick_at: Vec<Option<SimTime>>,
    completion_ms: Vec<f64>,
    publisher_uploaded: u64,
    timeouts: u64,
    hedges: u64,
}

/// All releases of a run.
pub struct Swarm {
    params: SchedulerParams,
    releases: Vec<Release>,
    up_bytes_per_us: f64,
    down_bytes_per_us: f64,
    /// When an unanswered request is given up (µs).
    timeout_us: u64,
    /// How long a request may wait for a turn on a capped uplink before it is answered
    /// busy (µs; the node's rule).
    turn_wait_us: u64,
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Deadline `d` as a simulated time, rounded up to the microsecond so that it never fires
/// before it is due.
fn sim_time(d: Duration) -> SimTime {
    SimTime(u64::try_from(d.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX))
}

/// A simulated time as the scheduler's.
fn core_time(t: SimTime) -> Duration {
    Duration::from_micros(t.0)
}

impl Swarm {
    /// The releases of `params` for `n` nodes, each with a random publisher among `honest`;
    /// every node schedules with `scheduler` (the node's parameters).
    pub fn new(
        params: RepositoryParams,
        scheduler: SchedulerParams,
        n: usize,
        honest: &[u32],
        up_mbps: f64,
        down_mbps: f64,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let chunk_bytes = params.chunk_kib.max(1) * 1024;
        let releases = params
            .releases
            .iter()
            .map(|spec| {
                let bytes = (spec.size_mib * 1024.0 * 1024.0) as u64;
                let chunks = bytes.div_ceil(u64::from(chunk_bytes)).max(1) as u32;
                Release {
                    at: sim_time(spec.at),
                    bytes,
                    chunks,
                    chunk_bytes,
                    publisher: honest.choose(rng).copied().unwrap_or(0),
                    have: vec![Bits::default(); n],
                    known: vec![false; n],
                    dl: vec![None; n],
                    seed: SuperSeed::new(chunks),
                    starving: vec![false; n],
                    tick_at: vec![None; n],
                    completion_ms: Vec::new(),
                    publisher_uploaded: 0,
                    timeouts: 0,
                    hedges: 0,
                }
            })
            .collect();
        let up_bytes_per_s = (up_mbps * 1e6 / 8.0) as u64;
        Self {
            turn_wait_us: us(turn_wait(u64::from(chunk_bytes), up_bytes_per_s)),
            timeout_us: us(params.request_timeout),
            params: scheduler,
            releases,
            up_bytes_per_us: up_mbps / 8.0,
            down_bytes_per_us: down_mbps / 8.0,
        }
    }

    /// The publication events to schedule at the start.
    pub fn start_events(&self) -> Vec<(SimTime, SwarmEv)> {
        self.releases
            .iter()
            .enumerate()
            .map(|(i, r)| (r.at, SwarmEv::Publish(i as u32)))
            .collect()
    }

    /// Handles one event at `now`.
    pub fn handle(&mut self, cx: &mut Ctx<'_>, now: SimTime, ev: SwarmEv) {
        match ev {
            SwarmEv::Publish(r) => self.on_publish(cx, r, now),
            SwarmEv::Announce { r, to, from } => self.on_announce(cx, r, to, from, now),
            SwarmEv::Request { r, to, from, chunk } => self.on_request(cx, r, to, from, chunk, now),
            SwarmEv::Chunk { r, to, from, chunk } => self.on_chunk(cx, r, to, from, chunk, now),
            SwarmEv::Answer {
                r,
                to,
                from,
                chunk,
                busy,
            } => {
                let failure = if busy { Failure::Busy } else { Failure::Cutoff };
                self.answer(cx, r, to, from, chunk, Outcome::Failed(failure), now);
                if busy {
                    // Ask again when the backoff ends.
                    let at = now.plus_us(us(self.params.busy_backoff));
                    cx.out.push((at, SwarmEv::Wake { r, node: to }));
                }
            }
            SwarmEv::Timeout {
                r,
                node,
                peer,
                chunk,
            } => {
                let pending = self.releases[r as usize].dl[node as usize]
                    .as_ref()
                    .is_some_and(|d| d.is_pending(peer, chunk));
                if pending && cx.net.is_up(node) {
                    self.releases[r as usize].timeouts += 1;
                    let failed = Outcome::Failed(Failure::Cutoff);
                    self.answer(cx, r, node, peer, chunk, failed, now);
                }
            }
            SwarmEv::Tick { r, node } => {
                let rel = &mut self.releases[r as usize];
                if rel.tick_at[node as usize].is_some_and(|t| t <= now) {
                    rel.tick_at[node as usize] = None;
                }
                if let Some(d) = rel.dl[node as usize].as_mut() {
                    let before = d.hedges();
                    d.handle_timeout(core_time(now));
                    rel.hedges += d.hedges() - before;
                }
                self.fill(cx, r, node, now);
            }
            SwarmEv::Wake { r, node } => {
                self.releases[r as usize].starving[node as usize] = false;
                self.fill(cx, r, node, now);
            }
        }
    }

    /// A node came back up: it resumes every release it knows of with the segments it had
    /// (a new scheduler, as a restarted daemon starts one), and learns of those published
    /// meanwhile from a peer (the node's repository metadata is exchanged on every new
    /// connection).
    pub fn on_up(&mut self, cx: &mut Ctx<'_>, node: u32, now: SimTime) {
        for r in 0..self.releases.len() as u32 {
            self.resync(cx, r, node, now);
        }
    }

    /// A partition healed: nodes learn of releases across the old cut and of what their
    /// peers there hold, and look for segments again.
    pub fn on_heal(&mut self, cx: &mut Ctx<'_>, now: SimTime) {
        for r in 0..self.releases.len() as u32 {
            for node in 0..cx.peers.len() as u32 {
                if cx.net.is_up(node) {
                    self.resync(cx, r, node, now);
                }
            }
        }
    }

    fn resync(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32, now: SimTime) {
        let ni = node as usize;
        let rel = &self.releases[r as usize];
        if !rel.known[ni] {
            let from = cx.peers[ni]
                .iter()
                .copied()
                .find(|p| rel.known[*p as usize] && cx.net.linked(node, *p));
            if let Some(p) = from {
                self.on_announce(cx, r, node, p, now);
            }
            return;
        }
        self.new_round(cx, r, node);
        self.fill(cx, r, node, now);
    }

    /// A fresh scheduler for `node` over the segments it lacks, with what its peers hold.
    fn new_round(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32) {
        let ni = node as usize;
        let params = self.params.clone();
        let rel = &mut self.releases[r as usize];
        if rel.have[ni].is_full() {
            rel.dl[ni] = None;
            return;
        }
        let missing: Vec<u32> = (0..rel.chunks)
            .filter(|c| !rel.have[ni].contains(*c))
            .collect();
        let mut d = Download::new(rel.chunks, missing, params, cx.rng);
        for &p in &cx.peers[ni] {
            let held = &rel.have[p as usize];
            if held.count() > 0 {
                d.set_have(p, held.clone());
            }
        }
        rel.dl[ni] = Some(d);
        rel.starving[ni] = false;
    }

    fn announce(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32, except: u32, now: SimTime) {
        for &p in &cx.peers[node as usize] {
            if p == except {
                continue;
            }
            if let Some(at) = cx.net.send_control(node, p, ANNOUNCE_BYTES, now, cx.rng) {
                cx.out.push((
                    at,
                    SwarmEv::Announce {
                        r,
                        to: p,
                        from: node,
                    },
                ));
            }
        }
    }

    fn on_publish(&mut self, cx: &mut Ctx<'_>, r: u32, now: SimTime) {
        let rel = &mut self.releases[r as usize];
        let p = rel.publisher;
        rel.have[p as usize] = Bits::full(rel.chunks);
        rel.known[p as usize] = true;
        self.announce(cx, r, p, u32::MAX, now);
    }

    fn on_announce(&mut self, cx: &mut Ctx<'_>, r: u32, to: u32, from: u32, now: SimTime) {
        let rel = &mut self.releases[r as usize];
        if !cx.net.is_up(to) || rel.known[to as usize] {
            return;
        }
        rel.known[to as usize] = true;
        rel.have[to as usize] = Bits::new(rel.chunks);
        if cx.role[to as usize] != Role::Withholder {
            self.announce(cx, r, to, from, now);
        }
        self.new_round(cx, r, to);
        self.fill(cx, r, to, now);
    }

    /// Sends the requests `node`'s scheduler asks for, and arms its next tick.
    fn fill(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32, now: SimTime) {
        let ni = node as usize;
        if !cx.net.is_up(node) {
            return;
        }
        let timeout = self.timeout_us;
        let rel = &mut self.releases[r as usize];
        let Some(d) = rel.dl[ni].as_mut() else {
            return;
        };
        if d.status(core_time(now)) == Status::StruckOut {
            self.new_round(cx, r, node);
        }
        let rel = &mut self.releases[r as usize];
        let Some(d) = rel.dl[ni].as_mut() else {
            return;
        };
        while let Some((peer, chunk)) = d.poll_request(core_time(now), cx.rng) {
            if let Some(at) = cx.net.send_control(node, peer, REQUEST_BYTES, now, cx.rng) {
                cx.out.push((
                    at,
                    SwarmEv::Request {
                        r,
                        to: peer,
                        from: node,
                        chunk,
                    },
                ));
            }
            cx.out.push((
                now.plus_us(timeout),
                SwarmEv::Timeout {
                    r,
                    node,
                    peer,
                    chunk,
                },
            ));
        }
        if d.in_flight() == 0 {
            rel.starving[ni] = true;
        }
        if let Some(t) = d.poll_timeout() {
            let at = sim_time(t).max(now);
            if rel.tick_at[ni].is_none_or(|s| at < s) {
                rel.tick_at[ni] = Some(at);
                cx.out.push((at, SwarmEv::Tick { r, node }));
            }
        }
    }

    /// An answer without data, or a timeout, for `node`'s request to `peer`.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        cx: &mut Ctx<'_>,
        r: u32,
        node: u32,
        peer: u32,
        chunk: u32,
        outcome: Outcome,
        now: SimTime,
    ) {
        let ni = node as usize;
        if !cx.net.is_up(node) {
            return;
        }
        if let Some(d) = self.releases[r as usize].dl[ni].as_mut() {
            d.on_answer(core_time(now), peer, chunk, outcome);
        }
        self.fill(cx, r, node, now);
    }

    fn on_request(
        &mut self,
        cx: &mut Ctx<'_>,
        r: u32,
        to: u32,
        from: u32,
        chunk: u32,
        now: SimTime,
    ) {
        let ti = to as usize;
        let rel = &mut self.releases[r as usize];
        if !cx.net.is_up(to) || cx.role[ti] == Role::Withholder {
            return; // never answered: the requester times out
        }
        let busy = if !rel.have[ti].contains(chunk) {
            Some(false)
        } else if to == rel.publisher && !rel.seed.admit(chunk) {
            Some(true)
        } else if cx.net.backlog_us(to, now) > self.turn_wait_us {
            // No turn on the capped uplink in time: busy, as the node answers.
            if to == rel.publisher {
                rel.seed.revoke(chunk);
            }
            Some(true)
        } else {
            None
        };
        if let Some(busy) = busy {
            if let Some(at) = cx.net.send_control(to, from, ANSWER_BYTES, now, cx.rng) {
                cx.out.push((
                    at,
                    SwarmEv::Answer {
                        r,
                        to: from,
                        from: to,
                        chunk,
                        busy,
                    },
                ));
            }
            return;
        }
        let bytes = rel.chunk_bytes + CHUNK_OVERHEAD;
        if let Some(at) = cx.net.send(to, from, bytes, now, cx.rng) {
            if to == rel.publisher {
                rel.publisher_uploaded += u64::from(rel.chunk_bytes);
            }
            cx.out.push((
                at,
                SwarmEv::Chunk {
                    r,
                    to: from,
                    from: to,
                    chunk,
                },
            ));
        } else if to == rel.publisher {
            // Not sent after all: another requester may have this segment.
            rel.seed.revoke(chunk);
        }
    }

    fn on_chunk(&mut self, cx: &mut Ctx<'_>, r: u32, to: u32, from: u32, chunk: u32, now: SimTime) {
        let ti = to as usize;
        if !cx.net.is_up(to) {
            return;
        }
        let rel = &mut self.releases[r as usize];
        let Some(d) = rel.dl[ti].as_mut() else {
            return; // complete already
        };
        if !d.on_answer(core_time(now), from, chunk, Outcome::Delivered) {
            return; // timed out meanwhile, the slower twin of a hedge, or a restart
        }
        rel.have[ti].insert(chunk);
        if rel.have[ti].is_full() {
            rel.completion_ms
                .push(now.0.saturating_sub(rel.at.0) as f64 / 1000.0);
        }
        // HAVE to every peer: their schedulers learn it, and a starving one looks again
        // when it arrives.
        cx.net.sent_bytes[ti] += HAVE_BYTES * cx.peers[ti].len() as u64;
        for &p in &cx.peers[ti] {
            let pi = p as usize;
            if let Some(pd) = rel.dl[pi].as_mut()
                && !pd.add_have(to, chunk)
            {
                pd.set_have(to, rel.have[ti].clone());
            }
            if rel.starving[pi]
                && let Some(at) = cx.net.send_control(to, p, 0, now, cx.rng)
            {
                rel.starving[pi] = false;
                cx.out.push((at, SwarmEv::Wake { r, node: p }));
            }
        }
        if rel.have[ti].is_full() {
            rel.dl[ti] = None;
            return;
        }
        self.fill(cx, r, to, now);
    }

    /// The outcome of every release.
    pub fn results(&self, n: usize) -> Vec<ReleaseResult> {
        let nf = n as f64;
        self.releases
            .iter()
            .map(|rel| {
                let f = rel.bytes as f64;
                let min_link = self.up_bytes_per_us.min(self.down_bytes_per_us);
                let lower_us = (f / min_link).max((nf - 1.0) * f / (nf * self.up_bytes_per_us));
                let mut completion_ms = rel.completion_ms.clone();
                completion_ms.sort_by(f64::total_cmp);
                ReleaseResult {
                    at_s: rel.at.as_secs_f64(),
                    bytes: rel.bytes,
                    chunks: rel.chunks,
                    downloaders: n as u32 - 1,
                    completion_ms,
                    lower_bound_ms: lower_us / 1000.0,
                    client_server_ms: (nf - 1.0) * f / self.up_bytes_per_us / 1000.0,
                    publisher_uploaded: rel.publisher_uploaded,
                    timeouts: rel.timeouts,
                    hedges: rel.hedges,
                }
            })
            .collect()
    }
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Swarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarm")
            .field("releases", &self.releases.len())
            .finish_non_exhaustive()
    }
}
