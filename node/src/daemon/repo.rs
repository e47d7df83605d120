//! Repository transfers over `/gaiamesh/blobs/1` (libp2p-stream): serving verified bao
//! streams of blob ranges and repository bundles to admitted peers under token-bucket upload
//! limits, and fetching blobs from several providers at once.
//!
//! A request is one postcard message (at most 4 KiB, length-prefixed); the answer is a
//! status byte followed by the bao encoding of the requested ranges (or the bundle), and
//! the stream closes. Blobs move in segments of [`SEGMENT_CHUNKS`] KiB so that a response is
//! bounded and several providers share one download.

mod bucket;
mod fetch;

use std::{collections::HashSet, sync::Arc};

use bao_tree::{ChunkNum, ChunkRanges};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use gaiamesh_protocol::repository::{BlobHash, metadata::MAX_BUNDLE_BYTES};
use libp2p::{PeerId, StreamProtocol};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

pub(crate) use bucket::UploadLimits;
pub(crate) use fetch::{FetchProgress, Fetcher};

use gaiamesh_core::pieces::SuperSeed;

use super::pipe;
use crate::blobs::BlobStore;

/// The transfer protocol.
pub(crate) const PROTOCOL: StreamProtocol = StreamProtocol::new("/gaiamesh/blobs/1");

/// Chunks (1 KiB) per segment: 1 MiB.
pub(crate) const SEGMENT_CHUNKS: u64 = 1024;
/// Largest encoded request.
const MAX_REQUEST_BYTES: usize = 4096;
/// Most inbound transfers served at once; more are refused.
const MAX_SERVING: usize = 64;
/// Pieces a served segment is encoded ahead of the stream.
const ENCODE_AHEAD: usize = 4;

/// What a peer asks for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// The bao stream of these chunk ranges of a blob.
    Blob {
        hash: BlobHash,
        /// (start, end) chunk numbers, at most 16 ranges.
        ranges: Vec<(u64, u64)>,
    },
    /// The repository state the server trusts (roots after `after_root`).
    Bundle { after_root: u64 },
    /// Which chunk ranges of a blob the server holds verified (a postcard `Vec<(u64, u64)>`).
    Have { hash: BlobHash },
}

/// Most ranges a `Have` answer lists (a fragmented partial blob answers with its first ones).
pub(crate) const MAX_HAVE_RANGES: usize = 4096;

/// Status byte of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    Refused = 2,
    /// A seed super-seeding: this segment already went out once; ask a peer that got it,
    /// or for another segment. Also: a capped uplink had no turn free in time.
    Busy = 3,
}

/// Segments a seed has served at least once, per blob (super-seeding: until every segment
/// went out once, a seed refuses repeats, so its upload is not spent on duplicates). The rule
/// is the core's [`SuperSeed`]; this keeps one per blob this node published.
#[derive(Default)]
pub(crate) struct SeedLog {
    /// Blobs this node published (the only seed at first): super-seeding applies to them.
    published: HashSet<BlobHash>,
    blobs: std::collections::HashMap<BlobHash, SuperSeed>,
}

/// Blobs whose served segments a seed tracks at most.
const MAX_SEED_LOGS: usize = 64;

impl SeedLog {
    /// Marks `hash` as published here.
    pub(crate) fn published(&mut self, hash: BlobHash) {
        if self.published.len() >= MAX_SEED_LOGS {
            self.published.clear();
        }
        self.published.insert(hash);
    }

    /// Whether to serve segment `seg` of a blob with `segments` segments (and records it).
    fn admit(&mut self, hash: BlobHash, seg: u64, segments: u64) -> bool {
        if !self.published.contains(&hash) {
            return true;
        }
        if self.blobs.len() >= MAX_SEED_LOGS && !self.blobs.contains_key(&hash) {
            // Forget a blob that finished seeding, else any.
            let k = self
                .blobs
                .iter()
                .find(|(_, s)| s.finished())
                .or_else(|| self.blobs.iter().next())
                .map(|(k, _)| *k);
            if let Some(k) = k {
                self.blobs.remove(&k);
            }
        }
        let (Ok(seg), Ok(segments)) = (u32::try_from(seg), u32::try_from(segments)) else {
            return true;
        };
        self.blobs
            .entry(hash)
            .or_insert_with(|| SuperSeed::new(segments))
            .admit(seg)
    }

