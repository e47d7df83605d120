//! The repository in the event loop: trusted metadata, new releases from gossip and from
//! peers at admission, releases published through the API, provider lookups and
//! announcements for blobs, and automatic fetching of mandatory components.

use crate::daemon::CommandError;
use std::collections::HashSet;

use gaiamesh_protocol::repository::{
    BlobHash, TrustedRepository,
    metadata::{Bundle, Category, Signed, Timestamp},
};
use libp2p::{PeerId, gossipsub, kad::RecordKey};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};
use utoipa::ToSchema;

use super::EventLoop;
use crate::daemon::{
    events::NodeEvent,
    repo::{PROTOCOL, Request, Status, read_response, write_request},
};

/// Repository state the event loop owns.
pub(crate) struct RepoState {
    pub(crate) trusted: TrustedRepository,
    pub(crate) topic: gossipsub::IdentTopic,
    pub(crate) fetcher: crate::daemon::repo::Fetcher,
    pub(crate) bundle: crate::daemon::mirror::Mirror<Vec<u8>>,
    pub(crate) admitted: crate::daemon::mirror::Mirror<HashSet<PeerId>>,
    pub(crate) auto_fetch: bool,
    pub(crate) seeding: std::sync::Arc<std::sync::Mutex<crate::daemon::repo::SeedLog>>,
    /// Provider lookups: query → (reply, providers so far, started).
    pub(crate) lookups: std::collections::HashMap<libp2p::kad::QueryId, BlobLookup>,
}

/// A running provider lookup: where to answer, the providers so far, when it started.
pub(crate) type BlobLookup = (
    oneshot::Sender<Vec<PeerId>>,
    HashSet<PeerId>,
    std::time::Instant,
);

