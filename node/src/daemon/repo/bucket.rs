//! Token buckets for blob uploads: one over all peers and one per peer, both refilled at
//! their rate with a burst of one second's worth (at least 256 KiB).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use libp2p::PeerId;

/// Most per-peer buckets kept (idle ones are dropped first).
const MAX_PEER_BUCKETS: usize = 4096;

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(bytes_per_s: u64) -> Self {
        let rate = bytes_per_s as f64;
        let burst = rate.max(256.0 * 1024.0);
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes `n` tokens (going into debt if needed) and returns how long to wait until the
    /// debt is repaid.
    fn take(&mut self, n: u64, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst) - n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Global and per-peer upload limits (0: unlimited).
#[derive(Clone, Debug)]
pub(crate) struct UploadLimits {
    global: Option<Arc<Mutex<Bucket>>>,
    per_peer_rate: u64,
    peers: Arc<Mutex<HashMap<PeerId, Bucket>>>,
}

impl UploadLimits {
    /// Limits in bytes per second; 0 disables a limit.
    pub(crate) fn new(global: u64, per_peer: u64) -> Self {
        Self {
            global: (global > 0).then(|| Arc::new(Mutex::new(Bucket::new(global)))),
            per_peer_rate: per_peer,
            peers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// How long sending `n` bytes to `peer` must wait now (and accounts for them).
    fn wait_for(&self, peer: PeerId, n: u64) -> Duration {
        let now = Instant::now();
        let mut wait = Duration::ZERO;
        if let Some(g) = &self.global
            && let Ok(mut b) = g.lock()
        {
            wait = wait.max(b.take(n, now));
        }
        if self.per_peer_rate > 0
            && let Ok(mut peers) = self.peers.lock()
        {
            if peers.len() >= MAX_PEER_BUCKETS && !peers.contains_key(&peer) {
                // Drop the bucket that has been idle longest.
                if let Some(oldest) = peers.iter().min_by_key(|(_, b)| b.at).map(|(p, _)| *p) {
                    peers.remove(&oldest);
                }
            }
            let rate = self.per_peer_rate;
            let b = peers.entry(peer).or_insert_with(|| Bucket::new(rate));
            wait = wait.max(b.take(n, now));
        }
        wait
    }

    /// Waits until `n` bytes may go to `peer`.
    pub(crate) async fn acquire(&self, peer: PeerId, n: u64) {
        let wait = self.wait_for(peer, n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut b = Bucket::new(1024 * 1024);
        let t0 = Instant::now();
        assert_eq!(
            b.take(1024 * 1024, t0),
            Duration::ZERO,
            "one second's burst"
        );
        // Another MiB at once must wait one second.
        let w = b.take(1024 * 1024, t0);
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
        // After two seconds the debt is repaid and one more second's worth is there.
        assert_eq!(
            b.take(1024 * 1024, t0 + Duration::from_secs(2)),
            Duration::ZERO
        );
    }

    #[test]
    fn limits_combine_global_and_per_peer() {
        let l = UploadLimits::new(0, 512 * 1024);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(l.wait_for(a, 512 * 1024), Duration::ZERO);
        assert!(l.wait_for(a, 512 * 1024) > Duration::from_millis(900));
        // Another peer has its own bucket.
        assert_eq!(l.wait_for(b, 512 * 1024), Duration::ZERO);
        let unlimited = UploadLimits::new(0, 0);
        assert_eq!(unlimited.wait_for(a, u64::MAX / 4), Duration::ZERO);
    }
}
