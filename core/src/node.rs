//! [`NodeState`]: the node's own bookkeeping of its peers and its periodic work, sans-IO.
//! It decides who is waiting for admission and until when, what follows an admission or a
//! refusal, when to reconcile and with whom, when to send presence and re-publish the DHT
//! records (with the coalesced re-announcement after the federation grows), when to dial a
//! member whose connection was lost, and hands those decisions out as [`Action`]s. The daemon's event loop feeds it swarm events and its timer
//! and carries the actions out over libp2p; the simulator feeds it simulated connections and
//! time and carries them out over its network model.
//!
//! Time is a [`Duration`] since an origin the driver chooses; randomness is passed in.

use std::{collections::VecDeque, time::Duration};

use rand::Rng;

use crate::{Params, admission::AdmissionRefusal};

pub mod trace;

use trace::{Entry, Input, Start, Trace};

/// After the number of admitted peers reaches a power of two, the node re-announces its DHT
/// records this long later (plus up to 2 s at random), once for a burst of joins.
pub const ANNOUNCE_DELAY: Duration = Duration::from_secs(3);

/// A member whose last connection closed is dialled again this long after, the wait
/// doubling per attempt up to [`REDIAL_MAX`], for [`REDIAL_FOR`] at most. A partition that
/// outlasts the connections' idle timeout closes every connection across it; without this,
/// nothing would dial them again and the two sides would stay apart after the heal (they
/// would only meet through a restart or a fresh bootstrap).
pub const REDIAL_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two dials of a lost member (bounds how long after a heal the
/// sides reconnect).
pub const REDIAL_MAX: Duration = Duration::from_secs(10);
/// A member lost for this long is given up (it left; it dials in again if it returns).
pub const REDIAL_FOR: Duration = Duration::from_secs(30 * 60);
/// Lost members remembered at most (the oldest is forgotten first).
pub const MAX_LOST: usize = 256;
/// Admissions start reconciliations with the new peers at most this often: a node that
/// admits dozens of peers at once (a federation starting, a partition healing) reconciles
/// with the first at once and with the others one per interval, instead of running one full
/// reconciliation per peer at the same moment (a reconnection storm after a heal that kept
/// 2,000 simulated nodes from converging).
pub const ADMISSION_RECONCILE_GAP: Duration = Duration::from_millis(250);
/// Admitted peers waiting for their admission's reconciliation, at most (beyond, the rest
/// are left to anti-entropy).
pub const MAX_OWED: usize = 256;

/// What the node does next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action<P> {
    /// Send the peer our credential (it answers with its own).
    RequestAdmission(P),
    /// The peer passed admission: open the protocols to it.
    Admit(P),
    /// The peer failed admission: ban it and disconnect.
    Deny(P, AdmissionRefusal),
    /// The peer did not pass admission in time: a shorter ban (it may be a member on a bad
    /// link), and disconnect.
    DropLate(P),
    /// Reconcile the directory with the peer.
    Reconcile(P),
    /// A light node hands a newly admitted peer its own record instead of reconciling.
    PushOwnRecord(P),
    /// Send the signed presence heartbeat.
    Presence,
    /// Re-publish the node's DHT records and provider announcements.
    Republish,
    /// Dial the member again: its last connection closed (a partition, a restart, a link
    /// down) and it has not come back.
    Redial(P),
    /// The member misbehaves on gossip (its score fell below
    /// [`crate::GossipParams::disconnect_below_score`]): ban it and disconnect.
    Penalise(P, i64),
}

#[derive(Clone, Copy, Debug)]
enum Peer {
    /// Connected, admission running since then.
    Pending(Duration),
    /// Admitted; `true` while a reconciliation with it runs.
    Admitted { reconciling: bool },
}

/// A member whose connection was lost, and when to dial it.
#[derive(Clone, Copy, Debug)]
struct Lost {
    since: Duration,
    next: Duration,
    wait: Duration,
}

/// The intervals a [`NodeState`] keeps of [`Params`] (a simulator holds one state per
/// node, so it keeps no more).
#[derive(Clone, Copy, Debug)]
struct Intervals {
    /// [`crate::GossipParams::disconnect_below_score`].
    disconnect_below_score: i64,
    admission: Duration,
    reconcile: Duration,
    presence: Duration,
    republish: Duration,
}

