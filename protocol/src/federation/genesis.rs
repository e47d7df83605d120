//! The genesis: the founding document of a federation. Its BLAKE3 hash is the federation id.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::FederationId;
use crate::{
    codec::{self, DecodeError, EncodeError},
    codes,
    identity::PublicKey,
    limits::{MAX_BOOTSTRAP, MAX_COUNTRIES, MAX_GENESIS_BYTES, MAX_KEYSET, MAX_SHORT_STRING},
    sd::SCHEMA_VERSION,
    time::UnixMillis,
};

/// The founding document of a federation (`genesis.toml`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Schema version of this document.
    pub schema_version: u16,
    /// Human name of the federation.
    pub name: String,
    /// When the federation was created.
    pub created_at: UnixMillis,
    /// Keys that admit and revoke members, with their threshold.
    pub authorities: KeySet,
    /// Keys whose attestations make a certification *attested*.
    #[serde(default)]
    pub certifiers: Vec<PublicKey>,
    /// Root keys of the software repository, with their threshold.
    pub repository: KeySet,
    /// Multiaddrs of bootstrap nodes.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Federation-wide rules.
    pub policy: Policy,
}

/// A set of keys and how many of them must sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySet {
    /// The keys (distinct, at most 32).
    pub keys: Vec<PublicKey>,
    /// How many distinct keys must sign (1 ≤ threshold ≤ keys).
    pub threshold: u8,
}

/// Federation-wide rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Only peers with a valid membership credential may join and publish.
    pub require_membership: bool,
    /// Where members may store and process data: country codes or `EU`. Empty: anywhere.
    #[serde(default)]
    pub allowed_jurisdictions: Vec<String>,
    /// Pre-shared key (64 hex digits) for the TCP+pnet transport; none disables it.
    #[serde(default)]
    pub psk: Option<String>,
}

impl Policy {
    /// A policy that only sets whether membership is required: data anywhere, no PSK.
    pub fn membership(require_membership: bool) -> Self {
        Self {
            require_membership,
            allowed_jurisdictions: Vec::new(),
            psk: None,
        }
    }
}

/// Why a genesis is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// The document has problems, listed one per line with their keys.
    #[error("invalid genesis:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// The TOML does not parse.
    #[error("genesis is not valid TOML: {0}")]
    Toml(String),
    /// The binary form does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The genesis cannot be encoded (too large).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl Genesis {
    /// The federation id: BLAKE3 of the canonical encoding.
    pub fn id(&self) -> Result<FederationId, GenesisError> {
        Ok(FederationId(*blake3::hash(&self.encode()?).as_bytes()))
    }

    /// Canonical binary encoding.
    pub fn encode(&self) -> Result<Vec<u8>, GenesisError> {
        Ok(codec::encode("genesis", self, MAX_GENESIS_BYTES)?)
    }

    /// Decodes and validates the binary form.
    pub fn decode(bytes: &[u8]) -> Result<Self, GenesisError> {
        let g: Self = codec::decode("genesis", bytes, MAX_GENESIS_BYTES)?;
        g.validate()?;
        Ok(g)
    }

    /// Parses and validates `genesis.toml`.
    pub fn from_toml(text: &str) -> Result<Self, GenesisError> {
        if text.len() > MAX_GENESIS_BYTES {
            return Err(GenesisError::Invalid(vec![format!(
                "the file is {} bytes, at most {MAX_GENESIS_BYTES} allowed",
                text.len()
            )]));
        }
        let g: Self = toml::from_str(text).map_err(|e| GenesisError::Toml(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// The TOML form.
    pub fn to_toml(&self) -> Result<String, GenesisError> {
        toml::to_string_pretty(self).map_err(|e| GenesisError::Toml(e.to_string()))
    }

    /// Checks every rule, reporting all problems.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let mut errs = Vec::new();
        if self.schema_version != SCHEMA_VERSION {
            errs.push(format!(
                "schema_version: {} is not supported (expected {SCHEMA_VERSION})",
                self.schema_version
            ));
        }
        if self.name.trim().is_empty()
            || self.name.len() > MAX_SHORT_STRING
            || self.name.chars().any(char::is_control)
        {
            errs.push(format!(
                "name: must be 1–{MAX_SHORT_STRING} printable characters"
            ));
        }
        keyset(&mut errs, "authorities", &self.authorities);
        keyset(&mut errs, "repository", &self.repository);
        if self.certifiers.len() > MAX_KEYSET {
            errs.push(format!(
                "certifiers: {} keys, at most {MAX_KEYSET}",
                self.certifiers.len()
            ));
        }
        if self.certifiers.iter().collect::<BTreeSet<_>>().len() != self.certifiers.len() {
            errs.push("certifiers: a key is listed twice".to_owned());
        }
        if self.bootstrap.len() > MAX_BOOTSTRAP {
            errs.push(format!(
                "bootstrap: {} addresses, at most {MAX_BOOTSTRAP}",
                self.bootstrap.len()
            ));
        }
        for (i, a) in self.bootstrap.iter().enumerate() {
            if !a.starts_with('/') || a.len() > 256 {
                errs.push(format!("bootstrap[{i}]: {a:?} is not a multiaddr"));
            }
        }
        let j = &self.policy.allowed_jurisdictions;
        if j.len() > MAX_COUNTRIES {
            errs.push(format!(
                "policy.allowed_jurisdictions: {} entries, at most {MAX_COUNTRIES}",
                j.len()
            ));
        }
        for (i, c) in j.iter().enumerate() {
            if c != "EU" && !codes::is_country(c) {
                errs.push(format!("policy.allowed_jurisdictions[{i}]: {c:?} is neither EU nor an ISO 3166-1 country code"));
            }
        }
        if let Some(psk) = &self.policy.psk
            && (psk.len() != 64 || !psk.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errs.push("policy.psk: must be 64 hex digits".to_owned());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(GenesisError::Invalid(errs))
        }
    }

    /// Whether `country` is inside the allowed jurisdictions (always, when none are set).
    pub fn allows_jurisdiction(&self, country: &str) -> bool {
        let j = &self.policy.allowed_jurisdictions;
        j.is_empty()
            || j.iter()
                .any(|a| a == country || (a == "EU" && codes::is_eu_member(country)))
    }
}

fn keyset(errs: &mut Vec<String>, name: &str, ks: &KeySet) {
    if ks.keys.is_empty() || ks.keys.len() > MAX_KEYSET {
        errs.push(format!(
            "{name}.keys: {} keys, 1–{MAX_KEYSET} required",
            ks.keys.len()
        ));
    }
    if ks.keys.iter().collect::<BTreeSet<_>>().len() != ks.keys.len() {
        errs.push(format!("{name}.keys: a key is listed twice"));
    }
    if ks.threshold == 0 || usize::from(ks.threshold) > ks.keys.len() {
        errs.push(format!(
            "{name}.threshold: {} is outside 1–{}",
            ks.threshold,
            ks.keys.len()
        ));
    }
}
