//! Behind NAT: reservations at relays, and relayed connections upgraded to direct ones.
//!
//! A node behind NAT cannot be dialled, so it names relays (`network.relays`: members with
//! `network.relay_server = true`). Once it has admitted a relay — and the relay it, so the
//! relay's gated server accepts its request — it listens through it (`/p2p-circuit`); the
//! relay hands its reservation out, identify announces the circuit address, and members
//! dial the node through the relay. On a relayed connection, once both sides admitted each
//! other, DCUtR exchanges the addresses each side was observed at and both dial at once,
//! which opens the NATs' mappings: the direct connection takes over. A lost reservation
//! (the relay restarted or was unreachable) is asked for again the next time the relay is
//! admitted — the core redials a lost relay like any member.
//!
//! What is counted (`GET /api/v1/status` `nat`, and metrics): reservations held, hole
//! punches that ended in a direct connection and those that failed, and how long each
//! successful one took from the relayed connection's establishment.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    time::Instant,
};

use libp2p::{
    Multiaddr, PeerId, core::transport::ListenerId, dcutr, metrics::Recorder, multiaddr::Protocol,
    relay,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::EventLoop;
use crate::daemon::events::NodeEvent;

/// Hole-punch durations, and peers punched or not, kept for the status (the newest).
const MAX_PUNCH_TIMES: usize = 256;
/// Relayed connections whose start is remembered at most (the oldest goes first).
const MAX_RELAYED: usize = 1024;

/// `nat` in `GET /api/v1/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NatStatus {
    /// Relays configured (`network.relays`).
    pub relays: usize,
    /// Relays this node holds a reservation at (reachable through them).
    pub reservations: usize,
    /// Relayed connections established (either direction).
    pub relayed_connections: u64,
    /// Hole punches that ended in a direct connection.
    pub hole_punched: u64,
    /// Hole punches that failed (every attempt). A pair with two relayed connections (each
    /// side dialled the other through the relay) punches on both; the second fails when
    /// the first already connected them directly, so count peers, below, not attempts.
    pub hole_punch_failed: u64,
    /// Peers this node punched a direct connection to (at most 256).
    #[serde(default)]
    pub punched_peers: Vec<String>,
    /// Peers every punch with failed, and none succeeded (at most 256).
    #[serde(default)]
    pub unpunched_peers: Vec<String>,
    /// How long the successful ones took from the relayed connection (ms, newest last, at
    /// most 256).
    pub hole_punch_ms: Vec<u64>,
}

/// The relays, the reservations and the hole punches.
#[derive(Debug)]
pub(crate) struct Nat {
    /// The relays' peer ids and addresses (as configured, with `/p2p/`).
    relays: Vec<(PeerId, Multiaddr)>,
    /// Circuit listeners opened, by relay.
    listening: HashMap<PeerId, ListenerId>,
    /// Relays that accepted a reservation (cleared when its listener closes).
    reserved: HashSet<PeerId>,
    /// When the relayed connection to a peer came up (for the hole punch's duration).
    relayed_since: VecDeque<(PeerId, Instant)>,
    relayed: u64,
    punched: u64,
    failed: u64,
    punch_ms: VecDeque<u64>,
    punched_peers: BTreeSet<PeerId>,
    unpunched_peers: BTreeSet<PeerId>,
}

/// A relay address in `network.relays` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayAddressError {
    /// Not a multiaddr.
    #[error("network.relays: {addr:?} is not a multiaddr: {reason}")]
    Malformed {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// No `/p2p/<peer id>` at its end.
    #[error("network.relays: {0:?} does not end with /p2p/<the relay's peer id>")]
    NoPeer(String),
}

impl Nat {
    /// The relays of `network.relays`.
    pub(crate) fn new(relays: &[String]) -> Result<Self, RelayAddressError> {
        let relays = relays
            .iter()
            .map(|a| {
                let addr: Multiaddr = a.parse().map_err(|e: libp2p::multiaddr::Error| {
                    RelayAddressError::Malformed {
                        addr: a.clone(),
                        reason: e.to_string(),
                    }
                })?;
                match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => Ok((peer, addr)),
                    _ => Err(RelayAddressError::NoPeer(a.clone())),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            relays,
            listening: HashMap::new(),
            reserved: HashSet::new(),
            relayed_since: VecDeque::new(),
            relayed: 0,
            punched: 0,
            failed: 0,
            punch_ms: VecDeque::new(),
            punched_peers: BTreeSet::new(),
            unpunched_peers: BTreeSet::new(),
        })
    }