/// A provider lookup answers after this long with the providers found so far.
const PROVIDER_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET /api/v1/repo`: the trusted release and what this node holds of it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RepoStatus {
    pub(crate) root_version: u64,
    pub(crate) timestamp_version: Option<u64>,
    pub(crate) targets_version: Option<u64>,
    /// Whether the metadata verifies and has not expired.
    pub(crate) valid: bool,
    /// Why not, when it does not.
    pub(crate) error: Option<String>,
    pub(crate) targets: Vec<TargetStatus>,
}

/// One target of the release.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TargetStatus {
    /// `NAME@VERSION`.
    pub(crate) target: String,
    pub(crate) category: Category,
    pub(crate) platform: Option<String>,
    pub(crate) length: u64,
    /// BLAKE3 of the blob, hex.
    pub(crate) blake3: String,
    pub(crate) local: LocalState,
    /// Bytes verified on this node.
    pub(crate) verified: u64,
    /// The running or last fetch of it.
    pub(crate) fetch: Option<crate::daemon::repo::FetchProgress>,
}

/// How much of a target's blob this node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LocalState {
    /// The whole blob, verified.
    Complete,
    /// Some verified chunks.
    Partial,
    /// Nothing yet.
    Missing,
}

impl LocalState {
    /// `complete`, `partial` or `missing`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Missing => "missing",
        }
    }
}

/// `POST /api/v1/repo/fetch`: the fetch started.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct FetchStarted {
    pub(crate) target: String,
    pub(crate) blake3: String,
    pub(crate) length: u64,
}

/// A bundle applied (from a release or a peer).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BundleApplied {
    /// Whether it changed what the node trusts.
    pub(crate) changed: bool,
    pub(crate) root_version: u64,
    pub(crate) targets_version: Option<u64>,
}

/// `POST /api/v1/repo/release`: the release this node now serves.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ReleaseApplied {
    /// The target the file is.
    pub(crate) target: String,
    pub(crate) blake3: String,
    pub(crate) result: BundleApplied,
}

/// `POST /api/v1/repo/release`: a component released, or new metadata only (a key rotation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum ReleaseReply {
    Component(ReleaseApplied),
    Metadata(BundleApplied),
}

/// The DHT provider key of a blob.
pub(crate) fn blob_key(hash: &BlobHash) -> Vec<u8> {
    format!("blob/{hash}").into_bytes()
}

impl EventLoop {
    /// Mirrors the admitted set for the transfer server.
    pub(super) fn sync_admitted(&self) {
        self.repo.admitted.set(self.node.admitted().collect());
    }

    /// Asks `peer` for its repository state; what it sends is applied like any bundle.
    pub(super) fn fetch_bundle_from(&self, peer: PeerId) {
        let mut control = self.repo.fetcher.control.clone();
        let client = self.repo.fetcher.client.clone();
        let after_root = self.repo.trusted.root_version();
        tokio::spawn(async move {
            let attempt = async {
                let mut s = control
                    .open_stream(peer, PROTOCOL)
                    .await
                    .map_err(|e| e.to_string())?;
                write_request(&mut s, &Request::Bundle { after_root })
                    .await
                    .map_err(|e| e.to_string())?;
                let (status, body) = read_response(
                    &mut s,
                    gaiamesh_protocol::repository::metadata::MAX_BUNDLE_BYTES,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok::<_, String>((status, body))
            };
            match tokio::time::timeout(std::time::Duration::from_secs(20), attempt).await {
                Ok(Ok((status, body))) if status == Status::Ok as u8 => {
                    client.offer_bundle(body, peer).await;
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "bundle request failed"),
                Err(_) => debug!(%peer, "bundle request timed out"),
            }
        });
    }

    /// Anti-entropy for the repository: a random admitted peer's bundle, in case a gossiped
    /// release was missed (published before the mesh formed, or while this node was away).
    pub(super) fn repo_anti_entropy(&mut self) {
        let peers: Vec<PeerId> = self.node.admitted().collect();
        if peers.is_empty() {
            return;
        }
        let i = rand::Rng::gen_range(&mut self.rng, 0..peers.len());
        self.fetch_bundle_from(peers[i]);
    }

    /// Applies a bundle from `from` (a peer) or from the local API (`None`).
    pub(super) fn apply_bundle(
        &mut self,
        bytes: &[u8],
        from: Option<PeerId>,
    ) -> Result<BundleApplied, CommandError> {
        let bundle = Bundle::decode(bytes).map_err(CommandError::invalid)?;
        let mut next = self.repo.trusted.clone();
        let applied = next
            .apply(&bundle, self.now())
            .map_err(CommandError::invalid)?;
        if applied.changed() {
            self.repo.trusted = next;
            info!(
                from = ?from.map(|p| p.to_string()),
                root = self.repo.trusted.root_version(),
                targets = ?self.repo.trusted.trusted_targets().map(|t| t.body().version),
                "repository release trusted"
            );
            self.repo_changed(from.is_none());
        }
        Ok(BundleApplied {
            changed: applied.changed(),
            root_version: self.repo.trusted.root_version(),
            targets_version: self
                .repo
                .trusted
                .trusted_targets()
                .map(|t| t.body().version),
        })
    }

    /// After a change: persist, refresh what the server hands out, announce (when the
    /// release is ours), fetch mandatory components.
    fn repo_changed(&mut self, announce: bool) {
        if let Err(e) = self.dir.save_repository(&self.repo.trusted) {
            warn!(error = %e, "cannot save the repository state");
        }
        if let Ok(bytes) = self.repo.trusted.bundle(0).encode() {
            self.repo.bundle.set(bytes);
        }
        if announce && let Some(ts) = self.repo.trusted.timestamp() {
            let topic = self.repo.topic.clone();
            if let Err(e) = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, ts.bytes.clone())
            {
                debug!(error = ?e, "cannot gossip the new timestamp (no peers yet?)");
            }
        }
        self.emit(NodeEvent::RepoRelease {
            targets_version: self
                .repo
                .trusted
                .trusted_targets()
                .map_or(0, |t| t.body().version),
        });
        self.fetch_mandatory();
        self.collect_garbage();
    }

    /// After a new release: blobs the release no longer names are unpinned and deleted
    /// (off the event loop). Blobs it names stay, fetched or not.
    fn collect_garbage(&self) {
        let Some(targets) = self.repo.trusted.trusted_targets() else {
            return;
        };
        let keep: Vec<BlobHash> = targets
            .body()
            .targets
            .values()
            .map(|t| t.custom.blake3)
            .collect();
        let store = self.repo.fetcher.store.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.list().and_then(|all| {
                for (hash, rec) in all {
                    if rec.pinned && !keep.contains(&hash) {
                        store.set_pinned(&hash, false)?;
                    }
                }
                store.gc(&keep)
            });
            match result {
                Ok(0) => {}
                Ok(freed) => info!(freed, "blobs no longer in the release deleted"),
                Err(e) => warn!(error = %e, "blob garbage collection failed"),
            }
        });
    }

    /// Starts fetches for every mandatory component not held completely.
    pub(super) fn fetch_mandatory(&mut self) {
        if !self.repo.auto_fetch {
            return;
        }
        let Ok(targets) = self.repo.trusted.targets(self.now()) else {
            return;
        };
        for (name, info) in &targets.targets {
            if info.custom.category != Category::Mandatory {
                continue;
            }
            let complete = self
                .repo
                .fetcher
                .store
                .get(&info.custom.blake3)
                .ok()
                .flatten()
                .is_some_and(|r| r.complete);
            if !complete {
                self.repo
                    .fetcher
                    .start(name.to_string(), info.custom.blake3, info.length, true);
            }
        }
    }

    /// A gossiped timestamp: forwarded if it verifies under the trusted root and is newer;
    /// either way, a newer one makes the node ask the sender for the whole bundle.
    pub(super) fn on_repo_gossip(
        &mut self,
        source: PeerId,
        message: &gossipsub::Message,
    ) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        if !self.node.is_admitted(&source) {
            return Reject;
        }
        let Ok(ts) = Signed::<Timestamp>::decode(&message.data) else {
            return Reject;
        };
        let trusted = self
            .repo
            .trusted
            .timestamp()
            .map_or(0, |t| t.body().version);
        let Some(root) = self.repo.trusted.root() else {
            // Nothing to check it against yet: do not forward, but catch up from the sender.
            self.fetch_bundle_from(source);
            return Ignore;
        };
        if ts.verify(&root.body().timestamp).is_err() {
            return Reject;
        }
        if ts.body().version <= trusted {
            return Ignore;
        }
        self.fetch_bundle_from(source);
        Accept
    }

    /// Starts a provider lookup for `hash`; admitted peers are candidates too.
    pub(super) fn lookup_blob_providers(
        &mut self,
        hash: BlobHash,
        reply: oneshot::Sender<Vec<PeerId>>,
    ) {
        let qid = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(RecordKey::new(&blob_key(&hash)));
        self.repo.lookups.insert(
            qid,
            (
                reply,
                self.node.admitted().collect(),
                std::time::Instant::now(),
            ),
        );
    }

    /// Answers provider lookups running longer than [`PROVIDER_WAIT`] with what they have
    /// (the admitted peers at least): a download should not wait for a slow DHT query.
    pub(super) fn expire_blob_lookups(&mut self) {
        let late: Vec<libp2p::kad::QueryId> = self
            .repo
            .lookups
            .iter()
            .filter(|(_, (_, found, t))| !found.is_empty() && t.elapsed() >= PROVIDER_WAIT)
            .map(|(q, _)| *q)
            .collect();
        for q in late {
            if let Some((reply, found, _)) = self.repo.lookups.remove(&q) {
                let _ = reply.send(found.into_iter().collect());
            }
            if let Some(mut running) = self.swarm.behaviour_mut().kad.query_mut(&q) {
                running.finish();
            }
        }
    }

    /// Provider lookup progress; true when the query was a blob lookup.
    pub(super) fn on_blob_lookup(
        &mut self,
        qid: libp2p::kad::QueryId,
        result: &libp2p::kad::QueryResult,
        last: bool,
    ) -> bool {
        use libp2p::kad::{GetProvidersOk, QueryResult};
        let Some((_, found, _)) = self.repo.lookups.get_mut(&qid) else {
            return false;
        };
        if let QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders { providers, .. })) =
            result
        {
            found.extend(providers.iter().copied());
        }
        if last && let Some((reply, found, _)) = self.repo.lookups.remove(&qid) {
            let _ = reply.send(found.into_iter().collect());
        }
        true
    }

    /// Announces every complete blob (after joins and hourly, with the attribute keys).
    pub(super) fn provide_blobs(&mut self) {
        let Ok(list) = self.repo.fetcher.store.list() else {
            return;
        };
        for (hash, rec) in list {
            if rec.complete {
                self.provide_blob(hash);
            }
        }
    }

    pub(super) fn provide_blob(&mut self, hash: BlobHash) {
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .kad
            .start_providing(RecordKey::new(&blob_key(&hash)))
        {
            debug!(blob = %hash.short(), error = ?e, "cannot announce a blob");
        }
    }

    /// `GET /api/v1/repo`.
    pub(super) fn repo_status(&self) -> RepoStatus {
        let now = self.now();
        let fetches = self.repo.fetcher.snapshot();
        let t = self.repo.trusted.trusted_targets();
        let targets: Vec<TargetStatus> = t
            .map(|t| {
                t.body()
                    .targets
                    .iter()
                    .map(|(name, info)| {
                        let rec = self
                            .repo
                            .fetcher
                            .store
                            .get(&info.custom.blake3)
                            .ok()
                            .flatten();
                        let local = match &rec {
                            Some(r) if r.complete => LocalState::Complete,
                            Some(_) => LocalState::Partial,
                            None => LocalState::Missing,
                        };
                        TargetStatus {
                            target: name.to_string(),
                            category: info.custom.category,
                            platform: info.custom.platform.clone(),
                            length: info.length,
                            blake3: info.custom.blake3.to_string(),
                            local,
                            verified: rec.map_or(0, |r| r.verified_bytes()),
                            fetch: fetches.get(&info.custom.blake3).cloned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        RepoStatus {
            root_version: self.repo.trusted.root_version(),
            timestamp_version: self.repo.trusted.timestamp().map(|t| t.body().version),
            targets_version: t.map(|t| t.body().version),
            valid: self.repo.trusted.targets(now).is_ok(),
            error: self.repo.trusted.targets(now).err().map(|e| e.to_string()),
            targets,
        }
    }

    /// `POST /api/v1/repo/fetch`: NAME@VERSION, or NAME for its newest version.
    pub(super) fn repo_fetch(&mut self, target: &str) -> Result<FetchStarted, CommandError> {
        let targets = self
            .repo
            .trusted
            .targets(self.now())
            .map_err(|e| CommandError::Conflict(format!("no valid release: {e}")))?;
        let found = match target.parse::<gaiamesh_protocol::repository::metadata::TargetName>() {
            Ok(name) => targets.targets.get_key_value(&name),
            Err(_) => targets.latest(target),
        };
        let (name, info) = found
            .ok_or_else(|| CommandError::NotFound(format!("{target} is not in the release")))?;
        let (name, hash, length) = (name.to_string(), info.custom.blake3, info.length);
        let pin = info.custom.category == Category::Mandatory;
        self.repo.fetcher.start(name.clone(), hash, length, pin);
        Ok(FetchStarted {
            target: name,
            blake3: hash.to_string(),
            length,
        })
    }

    /// `POST /api/v1/repo/release`: imports `file` off the event loop, then applies the
    /// bundle, which must name the file's hash.
    pub(super) fn repo_release(
        &mut self,
        bundle: Vec<u8>,
        file: Option<std::path::PathBuf>,
        reply: oneshot::Sender<Result<ReleaseReply, CommandError>>,
    ) {
        let Some(file) = file else {
            // No new blob (a key rotation): trust and announce the bundle.
            let _ = reply.send(self.apply_bundle(&bundle, None).map(ReleaseReply::Metadata));
            return;
        };
        let store = self.repo.fetcher.store.clone();
        let client = self.repo.fetcher.client.clone();
        tokio::spawn(async move {
            let imported = tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&file).map_err(|e| {
                    CommandError::Invalid(format!("cannot read {}: {e}", file.display()))
                })?;
                store
                    .import(f, false)
                    .map_err(|e| CommandError::internal("importing the file", e))
            })
            .await
            .map_err(|e| CommandError::internal("importing the file", e))
            .and_then(|r| r);
            let result = match imported {
                Ok((hash, _)) => client
                    .apply_local_release(bundle, hash)
                    .await
                    .map(ReleaseReply::Component),
                Err(e) => Err(e),
            };
            let _ = reply.send(result);
        });
    }

    /// Second half of a release: the blob is in the store; the bundle must name it.
    pub(super) fn apply_local_release(
        &mut self,
        bundle: &[u8],
        hash: BlobHash,
    ) -> Result<ReleaseApplied, CommandError> {
        let decoded = Bundle::decode(bundle).map_err(CommandError::invalid)?;
        let mut check = self.repo.trusted.clone();
        check
            .apply(&decoded, self.now())
            .map_err(CommandError::invalid)?;
        let named = check
            .trusted_targets()
            .and_then(|t| {
                t.body()
                    .targets
                    .iter()
                    .find(|(_, i)| i.custom.blake3 == hash)
                    .map(|(n, i)| (n.clone(), i.custom.category))
            })
            .ok_or_else(|| {
                CommandError::Invalid("the release does not name the file's BLAKE3 hash".into())
            })?;
        if named.1 == Category::Mandatory {
            let _ = self.repo.fetcher.store.set_pinned(&hash, true);
        }
        let out = self.apply_bundle(bundle, None)?;
        if let Ok(mut s) = self.repo.seeding.lock() {
            s.published(hash);
        }
        self.provide_blob(hash);
        Ok(ReleaseApplied {
            target: named.0.to_string(),
            blake3: hash.to_string(),
            result: out,
        })
    }
}
