//! The requester's side of a multi-source download.
//!
//! The rules, in the order they apply:
//! - **rarest first**: of the segments still wanted, those held by the fewest providers go
//!   first (the publisher's upload is spent on segments nobody else has yet); ties keep a
//!   per-download shuffled order, so nodes start on different segments;
//! - **who serves it**: among the providers that hold the segment, have a request slot free
//!   (`per_peer`) and did not answer busy for it lately — the one that failed it least, then a
//!   partial holder before a seed (spare the seeds' upload for segments only they have), then
//!   the least loaded, then at random (every fetcher breaking ties the same way piled onto
//!   the same few uplinks);
//! - at most `in_flight` requests over all providers;
//! - **hedging**: a request unanswered after `hedge_after` is asked again (once per
//!   segment), and the first valid answer counts;
//! - **failures**: bad data removes the provider for good (the driver penalises it); a cut-off
//!   or refused request is a strike, and the provider's HAVE is forgotten until it answers
//!   again; busy holds the (provider, segment) pair back for `busy_backoff`;
//! - **giving up a round**: when every provider that could serve a segment failed it
//!   `max_strikes` times, or when nothing is in flight and nothing can be asked for
//!   `stuck_after` (the daemon then looks up providers again).

use std::{collections::BTreeMap, time::Duration};

use rand::RngCore;

use super::{Bits, SchedulerParams};

/// What came back for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The segment arrived and verified.
    Delivered,
    /// It did not.
    Failed(Failure),
}

/// Why a request did not deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The provider is super-seeding or had no upload turn: ask elsewhere or later.
    Busy,
    /// Cut off, refused, not held after all, or timed out.
    Cutoff,
    /// Data that failed verification: the provider is dropped and penalised.
    BadData,
}

/// The download's state after an answer, or when the driver asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Requests are in flight or can be sent.
    Running,
    /// Every segment arrived.
    Complete,
    /// No provider left.
    NoProviders,
    /// Nothing in flight, and no provider holds a wanted segment, for `stuck_after`.
    Stuck,
    /// Every provider that could serve a segment failed it `max_strikes` times.
    StruckOut,
}

#[derive(Clone, Debug)]
struct Request<P> {
    seg: u32,
    peer: P,
    at: Duration,
}

#[derive(Clone, Debug)]
struct Provider<P> {
    peer: P,
    /// What it said it holds (`None`: not known, or forgotten after a failure).
    have: Option<Bits>,
    load: u32,
}

/// One blob being fetched by one node.
#[derive(Clone, Debug)]
pub struct Download<P> {
    params: SchedulerParams,
    done: Bits,
    /// Wanted segments not in flight, in tie-break order.
    queue: Vec<u32>,
    queued: Bits,
    in_flight: Vec<Request<P>>,
    /// Segments hedged once already.
    hedged: Bits,
    providers: Vec<Provider<P>>,
    /// Per segment, the providers whose HAVE includes it.
    holders: Vec<u16>,
    /// (provider, segment, since) answered busy.
    busy: Vec<(P, u32, Duration)>,
    strikes: BTreeMap<(P, u32), u32>,
    idle_since: Option<Duration>,
    struck_out: bool,
    hedges: u64,
}

impl<P: Copy + Ord + std::fmt::Debug> Download<P> {
    /// A download of a blob of `segments` segments of which `missing` are wanted; the tie
    /// order is shuffled with `rng`.
    pub fn new(
        segments: u32,
        missing: impl IntoIterator<Item = u32>,
        params: SchedulerParams,
        rng: &mut impl RngCore,
    ) -> Self {
        let mut done = Bits::full(segments);
        let mut queue: Vec<u32> = missing.into_iter().filter(|s| done.remove(*s)).collect();
        // Fisher–Yates with the injected RNG.
        for i in (1..queue.len()).rev() {
            let j = (rng.next_u32() as usize) % (i + 1);
            queue.swap(i, j);
        }
        let mut queued = Bits::new(segments);
        for s in &queue {
            queued.insert(*s);
        }
        Self {
            params,
            done,
            queue,
            queued,
            in_flight: Vec::new(),
            hedged: Bits::new(segments),
            providers: Vec::new(),
            holders: vec![0; segments as usize],
            busy: Vec::new(),
            strikes: BTreeMap::new(),
            idle_since: None,
            struck_out: false,
            hedges: 0,
        }
    }