    /// The relay's circuit address to listen on, when `peer` is one of our relays and no
    /// listener through it is open.
    fn circuit_to_open(&self, peer: &PeerId) -> Option<Multiaddr> {
        if self.listening.contains_key(peer) {
            return None;
        }
        self.relays
            .iter()
            .find(|(p, _)| p == peer)
            .map(|(_, a)| a.clone().with(Protocol::P2pCircuit))
    }

    /// A connection to `peer` came up (`relayed`: through a relay).
    pub(crate) fn on_connection(&mut self, peer: PeerId, relayed: bool, now: Instant) {
        if !relayed {
            return;
        }
        self.relayed += 1;
        if self.relayed_since.len() >= MAX_RELAYED {
            self.relayed_since.pop_front();
        }
        self.relayed_since.retain(|(p, _)| *p != peer);
        self.relayed_since.push_back((peer, now));
    }

    /// The hole punch with `peer` ended in a direct connection at `now`: how long it took
    /// from the relayed connection, if that is known.
    fn punched(&mut self, peer: &PeerId, now: Instant) -> Option<u64> {
        self.punched += 1;
        self.unpunched_peers.remove(peer);
        if self.punched_peers.len() < MAX_PUNCH_TIMES {
            self.punched_peers.insert(*peer);
        }
        let i = self.relayed_since.iter().position(|(p, _)| p == peer)?;
        let (_, since) = self.relayed_since.remove(i)?;
        let ms =
            u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX);
        if self.punch_ms.len() >= MAX_PUNCH_TIMES {
            self.punch_ms.pop_front();
        }
        self.punch_ms.push_back(ms);
        Some(ms)
    }

    /// A listener closed: if it was a circuit, the reservation is gone.
    pub(crate) fn on_listener_closed(&mut self, id: ListenerId) -> Option<PeerId> {
        let relay = self
            .listening
            .iter()
            .find(|(_, l)| **l == id)
            .map(|(p, _)| *p)?;
        self.listening.remove(&relay);
        self.reserved.remove(&relay);
        Some(relay)
    }

    /// Every attempt to punch through to `peer` failed.
    fn failed(&mut self, peer: &PeerId) {
        self.failed += 1;
        if !self.punched_peers.contains(peer) && self.unpunched_peers.len() < MAX_PUNCH_TIMES {
            self.unpunched_peers.insert(*peer);
        }
    }

    pub(crate) fn status(&self) -> NatStatus {
        NatStatus {
            relays: self.relays.len(),
            reservations: self.reserved.len(),
            relayed_connections: self.relayed,
            hole_punched: self.punched,
            hole_punch_failed: self.failed,
            punched_peers: self.punched_peers.iter().map(ToString::to_string).collect(),
            unpunched_peers: self
                .unpunched_peers
                .iter()
                .map(ToString::to_string)
                .collect(),
            hole_punch_ms: self.punch_ms.iter().copied().collect(),
        }
    }
}

/// Whether `addr` goes through a relay.
pub(crate) fn is_circuit(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| p == Protocol::P2pCircuit)
}

