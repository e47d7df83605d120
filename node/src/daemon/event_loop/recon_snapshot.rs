//! The catalogue's reconciliation set, built on a blocking thread.
//!
//! Every reconciliation session and every `Fetch` answer needs the set of (subject, seq,
//! hash) items the catalogue holds; building it walks the whole catalogue (tens of ms at
//! 100k entries), so it never runs on the event loop. The set is shared by all sessions
//! (an `Arc`) until the catalogue changes; after a change the next user asks for a new
//! build and waits for it, so nobody works from a set older than its own request. While a
//! build runs, further users queue (at most [`MAX_WAITING`]; beyond, a peer's request is
//! refused as busy and our own session is left to the next round).

use std::{collections::VecDeque, sync::Arc};

use gaiamesh_directory::reconcile::ReconcileSet;
use gaiamesh_protocol::wire::{DirectoryRequest, DirectoryResponse};
use libp2p::{PeerId, request_response::ResponseChannel};

/// Users that may wait for one build.
pub(crate) const MAX_WAITING: usize = 256;

/// Who waits for the set.
pub(crate) enum Waiting {
    /// Our session with the peer.
    Start(PeerId),
    /// A peer's `Reconcile` or `Fetch` request.
    Answer(DirectoryRequest, ResponseChannel<DirectoryResponse>),
}

/// The latest set, whether the catalogue changed since it was built, and who waits.
#[derive(Default)]
pub(crate) struct ReconSnapshot {
    set: Option<Arc<ReconcileSet>>,
    /// Bumped on every catalogue change.
    generation: u64,
    /// The generation the latest set was built at.
    built_at: u64,
    /// The generation of the build running, if one is.
    building: Option<u64>,
    waiting: VecDeque<Waiting>,
}

/// What to do about a user of the set.
pub(crate) enum Use {
    /// The set is current: the user uses it now.
    Now(Arc<ReconcileSet>, Waiting),
    /// Queued; start a build at this generation (none runs yet).
    Build(u64),
    /// Queued behind the build that runs.
    Queued,
    /// Too many wait: the user is handed back.
    Full(Waiting),
}

impl ReconSnapshot {
    /// The catalogue changed: the set must be rebuilt before its next use.
    pub(crate) fn invalidate(&mut self) {
        self.generation += 1;
    }

    /// The set for `user`, or its place in the queue.
    pub(crate) fn get(&mut self, user: Waiting) -> Use {
        if let Some(set) = &self.set
            && self.built_at == self.generation
        {
            return Use::Now(set.clone(), user);
        }
        if self.waiting.len() >= MAX_WAITING {
            return Use::Full(user);
        }
        self.waiting.push_back(user);
        if self.building.is_some() {
            Use::Queued
        } else {
            self.building = Some(self.generation);
            Use::Build(self.generation)
        }
    }

    /// The build of `generation` finished: everyone waiting gets `set`, which was built
    /// after they asked. Returns it and them. If the catalogue changed while it ran, the
    /// next user asks for a new build.
    pub(crate) fn built(
        &mut self,
        generation: u64,
        set: Arc<ReconcileSet>,
    ) -> (Arc<ReconcileSet>, Vec<Waiting>) {
        self.building = None;
        self.set = Some(set.clone());
        self.built_at = generation;
        (set, self.waiting.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: u8) -> Arc<ReconcileSet> {
        Arc::new(ReconcileSet::new(
            (0..n)
                .map(|i| {
                    gaiamesh_directory::reconcile::Item::new(
                        &gaiamesh_protocol::identity::Keypair::generate().public(),
                        u64::from(i),
                        &[i; 32],
                    )
                })
                .collect(),
        ))
    }

    fn start() -> Waiting {
        Waiting::Start(PeerId::random())
    }

    #[test]
    fn one_build_serves_everyone_waiting_and_a_change_asks_for_another() {
        let mut s = ReconSnapshot::default();
        let Use::Build(g) = s.get(start()) else {
            panic!("the first user starts a build")
        };
        assert!(matches!(s.get(start()), Use::Queued));
        // A change while building: the waiting users still get this build's set.
        s.invalidate();
        let (built, waiting) = s.built(g, set(3));
        assert_eq!((built.len(), waiting.len()), (3, 2));
        // ... but a later user needs one built after the change.
        let Use::Build(g2) = s.get(start()) else {
            panic!("stale after the change")
        };
        assert!(g2 > g);
        let (_, waiting) = s.built(g2, set(4));
        assert_eq!(waiting.len(), 1);
        match s.get(start()) {
            Use::Now(set, _) => assert_eq!(set.len(), 4),
            _ => panic!("current: used at once"),
        }
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut s = ReconSnapshot::default();
        for _ in 0..MAX_WAITING {
            assert!(!matches!(s.get(start()), Use::Full(_)));
        }
        assert!(matches!(s.get(start()), Use::Full(Waiting::Start(_))));
    }
}