/// One node's peers and periodic work.
#[derive(Debug)]
pub struct NodeState<P> {
    every: Intervals,
    light: bool,
    /// Whether presence heartbeats are sent (a driver that does not model presence turns
    /// them off, so they do not wake it).
    presence: bool,
    /// Sorted by peer: a node has at most a few hundred connections.
    peers: Vec<(P, Peer)>,
    next_reconcile: Duration,
    next_presence: Duration,
    next_republish: Duration,
    announce_at: Option<Duration>,
    admitted_total: u64,
    /// Members whose last connection closed, sorted by peer, at most [`MAX_LOST`].
    lost: Vec<(P, Lost)>,
    /// When an admission last started a reconciliation (see [`ADMISSION_RECONCILE_GAP`]).
    admission_reconciled: Option<Duration>,
    /// Admitted peers whose admission's reconciliation waits for the gap, oldest first.
    owed: VecDeque<P>,
    actions: VecDeque<Action<P>>,
    /// Only when [`NodeState::traced`].
    trace: Option<Box<Trace<P>>>,
}

impl<P: Copy + Ord> NodeState<P> {
    /// A node started at `now`; `light` nodes neither reconcile nor serve reconciliation.
    /// Presence goes out at once; the first reconciliation and re-publication one interval
    /// later.
    pub fn new(params: &Params, now: Duration, light: bool) -> Self {
        let every = Intervals {
            disconnect_below_score: params.gossip.disconnect_below_score,
            admission: params.admission.timeout,
            reconcile: params.sync.reconcile_interval,
            presence: params.sync.presence_interval,
            republish: params.kademlia.republish,
        };
        Self {
            next_reconcile: now + every.reconcile,
            next_presence: now,
            next_republish: now + every.republish,
            every,
            light,
            presence: true,
            peers: Vec::new(),
            announce_at: None,
            admitted_total: 0,
            lost: Vec::new(),
            admission_reconciled: None,
            owed: VecDeque::new(),
            actions: VecDeque::new(),
            trace: None,
        }
    }

    /// The first anti-entropy round at a random point of the first interval (`entropy`: a
    /// uniformly random number) instead of one whole interval after the start: nodes
    /// started together would otherwise reconcile in lockstep for ever. Call it before
    /// [`Self::traced`].
    pub fn reconcile_phase(mut self, entropy: u64) -> Self {
        let every = self.every.reconcile;
        let start = self.next_reconcile.saturating_sub(every);
        let ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
        let offset = ((u128::from(entropy) * u128::from(ns)) >> 64) as u64;
        self.next_reconcile = start + Duration::from_nanos(offset);
        self
    }

    /// Without presence heartbeats (for a driver that does not model presence).
    pub fn without_presence(mut self) -> Self {
        self.presence = false;
        self
    }

    /// Records every input and the decisions that followed from here on (see [`trace`]),
    /// continuing `earlier` (a restarted node's trace), up to [`trace::LIMIT`] entries.
    pub fn traced(mut self, earlier: Vec<Entry<P>>) -> Self {
        let mut t = Trace::new(earlier);
        t.push(Entry::Start(self.start()));
        self.trace = Some(Box::new(t));
        self
    }

    /// The recorded entries so far (emptied; recording goes on), or `None` when the node is
    /// not traced.
    pub fn take_trace(&mut self) -> Option<Vec<Entry<P>>> {
        self.trace.as_mut().map(|t| t.take())
    }

    /// Stops recording (the driver could not keep the trace) and drops what was held.
    pub fn stop_trace(&mut self) {
        self.trace = None;
    }

    fn start(&self) -> Start {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Start {
            disconnect_below_score: self.every.disconnect_below_score,
            light: self.light,
            presence: self.presence,
            admission_ns: ns(self.every.admission),
            reconcile_ns: ns(self.every.reconcile),
            presence_ns: ns(self.every.presence),
            republish_ns: ns(self.every.republish),
            next_reconcile_ns: ns(self.next_reconcile),
            next_presence_ns: ns(self.next_presence),
            next_republish_ns: ns(self.next_republish),
        }
    }

    /// The state a trace's [`Start`] describes.
    fn from_start(s: &Start) -> Self {
        let d = Duration::from_nanos;
        Self {
            every: Intervals {
                disconnect_below_score: s.disconnect_below_score,
                admission: d(s.admission_ns),
                reconcile: d(s.reconcile_ns),
                presence: d(s.presence_ns),
                republish: d(s.republish_ns),
            },
            light: s.light,
            presence: s.presence,
            peers: Vec::new(),
            next_reconcile: d(s.next_reconcile_ns),
            next_presence: d(s.next_presence_ns),
            next_republish: d(s.next_republish_ns),
            announce_at: None,
            admitted_total: 0,
            lost: Vec::new(),
            admission_reconciled: None,
            owed: VecDeque::new(),
            actions: VecDeque::new(),
            trace: None,
        }
    }