    /// Segments of the blob.
    pub fn segments(&self) -> u32 {
        self.done.len()
    }

    /// Segments that arrived (or were there at the start).
    pub fn done(&self) -> &Bits {
        &self.done
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether a request for `seg` to `peer` is in flight.
    pub fn is_pending(&self, peer: P, seg: u32) -> bool {
        self.in_flight
            .iter()
            .any(|r| r.peer == peer && r.seg == seg)
    }

    /// Segments asked again because an answer was slow.
    pub fn hedges(&self) -> u64 {
        self.hedges
    }

    /// The providers known.
    pub fn providers(&self) -> impl Iterator<Item = P> + '_ {
        self.providers.iter().map(|p| p.peer)
    }

    /// Adds a provider (its holdings unknown until [`Self::set_have`]).
    pub fn add_provider(&mut self, peer: P) {
        if !self.providers.iter().any(|p| p.peer == peer) {
            self.providers.push(Provider {
                peer,
                have: None,
                load: 0,
            });
        }
    }

    /// Drops a provider (requests to it still in flight are answered as usual).
    pub fn remove_provider(&mut self, peer: P) {
        if let Some(i) = self.providers.iter().position(|p| p.peer == peer) {
            self.forget_have_at(i);
            self.providers.swap_remove(i);
        }
    }

    /// `peer` holds exactly `have` (a HAVE answer). Unknown providers are added.
    pub fn set_have(&mut self, peer: P, have: Bits) {
        self.add_provider(peer);
        if let Some(i) = self.providers.iter().position(|p| p.peer == peer) {
            self.forget_have_at(i);
            for s in have.iter() {
                if let Some(h) = self.holders.get_mut(s as usize) {
                    *h = h.saturating_add(1);
                }
            }
            self.providers[i].have = Some(have);
        }
    }

    /// `peer` now also holds `seg`. False if its holdings are not known (the driver then
    /// sends the whole HAVE with [`Self::set_have`]).
    pub fn add_have(&mut self, peer: P, seg: u32) -> bool {
        let Some(p) = self.providers.iter_mut().find(|p| p.peer == peer) else {
            return false;
        };
        let Some(have) = &mut p.have else {
            return false;
        };
        if have.insert(seg)
            && let Some(h) = self.holders.get_mut(seg as usize)
        {
            *h = h.saturating_add(1);
        }
        true
    }

    /// Forgets what `peer` said it holds (it failed a request: it may hold less).
    pub fn forget_have(&mut self, peer: P) {
        if let Some(i) = self.providers.iter().position(|p| p.peer == peer) {
            self.forget_have_at(i);
        }
    }

    fn forget_have_at(&mut self, i: usize) {
        if let Some(have) = self.providers[i].have.take() {
            for s in have.iter() {
                if let Some(h) = self.holders.get_mut(s as usize) {
                    *h = h.saturating_sub(1);
                }
            }
        }
    }

