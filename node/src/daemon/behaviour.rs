//! The libp2p behaviour of a node: identify, ping, Kademlia (server mode, validating store,
//! routing table filled only with admitted peers; both identify and Kademlia gated so that
//! they answer admitted peers only, [`super::gated`]), gossipsub (manual validation, peer
//! scoring), request-response for admission and directory requests, and raw streams for
//! repository transfers.

use std::time::Duration;

use gaiamesh_protocol::wire::{
    ADMISSION_PROTOCOL, Admission, DIRECTORY_PROTOCOL, DirectoryRequest, DirectoryResponse,
};
use libp2p::{
    StreamProtocol, connection_limits, dcutr, gossipsub, identify,
    identity::Keypair,
    kad, memory_connection_limits, ping, relay, request_response,
    request_response::ProtocolSupport,
    swarm::{NetworkBehaviour, behaviour::toggle::Toggle},
};

use super::{codec::PostcardCodec, dht_store::DhtStore};

/// The Kademlia protocol name of a federation (DESIGN §6): nodes of different federations
/// never speak Kademlia with each other, even where admission has not run yet.
pub(crate) fn kad_protocol(federation: &str) -> Result<StreamProtocol, anyhow::Error> {
    StreamProtocol::try_from_owned(format!("/gaiamesh/{federation}/kad/1"))
        .map_err(|e| anyhow::anyhow!("kad protocol name: {e}"))
}

/// Largest gossip message: one signed self-description plus framing.
pub(crate) const MAX_GOSSIP_BYTES: usize = gaiamesh_protocol::limits::MAX_SD_BYTES + 1024;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First: connections of peers banned after failing admission are denied before any
    /// other behaviour sees them.
    pub(crate) gate: super::gate::Gate,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    /// Answers admitted peers only (a non-member learns no addresses, protocols or version).
    pub(crate) identify: super::gated::Gated<identify::Behaviour>,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// Answers admitted peers only (a non-member learns nothing of the routing table).
    pub(crate) kad: super::gated::Gated<kad::Behaviour<DhtStore>>,
    pub(crate) admission: request_response::Behaviour<PostcardCodec<Admission, Admission>>,
    pub(crate) directory:
        request_response::Behaviour<PostcardCodec<DirectoryRequest, DirectoryResponse>>,
    /// Raw streams for repository transfers (`/gaiamesh/blobs/1`).
    pub(crate) stream: libp2p_stream::Behaviour,
    /// Circuit relay v2 server (`network.relay_server`), for admitted members only: a
    /// non-member can neither reserve a slot nor open a circuit.
    pub(crate) relay: Toggle<super::gated::Gated<relay::Behaviour>>,
    /// Listening and dialling through relays (`network.relays`, and `/p2p-circuit`
    /// addresses learnt from peers).
    pub(crate) relay_client: relay::client::Behaviour,
    /// Hole punching on relayed connections (`network.hole_punching`), with admitted
    /// members only (a non-member learns none of our addresses).
    pub(crate) dcutr: Toggle<super::gated::Gated<dcutr::Behaviour>>,
}

/// What a relay grants one member (members only reach it, so the limits are generous next
/// to libp2p's public-relay defaults of 2 minutes and 128 KiB: a relayed connection must
/// carry admission, reconciliation and a transfer when hole punching fails).
fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: 1024,
        max_reservations_per_peer: 4,
        reservation_duration: Duration::from_secs(3600),
        max_circuits: 256,
        max_circuits_per_peer: 16,
        max_circuit_duration: Duration::from_secs(30 * 60),
        max_circuit_bytes: 1 << 30,
        ..relay::Config::default()
    }
}

/// An application score that graylists a connected peer until it passes admission: gossipsub
/// neither grafts it into a mesh, nor sends it gossip, nor processes its messages (its
/// subscriptions are still recorded, so it joins the mesh as soon as it is admitted).
pub(crate) const PENDING_ADMISSION_SCORE: f64 = -1000.0;

/// Scoring of one gaiamesh topic: an invalid message (forged, equivocating, undecodable)
/// costs its sender 100 points squared per message, which graylists it (threshold −80) for
/// tens of seconds; honest quiet peers are never penalised (no mesh-delivery quotas, which
/// would punish the quiet topics of a directory).
pub(crate) fn topic_score_params() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 3600.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.99,
        ..Default::default()
    }
}

