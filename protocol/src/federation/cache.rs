//! A bounded set of objects whose signatures were already verified, keyed by the BLAKE3 hash
//! of their canonical encoding. Nodes re-publish with the same membership credential and
//! attestations, so after the first sight only the self-description's own signature needs
//! checking. Only signature results are cached: expiry, binding and revocation are checked
//! every time.

use std::collections::{HashSet, VecDeque};

/// Hashes of verified objects, evicting the oldest beyond `capacity`.
#[derive(Debug)]
pub struct VerifiedCache {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
    hits: u64,
}

impl VerifiedCache {
    /// A cache of at most `capacity` entries (~100 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            hits: 0,
        }
    }

    /// Whether `hash` was verified; counts a hit.
    pub fn check(&mut self, hash: &[u8; 32]) -> bool {
        let hit = self.set.contains(hash);
        self.hits += u64::from(hit);
        hit
    }

    /// Records a successful verification.
    pub fn insert(&mut self, hash: [u8; 32]) {
        if self.set.insert(hash) {
            self.order.push_back(hash);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Lookups answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_evicts_oldest() {
        let mut c = VerifiedCache::new(2);
        c.insert([1; 32]);
        c.insert([2; 32]);
        c.insert([3; 32]);
        assert_eq!(c.len(), 2);
        assert!(!c.check(&[1; 32]) && c.check(&[3; 32]));
        assert_eq!(c.hits(), 1);
    }
}
