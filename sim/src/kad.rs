//! Kademlia model: 64-bit node ids under the XOR metric, k-buckets filled from the live
//! population, and the iterative α-parallel lookup (the same parameters as the node:
//! k = 20, α = 3). A lookup ends when the k closest peers it knows have all answered or
//! failed; its hop count is the depth at which the closest peer it found was learned.

use rand::{Rng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

/// Routing tables of all nodes.
pub struct Kademlia {
    /// Each node's id.
    pub id: Vec<u64>,
    /// (id, node) sorted by id.
    sorted: Vec<(u64, u32)>,
    /// Each node's routing table entries (all buckets, flattened).
    table: Vec<Vec<u32>>,
    /// k.
    pub k: usize,
}

impl Kademlia {
    /// Random ids for `n` nodes and their bucket contents: for each bucket (shared prefix
    /// length b), up to k random nodes from that id range.
    pub fn new(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Self {
        let id: Vec<u64> = (0..n).map(|_| rng.r#gen()).collect();
        let mut sorted: Vec<(u64, u32)> =
            id.iter().enumerate().map(|(i, x)| (*x, i as u32)).collect();
        sorted.sort_unstable();
        let mut kad = Self {
            id,
            sorted,
            table: Vec::with_capacity(n),
            k,
        };
        for node in 0..n {
            let t = kad.fill_table(node, rng);
            kad.table.push(t);
        }
        kad
    }

    /// Nodes whose id has prefix `prefix` (the top `len` bits).
    fn range(&self, prefix: u64, len: u32) -> &[(u64, u32)] {
        let (lo, hi) = if len == 0 {
            (0, u64::MAX)
        } else {
            let mask = u64::MAX << (64 - len);
            let lo = prefix & mask;
            (lo, lo | !mask)
        };
        let a = self.sorted.partition_point(|(x, _)| *x < lo);
        let b = self.sorted.partition_point(|(x, _)| *x <= hi);
        &self.sorted[a..b]
    }

    fn fill_table(&self, node: usize, rng: &mut ChaCha8Rng) -> Vec<u32> {
        let me = self.id[node];
        let mut out = Vec::new();
        for b in 0..64u32 {
            // Ids sharing exactly b prefix bits with `me`: flip bit b.
            let flipped = me ^ (1u64 << (63 - b));
            let candidates = self.range(flipped, b + 1);
            if candidates.is_empty() {
                if b > 0 && self.range(me, b).len() <= 1 {
                    break;
                }
                continue;
            }
            if candidates.len() <= self.k {
                out.extend(candidates.iter().map(|(_, n)| *n));
            } else {
                out.extend(candidates.choose_multiple(rng, self.k).map(|(_, n)| *n));
            }
        }
        out
    }

    /// Up to `k` entries of `node`'s table closest to `target`.
    pub fn closest(&self, node: u32, target: u64, k: usize) -> Vec<u32> {
        let mut v: Vec<u32> = self.table[node as usize].clone();
        let distance = |n: &u32| self.id[*n as usize] ^ target;
        // only the k closest are sorted (a lookup asks for k of a table of a few hundred)
        if k < v.len() {
            v.select_nth_unstable_by_key(k, distance);
            v.truncate(k);
        }
        v.sort_unstable_by_key(distance);
        v
    }

    /// Bytes of routing-table entries held (for memory accounting).
    pub fn entries(&self) -> usize {
        self.table.iter().map(Vec::len).sum()
    }

    /// The `k` live-population nodes truly closest to `target` (ground truth for tests).
    pub fn true_closest(&self, target: u64, k: usize) -> Vec<u32> {
        let mut v: Vec<u32> = (0..self.id.len() as u32).collect();
        v.sort_unstable_by_key(|n| self.id[*n as usize] ^ target);
        v.truncate(k);
        v
    }
}

/// State of a peer in a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerState {
    NotContacted,
    Waiting,
    Answered,
    Failed,
}

/// One iterative lookup.
pub struct Lookup {
    /// Target key.
    pub target: u64,
    /// Candidates: (distance, node, depth, state), sorted by distance.
    peers: Vec<(u64, u32, u32, PeerState)>,
    in_flight: usize,
    alpha: usize,
    k: usize,
    /// RPCs sent.
    pub rpcs: u32,
}

impl Lookup {
    /// Starts from the origin's own table.
    pub fn new(kad: &Kademlia, origin: u32, target: u64, alpha: usize) -> Self {
        let mut l = Self {
            target,
            peers: Vec::new(),
            in_flight: 0,
            alpha,
            k: kad.k,
            rpcs: 0,
        };
        let first = kad.closest(origin, target, kad.k);
        l.learn(kad, &first, 1, origin);
        l
    }

    fn learn(&mut self, kad: &Kademlia, nodes: &[u32], depth: u32, origin: u32) {
        for &n in nodes {
            if n == origin || self.peers.iter().any(|p| p.1 == n) {
                continue;
            }
            let d = kad.id[n as usize] ^ self.target;
            let pos = self.peers.partition_point(|p| p.0 < d);
            self.peers
                .insert(pos, (d, n, depth, PeerState::NotContacted));
        }
        // Keep the candidate list bounded: far candidates beyond 4k are never queried.
        self.peers.truncate(self.k * 4);
    }

    /// Peers to query now (respecting α and the k-closest stopping rule).
    pub fn to_ask(&mut self) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..self.peers.len().min(self.k) {
            if self.in_flight >= self.alpha {
                break;
            }
            if self.peers[i].3 == PeerState::NotContacted {
                self.peers[i].3 = PeerState::Waiting;
                self.in_flight += 1;
                self.rpcs += 1;
                out.push(self.peers[i].1);
            }
        }
        out
    }

    /// A peer answered with `closer` nodes.
    pub fn on_answer(&mut self, kad: &Kademlia, from: u32, closer: &[u32], origin: u32) {
        let Some(i) = self.peers.iter().position(|p| p.1 == from) else {
            return;
        };
        if self.peers[i].3 != PeerState::Waiting {
            return;
        }
        self.peers[i].3 = PeerState::Answered;
        self.in_flight -= 1;
        let depth = self.peers[i].2 + 1;
        self.learn(kad, closer, depth, origin);
    }

    /// A request failed (timeout, peer down).
    pub fn on_failure(&mut self, from: u32) {
        if let Some(p) = self
            .peers
            .iter_mut()
            .find(|p| p.1 == from && p.3 == PeerState::Waiting)
        {
            p.3 = PeerState::Failed;
            self.in_flight -= 1;
        }
    }

    /// Whether the lookup is over: the k closest non-failed candidates have all answered.
    pub fn done(&self) -> bool {
        self.in_flight == 0
            && self
                .peers
                .iter()
                .filter(|p| p.3 != PeerState::Failed)
                .take(self.k)
                .all(|p| p.3 == PeerState::Answered)
    }

    /// The depth at which `peer` was learned (hops to reach it).
    pub fn depth_of(&self, peer: u32) -> Option<u32> {
        self.peers.iter().find(|p| p.1 == peer).map(|p| p.2)
    }

    /// The closest answered peer and the depth it was learned at (hops).
    pub fn result(&self) -> Option<(u32, u32)> {
        self.peers
            .iter()
            .find(|p| p.3 == PeerState::Answered)
            .map(|p| (p.1, p.2))
    }
}

impl std::fmt::Debug for Kademlia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kademlia").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookup").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// Runs a lookup with instant answers (no network) and returns (found, hops).
    fn lookup(kad: &Kademlia, origin: u32, target: u64) -> (u32, u32) {
        let mut l = Lookup::new(kad, origin, target, 3);
        loop {
            let ask = l.to_ask();
            if ask.is_empty() {
                break;
            }
            for p in ask {
                let closer = kad.closest(p, target, kad.k);
                l.on_answer(kad, p, &closer, origin);
            }
        }
        assert!(l.done());
        l.result().unwrap()
    }

    #[test]
    fn lookups_find_the_true_closest_node() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let kad = Kademlia::new(5_000, 20, &mut rng);
        for _ in 0..50 {
            let target: u64 = rng.r#gen();
            let origin = rng.gen_range(0..5_000);
            let (found, hops) = lookup(&kad, origin, target);
            assert_eq!(found, kad.true_closest(target, 1)[0]);
            assert!((1..=10).contains(&hops), "{hops}");
        }
    }
}
