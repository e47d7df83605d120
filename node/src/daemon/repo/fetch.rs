//! Multi-source blob downloads: the missing ranges are split into 1 MiB segments and spread
//! over the providers that hold them (HAVE, refreshed four times a second, so partial
//! holders serve too, as soon as they verified a segment; at most `per_peer` in flight
//! each and `in_flight` in all, ties between equally loaded holders broken at random);
//! a segment still unanswered after
//! the hedge delay is asked from a second provider too and the first valid answer counts; a
//! provider that sends data failing verification is penalised (excluded for
//! [`PENALTY`] and reported) and its segment fetched elsewhere. Everything verified is on
//! disk, so a restarted node resumes where it stopped.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bao_tree::ChunkRanges;
use futures::{AsyncReadExt, FutureExt as _};
use gaiamesh_protocol::repository::BlobHash;
use libp2p::PeerId;
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::{info, warn};

use super::{
    MAX_HAVE_RANGES, PROTOCOL, Request, SEGMENT_CHUNKS, Status, max_response_bytes, ranges_of,
    read_response, write_request,
};
use crate::{
    blobs::{BlobStore, IngestError},
    daemon::{Client, pipe},
};

/// How long a provider that sent bad data is not asked again.
pub(crate) const PENALTY: Duration = Duration::from_secs(600);
/// A segment request that takes longer than this fails.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pieces of a segment received ahead of its verification.
const DECODE_AHEAD: usize = 4;
/// A segment unanswered this long is hedged to another provider.
const HEDGE_AFTER: Duration = Duration::from_secs(3);
/// Providers are asked which ranges they hold this often during a transfer (every hop of
/// a segment through the swarm waits for it: 500 ms measured worse on 8 capped nodes).
const HAVE_REFRESH: Duration = Duration::from_millis(250);
/// A transfer with segments left that no provider holds gives up after this long.
const STUCK_AFTER: Duration = Duration::from_secs(5);
/// Verified ranges are made durable and recorded after this many bytes…
const COMMIT_BYTES: u64 = 16 * 1024 * 1024;
/// … or this long, whichever comes first.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Failures of one segment by every provider of a round that end the round (providers are
/// then looked up again: one that came back, or a new one, may deliver it).
const MAX_STRIKES: u32 = 3;
/// A seed's "busy" answer for a segment holds this long.
const BUSY_BACKOFF: Duration = Duration::from_secs(1);
/// The transfer loop wakes up at least this often.
const TICK: Duration = Duration::from_millis(250);
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
    /// Segment requests in flight over all providers of one download.
    pub(crate) in_flight: usize,
    pub(crate) progress: Arc<Mutex<HashMap<BlobHash, FetchProgress>>>,
    pub(crate) penalised: Arc<Mutex<HashMap<PeerId, Instant>>>,
    pub(crate) me: PeerId,
    pub(crate) metrics: crate::daemon::metrics::RepoMetrics,
}

enum Outcome {
    /// The segment arrived (this many bytes) and was verified and written, up to the error
    /// that stopped it, if any; the ranges written await the next batched commit.
    Ingested(u64, ChunkRanges, Result<(), IngestError>),
    /// A seed is super-seeding: get this segment elsewhere or later.
    Busy,
    Failed(String),
}

