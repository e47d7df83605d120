//! The self-description document: what an operator writes in TOML or JSON, and the body of
//! every signed self-description. Field names fix the query paths of the directory
//! (`node.location.country`, `service.price.amount`, …).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of this schema; part of every signed self-description.
pub const SCHEMA_VERSION: u16 = 1;

/// The body of a self-description: participant, node, services.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SdDocument {
    /// The legal entity operating the node.
    pub participant: Participant,
    /// The node itself: kind, location, hardware, energy.
    pub node: NodeInfo,
    /// Services offered on this node (at most 64).
    #[serde(default)]
    pub services: Vec<Service>,
    /// Properties kept from imported documents that the schema does not map.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
}

/// A legal person (Gaia-X `LegalParticipant` / `LegalPerson`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// Registered legal name.
    pub legal_name: String,
    /// Registration numbers (at least one).
    pub registration: Vec<Registration>,
    /// Headquarters address.
    pub headquarters: Address,
    /// Legal address, when it differs from the headquarters.
    #[serde(default)]
    pub legal_address: Option<Address>,
}

/// A registration number of a participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Which register the number is from.
    pub kind: RegistrationKind,
    /// The number itself.
    pub value: String,
}

/// Kinds of registration numbers accepted by the Gaia-X Trust Framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum RegistrationKind {
    /// EU VAT identification number, e.g. `DE123456789`.
    #[serde(rename = "vatID")]
    VatId,
    /// Legal Entity Identifier (ISO 17442), 20 characters.
    #[serde(rename = "leiCode")]
    LeiCode,
    /// Economic Operators Registration and Identification number.
    #[serde(rename = "EORI")]
    Eori,
    /// European Unique Identifier (BRIS).
    #[serde(rename = "EUID")]
    Euid,
    /// National tax id.
    #[serde(rename = "taxID")]
    TaxId,
    /// A national register number (e.g. Handelsregister).
    #[serde(rename = "local")]
    Local,
}

/// A postal address reduced to what the federation queries on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// ISO 3166-2 subdivision code, e.g. `DE-BY`.
    #[serde(default)]
    pub subdivision: Option<String>,
    /// City or locality.
    #[serde(default)]
    pub city: Option<String>,
}

/// The node: what it is, where it runs, what it runs on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NodeInfo {
    /// What kind of infrastructure this node is.
    pub kind: NodeKind,
    /// Where the node is.
    pub location: Location,
    /// Multiaddrs the node can be reached at.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// The software the node runs.
    #[serde(default)]
    pub software: Option<Software>,
    /// Hardware capacity.
    #[serde(default)]
    pub hardware: Option<Hardware>,
    /// Network capacity.
    #[serde(default)]
    pub network: Option<Network>,
    /// Energy figures.
    #[serde(default)]
    pub energy: Option<Energy>,
    /// Real-time / latency characteristics.
    #[serde(default)]
    pub realtime: Option<Realtime>,
}

/// Kinds of nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeKind {
    /// A public cloud region or zone.
    PublicCloud,
    /// A private or community cloud.
    PrivateCloud,
    /// An edge site.
    Edge,
    /// A high-performance computing centre.
    Hpc,
    /// A telco edge / MEC site.
    TelcoEdge,
    /// A gateway into another network or dataspace.
    Gateway,
}

/// Geographic location of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// ISO 3166-2 subdivision code.
    #[serde(default)]
    pub subdivision: Option<String>,
    /// City.
    #[serde(default)]
    pub city: Option<String>,
    /// WGS84 coordinates.
    #[serde(default)]
    pub coordinates: Option<Coordinates>,
}

/// WGS84 latitude and longitude in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

/// Software identification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Software {
    /// Product name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Hash of the build, hex.
    #[serde(default)]
    pub build_hash: Option<String>,
}

/// Hardware capacity of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// CPU architecture, e.g. `x86_64`, `aarch64`.
    #[serde(default)]
    pub cpu_arch: Option<String>,
    /// Virtual CPUs offered.
    #[serde(default)]
    pub vcpus: Option<u32>,
    /// Memory in GiB.
    #[serde(default)]
    pub memory_gib: Option<u32>,
    /// GPUs by model.
    #[serde(default)]
    pub gpus: Vec<Gpu>,
    /// Storage capacity in TiB.
    #[serde(default)]
    pub storage_tib: Option<f64>,
}

/// A GPU model and how many of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Model name, e.g. `NVIDIA H100`.
    pub model: String,
    /// Count.
    pub count: u32,
}

/// Network capacity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Uplink bandwidth in Gbit/s.
    pub bandwidth_gbps: f64,
}

/// Energy figures of the site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Energy {
    /// Power usage effectiveness (≥ 1.0).
    #[serde(default)]
    pub pue: Option<f64>,
    /// Share of renewable energy, percent.
    #[serde(default)]
    pub renewable_pct: Option<u8>,
    /// Share of waste heat reused, percent.
    #[serde(default)]
    pub heat_reuse_pct: Option<u8>,
    /// Water usage effectiveness, litres per kWh.
    #[serde(default)]
    pub water_usage_l_per_kwh: Option<f64>,
    /// Main energy source, e.g. `hydro`, `wind`, `grid-mix`.
    #[serde(default)]
    pub source: Option<String>,
}

/// Latency characteristics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Realtime {
    /// The latency class the node guarantees.
    pub latency_class: LatencyClass,
    /// Upper bound on round-trip latency to its users, milliseconds.
    #[serde(default)]
    pub max_latency_ms: Option<u32>,
}

/// Latency classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LatencyClass {
    /// Below 5 ms (industrial control, AR).
    UltraLow,
    /// Below 20 ms.
    Low,
    /// Below 100 ms.
    Standard,
    /// No guarantee.
    BestEffort,
}

