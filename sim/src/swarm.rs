//! Repository swarming: a release (one content-addressed blob) spreads from its publisher to
//! every node by chunk exchange over the same connections and link queues as gossip.
//!
//! The protocol modelled is the node's multi-source download (DESIGN §7):
//! - the publisher announces the release to its peers; a node that learns of it forwards the
//!   announcement once and starts fetching (mandatory components are fetched at once);
//! - a node keeps up to `parallel` chunk requests in flight, each to a connected peer that
//!   holds a chunk it lacks; of two random such peers it asks the one serving fewer
//!   requests (the load a real node observes as latency), and of up to 8 random chunks it
//!   lacks from that peer the rarest among its own peers (rarest first);
//! - the publisher super-seeds: until every chunk has gone out once, it offers only chunks
//!   it has not served yet, so its upload is not spent on duplicates;
//! - requests, announcements and HAVEs are control messages that QUIC interleaves with
//!   bulk data: they do not queue behind chunks on the uplink;
//! - a peer serves a request through its uplink, which is the same FIFO queue at
//!   `network.up_mbps` that gossip uses, so the per-node upload cap binds;
//! - a request unanswered after `hedge_factor` chunk transfer times (at the upload cap) is
//!   hedged: the chunk is also asked from the least loaded other peer holding it, and the
//!   first answer wins;
//! - a request unanswered after `request_timeout` (peer down, partitioned or a withholder)
//!   is dropped, that peer is avoided for the release and the chunk asked elsewhere;
//! - a node that completes a chunk sends HAVE to its peers; the bytes are counted, and a
//!   peer waiting with nothing to ask is woken when the HAVE arrives. (Which chunks a peer
//!   holds is read from the model rather than carried in HAVE events: that is what the
//!   HAVEs would have told, and it keeps the event count linear in chunks × nodes.)
//!
//! The figure to compare against is the swarm lower bound: no node can finish before
//! `F / min(up, down)` with equal links, and the whole swarm needs at least
//! `(N − 1) · F / (N · up)` of aggregate upload time; a client-server copy from the
//! publisher alone takes `(N − 1) · F / up`.

use rand::{Rng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::{engine::SimTime, model::Role, net::Network, scenario::RepositoryParams};

/// Bytes of an announcement, a request and a HAVE message on the wire.
const ANNOUNCE_BYTES: u32 = 200;
const REQUEST_BYTES: u32 = 64;
const HAVE_BYTES: u64 = 16;
/// Framing overhead of a chunk response.
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
    /// `to` is asked for chunk `chunk` of release `r` by `from`.
    Request {
        /// Release.
        r: u32,
        /// Server.
        to: u32,
        /// Requester.
        from: u32,
        /// Chunk index.
        chunk: u32,
    },
    /// Chunk `chunk` of `r` arrives at `to` from `from`.
    Chunk {
        /// Release.
        r: u32,
        /// Requester.
        to: u32,
        /// Server.
        from: u32,
        /// Chunk index.
        chunk: u32,
    },
    /// The request of `node` to `peer` for `chunk` may have timed out.
    Timeout {
        /// Release.
        r: u32,
        /// Requester.
        node: u32,
        /// Server.
        peer: u32,
        /// Chunk index.
        chunk: u32,
    },
    /// The request of `node` to `peer` for `chunk` is slow: ask a second peer.
    Hedge {
        /// Release.
        r: u32,
        /// Requester.
        node: u32,
        /// Server.
        peer: u32,
        /// Chunk index.
        chunk: u32,
    },
    /// `node` looks again for chunks to ask (a peer's HAVE arrived, or it came back up).
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
    pub peers: &'a [Vec<u32>],
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
    /// Chunks each node holds (bitset per node, allocated on first use).
    have: Vec<Vec<u64>>,
    /// Chunks each node has in flight (bitset per node).
    asked: Vec<Vec<u64>>,
    count: Vec<u32>,
    known: Vec<bool>,
    /// (chunk, peer) requests in flight per node.
    inflight: Vec<Vec<(u32, u32)>>,
    /// Requests each node is serving (accepted, response not yet arrived).
    serving: Vec<u32>,
    /// Peers a node no longer asks (timed out once).
    avoid: Vec<Vec<u32>>,
    /// Nodes with free request slots and nothing to ask.
    starving: Vec<bool>,
    completion_ms: Vec<f64>,
    publisher_uploaded: u64,
    timeouts: u64,
    hedges: u64,
    /// Chunks the publisher has served at least once (super-seeding: until every chunk
    /// went out once, the publisher offers only those that have not).
    seeded: Vec<u64>,
    seeded_count: u32,
}

