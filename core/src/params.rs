//! The protocol parameters a node runs with: one struct for the daemon and the simulator.

use std::time::Duration;

/// Every protocol parameter shared by the daemon and the simulator.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Params {
    /// The gossipsub mesh.
    pub gossip: GossipParams,
    /// Anti-entropy and presence.
    pub sync: SyncParams,
    /// Admission of peers.
    pub admission: AdmissionParams,
    /// The Kademlia DHT.
    pub kademlia: KademliaParams,
    /// Repository transfers.
    pub repository: RepositoryParams,
}

/// The gossipsub mesh (libp2p's gossipsub runs it in the daemon; the simulator models it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipParams {
    /// Target mesh degree (gossipsub's D).
    pub mesh_n: u32,
    /// Graft below this (D_lo).
    pub mesh_n_low: u32,
    /// Prune above this (D_hi).
    pub mesh_n_high: u32,
    /// Outbound peers kept in the mesh (D_out).
    pub mesh_outbound_min: u32,
    /// Peers sent IHAVE gossip per heartbeat (D_lazy).
    pub lazy: u32,
    /// Mesh maintenance and IHAVE gossip interval.
    pub heartbeat: Duration,
    /// Heartbeats a message id is advertised in IHAVE.
    pub history_gossip: u32,
    /// A publisher sends its own message to every connected peer, not only its mesh.
    pub flood_publish: bool,
    /// An admitted peer whose gossipsub score falls below this is disconnected and banned
    /// (invalid messages weigh −100 each, squared: a member past a few is misbehaving; an
    /// honest one stays near 0).
    pub disconnect_below_score: i64,
}

/// Anti-entropy and presence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncParams {
    /// Reconcile with a random admitted peer this often (`[directory] reconcile_interval`).
    pub reconcile_interval: Duration,
    /// A signed presence heartbeat this often.
    pub presence_interval: Duration,
    /// A connection that carried nothing for this long is closed (QUIC's idle timeout, with
    /// keep-alives at half of it): a partition that lasts longer closes the connections
    /// across it, and the node redials its lost members (see [`crate::node::REDIAL_FIRST`]).
    pub idle_timeout: Duration,
}

/// Admission of peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionParams {
    /// A connected peer must have passed admission within this long.
    pub timeout: Duration,
    /// First ban of a peer whose credential was refused (doubling per refusal).
    pub refused_ban: Duration,
    /// First ban of a peer that did not finish admission in time (doubling likewise).
    pub timeout_ban: Duration,
    /// The longest ban.
    pub max_ban: Duration,
}

/// The Kademlia DHT (libp2p's kad runs it in the daemon; the simulator models it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KademliaParams {
    /// Bucket size and replication factor.
    pub k: u32,
    /// Parallel requests per lookup.
    pub alpha: u32,
    /// Own records and provider records are re-published this often.
    pub republish: Duration,
}

/// Repository transfers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryParams {
    /// Bytes asked per segment request.
    pub segment_bytes: u64,
    /// Segment requests in flight per download, over all providers
    /// (`[repository] requests_in_flight`).
    pub requests_in_flight: u32,
    /// Segment requests in flight per provider (`[repository] requests_per_peer`).
    pub requests_per_peer: u32,
    /// A segment request unanswered this long fails.
    pub request_timeout: Duration,
    /// A segment request unanswered this long is also asked from another provider (`None`:
    /// never).
    pub hedge_after: Option<Duration>,
    /// A provider that answered busy for a segment is not asked for it again this long.
    pub busy_backoff: Duration,
    /// With segments left that no provider holds, a download round ends after this long
    /// and providers are looked up again.
    pub stuck_after: Duration,
    /// Failures of one segment by every provider that end a round.
    pub max_strikes: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            gossip: GossipParams {
                mesh_n: 6,
                mesh_n_low: 4,
                mesh_n_high: 12,
                mesh_outbound_min: 2,
                lazy: 6,
                heartbeat: Duration::from_millis(500),
                history_gossip: 3,
                flood_publish: true,
                disconnect_below_score: -1000,
            },
            sync: SyncParams {
                reconcile_interval: Duration::from_secs(30),
                presence_interval: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(10),
            },
            admission: AdmissionParams {
                timeout: Duration::from_millis(1500),
                refused_ban: Duration::from_secs(30),
                timeout_ban: Duration::from_secs(10),
                max_ban: Duration::from_secs(3600),
            },
            kademlia: KademliaParams {
                k: 20,
                alpha: 3,
                republish: Duration::from_secs(3600),
            },
            repository: RepositoryParams {
                segment_bytes: 1024 * 1024,
                requests_in_flight: 8,
                requests_per_peer: 2,
                request_timeout: Duration::from_secs(30),
                hedge_after: Some(Duration::from_secs(3)),
                busy_backoff: Duration::from_secs(1),
                stuck_after: Duration::from_secs(5),
                max_strikes: 3,
            },
        }
    }
}

impl Params {
    /// One line per group, as `gaiamesh devnet` and `gaiamesh sim` print them.
    pub fn summary(&self) -> String {
        let g = &self.gossip;
        let r = &self.repository;
        format!(
            "params: gossip D={} D_lo={} D_hi={} D_out={} D_lazy={} heartbeat={}ms; \
             reconcile every {}s, presence every {}s, idle connections closed after {}s; admission within {}ms; \
             kademlia k={} alpha={}; repository segments {} KiB, {} in flight ({} per peer), \
             hedge after {}",
            g.mesh_n,
            g.mesh_n_low,
            g.mesh_n_high,
            g.mesh_outbound_min,
            g.lazy,
            g.heartbeat.as_millis(),
            self.sync.reconcile_interval.as_secs(),
            self.sync.presence_interval.as_secs(),
            self.sync.idle_timeout.as_secs(),
            self.admission.timeout.as_millis(),
            self.kademlia.k,
            self.kademlia.alpha,
            r.segment_bytes / 1024,
            r.requests_in_flight,
            r.requests_per_peer,
            r.hedge_after
                .map_or_else(|| "never".to_owned(), |d| format!("{}ms", d.as_millis())),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_consistent() {
        let p = Params::default();
        let g = &p.gossip;
        // gossipsub refuses D_out > D/2 and D_lo > D > D_hi.
        assert!(g.mesh_n_low <= g.mesh_n && g.mesh_n <= g.mesh_n_high);
        assert!(g.mesh_outbound_min <= g.mesh_n / 2);
        // Admission must end within the 2 s the operator guide promises (checked every
        // 250 ms).
        assert!(p.admission.timeout + Duration::from_millis(250) <= Duration::from_secs(2));
        assert!(p.admission.refused_ban <= p.admission.max_ban);
        assert!(p.repository.requests_per_peer <= p.repository.requests_in_flight);
        assert!(p.summary().contains("D_lo=4"));
    }
}
