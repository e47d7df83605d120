//! Admission of peers by membership credential, and revocation lists in force.

use gaiamesh_protocol::{identity::PublicKey, wire::Admission};
use libp2p::{
    PeerId,
    request_response::{self, Message},
};
use tracing::{debug, info, warn};

use super::EventLoop;
use gaiamesh_core::admission::AdmissionRefusal;

impl EventLoop {
    /// A newer revocation list is in force (the storage writer dropped the revoked members'
    /// entries): updates the DHT's trust, disconnects and blacklists connected revoked peers,
    /// and stores the list for restarts.
    pub(super) fn revocations_in_force(
        &mut self,
        list: &gaiamesh_protocol::federation::RevocationList,
        removed: usize,
    ) {
        self.recon.invalidate();
        let trust = self.catalogue.read().trust().clone();
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .set_trust(trust.clone());
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let revoked = PublicKey::from_peer_id(&peer)
                .ok()
                .and_then(|k| trust.revocation(&k).cloned());
            if let Some(r) = revoked {
                self.deny(peer, &format!("revoked: {}", r.reason));
            }
        }
        if let Ok(text) = list.to_toml()
            && let Err(e) = crate::datadir::write_atomic(
                &self.dir.root().join("revocations.toml"),
                text.as_bytes(),
            )
        {
            warn!(error = %e, "cannot store the revocation list");
        }
        self.revocation_list = Some(list.clone());
        self.emit(crate::daemon::events::NodeEvent::Revocations {
            version: list.body.version,
            removed_entries: removed,
        });
        info!(
            version = list.body.version,
            removed, "revocation list in force"
        );
    }

    /// Sends `peer` our credential; its answer carries its own.
    pub(super) fn request_admission(&mut self, peer: PeerId) {
        let msg = Admission {
            credential: self.credential.clone(),
        };
        self.swarm
            .behaviour_mut()
            .admission
            .send_request(&peer, msg);
    }

    pub(super) fn check_admission(
        &self,
        peer: &PeerId,
        msg: &Admission,
    ) -> Result<(), AdmissionRefusal> {
        let key = PublicKey::from_peer_id(peer)?;
        gaiamesh_core::admission::verdict(self.catalogue.read().trust(), &key, msg, self.now())
    }

    /// Carries out an admission the core decided (`NodeAction::Admit`): opens the gated
    /// protocols, lifts any ban, and tells every part of the node.
    pub(super) fn admit(&mut self, peer: PeerId) {
        info!(%peer, "peer admitted");
        self.bootstrap.forget_member(&peer);
        self.swarm.behaviour_mut().gate.lift(&peer);
        // Kademlia and identify answer it from now on (they run once its answer to our
        // admission request shows that it admitted us too: `on_admission`).
        let b = self.swarm.behaviour_mut();
        b.kad.open(peer);
        b.identify.open(peer);
        self.open_nat_protocols(peer);
        self.sync_admitted();
        self.fetch_bundle_from(peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, 0.0);
        self.kad_add_peer(peer);
        self.release_dht_writes(peer);
        crate::daemon::metrics::Metrics::count(&self.metrics.admissions, "admitted");
        self.emit(crate::daemon::events::NodeEvent::PeerAdmitted {
            peer_id: peer.to_string(),
        });
        if let Ok(k) = PublicKey::from_peer_id(&peer) {
            self.catalogue.read().touch(&k, self.now());
        }
        self.push_revocations(peer);
    }

    /// Hands the core the admission verdict on `peer` and carries out what follows.
    fn judge(&mut self, peer: PeerId, msg: &Admission) -> bool {
        let verdict = self.check_admission(&peer, msg);
        let ok = verdict.is_ok();
        let now = self.core_now();
        self.node
            .handle_admission(now, peer, verdict, &mut self.rng);
        self.run_node_actions();
        ok
    }

    /// Refuses `peer`: bans it and the addresses it connected from (its credential was
    /// checked and found wanting), blacklists it in gossipsub and disconnects it.
    pub(super) fn deny(&mut self, peer: PeerId, reason: &str) {
        let ban = self.swarm.behaviour_mut().gate.ban_refused(peer);
        info!(%peer, ban_secs = ban.as_secs(), "peer banned");
        self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        self.drop_peer(peer, reason);
    }

    /// Disconnects `peer` without blacklisting it: admission did not complete (timeout, a
    /// connection lost mid-handshake), which says nothing about its credential.
    pub(super) fn drop_peer(&mut self, peer: PeerId, reason: &str) {
        warn!(%peer, reason, "peer refused");
        crate::daemon::metrics::Metrics::count(&self.metrics.admissions, "refused");
        self.emit(crate::daemon::events::NodeEvent::PeerRefused {
            peer_id: peer.to_string(),
            reason: reason.to_owned(),
        });
        self.node.handle_dropped(&peer);
        self.sync_admitted();
        let b = self.swarm.behaviour_mut();
        b.kad.close(&peer);
        b.identify.close(&peer);
        b.kad.remove_peer(&peer);
        self.pending_dht.remove(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    pub(super) fn on_admission(&mut self, ev: request_response::Event<Admission, Admission>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                // Judged (and admitted) before it is answered: the answer then tells the
                // peer that our gated protocols accept it (see `daemon/gated.rs`). A refused
                // peer still gets our credential, then is banned and disconnected.
                let own = Admission {
                    credential: self.credential.clone(),
                };
                let verdict = self.check_admission(&peer, &request);
                let refused = verdict.is_err();
                if !refused {
                    let now = self.core_now();
                    self.node
                        .handle_admission(now, peer, verdict, &mut self.rng);
                    self.run_node_actions();
                }
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .admission
                    .send_response(channel, own);
                if refused {
                    self.judge(peer, &request);
                }
            }
            request_response::Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => {
                let admitted = self.judge(peer, &response);
                if admitted {
                    // It answered our request, so it has dealt with it; were we refused, it
                    // disconnects. Our Kademlia and identify may speak to it now.
                    let b = self.swarm.behaviour_mut();
                    b.kad.start(peer);
                    b.identify.start(peer);
                    self.start_nat_protocols(peer);
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                error: request_response::OutboundFailure::UnsupportedProtocols,
                ..
            } if self.node.is_pending(&peer) => {
                self.deny(peer, "does not speak the admission protocol");
            }
            request_response::Event::OutboundFailure { peer, error, .. }
                if self.node.is_pending(&peer) =>
            {
                // The connection failed under the handshake; if another connection is up,
                // ask again on it, otherwise the next connection runs admission afresh.
                debug!(%peer, error = %error, "admission request failed");
                let connected = self.swarm.is_connected(&peer);
                self.node.handle_admission_failure(peer, connected);
                self.run_node_actions();
            }
            _ => {}
        }
    }
}
