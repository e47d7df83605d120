//! Keeping the catalogue in sync: gossip validation, reconciliation rounds, fetch and push.

use gaiamesh_directory::reconcile::{Initiator, ReconcileSet, respond};
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
use tracing::{debug, warn};

use crate::daemon::metrics::{Direction, Outcome};

use super::{
    EventLoop,
    recon_snapshot::{Use, Waiting},
    stored::Tag,
};

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

    /// Runs `user` with the catalogue's reconciliation set: now if it is current, or once
    /// a build on a blocking thread finishes (`recon_snapshot.rs`).
    fn with_recon_set(&mut self, user: Waiting) {
        match self.recon.get(user) {
            Use::Now(set, user) => self.use_recon_set(&set, user),
            Use::Build(generation) => {
                let catalogue = self.catalogue.clone();
                let tx = self.loaded.tx.clone();
                tokio::task::spawn_blocking(move || {
                    let set = std::sync::Arc::new(catalogue.read().reconcile_set());
                    let _ = tx.blocking_send(Loaded::ReconSet(generation, set));
                });
            }
            Use::Queued => {}
            Use::Full(user) => {
                debug!("too many wait for the reconciliation set; refused");
                self.refuse_waiting(user);
            }
        }
    }

    /// A reconciliation set is built: everyone who waited for it uses it.
    fn on_recon_set(&mut self, generation: u64, set: std::sync::Arc<ReconcileSet>) {
        let (set, waiting) = self.recon.built(generation, set);
        for user in waiting {
            self.use_recon_set(&set, user);
        }
    }

    fn use_recon_set(&mut self, set: &std::sync::Arc<ReconcileSet>, user: Waiting) {
        match user {
            Waiting::Start(peer) => {
                if self.sessions.contains_key(&peer) {
                    return;
                }
                // A fresh random salt per session (fingerprints cannot be prepared to collide).
                let (init, msg) = Initiator::start(set.clone(), rand::random());
                self.sessions.insert(peer, init);
                self.swarm
                    .behaviour_mut()
                    .directory
                    .send_request(&peer, DirectoryRequest::Reconcile(msg));
            }
            Waiting::Answer(DirectoryRequest::Reconcile(msg), channel) => {
                let response = match respond(set, &msg) {
                    Ok(reply) => DirectoryResponse::Reconcile(reply),
                    Err(e) => DirectoryResponse::Refused(e.to_string()),
                };
                self.answer_directory(channel, response);
            }
            Waiting::Answer(DirectoryRequest::Fetch(ids), channel) => {
                // Looked up in memory here, read from the store on a blocking thread
                // (`on_loaded` answers).
                let keys: Vec<PublicKey> = ids
                    .iter()
                    .filter_map(|id| set.find_short(id))
                    .filter_map(|item| PublicKey::from_bytes(&item.key).ok())
                    .collect();
                if self.loaded.reserve() {
                    self.spawn_load(keys, move |r| Loaded::Answer(channel, r));
                } else {
                    let busy = "busy: too many reads in flight; retry".into();
                    self.answer_directory(channel, DirectoryResponse::Refused(busy));
                }
            }
            // Only the two above wait for the set.
            Waiting::Answer(..) => {}
        }
    }

    /// A user the set's queue had no room for.
    fn refuse_waiting(&mut self, user: Waiting) {
        match user {
            // The core picks the peer again at a later round.
            Waiting::Start(peer) => self.node.set_reconciling(&peer, false),
            Waiting::Answer(_, channel) => {
                let busy = "busy: too many reconciliations; retry".into();
                self.answer_directory(channel, DirectoryResponse::Refused(busy));
            }
        }
    }

    pub(super) fn start_reconcile(&mut self, peer: PeerId) {
        if !self.sessions.contains_key(&peer) {
            self.with_recon_set(Waiting::Start(peer));
        }
    }

    pub(super) fn on_reconcile_reply(
        &mut self,
        peer: PeerId,
        reply: gaiamesh_protocol::reconcile::ReconcileMessage,
    ) {
        self.reconcile_step(peer, reply);
        if !self.sessions.contains_key(&peer) {
            // The session ended: the core may pick this peer again.
            self.node.set_reconciling(&peer, false);
        }
    }

    fn reconcile_step(
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
                let m = &self.metrics;
                m.reconciliations
                    .get_or_create(&Outcome { outcome: "done" })
                    .inc();
                for (direction, n) in [("need", need.len()), ("have", have.len())] {
                    m.reconciliation_differences
                        .get_or_create(&Direction { direction })
                        .inc_by(n as u64);
                }
                for chunk in need.chunks(MAX_RECORDS_PER_MESSAGE) {
                    self.swarm
                        .behaviour_mut()
                        .directory
                        .send_request(&peer, DirectoryRequest::Fetch(chunk.to_vec()));
                }
                // The records it lacks are read from the store on a blocking thread.
                let keys: Vec<PublicKey> = have
                    .iter()
                    .filter_map(|k| PublicKey::from_bytes(k).ok())
                    .collect();
                if !keys.is_empty() && !self.load(keys, move |r| Loaded::Push(peer, r)) {
                    debug!(%peer, "too many reads in flight; the next reconciliation pushes");
                }
            }
            Err(e) => {
                warn!(%peer, error = %e, "reconciliation failed");
                self.metrics
                    .reconciliations
                    .get_or_create(&Outcome { outcome: "failed" })
                    .inc();
            }
        }
    }

    /// Answers a peer's directory request, now or (revocation lists, which the storage
    /// writer applies) once done.
    pub(super) fn on_directory_request(
        &mut self,
        peer: PeerId,
        req: DirectoryRequest,
        channel: request_response::ResponseChannel<DirectoryResponse>,
    ) {
        let response = if !self.node.is_admitted(&peer) {
            DirectoryResponse::Refused("not admitted".into())
        } else if self.light && !matches!(req, DirectoryRequest::Revocations(_)) {
            DirectoryResponse::Refused("a light node keeps no directory replica".into())
        } else {
            match req {
                DirectoryRequest::Reconcile(msg) => {
                    // The responder hands over its revocation list too, so a node that only
                    // ever initiates (one peer) still learns about revocations.
                    self.push_revocations(peer);
                    let req = DirectoryRequest::Reconcile(msg);
                    return self.with_recon_set(Waiting::Answer(req, channel));
                }
                req @ DirectoryRequest::Fetch(_) => {
                    return self.with_recon_set(Waiting::Answer(req, channel));
                }
                DirectoryRequest::Push(records) => {
                    // Acknowledged once durable (`stored.rs`).
                    self.ingest(records, Tag::Pushed { peer, channel });
                    return;
                }
                DirectoryRequest::Revocations(list) => {
                    self.submit_revocations(*list, Tag::RevokeDirectory(channel));
                    return;
                }
            }
        };
        self.answer_directory(channel, response);
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
            } => self.on_directory_request(peer, request, channel),
            request_response::Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => match response {
                DirectoryResponse::Reconcile(reply) => self.on_reconcile_reply(peer, reply),
                DirectoryResponse::Records(records) => self.ingest(records, Tag::Peer(peer)),
                DirectoryResponse::Ack => {}
                DirectoryResponse::Refused(reason) => {
                    debug!(%peer, reason, "directory request refused");
                    self.sessions.remove(&peer);
                    self.node.set_reconciling(&peer, false);
                    // A refused revocation push (peer had not admitted us yet) is retried.
                    self.revocations_pushed.remove(&peer);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "directory request failed");
                self.sessions.remove(&peer);
                self.node.set_reconciling(&peer, false);
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
        let verdict = if !self.node.is_admitted(&source) {
            Reject
        } else if message.topic == self.revocations.hash() {
            match gaiamesh_protocol::federation::RevocationList::decode(&message.data) {
                // An old or equal version is not news; a forged one is the sender's fault.
                Ok(list)
                    if list.body.version <= self.catalogue.read().trust().revocation_version() =>
                {
                    Ignore
                }
                Ok(list) => {
                    let tag = Tag::RevokeGossip {
                        source,
                        message_id: id,
                    };
                    // Reported once the writer has applied (or refused) it.
                    return self.submit_revocations(list, tag);
                }
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
                    self.catalogue.read().touch(&author, self.now());
                    Accept
                }
                _ => Reject,
            }
        } else {
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
                    let tag = Tag::Gossip {
                        source,
                        message_id: id,
                        received: std::time::Instant::now(),
                    };
                    // Reported once the writer has merged it (durably, if it changed).
                    return self.ingest(vec![record], tag);
                }
            }
        };
        self.report(&id, &source, verdict);
    }
}

