//! The one task that owns the swarm and the catalogue. Everything else talks to it through
//! [`super::Client`] commands on a bounded channel (rust-libp2p's file-sharing pattern).

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::StreamExt;
use gaiamesh_core::node::{Action as NodeAction, NodeState};
use gaiamesh_directory::reconcile::Initiator;
use gaiamesh_protocol::{
    federation::MembershipCredential,
    identity::{Keypair, PublicKey},
    sd::{SCHEMA_VERSION, SdDocument, SelfDescription, SignedSelfDescription},
};
use libp2p::{Multiaddr, PeerId, Swarm, gossipsub, metrics::Recorder, swarm::SwarmEvent};
use rand::SeedableRng;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::{
    Command, CommandError, EntryView, PeerView, Published, QueryReply, Status,
    behaviour::{Behaviour, BehaviourEvent, PENDING_ADMISSION_SCORE},
    events::NodeEvent,
    metrics::Metrics,
    storage::{Done, Job, SharedCatalogue, Storage},
};
use crate::{datadir::DataDir, now};

mod admission;
pub(crate) mod core_trace;
pub(crate) mod flood;
pub(crate) mod nat;
pub(crate) mod proofs;
pub(crate) mod recent;
pub(crate) mod recon_snapshot;
mod redial;
pub(crate) use redial::Redial;
pub(crate) mod dht;
pub(crate) mod federation;
pub(crate) mod repo;
pub(crate) mod stored;
pub(crate) mod sync;

pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    /// The protocol parameters (shared with the simulator). The admission deadline is
    /// checked every 250 ms tick, so a peer that never answers is gone within 2 s.
    pub(crate) params: gaiamesh_core::Params,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// The catalogue: read here and by blocking tasks, written only by `storage`.
    pub(crate) catalogue: SharedCatalogue,
    /// The storage writer (group commit, checks on every core).
    pub(crate) storage: Storage<stored::Tag>,
    /// Its results.
    pub(crate) stored: mpsc::Receiver<Done<stored::Tag>>,
    /// Records read on blocking threads for peers (`sync.rs`), coming back to be sent.
    pub(crate) loaded: sync::Loads,
    /// The highest seq this node has signed since start (with `DataDir::last_seq`, the
    /// next one is higher even while an earlier publish is still being stored).
    pub(crate) issued_seq: u64,
    pub(crate) dir: DataDir,
    pub(crate) key: Keypair,
    pub(crate) credential: Option<MembershipCredential>,
    pub(crate) topic: gossipsub::IdentTopic,
    pub(crate) presence: gossipsub::IdentTopic,
    pub(crate) revocations: gossipsub::IdentTopic,
    /// `directory.cpu_at_ingest`: set `gaiamesh_sd_stored_cpu_seconds` on every gossiped
    /// record.
    pub(crate) cpu_at_ingest: bool,
    /// The bootstrap addresses, dialled again while the node has no peer.
    pub(crate) bootstrap: Redial,
    pub(crate) validity_ms: u64,
    pub(crate) republish_before_ms: u64,
    /// The node's peers and periodic work: the core's decisions, carried out here.
    pub(crate) node: NodeState<PeerId>,
    /// The origin of the core's clock.
    pub(crate) origin: Instant,
    /// Where the core's trace goes, when `GAIAMESH_CORE_TRACE` asks for one.
    pub(crate) core_trace: Option<core_trace::CoreTrace>,
    pub(crate) sessions: HashMap<PeerId, Initiator>,
    /// The revocation-list version last pushed to each connected peer.
    pub(crate) revocations_pushed: HashMap<PeerId, u64>,
    /// The revocation list in force, as received (for anti-entropy pushes).
    pub(crate) revocation_list: Option<gaiamesh_protocol::federation::RevocationList>,
    /// The catalogue's reconciliation set, built off the loop.
    pub(crate) recon: recon_snapshot::ReconSnapshot,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) own: Option<SignedSelfDescription>,
    pub(crate) rng: rand_chacha::ChaCha8Rng,
    /// `directory.mode = "light"`: no replica; queries go through the DHT.
    pub(crate) light: bool,
    pub(crate) metrics: Metrics,
    pub(crate) events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// The last directory updates, for `GET /api/v1/updates`.
    pub(crate) recent: recent::Recent,
    /// Listen addresses connected peers announced (identify), for the routing table.
    pub(crate) peer_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    /// Attribute keys this node currently provides.
    pub(crate) provided_keys: HashSet<Vec<u8>>,
    pub(crate) kad_bootstrapped: bool,
    /// DHT writes from peers whose admission is pending.
    pub(crate) pending_dht: HashMap<PeerId, Vec<dht::PendingDht>>,
    pub(crate) lights: dht::LightQueries,
    pub(crate) repo: repo::RepoState,
    pub(crate) nat: nat::Nat,
    /// Fault injection: the flood this node sends, if any.
    pub(crate) flood: Option<flood::Flood>,
    /// systemd's watchdog, kept alive from the tick.
    pub(crate) watchdog: super::service::Watchdog,
    /// `network.relay_server`: this node's listen addresses are its external addresses
    /// (a relay's reservations hand them out).
    pub(crate) relay_server: bool,
}

