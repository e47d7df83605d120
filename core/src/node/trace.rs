//! A record of what a [`NodeState`] was told and what it decided, and its replay.
//!
//! A traced node ([`NodeState::traced`]) appends one [`Entry::Step`] per input — the input
//! with its time and the random number it drew — holding the decisions that followed, and an
//! [`Entry::Start`] each time a core starts (a restarted node continues the same trace).
//! [`replay`] feeds the inputs to a fresh core and checks that it decides the same, step by
//! step. The daemon writes its trace when `GAIAMESH_CORE_TRACE` is set (peers as the hex of
//! their PeerId bytes), the simulator for the node its scenario names; the differential
//! tests replay both through the simulator's instantiation, `NodeState<u32>`, so a decision
//! that depends on anything but the recorded inputs (the clock, hidden randomness, the peer
//! type) shows as a divergence.

use std::{collections::VecDeque, fmt, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Action, NodeState};

/// Entries kept before recording stops (about 100 MB of JSON at most); the driver drains
/// them with [`NodeState::take_trace`].
pub const LIMIT: usize = 1 << 20;

/// One input to the core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input<P> {
    /// Admitted before the traced period.
    AssumeAdmitted(P),
    /// First connection up.
    Connected(P),
    /// Last connection closed.
    Disconnected(P),
    /// Dropped by the driver (refused, or late in admission).
    Dropped(P),
    /// A negative gossip score.
    GossipScore {
        /// The peer.
        peer: P,
        /// Its score.
        score: i64,
    },
    /// The admission request failed; `connected`: another connection is up.
    AdmissionFailure {
        /// The peer.
        peer: P,
        /// Whether it is still connected.
        connected: bool,
    },
    /// The admission verdict: `refused` holds the reason, `None` admits.
    Admission {
        /// The peer.
        peer: P,
        /// The refusal's reason.
        refused: Option<String>,
        /// The number drawn.
        entropy: u64,
    },
    /// A reconciliation with the peer started or ended.
    Reconciling {
        /// The peer.
        peer: P,
        /// Started (true) or ended.
        on: bool,
    },
    /// The node's document changed.
    AnnounceSoon,
    /// The timer fired.
    Timeout {
        /// The number drawn.
        entropy: u64,
    },
}

/// A decision, as recorded ([`Action`] with the refusal as text).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision<P> {
    /// [`Action::RequestAdmission`].
    RequestAdmission(P),
    /// [`Action::Admit`].
    Admit(P),
    /// [`Action::Deny`], with the reason.
    Deny(P, String),
    /// [`Action::DropLate`].
    DropLate(P),
    /// [`Action::Reconcile`].
    Reconcile(P),
    /// [`Action::PushOwnRecord`].
    PushOwnRecord(P),
    /// [`Action::Presence`].
    Presence,
    /// [`Action::Republish`].
    Republish,
    /// [`Action::Redial`].
    Redial(P),
    /// [`Action::Penalise`].
    Penalise(P, i64),
}

impl<P: Copy> Decision<P> {
    fn of(a: &Action<P>) -> Self {
        match a {
            Action::RequestAdmission(p) => Self::RequestAdmission(*p),
            Action::Admit(p) => Self::Admit(*p),
            Action::Deny(p, r) => Self::Deny(*p, r.to_string()),
            Action::DropLate(p) => Self::DropLate(*p),
            Action::Reconcile(p) => Self::Reconcile(*p),
            Action::PushOwnRecord(p) => Self::PushOwnRecord(*p),
            Action::Presence => Self::Presence,
            Action::Republish => Self::Republish,
            Action::Redial(p) => Self::Redial(*p),
            Action::Penalise(p, s) => Self::Penalise(*p, *s),
        }
    }
}