/// All releases of a run.
pub struct Swarm {
    params: RepositoryParams,
    words: usize,
    releases: Vec<Release>,
    up_bytes_per_us: f64,
    down_bytes_per_us: f64,
    /// When a request is hedged (µs), if hedging is on.
    hedge_us: Option<u64>,
    /// When an unanswered request is given up (µs).
    timeout_us: u64,
}

/// Sends `node`'s request for `chunk` to `peer` and arms its timeout.
fn send_request(
    cx: &mut Ctx<'_>,
    r: u32,
    node: u32,
    peer: u32,
    chunk: u32,
    now: SimTime,
    timeout_us: u64,
) {
    if let Some(at) = cx.net.send_control(node, peer, REQUEST_BYTES, now, cx.rng) {
        let to = peer;
        cx.out.push((
            at,
            SwarmEv::Request {
                r,
                to,
                from: node,
                chunk,
            },
        ));
    }
    cx.out.push((
        now.plus_us(timeout_us),
        SwarmEv::Timeout {
            r,
            node,
            peer,
            chunk,
        },
    ));
}

fn bit(bits: &[u64], i: u32) -> bool {
    bits.get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set(bits: &mut [u64], i: u32, on: bool) {
    let w = &mut bits[(i / 64) as usize];
    if on {
        *w |= 1 << (i % 64);
    } else {
        *w &= !(1 << (i % 64));
    }
}

impl Swarm {
    /// The releases of `params` for `n` nodes, each with a random publisher among `honest`.
    pub fn new(
        params: RepositoryParams,
        n: usize,
        honest: &[u32],
        up_mbps: f64,
        down_mbps: f64,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let chunk_bytes = params.chunk_kib.max(1) * 1024;
        let mut words = 0;
        let releases = params
            .releases
            .iter()
            .map(|spec| {
                let bytes = (spec.size_mib * 1024.0 * 1024.0) as u64;
                let chunks = bytes.div_ceil(u64::from(chunk_bytes)).max(1) as u32;
                words = words.max(chunks.div_ceil(64) as usize);
                Release {
                    at: SimTime(u64::try_from(spec.at.as_micros()).unwrap_or(u64::MAX)),
                    bytes,
                    chunks,
                    chunk_bytes,
                    publisher: honest.choose(rng).copied().unwrap_or(0),
                    have: vec![Vec::new(); n],
                    asked: vec![Vec::new(); n],
                    count: vec![0; n],
                    known: vec![false; n],
                    inflight: vec![Vec::new(); n],
                    serving: vec![0; n],
                    avoid: vec![Vec::new(); n],
                    starving: vec![false; n],
                    completion_ms: Vec::new(),
                    publisher_uploaded: 0,
                    timeouts: 0,
                    hedges: 0,
                    seeded: vec![0; chunks.div_ceil(64) as usize],
                    seeded_count: 0,
                }
            })
            .collect();
        let chunk_us = f64::from(chunk_bytes) / (up_mbps / 8.0);
        let hedge_us = (params.hedge_factor > 0.0)
            .then(|| (chunk_us * params.hedge_factor).max(1000.0) as u64);
        let timeout_us = u64::try_from(params.request_timeout.as_micros()).unwrap_or(u64::MAX);
        Self {
            hedge_us,
            timeout_us,
            params,
            words,
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
            SwarmEv::Timeout {
                r,
                node,
                peer,
                chunk,
            } => self.on_timeout(cx, r, node, peer, chunk, now),
            SwarmEv::Hedge {
                r,
                node,
                peer,
                chunk,
            } => self.on_hedge(cx, r, node, peer, chunk, now),
            SwarmEv::Wake { r, node } => {
                self.rel(r).starving[node as usize] = false;
                self.fill(cx, r, node, now);
            }
        }
    }

    /// A node came back up: it resumes every release it knows of (its chunks are kept),
    /// and learns of those published meanwhile from a peer (the node's repository
    /// metadata is exchanged on every new connection).
    pub fn on_up(&mut self, cx: &mut Ctx<'_>, node: u32, now: SimTime) {
        for r in 0..self.releases.len() as u32 {
            let rel = self.rel(r);
            rel.inflight[node as usize].clear();
            if let Some(a) = rel.asked.get_mut(node as usize) {
                a.iter_mut().for_each(|w| *w = 0);
            }
            self.resync(cx, r, node, now);
        }
    }

    /// A partition healed: nodes learn of releases across the old cut, and every node
    /// with free slots looks for chunks again.
    pub fn on_heal(&mut self, cx: &mut Ctx<'_>, now: SimTime) {
        for r in 0..self.releases.len() as u32 {
            for node in 0..cx.peers.len() as u32 {
                if cx.net.up[node as usize] {
                    self.resync(cx, r, node, now);
                }
            }
        }
    }

    fn resync(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32, now: SimTime) {
        let ni = node as usize;
        let rel = self.rel(r);
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
        let rel = self.rel(r);
        rel.avoid[ni].clear();
        rel.starving[ni] = false;
        self.fill(cx, r, node, now);
    }

    fn rel(&mut self, r: u32) -> &mut Release {
        &mut self.releases[r as usize]
    }

    fn ensure(&mut self, r: u32, node: u32) {
        let words = self.words;
        let rel = self.rel(r);
        if rel.have[node as usize].is_empty() {
            rel.have[node as usize] = vec![0; words];
            rel.asked[node as usize] = vec![0; words];
        }
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
        let p = self.rel(r).publisher;
        self.ensure(r, p);
        let rel = self.rel(r);
        for c in 0..rel.chunks {
            set(&mut rel.have[p as usize], c, true);
        }
        rel.count[p as usize] = rel.chunks;
        rel.known[p as usize] = true;
        self.announce(cx, r, p, u32::MAX, now);
    }

    fn on_announce(&mut self, cx: &mut Ctx<'_>, r: u32, to: u32, from: u32, now: SimTime) {
        if !cx.net.up[to as usize] || self.rel(r).known[to as usize] {
            return;
        }
        self.ensure(r, to);
        self.rel(r).known[to as usize] = true;
        if cx.role[to as usize] != Role::Withholder {
            self.announce(cx, r, to, from, now);
        }
        self.fill(cx, r, to, now);
    }

    /// Sends requests until `node` has `parallel` in flight or nothing more to ask.
    fn fill(&mut self, cx: &mut Ctx<'_>, r: u32, node: u32, now: SimTime) {
        let parallel = self.params.parallel as usize;
        let timeout = self.timeout_us;
        let ni = node as usize;
        if !cx.net.up[ni] {
            return;
        }
        loop {
            let rel = &mut self.releases[r as usize];
            if rel.count[ni] == rel.chunks || rel.inflight[ni].len() >= parallel {
                return;
            }
            let Some((peer, chunk)) = Self::pick(rel, cx, node) else {
                if rel.inflight[ni].is_empty() && !rel.avoid[ni].is_empty() {
                    // Every useful peer timed out once: give them another chance.
                    rel.avoid[ni].clear();
                    continue;
                }
                rel.starving[ni] = true;
                return;
            };
            set(&mut rel.asked[ni], chunk, true);
            rel.inflight[ni].push((chunk, peer));
            send_request(cx, r, node, peer, chunk, now, timeout);
            if let Some(hedge) = self.hedge_us {
                cx.out.push((
                    now.plus_us(hedge),
                    SwarmEv::Hedge {
                        r,
                        node,
                        peer,
                        chunk,
                    },
                ));
            }
        }
    }

    /// A request still unanswered after `hedge_factor` chunk times: the same chunk is asked
    /// from the least loaded other peer that holds it; whichever answer comes first counts.
    fn on_hedge(
        &mut self,
        cx: &mut Ctx<'_>,
        r: u32,
        node: u32,
        peer: u32,
        chunk: u32,
        now: SimTime,
    ) {
        let ni = node as usize;
        let timeout = self.timeout_us;
        let rel = &mut self.releases[r as usize];
        let pending = rel.inflight[ni].iter().filter(|(c, _)| *c == chunk).count();
        if !cx.net.up[ni]
            || pending != 1
            || !rel.inflight[ni].contains(&(chunk, peer))
            || bit(&rel.have[ni], chunk)
        {
            return;
        }
        let Some(other) = cx.peers[ni]
            .iter()
            .copied()
            .filter(|p| {
                *p != peer
                    && bit(&rel.have[*p as usize], chunk)
                    && cx.net.linked(node, *p)
                    && !rel.avoid[ni].contains(p)
            })
            .min_by_key(|p| rel.serving[*p as usize])
        else {
            return;
        };
        rel.inflight[ni].push((chunk, other));
        rel.hedges += 1;
        send_request(cx, r, node, other, chunk, now, timeout);
    }

    /// Of two random peers holding a chunk `node` needs, the less loaded one, and a random
    /// such chunk of it.
    fn pick(rel: &Release, cx: &mut Ctx<'_>, node: u32) -> Option<(u32, u32)> {
        let ni = node as usize;
        let peers = &cx.peers[ni];
        if peers.is_empty() {
            return None;
        }
        let start = cx.rng.gen_range(0..peers.len());
        let mut found: Vec<(u32, u32)> = Vec::with_capacity(2);
        for k in 0..peers.len() {
            let p = peers[(start + k) % peers.len()];
            let pi = p as usize;
            if rel.count[pi] == 0 || !cx.net.linked(node, p) || rel.avoid[ni].contains(&p) {
                continue;
            }
            if let Some(c) = Self::useful_chunk(rel, ni, pi, peers, cx.rng) {
                found.push((p, c));
                if found.len() == 2 {
                    break;
                }
            }
        }
        found
            .into_iter()
            .min_by_key(|(p, _)| rel.serving[*p as usize])
    }

    /// Of up to 8 random chunks that `pi` holds and `ni` neither holds nor has asked for,
    /// the one held by the fewest of `ni`'s peers (rarest first, as the HAVEs tell).
    fn useful_chunk(
        rel: &Release,
        ni: usize,
        pi: usize,
        peers: &[u32],
        rng: &mut ChaCha8Rng,
    ) -> Option<u32> {
        let (mine, asked, theirs) = (&rel.have[ni], &rel.asked[ni], &rel.have[pi]);
        let super_seeding = pi as u32 == rel.publisher && rel.seeded_count < rel.chunks;
        let words = theirs.len();
        let w0 = rng.gen_range(0..words);
        let mut best: Option<(u32, u32)> = None;
        let mut sampled = 0;
        for k in 0..words {
            let w = (w0 + k) % words;
            let mut free = theirs[w] & !mine[w] & !asked[w];
            if super_seeding {
                free &= !rel.seeded.get(w).copied().unwrap_or(0);
            }
            while free != 0 && sampled < 8 {
                // A random set bit of the word.
                let n = free.count_ones();
                let mut skip = rng.gen_range(0..n);
                let mut bits = free;
                while skip > 0 {
                    bits &= bits - 1;
                    skip -= 1;
                }
                let bit_index = bits.trailing_zeros();
                free &= !(1u64 << bit_index);
                let c = w as u32 * 64 + bit_index;
                let holders = peers
                    .iter()
                    .filter(|p| bit(&rel.have[**p as usize], c))
                    .count() as u32;
                if best.is_none_or(|(h, _)| holders < h) {
                    best = Some((holders, c));
                }
                sampled += 1;
            }
            if sampled >= 8 {
                break;
            }
        }
        best.map(|(_, c)| c)
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
        if !cx.net.up[ti] || cx.role[ti] == Role::Withholder || !bit(&rel.have[ti], chunk) {
            return;
        }
        let bytes = rel.chunk_bytes + CHUNK_OVERHEAD;
        if let Some(at) = cx.net.send(to, from, bytes, now, cx.rng) {
            rel.serving[ti] += 1;
            if to == rel.publisher {
                rel.publisher_uploaded += u64::from(rel.chunk_bytes);
                if !bit(&rel.seeded, chunk) {
                    set(&mut rel.seeded, chunk, true);
                    rel.seeded_count += 1;
                }
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
        }
    }

    fn on_chunk(&mut self, cx: &mut Ctx<'_>, r: u32, to: u32, from: u32, chunk: u32, now: SimTime) {
        let ti = to as usize;
        let rel = &mut self.releases[r as usize];
        rel.serving[from as usize] = rel.serving[from as usize].saturating_sub(1);
        let Some(pos) = rel.inflight[ti]
            .iter()
            .position(|&(c, p)| c == chunk && p == from)
        else {
            return; // timed out meanwhile, or the node restarted
        };
        rel.inflight[ti].swap_remove(pos);
        // The first answer wins; a hedged duplicate still in flight is cancelled (the bytes
        // its server already queued are spent).
        rel.inflight[ti].retain(|(c, _)| *c != chunk);
        set(&mut rel.asked[ti], chunk, false);
        if !cx.net.up[ti] || bit(&rel.have[ti], chunk) {
            return;
        }
        set(&mut rel.have[ti], chunk, true);
        rel.count[ti] += 1;
        if rel.count[ti] == rel.chunks {
            rel.completion_ms
                .push(now.0.saturating_sub(rel.at.0) as f64 / 1000.0);
        }
        // HAVE to every peer; a starving one looks again when it arrives.
        cx.net.sent_bytes[ti] += HAVE_BYTES * cx.peers[ti].len() as u64;
        for &p in &cx.peers[ti] {
            if rel.starving[p as usize]
                && let Some(at) = cx.net.send_control(to, p, 0, now, cx.rng)
            {
                rel.starving[p as usize] = false;
                cx.out.push((at, SwarmEv::Wake { r, node: p }));
            }
        }
        self.fill(cx, r, to, now);
    }

    fn on_timeout(
        &mut self,
        cx: &mut Ctx<'_>,
        r: u32,
        node: u32,
        peer: u32,
        chunk: u32,
        now: SimTime,
    ) {
        let ni = node as usize;
        let rel = &mut self.releases[r as usize];
        let Some(pos) = rel.inflight[ni]
            .iter()
            .position(|&(c, p)| c == chunk && p == peer)
        else {
            return;
        };
        rel.inflight[ni].swap_remove(pos);
        if !rel.inflight[ni].iter().any(|(c, _)| *c == chunk) {
            set(&mut rel.asked[ni], chunk, false);
        }
        rel.timeouts += 1;
        if rel.avoid[ni].len() < cx.peers[ni].len() && !rel.avoid[ni].contains(&peer) {
            rel.avoid[ni].push(peer);
        }
        self.fill(cx, r, node, now);
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
