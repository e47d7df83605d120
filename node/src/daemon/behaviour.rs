//! The libp2p behaviour of a node: identify, ping, gossipsub (manual validation, peer
//! scoring), and request-response for admission and directory requests.

use std::time::Duration;

use gaiamesh_protocol::wire::{
    ADMISSION_PROTOCOL, Admission, DIRECTORY_PROTOCOL, DirectoryRequest, DirectoryResponse,
};
use libp2p::{
    StreamProtocol, connection_limits, gossipsub, identify, identity::Keypair, ping,
    request_response, request_response::ProtocolSupport, swarm::NetworkBehaviour,
};

use super::codec::PostcardCodec;

/// Largest gossip message: one signed self-description plus framing.
pub(crate) const MAX_GOSSIP_BYTES: usize = gaiamesh_protocol::limits::MAX_SD_BYTES + 1024;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) admission: request_response::Behaviour<PostcardCodec<Admission, Admission>>,
    pub(crate) directory:
        request_response::Behaviour<PostcardCodec<DirectoryRequest, DirectoryResponse>>,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, max_connections: u32, per_peer: u32) -> anyhow::Result<Self> {
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .heartbeat_interval(Duration::from_millis(500))
            .max_transmit_size(MAX_GOSSIP_BYTES)
            .mesh_n(6)
            .mesh_n_low(4)
            .mesh_n_high(12)
            .mesh_outbound_min(2)
            .build()
            .map_err(|e| anyhow::anyhow!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(|e| anyhow::anyhow!("gossipsub: {e}"))?;
        // Loopback peers share one IP by construction (devnets, tests); the IP-colocation
        // penalty would graylist them beyond 10 nodes. Real addresses keep the penalty.
        let mut score = gossipsub::PeerScoreParams::default();
        score.ip_colocation_factor_whitelist.extend([
            std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
            std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ]);
        gossipsub
            .with_peer_score(score, gossipsub::PeerScoreThresholds::default())
            .map_err(|e| anyhow::anyhow!("gossipsub scoring: {e}"))?;
        let rr = |timeout| request_response::Config::default().with_request_timeout(timeout);
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(max_connections))
            .with_max_established_per_peer(Some(per_peer))
            .with_max_pending_incoming(Some(max_connections.min(128)))
            .with_max_pending_outgoing(Some(max_connections.min(128)));
        Ok(Self {
            limits: connection_limits::Behaviour::new(limits),
            identify: identify::Behaviour::new(identify::Config::new(
                "/gaiamesh/id/1".into(),
                key.public(),
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
        })
    }
}
