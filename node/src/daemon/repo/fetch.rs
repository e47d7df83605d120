//! Multi-source blob downloads: the missing ranges are split into 1 MiB segments and spread
//! over the providers (at most `per_peer` in flight each); a segment still unanswered after
//! the hedge delay is asked from a second provider too and the first valid answer counts; a
//! provider that sends data failing verification is penalised (excluded for
//! [`PENALTY`] and reported) and its segment fetched elsewhere. Everything verified is on
//! disk, so a restarted node resumes where it stopped.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use gaiamesh_protocol::repository::BlobHash;
use libp2p::PeerId;
use serde::Serialize;
use tracing::{info, warn};

use super::{
    PROTOCOL, Request, SEGMENT_CHUNKS, Status, max_response_bytes, ranges_of, read_response,
    write_request,
};
use crate::{
    blobs::{BlobStore, IngestError},
    daemon::Client,
};

/// How long a provider that sent bad data is not asked again.
pub(crate) const PENALTY: Duration = Duration::from_secs(600);
/// A segment request that takes longer than this fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A segment unanswered this long is hedged to another provider.
const HEDGE_AFTER: Duration = Duration::from_secs(3);
/// Provider lookups before a fetch gives up (with backoff up to 30 s between them).
const MAX_ROUNDS: u32 = 40;
/// Most fetches tracked (finished ones are dropped first).
const MAX_TRACKED: usize = 256;

/// The state of one fetch, for `GET /api/v1/repo`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FetchProgress {
    pub(crate) target: String,
    pub(crate) length: u64,
    pub(crate) verified: u64,
    /// `fetching`, `complete` or `failed: REASON`.
    pub(crate) state: String,
    pub(crate) providers: usize,
    pub(crate) penalised_peers: usize,
    pub(crate) hedged: u64,
    pub(crate) elapsed_ms: u64,
}

/// Starts and tracks fetches.
#[derive(Clone)]
pub(crate) struct Fetcher {
    pub(crate) store: Arc<BlobStore>,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) client: Client,
    pub(crate) per_peer: usize,
    pub(crate) progress: Arc<Mutex<HashMap<BlobHash, FetchProgress>>>,
    pub(crate) penalised: Arc<Mutex<HashMap<PeerId, Instant>>>,
    pub(crate) me: PeerId,
    pub(crate) metrics: crate::daemon::metrics::RepoMetrics,
}

enum Outcome {
    Data(Vec<u8>),
    Failed(String),
}

impl Fetcher {
    /// The progress of every tracked fetch.
    pub(crate) fn snapshot(&self) -> HashMap<BlobHash, FetchProgress> {
        self.progress.lock().map(|p| p.clone()).unwrap_or_default()
    }

    fn update(&self, hash: BlobHash, f: impl FnOnce(&mut FetchProgress)) {
        if let Ok(mut p) = self.progress.lock()
            && let Some(e) = p.get_mut(&hash)
        {
            f(e);
        }
    }

