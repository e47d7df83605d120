//! Events the node streams on `GET /api/v1/events` (server-sent events, one JSON object per
//! event, its `type` also the SSE event name).

use serde::Serialize;

/// Events buffered per subscriber; a subscriber that falls further behind is told how many
/// it missed (a `lagged` event) and continues with the newest.
pub(crate) const EVENT_BUFFER: usize = 1024;

/// Something that happened on the node.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum NodeEvent {
    /// A self-description changed the directory (new subject, higher seq, or equivocation).
    SdStored {
        subject: String,
        seq: u64,
        outcome: &'static str,
        /// The peer it came from (`None`: this node's own).
        from: Option<String>,
        received_at_ms: u64,
    },
    /// A record was refused and its sender is penalised.
    SdRejected { from: String, reason: String },
    /// The node published its own self-description.
    Published { seq: u64 },
    /// A peer passed admission.
    PeerAdmitted { peer_id: String },
    /// A peer was refused or disconnected (revoked, no credential, timeout).
    PeerRefused { peer_id: String, reason: String },
    /// A relay accepted this node's reservation: it is reachable through it.
    RelayReservation { relay: String },
    /// A relayed connection was upgraded to a direct one (`ms` from the relayed
    /// connection, when known).
    HolePunched { peer_id: String, ms: Option<u64> },
    /// A newer revocation list is in force.
    Revocations {
        version: u64,
        removed_entries: usize,
    },
    /// A new repository release is trusted.
    RepoRelease { targets_version: u64 },
    /// A peer sent blob data that failed verification.
    BlobPeerPenalised { peer_id: String },
    /// A fetch job changed state (`job`) or the audit log grew (`job` absent). Carries no
    /// details: jobs and the audit log are operator-only reads, so a subscriber with the
    /// token reads them again.
    ExchangeChanged { job: Option<u64> },
}

impl NodeEvent {
    /// The SSE event name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            NodeEvent::SdStored { .. } => "sd_stored",
            NodeEvent::SdRejected { .. } => "sd_rejected",
            NodeEvent::Published { .. } => "published",
            NodeEvent::PeerAdmitted { .. } => "peer_admitted",
            NodeEvent::PeerRefused { .. } => "peer_refused",
            NodeEvent::RelayReservation { .. } => "relay_reservation",
            NodeEvent::HolePunched { .. } => "hole_punched",
            NodeEvent::Revocations { .. } => "revocations",
            NodeEvent::RepoRelease { .. } => "repo_release",
            NodeEvent::BlobPeerPenalised { .. } => "blob_peer_penalised",
            NodeEvent::ExchangeChanged { .. } => "exchange_changed",
        }
    }
}
