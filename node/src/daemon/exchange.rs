//! Data exchange on the node: the provider serves `/gaiamesh/negotiate/1` and
//! `/gaiamesh/transfer/1` to admitted members ([`serve`]); the consumer negotiates and
//! fetches from one provider or from the matches of a directory query in order, failing
//! over ([`fetch`]). The protocol logic is the sans-IO code of `gaiamesh-exchange`; this
//! module moves its messages over libp2p streams and the bytes between disk and stream.
//!
//! Streams only ever run on direct connections: the node has no relay transport.

mod compute;
mod fetch;
mod journal;
mod meter;
mod review;
mod serve;

use std::{
    collections::{HashSet, VecDeque},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use gaiamesh_exchange::{
    asset::{AssetError, REGISTRY_FILE, Registry},
    audit::{AuditLog, Event},
};
use gaiamesh_protocol::{federation::FederationTrust, identity::Keypair};
use libp2p::{PeerId, StreamProtocol};
use serde::Serialize;

pub(crate) use compute::{ComputeJobView, ComputeRequest, ComputeRuntime};
pub(crate) use fetch::{FetchRequest, Spoil};
pub(crate) use review::{ReviewDecision, ReviewView, ReviewsAnswer};

use super::{Client, metrics::ExchangeMetrics, repo::UploadLimits};

/// Contract negotiation.
pub(crate) const NEGOTIATE: StreamProtocol = StreamProtocol::new("/gaiamesh/negotiate/1");
/// Transfers under an agreement.
pub(crate) const TRANSFER: StreamProtocol = StreamProtocol::new("/gaiamesh/transfer/1");

/// Why an exchange step failed, on either side. Its text is what a fetch job shows and what
/// a refused consumer is told.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ExchangeError {
    /// No stream could be opened to the peer.
    #[error("cannot reach {peer}: {source}")]
    Unreachable {
        peer: PeerId,
        source: libp2p_stream::OpenStreamError,
    },
    /// Opening the stream took too long.
    #[error("cannot reach {peer} within {after:?}")]
    OpenTimeout { peer: PeerId, after: Duration },
    /// The stream failed or the peer went silent.
    #[error("stream: {0}")]
    Stream(#[from] std::io::Error),
    /// A message, agreement or receipt could not be encoded, decoded or checked.
    #[error(transparent)]
    Contract(#[from] gaiamesh_exchange::contract::ContractError),
    /// Negotiation ended without an agreement.
    #[error("{}", .0.reason())]
    Negotiation(#[from] gaiamesh_exchange::negotiation::NegotiationError),
    /// The peer refused, with its reason.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer is not an admitted member.
    #[error("not an admitted member of this federation")]
    NotAdmitted,
    /// The peer's id carries no ed25519 key.
    #[error(transparent)]
    PeerKey(#[from] gaiamesh_protocol::identity::PublicKeyError),
    /// The agreement does not authorize this transfer.
    #[error(transparent)]
    Transfer(#[from] gaiamesh_exchange::transfer::TransferRefusal),
    /// The agreements this provider recorded could not be read.
    #[error("reading recorded agreements: {0}")]
    Recorded(std::io::Error),
    /// The agreed asset is gone.
    #[error("asset {0:?} is no longer offered")]
    NoLongerOffered(String),
    /// The agreed asset changed since the agreement.
    #[error("asset {0:?} changed since the agreement; negotiate again")]
    AssetChanged(String),
    /// A manifest larger than any the node accepts.
    #[error("manifest of {0} bytes")]
    ManifestSize(u64),
    /// A download failed (tampered, oversize, local I/O).
    #[error(transparent)]
    Download(#[from] gaiamesh_exchange::transfer::DownloadError),
    /// Every attempt with a provider was interrupted.
    #[error("gave up after {attempts} attempts: {last} (run the same fetch again to resume)")]
    GaveUp {
        attempts: u32,
        last: Box<ExchangeError>,
    },
    /// A query for providers failed, or matched none.
    #[error("{0}")]
    Query(String),
    /// The audit log failed.
    #[error("audit log: {0}")]
    Audit(#[from] gaiamesh_exchange::audit::AuditError),
    /// Nothing to spoil (fault injection).
    #[error("no agreement with that provider to spoil: fetch something first")]
    NothingToSpoil,
    /// A peer's message did not decode.
    #[error(transparent)]
    Decode(#[from] gaiamesh_protocol::codec::DecodeError),
    /// `attempts` was 0.
    #[error("no attempt was made")]
    NoAttempt,
    /// A blocking task ended abnormally.
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A number out of its range (a file index beyond u32).
    #[error("{0}")]
    Range(#[from] std::num::TryFromIntError),
    /// A compute job cannot run (the asset, the algorithm, the sandbox).
    #[error("{0}")]
    Compute(String),
    /// A compute job's terms refuse it (the policy's algorithms, the arguments).
    #[error(transparent)]
    JobRefused(#[from] gaiamesh_exchange::compute::JobRefusal),
    /// The asset is offered for computation only.
    #[error("asset {0:?} is offered for computation only, never transferred")]
    ComputeOnly(String),
}

impl From<ExchangeError> for super::CommandError {
    fn from(e: ExchangeError) -> Self {
        use ExchangeError as E;
        match e {
            E::NothingToSpoil | E::NotAdmitted => Self::Conflict(e.to_string()),
            E::Unreachable { .. } | E::OpenTimeout { .. } | E::Stream(_) => {
                Self::Busy(e.to_string())
            }
            E::Audit(_) | E::Task(_) | E::Recorded(_) => Self::Internal(e.to_string()),
            _ => Self::Invalid(e.to_string()),
        }
    }
}

/// Checks how a fetch or compute job names its providers: one `provider` (a peer id) with
/// its `asset`, or a directory `query` (with an optional `asset`).
fn check_providers(
    provider: Option<&str>,
    query: Option<&str>,
    asset: Option<&str>,
) -> Result<(), super::CommandError> {
    let invalid = |m: String| super::CommandError::Invalid(m);
    match (provider, query) {
        (Some(p), None) => {
            p.parse::<PeerId>()
                .map_err(|e| invalid(format!("provider {p:?} is not a peer id: {e}")))?;
            if asset.is_none_or(|a| a.trim().is_empty()) {
                return Err(invalid("asset is required with provider".into()));
            }
        }
        (None, Some(q)) => {
            gaiamesh_directory::query::parse(q).map_err(|e| invalid(e.render(q)))?;
        }
        _ => return Err(invalid("give exactly one of provider and query".into())),
    }
    Ok(())
}

/// Fetch jobs remembered (finished ones are dropped first).
pub(crate) const MAX_JOBS: usize = 64;

/// What both sides of the exchange need; cheap to clone.
#[derive(Clone)]
pub(crate) struct Exchange {
    pub(crate) key: Keypair,
    pub(crate) trust: Arc<FederationTrust>,
    /// This node's encoded membership credential (presented when it negotiates).
    pub(crate) credential: Arc<Vec<u8>>,
    /// The data dir (its `assets.json` is re-read whenever the CLI replaces it).
    pub(crate) root: PathBuf,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) admitted: super::mirror::Mirror<HashSet<PeerId>>,
    pub(crate) limits: UploadLimits,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) client: Client,
    pub(crate) metrics: ExchangeMetrics,
    pub(crate) jobs: Arc<Mutex<Jobs<JobView>>>,
    /// Compute-to-data: the sandbox and the compute jobs this node asked for.
    pub(crate) compute: Arc<ComputeRuntime>,
    /// What this node sent under each agreement, for the transfers' usage records.
    pub(crate) meter: Arc<meter::TransferMeter>,
    /// The asset registry as last read, with its file's inode and modification time.
    pub(crate) assets: Arc<Mutex<Option<CachedRegistry>>>,
}

impl Exchange {
    /// The asset registry, read again only when `assets.json` changed (the CLI rewrites it
    /// atomically), so a directory asset's thousands of file requests do not each re-read
    /// and re-parse its manifest.
    pub(crate) fn registry(&self) -> Result<Arc<Registry>, AssetError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.root.join(REGISTRY_FILE);
        // Every atomic rewrite is a new inode, so the stamp changes even within one clock tick.
        let modified = std::fs::metadata(&path)
            .map(|m| (m.ino(), m.modified().unwrap_or(std::time::UNIX_EPOCH)))
            .unwrap_or((0, std::time::UNIX_EPOCH));
        let mut cache = self
            .assets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, reg)) = cache.as_ref()
            && *at == modified
        {
            return Ok(reg.clone());
        }
        let reg = Arc::new(Registry::open(&self.root)?);
        *cache = Some((modified, reg.clone()));
        Ok(reg)
    }

    /// Lists `view` in `jobs`; `Busy` naming `what` when [`MAX_JOBS`] are all running.
    fn start_job<V: JobState>(
        &self,
        jobs: &Mutex<Jobs<V>>,
        view: V,
        what: &str,
    ) -> Result<u64, super::CommandError> {
        let id = jobs
            .lock()
            .map_err(|_| super::CommandError::Internal("the job table is poisoned".into()))?
            .start(view)
            .ok_or_else(|| {
                super::CommandError::Busy(format!(
                    "{MAX_JOBS} {what} are running; start another when one has finished"
                ))
            })?;
        self.client
            .emit(super::events::NodeEvent::ExchangeChanged { job: Some(id) });
        Ok(id)
    }

    /// Applies `f` to job `id` of `jobs`; tells the event stream when its state changed.
    fn update_job<V: JobState>(&self, jobs: &Mutex<Jobs<V>>, id: u64, f: impl FnOnce(&mut V)) {
        if jobs.lock().is_ok_and(|mut jobs| jobs.update(id, f)) {
            self.client
                .emit(super::events::NodeEvent::ExchangeChanged { job: Some(id) });
        }
    }

    /// Appends to the audit log off the async threads; a failure is logged, not fatal (the
    /// exchange it records already happened).
    pub(crate) async fn record(&self, event: Event) {
        let audit = self.audit.clone();
        let kind = event.kind();
        let r = tokio::task::spawn_blocking(move || audit.append(event, crate::now())).await;
        match r {
            Ok(Ok(_)) => self
                .client
                .emit(super::events::NodeEvent::ExchangeChanged { job: None }),
            Ok(Err(e)) => tracing::error!(kind, error = %e, "cannot append to the audit log"),
            Err(e) => tracing::error!(kind, error = %e, "audit task failed"),
        }
    }
}

/// A file's inode and modification time.
pub(crate) type FileStamp = (u64, std::time::SystemTime);

/// The registry and the stamp of the file it was read from.
pub(crate) type CachedRegistry = (FileStamp, Arc<Registry>);

/// The state of one `POST /api/v1/exchange/fetch`.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct JobView {
    pub(crate) id: u64,
    /// `negotiating`, `transferring`, `completed` or `failed`.
    pub(crate) state: String,
    pub(crate) asset: String,
    /// The provider being tried.
    pub(crate) provider: Option<String>,
    pub(crate) bytes: u64,
    pub(crate) total: u64,
    /// Where a resumed transfer started.
    pub(crate) resumed_from: u64,
    /// Providers tried before the current one, with why they failed.
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) agreement: Option<String>,
    pub(crate) negotiation_ms: Option<f64>,
    pub(crate) transfer_ms: Option<f64>,
    /// What the transfer used, as the provider signed it (and this node countersigned).
    pub(crate) usage: Option<gaiamesh_exchange::metering::Usage>,
    /// Its price from the provider's price model, when the model meters transfers.
    pub(crate) charge: Option<gaiamesh_exchange::metering::Charge>,
    pub(crate) out: String,
    pub(crate) error: Option<String>,
}

/// A provider that failed a fetch job, and why.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct Attempt {
    pub(crate) provider: String,
    pub(crate) asset: String,
    pub(crate) error: String,
}

impl JobView {
    pub(crate) fn finished(&self) -> bool {
        JobState::finished(self)
    }
}

/// What [`Jobs`] needs of a job's view.
pub(crate) trait JobState: Clone {
    fn id(&self) -> u64;
    fn set_id(&mut self, id: u64);
    fn state(&self) -> &str;
    /// `completed` or `failed`.
    fn finished(&self) -> bool {
        matches!(self.state(), "completed" | "failed")
    }
}

/// [`JobState`] for a view with `id: u64` and `state: String` fields.
macro_rules! job_state {
    ($view:ty) => {
        impl JobState for $view {
            fn id(&self) -> u64 {
                self.id
            }
            fn set_id(&mut self, id: u64) {
                self.id = id;
            }
            fn state(&self) -> &str {
                &self.state
            }
        }
    };
}

job_state!(JobView);
job_state!(ComputeJobView);

/// Recent jobs (fetches, compute jobs), bounded.
#[derive(Debug)]
pub(crate) struct Jobs<V> {
    next: u64,
    list: VecDeque<V>,
}

impl<V> Default for Jobs<V> {
    fn default() -> Self {
        Self {
            next: 0,
            list: VecDeque::new(),
        }
    }
}

impl<V: JobState> Jobs<V> {
    /// Lists a new job, making room by forgetting the oldest finished one; `None` when
    /// [`MAX_JOBS`] are all still running (a running job never drops out of view).
    fn start(&mut self, mut view: V) -> Option<u64> {
        if self.list.len() >= MAX_JOBS {
            let old = self.list.iter().position(V::finished)?;
            self.list.remove(old);
        }
        self.next += 1;
        view.set_id(self.next);
        self.list.push_back(view);
        Some(self.next)
    }

    pub(crate) fn get(&self, id: u64) -> Option<V> {
        self.list.iter().find(|j| j.id() == id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<V> {
        self.list.iter().cloned().collect()
    }

    /// Applies `f` to job `id`; whether its state changed (progress alone is not a change).
    fn update(&mut self, id: u64, f: impl FnOnce(&mut V)) -> bool {
        let Some(j) = self.list.iter_mut().find(|j| j.id() == id) else {
            return false;
        };
        let before = j.state().to_owned();
        f(j);
        j.state() != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str) -> JobView {
        JobView {
            state: state.into(),
            ..JobView::default()
        }
    }

    #[test]
    fn a_running_job_never_drops_out_of_view() {
        let mut jobs = Jobs::default();
        let first = jobs.start(job("transferring")).unwrap();
        for _ in 1..MAX_JOBS {
            jobs.start(job("negotiating")).unwrap();
        }
        // All 64 running: a 65th is refused rather than hiding the oldest running job.
        assert_eq!(jobs.start(job("negotiating")), None);
        assert!(jobs.get(first).is_some());
        // Once one has finished, it makes room, and only it goes.
        jobs.update(first + 5, |j| j.state = "completed".into());
        let next = jobs.start(job("negotiating")).unwrap();
        assert!(jobs.get(first + 5).is_none());
        assert!(jobs.get(first).is_some() && jobs.get(next).is_some());
        assert_eq!(jobs.all().len(), MAX_JOBS);
    }
}
