//! The API's answers that are not views of the node's own types: small envelopes, typed so
//! that the OpenAPI description (`/api/v1/openapi.json`) is generated from what is sent.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /api/v1/health`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct Health {
    /// True while the event loop answers.
    pub(crate) ok: bool,
}

/// `GET /api/v1/repo/bundle`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BundleAnswer {
    /// The trusted metadata (root chain, timestamp, snapshot, targets), postcard, hex.
    pub(crate) bundle: String,
}

/// `GET /api/v1/repo/holders`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct HoldersAnswer {
    pub(crate) targets: Vec<TargetHolders>,
}

/// The nodes that hold one target's blob.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct TargetHolders {
    /// `NAME@VERSION`.
    pub(crate) target: String,
    pub(crate) blake3: String,
    /// PeerIds: this node first when it holds the whole blob, then the DHT's providers.
    pub(crate) holders: Vec<String>,
}

/// `POST /api/v1/revocations`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RevokedAnswer {
    /// Directory entries removed because their subjects are revoked.
    pub(crate) removed_entries: usize,
}

/// `POST /api/v1/exchange/fetch`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct JobStarted {
    /// Follow it at `/api/v1/exchange/fetch/{job}`.
    pub(crate) job: u64,
}

/// `GET /api/v1/compute`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ComputeJobsAnswer {
    pub(crate) jobs: Vec<crate::daemon::exchange::ComputeJobView>,
}

/// `GET /api/v1/exchange`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct JobsAnswer {
    pub(crate) jobs: Vec<crate::daemon::exchange::JobView>,
}

/// `GET /api/v1/audit`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AuditList {
    /// Entries in the log.
    pub(crate) total: u64,
    pub(crate) entries: Vec<AuditEntryView>,
}

/// One audit log entry (docs/exchange.md, "Audit log").
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct AuditEntryView {
    pub(crate) seq: u64,
    /// When it was appended (RFC 3339).
    pub(crate) at: String,
    /// BLAKE3 of the previous entry, hex (zeros for the first).
    pub(crate) prev: String,
    /// `agreement`, `refusal`, `transfer`, `receipt` or `usage`.
    pub(crate) kind: String,
    /// `{KIND: {…}}`: the agreement signed by both, the refusal and its reason, the transfer
    /// (file, offset, bytes, outcome), the consumer's signed receipt, or a usage record (a
    /// compute job's, or a transfer's: no algorithm) signed by the provider and, once
    /// returned, countersigned by the consumer.
    #[schema(value_type = Object)]
    pub(crate) event: serde_json::Value,
}

/// `POST /api/v1/backup`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct BackupAnswer {
    /// The archive, under `DATA_DIR/backups/`.
    #[schema(value_type = String)]
    pub(crate) path: std::path::PathBuf,
    pub(crate) manifest: crate::backup::Manifest,
}

/// `POST /api/v1/debug/gossip`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct GossipPublished {
    /// Bytes published.
    pub(crate) published: usize,
}

/// `POST /api/v1/debug/flood`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct FloodStarted {
    /// Messages per second.
    pub(crate) flooding: u32,
    pub(crate) seconds: u32,
}

/// `POST /api/v1/debug/spoiled-agreement`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ProbeAnswer {
    /// The provider's answer: `ok` or `refused: REASON`.
    pub(crate) answer: String,
}

/// `POST /api/v1/debug/corrupt-blobs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct CorruptAnswer {
    pub(crate) corrupt: bool,
}
