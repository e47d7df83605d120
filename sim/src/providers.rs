//! Kademlia provider records, as the node uses them for attribute keys
//! (`attr/<field>/<value>`): every node provides a few keys; each key's provider records
//! live on the k nodes closest to it (as of the last re-publication); a provider lookup is
//! the iterative lookup towards the key that ends at the first node that holds them.
//! Records are re-published every `provider_republish` (the node: hourly), so churn loses
//! them only in between.

use rand::{Rng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use crate::{kad::Kademlia, stats::LogHistogram};

/// Provider records of all attribute keys.
pub struct Providers {
    /// Each key's id in the Kademlia space.
    pub key_id: Vec<u64>,
    /// How many nodes provide each key.
    pub providers: Vec<u32>,
    /// The nodes holding each key's records (the k closest live ones at the last
    /// re-publication).
    storers: Vec<Vec<u32>>,
    /// Lookups started, and those that reached a node holding the records.
    pub lookups: u64,
    /// Lookups that found the records.
    pub found: u64,
    /// Hops to the first holder (index = hops).
    pub hops: Vec<u64>,
    /// Latency of successful lookups, ms.
    pub latency_ms: LogHistogram,
}

impl Providers {
    /// `keys` attribute keys; every node provides `per_node` of them, chosen at random.
    pub fn new(
        keys: u32,
        per_node: u32,
        kad: &Kademlia,
        up: impl Fn(u32) -> bool,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let key_id: Vec<u64> = (0..keys).map(|_| rng.r#gen()).collect();
        let mut providers = vec![0u32; keys as usize];
        let all: Vec<u32> = (0..keys).collect();
        for _ in 0..kad.id.len() {
            for k in all.choose_multiple(rng, per_node.min(keys) as usize) {
                providers[*k as usize] += 1;
            }
        }
        let mut p = Self {
            key_id,
            providers,
            storers: Vec::new(),
            lookups: 0,
            found: 0,
            hops: vec![0; 32],
            latency_ms: LogHistogram::default(),
        };
        p.republish(kad, up);
        p
    }

    /// No keys (provider lookups off): nothing is computed and no randomness is drawn, so
    /// scenarios without provider lookups run exactly as before they were modelled.
    pub fn disabled() -> Self {
        Self {
            key_id: Vec::new(),
            providers: Vec::new(),
            storers: Vec::new(),
            lookups: 0,
            found: 0,
            hops: vec![0; 32],
            latency_ms: LogHistogram::default(),
        }
    }

    /// Re-publication: each key's records go to the k closest live nodes now.
    pub fn republish(&mut self, kad: &Kademlia, up: impl Fn(u32) -> bool) {
        self.storers = self
            .key_id
            .iter()
            .map(|&key| {
                let mut v: Vec<u32> = (0..kad.id.len() as u32).filter(|n| up(*n)).collect();
                let k = kad.k.min(v.len());
                if k > 0 {
                    v.select_nth_unstable_by_key(k - 1, |n| kad.id[*n as usize] ^ key);
                }
                v.truncate(k);
                v
            })
            .collect();
    }

    /// Whether `node` holds the records of key `k` (and the key has providers).
    pub fn holds(&self, k: u32, node: u32) -> bool {
        self.providers.get(k as usize).is_some_and(|p| *p > 0)
            && self
                .storers
                .get(k as usize)
                .is_some_and(|s| s.contains(&node))
    }

    /// Records a finished provider lookup.
    pub fn record(&mut self, found: Option<(u32, f64)>) {
        self.lookups += 1;
        if let Some((hops, ms)) = found {
            self.found += 1;
            let h = (hops as usize).min(self.hops.len() - 1);
            self.hops[h] += 1;
            self.latency_ms.add(ms);
        }
    }
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("keys", &self.key_id.len())
            .field("lookups", &self.lookups)
            .finish_non_exhaustive()
    }
}