    /// Undoes [`Self::admit`] for a segment that was not sent after all.
    fn revoke(&mut self, hash: BlobHash, seg: u64) {
        if let (Some(s), Ok(seg)) = (self.blobs.get_mut(&hash), u32::try_from(seg)) {
            s.revoke(seg);
        }
    }
}

/// Upper bound of an encoded response for `chunks` 1 KiB chunks (data plus, per 16 KiB
/// group, at most a log-depth of 64-byte parent pairs).
pub(crate) fn max_response_bytes(chunks: u64) -> usize {
    usize::try_from(chunks * 1024 + (chunks / 16 + 2) * 64 * 40 + 64).unwrap_or(usize::MAX)
}

pub(crate) fn ranges_of(v: &[(u64, u64)]) -> ChunkRanges {
    let mut r = ChunkRanges::empty();
    for (a, b) in v {
        if a < b {
            r |= ChunkRanges::from(ChunkNum(*a)..ChunkNum(*b));
        }
    }
    r
}

/// Writes a length-prefixed postcard message.
pub(crate) async fn write_request(s: &mut libp2p::Stream, req: &Request) -> std::io::Result<()> {
    let bytes = postcard::to_stdvec(req).map_err(std::io::Error::other)?;
    s.write_all(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes())
        .await?;
    s.write_all(&bytes).await?;
    s.flush().await
}

async fn read_request(s: &mut libp2p::Stream) -> std::io::Result<Request> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_REQUEST_BYTES {
        return Err(std::io::Error::other(format!(
            "request of {len} bytes, at most {MAX_REQUEST_BYTES}"
        )));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf).await?;
    postcard::from_bytes(&buf).map_err(std::io::Error::other)
}

/// Reads a response: the status byte, then at most `limit` bytes until the stream closes.
pub(crate) async fn read_response(
    s: &mut libp2p::Stream,
    limit: usize,
) -> std::io::Result<(u8, Vec<u8>)> {
    let mut status = [0u8; 1];
    s.read_exact(&mut status).await?;
    let mut body = Vec::new();
    let mut limited = s.take(limit as u64 + 1);
    limited.read_to_end(&mut body).await?;
    if body.len() > limit {
        return Err(std::io::Error::other(format!(
            "response larger than the {limit} bytes asked for"
        )));
    }
    Ok((status[0], body))
}

/// What the server needs: the blob store, the peers allowed to fetch, the upload limits,
/// and the current bundle to hand out.
#[derive(Clone)]
pub(crate) struct Server {
    pub(crate) store: Arc<BlobStore>,
    pub(crate) admitted: super::mirror::Mirror<HashSet<PeerId>>,
    pub(crate) limits: UploadLimits,
    /// The encoded trusted bundle (refreshed by the event loop).
    pub(crate) bundle: super::mirror::Mirror<Vec<u8>>,
    pub(crate) metrics: crate::daemon::metrics::RepoMetrics,
    /// Fault injection: flip a byte in every blob response.
    pub(crate) corrupt: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) seeding: Arc<std::sync::Mutex<SeedLog>>,
}

