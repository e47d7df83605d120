//! The one task that owns the swarm and the catalogue. Everything else talks to it through
//! [`super::Client`] commands on a bounded channel (rust-libp2p's file-sharing pattern).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::StreamExt;
use gaiamesh_directory::{
    catalogue::{Catalogue, QueryOptions},
    merge::MergeOutcome,
    query::Expr,
    reconcile::{Initiator, ReconcileSet, respond},
    store::RedbStore,
};
use gaiamesh_protocol::{
    federation::MembershipCredential,
    identity::{Keypair, PublicKey},
    reconcile::ShortId,
    sd::{SCHEMA_VERSION, SdDocument, SelfDescription, SignedSelfDescription},
    wire::{Admission, DirectoryRequest, DirectoryResponse, MAX_RECORDS_PER_MESSAGE},
};
use libp2p::{
    Multiaddr, PeerId, Swarm, gossipsub,
    request_response::{self, Message},
    swarm::SwarmEvent,
};
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{
    Command, EntryView, PeerView, QueryReply, Status,
    behaviour::{Behaviour, BehaviourEvent},
};
use crate::{datadir::DataDir, now};

/// How often a node announces its presence on `/gaiamesh/<fed>/presence/1`.
pub(crate) const PRESENCE_INTERVAL: Duration = Duration::from_secs(10);

/// A peer must complete admission within this long after connecting.
pub(crate) const ADMISSION_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) catalogue: Catalogue<RedbStore>,
    pub(crate) dir: DataDir,
    pub(crate) key: Keypair,
    pub(crate) credential: Option<MembershipCredential>,
    pub(crate) topic: gossipsub::IdentTopic,
    pub(crate) presence: gossipsub::IdentTopic,
    pub(crate) revocations: gossipsub::IdentTopic,
    pub(crate) reconcile_interval: Duration,
    pub(crate) validity_ms: u64,
    pub(crate) republish_before_ms: u64,
    pub(crate) pending_admission: HashMap<PeerId, Instant>,
    pub(crate) admitted: HashSet<PeerId>,
    pub(crate) sessions: HashMap<PeerId, Initiator>,
    pub(crate) recon_cache: Option<ReconcileSet>,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) own: Option<SignedSelfDescription>,
    pub(crate) rng: rand_chacha::ChaCha8Rng,
}

