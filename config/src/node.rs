//! Node configuration (`config.toml` in the data dir).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// The TOML file as written. Every section and field is optional; defaults are documented.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfigFile {
    /// `[network]`: listening, bootstrap, connection limits.
    pub network: NetworkSection,
    /// `[api]`: the local HTTP API.
    pub api: ApiSection,
    /// `[directory]`: replica mode and anti-entropy.
    pub directory: DirectorySection,
    /// `[sd]`: the node's own self-description.
    pub sd: SdSection,
    /// `[log]`: log output.
    pub log: LogSection,
    /// `[repository]`: software repository transfers.
    pub repository: RepositorySection,
    /// `[compute]`: compute-to-data jobs this node runs as a provider.
    pub compute: ComputeSection,
}

/// `[compute]` as written: what this node lets algorithms use when it runs them next to its
/// data (docs/exchange.md, "Compute-to-data").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeSection {
    /// Run compute jobs at all (assets offered for computation are refused when off).
    /// Default: true.
    pub enabled: bool,
    /// Jobs run at once. Default: 2.
    pub concurrent_jobs: u32,
    /// Jobs waiting for a slot; more are refused. Default: 16.
    pub queued_jobs: u32,
    /// Linear memory per job (MiB). Default: 256.
    pub memory_mib: u64,
    /// Fuel per job (≈ WebAssembly instructions). Default: 100000000000.
    pub fuel: u64,
    /// Wall-clock time per job. Default: 60s.
    #[serde(with = "humantime_serde")]
    pub wall: Duration,
    /// How long a result that the asset's policy holds for review waits for the operator's
    /// decision (`gaiamesh compute review`) before it is withheld. Default: 24h.
    #[serde(with = "humantime_serde")]
    pub review_wait: Duration,
}

impl Default for ComputeSection {
    fn default() -> Self {
        Self {
            enabled: true,
            concurrent_jobs: 2,
            queued_jobs: 16,
            memory_mib: 256,
            fuel: 100_000_000_000,
            wall: Duration::from_secs(60),
            review_wait: Duration::from_secs(24 * 3600),
        }
    }
}

/// `[network]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSection {
    /// Multiaddrs to listen on. Default: QUIC and TCP on all interfaces, port 7400.
    pub listen: Vec<String>,
    /// Extra bootstrap multiaddrs (the genesis' bootstrap list is always used). Default: none.
    pub bootstrap: Vec<String>,
    /// Most established connections in total. Default: 256.
    pub max_connections: u32,
    /// Most connections to one peer. Default: 2.
    pub max_connections_per_peer: u32,
    /// Close connections idle this long. Default: 60s.
    #[serde(with = "humantime_serde")]
    pub idle_connection_timeout: Duration,
    /// Refuse new connections while the process uses more than this much memory (MiB).
    /// Default: 1024.
    pub max_memory_mib: u64,
    /// Serve as a circuit relay (libp2p relay v2) for members behind NAT: they reserve a
    /// slot here and are reachable through this node until hole punching connects them
    /// directly. Only admitted members may reserve or open circuits. Default: false.
    pub relay_server: bool,
    /// Relays to be reachable through when this node is behind NAT: addresses of members
    /// with `relay_server = true`, ending in `/p2p/<peer id>`. The node reserves a slot at
    /// each once it has admitted that relay, and again after losing it. Default: none.
    pub relays: Vec<String>,
    /// Upgrade relayed connections to direct ones by hole punching (DCUtR). Default: true.
    pub hole_punching: bool,
}

impl Default for NetworkSection {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/udp/7400/quic-v1".into(),
                "/ip4/0.0.0.0/tcp/7400".into(),
            ],
            bootstrap: vec![],
            max_connections: 256,
            max_connections_per_peer: 2,
            idle_connection_timeout: Duration::from_secs(60),
            max_memory_mib: 1024,
            relay_server: false,
            relays: vec![],
            hole_punching: true,
        }
    }
}