/// How a core started: its intervals and first deadlines, in ns of the driver's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Start {
    /// Absent in traces written before it existed: the default threshold.
    #[serde(default = "default_disconnect_below_score")]
    pub disconnect_below_score: i64,
    pub light: bool,
    pub presence: bool,
    pub admission_ns: u64,
    pub reconcile_ns: u64,
    pub presence_ns: u64,
    pub republish_ns: u64,
    pub next_reconcile_ns: u64,
    pub next_presence_ns: u64,
    pub next_republish_ns: u64,
}

fn default_disconnect_below_score() -> i64 {
    crate::Params::default().gossip.disconnect_below_score
}

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry<P> {
    /// A core started (the node started, or restarted).
    Start(Start),
    /// An input, and what the core decided on it.
    Step {
        /// The driver's clock, for the inputs that carry a time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_ns: Option<u64>,
        /// The input.
        input: Input<P>,
        /// The decisions it led to, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        decisions: Vec<Decision<P>>,
    },
}

impl<P> Entry<P> {
    /// The same entry with every peer mapped by `f`.
    pub fn map_peers<Q>(self, mut f: impl FnMut(P) -> Q) -> Entry<Q> {
        let mut input = |i: Input<P>| match i {
            Input::AssumeAdmitted(p) => Input::AssumeAdmitted(f(p)),
            Input::Connected(p) => Input::Connected(f(p)),
            Input::Disconnected(p) => Input::Disconnected(f(p)),
            Input::Dropped(p) => Input::Dropped(f(p)),
            Input::GossipScore { peer, score } => Input::GossipScore {
                peer: f(peer),
                score,
            },
            Input::AdmissionFailure { peer, connected } => Input::AdmissionFailure {
                peer: f(peer),
                connected,
            },
            Input::Admission {
                peer,
                refused,
                entropy,
            } => Input::Admission {
                peer: f(peer),
                refused,
                entropy,
            },
            Input::Reconciling { peer, on } => Input::Reconciling { peer: f(peer), on },
            Input::AnnounceSoon => Input::AnnounceSoon,
            Input::Timeout { entropy } => Input::Timeout { entropy },
        };
        match self {
            Self::Start(s) => Entry::Start(s),
            Self::Step {
                at_ns,
                input: i,
                decisions,
            } => {
                let input = input(i);
                let decisions = decisions
                    .into_iter()
                    .map(|d| match d {
                        Decision::RequestAdmission(p) => Decision::RequestAdmission(f(p)),
                        Decision::Admit(p) => Decision::Admit(f(p)),
                        Decision::Deny(p, r) => Decision::Deny(f(p), r),
                        Decision::DropLate(p) => Decision::DropLate(f(p)),
                        Decision::Reconcile(p) => Decision::Reconcile(f(p)),
                        Decision::PushOwnRecord(p) => Decision::PushOwnRecord(f(p)),
                        Decision::Presence => Decision::Presence,
                        Decision::Republish => Decision::Republish,
                        Decision::Redial(p) => Decision::Redial(f(p)),
                        Decision::Penalise(p, s) => Decision::Penalise(f(p), s),
                    })
                    .collect();
                Entry::Step {
                    at_ns,
                    input,
                    decisions,
                }
            }
        }
    }
}

/// The recorder a traced [`NodeState`] carries.
#[derive(Debug)]
pub(super) struct Trace<P> {
    entries: Vec<Entry<P>>,
    /// Entries taken by the driver so far, plus those held.
    total: usize,
    /// How many actions were queued before the current step.
    queued_before: usize,
}

impl<P: Copy> Trace<P> {
    pub(super) fn new(earlier: Vec<Entry<P>>) -> Self {
        Self {
            total: earlier.len(),
            entries: earlier,
            queued_before: 0,
        }
    }

    pub(super) fn push(&mut self, e: Entry<P>) {
        if self.total < LIMIT {
            self.total += 1;
            self.entries.push(e);
        }
    }

    pub(super) fn take(&mut self) -> Vec<Entry<P>> {
        std::mem::take(&mut self.entries)
    }

    pub(super) fn input(&mut self, now: Option<Duration>, input: Input<P>, queued: usize) {
        self.queued_before = queued;
        let at_ns = now.map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        self.push(Entry::Step {
            at_ns,
            input,
            decisions: Vec::new(),
        });
    }