/// Why a blob fetch failed (shown in `GET /api/v1/repo` as `failed: …`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// No provider delivered the missing segments in all the rounds allowed.
    #[error("no provider delivered it after {0} rounds")]
    NoProvider(u32),
    /// The local blob store failed.
    #[error("blob store: {0}")]
    Store(#[from] crate::blobs::BlobError),
    /// Verified data could not be written.
    #[error("storing verified data: {0}")]
    Ingest(#[from] IngestError),
    /// A blocking task or a commit task ended abnormally.
    #[error("{0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for FetchError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

/// What a transfer task reports.
enum Event {
    Have(PeerId, Option<ChunkRanges>),
    Segment(PeerId, (u64, u64), Outcome),
    /// A background commit finished: the bytes now verified and recorded, or why not.
    Committed(Result<u64, FetchError>),
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

    async fn missing(&self, hash: BlobHash, length: u64) -> Result<Vec<(u64, u64)>, FetchError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let d = store.download(hash, length)?;
            Ok::<_, FetchError>(crate::blobs::ranges_to_vec(&d.missing()))
        })
        .await?
    }

    fn is_penalised(&self, peer: &PeerId) -> bool {
        self.penalised
            .lock()
            .is_ok_and(|p| p.get(peer).is_some_and(|t| t.elapsed() < PENALTY))
    }

    async fn run(&self, hash: BlobHash, length: u64) -> Result<(), FetchError> {
        let mut last_missing: Option<u64> = None;
        for round in 0..MAX_ROUNDS {
            let missing = self.missing(hash, length).await?;
            if missing.is_empty() {
                return Ok(());
            }
            let missing_chunks: u64 = missing.iter().map(|(a, b)| b - a).sum();
            if last_missing.is_some_and(|last| missing_chunks >= last) {
                // The last round made no progress (its providers failed): wait first.
                tokio::time::sleep(Duration::from_secs(u64::from(round).min(30))).await;
            }
            last_missing = Some(missing_chunks);
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
                last_missing = None; // waited already
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
        Err(FetchError::NoProvider(MAX_ROUNDS))
    }

    /// Spreads `segments` over `providers` until every segment is verified, no provider is
    /// left, or no provider holds any missing segment for a while (the caller then looks for
    /// providers again). Each provider's verified ranges (HAVE) are asked first and again
    /// every [`HAVE_REFRESH`], so partial holders serve what they have: the swarm, not the
    /// publisher alone, carries the load. The segment order is shuffled per node so that
    /// nodes start on different segments.
    async fn transfer(
        &self,
        hash: BlobHash,
        length: u64,
        providers: Vec<PeerId>,
        segments: VecDeque<(u64, u64)>,
    ) -> Result<(), FetchError> {
        let mut pending = ChunkRanges::empty();
        let result = self
            .transfer_inner(hash, length, providers, segments, &mut pending)
            .await;
        // Whatever was verified and written becomes durable and recorded, even on error.
        let committed = self.commit(hash, &mut pending).await;
        result.and(committed)
    }

    /// Makes the pending verified ranges durable and records them.
    async fn commit(&self, hash: BlobHash, pending: &mut ChunkRanges) -> Result<(), FetchError> {
        if pending.is_empty() {
            return Ok(());
        }
        let got = std::mem::replace(pending, ChunkRanges::empty());
        let verified = commit_ranges(self.store.clone(), hash, got).await?;
        self.update(hash, |e| e.verified = verified);
        Ok(())
    }

    async fn transfer_inner(
        &self,
        hash: BlobHash,
        length: u64,
        mut providers: Vec<PeerId>,
        segments: VecDeque<(u64, u64)>,
        pending: &mut ChunkRanges,
    ) -> Result<(), FetchError> {
        let mut last_commit = Instant::now();
        let mut queue: Vec<(u64, u64)> = segments.into_iter().collect();
        {
            use rand::seq::SliceRandom;
            queue.shuffle(&mut rand::thread_rng());
        }
        // Requests run as tasks of their own: they keep streaming while this loop schedules
        // or waits for a commit's fsync (polled from here, they stalled meanwhile). Dropping
        // the set on return aborts what is still running.
        let mut tasks: JoinSet<Event> = JoinSet::new();
        let mut haves: HashMap<PeerId, ChunkRanges> = HashMap::new();
        let mut asking_have: HashSet<PeerId> = HashSet::new();
        let mut load: HashMap<PeerId, usize> = HashMap::new();
        let mut started: HashMap<(u64, u64), (Instant, bool)> = HashMap::new();
        let mut done: HashSet<(u64, u64)> = HashSet::new();
        let mut last_have = Instant::now() - HAVE_REFRESH;
        let mut idle_since: Option<Instant> = None;
        // (peer, segment) a seed refused recently (super-seeding): not asked again for 1 s.
        let mut busy: HashMap<(PeerId, (u64, u64)), Instant> = HashMap::new();
        // How often a provider failed to deliver a segment (cut off, refused, timed out):
        // the others are asked first, so one that keeps failing cannot starve a download.
        let mut strikes: HashMap<(PeerId, (u64, u64)), u32> = HashMap::new();
        let mut committing = false;
        loop {
            busy.retain(|_, t| t.elapsed() < BUSY_BACKOFF);
            if last_have.elapsed() >= HAVE_REFRESH {
                last_have = Instant::now();
                for p in &providers {
                    if asking_have.insert(*p) {
                        let peer = *p;
                        tasks.spawn(caught(self.have(peer, hash), move || {
                            Event::Have(peer, None)
                        }));
                    }
                }
            }
            // Rarest first: segments held by the fewest providers go first (the publisher's
            // upload is spent on segments nobody else has yet); ties keep the shuffled order.
            queue.retain(|seg| !done.contains(seg));
            let holders = |seg: &(u64, u64)| {
                let want = ranges_of(&[*seg]);
                providers
                    .iter()
                    .filter(|p| haves.get(*p).is_some_and(|h| h.is_superset(&want)))
                    .count()
            };
            let mut order: Vec<(usize, usize)> = queue
                .iter()
                .enumerate()
                .map(|(i, seg)| (holders(seg), i))
                .filter(|(h, _)| *h > 0)
                .collect();
            order.sort_unstable();
            let mut assigned = Vec::new();
            // Requests in flight (kept up to date as segments are assigned below).
            let mut total = load.values().sum::<usize>();
            for (_, i) in order {
                if total >= self.in_flight {
                    break;
                }
                let seg = queue[i];
                let want = ranges_of(&[seg]);
                // A partial holder before a seed (spare the seeds' upload for the segments
                // only they have), then the least loaded, then at random: every fetcher
                // breaking ties the same way (by peer id) piled onto the same few uplinks.
                let peer = providers
                    .iter()
                    .filter(|p| load.get(*p).copied().unwrap_or(0) < self.per_peer)
                    .filter(|p| !busy.contains_key(&(**p, seg)))
                    .filter_map(|p| {
                        let h = haves.get(p)?;
                        h.is_superset(&want).then(|| {
                            let held: u64 = h
                                .boundaries()
                                .chunks_exact(2)
                                .map(|w| w[1].0 - w[0].0)
                                .sum();
                            // A complete holder (a seed) only when no partial one has it.
                            (
                                strikes.get(&(*p, seg)).copied().unwrap_or(0),
                                held * 1024 >= length,
                                load.get(p).copied().unwrap_or(0),
                                rand::random::<u32>(),
                                *p,
                            )
                        })
                    })
                    .min()
                    .map(|(_, _, _, _, p)| p);
                if let Some(peer) = peer {
                    total += 1;
                    assigned.push(i);
                    *load.entry(peer).or_default() += 1;
                    started.entry(seg).or_insert((Instant::now(), false));
                    tasks.spawn(caught(self.request(peer, hash, length, seg), move || {
                        Event::Segment(peer, seg, Outcome::Failed("request task panicked".into()))
                    }));
                }
            }
            assigned.sort_unstable_by(|a, b| b.cmp(a));
            for i in assigned {
                queue.remove(i);
            }
            if queue.is_empty() && total == 0 {
                return settle(&mut tasks, committing).await;
            }
            if providers.is_empty() {
                return settle(&mut tasks, committing).await;
            }
            if total == 0 {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > STUCK_AFTER {
                    // Nobody holds what is missing: look for providers again.
                    return settle(&mut tasks, committing).await;
                }
            } else {
                idle_since = None;
            }
            let next = tokio::time::timeout(TICK, tasks.join_next()).await;
            let event = match next {
                Ok(Some(Ok(e))) => e,
                Ok(Some(Err(e))) => {
                    // Only cancellation is left (panics are caught in the task).
                    tracing::debug!(error = %e, "transfer task ended");
                    continue;
                }
                Ok(None) => {
                    tokio::time::sleep(TICK).await;
                    continue;
                }
                Err(_) => {
                    // Hedge the oldest slow segment to another provider holding it.
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
                        queue.push(seg);
                        self.update(hash, |e| e.hedged += 1);
                    }
                    continue;
                }
            };
            let (peer, seg, outcome) = match event {
                Event::Have(peer, ranges) => {
                    asking_have.remove(&peer);
                    match ranges {
                        Some(r) => {
                            haves.insert(peer, r);
                        }
                        None => {
                            haves.remove(&peer);
                        }
                    }
                    continue;
                }
                Event::Segment(peer, seg, outcome) => (peer, seg, outcome),
                Event::Committed(r) => {
                    committing = false;
                    let verified = r?;
                    self.update(hash, |e| e.verified = verified);
                    continue;
                }
            };
            if let Some(l) = load.get_mut(&peer) {
                *l = l.saturating_sub(1);
            }
            if done.contains(&seg) {
                continue; // the hedged twin already delivered it
            }
            match outcome {
                Outcome::Ingested(bytes, got, ingested) => {
                    self.metrics.downloaded.inc_by(bytes);
                    *pending |= got;
                    match ingested {
                        Ok(()) => {
                            done.insert(seg);
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
                            haves.remove(&peer);
                            queue.push(seg);
                        }
                        Err(IngestError::Truncated { .. }) => {
                            *strikes.entry((peer, seg)).or_default() += 1;
                            haves.remove(&peer);
                            queue.push(seg);
                            if struck_out(&providers, &haves, &strikes, seg) {
                                return settle(&mut tasks, committing).await;
                            }
                        }
                        Err(e @ IngestError::Store(_)) => return Err(e.into()),
                    }
                }
                Outcome::Busy => {
                    busy.insert((peer, seg), Instant::now());
                    queue.push(seg);
                }
                Outcome::Failed(reason) => {
                    tracing::debug!(%peer, blob = %hash.short(), %reason, "segment request failed");
                    // It may hold less than it said: ask again at the next HAVE round.
                    *strikes.entry((peer, seg)).or_default() += 1;
                    haves.remove(&peer);
                    queue.push(seg);
                    if struck_out(&providers, &haves, &strikes, seg) {
                        return settle(&mut tasks, committing).await;
                    }
                }
            }
            // Durability in batches: an fsync per segment capped a single-source transfer far
            // below what QUIC carries. Checked after every segment event, failed ones too, so
            // what arrived intact is recorded while one segment keeps failing.
            let pending_bytes: u64 = pending
                .boundaries()
                .chunks_exact(2)
                .map(|w| (w[1].0 - w[0].0) * 1024)
                .sum();
            // In the background, one at a time: new segments are asked for while the fsync
            // runs (waiting here drained the pipeline on every commit).
            if !committing
                && pending_bytes > 0
                && (pending_bytes >= COMMIT_BYTES || last_commit.elapsed() >= COMMIT_EVERY)
            {
                let got = std::mem::replace(pending, ChunkRanges::empty());
                let store = self.store.clone();
                tasks.spawn(caught(
                    async move { Event::Committed(commit_ranges(store, hash, got).await) },
                    || Event::Committed(Err(FetchError::Task("commit task panicked".into()))),
                ));
                committing = true;
                last_commit = Instant::now();
            }
        }
    }

    /// The verified ranges `peer` holds of `hash` (`None`: none, or it did not answer).
    fn have(
        &self,
        peer: PeerId,
        hash: BlobHash,
    ) -> impl std::future::Future<Output = Event> + use<> {
        let mut control = self.control.clone();
        async move {
            let attempt = async {
                let mut s = control.open_stream(peer, PROTOCOL).await.ok()?;
                write_request(&mut s, &Request::Have { hash }).await.ok()?;
                let (status, body) = read_response(&mut s, 16 * MAX_HAVE_RANGES + 16)
                    .await
                    .ok()?;
                if status != Status::Ok as u8 {
                    return None;
                }
                let v: Vec<(u64, u64)> = postcard::from_bytes(&body).ok()?;
                Some(ranges_of(&v))
            };
            let ranges = tokio::time::timeout(Duration::from_secs(10), attempt)
                .await
                .ok()
                .flatten();
            Event::Have(peer, ranges)
        }
    }

    /// Asks `peer` for one segment and verifies and writes what arrives (on a blocking
    /// thread, so other segments keep arriving meanwhile).
    fn request(
        &self,
        peer: PeerId,
        hash: BlobHash,
        length: u64,
        seg: (u64, u64),
    ) -> impl std::future::Future<Output = Event> + use<> {
        let mut control = self.control.clone();
        let store = self.store.clone();
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
                let mut status = [0u8; 1];
                s.read_exact(&mut status).await.map_err(|e| e.to_string())?;
                if status[0] == Status::Busy as u8 {
                    return Ok(None);
                } else if status[0] == Status::NotFound as u8 {
                    return Err("the peer does not have it".to_owned());
                } else if status[0] != Status::Ok as u8 {
                    return Err("the peer refused".to_owned());
                }
                // Verified and written on a blocking thread while the rest arrives.
                let (mut sink, reader) = pipe::from_async(DECODE_AHEAD, pipe::PIECE);
                let ingest =
                    tokio::task::spawn_blocking(move || match store.download(hash, length) {
                        Ok(mut d) => d.ingest_deferred(reader, &ranges_of(&[seg])),
                        Err(e) => (ChunkRanges::empty(), Err(IngestError::from(e))),
                    });
                let limit = max_response_bytes(seg.1 - seg.0) as u64;
                let mut received = 0u64;
                let read = async {
                    loop {
                        let n = sink
                            .pump_piece(&mut s, pipe::PIECE, REQUEST_TIMEOUT)
                            .await?;
                        if n == 0 {
                            return Ok(());
                        }
                        received += n as u64;
                        if received > limit {
                            return Err(std::io::Error::other(format!(
                                "response larger than the {limit} bytes asked for"
                            )));
                        }
                    }
                }
                .await;
                drop(sink);
                let (got, ingested) = ingest.await.map_err(|e| format!("ingest task: {e}"))?;
                if let Err(e) = &read {
                    tracing::debug!(%peer, blob = %hash.short(), error = %e, "segment stream ended early");
                }
                Ok(Some((received, got, ingested)))
            };
            let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, attempt).await {
                Ok(Ok(Some((n, got, r)))) => Outcome::Ingested(n, got, r),
                Ok(Ok(None)) => Outcome::Busy,
                Ok(Err(e)) => Outcome::Failed(e),
                Err(_) => Outcome::Failed("timed out".into()),
            };
            Event::Segment(peer, seg, outcome)
        }
    }
}