    /// The next request to send at `now`, if a slot is free and a provider holds a wanted
    /// segment: `(provider, segment)`. Call until `None`.
    pub fn poll_request(&mut self, now: Duration, rng: &mut impl RngCore) -> Option<(P, u32)> {
        let backoff = self.params.busy_backoff;
        self.busy
            .retain(|(_, _, t)| now.saturating_sub(*t) < backoff);
        if self.in_flight.len() >= self.params.in_flight as usize || self.struck_out {
            return None;
        }
        let per_peer = self.params.per_peer;
        let free = |p: &Provider<P>| p.load < per_peer && p.have.is_some();
        if !self.providers.iter().any(free) {
            return None;
        }
        // The rarest wanted segment that some free provider can serve; ties in queue order.
        let mut best: Option<(u16, usize)> = None;
        for (i, &seg) in self.queue.iter().enumerate() {
            let h = self.holders[seg as usize];
            if h == 0 || best.is_some_and(|(b, _)| h >= b) {
                continue;
            }
            if self.eligible(seg).next().is_some() {
                best = Some((h, i));
                if h == 1 {
                    break;
                }
            }
        }
        let (_, i) = best?;
        let seg = self.queue[i];
        let segments = self.done.len();
        let mut pick: Option<((u32, bool, u32, u32), usize)> = None;
        let candidates: Vec<usize> = self.eligible(seg).collect();
        for k in candidates {
            let p = &self.providers[k];
            let strikes = self.strikes.get(&(p.peer, seg)).copied().unwrap_or(0);
            let seed = p.have.as_ref().is_some_and(|h| h.count() >= segments);
            let key = (strikes, seed, p.load, rng.next_u32());
            if pick.as_ref().is_none_or(|(b, _)| key < *b) {
                pick = Some((key, k));
            }
        }
        let (_, k) = pick?;
        self.queue.remove(i);
        self.queued.remove(seg);
        let p = &mut self.providers[k];
        p.load += 1;
        let peer = p.peer;
        self.in_flight.push(Request { seg, peer, at: now });
        self.idle_since = None;
        Some((peer, seg))
    }

