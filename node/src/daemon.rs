//! The node daemon (`gaiamesh run`): a libp2p swarm (QUIC, TCP+noise+yamux) whose event loop
//! owns the catalogue, admits peers by membership credential, gossips and reconciles
//! self-descriptions, and serves the local HTTP API.

mod api;
mod behaviour;
mod codec;
mod dht_store;
mod error;
mod event_loop;
mod events;
mod exchange;
mod gate;
mod gated;
mod metrics;
mod mirror;
mod pipe;
mod repo;
mod service;
pub mod storage;
mod transport;

use std::{collections::HashMap, collections::HashSet, time::Duration};

use anyhow::{Context, Result};
use gaiamesh_directory::{catalogue::QueryOptions, query::Expr};
use gaiamesh_protocol::{identity::PublicKey, sd::SdDocument};
use libp2p::{Multiaddr, gossipsub};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::datadir::DataDir;
pub(crate) use api::{FloodBody, Problem, ReleaseBody, answers};
pub(crate) use error::CommandError;
pub(crate) use event_loop::repo::{FetchStarted, LocalState, ReleaseReply, RepoStatus};
pub(crate) use exchange::{
    ComputeJobView, ComputeRequest, FetchRequest, JobView, ReviewDecision, ReviewView,
    ReviewsAnswer,
};

/// What a publication of the node's own self-description did.
#[derive(Clone, Copy, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct Published {
    /// The new version's seq.
    pub(crate) seq: u64,
    /// From the version's `received_at_ms` on this node (the moment it was issued) until it
    /// was handed to gossipsub: signing, merging and the commits, ms.
    pub(crate) gossip_after_ms: f64,
}

/// Commands the event loop accepts.
#[derive(Debug)]
pub(crate) enum Command {
    Status {
        reply: oneshot::Sender<Status>,
    },
    Query {
        expr: Expr,
        opts: QueryOptions,
        reply: oneshot::Sender<Result<QueryReply, CommandError>>,
    },
    Show {
        subject: PublicKey,
        reply: oneshot::Sender<Option<EntryView>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerView>>,
    },
    /// `GET /api/v1/updates`.
    Updates {
        subject: Option<String>,
        limit: usize,
        reply: oneshot::Sender<event_loop::recent::UpdatesView>,
    },
    /// `GET /api/v1/federation`.
    Federation {
        reply: oneshot::Sender<event_loop::federation::FederationView>,
    },
    Revoke {
        list: Box<gaiamesh_protocol::federation::RevocationList>,
        reply: oneshot::Sender<Result<usize, CommandError>>,
    },
    Publish {
        /// `None` re-publishes the current document with seq + 1.
        document: Option<Box<SdDocument>>,
        reply: oneshot::Sender<Result<Published, CommandError>>,
    },
    /// `GET /api/v1/repo`.
    RepoStatus {
        reply: oneshot::Sender<event_loop::repo::RepoStatus>,
    },
    /// `GET /api/v1/repo/bundle`: the encoded trusted state.
    RepoBundle {
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// `POST /api/v1/repo/release`: import `file` (if any) and trust `bundle` (signed by
    /// the CLI).
    RepoRelease {
        bundle: Vec<u8>,
        file: Option<std::path::PathBuf>,
        reply: oneshot::Sender<Result<event_loop::repo::ReleaseReply, CommandError>>,
    },
    /// `POST /api/v1/repo/fetch`: fetch a target (NAME or NAME@VERSION).
    RepoFetch {
        target: String,
        reply: oneshot::Sender<Result<event_loop::repo::FetchStarted, CommandError>>,
    },
    /// A release whose blob is imported: trust the bundle if it names `hash`.
    RepoApplyLocal {
        bundle: Vec<u8>,
        hash: gaiamesh_protocol::repository::BlobHash,
        reply: oneshot::Sender<Result<event_loop::repo::ReleaseApplied, CommandError>>,
    },
    /// A bundle fetched from a peer (after its admission or a gossiped timestamp).
    RepoOffer {
        bundle: Vec<u8>,
        from: libp2p::PeerId,
    },
    /// Providers of a blob: DHT providers and admitted peers.
    BlobProviders {
        hash: gaiamesh_protocol::repository::BlobHash,
        reply: oneshot::Sender<Vec<libp2p::PeerId>>,
    },
    /// Announce this node as a provider of a blob it holds.
    ProvideBlob {
        hash: gaiamesh_protocol::repository::BlobHash,
    },
    /// A peer sent blob data that failed verification.
    PenaliseBlobPeer {
        peer: libp2p::PeerId,
    },
    /// Fault injection: publish raw bytes on the directory topic.
    RawGossip {
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    /// Fault injection: publish `per_second` invalid messages a second for `seconds`.
    Flood {
        per_second: u32,
        seconds: u32,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    Shutdown,
}

/// `GET /api/v1/status`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Status {
    /// This node.
    pub peer_id: String,
    /// Federation id.
    pub federation: String,
    /// Peers with an open connection.
    pub connected_peers: usize,
    /// Peers that passed admission.
    pub admitted_peers: usize,
    /// Entries in the catalogue.
    pub directory_entries: usize,
    /// Addresses the swarm listens on.
    pub listen_addrs: Vec<String>,
    /// Seq of the node's own published self-description.
    pub own_seq: Option<u64>,
    /// The daemon's version (`gaiamesh --version`).
    #[serde(default)]
    pub version: String,
    /// Milliseconds since the node's event loop started.
    #[serde(default)]
    pub uptime_ms: u64,
    /// Directory mode: `full` or `light`.
    #[serde(default)]
    pub mode: String,
    /// Whether the node has announced its DHT entries since it had peers (the start-up
    /// announcement; a devnet waits for it before measuring propagation).
    #[serde(default)]
    pub dht_announced: bool,
    /// Kademlia queries running.
    #[serde(default)]
    pub kad_queries: usize,
    /// Relays and hole punching.
    #[serde(default)]
    pub nat: event_loop::nat::NatStatus,
    /// Fault injection: invalid messages this node published in a flood (`POST
    /// /api/v1/debug/flood`), and whether one is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood: Option<event_loop::flood::FloodStatus>,
}

/// One entry of `GET /api/v1/peers`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct PeerView {
    pub(crate) peer_id: String,
    pub(crate) admitted: bool,
    pub(crate) last_seen_ms: Option<u64>,
    /// Gossipsub peer score (negative: penalised).
    pub(crate) score: Option<f64>,
}

/// `GET /api/v1/directory`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct QueryReply {
    pub(crate) source: QuerySource,
    /// Providers found for the plan's attribute keys (`dht` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) providers: Option<usize>,
    /// Whether a `dht` answer may be incomplete (provider cap or deadline reached).
    pub(crate) truncated: bool,
    pub(crate) plan: String,
    pub(crate) total: usize,
    pub(crate) examined: usize,
    pub(crate) matches: Vec<MatchView>,
}