    /// `peer` was admitted before the period the driver looks at (a simulation that starts
    /// from a formed federation): no action follows.
    pub fn assume_admitted(&mut self, peer: P) {
        self.step(None, Input::AssumeAdmitted(peer));
    }

    fn get(&self, peer: &P) -> Option<&Peer> {
        let i = self.peers.binary_search_by(|(p, _)| p.cmp(peer)).ok()?;
        Some(&self.peers[i].1)
    }

    fn get_mut(&mut self, peer: &P) -> Option<&mut Peer> {
        let i = self.peers.binary_search_by(|(p, _)| p.cmp(peer)).ok()?;
        Some(&mut self.peers[i].1)
    }

    fn set(&mut self, peer: P, state: Peer) {
        match self.peers.binary_search_by(|(p, _)| p.cmp(&peer)) {
            Ok(i) => self.peers[i].1 = state,
            Err(i) => self.peers.insert(i, (peer, state)),
        }
    }

    fn remove(&mut self, peer: &P) {
        if let Ok(i) = self.peers.binary_search_by(|(p, _)| p.cmp(peer)) {
            self.peers.remove(i);
        }
    }

    /// Whether `peer` is admitted.
    pub fn is_admitted(&self, peer: &P) -> bool {
        matches!(self.get(peer), Some(Peer::Admitted { .. }))
    }

    /// Whether `peer` is connected and waiting for admission.
    pub fn is_pending(&self, peer: &P) -> bool {
        matches!(self.get(peer), Some(Peer::Pending(_)))
    }

