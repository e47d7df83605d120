//! Keeping the catalogue in sync: gossip validation, reconciliation rounds, fetch and push.

use gaiamesh_core::ingest::GossipVerdict;
use gaiamesh_directory::{
    merge::MergeOutcome,
    reconcile::{Initiator, ReconcileSet, respond},
};
use gaiamesh_protocol::{
    identity::PublicKey,
    reconcile::ShortId,
    sd::SignedSelfDescription,
    wire::{DirectoryRequest, DirectoryResponse, MAX_RECORDS_PER_MESSAGE},
};
use libp2p::{
    PeerId, gossipsub,
    request_response::{self, Message},
};
use rand::Rng;
use tracing::{debug, warn};

use super::EventLoop;
use crate::daemon::{events::NodeEvent, metrics::Metrics};

/// The metric label of a merge outcome.
fn outcome_name(o: &MergeOutcome) -> &'static str {
    match o {
        MergeOutcome::Inserted => "inserted",
        MergeOutcome::Replaced { .. } => "replaced",
        MergeOutcome::Duplicate => "duplicate",
        MergeOutcome::Stale { .. } => "stale",
        MergeOutcome::Equivocation { .. } => "equivocation",
        MergeOutcome::Rejected(_) => "rejected",
        MergeOutcome::CatalogueFull => "catalogue_full",
        _ => "other",
    }
}

impl EventLoop {
    /// Anti-entropy for revocations: after a reconciliation round, hands the peer our list
    /// once per version and connection (it applies it only if newer), so a list missed on
    /// gossip still reaches every node.
    pub(super) fn push_revocations(&mut self, peer: PeerId) {
        let Some(list) = &self.revocation_list else {
            return;
        };
        let version = list.body.version;
        if self
            .revocations_pushed
            .get(&peer)
            .is_some_and(|v| *v >= version)
        {
            return;
        }
        tracing::info!(%peer, version, "handing over the revocation list");
        let request = DirectoryRequest::Revocations(Box::new(list.clone()));
        self.swarm
            .behaviour_mut()
            .directory
            .send_request(&peer, request);
        self.revocations_pushed.insert(peer, version);
    }

    pub(super) fn merge_from(
        &mut self,
        records: Vec<SignedSelfDescription>,
        peer: &PeerId,
    ) -> Vec<MergeOutcome> {
        let from = PublicKey::from_peer_id(peer).ok();
        let versions: Vec<(PublicKey, u64)> =
            records.iter().map(|r| (r.sd.subject, r.sd.seq)).collect();
        match self
            .catalogue
            .merge_batch(records.into_iter().map(|r| (r, from)).collect(), self.now())
        {
            Ok(outs) => {
                if outs.iter().any(MergeOutcome::changed) {
                    self.recon_cache = None;
                }
                for (o, (subject, seq)) in outs.iter().zip(&versions) {
                    Metrics::count(&self.metrics.merges, outcome_name(o));
                    if o.penalise() {
                        warn!(%peer, outcome = ?o, "peer sent an invalid record");
                        self.emit(NodeEvent::SdRejected {
                            from: peer.to_string(),
                            reason: match o {
                                MergeOutcome::Rejected(e) => e.to_string(),
                                other => format!("{other:?}"),
                            },
                        });
                    }
                    if o.changed() {
                        self.emit(NodeEvent::SdStored {
                            subject: subject.to_string(),
                            seq: *seq,
                            outcome: outcome_name(o),
                            from: Some(peer.to_string()),
                            received_at_ms: self.now().0,
                        });
                    }
                }
                outs
            }
            Err(e) => {
                warn!(error = %e, "catalogue write failed");
                vec![]
            }
        }
    }

    /// The catalogue's reconciliation snapshot, shared by every session until the catalogue
    /// changes (sessions hold an `Arc`, not a copy of up to a million items each).
    pub(super) fn recon_set(&mut self) -> std::sync::Arc<ReconcileSet> {
        self.recon_cache
            .get_or_insert_with(|| std::sync::Arc::new(self.catalogue.reconcile_set()))
            .clone()
    }

    pub(super) fn reconcile_with_random_peer(&mut self) {
        let peers: Vec<PeerId> = self
            .admitted
            .iter()
            .filter(|p| !self.sessions.contains_key(p))
            .copied()
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[self.rng.gen_range(0..peers.len())];
        self.start_reconcile(peer);
    }

