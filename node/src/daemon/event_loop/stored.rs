//! What the event loop does when the storage writer ([`crate::daemon::storage`]) has made a
//! job durable: report gossip verdicts, answer the command or peer that asked, emit events.

use std::time::Instant;

use gaiamesh_core::ingest::GossipVerdict;
use gaiamesh_directory::{catalogue::RevocationOrStore, merge::MergeOutcome};
use gaiamesh_protocol::{
    federation::RevocationList, identity::PublicKey, sd::SignedSelfDescription,
    wire::DirectoryResponse,
};
use libp2p::{
    PeerId,
    gossipsub::{self, MessageAcceptance},
    request_response::ResponseChannel,
};
use tokio::sync::oneshot;
use tracing::{info, warn};

use super::EventLoop;
use crate::daemon::{
    CommandError, Published,
    events::NodeEvent,
    metrics::Metrics,
    storage::{Done, Job, SubmitError, Version},
};

/// Who is waiting for a storage job, and for what.
#[derive(Debug)]
pub(crate) enum Tag {
    /// A gossiped record: its verdict goes to gossipsub.
    Gossip {
        source: PeerId,
        message_id: gossipsub::MessageId,
        received: Instant,
    },
    /// Records a peer sent on request.
    Peer(PeerId),
    /// Records a peer pushed: it gets its acknowledgement once they are durable.
    Pushed {
        peer: PeerId,
        channel: ResponseChannel<DirectoryResponse>,
    },
    /// This node's own new version.
    Own {
        signed: Box<SignedSelfDescription>,
        started: Instant,
        reply: Option<oneshot::Sender<Result<Published, CommandError>>>,
    },
    /// A revocation list from gossip.
    RevokeGossip {
        source: PeerId,
        message_id: gossipsub::MessageId,
    },
    /// A revocation list from the API.
    RevokeCommand(oneshot::Sender<Result<usize, CommandError>>),
    /// A revocation list a peer handed over.
    RevokeDirectory(ResponseChannel<DirectoryResponse>),
}

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

fn acceptance(v: GossipVerdict) -> MessageAcceptance {
    match v {
        GossipVerdict::Accept => MessageAcceptance::Accept,
        GossipVerdict::Ignore => MessageAcceptance::Ignore,
        GossipVerdict::Reject => MessageAcceptance::Reject,
    }
}

impl EventLoop {
    /// Queues records from `tag`'s sender for merging. When the writer is too far behind,
    /// gossip is dropped (ignored, not penalised) and anti-entropy brings it later.
    pub(super) fn ingest(&mut self, records: Vec<SignedSelfDescription>, tag: Tag) {
        let from = match &tag {
            Tag::Gossip { source, .. } | Tag::Peer(source) | Tag::Pushed { peer: source, .. } => {
                PublicKey::from_peer_id(source).ok()
            }
            _ => None,
        };
        let job = Job::Merge {
            records: records.into_iter().map(|r| (r, from)).collect(),
            tag,
        };
        if let Err(refused) = self.storage.submit(job) {
            Metrics::count(&self.metrics.merges, "dropped");
            warn!(error = %refused.why, "record not stored");
            if let Job::Merge { tag, .. } | Job::Revoke { tag, .. } = refused.job {
                self.refused(tag, &refused.why);
            }
        }
    }

