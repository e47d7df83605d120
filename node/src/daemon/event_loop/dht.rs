//! Kademlia: the routing table (admitted peers only), inbound puts (validated), the node's
//! own `sd/` record and attribute provider records, and light-mode queries through the DHT.

use crate::daemon::CommandError;
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use gaiamesh_directory::{
    catalogue::QueryOptions,
    dht::{self, LightPlan},
};
use gaiamesh_protocol::{identity::PublicKey, sd::SignedSelfDescription};
use libp2p::{
    PeerId,
    kad::{self, GetProvidersOk, GetRecordOk, QueryId, QueryResult, Quorum, Record, RecordKey},
};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::EventLoop;
use crate::daemon::QueryReply;

/// Light queries in flight at most; more are refused until one finishes.
pub(crate) const MAX_LIGHT_QUERIES: usize = 16;
/// Providers whose records one light query fetches at most.
pub(crate) const MAX_LIGHT_PROVIDERS: usize = 256;
/// A light query answers with what it has after this long.
pub(crate) const LIGHT_QUERY_DEADLINE: Duration = Duration::from_secs(8);

/// Kademlia's k: the most providers one node returns for a key.
const KAD_K: usize = 20;

/// DHT writes held per peer while its admission is pending, at most.
const MAX_HELD_DHT_WRITES: usize = 64;

/// A DHT write waiting for its sender's admission.
pub(crate) enum PendingDht {
    Record(Record),
    Provider(kad::ProviderRecord),
}

/// A query answered through the DHT: providers of the plan's attribute keys, then their
/// `sd/` records, then the full predicate applied locally after validation.
pub(crate) struct LightQuery {
    plan: LightPlan,
    opts: QueryOptions,
    reply: oneshot::Sender<Result<QueryReply, CommandError>>,
    started: Instant,
    pending: HashSet<QueryId>,
    providers: HashSet<PeerId>,
    fetching: bool,
    truncated: bool,
    records: Vec<SignedSelfDescription>,
}

/// Light queries in flight and the Kademlia queries each waits for.
#[derive(Default)]
pub(crate) struct LightQueries {
    next: u64,
    queries: HashMap<u64, LightQuery>,
    owner: HashMap<QueryId, u64>,
}

impl EventLoop {
    /// Adds an admitted peer's known addresses to the routing table; the first admitted peer
    /// also starts a bootstrap (self-lookup) so the table fills.
    pub(super) fn kad_add_peer(&mut self, peer: PeerId) {
        let addrs = self.peer_addrs.get(&peer).cloned().unwrap_or_default();
        let kad = &mut self.swarm.behaviour_mut().kad;
        for addr in addrs {
            kad.add_address(&peer, addr);
        }
        if !self.kad_bootstrapped && kad.bootstrap().is_ok() {
            self.kad_bootstrapped = true;
        }
    }

    /// Puts the node's own record and announces its attribute keys (withdrawing those it no
    /// longer has). Without `all`, only keys not announced yet are (a re-publish of the same
    /// document must not cost a dozen iterative lookups: under sustained updates that load
    /// starved gossip).
    pub(super) fn announce(&mut self, record: &SignedSelfDescription, all: bool) {
        let Ok(value) = record.encode() else { return };
        let key = dht::sd_key(&record.sd.subject);
        let put = Record {
            key: RecordKey::new(&key),
            value,
            publisher: None,
            expires: None,
        };
        if let Err(e) = self.swarm.behaviour_mut().kad.put_record(put, Quorum::One) {
            warn!(error = ?e, "cannot put the own record into the DHT");
        }
        let Some(entry) = self.catalogue.read().get(&record.sd.subject).ok().flatten() else {
            return;
        };
        let keys: HashSet<Vec<u8>> = dht::attribute_keys(&entry).into_iter().collect();
        let kad = &mut self.swarm.behaviour_mut().kad;
        for old in self.provided_keys.difference(&keys) {
            kad.stop_providing(&RecordKey::new(old));
        }
        for k in keys
            .iter()
            .filter(|k| all || !self.provided_keys.contains(*k))
        {
            if let Err(e) = kad.start_providing(RecordKey::new(k)) {
                warn!(key = %String::from_utf8_lossy(k), error = ?e, "cannot announce attribute");
            }
        }
        debug!(attributes = keys.len(), "announced in the DHT");
        self.provided_keys = keys;
    }