    /// The admitted peers.
    pub fn admitted(&self) -> impl Iterator<Item = P> + '_ {
        self.peers
            .iter()
            .filter(|(_, s)| matches!(s, Peer::Admitted { .. }))
            .map(|(p, _)| *p)
    }

    /// Peers admitted since the start (restarts of the count with the process).
    pub fn admitted_total(&self) -> u64 {
        self.admitted_total
    }

    /// The first connection to `peer` is up: admission starts (a peer already admitted on
    /// another connection stays admitted).
    pub fn handle_connected(&mut self, now: Duration, peer: P) {
        self.step(Some(now), Input::Connected(peer));
    }

    /// The last connection to `peer` closed: it must pass admission again when it returns,
    /// and a member is dialled again until it does (see [`REDIAL_FIRST`]).
    pub fn handle_disconnected(&mut self, now: Duration, peer: &P) {
        self.step(Some(now), Input::Disconnected(*peer));
    }

    /// `peer`'s gossip score, when it is negative (a driver feeds no other: honest peers
    /// stay at or above 0, so nothing is recorded for them). Below
    /// [`crate::GossipParams::disconnect_below_score`] an admitted peer is penalised.
    pub fn handle_gossip_score(&mut self, peer: P, score: i64) {
        self.step(None, Input::GossipScore { peer, score });
    }

    /// The driver dropped `peer` (it failed admission, or was refused): forgotten, never
    /// dialled again by the core.
    pub fn handle_dropped(&mut self, peer: &P) {
        self.step(None, Input::Dropped(*peer));
    }

    /// Members whose connection was lost and who are still being dialled.
    pub fn lost(&self) -> impl Iterator<Item = P> + '_ {
        self.lost.iter().map(|(p, _)| *p)
    }

    /// A request to `peer` failed under the admission handshake, on a connection that is
    /// still up (`connected`): ask again; otherwise admission starts afresh when it returns.
    pub fn handle_admission_failure(&mut self, peer: P, connected: bool) {
        self.step(None, Input::AdmissionFailure { peer, connected });
    }

    /// The admission verdict on `peer` (from [`crate::admission::verdict`]). One number is
    /// drawn from `rng` (the re-announcement's jitter).
    pub fn handle_admission(
        &mut self,
        now: Duration,
        peer: P,
        verdict: Result<(), AdmissionRefusal>,
        rng: &mut impl Rng,
    ) {
        let entropy = rng.next_u64();
        match verdict {
            Ok(()) => self.step(
                Some(now),
                Input::Admission {
                    peer,
                    refused: None,
                    entropy,
                },
            ),
            Err(refusal) => {
                // The reason travels as text in a trace (the decision does not depend on it).
                let reason = self.trace.is_some().then(|| refusal.to_string());
                self.record(
                    Some(now),
                    Input::Admission {
                        peer,
                        refused: Some(reason.unwrap_or_default()),
                        entropy,
                    },
                );
                self.refuse(peer, refusal);
                self.record_decisions();
            }
        }
    }

    /// A reconciliation with `peer` started by the driver (the peer asked, or the driver
    /// chose it) or ended.
    pub fn set_reconciling(&mut self, peer: &P, on: bool) {
        self.step(None, Input::Reconciling { peer: *peer, on });
    }

    /// Whether a coalesced re-announcement is still to come.
    pub fn announce_pending(&self) -> bool {
        self.announce_at.is_some()
    }

    /// Re-announce the DHT records soon (the node's document changed).
    pub fn announce_soon(&mut self, now: Duration) {
        self.step(Some(now), Input::AnnounceSoon);
    }

    /// Everything due at `now`: admissions that ran out of time, a reconciliation with a
    /// random admitted peer not reconciling already, presence, re-publication. One number is
    /// drawn from `rng` (which idle peer to reconcile with).
    pub fn handle_timeout(&mut self, now: Duration, rng: &mut impl Rng) {
        let entropy = rng.next_u64();
        self.step(Some(now), Input::Timeout { entropy });
    }

    /// The next action to carry out.
    pub fn poll_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// When [`Self::handle_timeout`] has something to do next.
    pub fn poll_timeout(&self) -> Duration {
        let timeout = self.every.admission;
        let admission = self
            .peers
            .iter()
            .filter_map(|(_, s)| match s {
                Peer::Pending(t) => Some(*t + timeout + Duration::from_millis(1)),
                Peer::Admitted { .. } => None,
            })
            .min();
        let reconcile =
            (!self.every.reconcile.is_zero() && !self.light).then_some(self.next_reconcile);
        let redial = self.lost.iter().map(|(_, l)| l.next).min();
        let owed = self
            .admission_reconciled
            .filter(|_| !self.owed.is_empty())
            .map(|t| t + ADMISSION_RECONCILE_GAP);
        [
            reconcile,
            redial,
            owed,
            self.presence.then_some(self.next_presence),
            Some(self.next_republish),
            self.announce_at,
            admission,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_republish)
    }

    // ------------------------------------------------------------------ the decisions

    /// Records `input`, decides, and records the decisions.
    fn step(&mut self, now: Option<Duration>, input: Input<P>) {
        self.record(now, input.clone());
        self.apply(now.unwrap_or_default(), input);
        self.record_decisions();
    }

    fn record(&mut self, now: Option<Duration>, input: Input<P>) {
        if let Some(t) = &mut self.trace {
            t.input(now, input, self.actions.len());
        }
    }

    fn record_decisions(&mut self) {
        if let Some(t) = &mut self.trace {
            t.decisions(&self.actions);
        }
    }

    /// What follows from one input; a trace replays exactly this.
    fn apply(&mut self, now: Duration, input: Input<P>) {
        match input {
            Input::AssumeAdmitted(peer) => self.set(peer, Peer::Admitted { reconciling: false }),
            Input::Connected(peer) => {
                if self.get(&peer).is_none() {
                    self.set(peer, Peer::Pending(now));
                    self.actions.push_back(Action::RequestAdmission(peer));
                }
            }
            Input::Disconnected(peer) => {
                if self.is_admitted(&peer) {
                    self.lose(now, peer);
                }
                self.remove(&peer);
            }
            Input::Dropped(peer) => {
                self.found(&peer);
                self.remove(&peer);
            }
            Input::GossipScore { peer, score } => {
                if score < self.every.disconnect_below_score && self.is_admitted(&peer) {
                    self.found(&peer);
                    self.remove(&peer);
                    self.actions.push_back(Action::Penalise(peer, score));
                }
            }
            Input::AdmissionFailure { peer, connected } => {
                if self.is_pending(&peer) {
                    if connected {
                        self.actions.push_back(Action::RequestAdmission(peer));
                    } else {
                        self.remove(&peer);
                    }
                }
            }
            Input::Admission {
                peer,
                refused: Some(reason),
                ..
            } => self.refuse(peer, AdmissionRefusal::Recorded(reason)),
            Input::Admission {
                peer,
                refused: None,
                entropy,
            } => self.admit(now, peer, entropy),
            Input::Reconciling { peer, on } => {
                if let Some(Peer::Admitted { reconciling }) = self.get_mut(&peer) {
                    *reconciling = on;
                }
            }
            Input::AnnounceSoon => {
                self.announce_at.get_or_insert(now);
            }
            Input::Timeout { entropy } => self.timeout(now, entropy),
        }
    }

    fn refuse(&mut self, peer: P, refusal: AdmissionRefusal) {
        self.found(&peer);
        self.remove(&peer);
        self.actions.push_back(Action::Deny(peer, refusal));
    }

    fn admit(&mut self, now: Duration, peer: P, entropy: u64) {
        if self.is_admitted(&peer) {
            return;
        }
        self.found(&peer);
        self.set(peer, Peer::Admitted { reconciling: false });
        self.admitted_total += 1;
        if self.admitted_total.is_power_of_two() && self.announce_at.is_none() {
            // Coalesced: a burst of joins (a federation starting) triggers one
            // re-announcement a few seconds later, not one per doubling.
            let jitter = Duration::from_millis(pick(entropy, 2000) as u64);
            self.announce_at = Some(now + ANNOUNCE_DELAY + jitter);
        }
        self.actions.push_back(Action::Admit(peer));
        if self.light {
            self.actions.push_back(Action::PushOwnRecord(peer));
        } else if self.gap_passed(now) {
            self.admission_reconciled = Some(now);
            self.start_reconcile(peer);
        } else if self.owed.len() < MAX_OWED {
            self.owed.push_back(peer);
        }
    }

    fn gap_passed(&self, now: Duration) -> bool {
        self.admission_reconciled
            .is_none_or(|t| now.saturating_sub(t) >= ADMISSION_RECONCILE_GAP)
    }

    /// Starts the oldest owed admission reconciliation, once the gap has passed (peers gone
    /// or already reconciling meanwhile are struck off).
    fn pay_owed(&mut self, now: Duration) {
        if !self.gap_passed(now) {
            return;
        }
        while let Some(peer) = self.owed.pop_front() {
            if matches!(self.get(&peer), Some(Peer::Admitted { reconciling: false })) {
                self.admission_reconciled = Some(now);
                self.start_reconcile(peer);
                return;
            }
        }
    }

    /// Starts dialling `peer` again (its last connection closed at `now`).
    fn lose(&mut self, now: Duration, peer: P) {
        let lost = Lost {
            since: now,
            next: now + REDIAL_FIRST,
            wait: REDIAL_FIRST,
        };
        match self.lost.binary_search_by(|(p, _)| p.cmp(&peer)) {
            Ok(i) => self.lost[i].1 = lost,
            Err(i) => {
                self.lost.insert(i, (peer, lost));
                if self.lost.len() > MAX_LOST
                    && let Some(oldest) = self
                        .lost
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, l))| l.since)
                        .map(|(k, _)| k)
                {
                    self.lost.remove(oldest);
                }
            }
        }
    }

    /// `peer` is back (admitted), or refused or dropped on purpose: no more dialling.
    fn found(&mut self, peer: &P) {
        if let Ok(i) = self.lost.binary_search_by(|(p, _)| p.cmp(peer)) {
            self.lost.remove(i);
        }
    }

    /// Dials the lost members that are due, and gives up on those lost too long.
    fn redial(&mut self, now: Duration) {
        self.lost
            .retain(|(_, l)| now.saturating_sub(l.since) < REDIAL_FOR || now < l.next);
        for (peer, l) in &mut self.lost {
            if now >= l.next {
                l.wait = (l.wait * 2).min(REDIAL_MAX);
                l.next = now + l.wait;
                self.actions.push_back(Action::Redial(*peer));
            }
        }
    }

    fn start_reconcile(&mut self, peer: P) {
        if let Some(Peer::Admitted { reconciling }) = self.get_mut(&peer)
            && !*reconciling
        {
            *reconciling = true;
            self.actions.push_back(Action::Reconcile(peer));
        }
    }

    fn timeout(&mut self, now: Duration, entropy: u64) {
        let timeout = self.every.admission;
        let late: Vec<P> = self
            .peers
            .iter()
            .filter(|(_, s)| matches!(s, Peer::Pending(t) if now.saturating_sub(*t) > timeout))
            .map(|(p, _)| *p)
            .collect();
        for p in late {
            self.remove(&p);
            self.actions.push_back(Action::DropLate(p));
        }
        self.redial(now);
        self.pay_owed(now);
        let every = self.every.reconcile;
        if !every.is_zero() && now >= self.next_reconcile {
            self.next_reconcile = now + every;
            if !self.light {
                let idle: Vec<P> = self
                    .peers
                    .iter()
                    .filter(|(_, s)| matches!(s, Peer::Admitted { reconciling: false }))
                    .map(|(p, _)| *p)
                    .collect();
                if !idle.is_empty() {
                    let p = idle[pick(entropy, idle.len())];
                    self.start_reconcile(p);
                }
            }
        }
        if self.presence && now >= self.next_presence {
            self.next_presence = now + self.every.presence;
            self.actions.push_back(Action::Presence);
        }
        if self.announce_at.is_some_and(|t| now >= t) || now >= self.next_republish {
            self.announce_at = None;
            self.next_republish = now + self.every.republish;
            self.actions.push_back(Action::Republish);
        }
    }
}