/// Where a query was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum QuerySource {
    /// The local catalogue (a full node).
    Replica,
    /// A light node's DHT lookup.
    Dht,
}

/// One (node, service) row of a query answer.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct MatchView {
    /// The node (PeerId).
    pub(crate) subject: String,
    pub(crate) seq: u64,
    pub(crate) legal_name: String,
    /// Where the node is (ISO 3166-1).
    pub(crate) country: String,
    /// The matching service (`null` for a node without services).
    pub(crate) service: Option<gaiamesh_protocol::sd::Service>,
}

/// `GET /api/v1/directory/{peer}`.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub(crate) struct EntryView {
    pub(crate) subject: String,
    pub(crate) seq: u64,
    pub(crate) received_at_ms: u64,
    pub(crate) from: Option<String>,
    pub(crate) last_seen_ms: Option<u64>,
    /// The self-description document as the subject signed it.
    #[schema(value_type = gaiamesh_protocol::sd::SdDocument)]
    pub(crate) document: serde_json::Value,
    /// Who signed what, checked again when asked.
    pub(crate) proofs: event_loop::proofs::Proofs,
}

/// A cloneable handle to the event loop.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    tx: mpsc::Sender<Command>,
    events: tokio::sync::broadcast::Sender<events::NodeEvent>,
}

