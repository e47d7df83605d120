//! The repository's piece scheduler: which segment of a blob a node asks from which
//! provider, and what it does when an answer is slow, refused, cut off or bad — one
//! implementation, run by the daemon's multi-source download (`node/src/daemon/repo/fetch.rs`)
//! and by the simulator's swarm (`sim/src/swarm.rs`) for every simulated node.
//!
//! - [`Download`] is the requester's side: it is told which segments each provider holds
//!   (HAVE answers), what came back, and the time; it answers which requests to send next
//!   ([`Download::poll_request`]), when it wants to be woken ([`Download::poll_timeout`]) and
//!   whether the download is complete, stuck or struck out ([`Download::status`]).
//! - [`SuperSeed`] is a publisher's side: until every segment went out once, a seed refuses
//!   repeats (answers busy), so its upload is not spent on duplicates.
//!
//! Time is a [`Duration`] since an origin the driver chooses (the daemon: its start; the
//! simulator: the start of the run); randomness is passed in.

mod bits;
mod download;
mod seeding;

pub use bits::Bits;
pub use download::{Download, Failure, Outcome, Status};
pub use seeding::{SuperSeed, turn_wait};

use std::time::Duration;

/// How a download schedules its requests (from [`crate::RepositoryParams`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerParams {
    /// Requests in flight over all providers.
    pub in_flight: u32,
    /// Requests in flight per provider.
    pub per_peer: u32,
    /// A request unanswered this long is also asked from another provider (`None`: never).
    pub hedge_after: Option<Duration>,
    /// A provider that answered busy for a segment is not asked for it again this long.
    pub busy_backoff: Duration,
    /// With segments left that no provider holds, the download is stuck after this long
    /// (the daemon then looks up providers again).
    pub stuck_after: Duration,
    /// Failures of one segment by every provider that end a round of providers.
    pub max_strikes: u32,
}

impl From<&crate::RepositoryParams> for SchedulerParams {
    fn from(p: &crate::RepositoryParams) -> Self {
        Self {
            in_flight: p.requests_in_flight.max(1),
            per_peer: p.requests_per_peer.max(1),
            hedge_after: p.hedge_after,
            busy_backoff: p.busy_backoff,
            stuck_after: p.stuck_after,
            max_strikes: p.max_strikes.max(1),
        }
    }
}