    /// Answers whoever waits for a job the writer did not take.
    fn refused(&mut self, tag: Tag, why: &SubmitError) {
        let busy = || CommandError::Busy(why.to_string());
        match tag {
            Tag::Gossip {
                source, message_id, ..
            }
            | Tag::RevokeGossip { source, message_id } => {
                self.report(&message_id, &source, MessageAcceptance::Ignore);
            }
            Tag::Peer(_) => {}
            Tag::Pushed { channel, .. } => {
                self.answer_directory(channel, DirectoryResponse::Refused(why.to_string()));
            }
            Tag::Own { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(busy()));
                }
            }
            Tag::RevokeCommand(reply) => {
                let _ = reply.send(Err(busy()));
            }
            Tag::RevokeDirectory(channel) => {
                self.answer_directory(channel, DirectoryResponse::Refused(why.to_string()));
            }
        }
    }

    /// Answers a peer's directory request (a peer that went away is no error).
    pub(super) fn answer_directory(
        &mut self,
        channel: ResponseChannel<DirectoryResponse>,
        response: DirectoryResponse,
    ) {
        let _ = self
            .swarm
            .behaviour_mut()
            .directory
            .send_response(channel, response);
    }

    /// Puts a revocation list in force through the writer; `tag` says who gets the answer.
    /// A list no newer than the one in force is answered at once (nothing to do).
    pub(super) fn submit_revocations(&mut self, list: RevocationList, tag: Tag) {
        if list.body.version <= self.catalogue.read().trust().revocation_version() {
            self.answer_revocation(tag, &list, Ok(0));
            return;
        }
        if let Err(refused) = self.storage.submit(Job::Revoke {
            list: Box::new(list),
            tag,
        }) {
            warn!(error = %refused.why, "revocation list not applied");
            if let Job::Revoke { tag, .. } = refused.job {
                self.refused(tag, &refused.why);
            }
        }
    }

    pub(super) fn on_stored(&mut self, done: Done<Tag>) {
        match done {
            Done::Merged {
                tag,
                versions,
                result,
            } => {
                let outcomes = match result {
                    Ok(o) => o,
                    Err(e) => {
                        warn!(error = %e, "catalogue write failed");
                        self.merge_failed(tag, &e);
                        return;
                    }
                };
                self.merged(tag, &versions, outcomes);
            }
            Done::Revoked { tag, list, result } => self.revoked(tag, &list, result),
            Done::Swept(Ok(0)) => {}
            Done::Swept(Ok(n)) => {
                self.recon.invalidate();
                info!(removed = n, "swept expired or revoked entries");
            }
            Done::Swept(Err(e)) => warn!(error = %e, "sweep failed"),
        }
    }

    fn merge_failed(&mut self, tag: Tag, e: &gaiamesh_directory::store::StoreError) {
        match tag {
            Tag::Gossip {
                source, message_id, ..
            } => self.report(&message_id, &source, MessageAcceptance::Ignore),
            Tag::Own {
                reply: Some(reply), ..
            } => {
                let _ = reply.send(Err(CommandError::internal(
                    "storing the self-description",
                    e,
                )));
            }
            Tag::Pushed { channel, .. } => {
                // The pusher keeps the records and offers them again later.
                self.answer_directory(
                    channel,
                    DirectoryResponse::Refused("the records could not be stored".into()),
                );
            }
            _ => {}
        }
    }

    fn merged(&mut self, tag: Tag, versions: &[Version], outcomes: Vec<MergeOutcome>) {
        if outcomes.iter().any(MergeOutcome::changed) {
            self.recon.invalidate();
        }
        let peer = match &tag {
            Tag::Gossip { source, .. } | Tag::Peer(source) | Tag::Pushed { peer: source, .. } => {
                Some(*source)
            }
            _ => None,
        };
        if let Some(peer) = peer {
            let now = self.now();
            for (o, v) in outcomes.iter().zip(versions) {
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
                    // From the subject's signature to this node's commit, across every hop
                    // (clocks of different machines: only as good as their synchronisation).
                    self.metrics
                        .sd_propagation
                        .observe(now.0.saturating_sub(v.issued_at.0) as f64 / 1e3);
                    self.emit(NodeEvent::SdStored {
                        subject: v.subject.to_string(),
                        seq: v.seq,
                        outcome: outcome_name(o),
                        from: Some(peer.to_string()),
                        received_at_ms: now.0,
                    });
                }
            }
        }
        match tag {
            Tag::Gossip {
                source,
                message_id,
                received,
            } => {
                self.metrics
                    .sd_ingest
                    .observe(received.elapsed().as_secs_f64());
                let from_subject = versions
                    .first()
                    .is_some_and(|v| PublicKey::from_peer_id(&source).ok() == Some(v.subject));
                let verdict = outcomes.first().map_or(GossipVerdict::Ignore, |o| {
                    GossipVerdict::of(o, from_subject)
                });
                self.report(&message_id, &source, acceptance(verdict));
            }
            Tag::Own {
                signed,
                started,
                reply,
            } => {
                let result = match outcomes.first() {
                    Some(MergeOutcome::Rejected(e)) => Err(CommandError::Invalid(format!(
                        "the federation would refuse this self-description: {e}"
                    ))),
                    Some(_) => Ok(self.published(*signed, started)),
                    None => Err(CommandError::internal(
                        "storing the self-description",
                        "the storage writer returned no outcome",
                    )),
                };
                match reply {
                    Some(reply) => {
                        let _ = reply.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            warn!(error = %e, "cannot publish the node's self-description");
                        }
                    }
                }
            }
            Tag::Pushed { channel, .. } => self.answer_directory(channel, DirectoryResponse::Ack),
            _ => {}
        }
    }

    /// The own record is stored: gossip it, announce it in the DHT.
    fn published(&mut self, signed: SignedSelfDescription, started: Instant) -> Published {
        let seq = signed.sd.seq;
        self.gossip(&signed);
        let gossip_after_ms = started.elapsed().as_secs_f64() * 1e3;
        self.announce(&signed, false);
        info!(seq, gossip_after_ms, "published own self-description");
        self.emit(NodeEvent::Published { seq });
        self.own = Some(signed);
        Published {
            seq,
            gossip_after_ms,
        }
    }

    /// Reports a gossip verdict and counts it.
    pub(super) fn report(
        &mut self,
        id: &gossipsub::MessageId,
        source: &PeerId,
        verdict: MessageAcceptance,
    ) {
        Metrics::count(
            &self.metrics.gossip,
            match verdict {
                MessageAcceptance::Accept => "accept",
                MessageAcceptance::Reject => "reject",
                MessageAcceptance::Ignore => "ignore",
            },
        );
        let _ = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, verdict);
    }

    fn revoked(
        &mut self,
        tag: Tag,
        list: &RevocationList,
        result: Result<usize, RevocationOrStore>,
    ) {
        let result = result
            .map_err(|e| match e {
                RevocationOrStore::Revocation(e) => CommandError::invalid(e),
                RevocationOrStore::Store(e) => {
                    CommandError::internal("removing revoked entries", e)
                }
                other => CommandError::internal("applying revocations", other),
            })
            .inspect(|removed| self.revocations_in_force(list, *removed));
        self.answer_revocation(tag, list, result);
    }

    fn answer_revocation(
        &mut self,
        tag: Tag,
        list: &RevocationList,
        result: Result<usize, CommandError>,
    ) {
        match tag {
            Tag::RevokeGossip { source, message_id } => {
                let verdict = if result.is_ok() {
                    MessageAcceptance::Accept
                } else {
                    MessageAcceptance::Reject
                };
                self.report(&message_id, &source, verdict);
            }
            Tag::RevokeCommand(reply) => {
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
            Tag::RevokeDirectory(channel) => {
                let response = match result {
                    Ok(_) => DirectoryResponse::Ack,
                    Err(e) => DirectoryResponse::Refused(e.to_string()),
                };
                self.answer_directory(channel, response);
            }
            _ => {}
        }
    }
}