/// A service offered by the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Identifier, unique within the self-description.
    pub id: String,
    /// What kind of service.
    pub kind: ServiceKind,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free-text description.
    #[serde(default)]
    pub description: Option<String>,
    /// Search keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Where to reach the service (URL).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Countries where data is stored.
    #[serde(default)]
    pub data_location: Vec<String>,
    /// Countries where data is processed.
    #[serde(default)]
    pub processing_location: Vec<String>,
    /// Certifications claimed for the service.
    #[serde(default)]
    pub certifications: Vec<Certification>,
    /// Gaia-X label level.
    #[serde(default)]
    pub protection_level: Option<ProtectionLevel>,
    /// Consumption model.
    #[serde(default)]
    pub consumption: Option<ConsumptionModel>,
    /// Price.
    #[serde(default)]
    pub price: Option<Price>,
    /// Terms and conditions.
    #[serde(default)]
    pub terms: Option<Terms>,
    /// How a customer gets their data out.
    #[serde(default)]
    pub data_export: Vec<DataExport>,
    /// Summary of the usage policy of a data resource.
    #[serde(default)]
    pub usage_policy: Option<String>,
}

impl Service {
    /// A service with only an id and a kind; every other field empty.
    pub fn new(id: impl Into<String>, kind: ServiceKind) -> Self {
        Self {
            id: id.into(),
            kind,
            name: None,
            description: None,
            keywords: Vec::new(),
            endpoint: None,
            data_location: Vec::new(),
            processing_location: Vec::new(),
            certifications: Vec::new(),
            protection_level: None,
            consumption: None,
            price: None,
            terms: None,
            data_export: Vec::new(),
            usage_policy: None,
        }
    }
}

/// Kinds of services; the string forms are the query values (`service.kind = storage.object`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[non_exhaustive]
pub enum ServiceKind {
    /// Virtual machines.
    #[serde(rename = "compute.vm")]
    ComputeVm,
    /// Containers.
    #[serde(rename = "compute.container")]
    ComputeContainer,
    /// Functions as a service.
    #[serde(rename = "compute.function")]
    ComputeFunction,
    /// Object storage.
    #[serde(rename = "storage.object")]
    StorageObject,
    /// Block storage.
    #[serde(rename = "storage.block")]
    StorageBlock,
    /// Managed databases.
    #[serde(rename = "database")]
    Database,
    /// Model inference.
    #[serde(rename = "ai.inference")]
    AiInference,
    /// Model training.
    #[serde(rename = "ai.training")]
    AiTraining,
    /// A data set or data product.
    #[serde(rename = "data.resource")]
    DataResource,
    /// Network services.
    #[serde(rename = "network")]
    Network,
    /// Identity and access management.
    #[serde(rename = "identity")]
    Identity,
    /// Anything else.
    #[serde(rename = "other")]
    Other,
}

impl ServiceKind {
    /// The query and document form, e.g. `storage.object`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::ComputeVm => "compute.vm",
            ServiceKind::ComputeContainer => "compute.container",
            ServiceKind::ComputeFunction => "compute.function",
            ServiceKind::StorageObject => "storage.object",
            ServiceKind::StorageBlock => "storage.block",
            ServiceKind::Database => "database",
            ServiceKind::AiInference => "ai.inference",
            ServiceKind::AiTraining => "ai.training",
            ServiceKind::DataResource => "data.resource",
            ServiceKind::Network => "network",
            ServiceKind::Identity => "identity",
            ServiceKind::Other => "other",
        }
    }
}

impl NodeKind {
    /// The query and document form, e.g. `public_cloud`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::PublicCloud => "public_cloud",
            NodeKind::PrivateCloud => "private_cloud",
            NodeKind::Edge => "edge",
            NodeKind::Hpc => "hpc",
            NodeKind::TelcoEdge => "telco_edge",
            NodeKind::Gateway => "gateway",
        }
    }
}

/// A certification claim. It counts as *attested* only when an attestation from a certifier
/// of the federation backs it; otherwise it is shown as *self-declared*.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Certification {
    /// Scheme, e.g. `C5`, `ISO27001`, `SecNumCloud`, `EUCS-high`.
    pub scheme: String,
    /// Scope of the certificate, e.g. `basic+additional`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Level within the scheme.
    #[serde(default)]
    pub level: Option<String>,
}

/// Gaia-X label levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtectionLevel {
    /// Label level 1.
    Basic,
    /// Label level 2.
    Substantial,
    /// Label level 3.
    High,
}

/// How a service is consumed and billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsumptionModel {
    /// Pay per use.
    OnDemand,
    /// Committed capacity.
    Reserved,
    /// Interruptible capacity.
    Spot,
}

/// A price: decimal amount in a currency per unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// ISO 4217 currency code.
    pub currency: String,
    /// Decimal amount as a string, e.g. `"0.018"` (no binary rounding).
    pub amount: String,
    /// Billing unit, e.g. `GB-month`, `vCPU-hour`, `1k-tokens`.
    pub unit: String,
}

/// Terms and conditions, pinned by hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Where the terms are published.
    pub url: String,
    /// SHA-256 of the document, 64 hex digits.
    pub sha256: String,
}

/// How customer data can be exported (Gaia-X `dataAccountExport`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DataExport {
    /// How to request the export: `API`, `email`, `webform`, `unregisteredLetter`,
    /// `registeredLetter`, `supportCenter`.
    pub request_type: String,
    /// `digital` or `physical`.
    pub access_type: String,
    /// Media type of the export, e.g. `application/json`.
    pub format: String,
}