impl Server {
    /// Accepts and serves inbound streams until the control is dropped.
    pub(crate) async fn run(self, mut control: libp2p_stream::Control) {
        let mut incoming = match control.accept(PROTOCOL) {
            Ok(i) => i,
            Err(e) => {
                warn!(error = %e, "blob protocol already registered");
                return;
            }
        };
        let serving = Arc::new(tokio::sync::Semaphore::new(MAX_SERVING));
        while let Some((peer, stream)) = incoming.next().await {
            let Ok(permit) = serving.clone().try_acquire_owned() else {
                debug!(%peer, "too many transfers; refusing a stream");
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                if let Err(e) = me.serve(peer, stream).await {
                    debug!(%peer, error = %e, "blob request failed");
                }
                drop(permit);
            });
        }
    }

    async fn serve(&self, peer: PeerId, mut s: libp2p::Stream) -> std::io::Result<()> {
        let admitted = self.admitted.read(|a| a.contains(&peer));
        let req = read_request(&mut s).await?;
        if !admitted {
            s.write_all(&[Status::Refused as u8]).await?;
            return s.close().await;
        }
        match req {
            Request::Have { hash } => {
                let store = self.store.clone();
                // Staged ranges too: a segment is relayed as soon as it is verified and
                // written, not after its batched fsync.
                let have = tokio::task::spawn_blocking(move || store.servable(&hash))
                    .await
                    .map_err(std::io::Error::other)?;
                match have {
                    Ok(Some((_, servable))) => {
                        let mut ranges = crate::blobs::ranges_to_vec(&servable);
                        ranges.truncate(MAX_HAVE_RANGES);
                        let bytes = postcard::to_stdvec(&ranges).map_err(std::io::Error::other)?;
                        s.write_all(&[Status::Ok as u8]).await?;
                        s.write_all(&bytes).await?;
                    }
                    _ => s.write_all(&[Status::NotFound as u8]).await?,
                }
            }
            Request::Bundle { .. } => {
                let bytes = self.bundle.read(Clone::clone);
                if bytes.is_empty() || bytes.len() > MAX_BUNDLE_BYTES {
                    s.write_all(&[Status::NotFound as u8]).await?;
                } else {
                    s.write_all(&[Status::Ok as u8]).await?;
                    self.send_limited(peer, &mut s, &bytes).await?;
                }
            }
            Request::Blob { hash, ranges } => {
                if let Err(e) = check_ranges(&ranges) {
                    debug!(%peer, error = %e, "blob request refused");
                    s.write_all(&[Status::Refused as u8]).await?;
                    return s.close().await;
                }
                // Super-seeding applies to whole-segment requests to a complete holder.
                let rec = {
                    let store = self.store.clone();
                    tokio::task::spawn_blocking(move || store.get(&hash))
                        .await
                        .map_err(std::io::Error::other)?
                        .ok()
                        .flatten()
                };
                let mut admitted_seg = None;
                if let (Some(rec), [(a, b)]) = (rec, ranges.as_slice())
                    && rec.complete
                    && a % SEGMENT_CHUNKS == 0
                    && b - a <= SEGMENT_CHUNKS
                {
                    let segments = rec.length.div_ceil(1024).div_ceil(SEGMENT_CHUNKS);
                    let serve = self
                        .seeding
                        .lock()
                        .map(|mut l| l.admit(hash, a / SEGMENT_CHUNKS, segments))
                        .unwrap_or(true);
                    if !serve {
                        s.write_all(&[Status::Busy as u8]).await?;
                        return s.close().await;
                    }
                    admitted_seg = Some(a / SEGMENT_CHUNKS);
                }
                let Some(slot) = self.limits.slot().await else {
                    // Not sent after all: another requester may have this segment.
                    if let Some(seg) = admitted_seg
                        && let Ok(mut l) = self.seeding.lock()
                    {
                        l.revoke(hash, seg);
                    }
                    s.write_all(&[Status::Busy as u8]).await?;
                    return s.close().await;
                };
                let sent = self.send_blob(peer, s, hash, ranges).await;
                drop(slot);
                return sent;
            }
        }
        s.close().await
    }

    /// Streams the verified encoding of `ranges`: encoded on a blocking thread a few pieces
    /// ahead of the stream, sent under the upload limits as it comes. The status goes out
    /// with the first piece, so a blob that cannot be served at all answers `NotFound`; one
    /// found damaged midway is cut off (the fetcher sees a truncated segment and asks
    /// elsewhere).
    async fn send_blob(
        &self,
        peer: PeerId,
        mut s: libp2p::Stream,
        hash: BlobHash,
        ranges: Vec<(u64, u64)>,
    ) -> std::io::Result<()> {
        let (mut w, mut pieces) = pipe::to_async(ENCODE_AHEAD, pipe::PIECE);
        let store = self.store.clone();
        let encoder = tokio::task::spawn_blocking(move || {
            store
                .encode(&hash, &ranges_of(&ranges), &mut w)
                .map_err(|e| e.to_string())?;
            w.finish().map_err(|e| e.to_string())
        });
        let mut started = false;
        while let Some(mut piece) = pieces.recv().await {
            if !started {
                if self.corrupt.load(std::sync::atomic::Ordering::Relaxed) && !piece.is_empty() {
                    let mid = piece.len() / 2;
                    piece[mid] ^= 0x55;
                }
                s.write_all(&[Status::Ok as u8]).await?;
                started = true;
            }
            self.limits.acquire(peer, piece.len() as u64).await;
            s.write_all(&piece).await?;
            self.metrics.uploaded.inc_by(piece.len() as u64);
            pieces.give_back(piece);
        }
        match encoder.await.map_err(std::io::Error::other)? {
            Ok(()) if !started => s.write_all(&[Status::Ok as u8]).await?,
            Ok(()) => {}
            Err(e) if !started => {
                debug!(%peer, blob = %hash.short(), error = %e, "cannot serve");
                s.write_all(&[Status::NotFound as u8]).await?;
            }
            Err(e) => {
                warn!(%peer, blob = %hash.short(), error = %e, "stored blob failed verification while served; stream cut");
                return Err(std::io::Error::other(e));
            }
        }
        s.close().await
    }

    /// Writes `bytes` in 64 KiB pieces, each after the token buckets allow it.
    async fn send_limited(
        &self,
        peer: PeerId,
        s: &mut libp2p::Stream,
        bytes: &[u8],
    ) -> std::io::Result<()> {
        for piece in bytes.chunks(64 * 1024) {
            self.limits.acquire(peer, piece.len() as u64).await;
            s.write_all(piece).await?;
        }
        Ok(())
    }
}