    pub(super) fn start_reconcile(&mut self, peer: PeerId) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        let (init, msg) = Initiator::start(self.recon_set());
        self.sessions.insert(peer, init);
        self.swarm
            .behaviour_mut()
            .directory
            .send_request(&peer, DirectoryRequest::Reconcile(msg));
    }

    pub(super) fn on_reconcile_reply(
        &mut self,
        peer: PeerId,
        reply: gaiamesh_protocol::reconcile::ReconcileMessage,
    ) {
        let Some(mut init) = self.sessions.remove(&peer) else {
            return;
        };
        match init.handle(&reply) {
            Ok(Some(next)) => {
                self.sessions.insert(peer, init);
                self.swarm
                    .behaviour_mut()
                    .directory
                    .send_request(&peer, DirectoryRequest::Reconcile(next));
            }
            Ok(None) => {
                self.push_revocations(peer);
                let need: Vec<ShortId> = init.need().copied().collect();
                let have: Vec<[u8; 32]> = init.have().copied().collect();
                debug!(%peer, need = need.len(), have = have.len(), rounds = init.rounds(), "reconciled");
                for chunk in need.chunks(MAX_RECORDS_PER_MESSAGE) {
                    self.swarm
                        .behaviour_mut()
                        .directory
                        .send_request(&peer, DirectoryRequest::Fetch(chunk.to_vec()));
                }
                let records: Vec<SignedSelfDescription> = have
                    .iter()
                    .filter_map(|k| PublicKey::from_bytes(k).ok())
                    .filter_map(|s| self.catalogue.get(&s).ok().flatten())
                    .map(|e| e.record)
                    .collect();
                for chunk in records.chunks(MAX_RECORDS_PER_MESSAGE) {
                    self.swarm
                        .behaviour_mut()
                        .directory
                        .send_request(&peer, DirectoryRequest::Push(chunk.to_vec()));
                }
            }
            Err(e) => warn!(%peer, error = %e, "reconciliation failed"),
        }
    }

    pub(super) fn on_directory_request(
        &mut self,
        peer: PeerId,
        req: DirectoryRequest,
    ) -> DirectoryResponse {
        if !self.admitted.contains(&peer) {
            return DirectoryResponse::Refused("not admitted".into());
        }
        if self.light && !matches!(req, DirectoryRequest::Revocations(_)) {
            return DirectoryResponse::Refused("a light node keeps no directory replica".into());
        }
        match req {
            DirectoryRequest::Reconcile(msg) => {
                // The responder hands over its revocation list too, so a node that only ever
                // initiates (one peer) still learns about revocations.
                self.push_revocations(peer);
                match respond(&self.recon_set(), &msg) {
                    Ok(reply) => DirectoryResponse::Reconcile(reply),
                    Err(e) => DirectoryResponse::Refused(e.to_string()),
                }
            }
            DirectoryRequest::Fetch(ids) => {
                let set = self.recon_set();
                let records = ids
                    .iter()
                    .filter_map(|id| set.find_short(id))
                    .filter_map(|item| PublicKey::from_bytes(&item.key).ok())
                    .filter_map(|s| self.catalogue.get(&s).ok().flatten())
                    .map(|e| e.record)
                    .collect();
                DirectoryResponse::Records(records)
            }
            DirectoryRequest::Push(records) => {
                self.merge_from(records, &peer);
                DirectoryResponse::Ack
            }
            DirectoryRequest::Revocations(list) => match self.apply_revocations(&list) {
                Ok(_) => DirectoryResponse::Ack,
                Err(e) => {
                    warn!(%peer, error = %e, "peer sent an invalid revocation list");
                    DirectoryResponse::Refused(e.to_string())
                }
            },
        }
    }

    pub(super) fn on_directory(
        &mut self,
        ev: request_response::Event<DirectoryRequest, DirectoryResponse>,
    ) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = self.on_directory_request(peer, request);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .directory
                    .send_response(channel, response);
            }
            request_response::Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => match response {
                DirectoryResponse::Reconcile(reply) => self.on_reconcile_reply(peer, reply),
                DirectoryResponse::Records(records) => {
                    self.merge_from(records, &peer);
                }
                DirectoryResponse::Ack => {}
                DirectoryResponse::Refused(reason) => {
                    debug!(%peer, reason, "directory request refused");
                    self.sessions.remove(&peer);
                    // A refused revocation push (peer had not admitted us yet) is retried.
                    self.revocations_pushed.remove(&peer);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "directory request failed");
                self.sessions.remove(&peer);
                self.revocations_pushed.remove(&peer);
            }
            _ => {}
        }
    }

    pub(super) fn on_gossip(
        &mut self,
        source: PeerId,
        id: gossipsub::MessageId,
        message: gossipsub::Message,
    ) {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        let verdict = if !self.admitted.contains(&source) {
            Reject
        } else if message.topic == self.revocations.hash() {
            match gaiamesh_protocol::federation::RevocationList::decode(&message.data) {
                // An old or equal version is not news; a forged one is the sender's fault.
                Ok(list) if list.body.version <= self.catalogue.trust().revocation_version() => {
                    Ignore
                }
                Ok(list) => match self.apply_revocations(&list) {
                    Ok(_) => Accept,
                    Err(_) => Reject,
                },
                Err(_) => Reject,
            }
        } else if message.topic == self.repo.topic.hash() {
            self.on_repo_gossip(source, &message)
        } else if message.topic == self.presence.hash() {
            // The author (not the forwarder) is present; strict signing authenticated it.
            match (
                message.source.as_ref().map(PublicKey::from_peer_id),
                message.data.len(),
            ) {
                (Some(Ok(author)), 8) => {
                    self.catalogue.touch(&author, self.now());
                    Accept
                }
                _ => Reject,
            }
        } else {
            let started = std::time::Instant::now();
            match SignedSelfDescription::decode(&message.data) {
                Err(e) => {
                    warn!(peer = %source, error = %e, "undecodable gossip");
                    Reject
                }
                Ok(record) => {
                    if self.cpu_at_ingest
                        && let Some(ns) = crate::cpu::process_cpu_ns(None)
                    {
                        // Read where `received_at_ms` is taken, before the merge.
                        self.metrics.sd_stored_cpu.set(ns as f64 / 1e9);
                    }
                    let subject = record.sd.subject;
                    let outcome = self.merge_from(vec![record], &source).pop();
                    self.metrics
                        .sd_ingest
                        .observe(started.elapsed().as_secs_f64());
                    let from_subject = PublicKey::from_peer_id(&source).ok() == Some(subject);
                    match outcome.map(|o| GossipVerdict::of(&o, from_subject)) {
                        Some(GossipVerdict::Accept) => Accept,
                        Some(GossipVerdict::Reject) => Reject,
                        Some(GossipVerdict::Ignore) | None => Ignore,
                    }
                }
            }
        };
        Metrics::count(
            &self.metrics.gossip,
            match verdict {
                Accept => "accept",
                Reject => "reject",
                Ignore => "ignore",
            },
        );
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, verdict);
    }
}
