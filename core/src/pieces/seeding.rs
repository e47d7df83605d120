//! Super-seeding: a publisher (at first the only seed of a blob) serves each segment once
//! before it serves any segment twice, so the swarm gets every segment from it as fast as
//! its upload allows and the peers spread them among themselves.

use std::time::Duration;

use super::Bits;

/// How long a request may wait for a turn on an uplink capped at `up_bytes_per_s` before the
/// server answers busy: about two segments' sending time, at least 500 ms, at most 5 s
/// (inside the requester's timeout); no wait without a cap. A deep queue only delays what
/// others could send sooner: with 5 s (14 requests queued at a 5 MB/s seed) 8 nodes took
/// 1.14–1.18× the swarm bound, with 500 ms 1.07–1.15× (BENCHMARKS.md, session 8).
pub fn turn_wait(segment_bytes: u64, up_bytes_per_s: u64) -> Duration {
    if up_bytes_per_s == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64((2.0 * segment_bytes as f64 / up_bytes_per_s as f64).clamp(0.5, 5.0))
}

/// One seed's record of the segments of one blob it served.
#[derive(Clone, Debug)]
pub struct SuperSeed {
    served: Bits,
}

impl SuperSeed {
    /// For a blob of `segments` segments.
    pub fn new(segments: u32) -> Self {
        Self {
            served: Bits::new(segments),
        }
    }

    /// Whether to serve segment `seg` now, and records it. Until every segment went out
    /// once, a repeat is refused (the requester is answered busy and asks a peer that got
    /// it, or for another segment); then everything is served.
    pub fn admit(&mut self, seg: u32) -> bool {
        if self.served.is_full() || seg >= self.served.len() {
            return true;
        }
        self.served.insert(seg)
    }

    /// Undoes [`Self::admit`] for a segment that was not sent after all (no upload turn).
    pub fn revoke(&mut self, seg: u32) {
        if !self.served.is_full() {
            self.served.remove(seg);
        }
    }

    /// Whether every segment went out once.
    pub fn finished(&self) -> bool {
        self.served.is_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turn_wait_is_two_segments_within_half_a_second_and_five() {
        let mib = 1024 * 1024;
        assert_eq!(turn_wait(mib, 0), Duration::ZERO);
        assert_eq!(turn_wait(mib, 4 * mib), Duration::from_millis(500));
        assert_eq!(turn_wait(mib, mib), Duration::from_secs(2));
        assert_eq!(turn_wait(mib, mib / 10), Duration::from_secs(5));
    }

    #[test]
    fn repeats_wait_until_every_segment_went_out_once() {
        let mut s = SuperSeed::new(3);
        assert!(s.admit(0));
        assert!(!s.admit(0), "a repeat before every segment went out");
        assert!(s.admit(1));
        s.revoke(1);
        assert!(s.admit(1), "a revoked segment may go out again");
        assert!(s.admit(2));
        assert!(s.finished());
        assert!(s.admit(0) && s.admit(0), "then everything is served");
        assert!(
            SuperSeed::new(2).admit(7),
            "beyond the end: not ours to refuse"
        );
    }
}
