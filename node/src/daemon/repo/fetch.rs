//! Multi-source blob downloads: the driver around the core's piece scheduler
//! ([`gaiamesh_core::pieces::Download`]), which decides which segment to ask from which
//! provider, when to hedge, and when a round ends. This module opens the streams, asks every
//! provider which ranges it holds (HAVE, refreshed four times a second, so partial holders
//! serve too as soon as they verified a segment), verifies and writes what arrives, penalises
//! a provider whose data fails verification (excluded for [`PENALTY`] and reported), and
//! commits verified ranges in batches. Everything verified is on disk, so a restarted node
//! resumes where it stopped.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bao_tree::ChunkRanges;
use futures::{AsyncReadExt, FutureExt as _};
use gaiamesh_core::pieces::{
    Bits, Download, Failure, Outcome as Answer, SchedulerParams, Status as Progress,
};
use gaiamesh_protocol::repository::BlobHash;
use libp2p::PeerId;
use rand::SeedableRng;
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
/// Providers are asked which ranges they hold this often during a transfer (every hop of
/// a segment through the swarm waits for it: 500 ms measured worse on 8 capped nodes).
const HAVE_REFRESH: Duration = Duration::from_millis(250);
/// Verified ranges are made durable and recorded after this many bytes…
const COMMIT_BYTES: u64 = 16 * 1024 * 1024;
/// … or this long, whichever comes first.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// The transfer loop wakes up at least this often.
const TICK: Duration = Duration::from_millis(250);
/// Provider lookups before a fetch gives up (with backoff up to 30 s between them).
const MAX_ROUNDS: u32 = 40;
/// Most fetches tracked (finished ones are dropped first).
const MAX_TRACKED: usize = 256;