    pub(super) fn on_kad(&mut self, ev: kad::Event) {
        match ev {
            kad::Event::InboundRequest { request } => self.on_kad_inbound(request),
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            } => {
                if let Some(d) = stats.duration() {
                    self.metrics.kad_query(&result, d);
                }
                self.on_kad_progress(id, result, step.last);
            }
            _ => {}
        }
    }

    fn on_kad_inbound(&mut self, request: kad::InboundRequest) {
        match request {
            kad::InboundRequest::PutRecord {
                source,
                record: Some(record),
                ..
            } => self.on_dht_write(source, PendingDht::Record(record)),
            kad::InboundRequest::AddProvider {
                record: Some(record),
            } => self.on_dht_write(record.provider, PendingDht::Provider(record)),
            _ => {}
        }
    }

    /// A DHT write from `source`: applied if it is admitted, held until it is if its
    /// admission is pending (a Kademlia query dials a new peer and writes at once), dropped
    /// otherwise.
    fn on_dht_write(&mut self, source: PeerId, write: PendingDht) {
        if self.node.is_admitted(&source) {
            self.apply_dht_write(source, write);
        } else if self.node.is_pending(&source) {
            let held = self.pending_dht.entry(source).or_default();
            if held.len() < MAX_HELD_DHT_WRITES {
                held.push(write);
            }
        } else {
            debug!(peer = %source, "DHT write from a peer not admitted; ignored");
        }
    }

    /// Applies the DHT writes held while `peer`'s admission was pending.
    pub(super) fn release_dht_writes(&mut self, peer: PeerId) {
        for write in self.pending_dht.remove(&peer).unwrap_or_default() {
            self.apply_dht_write(peer, write);
        }
    }

    fn apply_dht_write(&mut self, source: PeerId, write: PendingDht) {
        match write {
            PendingDht::Record(record) => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                match store.try_put(record.key.as_ref(), &record.value) {
                    Ok(stored) => debug!(peer = %source, stored, "DHT record put"),
                    Err(e) => {
                        self.metrics.dht_refused.inc();
                        warn!(peer = %source, error = %e, "refused a DHT record");
                    }
                }
            }
            PendingDht::Provider(record) => {
                let store = self.swarm.behaviour_mut().kad.store_mut();
                if let Err(e) = store.try_add_provider(&record) {
                    self.metrics.dht_refused.inc();
                    warn!(peer = %source, error = %e, "refused a DHT provider record");
                }
            }
        }
    }

    /// Starts a light query; the reply is sent when its DHT lookups finish.
    pub(super) fn start_light_query(
        &mut self,
        plan: LightPlan,
        opts: QueryOptions,
        reply: oneshot::Sender<Result<QueryReply, CommandError>>,
    ) {
        if self.lights.queries.len() >= MAX_LIGHT_QUERIES {
            let _ = reply.send(Err(CommandError::Busy(format!(
                "{MAX_LIGHT_QUERIES} light queries are running; try again shortly"
            ))));
            return;
        }
        let id = self.lights.next;
        self.lights.next += 1;
        let mut pending = HashSet::new();
        for key in &plan.keys {
            let q = self
                .swarm
                .behaviour_mut()
                .kad
                .get_providers(RecordKey::new(key));
            pending.insert(q);
            self.lights.owner.insert(q, id);
        }
        self.lights.queries.insert(
            id,
            LightQuery {
                plan,
                opts,
                reply,
                started: Instant::now(),
                pending,
                providers: HashSet::new(),
                fetching: false,
                truncated: false,
                records: Vec::new(),
            },
        );
    }

    fn on_kad_progress(&mut self, qid: QueryId, result: QueryResult, last: bool) {
        if self.on_blob_lookup(qid, &result, last) {
            return;
        }
        let Some(&id) = self.lights.owner.get(&qid) else {
            return;
        };
        let Some(q) = self.lights.queries.get_mut(&id) else {
            return;
        };
        match result {
            QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders { providers, .. })) => {
                // A node answers with at most k providers: a full answer means there may be
                // more than this lookup can see.
                if providers.len() >= KAD_K {
                    q.truncated = true;
                }
                for p in providers {
                    if q.providers.len() >= MAX_LIGHT_PROVIDERS {
                        q.truncated = true;
                        break;
                    }
                    q.providers.insert(p);
                }
            }
            QueryResult::GetRecord(Ok(GetRecordOk::FoundRecord(found))) => {
                if let Ok(r) = SignedSelfDescription::decode(&found.record.value) {
                    q.records.push(r);
                    // The first copy will do; the merge rules pick among copies if several
                    // arrive before the query stops.
                    if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(&qid) {
                        running.finish();
                    }
                }
            }
            QueryResult::GetProviders(Err(e)) => debug!(error = %e, "provider lookup failed"),
            QueryResult::GetRecord(Err(e)) => debug!(error = %e, "record lookup failed"),
            _ => {}
        }
        if last {
            self.lights.owner.remove(&qid);
            q.pending.remove(&qid);
            if q.pending.is_empty() {
                self.advance_light_query(id);
            }
        }
    }

    /// Moves a light query on when its lookups are done: providers → records → answer.
    fn advance_light_query(&mut self, id: u64) {
        let Some(q) = self.lights.queries.get_mut(&id) else {
            return;
        };
        if !q.fetching {
            q.fetching = true;
            let providers: Vec<PeerId> = q.providers.iter().copied().collect();
            let kad = &mut self.swarm.behaviour_mut().kad;
            for p in providers {
                let Ok(subject) = PublicKey::from_peer_id(&p) else {
                    continue;
                };
                let qid = kad.get_record(RecordKey::new(&dht::sd_key(&subject)));
                q.pending.insert(qid);
                self.lights.owner.insert(qid, id);
            }
            if !q.pending.is_empty() {
                return;
            }
        }
        self.finish_light_query(id);
    }

    fn finish_light_query(&mut self, id: u64) {
        let Some(q) = self.lights.queries.remove(&id) else {
            return;
        };
        for qid in &q.pending {
            self.lights.owner.remove(qid);
            if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(qid) {
                running.finish();
            }
        }
        let elapsed = q.started.elapsed();
        let providers = q.providers.len();
        let fetched = q.records.len();
        let trust = self.catalogue.read().trust().clone();
        let result = dht::light_query(&trust, q.records, &q.plan, q.opts, self.now())
            .map_err(|e| CommandError::internal("answering through the DHT", e))
            .map(|(out, cat)| {
                let mut reply = super::query_reply(&out, |s| cat.get(s).ok().flatten());
                reply.source = crate::daemon::QuerySource::Dht;
                reply.providers = Some(providers);
                reply.truncated = q.truncated || !q.pending.is_empty();
                reply
            });
        info!(
            providers,
            fetched,
            ms = elapsed.as_millis(),
            "light query answered through the DHT"
        );
        let _ = q.reply.send(result);
    }

    /// Answers light queries past their deadline with what they have.
    pub(super) fn expire_light_queries(&mut self) {
        let late: Vec<u64> = self
            .lights
            .queries
            .iter()
            .filter(|(_, q)| q.started.elapsed() > LIGHT_QUERY_DEADLINE)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.finish_light_query(id);
        }
    }

    /// Re-puts the own record and re-announces attributes (hourly, so records lost with
    /// churn come back).
    pub(super) fn republish_dht(&mut self) {
        if let Some(own) = self.own.clone() {
            self.announce(&own, true);
        }
        self.provide_blobs();
    }
}