impl Behaviour {
    pub(crate) fn new(
        key: &Keypair,
        params: &gaiamesh_core::Params,
        federation: &str,
        store: DhtStore,
        network: &gaiamesh_config::NetworkConfig,
        relay_client: relay::client::Behaviour,
        registry: &mut prometheus_client::registry::Registry,
    ) -> anyhow::Result<Self> {
        let local = key.public().to_peer_id();
        let relay = network.relay_server.then(|| {
            let mut r = relay::Behaviour::new(local, relay_config());
            // The operator says this node is reachable: serve without waiting for an
            // external address to be confirmed (nothing here confirms one).
            r.set_status(Some(relay::Status::Enable));
            super::gated::Gated::new(r)
        });
        let dcutr = network
            .hole_punching
            .then(|| super::gated::Gated::new(dcutr::Behaviour::new(local)));
        let (max_connections, per_peer) =
            (network.max_connections, network.max_connections_per_peer);
        let max_memory_bytes = usize::try_from(network.max_memory_mib.saturating_mul(1024 * 1024))
            .unwrap_or(usize::MAX);
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .heartbeat_interval(params.gossip.heartbeat)
            .max_transmit_size(MAX_GOSSIP_BYTES)
            .mesh_n(params.gossip.mesh_n as usize)
            .mesh_n_low(params.gossip.mesh_n_low as usize)
            .mesh_n_high(params.gossip.mesh_n_high as usize)
            .mesh_outbound_min(params.gossip.mesh_outbound_min as usize)
            .gossip_lazy(params.gossip.lazy as usize)
            .history_gossip(params.gossip.history_gossip as usize)
            .flood_publish(params.gossip.flood_publish)
            .build()
            .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?
        // Copies received per topic, duplicates included (`…_unfiltered`), mesh sizes, scores.
        .with_metrics(
            registry.sub_registry_with_prefix("libp2p_gossipsub"),
            gossipsub::MetricsConfig::default(),
        );
        // Loopback peers share one IP by construction (devnets, tests); the IP-colocation
        // penalty would graylist them beyond 10 nodes. Real addresses keep the penalty.
        let mut score = gossipsub::PeerScoreParams::default();
        score.ip_colocation_factor_whitelist.extend([
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ]);
        // Gossipsub stops reading a peer's messages below the graylist threshold. Ours is
        // twice as deep as the score at which the node core disconnects and bans a member
        // (`GossipParams::disconnect_below_score`, −1000: four invalid messages, at −100
        // each, squared), so the invalid messages that lead there are counted instead of
        // dropped unseen — with gossipsub's −80 the first invalid message graylisted the
        // sender, its score hovered near −100 and a flooder was never disconnected.
        let thresholds = gossipsub::PeerScoreThresholds {
            graylist_threshold: 2.0 * params.gossip.disconnect_below_score as f64,
            ..Default::default()
        };
        gossipsub
            .with_peer_score(score, thresholds)
            .map_err(|e| anyhow::anyhow!("gossipsub scoring: {e}"))?;
        let banned = prometheus_client::metrics::counter::Counter::default();
        registry.register(
            "gaiamesh_connections_banned",
            "Connections denied because their peer or address is banned after failing admission",
            banned.clone(),
        );
        let rr = |timeout| request_response::Config::default().with_request_timeout(timeout);
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(max_connections))
            .with_max_established_per_peer(Some(per_peer))
            .with_max_pending_incoming(Some(max_connections.min(128)))
            .with_max_pending_outgoing(Some(max_connections.min(128)));
        let mut kad_config = kad::Config::new(kad_protocol(federation)?);
        kad_config
            .set_replication_factor(
                std::num::NonZeroUsize::new(params.kademlia.k as usize)
                    .ok_or_else(|| anyhow::anyhow!("kademlia k must be positive"))?,
            )
            .set_parallelism(
                std::num::NonZeroUsize::new(params.kademlia.alpha as usize)
                    .ok_or_else(|| anyhow::anyhow!("kademlia alpha must be positive"))?,
            );
        kad_config
            // Only admitted peers enter the routing table (the event loop adds them).
            .set_kbucket_inserts(kad::BucketInserts::Manual)
            // Inbound puts reach the event loop, which checks admission and validates.
            .set_record_filtering(kad::StoreInserts::FilterBoth)
            // Publishers re-put their own record on change and hourly (the event loop); a
            // generic re-replication of every stored record would load them all in memory.
            .set_replication_interval(None)
            .set_publication_interval(None)
            .set_provider_publication_interval(Some(Duration::from_secs(3600)))
            .set_query_timeout(Duration::from_secs(10))
            // A signed self-description is up to 32 KiB; provider lists carry addresses.
            .set_max_packet_size(256 * 1024);
        let mut kad = kad::Behaviour::with_config(key.public().to_peer_id(), store, kad_config);
        // Client mode answers nothing until an external address is confirmed (never, on
        // loopback); every node serves the DHT.
        kad.set_mode(Some(kad::Mode::Server));
        Ok(Self {
            gate: super::gate::Gate::new(banned, params.admission.clone()),
            memory: memory_connection_limits::Behaviour::with_max_bytes(max_memory_bytes),
            kad: super::gated::Gated::new(kad),
            limits: connection_limits::Behaviour::new(limits),
            // Listen address changes are pushed: a node behind NAT gains its circuit address
            // after it first met its peers, and they must learn it to reach it.
            identify: super::gated::Gated::new(identify::Behaviour::new(
                identify::Config::new("/gaiamesh/id/1".into(), key.public())
                    .with_push_listen_addr_updates(true),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
            gossipsub,
            admission: request_response::Behaviour::with_codec(
                PostcardCodec::default(),
                [(
                    StreamProtocol::new(ADMISSION_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                rr(Duration::from_secs(5)),
            ),
            directory: request_response::Behaviour::with_codec(
                PostcardCodec::default(),
                [(
                    StreamProtocol::new(DIRECTORY_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                rr(Duration::from_secs(30)),
            ),
            stream: libp2p_stream::Behaviour::new(),
            relay: relay.into(),
            relay_client,
            dcutr: dcutr.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kademlia_speaks_only_within_its_federation() {
        let a = kad_protocol("fedA").unwrap();
        let b = kad_protocol("fedB").unwrap();
        assert_eq!(a.as_ref(), "/gaiamesh/fedA/kad/1");
        assert_ne!(a, b);
    }
}