    /// Starts fetching `hash` unless a fetch of it is running. `pin`: keep it from gc.
    pub(crate) fn start(&self, target: String, hash: BlobHash, length: u64, pin: bool) {
        {
            let Ok(mut p) = self.progress.lock() else {
                return;
            };
            if p.get(&hash).is_some_and(|e| e.state == "fetching") {
                return;
            }
            if p.len() >= MAX_TRACKED
                && let Some(old) = p
                    .iter()
                    .find(|(_, e)| e.state != "fetching")
                    .map(|(h, _)| *h)
            {
                p.remove(&old);
            }
            p.insert(
                hash,
                FetchProgress {
                    target: target.clone(),
                    length,
                    verified: 0,
                    state: "fetching".into(),
                    providers: 0,
                    penalised_peers: 0,
                    hedged: 0,
                    elapsed_ms: 0,
                },
            );
        }
        let me = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let result = me.run(hash, length).await;
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match result {
                Ok(()) => {
                    if pin {
                        let store = me.store.clone();
                        let _ = tokio::task::spawn_blocking(move || store.set_pinned(&hash, true))
                            .await;
                    }
                    me.client.provide_blob(hash).await;
                    info!(blob = %hash.short(), %target, length, elapsed_ms, "blob fetched");
                    me.update(hash, |e| {
                        e.state = "complete".into();
                        e.verified = length;
                        e.elapsed_ms = elapsed_ms;
                    });
                }
                Err(reason) => {
                    warn!(blob = %hash.short(), %target, %reason, "blob fetch failed");
                    me.update(hash, |e| {
                        e.state = format!("failed: {reason}");
                        e.elapsed_ms = elapsed_ms;
                    });
                }
            }
        });
    }

    async fn missing(&self, hash: BlobHash, length: u64) -> Result<Vec<(u64, u64)>, String> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let d = store.download(hash, length).map_err(|e| e.to_string())?;
            Ok::<_, String>(crate::blobs::ranges_to_vec(&d.missing()))
        })
        .await
        .map_err(|e| e.to_string())?
    }

    fn is_penalised(&self, peer: &PeerId) -> bool {
        self.penalised
            .lock()
            .is_ok_and(|p| p.get(peer).is_some_and(|t| t.elapsed() < PENALTY))
    }

    async fn run(&self, hash: BlobHash, length: u64) -> Result<(), String> {
        for round in 0..MAX_ROUNDS {
            let missing = self.missing(hash, length).await?;
            if missing.is_empty() {
                return Ok(());
            }
            let providers: Vec<PeerId> = self
                .client
                .blob_providers(hash)
                .await
                .into_iter()
                .filter(|p| *p != self.me && !self.is_penalised(p))
                .collect();
            self.update(hash, |e| e.providers = providers.len());
            if providers.is_empty() {
                tokio::time::sleep(Duration::from_secs(u64::from(round + 1).min(30))).await;
                continue;
            }
            let mut segments = VecDeque::new();
            for (a, b) in missing {
                let mut s = a;
                while s < b {
                    let e = (s + SEGMENT_CHUNKS).min(b);
                    segments.push_back((s, e));
                    s = e;
                }
            }
            self.transfer(hash, length, providers, segments).await?;
        }
        Err(format!(
            "no provider delivered it after {MAX_ROUNDS} rounds"
        ))
    }

    /// Spreads `segments` over `providers` until every segment is verified or no provider
    /// is left (the caller then looks for providers again).
    async fn transfer(
        &self,
        hash: BlobHash,
        length: u64,
        mut providers: Vec<PeerId>,
        mut queue: VecDeque<(u64, u64)>,
    ) -> Result<(), String> {
        let mut in_flight = FuturesUnordered::new();
        let mut load: HashMap<PeerId, usize> = HashMap::new();
        let mut started: HashMap<(u64, u64), (Instant, bool)> = HashMap::new();
        let mut done: HashSet<(u64, u64)> = HashSet::new();
        loop {
            // Assign queued segments to the least loaded providers with a free slot.
            while let Some(seg) = queue.front().copied() {
                let Some(peer) = providers
                    .iter()
                    .filter(|p| load.get(*p).copied().unwrap_or(0) < self.per_peer)
                    .min_by_key(|p| load.get(*p).copied().unwrap_or(0))
                    .copied()
                else {
                    break;
                };
                queue.pop_front();
                if done.contains(&seg) {
                    continue;
                }
                *load.entry(peer).or_default() += 1;
                started.entry(seg).or_insert((Instant::now(), false));
                in_flight.push(self.request(peer, hash, seg));
            }
            if in_flight.is_empty() {
                return if queue.is_empty() || providers.is_empty() {
                    Ok(())
                } else {
                    Err("no provider slot for queued segments".into())
                };
            }
            let next = tokio::time::timeout(HEDGE_AFTER, in_flight.next()).await;
            let Ok(Some((peer, seg, outcome))) = next else {
                // Hedge the oldest segment not hedged yet to another provider.
                let oldest = started
                    .iter()
                    .filter(|(s, (t, hedged))| {
                        !*hedged && !done.contains(*s) && t.elapsed() >= HEDGE_AFTER
                    })
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(s, _)| *s);
                if let Some(seg) = oldest
                    && providers.len() > 1
                {
                    if let Some(e) = started.get_mut(&seg) {
                        e.1 = true;
                    }
                    queue.push_front(seg);
                    self.update(hash, |e| e.hedged += 1);
                }
                continue;
            };
            if let Some(l) = load.get_mut(&peer) {
                *l = l.saturating_sub(1);
            }
            if done.contains(&seg) {
                continue; // the hedged twin already delivered it
            }
            match outcome {
                Outcome::Data(bytes) => {
                    self.metrics.downloaded.inc_by(bytes.len() as u64);
                    let store = self.store.clone();
                    let ingested = tokio::task::spawn_blocking(move || {
                        let mut d = store.download(hash, length).map_err(IngestError::from)?;
                        let ranges = ranges_of(&[seg]);
                        d.ingest(bytes.as_slice(), &ranges)?;
                        Ok::<u64, IngestError>(d.verified_bytes())
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                    match ingested {
                        Ok(verified) => {
                            done.insert(seg);
                            self.update(hash, |e| e.verified = verified);
                        }
                        Err(IngestError::Verification { offset, reason }) => {
                            warn!(%peer, blob = %hash.short(), offset, %reason,
                                "peer sent data that fails verification; penalised");
                            if let Ok(mut p) = self.penalised.lock() {
                                p.insert(peer, Instant::now());
                            }
                            self.client.penalise_blob_peer(peer).await;
                            self.update(hash, |e| e.penalised_peers += 1);
                            providers.retain(|p| *p != peer);
                            queue.push_back(seg);
                        }
                        Err(IngestError::Truncated { .. }) => {
                            providers.retain(|p| *p != peer);
                            queue.push_back(seg);
                        }
                        Err(IngestError::Store(e)) => return Err(e.to_string()),
                    }
                }
                Outcome::Failed(reason) => {
                    tracing::debug!(%peer, blob = %hash.short(), %reason, "segment request failed");
                    providers.retain(|p| *p != peer);
                    queue.push_back(seg);
                }
            }
            if providers.is_empty() && in_flight.is_empty() {
                return Ok(());
            }
        }
    }

    fn request(
        &self,
        peer: PeerId,
        hash: BlobHash,
        seg: (u64, u64),
    ) -> impl std::future::Future<Output = (PeerId, (u64, u64), Outcome)> + use<> {
        let mut control = self.control.clone();
        async move {
            let attempt = async {
                let mut s = control
                    .open_stream(peer, PROTOCOL)
                    .await
                    .map_err(|e| e.to_string())?;
                write_request(
                    &mut s,
                    &Request::Blob {
                        hash,
                        ranges: vec![seg],
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
                let (status, body) = read_response(&mut s, max_response_bytes(seg.1 - seg.0))
                    .await
                    .map_err(|e| e.to_string())?;
                if status == Status::Ok as u8 {
                    Ok(body)
                } else if status == Status::NotFound as u8 {
                    Err("the peer does not have it".to_owned())
                } else {
                    Err("the peer refused".to_owned())
                }
            };
            let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
                Ok(Ok(body)) => Outcome::Data(body),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(_) => Outcome::Failed("timed out".into()),
            };
            (peer, seg, outcome)
        }
    }
}
