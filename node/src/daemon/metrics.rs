//! Prometheus metrics (`GET /metrics`): libp2p's own (swarm, identify, ping, Kademlia,
//! gossipsub) under `libp2p_`, and gaiamesh's under `gaiamesh_`.

use std::time::Duration;

use libp2p::kad::QueryResult;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label of a counter keyed by an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Outcome {
    pub(crate) outcome: &'static str,
}

/// Label of the reconciliation difference counter: records this node `needs` from the
/// peer or `has` for it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Direction {
    pub(crate) direction: &'static str,
}

/// Label of a Kademlia query histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueryKind {
    pub(crate) kind: &'static str,
}

/// Repository transfer counters, shared with the transfer tasks.
#[derive(Clone, Debug, Default)]
pub(crate) struct RepoMetrics {
    pub(crate) uploaded: Counter,
    pub(crate) downloaded: Counter,
    pub(crate) penalised: Counter,
}

/// Data-exchange counters, shared with the exchange tasks.
#[derive(Clone, Debug)]
pub(crate) struct ExchangeMetrics {
    pub(crate) agreements: Counter,
    pub(crate) refused: Counter,
    pub(crate) fetches: Counter,
    pub(crate) failed_fetches: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) bytes_received: Counter,
    pub(crate) negotiation_seconds: Histogram,
    /// Compute jobs run as provider (completed or stopped).
    pub(crate) compute_jobs: Counter,
    /// Result bytes those jobs returned: all that left the provider for them.
    pub(crate) compute_result_bytes: Counter,
    /// Fuel they consumed.
    pub(crate) compute_fuel: Counter,
}

impl ExchangeMetrics {
    /// Registers them under `gaiamesh_exchange_`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self {
            agreements: Counter::default(),
            refused: Counter::default(),
            fetches: Counter::default(),
            failed_fetches: Counter::default(),
            bytes_sent: Counter::default(),
            bytes_received: Counter::default(),
            negotiation_seconds: latency_histogram(),
            compute_jobs: Counter::default(),
            compute_result_bytes: Counter::default(),
            compute_fuel: Counter::default(),
        };
        let g = registry.sub_registry_with_prefix("gaiamesh_exchange");
        let counters = [
            (
                "agreements",
                "Agreements finalized as provider",
                &m.agreements,
            ),
            (
                "refusals",
                "Negotiations and transfers refused as provider",
                &m.refused,
            ),
            ("fetches", "Fetches completed as consumer", &m.fetches),
            (
                "failed_fetches",
                "Fetches that no provider completed",
                &m.failed_fetches,
            ),
            ("sent_bytes", "Asset bytes sent", &m.bytes_sent),
            ("received_bytes", "Asset bytes received", &m.bytes_received),
            (
                "compute_jobs",
                "Compute jobs run as provider (completed or stopped)",
                &m.compute_jobs,
            ),
            (
                "compute_result_bytes",
                "Result bytes compute jobs returned (all that left for them)",
                &m.compute_result_bytes,
            ),
            (
                "compute_fuel",
                "Fuel compute jobs consumed",
                &m.compute_fuel,
            ),
        ];
        for (name, help, c) in counters {
            g.register(name, help, c.clone());
        }
        g.register(
            "negotiation_seconds",
            "Contract negotiation round trips as consumer",
            m.negotiation_seconds.clone(),
        );
        m
    }
}

/// The gaiamesh metrics the event loop updates.
pub(crate) struct Metrics {
    pub(crate) libp2p: libp2p::metrics::Metrics,
    pub(crate) merges: Family<Outcome, Counter>,
    pub(crate) gossip: Family<Outcome, Counter>,
    pub(crate) admissions: Family<Outcome, Counter>,
    pub(crate) hole_punches: Family<Outcome, Counter>,
    pub(crate) dht_refused: Counter,
    pub(crate) kad_queries: Family<QueryKind, Histogram>,
    pub(crate) light_queries: Counter,
    pub(crate) sd_ingest: Histogram,
    pub(crate) sd_propagation: Histogram,
    pub(crate) reconciliations: Family<Outcome, Counter>,
    pub(crate) reconciliation_differences: Family<Direction, Counter>,
    pub(crate) repo: RepoMetrics,
    pub(crate) directory_entries: Gauge,
    pub(crate) sd_stored_cpu: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub(crate) connected_peers: Gauge,
    pub(crate) admitted_peers: Gauge,
}

fn ingest_histogram() -> Histogram {
    // 50 µs … ~0.8 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 15,
    ))
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