/// Makes `got` durable and records it (on a blocking thread); the bytes now verified.
async fn commit_ranges(
    store: Arc<BlobStore>,
    hash: BlobHash,
    got: ChunkRanges,
) -> Result<u64, FetchError> {
    let rec = tokio::task::spawn_blocking(move || store.commit(&hash, &got)).await??;
    Ok(rec.verified_bytes())
}

/// `fut`, or `fallback()` if it panics (so its segment is asked for again, not lost).
async fn caught(
    fut: impl std::future::Future<Output = Event> + Send + 'static,
    fallback: impl FnOnce() -> Event + Send + 'static,
) -> Event {
    std::panic::AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| fallback())
}

/// Waits for a background commit still running (the rest of `tasks` is dropped, which
/// aborts it), so nothing recorded is lost when a transfer round ends.
async fn settle(tasks: &mut JoinSet<Event>, committing: bool) -> Result<(), FetchError> {
    if !committing {
        return Ok(());
    }
    while let Some(e) = tasks.join_next().await {
        if let Ok(Event::Committed(r)) = e {
            return r.map(|_| ());
        }
    }
    Ok(())
}

/// Whether every provider that could serve `seg` failed it [`MAX_STRIKES`] times. A provider
/// could serve it if it was asked for it (it has strikes) or says it holds it (HAVE); admitted
/// peers that hold nothing of the blob do not count — counting them, a download whose only
/// holder served a damaged copy never gave up and asked that holder forever.
fn struck_out(
    providers: &[PeerId],
    haves: &HashMap<PeerId, ChunkRanges>,
    strikes: &HashMap<(PeerId, (u64, u64)), u32>,
    seg: (u64, u64),
) -> bool {
    let want = ranges_of(&[seg]);
    let mut candidates = providers
        .iter()
        .filter(|p| {
            strikes.contains_key(&(**p, seg)) || haves.get(*p).is_some_and(|h| h.is_superset(&want))
        })
        .peekable();
    let out = candidates.peek().is_some()
        && candidates.all(|p| strikes.get(&(*p, seg)).copied().unwrap_or(0) >= MAX_STRIKES);
    if out {
        tracing::debug!(
            ?seg,
            "every provider failed this segment; looking for providers again"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_providers_that_could_serve_a_segment_keep_a_download_going() {
        let seg = (0, SEGMENT_CHUNKS);
        let (seed, idle, holder) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut strikes = HashMap::new();
        let mut haves = HashMap::new();
        let providers = vec![seed, idle];
        assert!(
            !struck_out(&providers, &haves, &strikes, seg),
            "nobody asked yet"
        );
        strikes.insert((seed, seg), MAX_STRIKES - 1);
        assert!(!struck_out(&providers, &haves, &strikes, seg));
        // The only holder failed it MAX_STRIKES times; `idle` (admitted, holds nothing of
        // the blob, never asked) once kept the download asking the seed forever.
        strikes.insert((seed, seg), MAX_STRIKES);
        assert!(struck_out(&providers, &haves, &strikes, seg));
        // A peer that says it holds the segment and was not asked yet keeps it going.
        haves.insert(holder, ranges_of(&[seg]));
        let providers = vec![seed, idle, holder];
        assert!(!struck_out(&providers, &haves, &strikes, seg));
        strikes.insert((holder, seg), MAX_STRIKES);
        assert!(struck_out(&providers, &haves, &strikes, seg));
    }
}