/// Reads of the store for peers that run at once at most; beyond, a fetch is refused (the
/// peer retries at its next reconciliation).
const MAX_READS_IN_FLIGHT: usize = 32;

/// Records read on a blocking thread, for the event loop to send.
pub(crate) enum Loaded {
    /// The answer to a peer's `Fetch`.
    Answer(
        request_response::ResponseChannel<DirectoryResponse>,
        Vec<SignedSelfDescription>,
    ),
    /// The records a reconciliation found the peer lacks.
    Push(PeerId, Vec<SignedSelfDescription>),
    /// The catalogue's reconciliation set, built at this generation (not a read of
    /// records: takes no read slot).
    ReconSet(u64, std::sync::Arc<ReconcileSet>),
}

/// The channel on which reads come back, and how many run.
pub(crate) struct Loads {
    tx: tokio::sync::mpsc::Sender<Loaded>,
    pub(crate) rx: tokio::sync::mpsc::Receiver<Loaded>,
    in_flight: usize,
}

impl Loads {
    pub(crate) fn new() -> Self {
        // Room for every read in flight: a finished read never waits to be delivered.
        let (tx, rx) = tokio::sync::mpsc::channel(MAX_READS_IN_FLIGHT);
        Self {
            tx,
            rx,
            in_flight: 0,
        }
    }