impl Metrics {
    /// Registers every metric in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let libp2p = libp2p::metrics::Metrics::new(registry.sub_registry_with_prefix("libp2p"));
        let g = registry.sub_registry_with_prefix("gaiamesh");
        let m = Self {
            libp2p,
            merges: Family::default(),
            gossip: Family::default(),
            admissions: Family::default(),
            hole_punches: Family::default(),
            dht_refused: Counter::default(),
            kad_queries: Family::new_with_constructor(latency_histogram),
            light_queries: Counter::default(),
            sd_ingest: ingest_histogram(),
            sd_propagation: latency_histogram(),
            reconciliations: Family::default(),
            reconciliation_differences: Family::default(),
            repo: RepoMetrics::default(),
            directory_entries: Gauge::default(),
            sd_stored_cpu: Gauge::default(),
            connected_peers: Gauge::default(),
            admitted_peers: Gauge::default(),
        };
        g.register(
            "directory_merges",
            "Self-descriptions merged, by outcome",
            m.merges.clone(),
        );
        g.register(
            "gossip_messages",
            "Gossip messages validated, by verdict",
            m.gossip.clone(),
        );
        g.register(
            "admissions",
            "Peer admission decisions, by outcome",
            m.admissions.clone(),
        );
        g.register(
            "hole_punches",
            "Relayed connections upgraded to direct ones by hole punching (DCUtR), by outcome",
            m.hole_punches.clone(),
        );
        g.register(
            "dht_refused",
            "DHT records or provider records refused",
            m.dht_refused.clone(),
        );
        g.register(
            "kad_query_seconds",
            "Duration of finished Kademlia queries, by kind",
            m.kad_queries.clone(),
        );
        g.register(
            "light_queries",
            "Queries answered through the DHT (light mode)",
            m.light_queries.clone(),
        );
        g.register(
            "sd_ingest_seconds",
            "Time to decode, verify, merge and commit one gossiped self-description",
            m.sd_ingest.clone(),
        );
        g.register(
            "sd_propagation_seconds",
            "Time from a peer's signature of a self-description to this node storing it, over \
             every hop (across machines' clocks)",
            m.sd_propagation.clone(),
        );
        g.register(
            "reconciliations",
            "Reconciliation sessions this node started, by outcome (done, failed)",
            m.reconciliations.clone(),
        );
        g.register(
            "reconciliation_differences",
            "Records found different by reconciliation: needed from the peer or had for it",
            m.reconciliation_differences.clone(),
        );
        g.register(
            "sd_stored_cpu_seconds",
            "This process's CPU time when it last took a gossiped self-description into its \
             merge step (only with directory.cpu_at_ingest)",
            m.sd_stored_cpu.clone(),
        );
        g.register(
            "repo_uploaded_bytes",
            "Blob bytes served to peers (bao streams)",
            m.repo.uploaded.clone(),
        );
        g.register(
            "repo_downloaded_bytes",
            "Blob bytes received from peers (bao streams, verified or not)",
            m.repo.downloaded.clone(),
        );
        g.register(
            "repo_penalised_peers",
            "Peers penalised for sending blob data that failed verification",
            m.repo.penalised.clone(),
        );
        g.register(
            "directory_entries",
            "Entries in the directory replica",
            m.directory_entries.clone(),
        );
        g.register(
            "connected_peers",
            "Peers with an open connection",
            m.connected_peers.clone(),
        );
        g.register(
            "admitted_peers",
            "Peers that passed admission",
            m.admitted_peers.clone(),
        );
        m
    }

    /// Records how long a finished Kademlia query took.
    pub(crate) fn kad_query(&self, result: &QueryResult, took: Duration) {
        let kind = match result {
            QueryResult::Bootstrap(_) => "bootstrap",
            QueryResult::GetClosestPeers(_) => "get_closest_peers",
            QueryResult::GetProviders(_) => "get_providers",
            QueryResult::StartProviding(_) | QueryResult::RepublishProvider(_) => "add_provider",
            QueryResult::GetRecord(_) => "get_record",
            QueryResult::PutRecord(_) | QueryResult::RepublishRecord(_) => "put_record",
        };
        self.kad_queries
            .get_or_create(&QueryKind { kind })
            .observe(took.as_secs_f64());
    }

    /// Counts one outcome in `family`.
    pub(crate) fn count(family: &Family<Outcome, Counter>, outcome: &'static str) {
        family.get_or_create(&Outcome { outcome }).inc();
    }
}

/// The text exposition of `registry`.
/// The local API under load: what its bounds did.
#[derive(Clone, Debug, Default)]
pub(crate) struct ApiMetrics {
    /// Connections open now.
    pub(crate) connections_open: Gauge,
    /// Idle connections closed to make room for new ones (`[api] max_connections`).
    pub(crate) connections_evicted: Counter,
    /// Requests answered 503 (`[api] max_requests_in_flight`).
    pub(crate) requests_shed: Counter,
    /// `/api/v1/events` streams open now.
    pub(crate) event_subscribers: Gauge,
}

impl ApiMetrics {
    pub(crate) fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let g = registry.sub_registry_with_prefix("gaiamesh_api");
        g.register(
            "connections_open",
            "API connections open now",
            m.connections_open.clone(),
        );
        g.register(
            "connections_evicted",
            "Idle API connections closed to make room for new ones",
            m.connections_evicted.clone(),
        );
        g.register(
            "requests_shed",
            "API requests answered 503 because max_requests_in_flight were in progress",
            m.requests_shed.clone(),
        );
        g.register(
            "event_subscribers",
            "Server-sent event streams open now",
            m.event_subscribers.clone(),
        );
        m
    }
}

pub(crate) fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_gaiamesh_and_libp2p_metrics() {
        let mut registry = Registry::default();
        let m = Metrics::new(&mut registry);
        Metrics::count(&m.merges, "inserted");
        m.directory_entries.set(7);
        let text = encode(&registry);
        assert!(
            text.contains("gaiamesh_directory_merges_total{outcome=\"inserted\"} 1"),
            "{text}"
        );
        assert!(text.contains("gaiamesh_directory_entries 7"), "{text}");
        assert!(text.contains("libp2p_"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
