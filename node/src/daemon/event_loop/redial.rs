//! Redialling: the bootstrap peers while the node is alone, and lost members.
//!
//! A node dials its bootstrap addresses once at start-up. If that connection is lost — the
//! peer restarted, or the admission handshake ran past its 2 s deadline on a loaded
//! machine — and the node never learnt another peer, nothing would ever dial again: the
//! node would sit outside its federation until restarted. While it has no connection, it
//! dials the bootstrap addresses again with exponential backoff (1 s doubling to 60 s),
//! reset as soon as a peer is admitted.
//!
//! A member whose last connection closed (a partition longer than QUIC's idle timeout, a
//! restart, a link down) is dialled again when the node core decides so
//! ([`gaiamesh_core::node::Action::Redial`], its backoff and its bound); this module keeps the
//! addresses the member announced, so the dial does not depend on what Kademlia still holds.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libp2p::{
    Multiaddr, PeerId,
    swarm::dial_opts::{DialOpts, PeerCondition},
};
use tracing::info;

use super::EventLoop;

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The bootstrap addresses and when to dial them next, and the addresses of lost members.
#[derive(Debug)]
pub(crate) struct Redial {
    addrs: Vec<Multiaddr>,
    backoff: Duration,
    next: Instant,
    /// Lost members' announced addresses, at most [`gaiamesh_core::node::MAX_LOST`].
    members: HashMap<PeerId, Vec<Multiaddr>>,
}

impl Redial {
    pub(crate) fn new(addrs: Vec<Multiaddr>) -> Self {
        Self {
            addrs,
            backoff: FIRST_BACKOFF,
            next: Instant::now() + FIRST_BACKOFF,
            members: HashMap::new(),
        }
    }

    /// Keeps a lost member's addresses for its redials (an arbitrary one goes when full: the
    /// core gives up on the oldest likewise, and a dial without addresses still asks
    /// Kademlia's routing table).
    pub(crate) fn keep_member(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        if !self.members.contains_key(&peer)
            && self.members.len() >= gaiamesh_core::node::MAX_LOST
            && let Some(any) = self.members.keys().next().copied()
        {
            self.members.remove(&any);
        }
        self.members.insert(peer, addrs);
    }

    /// The member is back.
    pub(crate) fn forget_member(&mut self, peer: &PeerId) {
        self.members.remove(peer);
    }

    /// Whether to dial now (the node being alone); schedules the next attempt.
    fn due(&mut self, alone: bool, now: Instant) -> bool {
        if !alone {
            self.backoff = FIRST_BACKOFF;
            self.next = now + FIRST_BACKOFF;
            return false;
        }
        if self.addrs.is_empty() || now < self.next {
            return false;
        }
        self.next = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }
}

impl EventLoop {
    /// Dials a lost member again (the core's decision), at the addresses it announced and
    /// those the behaviours know; nothing when a connection or a dial to it is under way.
    pub(super) fn redial_member(&mut self, peer: PeerId) {
        let addrs = self
            .bootstrap
            .members
            .get(&peer)
            .cloned()
            .unwrap_or_default();
        info!(%peer, addrs = addrs.len(), "dialling a lost member again");
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .addresses(addrs)
            .extend_addresses_through_behaviour()
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, error = %e, "redial of a lost member failed");
        }
    }

    /// Dials the bootstrap addresses again when the node has no connection and none is
    /// being set up.
    pub(super) fn redial_bootstrap(&mut self) {
        let alone =
            self.swarm.connected_peers().next().is_none() && self.node.admitted().next().is_none();
        if !self.bootstrap.due(alone, Instant::now()) {
            return;
        }
        info!(
            addrs = self.bootstrap.addrs.len(),
            "no peers: dialling the bootstrap peers again"
        );
        for a in self.bootstrap.addrs.clone() {
            if let Err(e) = self.swarm.dial(a.clone()) {
                tracing::debug!(addr = %a, error = %e, "bootstrap redial failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_while_alone_and_resets_when_connected() {
        let addr: Multiaddr = "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap();
        let mut r = Redial::new(vec![addr]);
        let t0 = Instant::now();
        assert!(!r.due(true, t0), "not before the first backoff");
        let t1 = t0 + Duration::from_secs(1);
        assert!(r.due(true, t1));
        assert!(!r.due(true, t1 + Duration::from_millis(900)));
        assert!(r.due(true, t1 + Duration::from_secs(1)));
        // Now 2 s, then 4 s.
        let t2 = t1 + Duration::from_secs(1);
        assert!(!r.due(true, t2 + Duration::from_millis(1900)));
        assert!(r.due(true, t2 + Duration::from_secs(2)));
        // Connected: nothing to do, and the backoff starts over.
        assert!(!r.due(false, t2 + Duration::from_secs(3)));
        assert_eq!(r.backoff, FIRST_BACKOFF);
        assert!(r.due(true, t2 + Duration::from_secs(4)));
    }

    #[test]
    fn lost_members_addresses_are_bounded() {
        let mut r = Redial::new(vec![]);
        let addr: Multiaddr = "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap();
        let first = PeerId::random();
        r.keep_member(first, vec![addr.clone()]);
        for _ in 0..gaiamesh_core::node::MAX_LOST + 10 {
            r.keep_member(PeerId::random(), vec![addr.clone()]);
        }
        assert_eq!(r.members.len(), gaiamesh_core::node::MAX_LOST);
        let p = PeerId::random();
        r.keep_member(p, vec![]);
        r.forget_member(&p);
        assert!(!r.members.contains_key(&p));
    }

    #[test]
    fn never_due_without_addresses() {
        let mut r = Redial::new(vec![]);
        assert!(!r.due(true, Instant::now() + Duration::from_secs(120)));
    }
}