/// The state of one fetch, for `GET /api/v1/repo`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
    /// How downloads schedule their requests (the core's piece scheduler).
    pub(crate) params: SchedulerParams,
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
    /// The answer of a peer for a segment (by index).
    Segment(PeerId, u32, Outcome),
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
            let plan = SegmentPlan::new(length, &missing);
            self.transfer(hash, length, providers, &plan).await?;
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
        plan: &SegmentPlan,
    ) -> Result<(), FetchError> {
        let mut pending = ChunkRanges::empty();
        let result = self
            .transfer_inner(hash, length, providers, plan, &mut pending)
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
        providers: Vec<PeerId>,
        plan: &SegmentPlan,
        pending: &mut ChunkRanges,
    ) -> Result<(), FetchError> {
        // The decisions (which segment from whom, hedging, strikes, backoff, when a round
        // ends) are the core's; this loop moves bytes, asks HAVE and commits.
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut dl = Download::new(
            plan.segments(),
            plan.missing(),
            self.params.clone(),
            &mut rng,
        );
        for p in providers {
            dl.add_provider(p);
        }
        let origin = Instant::now();
        let mut last_commit = Instant::now();
        // Requests run as tasks of their own: they keep streaming while this loop schedules
        // or waits for a commit's fsync (polled from here, they stalled meanwhile). Dropping
        // the set on return aborts what is still running.
        let mut tasks: JoinSet<Event> = JoinSet::new();
        let mut asking_have: HashSet<PeerId> = HashSet::new();
        let mut last_have = Instant::now() - HAVE_REFRESH;
        let mut committing = false;
        loop {
            let now = origin.elapsed();
            if last_have.elapsed() >= HAVE_REFRESH {
                last_have = Instant::now();
                let peers: Vec<PeerId> = dl.providers().collect();
                for peer in peers {
                    if asking_have.insert(peer) {
                        tasks.spawn(caught(self.have(peer, hash), move || {
                            Event::Have(peer, None)
                        }));
                    }
                }
            }
            let hedged = dl.hedges();
            dl.handle_timeout(now);
            if dl.hedges() > hedged {
                let h = dl.hedges();
                self.update(hash, |e| e.hedged = h);
            }
            while let Some((peer, seg)) = dl.poll_request(now, &mut rng) {
                let range = plan.range(seg);
                tasks.spawn(caught(
                    self.request(peer, hash, length, seg, range),
                    move || {
                        Event::Segment(peer, seg, Outcome::Failed("request task panicked".into()))
                    },
                ));
            }
            match dl.status(now) {
                Progress::Running => {}
                Progress::StruckOut => {
                    tracing::debug!(
                        blob = %hash.short(),
                        "every provider failed a segment; looking for providers again"
                    );
                    return settle(&mut tasks, committing).await;
                }
                // Complete; no provider left; or nobody holds what is missing: look for
                // providers again (the caller stops when nothing is missing).
                Progress::Complete | Progress::NoProviders | Progress::Stuck => {
                    return settle(&mut tasks, committing).await;
                }
            }
            let event = match tokio::time::timeout(TICK, tasks.join_next()).await {
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
                Err(_) => continue,
            };
            let now = origin.elapsed();
            let (peer, seg, outcome) = match event {
                Event::Have(peer, ranges) => {
                    asking_have.remove(&peer);
                    match ranges {
                        Some(r) => dl.set_have(peer, plan.held(&r)),
                        None => dl.forget_have(peer),
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
            match outcome {
                Outcome::Ingested(bytes, got, ingested) => {
                    self.metrics.downloaded.inc_by(bytes);
                    *pending |= got;
                    match ingested {
                        Ok(()) => {
                            dl.on_answer(now, peer, seg, Answer::Delivered);
                        }
                        Err(IngestError::Verification { offset, reason }) => {
                            if dl.on_answer(now, peer, seg, Answer::Failed(Failure::BadData)) {
                                warn!(%peer, blob = %hash.short(), offset, %reason,
                                    "peer sent data that fails verification; penalised");
                                if let Ok(mut p) = self.penalised.lock() {
                                    p.insert(peer, Instant::now());
                                }
                                self.client.penalise_blob_peer(peer).await;
                                self.update(hash, |e| e.penalised_peers += 1);
                            }
                        }
                        Err(IngestError::Truncated { .. }) => {
                            dl.on_answer(now, peer, seg, Answer::Failed(Failure::Cutoff));
                        }
                        Err(e @ IngestError::Store(_)) => return Err(e.into()),
                    }
                }
                Outcome::Busy => {
                    dl.on_answer(now, peer, seg, Answer::Failed(Failure::Busy));
                }
                Outcome::Failed(reason) => {
                    tracing::debug!(%peer, blob = %hash.short(), %reason, "segment request failed");
                    dl.on_answer(now, peer, seg, Answer::Failed(Failure::Cutoff));
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
        index: u32,
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
            Event::Segment(peer, index, outcome)
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

/// The segments of a blob: segment `i` covers chunks `[i·S, (i+1)·S)` (S =
/// [`SEGMENT_CHUNKS`]); a missing segment is asked for from its first missing chunk to its
/// last, so a partly verified segment resumes rather than starting over.
pub(super) struct SegmentPlan {
    /// Per segment, the chunk range to ask for.
    ranges: Vec<(u64, u64)>,
    missing: Vec<u32>,
}

impl SegmentPlan {
    /// For a blob of `length` bytes whose `missing` chunk ranges are wanted.
    pub(super) fn new(length: u64, missing: &[(u64, u64)]) -> Self {
        let chunks = length.div_ceil(1024);
        let n = chunks.div_ceil(SEGMENT_CHUNKS);
        let mut ranges: Vec<(u64, u64)> = (0..n)
            .map(|i| (i * SEGMENT_CHUNKS, ((i + 1) * SEGMENT_CHUNKS).min(chunks)))
            .collect();
        let mut wanted: Vec<Option<(u64, u64)>> = vec![None; ranges.len()];
        for &(a, b) in missing {
            let (a, b) = (a.min(chunks), b.min(chunks));
            if a >= b {
                continue;
            }
            for i in a / SEGMENT_CHUNKS..=(b - 1) / SEGMENT_CHUNKS {
                let (s, e) = ranges[i as usize];
                let (s, e) = (a.max(s), b.min(e));
                let w = &mut wanted[i as usize];
                *w = Some(w.map_or((s, e), |(ws, we)| (ws.min(s), we.max(e))));
            }
        }
        let mut missing = Vec::new();
        for (i, w) in wanted.into_iter().enumerate() {
            if let Some(r) = w {
                ranges[i] = r;
                missing.push(i as u32);
            }
        }
        Self { ranges, missing }
    }

    /// Segments of the blob.
    pub(super) fn segments(&self) -> u32 {
        u32::try_from(self.ranges.len()).unwrap_or(u32::MAX)
    }

    /// The segments wanted.
    pub(super) fn missing(&self) -> impl Iterator<Item = u32> + '_ {
        self.missing.iter().copied()
    }

    /// The chunk range to ask for segment `i`.
    pub(super) fn range(&self, i: u32) -> (u64, u64) {
        self.ranges.get(i as usize).copied().unwrap_or((0, 0))
    }

    /// The segments a provider whose verified ranges are `have` can serve.
    pub(super) fn held(&self, have: &ChunkRanges) -> Bits {
        let mut b = Bits::new(self.segments());
        for (i, r) in self.ranges.iter().enumerate() {
            if have.is_superset(&ranges_of(&[*r])) {
                b.insert(i as u32);
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partly_verified_segment_resumes_from_its_first_missing_chunk() {
        let s = SEGMENT_CHUNKS;
        // 2.5 segments; the first half of segment 1 and all of segment 0 verified.
        let length = (2 * s + s / 2) * 1024;
        let plan = SegmentPlan::new(length, &[(s + s / 2, 2 * s + s / 2)]);
        assert_eq!(plan.segments(), 3);
        assert_eq!(plan.missing().collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(plan.range(1), (s + s / 2, 2 * s));
        assert_eq!(plan.range(2), (2 * s, 2 * s + s / 2));
        // A provider holding the second half of segment 1 can serve it; one holding only
        // segment 0 cannot serve anything wanted.
        let held = plan.held(&ranges_of(&[(s + s / 2, 2 * s)]));
        assert_eq!(held.iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(
            plan.held(&ranges_of(&[(0, s)])).iter().collect::<Vec<_>>(),
            vec![0]
        );
        // Nothing missing: nothing wanted.
        assert_eq!(SegmentPlan::new(length, &[]).missing().count(), 0);
    }
}