/// `[api]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Address of the HTTP API. Default: `127.0.0.1:7300`; port 0 picks a free port.
    pub listen: String,
    /// Allow a non-loopback API address. Default: false (writes still need the token).
    pub allow_remote: bool,
    /// Enable `POST /api/v1/debug/gossip`, which publishes raw bytes on the directory topic
    /// so a federation can test its defences: the node behaves like a misbehaving member and
    /// its peers penalise it. Default: false; never enable it on a production node.
    pub fault_injection: bool,
    /// Most open API connections. At the cap, a new connection closes the longest-idle one
    /// (no request in progress); when every connection is busy, new ones wait in the
    /// kernel's backlog. Keeps the API well under the process's file-descriptor limit, with
    /// the rest left to the swarm and storage. Default: 512.
    pub max_connections: u32,
    /// Most requests being handled at once; beyond that, 503 with `Retry-After` (the API
    /// sheds load before it can grow the process's memory). Default: 64.
    pub max_requests_in_flight: u32,
    /// Most `/api/v1/events` subscribers; a new one closes the oldest. Default: 64.
    pub max_event_subscribers: u32,
    /// A connection must send a request's complete header within this long after it
    /// opens or after its previous response (so it is also the keep-alive idle timeout).
    /// Default: 10s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A request (its body included) must be answered within this long; a server-sent
    /// event stream is not limited once it has started. Default: 30s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Extra host names (or `host:port`) a request's `Host` and `Origin` may name, besides
    /// `localhost`, the loopback addresses and the listen address. Requests naming any other
    /// host are refused (403), which stops DNS rebinding. Default: none.
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7300".into(),
            allow_remote: false,
            fault_injection: false,
            max_connections: 512,
            max_requests_in_flight: 64,
            max_event_subscribers: 64,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[directory]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectorySection {
    /// `full` keeps a replica of the whole catalogue; `light` answers through the DHT.
    pub mode: DirectoryMode,
    /// Anti-entropy with a random peer this often. Default: 30s.
    #[serde(with = "humantime_serde")]
    pub reconcile_interval: Duration,
    /// Most entries kept in the catalogue. Default: 1 000 000.
    pub max_entries: u64,
    /// Diagnostic: read the process's CPU time whenever a self-description from gossip is
    /// stored (`gaiamesh_sd_stored_cpu_seconds`). `gaiamesh devnet` turns it on to measure
    /// the simulator's inputs; it costs a few `/proc` reads per stored record. Default: off.
    pub cpu_at_ingest: bool,
}

impl Default for DirectorySection {
    fn default() -> Self {
        Self {
            mode: DirectoryMode::Full,
            reconcile_interval: Duration::from_secs(30),
            max_entries: 1_000_000,
            cpu_at_ingest: false,
        }
    }
}

/// `[sd]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SdSection {
    /// The self-description document, relative to the data dir. Default: `sd.toml`.
    pub document: PathBuf,
    /// Validity of each signed version (at most 7d). Default: 7d.
    #[serde(with = "humantime_serde")]
    pub validity: Duration,
    /// Re-publish this long before expiry. Default: 1d.
    #[serde(with = "humantime_serde")]
    pub republish_before_expiry: Duration,
}

impl Default for SdSection {
    fn default() -> Self {
        Self {
            document: PathBuf::from("sd.toml"),
            validity: Duration::from_secs(7 * 24 * 3600),
            republish_before_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// `[repository]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepositorySection {
    /// Upload limit for blob transfers over all peers, KiB/s; 0: unlimited. Default: 0.
    pub upload_limit_kib_s: u64,
    /// Upload limit per peer, KiB/s; 0: unlimited. Default: 0.
    pub peer_upload_limit_kib_s: u64,
    /// Segment requests in flight per provider. Default: 2.
    pub requests_per_peer: u32,
    /// Segment requests in flight per download, over all its providers. Default: 8.
    pub requests_in_flight: u32,
    /// Fetch mandatory components as soon as a release names them. Default: true.
    pub auto_fetch_mandatory: bool,
}

impl Default for RepositorySection {
    fn default() -> Self {
        Self {
            upload_limit_kib_s: 0,
            peer_upload_limit_kib_s: 0,
            requests_per_peer: 2,
            requests_in_flight: 8,
            auto_fetch_mandatory: true,
        }
    }
}

/// `[log]` as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `human` or `json`. Default: human.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `gaiamesh=debug,libp2p=warn`. Default: `info`.
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            filter: "info".into(),
        }
    }
}