    /// The actions queued since [`Self::input`] become that step's decisions.
    pub(super) fn decisions(&mut self, queue: &VecDeque<Action<P>>) {
        let from = self.queued_before.min(queue.len());
        if let Some(Entry::Step { decisions, .. }) = self.entries.last_mut() {
            decisions.extend(queue.iter().skip(from).map(Decision::of));
        }
    }
}

/// Where a replay first decided otherwise than the trace.
#[derive(Debug, PartialEq, Eq)]
pub struct Divergence<P> {
    /// The entry's index in the trace.
    pub index: usize,
    /// Its input.
    pub input: Input<P>,
    /// What the trace recorded.
    pub recorded: Vec<Decision<P>>,
    /// What the replay decided.
    pub replayed: Vec<Decision<P>>,
}

impl<P: fmt::Debug> fmt::Display for Divergence<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} ({:?}): recorded {:?}, replayed {:?}",
            self.index, self.input, self.recorded, self.replayed
        )
    }
}

/// What a replay went through.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Cores started.
    pub starts: usize,
    /// Inputs fed.
    pub steps: usize,
    /// Decisions made (and matched).
    pub decisions: usize,
}

/// Feeds `entries` to fresh cores and checks every step's decisions against the recorded
/// ones. Steps before the first [`Entry::Start`] (a trace cut at its start) are skipped.
pub fn replay<P: Copy + Ord + fmt::Debug>(
    entries: &[Entry<P>],
) -> Result<Replayed, Box<Divergence<P>>> {
    let mut node: Option<NodeState<P>> = None;
    let mut done = Replayed::default();
    for (index, e) in entries.iter().enumerate() {
        match e {
            Entry::Start(s) => {
                node = Some(NodeState::from_start(s));
                done.starts += 1;
            }
            Entry::Step {
                at_ns,
                input,
                decisions,
            } => {
                let Some(n) = node.as_mut() else { continue };
                n.apply(Duration::from_nanos(at_ns.unwrap_or(0)), input.clone());
                let replayed: Vec<Decision<P>> = std::iter::from_fn(|| n.poll_action())
                    .map(|a| Decision::of(&a))
                    .collect();
                if &replayed != decisions {
                    return Err(Box::new(Divergence {
                        index,
                        input: input.clone(),
                        recorded: decisions.clone(),
                        replayed,
                    }));
                }
                done.steps += 1;
                done.decisions += replayed.len();
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::{Params, admission::AdmissionRefusal};

    const S: fn(u64) -> Duration = Duration::from_secs;

    /// A node through admissions (one refused, one late), anti-entropy rounds, presence, a
    /// document change and a restart.
    fn traced_run(seed: u64) -> Vec<Entry<u16>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = Params::default();
        let mut n = NodeState::new(&p, S(0), false).traced(Vec::new());
        n.assume_admitted(100);
        for peer in 1..=6u16 {
            n.handle_connected(S(u64::from(peer)), peer);
        }
        for peer in 1..=4u16 {
            n.handle_admission(S(7), peer, Ok(()), &mut rng);
        }
        n.handle_admission(S(7), 5, Err(AdmissionRefusal::NoCredential), &mut rng);
        n.handle_admission_failure(6, true);
        for k in 1..=12 {
            let now = S(5 * k);
            n.handle_timeout(now, &mut rng);
            while let Some(a) = n.poll_action() {
                if let Action::Reconcile(peer) = a {
                    n.set_reconciling(&peer, false);
                }
            }
            if k == 6 {
                n.announce_soon(now);
                n.handle_disconnected(now, &2);
                n.handle_dropped(&6);
                n.handle_gossip_score(4, -50_000);
            }
        }
        let earlier = n.take_trace().unwrap();
        let mut n = NodeState::new(&p, S(70), false).traced(earlier);
        n.handle_connected(S(71), 3);
        n.handle_admission(S(71), 3, Ok(()), &mut rng);
        n.handle_timeout(S(200), &mut rng);
        n.take_trace().unwrap()
    }

    #[test]
    fn a_trace_replays_to_the_same_decisions_under_another_peer_type() {
        let t = traced_run(7);
        let decided = |d: fn(&Decision<u16>) -> bool| {
            t.iter()
                .filter_map(|e| match e {
                    Entry::Step { decisions, .. } => {
                        Some(decisions.iter().filter(|x| d(x)).count())
                    }
                    Entry::Start(_) => None,
                })
                .sum::<usize>()
        };
        // The run made every kind of decision worth checking.
        assert!(decided(|d| matches!(d, Decision::Reconcile(_))) >= 4);
        assert!(decided(|d| matches!(d, Decision::Redial(2))) >= 3);
        assert_eq!(decided(|d| matches!(d, Decision::Penalise(4, -50_000))), 1);
        assert_eq!(
            decided(|d| matches!(d, Decision::Deny(5, r) if r == "no membership credential")),
            1
        );
        assert_eq!(decided(|d| matches!(d, Decision::DropLate(6))), 1);
        assert!(decided(|d| matches!(d, Decision::Republish)) >= 1);
        let done = replay(&t).unwrap();
        assert_eq!(done.starts, 2);
        assert_eq!(done.steps, t.len() - 2);
        // Through JSON and a wider peer type (what the daemon's trace goes through).
        let json: Vec<String> = t
            .iter()
            .map(|e| serde_json::to_string(e).unwrap())
            .collect();
        let back: Vec<Entry<u64>> = json
            .iter()
            .map(|l| {
                serde_json::from_str::<Entry<u16>>(l)
                    .unwrap()
                    .map_peers(u64::from)
            })
            .collect();
        assert_eq!(replay(&back).unwrap(), done);
    }

    #[test]
    fn a_replay_finds_a_decision_the_inputs_do_not_explain() {
        let t = traced_run(8);
        // A reconciliation the core never chose (as a driver deciding on its own would
        // record it), and a changed random draw.
        let i = t
            .iter()
            .position(|e| matches!(e, Entry::Step { input: Input::Timeout { .. }, decisions, .. } if decisions.iter().any(|d| matches!(d, Decision::Reconcile(_)))))
            .unwrap();
        let mut forged = t.clone();
        if let Entry::Step { decisions, .. } = &mut forged[i] {
            decisions.push(Decision::Presence);
        }
        let d = replay(&forged).unwrap_err();
        assert_eq!(d.index, i);
        assert!(d.to_string().contains("Presence"), "{d}");
        // A changed random draw: some anti-entropy round (one with a choice of peers; an
        // owed admission reconciliation draws nothing) then picks another peer.
        let diverged = (0..t.len()).find_map(|k| {
            let mut changed = t.clone();
            match &mut changed[k] {
                Entry::Step {
                    input: Input::Timeout { entropy },
                    decisions,
                    ..
                } if decisions
                    .iter()
                    .any(|d| matches!(d, Decision::Reconcile(_))) =>
                {
                    *entropy = entropy.wrapping_add(u64::MAX / 3);
                }
                _ => return None,
            }
            replay(&changed).err().map(|d| (k, d.index))
        });
        let (k, at) = diverged.expect("a changed draw changes a decision");
        assert_eq!(at, k, "the divergence is found at the changed step");
    }

    #[test]
    fn recording_stops_at_the_limit() {
        let mut n = NodeState::<u8>::new(&Params::default(), S(0), false).traced(Vec::new());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for k in 0..(LIMIT as u64 + 10) {
            n.handle_timeout(Duration::from_millis(k), &mut rng);
            while n.poll_action().is_some() {}
        }
        assert_eq!(n.take_trace().unwrap().len(), LIMIT);
        n.handle_timeout(S(1 << 20), &mut rng);
        assert!(n.take_trace().unwrap().is_empty());
    }
}