/// Most ranges in one blob request.
const MAX_REQUEST_RANGES: usize = 16;

/// Why a peer's blob request is refused before anything is read for it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RangeError {
    /// No range at all.
    #[error("no chunk range requested")]
    Empty,
    /// More ranges than one request may carry.
    #[error("{0} ranges requested, at most {MAX_REQUEST_RANGES}")]
    TooMany(usize),
    /// A range whose end is not after its start.
    #[error("range {start}..{end} is empty or reversed")]
    Reversed {
        /// Its first chunk.
        start: u64,
        /// Its end chunk (exclusive).
        end: u64,
    },
    /// More chunks than one request may carry.
    #[error("{0} chunks requested, at most {max}", max = 4 * SEGMENT_CHUNKS)]
    TooLarge(u64),
}

/// Checks a peer-supplied list of chunk ranges; returns the chunks it covers.
pub(crate) fn check_ranges(ranges: &[(u64, u64)]) -> Result<u64, RangeError> {
    if ranges.is_empty() {
        return Err(RangeError::Empty);
    }
    if ranges.len() > MAX_REQUEST_RANGES {
        return Err(RangeError::TooMany(ranges.len()));
    }
    let mut chunks = 0u64;
    for &(start, end) in ranges {
        if end <= start {
            return Err(RangeError::Reversed { start, end });
        }
        chunks = chunks.saturating_add(end - start);
    }
    if chunks > 4 * SEGMENT_CHUNKS {
        return Err(RangeError::TooLarge(chunks));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_constants_are_the_core_params() {
        let p = gaiamesh_core::Params::default();
        assert_eq!(SEGMENT_CHUNKS * 1024, p.repository.segment_bytes);
        assert_eq!(super::fetch::REQUEST_TIMEOUT, p.repository.request_timeout);
        // The operator's defaults are the core's (the config crate depends on nothing of ours).
        let c = gaiamesh_config::NodeConfig::from_toml_str("", "x.toml").unwrap();
        assert_eq!(
            c.repository.requests_per_peer,
            p.repository.requests_per_peer
        );
        assert_eq!(
            c.repository.requests_in_flight,
            p.repository.requests_in_flight
        );
        assert_eq!(c.directory.reconcile_interval, p.sync.reconcile_interval);
    }

    #[test]
    fn peer_ranges_are_checked_before_any_arithmetic() {
        assert_eq!(check_ranges(&[(0, SEGMENT_CHUNKS)]), Ok(SEGMENT_CHUNKS));
        // A reversed range once underflowed `b - a` in the super-seeding check.
        assert_eq!(
            check_ranges(&[(SEGMENT_CHUNKS, 0)]),
            Err(RangeError::Reversed {
                start: SEGMENT_CHUNKS,
                end: 0
            })
        );
        assert!(matches!(
            check_ranges(&[(5, 5)]),
            Err(RangeError::Reversed { .. })
        ));
        assert_eq!(check_ranges(&[]), Err(RangeError::Empty));
        assert_eq!(check_ranges(&[(0, 1); 17]), Err(RangeError::TooMany(17)));
        assert!(matches!(
            check_ranges(&[(0, u64::MAX), (0, u64::MAX)]),
            Err(RangeError::TooLarge(u64::MAX))
        ));
    }
}