/// Directory replica mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryMode {
    /// A full local replica of the catalogue.
    #[default]
    Full,
    /// No replica; queries go through DHT attribute keys.
    Light,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Validated node configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Network settings.
    pub network: NetworkConfig,
    /// API settings.
    pub api: ApiConfig,
    /// Directory settings.
    pub directory: DirectoryConfig,
    /// Own self-description settings.
    pub sd: SdConfig,
    /// Log settings.
    pub log: LogConfig,
    /// Repository settings.
    pub repository: RepositoryConfig,
    /// Compute-to-data settings.
    pub compute: ComputeConfig,
}

/// Validated `[network]`.
pub type NetworkConfig = NetworkSection;
/// Validated `[directory]`.
pub type DirectoryConfig = DirectorySection;
/// Validated `[sd]`.
pub type SdConfig = SdSection;
/// Validated `[log]`.
pub type LogConfig = LogSection;
/// Validated `[repository]`.
pub type RepositoryConfig = RepositorySection;
/// Validated `[compute]`.
pub type ComputeConfig = ComputeSection;

/// Validated `[api]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiConfig {
    /// The socket address to bind.
    pub listen: SocketAddr,
    /// `[api] fault_injection`.
    pub fault_injection: bool,
    /// `[api] max_connections`.
    pub max_connections: usize,
    /// `[api] max_requests_in_flight`.
    pub max_requests_in_flight: usize,
    /// `[api] max_event_subscribers`.
    pub max_event_subscribers: usize,
    /// `[api] header_read_timeout`.
    pub header_read_timeout: Duration,
    /// `[api] request_timeout`.
    pub request_timeout: Duration,
    /// `[api] allowed_hosts`, lower-cased.
    pub allowed_hosts: Vec<String>,
}

impl ApiConfig {
    /// The defaults of `[api]` listening on `listen`.
    pub fn on(listen: SocketAddr) -> Self {
        let d = ApiSection::default();
        Self {
            listen,
            fault_injection: false,
            max_connections: d.max_connections as usize,
            max_requests_in_flight: d.max_requests_in_flight as usize,
            max_event_subscribers: d.max_event_subscribers as usize,
            header_read_timeout: d.header_read_timeout,
            request_timeout: d.request_timeout,
            allowed_hosts: d.allowed_hosts,
        }
    }
}

/// Why a configuration file is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys or wrong types.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// Values are out of range; one line per problem, each naming its key.
    #[error("{file}: invalid configuration:\n{}", .errors.join("\n"))]
    Invalid {
        /// The file.
        file: String,
        /// `key: why` for every problem.
        errors: Vec<String>,
    },
}

impl NodeConfig {
    /// Reads and validates a configuration file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml_str(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ConfigError> {
        let raw: NodeConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.into(),
            message: e.to_string(),
        })?;
        raw.validate(file)
    }
}