    /// Providers (indexes) that may be asked for `seg` now.
    fn eligible(&self, seg: u32) -> impl Iterator<Item = usize> + '_ {
        self.providers.iter().enumerate().filter_map(move |(k, p)| {
            (p.load < self.params.per_peer
                && p.have.as_ref().is_some_and(|h| h.contains(seg))
                && !self.busy.iter().any(|(b, s, _)| *b == p.peer && *s == seg))
            .then_some(k)
        })
    }

    /// The answer of `peer` for `seg`. Returns whether it was news: false for an answer to
    /// a request not in flight, and for the slower twin of a hedged segment.
    pub fn on_answer(&mut self, now: Duration, peer: P, seg: u32, outcome: Outcome) -> bool {
        let Some(r) = self
            .in_flight
            .iter()
            .position(|r| r.peer == peer && r.seg == seg)
        else {
            return false;
        };
        self.in_flight.swap_remove(r);
        if let Some(p) = self.providers.iter_mut().find(|p| p.peer == peer) {
            p.load = p.load.saturating_sub(1);
        }
        if self.done.contains(seg) {
            return false;
        }
        match outcome {
            Outcome::Delivered => {
                self.done.insert(seg);
                if self.queued.remove(seg) {
                    self.queue.retain(|s| *s != seg);
                }
            }
            Outcome::Failed(Failure::BadData) => {
                self.remove_provider(peer);
                self.requeue(seg);
            }
            Outcome::Failed(Failure::Cutoff) => {
                *self.strikes.entry((peer, seg)).or_default() += 1;
                self.forget_have(peer);
                self.requeue(seg);
                if self.every_holder_failed(seg) {
                    self.struck_out = true;
                }
            }
            Outcome::Failed(Failure::Busy) => {
                self.busy.push((peer, seg, now));
                self.requeue(seg);
            }
        }
        true
    }

    fn requeue(&mut self, seg: u32) {
        if !self.done.contains(seg) && self.queued.insert(seg) {
            self.queue.push(seg);
        }
    }

    /// Whether every provider that could serve `seg` failed it `max_strikes` times. A
    /// provider could serve it if it was asked for it (it has strikes) or says it holds it;
    /// providers that hold nothing of it do not count — counting them, a download whose only
    /// holder served a damaged copy never gave up and asked that holder forever.
    fn every_holder_failed(&self, seg: u32) -> bool {
        let max = self.params.max_strikes;
        let mut candidates = self
            .providers
            .iter()
            .filter(|p| {
                self.strikes.contains_key(&(p.peer, seg))
                    || p.have.as_ref().is_some_and(|h| h.contains(seg))
            })
            .peekable();
        candidates.peek().is_some()
            && candidates.all(|p| self.strikes.get(&(p.peer, seg)).copied().unwrap_or(0) >= max)
    }

    /// When the download wants [`Self::handle_timeout`] next (a hedge is due).
    pub fn poll_timeout(&self) -> Option<Duration> {
        let after = self.params.hedge_after?;
        self.in_flight
            .iter()
            .filter(|r| !self.hedged.contains(r.seg) && !self.done.contains(r.seg))
            .map(|r| r.at + after)
            .min()
    }

    /// Asks again for every segment whose request is slower than `hedge_after` (once per
    /// segment, and only with another provider to ask); then [`Self::poll_request`] sends
    /// them.
    pub fn handle_timeout(&mut self, now: Duration) {
        let Some(after) = self.params.hedge_after else {
            return;
        };
        if self.providers.len() < 2 {
            return;
        }
        let due: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|r| now.saturating_sub(r.at) >= after)
            .map(|r| r.seg)
            .collect();
        for seg in due {
            if !self.done.contains(seg) && self.hedged.insert(seg) {
                self.hedges += 1;
                self.requeue(seg);
            }
        }
    }

    /// Where the download stands at `now`.
    pub fn status(&mut self, now: Duration) -> Status {
        if self.done.is_full() {
            return Status::Complete;
        }
        if self.struck_out {
            return Status::StruckOut;
        }
        if self.providers.is_empty() {
            return Status::NoProviders;
        }
        if self.in_flight.is_empty() {
            let since = *self.idle_since.get_or_insert(now);
            if now.saturating_sub(since) > self.params.stuck_after {
                return Status::Stuck;
            }
        } else {
            self.idle_since = None;
        }
        Status::Running
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn params() -> SchedulerParams {
        SchedulerParams {
            in_flight: 4,
            per_peer: 2,
            hedge_after: Some(Duration::from_secs(3)),
            busy_backoff: Duration::from_secs(1),
            stuck_after: Duration::from_secs(5),
            max_strikes: 3,
        }
    }

    fn bits(n: u32, set: &[u32]) -> Bits {
        let mut b = Bits::new(n);
        for s in set {
            b.insert(*s);
        }
        b
    }

    const T0: Duration = Duration::ZERO;

    fn drain(d: &mut Download<u8>, now: Duration, rng: &mut ChaCha8Rng) -> Vec<(u8, u32)> {
        std::iter::from_fn(|| d.poll_request(now, rng)).collect()
    }

    #[test]
    fn rarest_first_partial_holders_before_seeds_and_slots_respected() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut d = Download::new(4, 0..4, params(), &mut rng);
        d.set_have(1, Bits::full(4)); // the seed
        d.set_have(2, bits(4, &[0, 1])); // a partial holder
        let sent = drain(&mut d, T0, &mut rng);
        // Segments 2 and 3 only the seed holds: they go first, to the seed; 0 and 1 go to
        // the partial holder, not the seed.
        assert_eq!(sent.len(), 4);
        assert!(
            sent[..2].iter().all(|(p, s)| *p == 1 && *s >= 2),
            "{sent:?}"
        );
        assert!(sent[2..].iter().all(|(p, s)| *p == 2 && *s < 2), "{sent:?}");
        // Every slot is taken (4 in flight, 2 per peer).
        assert_eq!(d.poll_request(T0, &mut rng), None);
        assert!(d.on_answer(T0, 1, 2, Outcome::Delivered));
        assert_eq!(d.status(T0), Status::Running);
    }

    #[test]
    fn a_bad_provider_is_dropped_and_its_segment_fetched_elsewhere() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut d = Download::new(1, [0], params(), &mut rng);
        d.set_have(1, Bits::full(1));
        d.set_have(2, Bits::full(1));
        let (bad, seg) = d.poll_request(T0, &mut rng).unwrap();
        assert!(d.on_answer(T0, bad, seg, Outcome::Failed(Failure::BadData)));
        assert!(!d.providers().any(|p| p == bad));
        let (good, _) = d.poll_request(T0, &mut rng).unwrap();
        assert_ne!(good, bad);
        assert!(d.on_answer(T0, good, 0, Outcome::Delivered));
        assert_eq!(d.status(T0), Status::Complete);
    }

    #[test]
    fn busy_holds_back_the_pair_for_the_backoff() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut d = Download::new(1, [0], params(), &mut rng);
        d.set_have(1, Bits::full(1));
        assert_eq!(d.poll_request(T0, &mut rng), Some((1, 0)));
        d.on_answer(T0, 1, 0, Outcome::Failed(Failure::Busy));
        assert_eq!(d.poll_request(Duration::from_millis(500), &mut rng), None);
        assert_eq!(
            d.poll_request(Duration::from_secs(1), &mut rng),
            Some((1, 0))
        );
    }

    #[test]
    fn the_only_holder_failing_a_segment_three_times_ends_the_round() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut d = Download::new(2, 0..2, params(), &mut rng);
        d.add_provider(9); // a provider that holds nothing never keeps a round going
        for round in 0..3 {
            d.set_have(1, Bits::full(2));
            let sent = drain(&mut d, T0, &mut rng);
            let seg0 = sent.iter().find(|(_, s)| *s == 0).copied().unwrap();
            d.on_answer(T0, seg0.0, 0, Outcome::Failed(Failure::Cutoff));
            if round < 2 {
                assert_eq!(d.status(T0), Status::Running);
                // The failed provider's HAVE is forgotten until it answers again.
                assert_eq!(d.poll_request(T0, &mut rng), None);
                d.on_answer(T0, 1, 1, Outcome::Failed(Failure::Busy));
            }
        }
        assert_eq!(d.status(T0), Status::StruckOut);
    }

    #[test]
    fn a_slow_request_is_hedged_once_to_another_provider() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut p = params();
        p.per_peer = 1;
        let mut d = Download::new(1, [0], p, &mut rng);
        d.set_have(1, Bits::full(1));
        d.set_have(2, Bits::full(1));
        let (first, _) = d.poll_request(T0, &mut rng).unwrap();
        assert_eq!(d.poll_timeout(), Some(Duration::from_secs(3)));
        d.handle_timeout(Duration::from_secs(3));
        let (second, _) = d.poll_request(Duration::from_secs(3), &mut rng).unwrap();
        assert_ne!(first, second);
        assert_eq!(d.hedges(), 1);
        assert_eq!(d.poll_timeout(), None, "hedged once only");
        assert!(d.on_answer(Duration::from_secs(4), second, 0, Outcome::Delivered));
        assert!(
            !d.on_answer(Duration::from_secs(5), first, 0, Outcome::Delivered),
            "the slower twin is not news"
        );
        assert_eq!(d.status(Duration::from_secs(5)), Status::Complete);
    }

    #[test]
    fn nothing_to_ask_for_long_enough_is_stuck() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut d = Download::new(2, 0..2, params(), &mut rng);
        d.set_have(1, bits(2, &[0]));
        let (_, s) = d.poll_request(T0, &mut rng).unwrap();
        d.on_answer(T0, 1, s, Outcome::Delivered);
        assert_eq!(d.poll_request(T0, &mut rng), None, "nobody holds segment 1");
        assert_eq!(d.status(T0), Status::Running);
        assert_eq!(d.status(Duration::from_secs(6)), Status::Stuck);
        let mut none = Download::<u8>::new(1, [0], params(), &mut rng);
        assert_eq!(none.status(T0), Status::NoProviders);
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut d = Download::new(64, 0..64, params(), &mut rng);
            for p in 0..5u8 {
                d.set_have(p, Bits::full(64));
            }
            drain(&mut d, T0, &mut rng)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