impl Client {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, CommandError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| CommandError::ShuttingDown)?;
        rx.await.map_err(|_| CommandError::ShuttingDown)
    }

    /// [`Self::ask`] for a command whose answer may be a refusal.
    async fn try_ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, CommandError>>) -> Command,
    ) -> Result<T, CommandError> {
        self.ask(make).await?
    }

    /// Sends `event` to every subscriber of `/events` (none listening is fine).
    pub(crate) fn emit(&self, event: events::NodeEvent) {
        let _ = self.events.send(event);
    }

    /// A new subscription to the node's events (`/events`).
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<events::NodeEvent> {
        self.events.subscribe()
    }

    pub(crate) async fn status(&self) -> Result<Status, CommandError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    pub(crate) async fn query(
        &self,
        expr: Expr,
        opts: QueryOptions,
    ) -> Result<QueryReply, CommandError> {
        self.try_ask(|reply| Command::Query { expr, opts, reply })
            .await
    }

    pub(crate) async fn peers(&self) -> Result<Vec<PeerView>, CommandError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    pub(crate) async fn federation(
        &self,
    ) -> Result<event_loop::federation::FederationView, CommandError> {
        self.ask(|reply| Command::Federation { reply }).await
    }

    pub(crate) async fn updates(
        &self,
        subject: Option<String>,
        limit: usize,
    ) -> Result<event_loop::recent::UpdatesView, CommandError> {
        self.ask(|reply| Command::Updates {
            subject,
            limit,
            reply,
        })
        .await
    }

    pub(crate) async fn revoke(
        &self,
        list: gaiamesh_protocol::federation::RevocationList,
    ) -> Result<usize, CommandError> {
        self.try_ask(|reply| Command::Revoke {
            list: Box::new(list),
            reply,
        })
        .await
    }

    pub(crate) async fn raw_gossip(&self, bytes: Vec<u8>) -> Result<(), CommandError> {
        self.try_ask(|reply| Command::RawGossip { bytes, reply })
            .await
    }

    pub(crate) async fn flood(&self, per_second: u32, seconds: u32) -> Result<(), CommandError> {
        self.try_ask(|reply| Command::Flood {
            per_second,
            seconds,
            reply,
        })
        .await
    }

    pub(crate) async fn repo_status(&self) -> Result<event_loop::repo::RepoStatus, CommandError> {
        self.ask(|reply| Command::RepoStatus { reply }).await
    }

    pub(crate) async fn repo_bundle(&self) -> Result<Vec<u8>, CommandError> {
        self.ask(|reply| Command::RepoBundle { reply }).await
    }

    pub(crate) async fn repo_release(
        &self,
        bundle: Vec<u8>,
        file: Option<std::path::PathBuf>,
    ) -> Result<event_loop::repo::ReleaseReply, CommandError> {
        self.try_ask(|reply| Command::RepoRelease {
            bundle,
            file,
            reply,
        })
        .await
    }

    pub(crate) async fn repo_fetch(
        &self,
        target: String,
    ) -> Result<event_loop::repo::FetchStarted, CommandError> {
        self.try_ask(|reply| Command::RepoFetch { target, reply })
            .await
    }

    /// Providers of `hash` (empty when the node is stopping).
    pub(crate) async fn blob_providers(
        &self,
        hash: gaiamesh_protocol::repository::BlobHash,
    ) -> Vec<libp2p::PeerId> {
        self.ask(|reply| Command::BlobProviders { hash, reply })
            .await
            .unwrap_or_default()
    }

    pub(crate) async fn provide_blob(&self, hash: gaiamesh_protocol::repository::BlobHash) {
        let _ = self.tx.send(Command::ProvideBlob { hash }).await;
    }

    pub(crate) async fn penalise_blob_peer(&self, peer: libp2p::PeerId) {
        let _ = self.tx.send(Command::PenaliseBlobPeer { peer }).await;
    }

    pub(crate) async fn apply_local_release(
        &self,
        bundle: Vec<u8>,
        hash: gaiamesh_protocol::repository::BlobHash,
    ) -> Result<event_loop::repo::ReleaseApplied, CommandError> {
        self.try_ask(|reply| Command::RepoApplyLocal {
            bundle,
            hash,
            reply,
        })
        .await
    }

    pub(crate) async fn offer_bundle(&self, bundle: Vec<u8>, from: libp2p::PeerId) {
        let _ = self.tx.send(Command::RepoOffer { bundle, from }).await;
    }

    pub(crate) async fn show(&self, subject: PublicKey) -> Result<Option<EntryView>, CommandError> {
        self.ask(|reply| Command::Show { subject, reply }).await
    }

    pub(crate) async fn publish(
        &self,
        document: Option<SdDocument>,
    ) -> Result<Published, CommandError> {
        self.try_ask(|reply| Command::Publish {
            document: document.map(Box::new),
            reply,
        })
        .await
    }
}

/// Commands queued for the event loop at most; senders wait beyond that.
const COMMAND_QUEUE: usize = 256;

pub use service::LogFilter;