impl NodeConfigFile {
    /// Checks every value, reporting all problems with their keys.
    pub fn validate(self, file: &str) -> Result<NodeConfig, ConfigError> {
        let mut errors = Vec::new();
        let n = &self.network;
        if n.listen.is_empty() {
            errors.push("network.listen: at least one address is required".to_owned());
        }
        for (key, list) in [
            ("network.listen", &n.listen),
            ("network.bootstrap", &n.bootstrap),
            ("network.relays", &n.relays),
        ] {
            for (i, a) in list.iter().enumerate() {
                if !a.starts_with('/') {
                    errors.push(format!(
                        "{key}[{i}]: {a:?} is not a multiaddr (e.g. /ip4/0.0.0.0/udp/7400/quic-v1)"
                    ));
                }
            }
        }
        for (i, a) in n.relays.iter().enumerate() {
            if a.starts_with('/') && !a.contains("/p2p/") {
                errors.push(format!(
                    "network.relays[{i}]: {a:?} names no peer; end it with /p2p/<the relay's peer id>"
                ));
            }
            if a.contains("/p2p-circuit") {
                errors.push(format!(
                    "network.relays[{i}]: {a:?} is a circuit address; give the relay's own address"
                ));
            }
        }
        if !(1..=100_000).contains(&n.max_connections) {
            errors.push(format!(
                "network.max_connections: {} is outside 1–100000",
                n.max_connections
            ));
        }
        if !(1..=16).contains(&n.max_connections_per_peer) {
            errors.push(format!(
                "network.max_connections_per_peer: {} is outside 1–16",
                n.max_connections_per_peer
            ));
        }
        if !(64..=1_048_576).contains(&n.max_memory_mib) {
            errors.push(format!(
                "network.max_memory_mib: {} is outside 64–1048576",
                n.max_memory_mib
            ));
        }
        if n.idle_connection_timeout < Duration::from_secs(1) {
            errors.push("network.idle_connection_timeout: must be at least 1s".to_owned());
        }
        let api_listen = match self.api.listen.parse::<SocketAddr>() {
            Ok(addr) if !addr.ip().is_loopback() && !self.api.allow_remote => {
                errors.push(format!(
                    "api.listen: {addr} is not a loopback address; set api.allow_remote = true to expose the API"
                ));
                None
            }
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!(
                    "api.listen: {:?} is not an address like 127.0.0.1:7300",
                    self.api.listen
                ));
                None
            }
        };
        let a = &self.api;
        for (key, v, range) in [
            ("api.max_connections", a.max_connections, 8..=50_000),
            (
                "api.max_requests_in_flight",
                a.max_requests_in_flight,
                1..=10_000,
            ),
            (
                "api.max_event_subscribers",
                a.max_event_subscribers,
                0..=10_000,
            ),
        ] {
            if !range.contains(&v) {
                errors.push(format!(
                    "{key}: {v} is outside {}–{}",
                    range.start(),
                    range.end()
                ));
            }
        }
        for (key, v) in [
            ("api.header_read_timeout", a.header_read_timeout),
            ("api.request_timeout", a.request_timeout),
        ] {
            if v < Duration::from_millis(100) || v > Duration::from_secs(3600) {
                errors.push(format!(
                    "{key}: {} is outside 100ms–1h",
                    humantime::format_duration(v)
                ));
            }
        }
        for (i, h) in a.allowed_hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', '@']) {
                errors.push(format!(
                    "api.allowed_hosts[{i}]: {h:?} is not a host name or host:port"
                ));
            }
        }
        let r = &self.repository;
        for (key, v) in [
            ("repository.upload_limit_kib_s", r.upload_limit_kib_s),
            (
                "repository.peer_upload_limit_kib_s",
                r.peer_upload_limit_kib_s,
            ),
        ] {
            if v > 100_000_000 {
                errors.push(format!("{key}: {v} is above 100000000 (0: unlimited)"));
            }
        }
        if !(1..=16).contains(&r.requests_per_peer) {
            errors.push(format!(
                "repository.requests_per_peer: {} is outside 1–16",
                r.requests_per_peer
            ));
        }
        if !(1..=64).contains(&r.requests_in_flight) {
            errors.push(format!(
                "repository.requests_in_flight: {} is outside 1–64",
                r.requests_in_flight
            ));
        }
        let d = &self.directory;
        if d.reconcile_interval < Duration::from_secs(1) {
            errors.push("directory.reconcile_interval: must be at least 1s".to_owned());
        }
        if d.max_entries == 0 {
            errors.push("directory.max_entries: must be at least 1".to_owned());
        }
        let s = &self.sd;
        let week = Duration::from_secs(7 * 24 * 3600);
        if s.validity.is_zero() || s.validity > week {
            errors.push(format!(
                "sd.validity: {} is outside 1s–7d",
                humantime::format_duration(s.validity)
            ));
        }
        if s.republish_before_expiry >= s.validity {
            errors.push("sd.republish_before_expiry: must be shorter than sd.validity".to_owned());
        }
        if s.document.as_os_str().is_empty() {
            errors.push("sd.document: must name a file".to_owned());
        }
        let c = &self.compute;
        if !(1..=64).contains(&c.concurrent_jobs) {
            errors.push(format!(
                "compute.concurrent_jobs: {} is outside 1–64",
                c.concurrent_jobs
            ));
        }
        if c.queued_jobs > 10_000 {
            errors.push(format!(
                "compute.queued_jobs: {} is above 10000",
                c.queued_jobs
            ));
        }
        if !(1..=65_536).contains(&c.memory_mib) {
            errors.push(format!(
                "compute.memory_mib: {} is outside 1–65536",
                c.memory_mib
            ));
        }
        if c.fuel < 1_000_000 {
            errors.push(format!("compute.fuel: {} is below 1000000", c.fuel));
        }
        if c.wall < Duration::from_millis(100) || c.wall > Duration::from_secs(24 * 3600) {
            errors.push(format!(
                "compute.wall: {} is outside 100ms–24h",
                humantime::format_duration(c.wall)
            ));
        }
        if c.review_wait < Duration::from_secs(1) || c.review_wait > Duration::from_secs(24 * 3600)
        {
            errors.push(format!(
                "compute.review_wait: {} is outside 1s–24h",
                humantime::format_duration(c.review_wait)
            ));
        }
        if self.log.filter.trim().is_empty() {
            errors.push("log.filter: must not be empty (e.g. \"info\")".to_owned());
        }
        match api_listen {
            Some(listen) if errors.is_empty() => Ok(NodeConfig {
                network: self.network,
                api: ApiConfig {
                    listen,
                    fault_injection: self.api.fault_injection,
                    max_connections: self.api.max_connections as usize,
                    max_requests_in_flight: self.api.max_requests_in_flight as usize,
                    max_event_subscribers: self.api.max_event_subscribers as usize,
                    header_read_timeout: self.api.header_read_timeout,
                    request_timeout: self.api.request_timeout,
                    allowed_hosts: self
                        .api
                        .allowed_hosts
                        .iter()
                        .map(|h| h.to_ascii_lowercase())
                        .collect(),
                },
                directory: self.directory,
                sd: self.sd,
                log: self.log,
                repository: self.repository,
                compute: self.compute,
            }),
            _ => Err(ConfigError::Invalid {
                file: file.into(),
                errors,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configurations shipped for deployment (the Debian package's /etc/gaiamesh, the
    /// Kubernetes ConfigMap) are valid.
    #[test]
    fn deployed_configs_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for rel in ["config/examples/node.toml", "deploy/k8s/base/config.toml"] {
            let c = NodeConfig::load(&root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
            if rel.starts_with("deploy/k8s") {
                assert!(
                    !c.api.listen.ip().is_loopback(),
                    "{rel}: probes need the API"
                );
                assert_eq!(c.log.format, LogFormat::Json, "{rel}");
            }
        }
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = NodeConfig::from_toml_str("", "x.toml").unwrap();
        assert_eq!(c.api.listen, "127.0.0.1:7300".parse().unwrap());
        assert_eq!(c.directory.mode, DirectoryMode::Full);
        assert_eq!(c.directory.reconcile_interval, Duration::from_secs(30));
        assert_eq!(c.sd.validity, Duration::from_secs(7 * 86_400));
        assert_eq!(c.network.max_connections, 256);
        assert_eq!(c.repository.requests_per_peer, 2);
        assert_eq!(c.repository.requests_in_flight, 8);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = NodeConfig::from_toml_str("[directory]\nmdoe = \"light\"\n", "node.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("node.toml") && err.contains("mdoe"), "{err}");
        let err = NodeConfig::from_toml_str("[directory]\nmode = \"heavy\"\n", "node.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("heavy") && err.contains("mode"), "{err}");
        let err = NodeConfig::from_toml_str("[sd]\nvalidity = \"a week\"\n", "node.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("validity"), "{err}");
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let text = r#"
            [network]
            max_connections = 0
            listen = ["0.0.0.0:7400"]
            [api]
            listen = "0.0.0.0:7300"
            [sd]
            validity = "8d"
            [repository]
            requests_in_flight = 0
        "#;
        let err = NodeConfig::from_toml_str(text, "node.toml").unwrap_err();
        let ConfigError::Invalid { errors, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].starts_with("network.listen[0]: \"0.0.0.0:7400\" is not a multiaddr"));
        assert!(errors[1].starts_with("network.max_connections: 0"));
        assert!(errors[2].starts_with("api.listen: 0.0.0.0:7300 is not a loopback address"));
        assert!(errors[3].starts_with("repository.requests_in_flight: 0 is outside 1–64"));
        assert!(errors[4].starts_with("sd.validity: 8days"));
    }

    #[test]
    fn relays_must_name_their_peer_and_not_be_circuits() {
        let c = NodeConfig::from_toml_str("", "x.toml").unwrap();
        assert!(!c.network.relay_server && c.network.relays.is_empty());
        assert!(c.network.hole_punching);
        let text = r#"
            [network]
            relay_server = true
            relays = [
                "/ip4/10.0.0.1/udp/7400/quic-v1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
                "/ip4/10.0.0.1/udp/7400/quic-v1",
                "/ip4/10.0.0.1/udp/7400/quic-v1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN/p2p-circuit",
                "10.0.0.1:7400",
            ]
        "#;
        let err = NodeConfig::from_toml_str(text, "node.toml").unwrap_err();
        let ConfigError::Invalid { errors, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("network.relays[3]: \"10.0.0.1:7400\" is not a multiaddr"));
        assert!(errors[1].starts_with("network.relays[1]:") && errors[1].contains("names no peer"));
        assert!(errors[2].starts_with("network.relays[2]:") && errors[2].contains("circuit"));
    }

    #[test]
    fn compute_limits_have_defaults_and_bad_ones_are_named() {
        let c = NodeConfig::from_toml_str("", "x.toml").unwrap();
        assert_eq!(c.compute, ComputeSection::default());
        assert!(c.compute.enabled && c.compute.concurrent_jobs == 2);
        let text = r#"
            [compute]
            concurrent_jobs = 0
            memory_mib = 0
            fuel = 5
            wall = "2d"
            review_wait = "0s"
        "#;
        let err = NodeConfig::from_toml_str(text, "x.toml")
            .unwrap_err()
            .to_string();
        for key in [
            "compute.concurrent_jobs",
            "compute.memory_mib",
            "compute.fuel",
            "compute.wall",
            "compute.review_wait",
        ] {
            assert!(err.contains(key), "{key} missing from {err}");
        }
    }

    #[test]
    fn api_limits_have_defaults_and_bad_ones_are_named() {
        let c = NodeConfig::from_toml_str("", "x.toml").unwrap();
        assert_eq!(c.api.max_connections, 512);
        assert_eq!(c.api.max_requests_in_flight, 64);
        assert_eq!(c.api.max_event_subscribers, 64);
        assert_eq!(c.api.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.api, ApiConfig::on(c.api.listen));
        let text = r#"
            [api]
            max_connections = 1
            request_timeout = "2h"
            allowed_hosts = ["node.example", "bad/host"]
        "#;
        let err = NodeConfig::from_toml_str(text, "node.toml").unwrap_err();
        let ConfigError::Invalid { errors, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("api.max_connections: 1 is outside 8–50000"));
        assert!(errors[1].starts_with("api.request_timeout: 2h is outside"));
        assert!(errors[2].starts_with("api.allowed_hosts[1]: \"bad/host\""));
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = crate::examples_dir().join("node.toml");
        let c = NodeConfig::load(&path).unwrap();
        assert_eq!(c.directory.mode, DirectoryMode::Full);
    }
}
