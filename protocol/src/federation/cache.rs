//! A bounded set of objects whose signatures were already verified, keyed by the BLAKE3 hash
//! of their canonical encoding. Nodes re-publish with the same membership credential and
//! attestations, so after the first sight only the self-description's own signature needs
//! checking. Only signature results are cached: expiry, binding and revocation are checked
//! every time.
//!
//! One cache is shared by every thread that checks records (its lock is held for a hash
//! lookup, never for a verification): with a cache per thread, a credential verified on one
//! thread was verified again on the other whenever batching sent its next record there.

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

/// Hashes of verified objects, evicting the oldest beyond `capacity`.
#[derive(Debug)]
pub struct VerifiedCache {
    inner: Mutex<Inner>,
    capacity: usize,
    hits: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl VerifiedCache {
    /// A cache of at most `capacity` entries (~100 bytes each).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
        }
    }

    /// The set. Every change leaves it consistent (an insert adds to both or neither before
    /// it can panic), so a poisoned lock is recovered from.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `hash` was verified; counts a hit.
    pub fn check(&self, hash: &[u8; 32]) -> bool {
        let hit = self.inner().set.contains(hash);
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Records a successful verification.
    pub fn insert(&self, hash: [u8; 32]) {
        let mut inner = self.inner();
        if inner.set.insert(hash) {
            inner.order.push_back(hash);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.set.remove(&old);
                }
            }
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.inner().set.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.inner().set.is_empty()
    }

    /// Lookups answered from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_evicts_oldest() {
        let c = VerifiedCache::new(2);
        c.insert([1; 32]);
        c.insert([2; 32]);
        c.insert([3; 32]);
        assert_eq!(c.len(), 2);
        assert!(!c.check(&[1; 32]) && c.check(&[3; 32]));
        assert_eq!(c.hits(), 1);
    }
}