impl EventLoop {
    pub(crate) async fn run(mut self, document: Option<SdDocument>) {
        if let Some(doc) = document
            && let Err(e) = self.publish(doc)
        {
            warn!(error = %e, "cannot publish the node's self-description");
        }
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_reconcile = Instant::now();
        let mut last_sweep = Instant::now();
        let mut last_heartbeat = Instant::now() - PRESENCE_INTERVAL;
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => {
                    self.expire_admissions();
                    if last_reconcile.elapsed() >= self.reconcile_interval {
                        last_reconcile = Instant::now();
                        self.reconcile_with_random_peer();
                    }
                    if last_heartbeat.elapsed() >= PRESENCE_INTERVAL {
                        last_heartbeat = Instant::now();
                        self.heartbeat();
                    }
                    if last_sweep.elapsed() >= Duration::from_secs(60) {
                        last_sweep = Instant::now();
                        self.sweep_and_republish();
                    }
                }
            }
        }
        info!("event loop stopped");
    }

    fn now(&self) -> gaiamesh_protocol::time::UnixMillis {
        now()
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Query { expr, opts, reply } => {
                let _ = reply.send(self.query(&expr, opts));
            }
            Command::Show { subject, reply } => {
                let view = self
                    .catalogue
                    .get(&subject)
                    .ok()
                    .flatten()
                    .map(|e| EntryView {
                        subject: e.subject().to_string(),
                        seq: e.seq(),
                        received_at_ms: e.received_at.0,
                        from: e.from.map(|p| p.to_string()),
                        last_seen_ms: self.catalogue.last_seen(&e.subject()).map(|t| t.0),
                        document: serde_json::to_value(&e.record.sd.document).unwrap_or_default(),
                    });
                let _ = reply.send(view);
            }
            Command::Peers { reply } => {
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerView {
                        peer_id: p.to_string(),
                        admitted: self.admitted.contains(p),
                        last_seen_ms: PublicKey::from_peer_id(p)
                            .ok()
                            .and_then(|k| self.catalogue.last_seen(&k))
                            .map(|t| t.0),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Revoke { list, reply } => {
                let result = self.apply_revocations(&list);
                if result.is_ok()
                    && let Ok(bytes) = list.encode()
                {
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(self.revocations.clone(), bytes);
                }
                let _ = reply.send(result);
            }
            Command::Publish { document, reply } => {
                let doc = document
                    .map(|d| *d)
                    .or_else(|| self.own.as_ref().map(|o| o.sd.document.clone()));
                let result = match doc {
                    Some(d) => self.publish(d).map_err(|e| format!("{e:#}")),
                    None => Err(
                        "this node has no self-description yet; publish a document first".into(),
                    ),
                };
                let _ = reply.send(result);
            }
            Command::Shutdown => {}
        }
    }

    fn status(&self) -> Status {
        Status {
            peer_id: self.swarm.local_peer_id().to_string(),
            federation: self.catalogue.trust().id().to_string(),
            connected_peers: self.swarm.connected_peers().count(),
            admitted_peers: self.admitted.len(),
            directory_entries: self.catalogue.len(),
            listen_addrs: self.listen_addrs.iter().map(ToString::to_string).collect(),
            own_seq: self.own.as_ref().map(|o| o.sd.seq),
        }
    }

    fn query(&self, expr: &Expr, opts: QueryOptions) -> QueryReply {
        let out = self.catalogue.query(expr, opts, self.now());
        let matches = out
            .matches
            .iter()
            .filter_map(|m| {
                let e = self.catalogue.get(&m.subject).ok().flatten()?;
                let doc = &e.record.sd.document;
                Some(serde_json::json!({
                    "subject": m.subject.to_string(),
                    "seq": m.seq,
                    "legal_name": doc.participant.legal_name,
                    "country": doc.node.location.country,
                    "service": m.service_index.and_then(|i| doc.services.get(i)),
                }))
            })
            .collect();
        QueryReply {
            plan: out.plan.to_string(),
            total: out.total,
            examined: out.examined,
            matches,
        }
    }

    /// Signs `doc` with a fresh seq, stores it and gossips it.
    fn publish(&mut self, document: SdDocument) -> anyhow::Result<u64> {
        let issued_at = self.now();
        let seq = (self.dir.last_seq()? + 1).max(issued_at.0);
        let sd = SelfDescription {
            schema_version: SCHEMA_VERSION,
            subject: self.key.public(),
            federation: self.catalogue.trust().id(),
            seq,
            issued_at,
            expires_at: issued_at.plus_ms(self.validity_ms),
            document,
            membership: self.credential.clone(),
            attestations: self
                .own
                .as_ref()
                .map(|o| o.sd.attestations.clone())
                .unwrap_or_default(),
        };
        let signed = sd.sign(&self.key)?;
        let outcome = self.catalogue.merge(signed.clone(), None, issued_at)?;
        if let MergeOutcome::Rejected(e) = outcome {
            anyhow::bail!("the federation would refuse this self-description: {e}");
        }
        self.dir.record_seq(seq)?;
        self.recon_cache = None;
        self.gossip(&signed);
        info!(seq, "published own self-description");
        self.own = Some(signed);
        Ok(seq)
    }

    fn gossip(&mut self, record: &SignedSelfDescription) {
        let Ok(bytes) = record.encode() else { return };
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) => {}
            // No mesh peers yet: reconciliation will carry the record.
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => debug!("no gossip peers yet"),
            Err(e) => debug!(error = %e, "gossip publish failed"),
        }
    }

    /// Announces presence: a gossipsub message signed by the node key (strict signing), whose
    /// data is the current time so every heartbeat has a new message id.
    fn heartbeat(&mut self) {
        let now = self.now();
        self.catalogue.touch(&self.key.public(), now);
        let data = now.0.to_be_bytes().to_vec();
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.presence.clone(), data);
    }

    fn sweep_and_republish(&mut self) {
        match self.catalogue.sweep(self.now()) {
            Ok(0) => {}
            Ok(n) => {
                self.recon_cache = None;
                info!(removed = n, "swept expired or revoked entries");
            }
            Err(e) => warn!(error = %e, "sweep failed"),
        }
        let due = self
            .own
            .as_ref()
            .is_some_and(|o| self.now().0 + self.republish_before_ms >= o.sd.expires_at.0);
        if due
            && let Some(doc) = self.own.as_ref().map(|o| o.sd.document.clone())
            && let Err(e) = self.publish(doc)
        {
            warn!(error = %e, "re-publishing before expiry failed");
        }
    }

    fn merge_from(
        &mut self,
        records: Vec<SignedSelfDescription>,
        peer: &PeerId,
    ) -> Vec<MergeOutcome> {
        let from = PublicKey::from_peer_id(peer).ok();
        match self
            .catalogue
            .merge_batch(records.into_iter().map(|r| (r, from)).collect(), self.now())
        {
            Ok(outs) => {
                if outs.iter().any(MergeOutcome::changed) {
                    self.recon_cache = None;
                }
                for o in outs.iter().filter(|o| o.penalise()) {
                    warn!(%peer, outcome = ?o, "peer sent an invalid record");
                }
                outs
            }
            Err(e) => {
                warn!(error = %e, "catalogue write failed");
                vec![]
            }
        }
    }

    fn recon_set(&mut self) -> &ReconcileSet {
        if self.recon_cache.is_none() {
            self.recon_cache = Some(self.catalogue.reconcile_set());
        }
        self.recon_cache.get_or_insert_with(ReconcileSet::default)
    }

    /// Puts a newer revocation list in force: drops revoked members' entries, disconnects and
    /// blacklists connected revoked peers, and stores the list for restarts.
    fn apply_revocations(
        &mut self,
        list: &gaiamesh_protocol::federation::RevocationList,
    ) -> Result<usize, String> {
        let removed = self
            .catalogue
            .apply_revocations(list, self.now())
            .map_err(|e| e.to_string())?;
        self.recon_cache = None;
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in connected {
            let revoked = PublicKey::from_peer_id(&peer)
                .ok()
                .and_then(|k| self.catalogue.trust().revocation(&k).cloned());
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
        info!(
            version = list.body.version,
            removed, "revocation list in force"
        );
        Ok(removed)
    }

    // --- admission ---

    fn check_admission(&self, peer: &PeerId, msg: &Admission) -> Result<(), String> {
        let key = PublicKey::from_peer_id(peer).map_err(|e| e.to_string())?;
        let trust = self.catalogue.trust();
        match &msg.credential {
            Some(c) => trust
                .verify_credential(c, Some(&key), self.now())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None if trust.genesis().policy.require_membership => {
                Err("no membership credential".into())
            }
            None => Ok(()),
        }
    }

    fn admit(&mut self, peer: PeerId) {
        if self.pending_admission.remove(&peer).is_some() || !self.admitted.contains(&peer) {
            info!(%peer, "peer admitted");
            self.admitted.insert(peer);
            if let Ok(k) = PublicKey::from_peer_id(&peer) {
                self.catalogue.touch(&k, self.now());
            }
            self.start_reconcile(peer);
        }
    }

    fn deny(&mut self, peer: PeerId, reason: &str) {
        warn!(%peer, reason, "peer refused");
        self.pending_admission.remove(&peer);
        self.admitted.remove(&peer);
        self.swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn expire_admissions(&mut self) {
        let late: Vec<PeerId> = self
            .pending_admission
            .iter()
            .filter(|(_, t)| t.elapsed() > ADMISSION_TIMEOUT)
            .map(|(p, _)| *p)
            .collect();
        for p in late {
            self.deny(p, "no valid admission within 2 s");
        }
    }

    // --- reconciliation ---

    fn reconcile_with_random_peer(&mut self) {
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

    fn start_reconcile(&mut self, peer: PeerId) {
        if self.sessions.contains_key(&peer) {
            return;
        }
        let set = self.recon_set().clone();
        let (init, msg) = Initiator::start(set);
        self.sessions.insert(peer, init);
        self.swarm
            .behaviour_mut()
            .directory
            .send_request(&peer, DirectoryRequest::Reconcile(msg));
    }

    fn on_reconcile_reply(
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

    fn on_directory_request(&mut self, peer: PeerId, req: DirectoryRequest) -> DirectoryResponse {
        if !self.admitted.contains(&peer) {
            return DirectoryResponse::Refused("not admitted".into());
        }
        match req {
            DirectoryRequest::Reconcile(msg) => match respond(self.recon_set(), &msg) {
                Ok(reply) => DirectoryResponse::Reconcile(reply),
                Err(e) => DirectoryResponse::Refused(e.to_string()),
            },
            DirectoryRequest::Fetch(ids) => {
                let set = self.recon_set().clone();
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
        }
    }

    // --- swarm events ---

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.listen_addrs.push(address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } if num_established.get() == 1 && !self.admitted.contains(&peer_id) => {
                self.pending_admission.insert(peer_id, Instant::now());
                let msg = Admission {
                    credential: self.credential.clone(),
                };
                self.swarm
                    .behaviour_mut()
                    .admission
                    .send_request(&peer_id, msg);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.admitted.remove(&peer_id);
                self.pending_admission.remove(&peer_id);
                self.sessions.remove(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Admission(ev)) => self.on_admission(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Directory(ev)) => self.on_directory(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(
                libp2p::identify::Event::Received { peer_id, info, .. },
            )) => {
                for addr in info.listen_addrs {
                    self.swarm.add_peer_address(peer_id, addr);
                }
            }
            _ => {}
        }
    }

    fn on_admission(&mut self, ev: request_response::Event<Admission, Admission>) {
        match ev {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let verdict = self.check_admission(&peer, &request);
                let own = Admission {
                    credential: self.credential.clone(),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .admission
                    .send_response(channel, own);
                match verdict {
                    Ok(()) => self.admit(peer),
                    Err(reason) => self.deny(peer, &reason),
                }
            }
            request_response::Event::Message {
                peer,
                message: Message::Response { response, .. },
                ..
            } => match self.check_admission(&peer, &response) {
                Ok(()) => self.admit(peer),
                Err(reason) => self.deny(peer, &reason),
            },
            request_response::Event::OutboundFailure { peer, error, .. }
                if self.pending_admission.contains_key(&peer) =>
            {
                self.deny(peer, &format!("admission failed: {error}"));
            }
            _ => {}
        }
    }

    fn on_directory(&mut self, ev: request_response::Event<DirectoryRequest, DirectoryResponse>) {
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
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "directory request failed");
                self.sessions.remove(&peer);
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, source: PeerId, id: gossipsub::MessageId, message: gossipsub::Message) {
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
            match SignedSelfDescription::decode(&message.data) {
                Err(e) => {
                    warn!(peer = %source, error = %e, "undecodable gossip");
                    Reject
                }
                Ok(record) => {
                    let outcome = self.merge_from(vec![record], &source).pop();
                    match outcome {
                        Some(o) if o.penalise() => Reject,
                        Some(o) if o.forward() => Accept,
                        _ => Ignore,
                    }
                }
            }
        };
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, verdict);
    }
}

pub(crate) fn seeded_rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::from_entropy()
}