impl EventLoop {
    /// `peer` and this node admitted each other: open the gated relay and hole-punching
    /// protocols to it, and if it is one of our relays, reserve a slot there.
    pub(super) fn start_nat_protocols(&mut self, peer: PeerId) {
        self.nat_gates(peer, true);
        if let Some(circuit) = self.nat.circuit_to_open(&peer) {
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    info!(relay = %peer, %circuit, "reserving a slot at the relay");
                    self.nat.listening.insert(peer, id);
                }
                Err(e) => warn!(relay = %peer, error = %e, "cannot listen through the relay"),
            }
        }
    }

    /// This node admitted `peer`: its relay and hole-punching streams are accepted.
    pub(super) fn open_nat_protocols(&mut self, peer: PeerId) {
        self.nat_gates(peer, false);
    }

    /// Opens (or, with `start`, starts) the relay server's and DCUtR's gates to `peer`.
    fn nat_gates(&mut self, peer: PeerId, start: bool) {
        let b = self.swarm.behaviour_mut();
        if let Some(r) = b.relay.as_mut() {
            if start { r.start(peer) } else { r.open(peer) }
        }
        if let Some(d) = b.dcutr.as_mut() {
            if start { d.start(peer) } else { d.open(peer) }
        }
    }

    pub(super) fn on_relay_client(&mut self, ev: relay::client::Event) {
        match ev {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal,
                ..
            } => {
                if !renewal {
                    info!(relay = %relay_peer_id, "reachable through the relay");
                }
                if self.nat.listening.contains_key(&relay_peer_id) {
                    self.nat.reserved.insert(relay_peer_id);
                }
                self.emit(NodeEvent::RelayReservation {
                    relay: relay_peer_id.to_string(),
                });
            }
            relay::client::Event::OutboundCircuitEstablished { relay_peer_id, .. } => {
                tracing::debug!(relay = %relay_peer_id, "outbound circuit");
            }
            relay::client::Event::InboundCircuitEstablished { src_peer_id, .. } => {
                tracing::debug!(peer = %src_peer_id, "inbound circuit");
            }
        }
    }

    pub(super) fn on_relay_server(&mut self, ev: relay::Event) {
        self.metrics.libp2p.record(&ev);
        match ev {
            relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                info!(peer = %src_peer_id, "relaying for a member");
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => tracing::debug!(src = %src_peer_id, dst = %dst_peer_id, "circuit relayed"),
            other => tracing::debug!(event = ?other, "relay"),
        }
    }

    pub(super) fn on_dcutr(&mut self, ev: dcutr::Event) {
        self.metrics.libp2p.record(&ev);
        let peer = ev.remote_peer_id;
        match ev.result {
            Ok(_) => {
                let ms = self.nat.punched(&peer, Instant::now());
                info!(%peer, ms, "hole punched: direct connection");
                crate::daemon::metrics::Metrics::count(&self.metrics.hole_punches, "direct");
                self.emit(NodeEvent::HolePunched {
                    peer_id: peer.to_string(),
                    ms,
                });
            }
            Err(e) => {
                self.nat.failed(&peer);
                warn!(%peer, error = %e, "hole punching failed; staying relayed");
                crate::daemon::metrics::Metrics::count(&self.metrics.hole_punches, "failed");
            }
        }
    }

    /// A relay's reservation ended with its listener.
    pub(super) fn on_listener_closed(&mut self, id: ListenerId) {
        if let Some(relay) = self.nat.on_listener_closed(id) {
            warn!(%relay, "reservation at the relay lost; asked again when it is re-admitted");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn relays_need_their_peer_id_and_get_one_circuit_each() {
        let ok = format!("/ip4/10.0.0.1/udp/7400/quic-v1/p2p/{RELAY}");
        let mut nat = Nat::new(std::slice::from_ref(&ok)).unwrap();
        let relay: PeerId = RELAY.parse().unwrap();
        let circuit = nat.circuit_to_open(&relay).unwrap();
        assert!(is_circuit(&circuit));
        assert_eq!(circuit.to_string(), format!("{ok}/p2p-circuit"));
        assert!(nat.circuit_to_open(&PeerId::random()).is_none());
        nat.listening.insert(relay, ListenerId::next());
        assert!(
            nat.circuit_to_open(&relay).is_none(),
            "one listener per relay"
        );
        let err = Nat::new(&["/ip4/10.0.0.1/udp/7400/quic-v1".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("/p2p/"), "{err}");
        let err = Nat::new(&["10.0.0.1:7400".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("not a multiaddr"), "{err}");
    }

    #[test]
    fn a_closed_circuit_listener_loses_the_reservation_and_reopens() {
        let mut nat = Nat::new(&[format!("/ip4/10.0.0.1/tcp/7400/p2p/{RELAY}")]).unwrap();
        let relay: PeerId = RELAY.parse().unwrap();
        let id = ListenerId::next();
        nat.listening.insert(relay, id);
        nat.reserved.insert(relay);
        assert_eq!(nat.status().reservations, 1);
        assert_eq!(nat.on_listener_closed(ListenerId::next()), None);
        assert_eq!(nat.on_listener_closed(id), Some(relay));
        assert_eq!(nat.status().reservations, 0);
        assert!(nat.circuit_to_open(&relay).is_some());
    }

    #[test]
    fn hole_punch_times_run_from_the_relayed_connection() {
        let mut nat = Nat::new(&[]).unwrap();
        let (a, b) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        nat.on_connection(a, true, t0);
        nat.on_connection(b, false, t0);
        assert_eq!(
            nat.punched(&a, t0 + std::time::Duration::from_millis(340)),
            Some(340)
        );
        // No relayed connection known: counted, no duration.
        assert_eq!(nat.punched(&b, t0), None);
        // A second relayed connection's punch fails once the pair is direct: the peer
        // stays punched.
        nat.failed(&a);
        let c = PeerId::random();
        nat.failed(&c);
        let s = nat.status();
        assert_eq!((s.relayed_connections, s.hole_punched), (1, 2));
        assert_eq!(s.hole_punch_ms, vec![340]);
        assert_eq!(s.hole_punch_failed, 2);
        assert_eq!(s.punched_peers.len(), 2);
        assert_eq!(s.unpunched_peers, vec![c.to_string()]);
        for _ in 0..MAX_RELAYED + 5 {
            nat.on_connection(PeerId::random(), true, t0);
        }
        assert_eq!(nat.relayed_since.len(), MAX_RELAYED);
    }
}