/// Runs the node on `dir` until SIGTERM or SIGINT. `log` lets a SIGHUP change the log filter
/// (see `service::reload`); without it the filter is fixed.
pub async fn run(dir: DataDir, log: Option<LogFilter>) -> Result<()> {
    // Held until the process ends: tells a live node from a stale api.json (kill -9).
    let _lock = dir.lock_node()?;
    let config = dir.config()?;
    let key = dir.key()?;
    let credential = dir.credential()?;
    let catalogue = dir.catalogue()?;
    let mut catalogue = catalogue;
    let rev_path = dir.root().join("revocations.toml");
    let mut revocation_list = None;
    if rev_path.exists() {
        let text = crate::datadir::read_text(&rev_path, 8 * 1024 * 1024)?;
        let list = gaiamesh_protocol::federation::RevocationList::from_toml(&text)
            .with_context(|| format!("{}", rev_path.display()))?;
        let removed = catalogue
            .apply_revocations(&list, crate::now())
            .with_context(|| format!("{}", rev_path.display()))?;
        info!(
            version = list.body.version,
            removed, "revocation list in force"
        );
        revocation_list = Some(list);
    }
    let trust = catalogue.trust().clone();
    let doc_path = dir.root().join(&config.sd.document);
    let document = if doc_path.exists() {
        Some(
            crate::datadir::read_document(&doc_path)
                .map_err(|e| anyhow::anyhow!("{}:\n{e}", doc_path.display()))?,
        )
    } else {
        info!(path = %doc_path.display(), "no self-description document; not publishing one");
        None
    };
    let libp2p_key = key.to_libp2p();
    let store = dht_store::DhtStore::open(
        &dir.root().join("dht.redb"),
        key.public().to_peer_id(),
        trust.clone(),
        dht_store::DhtLimits::default(),
    )
    .with_context(|| format!("{}", dir.root().join("dht.redb").display()))?;
    // The protocol parameters shared with the simulator; the operator's config sets some.
    let mut params = gaiamesh_core::Params::default();
    params.sync.reconcile_interval = config.directory.reconcile_interval;
    params.repository.requests_per_peer = config.repository.requests_per_peer;
    params.repository.requests_in_flight = config.repository.requests_in_flight;
    info!(params = %params.summary(), "protocol parameters");
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = metrics::Metrics::new(&mut registry);
    let api_metrics = metrics::ApiMetrics::new(&mut registry);
    let idle = config.network.idle_connection_timeout;
    let psk = trust
        .genesis()
        .policy
        .psk
        .as_deref()
        .map(transport::parse_psk)
        .transpose()?;
    if let Some(psk) = &psk {
        info!(fingerprint = %psk.fingerprint(), "TCP requires the federation's pre-shared key (pnet)");
    }
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(libp2p_key)
        .with_tokio()
        .with_quic_config(|mut c| {
            // The idle timeout the simulator models (a partition longer than it closes the
            // connections across it, and the core redials); keep-alives at half of it.
            let idle = params.sync.idle_timeout;
            c.max_idle_timeout = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX);
            c.keep_alive_interval = idle / 2;
            c
        })
        .with_other_transport(|key| transport::tcp(key, psk))?
        // Relayed connections (`/p2p-circuit`) run noise and yamux inside a stream of the
        // connection to the relay, which is itself a member's (QUIC, or TCP with the PSK).
        .with_relay_client(libp2p::noise::Config::new, libp2p::yamux::Config::default)?
        .with_behaviour(|k, relay_client| {
            behaviour::Behaviour::new(
                k,
                &params,
                &trust.id().to_string(),
                store,
                &config.network,
                relay_client,
                &mut registry,
            )
            .map_err(|e| e.into())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    let topic = gossipsub::IdentTopic::new(format!("/gaiamesh/{}/sd/1", trust.id()));
    let presence = gossipsub::IdentTopic::new(format!("/gaiamesh/{}/presence/1", trust.id()));
    let revocations = gossipsub::IdentTopic::new(format!("/gaiamesh/{}/revocations/1", trust.id()));
    let repo_topic = gossipsub::IdentTopic::new(format!("/gaiamesh/{}/repo/1", trust.id()));
    let light = config.directory.mode == gaiamesh_config::DirectoryMode::Light;
    let gossip = &mut swarm.behaviour_mut().gossipsub;
    gossip
        .set_topic_params(repo_topic.clone(), behaviour::topic_score_params())
        .map_err(|e| anyhow::anyhow!("gossip scoring: {e}"))?;
    gossip.subscribe(&repo_topic)?;
    for t in [&revocations, &topic, &presence] {
        gossip
            .set_topic_params(t.clone(), behaviour::topic_score_params())
            .map_err(|e| anyhow::anyhow!("gossip scoring: {e}"))?;
    }
    gossip.subscribe(&revocations)?;
    gossip.subscribe(&presence)?;
    // A light node keeps no replica: it publishes on the directory topic without reading it.
    if !light {
        gossip.subscribe(&topic)?;
    }
    for addr in &config.network.listen {
        let ma: Multiaddr = addr
            .parse()
            .with_context(|| format!("network.listen: {addr:?} is not a multiaddr"))?;
        swarm
            .listen_on(ma)
            .with_context(|| format!("cannot listen on {addr}"))?;
    }
    let mut bootstrap = Vec::new();
    for addr in trust
        .genesis()
        .bootstrap
        .iter()
        .chain(&config.network.bootstrap)
    {
        match addr.parse::<Multiaddr>() {
            Ok(ma) => {
                if let Err(e) = swarm.dial(ma.clone()) {
                    tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
                }
                bootstrap.push(ma);
            }
            Err(e) => tracing::warn!(%addr, error = %e, "bootstrap address is not a multiaddr"),
        }
    }
    let nat = event_loop::nat::Nat::new(&config.network.relays)?;
    if config.network.relay_server {
        info!("relaying for admitted members behind NAT (network.relay_server)");
    }
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = tokio::sync::broadcast::channel(events::EVENT_BUFFER);
    let client = Client {
        tx,
        events: events.clone(),
    };
    let blobs = std::sync::Arc::new(
        crate::blobs::BlobStore::open(&dir.root().join("blobs"))
            .with_context(|| format!("{}", dir.root().join("blobs").display()))?,
    );
    let trusted_repo = dir.repository()?;
    let control = swarm.behaviour().stream.new_control();
    let admitted_shared = mirror::Mirror::new(HashSet::new());
    let bundle_shared = mirror::Mirror::new(trusted_repo.bundle(0).encode()?);
    let kib = |k: u64| k.saturating_mul(1024);
    let corrupt_blobs = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seeding = std::sync::Arc::new(std::sync::Mutex::new(repo::SeedLog::default()));
    // One upload budget for the node: repository blobs and data-exchange transfers.
    let upload_limits = repo::UploadLimits::new(
        kib(config.repository.upload_limit_kib_s),
        kib(config.repository.peer_upload_limit_kib_s),
    );
    let audit_path = dir.root().join("audit.redb");
    let exchange = exchange::Exchange {
        key: key.clone(),
        trust: std::sync::Arc::new(trust.clone()),
        credential: std::sync::Arc::new(match &credential {
            Some(c) => c.encode()?,
            None => Vec::new(),
        }),
        root: dir.root().to_owned(),
        audit: std::sync::Arc::new(
            gaiamesh_exchange::audit::AuditLog::open(&audit_path, Some(key.clone()))
                .with_context(|| format!("{}", audit_path.display()))?,
        ),
        admitted: admitted_shared.clone(),
        limits: upload_limits.clone(),
        control: control.clone(),
        client: client.clone(),
        metrics: metrics::ExchangeMetrics::new(&mut registry),
        jobs: Default::default(),
        compute: std::sync::Arc::new(exchange::ComputeRuntime::new(config.compute.clone())),
        meter: Default::default(),
        assets: Default::default(),
    };
    tokio::spawn(exchange.clone().serve());
    tokio::spawn(
        repo::Server {
            store: blobs.clone(),
            admitted: admitted_shared.clone(),
            limits: upload_limits,
            bundle: bundle_shared.clone(),
            metrics: metrics.repo.clone(),
            corrupt: corrupt_blobs.clone(),
            seeding: seeding.clone(),
        }
        .run(control.clone()),
    );
    let repo_state = event_loop::repo::RepoState {
        trusted: trusted_repo,
        topic: repo_topic,
        fetcher: repo::Fetcher {
            store: blobs,
            control,
            client: client.clone(),
            params: (&params.repository).into(),
            progress: Default::default(),
            penalised: Default::default(),
            me: key.public().to_peer_id(),
            metrics: metrics.repo.clone(),
        },
        bundle: bundle_shared,
        admitted: admitted_shared,
        auto_fetch: config.repository.auto_fetch_mandatory,
        seeding,
        lookups: HashMap::new(),
    };
    let catalogue = storage::SharedCatalogue::new(catalogue);
    let backup_store = catalogue.read().store().clone();
    let (stored_tx, stored) = tokio::sync::mpsc::channel(storage::MAX_QUEUED_JOBS);
    let storage = storage::Storage::start(catalogue.clone(), stored_tx, crate::now)
        .context("starting the storage writer")?;
    let core_trace = event_loop::core_trace::CoreTrace::from_env(dir.root());
    let ev = event_loop::EventLoop {
        swarm,
        commands: rx,
        catalogue,
        storage,
        stored,
        issued_seq: 0,
        dir: dir.clone(),
        key,
        credential,
        topic,
        presence,
        revocations,
        params: params.clone(),
        cpu_at_ingest: config.directory.cpu_at_ingest,
        bootstrap: event_loop::Redial::new(bootstrap),
        validity_ms: u64::try_from(config.sd.validity.as_millis()).unwrap_or(u64::MAX),
        republish_before_ms: u64::try_from(config.sd.republish_before_expiry.as_millis())
            .unwrap_or(u64::MAX),
        node: {
            let node = gaiamesh_core::node::NodeState::new(&params, Duration::ZERO, light)
                .reconcile_phase(rand::random());
            if core_trace.is_some() {
                node.traced(Vec::new())
            } else {
                node
            }
        },
        origin: std::time::Instant::now(),
        core_trace,
        loaded: event_loop::sync::Loads::new(),
        sessions: HashMap::new(),
        revocations_pushed: HashMap::new(),
        revocation_list,
        recon: event_loop::recon_snapshot::ReconSnapshot::default(),
        listen_addrs: Vec::new(),
        own: None,
        rng: event_loop::seeded_rng(),
        light,
        metrics,
        events,
        recent: event_loop::recent::Recent::default(),
        peer_addrs: HashMap::new(),
        provided_keys: HashSet::new(),
        kad_bootstrapped: false,
        pending_dht: HashMap::new(),
        lights: event_loop::dht::LightQueries::default(),
        repo: repo_state,
        nat,
        relay_server: config.network.relay_server,
        flood: None,
        watchdog: service::Watchdog::from_env(),
    };
    let loop_task = tokio::spawn(ev.run(document));
    let api = api::serve(
        &dir,
        &config.api,
        api::Parts {
            client: client.clone(),
            registry: std::sync::Arc::new(registry),
            corrupt_blobs,
            exchange,
            api_metrics,
            catalogue: backup_store,
        },
    )
    .await?;
    let notifier = service::Notifier;
    let listening = wait_listening(&client, !config.network.listen.is_empty()).await;
    info!(api = %api.addr, swarm = ?listening, "node ready");
    notifier.ready(&format!("API on {}", api.addr));
    let mut config = config;
    signals(&dir, &mut config, log.as_ref(), notifier).await;
    info!("shutting down");
    notifier.stopping();
    api.stop().await;
    let _ = client.tx.send(Command::Shutdown).await;
    match tokio::time::timeout(SHUTDOWN_GRACE, loop_task).await {
        Ok(_) => info!("records flushed; stopped"),
        Err(_) => tracing::warn!(grace = ?SHUTDOWN_GRACE, "the event loop did not stop in time"),
    }
    let _ = std::fs::remove_file(dir.root().join("api.json"));
    Ok(())
}

/// How long the event loop may take to drain the storage writer on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Waits (up to 30 s) until the swarm listens on an address, when it was asked to listen on
/// any: readiness means peers can reach the node. Returns the addresses.
async fn wait_listening(client: &Client, expected: bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.status().await {
            Ok(st) if !st.listen_addrs.is_empty() || !expected => return st.listen_addrs,
            Ok(_) | Err(_) if tokio::time::Instant::now() >= deadline => {
                tracing::warn!("the swarm listens on no address after 30 s; ready anyway");
                return Vec::new();
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Until SIGTERM or SIGINT: SIGHUP re-reads the configuration (`service::reload`).
async fn signals(
    dir: &DataDir,
    config: &mut gaiamesh_config::NodeConfig,
    log: Option<&LogFilter>,
    notifier: service::Notifier,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = hup.recv() => {
                notifier.reloading();
                match service::reload(dir, config, log) {
                    Ok(r) => info!(
                        applied = ?r.applied,
                        at_restart = ?r.at_restart,
                        "config reloaded (SIGHUP)"
                    ),
                    Err(e) => tracing::error!(
                        error = %format!("{e:#}"),
                        "config not reloaded; the node keeps its configuration"
                    ),
                }
                notifier.ready("config reloaded");
            }
        }
    }
}