    /// Takes a slot for one read, if one is free.
    fn reserve(&mut self) -> bool {
        if self.in_flight >= MAX_READS_IN_FLIGHT {
            return false;
        }
        self.in_flight += 1;
        true
    }
}

impl EventLoop {
    /// Reads the records of `keys` from the store on a blocking thread; `then` says what
    /// to do with them back on the event loop. False if too many reads run already.
    fn load(
        &mut self,
        keys: Vec<PublicKey>,
        then: impl FnOnce(Vec<SignedSelfDescription>) -> Loaded + Send + 'static,
    ) -> bool {
        if !self.loaded.reserve() {
            return false;
        }
        self.spawn_load(keys, then);
        true
    }

    /// Runs a read whose slot is reserved.
    fn spawn_load(
        &mut self,
        keys: Vec<PublicKey>,
        then: impl FnOnce(Vec<SignedSelfDescription>) -> Loaded + Send + 'static,
    ) {
        let catalogue = self.catalogue.clone();
        let tx = self.loaded.tx.clone();
        tokio::task::spawn_blocking(move || {
            let records = {
                let cat = catalogue.read();
                keys.iter()
                    .filter_map(|s| cat.get(s).ok().flatten())
                    .map(|e| e.record)
                    .collect()
            };
            // The receiver lives as long as the event loop; after it, nobody waits.
            let _ = tx.blocking_send(then(records));
        });
    }

    /// A read is back: answers the fetch or pushes the records.
    pub(super) fn on_loaded(&mut self, loaded: Loaded) {
        if let Loaded::ReconSet(generation, set) = loaded {
            return self.on_recon_set(generation, set);
        }
        self.loaded.in_flight = self.loaded.in_flight.saturating_sub(1);
        match loaded {
            Loaded::Answer(channel, records) => {
                self.answer_directory(channel, DirectoryResponse::Records(records));
            }
            Loaded::Push(peer, records) => {
                for chunk in records.chunks(MAX_RECORDS_PER_MESSAGE) {
                    self.swarm
                        .behaviour_mut()
                        .directory
                        .send_request(&peer, DirectoryRequest::Push(chunk.to_vec()));
                }
            }
            Loaded::ReconSet(..) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_for_peers_are_bounded() {
        let mut l = Loads::new();
        for _ in 0..MAX_READS_IN_FLIGHT {
            assert!(l.reserve());
        }
        assert!(!l.reserve(), "a fetch beyond the bound is refused");
        // Every read in flight fits in the channel: a finished one never waits.
        assert_eq!(l.tx.capacity(), MAX_READS_IN_FLIGHT);
    }
}