/// Peer addresses kept per connected peer at most.
const MAX_ADDRS_PER_PEER: usize = 8;

/// Builds the API answer of a query from its output; `get` looks entries up.
pub(super) fn query_reply(
    out: &gaiamesh_directory::catalogue::QueryOutput,
    get: impl Fn(&PublicKey) -> Option<gaiamesh_directory::entry::Entry>,
) -> QueryReply {
    let matches = out
        .matches
        .iter()
        .filter_map(|m| {
            let e = get(&m.subject)?;
            let doc = &e.record.sd.document;
            Some(super::MatchView {
                subject: m.subject.to_string(),
                seq: m.seq,
                legal_name: doc.participant.legal_name.clone(),
                country: doc.node.location.country.clone(),
                service: m.service_index.and_then(|i| doc.services.get(i)).cloned(),
            })
        })
        .collect();
    QueryReply {
        source: super::QuerySource::Replica,
        providers: None,
        truncated: false,
        plan: out.plan.to_string(),
        total: out.total,
        examined: out.examined,
        matches,
    }
}

impl EventLoop {
    pub(crate) async fn run(mut self, document: Option<SdDocument>) {
        if let Some(doc) = document {
            self.publish(doc, None);
        }
        self.fetch_mandatory();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_repo_sync = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                Some(done) = self.stored.recv() => self.on_stored(done),
                Some(loaded) = self.loaded.rx.recv() => self.on_loaded(loaded),
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.on_command(cmd),
                },
                _ = tick.tick() => {
                    // Admission deadlines, anti-entropy, presence and re-publication are the
                    // core's to decide (`core::node`); the actions are carried out here.
                    let now = self.core_now();
                    self.node.handle_timeout(now, &mut self.rng);
                    self.feed_gossip_scores();
                    self.flood_tick();
                    self.run_node_actions();
                    self.write_core_trace();
                    self.redial_bootstrap();
                    self.expire_light_queries();
                    self.expire_blob_lookups();
                    self.update_gauges();
                    self.watchdog.tick(Instant::now());
                    if last_repo_sync.elapsed() >= self.params.sync.reconcile_interval {
                        last_repo_sync = Instant::now();
                        self.repo_anti_entropy();
                    }
                    if last_sweep.elapsed() >= Duration::from_secs(60) {
                        last_sweep = Instant::now();
                        self.sweep_and_republish();
                    }
                }
            }
        }
        // The writer finishes what is queued (and may find nobody listening) before the
        // node exits.
        self.stored.close();
        self.write_core_trace();
        if let Some(t) = self.core_trace.take() {
            let _ = tokio::task::spawn_blocking(move || t.finish()).await;
        }
        info!("event loop stopped");
    }

    fn now(&self) -> gaiamesh_protocol::time::UnixMillis {
        now()
    }

    /// The core's clock: time since the event loop started.
    fn core_now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Hands what the core recorded since the last tick to the trace's writer.
    fn write_core_trace(&mut self) {
        if let Some(t) = &self.core_trace
            && let Some(entries) = self.node.take_trace()
            && !t.write(entries)
        {
            self.core_trace = None;
            self.node.stop_trace();
        }
    }

    /// Hands the core the admitted peers' negative gossip scores (it decides whom to
    /// penalise; honest peers stay at or above 0 and cost nothing here).
    fn feed_gossip_scores(&mut self) {
        let low: Vec<(PeerId, i64)> = self
            .node
            .admitted()
            .filter_map(|p| {
                let s = self.swarm.behaviour().gossipsub.peer_score(&p)?;
                (s < 0.0).then_some((p, s.floor() as i64))
            })
            .collect();
        for (peer, score) in low {
            self.node.handle_gossip_score(peer, score);
        }
    }

    /// Carries out what the node core decided.
    fn run_node_actions(&mut self) {
        while let Some(action) = self.node.poll_action() {
            match action {
                NodeAction::RequestAdmission(peer) => self.request_admission(peer),
                NodeAction::Admit(peer) => self.admit(peer),
                NodeAction::Deny(peer, refusal) => self.deny(peer, &refusal.to_string()),
                NodeAction::DropLate(peer) => {
                    // Not proof of a bad credential (a member on a bad link), so a shorter
                    // ban; an outsider that never answers still cannot hold a connection by
                    // redialling.
                    self.swarm.behaviour_mut().gate.ban_late(peer);
                    self.drop_peer(peer, "no valid admission in time");
                }
                NodeAction::Reconcile(peer) => self.start_reconcile(peer),
                NodeAction::PushOwnRecord(peer) => {
                    // No reconciliation from a light node; hand the peer our own record
                    // instead (gossip before any peer was connected reached no one).
                    if let Some(own) = self.own.clone() {
                        self.swarm.behaviour_mut().directory.send_request(
                            &peer,
                            gaiamesh_protocol::wire::DirectoryRequest::Push(vec![own]),
                        );
                    }
                }
                NodeAction::Presence => self.heartbeat(),
                NodeAction::Republish => self.republish_dht(),
                NodeAction::Redial(peer) => self.redial_member(peer),
                NodeAction::Penalise(peer, score) => {
                    crate::daemon::metrics::Metrics::count(&self.metrics.admissions, "penalised");
                    self.deny(
                        peer,
                        &format!(
                            "gossip score {score} below {}: misbehaving on gossip",
                            self.params.gossip.disconnect_below_score
                        ),
                    );
                }
                _ => {}
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Query { expr, opts, reply } if self.light => {
                self.metrics.light_queries.inc();
                match gaiamesh_directory::dht::light_plan(&expr) {
                    Ok(plan) => self.start_light_query(plan, opts, reply),
                    Err(e) => {
                        let _ = reply.send(Err(CommandError::Conflict(format!(
                            "this is a light node: {e}"
                        ))));
                    }
                }
            }
            // Queries and lookups read the catalogue on a blocking thread, never here.
            Command::Query { expr, opts, reply } => {
                let cat = self.catalogue.clone();
                let now = self.now();
                tokio::task::spawn_blocking(move || {
                    let cat = cat.read();
                    let out = cat.query(&expr, opts, now);
                    let _ = reply.send(Ok(query_reply(&out, |s| cat.get(s).ok().flatten())));
                });
            }
            Command::Show { subject, reply } => {
                let cat = self.catalogue.clone();
                let now = self.now();
                tokio::task::spawn_blocking(move || {
                    let cat = cat.read();
                    let view = cat.get(&subject).ok().flatten().map(|e| EntryView {
                        proofs: proofs::of(&e, cat.trust(), now),
                        subject: e.subject().to_string(),
                        seq: e.seq(),
                        received_at_ms: e.received_at.0,
                        from: e.from.map(|p| p.to_string()),
                        last_seen_ms: cat.last_seen(&e.subject()).map(|t| t.0),
                        document: serde_json::to_value(&e.record.sd.document).unwrap_or_default(),
                    });
                    let _ = reply.send(view);
                });
            }
            Command::Updates {
                subject,
                limit,
                reply,
            } => {
                let _ = reply.send(self.recent.view(subject.as_deref(), limit));
            }
            Command::Federation { reply } => {
                let view = federation::view(self.catalogue.read().trust());
                let _ = reply.send(view);
            }
            Command::Peers { reply } => {
                let cat = self.catalogue.read();
                let peers = self
                    .swarm
                    .connected_peers()
                    .map(|p| PeerView {
                        peer_id: p.to_string(),
                        admitted: self.node.is_admitted(p),
                        last_seen_ms: PublicKey::from_peer_id(p)
                            .ok()
                            .and_then(|k| cat.last_seen(&k))
                            .map(|t| t.0),
                        score: self.swarm.behaviour().gossipsub.peer_score(p),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            Command::Revoke { list, reply } => {
                self.submit_revocations(*list, stored::Tag::RevokeCommand(reply));
            }
            Command::Publish { document, reply } => {
                let doc = document
                    .map(|d| *d)
                    .or_else(|| self.own.as_ref().map(|o| o.sd.document.clone()));
                match doc {
                    Some(d) => self.publish(d, Some(reply)),
                    None => {
                        let _ = reply.send(Err(CommandError::Conflict(
                            "this node has no self-description yet; publish a document first"
                                .into(),
                        )));
                    }
                }
            }
            Command::Flood {
                per_second,
                seconds,
                reply,
            } => {
                warn!(
                    per_second,
                    seconds, "fault injection: flooding the directory topic"
                );
                self.flood = Some(flood::Flood::new(per_second, seconds, Instant::now()));
                let _ = reply.send(Ok(()));
            }
            Command::RawGossip { bytes, reply } => {
                warn!(
                    bytes = bytes.len(),
                    "fault injection: publishing raw gossip"
                );
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .publish(self.topic.clone(), bytes)
                    .map(|_| ())
                    .map_err(|e| CommandError::Conflict(format!("gossip: {e}")));
                let _ = reply.send(result);
            }
            Command::RepoStatus { reply } => {
                let _ = reply.send(self.repo_status());
            }
            Command::RepoBundle { reply } => {
                let _ = reply.send(self.repo.trusted.bundle(0).encode().unwrap_or_default());
            }
            Command::RepoRelease {
                bundle,
                file,
                reply,
            } => self.repo_release(bundle, file, reply),
            Command::RepoApplyLocal {
                bundle,
                hash,
                reply,
            } => {
                let _ = reply.send(self.apply_local_release(&bundle, hash));
            }
            Command::RepoFetch { target, reply } => {
                let _ = reply.send(self.repo_fetch(&target));
            }
            Command::RepoOffer { bundle, from } => {
                if let Err(e) = self.apply_bundle(&bundle, Some(from)) {
                    debug!(peer = %from, error = %e, "repository bundle from a peer refused");
                }
            }
            Command::BlobProviders { hash, reply } => self.lookup_blob_providers(hash, reply),
            Command::ProvideBlob { hash } => self.provide_blob(hash),
            Command::PenaliseBlobPeer { peer } => {
                self.metrics.repo.penalised.inc();
                self.emit(NodeEvent::BlobPeerPenalised {
                    peer_id: peer.to_string(),
                });
            }
            Command::Shutdown => {}
        }
    }

    fn status(&self) -> Status {
        // One read guard, dropped here. Two in one struct expression would both live to its
        // end: with the storage writer waiting for the write lock between them, the second
        // waits behind the writer and the writer behind the first — the event loop hangs
        // (std's RwLock lets no new reader in while a writer waits). A 32-node devnet hit it.
        let (federation, directory_entries) = {
            let cat = self.catalogue.read();
            (cat.trust().id().to_string(), cat.len())
        };
        Status {
            peer_id: self.swarm.local_peer_id().to_string(),
            federation,
            connected_peers: self.swarm.connected_peers().count(),
            admitted_peers: self.node.admitted().count(),
            directory_entries,
            listen_addrs: self.listen_addrs.iter().map(ToString::to_string).collect(),
            own_seq: self.own.as_ref().map(|o| o.sd.seq),
            version: crate::VERSION.to_owned(),
            uptime_ms: u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX),
            mode: if self.light { "light" } else { "full" }.into(),
            dht_announced: self.node.admitted_total() > 0 && !self.node.announce_pending(),
            kad_queries: self.swarm.behaviour().kad.iter_queries().count(),
            nat: self.nat.status(),
            flood: self.flood.as_ref().map(flood::Flood::status),
        }
    }

    /// Signs `doc` with a fresh seq and hands it to the storage writer; once stored it is
    /// gossiped and announced, and `reply` (if any) gets the answer.
    fn publish(
        &mut self,
        document: SdDocument,
        reply: Option<tokio::sync::oneshot::Sender<Result<Published, CommandError>>>,
    ) {
        let started = std::time::Instant::now();
        match self.sign_next(document) {
            Ok(signed) => self.ingest(
                vec![signed.clone()],
                stored::Tag::Own {
                    signed: Box::new(signed),
                    started,
                    reply,
                },
            ),
            Err(e) => match reply {
                Some(reply) => {
                    let _ = reply.send(Err(e));
                }
                None => warn!(error = %e, "cannot publish the node's self-description"),
            },
        }
    }

    /// The next version of the own self-description, signed. Its seq is recorded before
    /// the record is stored or sent, so no two versions ever share one (not even after a
    /// crash).
    fn sign_next(&mut self, document: SdDocument) -> Result<SignedSelfDescription, CommandError> {
        let issued_at = self.now();
        let last = self
            .dir
            .last_seq()
            .map_err(|e| CommandError::internal("reading the last seq", format!("{e:#}")))?
            .max(self.issued_seq);
        let seq = (last + 1).max(issued_at.0);
        let sd = SelfDescription {
            schema_version: SCHEMA_VERSION,
            subject: self.key.public(),
            federation: self.catalogue.read().trust().id(),
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
        let signed = sd.sign(&self.key).map_err(CommandError::invalid)?;
        self.dir
            .record_seq(seq)
            .map_err(|e| CommandError::internal("recording the seq", format!("{e:#}")))?;
        self.issued_seq = seq;
        Ok(signed)
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
        self.catalogue.read().touch(&self.key.public(), now);
        let data = now.0.to_be_bytes().to_vec();
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.presence.clone(), data);
    }

    fn sweep_and_republish(&mut self) {
        if let Err(refused) = self.storage.submit(Job::Sweep) {
            warn!(error = %refused.why, "sweep postponed");
        }
        let due = self
            .own
            .as_ref()
            .is_some_and(|o| self.now().0 + self.republish_before_ms >= o.sd.expires_at.0);
        if due && let Some(doc) = self.own.as_ref().map(|o| o.sd.document.clone()) {
            self.publish(doc, None);
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        self.metrics.libp2p.record(&ev);
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if self.relay_server && !nat::is_circuit(&address) {
                    // A relay's reservations hand out its external addresses.
                    self.swarm.add_external_address(address.clone());
                }
                self.listen_addrs.push(address);
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.on_listener_closed(listener_id);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                self.nat
                    .on_connection(peer_id, endpoint.is_relayed(), Instant::now());
                if num_established.get() == 1 && !self.node.is_admitted(&peer_id) {
                    // Graylisted in gossipsub until admitted: never in a mesh before that.
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer_id, PENDING_ADMISSION_SCORE);
                    let now = self.core_now();
                    self.node.handle_connected(now, peer_id);
                    self.run_node_actions();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                let now = self.core_now();
                let member = self.node.is_admitted(&peer_id);
                self.node.handle_disconnected(now, &peer_id);
                self.sync_admitted();
                self.sessions.remove(&peer_id);
                self.revocations_pushed.remove(&peer_id);
                let addrs = self.peer_addrs.remove(&peer_id);
                if member {
                    // Kept for the core's redials (`NodeAction::Redial`).
                    self.bootstrap
                        .keep_member(peer_id, addrs.unwrap_or_default());
                }
                self.run_node_actions();
                self.pending_dht.remove(&peer_id);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Admission(ev)) => self.on_admission(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Directory(ev)) => self.on_directory(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => self.metrics.libp2p.record(&ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(ev)) => {
                self.metrics.libp2p.record(&ev);
                if let libp2p::identify::Event::Received { peer_id, info, .. } = ev {
                    let addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .take(MAX_ADDRS_PER_PEER)
                        .collect();
                    for addr in &addrs {
                        self.swarm.add_peer_address(peer_id, addr.clone());
                    }
                    self.peer_addrs.insert(peer_id, addrs);
                    if self.node.is_admitted(&peer_id) {
                        self.kad_add_peer(peer_id);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(ev)) => {
                self.metrics.libp2p.record(&ev);
                self.on_kad(ev);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ev)) => self.metrics.libp2p.record(&ev),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => self.on_relay_server(ev),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(ev)) => self.on_relay_client(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(ev)) => self.on_dcutr(ev),
            _ => {}
        }
    }
}

impl EventLoop {
    /// Sends an event to `/events` subscribers (none listening is fine).
    pub(super) fn emit(&self, event: NodeEvent) {
        if let NodeEvent::SdStored {
            subject,
            seq,
            outcome,
            from,
            received_at_ms,
        } = &event
        {
            self.recent.push(recent::Update {
                subject: subject.clone(),
                seq: *seq,
                outcome,
                from: from.clone(),
                received_at_ms: *received_at_ms,
            });
        }
        let _ = self.events.send(event);
    }

    fn update_gauges(&self) {
        let m = &self.metrics;
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.directory_entries.set(gauge(self.catalogue.read().len()));
        m.connected_peers
            .set(gauge(self.swarm.connected_peers().count()));
        m.admitted_peers.set(gauge(self.node.admitted().count()));
    }
}

pub(crate) fn seeded_rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::from_entropy()
}