/// An index below `n` from a uniformly random `entropy` (multiply-shift, no modulo bias
/// worth the name for the small `n` here).
fn pick(entropy: u64, n: usize) -> usize {
    ((u128::from(entropy) * n as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::identity::PublicKeyError;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn drain(n: &mut NodeState<u8>) -> Vec<String> {
        std::iter::from_fn(|| n.poll_action())
            .map(|a| format!("{a:?}"))
            .collect()
    }

    fn refusal() -> AdmissionRefusal {
        AdmissionRefusal::PeerId(PublicKeyError::NotEd25519("x".into()))
    }

    #[test]
    fn admission_runs_on_the_first_connection_and_ends_in_time() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut n = NodeState::new(&Params::default(), S(0), false);
        n.handle_timeout(S(0), &mut rng);
        assert_eq!(drain(&mut n), vec!["Presence"]);
        n.handle_connected(S(1), 7);
        n.handle_connected(S(1), 7);
        assert_eq!(drain(&mut n), vec!["RequestAdmission(7)"]);
        // 1.5 s to pass admission; at 2.5 s + 1 ms it is dropped as late.
        assert_eq!(n.poll_timeout(), S(1) + MS(1501));
        n.handle_timeout(S(2), &mut rng);
        assert!(n.is_pending(&7));
        n.handle_timeout(S(1) + MS(1501), &mut rng);
        assert_eq!(drain(&mut n), vec!["DropLate(7)"]);
        assert!(!n.is_pending(&7) && !n.is_admitted(&7));
        // A refused peer is denied and forgotten.
        n.handle_connected(S(3), 8);
        n.handle_admission(S(3), 8, Err(refusal()), &mut rng);
        let a = drain(&mut n);
        assert_eq!(a[0], "RequestAdmission(8)");
        assert!(a[1].starts_with("Deny(8,"), "{a:?}");
    }

    #[test]
    fn an_admitted_peer_is_reconciled_at_once_and_a_light_node_pushes_instead() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut n = NodeState::new(&Params::default(), S(0), false);
        drain(&mut n);
        n.handle_connected(S(1), 1);
        n.handle_admission(S(1), 1, Ok(()), &mut rng);
        assert_eq!(
            drain(&mut n),
            vec!["RequestAdmission(1)", "Admit(1)", "Reconcile(1)"]
        );
        // Admitted twice (its request and its answer): once.
        n.handle_admission(S(1), 1, Ok(()), &mut rng);
        assert!(drain(&mut n).is_empty());
        let mut light = NodeState::new(&Params::default(), S(0), true);
        drain(&mut light);
        light.handle_admission(S(1), 1, Ok(()), &mut rng);
        assert_eq!(drain(&mut light), vec!["Admit(1)", "PushOwnRecord(1)"]);
    }

    #[test]
    fn anti_entropy_picks_an_admitted_peer_not_reconciling_every_interval() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = Params::default();
        let every = p.sync.reconcile_interval;
        let mut n = NodeState::new(&p, S(0), false);
        for peer in 1..=3 {
            n.handle_admission(S(0), peer, Ok(()), &mut rng);
        }
        drain(&mut n);
        // Peers 1 and 2 finished their first reconciliation; 3 is still reconciling (one
        // it asked for: admitted at the same instant as 1, it was not reconciled at once).
        n.set_reconciling(&1, false);
        n.set_reconciling(&2, false);
        n.set_reconciling(&3, true);
        let mut picked = std::collections::BTreeSet::new();
        for k in 1..=20 {
            n.handle_timeout(every * k, &mut rng);
            while let Some(a) = n.poll_action() {
                if let Action::Reconcile(peer) = a {
                    assert_ne!(peer, 3, "a peer already reconciling is not picked");
                    picked.insert(peer);
                    n.set_reconciling(&peer, false);
                }
            }
        }
        assert_eq!(picked.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn admissions_in_a_burst_reconcile_one_per_gap_in_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut n = NodeState::new(&Params::default(), S(0), false).without_presence();
        for peer in 1..=5 {
            n.handle_admission(S(10), peer, Ok(()), &mut rng);
        }
        let reconciles = |n: &mut NodeState<u8>| -> Vec<String> {
            drain(n)
                .into_iter()
                .filter(|a| a.starts_with("Reconcile"))
                .collect()
        };
        assert_eq!(reconciles(&mut n), vec!["Reconcile(1)"]);
        // Peer 3 left, peer 4 is reconciling already (it asked): both struck off.
        n.handle_dropped(&3);
        n.set_reconciling(&4, true);
        let gap = ADMISSION_RECONCILE_GAP;
        let mut order = Vec::new();
        for _ in 0..3 {
            let at = n.poll_timeout();
            n.handle_timeout(at, &mut rng);
            order.extend(reconciles(&mut n).into_iter().map(|r| (at, r)));
        }
        assert_eq!(
            order,
            vec![
                (S(10) + gap, "Reconcile(2)".to_owned()),
                (S(10) + 2 * gap, "Reconcile(5)".to_owned())
            ]
        );
        // Nothing owed: the next deadline is not the gap's.
        assert!(n.poll_timeout() > S(20));
        // Past the gap, the next admission reconciles at once.
        n.handle_admission(S(30), 6, Ok(()), &mut rng);
        assert_eq!(reconciles(&mut n), vec!["Reconcile(6)"]);
    }

    #[test]
    fn a_lost_member_is_dialled_again_with_backoff_until_it_is_back() {
        let mut rng = ChaCha8Rng::seed_from_u64(13);
        let mut n = NodeState::new(&Params::default(), S(0), false).without_presence();
        n.handle_connected(S(1), 1);
        n.handle_admission(S(1), 1, Ok(()), &mut rng);
        // A peer still in admission is not a member: not dialled when it goes.
        n.handle_connected(S(1), 2);
        drain(&mut n);
        n.handle_disconnected(S(10), &1);
        n.handle_disconnected(S(10), &2);
        assert_eq!(n.lost().collect::<Vec<_>>(), vec![1]);
        let mut dialled = Vec::new();
        while dialled.len() < 7 {
            let at = n.poll_timeout();
            n.handle_timeout(at, &mut rng);
            if drain(&mut n).contains(&"Redial(1)".to_owned()) {
                dialled.push(at.as_secs());
            }
        }
        // 1 s, doubling to 10 s.
        assert_eq!(dialled, vec![11, 13, 17, 25, 35, 45, 55]);
        // It is back: admitted again, no more dialling.
        n.handle_connected(S(56), 1);
        n.handle_admission(S(56), 1, Ok(()), &mut rng);
        assert_eq!(n.lost().count(), 0);
        n.handle_timeout(S(70), &mut rng);
        assert!(!drain(&mut n).iter().any(|a| a.starts_with("Redial")));
    }

    #[test]
    fn lost_members_are_given_up_after_a_while_dropped_ones_at_once_and_bounded() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let mut n: NodeState<u16> =
            NodeState::new(&Params::default(), S(0), false).without_presence();
        n.handle_admission(S(0), 1, Ok(()), &mut rng);
        n.handle_admission(S(0), 2, Ok(()), &mut rng);
        n.handle_disconnected(S(1), &1);
        // Dropped by the driver's decision: never dialled.
        n.handle_dropped(&2);
        assert_eq!(n.lost().collect::<Vec<_>>(), vec![1]);
        n.handle_timeout(S(1) + REDIAL_FOR + S(20), &mut rng);
        assert_eq!(n.lost().count(), 0, "given up after REDIAL_FOR");
        // A partition losing more members than MAX_LOST keeps the newest.
        let many = u16::try_from(MAX_LOST).unwrap() + 10;
        for peer in 100..100 + many {
            n.handle_admission(S(5000), peer, Ok(()), &mut rng);
        }
        for (k, peer) in (100..100 + many).enumerate() {
            n.handle_disconnected(S(5001) + MS(k as u64), &peer);
        }
        let lost: Vec<u16> = n.lost().collect();
        assert_eq!(lost.len(), MAX_LOST);
        assert_eq!(lost[0], 110, "the oldest ten were forgotten");
    }

    #[test]
    fn a_member_whose_gossip_score_sinks_is_penalised_once_and_not_redialled() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let p = Params::default();
        let floor = p.gossip.disconnect_below_score;
        let mut n = NodeState::new(&p, S(0), false).without_presence();
        n.handle_admission(S(1), 1, Ok(()), &mut rng);
        n.handle_admission(S(1), 2, Ok(()), &mut rng);
        drain(&mut n);
        // Slightly negative (a late or duplicate message): nothing.
        n.handle_gossip_score(1, -5);
        n.handle_gossip_score(1, floor);
        assert!(drain(&mut n).is_empty());
        n.handle_gossip_score(1, floor - 1);
        assert_eq!(drain(&mut n), vec![format!("Penalise(1, {})", floor - 1)]);
        assert!(!n.is_admitted(&1));
        // Once: the next score of the same peer finds it gone; and it is not redialled.
        n.handle_gossip_score(1, floor * 2);
        n.handle_disconnected(S(2), &1);
        assert!(drain(&mut n).is_empty());
        assert_eq!(n.lost().count(), 0);
        // A peer still in admission is not judged by its score (it is graylisted).
        n.handle_connected(S(3), 3);
        drain(&mut n);
        n.handle_gossip_score(3, floor * 10);
        assert!(drain(&mut n).is_empty());
    }

    #[test]
    fn presence_republish_and_a_coalesced_announcement() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let p = Params::default();
        let presence = p.sync.presence_interval;
        let mut n = NodeState::new(&p, S(0), true);
        n.handle_timeout(S(0), &mut rng);
        assert_eq!(drain(&mut n), vec!["Presence"]);
        // The 1st, 2nd and 4th admissions fall within the first announcement's delay:
        // one re-announcement, 3–5 s after the first.
        for (t, peer) in [(1, 1), (2, 2), (2, 3), (3, 4)] {
            n.handle_admission(S(t), peer, Ok(()), &mut rng);
        }
        drain(&mut n);
        let at = n.poll_timeout();
        assert!((S(4)..S(6)).contains(&at), "{at:?}");
        n.handle_timeout(at, &mut rng);
        assert_eq!(drain(&mut n), vec!["Republish"]);
        n.handle_timeout(presence, &mut rng);
        assert_eq!(drain(&mut n), vec!["Presence"]);
    }

    #[test]
    fn the_first_round_falls_at_a_random_point_of_the_interval() {
        let p = Params::default();
        let every = p.sync.reconcile_interval;
        // Without presence (due at once) the first deadline is the first round.
        let first = |e| {
            NodeState::<u8>::new(&p, S(100), false)
                .without_presence()
                .reconcile_phase(e)
                .poll_timeout()
        };
        assert_eq!(first(0), S(100));
        let half = first(u64::MAX / 2);
        assert!(
            (S(100) + every / 2).abs_diff(half) < Duration::from_micros(1),
            "{half:?}"
        );
        assert!(first(u64::MAX) < S(100) + every);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut n = NodeState::new(&p, S(0), false)
            .without_presence()
            .reconcile_phase(u64::MAX / 4);
        n.handle_admission(S(0), 1, Ok(()), &mut rng);
        n.set_reconciling(&1, false);
        drain(&mut n);
        let early = (every / 4).saturating_sub(Duration::from_millis(1));
        n.handle_timeout(early, &mut rng);
        assert!(!drain(&mut n).contains(&"Reconcile(1)".to_owned()));
        n.handle_timeout(every / 4, &mut rng);
        assert!(drain(&mut n).contains(&"Reconcile(1)".to_owned()));
    }

    /// The contract every driver's timer loop relies on: once the deadline
    /// [`NodeState::poll_timeout`] named has been handled, the next one lies later (a driver
    /// that fires at an unchanged deadline again would spin for ever).
    #[test]
    fn a_handled_deadline_is_never_asked_for_again() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for e in [1u64, 12_345_678_901, u64::MAX / 3, u64::MAX - 7] {
            let mut n = NodeState::new(&Params::default(), MS(7), false)
                .without_presence()
                .reconcile_phase(e);
            n.handle_connected(MS(8), 1);
            n.handle_connected(MS(9), 2);
            n.handle_admission(MS(9), 2, Ok(()), &mut rng);
            n.set_reconciling(&2, false);
            let mut at = Duration::ZERO;
            for _ in 0..50 {
                let next = n.poll_timeout();
                assert!(next > at, "{next:?} after {at:?} (entropy {e})");
                n.handle_timeout(next, &mut rng);
                drain(&mut n);
                at = next;
            }
        }
    }

    #[test]
    fn the_same_inputs_and_seed_give_the_same_actions() {
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut n = NodeState::new(&Params::default(), S(0), false);
            for peer in 0..10u8 {
                n.handle_connected(S(0), peer);
                n.handle_admission(S(0), peer, Ok(()), &mut rng);
                n.set_reconciling(&peer, false);
            }
            let mut out = drain(&mut n);
            for k in 1..10 {
                n.handle_timeout(S(30 * k), &mut rng);
                out.extend(drain(&mut n));
                for peer in 0..10u8 {
                    n.set_reconciling(&peer, false);
                }
            }
            out
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }
}
