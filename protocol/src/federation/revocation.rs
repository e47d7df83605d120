//! Revocation lists: versioned, authority-signed lists of peers that are no longer members.
//! A node accepts a list only with a higher version than the one it holds (no rollback).

use serde::{Deserialize, Serialize};

use super::{FederationId, ThresholdError, ThresholdSigned};
use crate::{
    codec::{self, DecodeError, EncodeError},
    identity::{Domain, Keypair, PublicKey},
    limits::{MAX_REVOCATION_LIST_BYTES, MAX_REVOCATIONS, MAX_TEXT_STRING},
    sd::SCHEMA_VERSION,
    time::UnixMillis,
};

/// What the authorities sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationBody {
    /// Schema version.
    pub schema_version: u16,
    /// The federation.
    pub federation: FederationId,
    /// Strictly increasing version.
    pub version: u64,
    /// When this version was issued.
    pub issued_at: UnixMillis,
    /// Every revoked peer (cumulative).
    #[serde(default)]
    pub revoked: Vec<Revocation>,
}

/// One revoked peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The revoked node key.
    pub peer: PublicKey,
    /// Why.
    pub reason: String,
    /// Since when.
    pub revoked_at: UnixMillis,
}

/// A revocation list with the authorities' signatures.
pub type RevocationList = ThresholdSigned<RevocationBody>;

/// Why a revocation list is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Issued in another federation.
    #[error("revocation list is for federation {0}")]
    WrongFederation(FederationId),
    /// Not newer than the list already held.
    #[error("revocation list version {found} is not newer than the current version {current}")]
    Rollback {
        /// The version held.
        current: u64,
        /// The version offered.
        found: u64,
    },
    /// Not enough authority signatures.
    #[error("revocation list is not signed by enough authorities: {0}")]
    Signatures(#[from] ThresholdError),
    /// A field is out of bounds.
    #[error("revocation list field {0}")]
    Invalid(String),
    /// The binary form does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The list cannot be encoded (too large).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The text form does not parse.
    #[error("revocation list is not valid TOML: {0}")]
    Toml(String),
}

impl RevocationBody {
    /// Checks bounds.
    pub fn check_fields(&self) -> Result<(), RevocationError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(RevocationError::Invalid(format!(
                "schema_version {} is not supported",
                self.schema_version
            )));
        }
        if self.revoked.len() > MAX_REVOCATIONS {
            return Err(RevocationError::Invalid(format!(
                "revoked: at most {MAX_REVOCATIONS} entries"
            )));
        }
        if let Some(i) = self
            .revoked
            .iter()
            .position(|r| r.reason.len() > MAX_TEXT_STRING)
        {
            return Err(RevocationError::Invalid(format!(
                "revoked[{i}].reason is longer than {MAX_TEXT_STRING} bytes"
            )));
        }
        Ok(())
    }

    /// The revocation of `peer`, if any.
    pub fn find(&self, peer: &PublicKey) -> Option<&Revocation> {
        self.revoked.iter().find(|r| &r.peer == peer)
    }
}

impl ThresholdSigned<RevocationBody> {
    /// Signs a revocation list with authority keys.
    pub fn issue(body: RevocationBody, authorities: &[&Keypair]) -> Result<Self, RevocationError> {
        body.check_fields()?;
        Ok(Self::sign(
            body,
            Domain::RevocationList,
            MAX_REVOCATION_LIST_BYTES,
            authorities,
        )?)
    }

    /// Canonical binary encoding.
    pub fn encode(&self) -> Result<Vec<u8>, RevocationError> {
        Ok(codec::encode(
            "revocation list",
            self,
            MAX_REVOCATION_LIST_BYTES,
        )?)
    }

    /// Decodes the binary form (no trust checks).
    pub fn decode(bytes: &[u8]) -> Result<Self, RevocationError> {
        Ok(codec::decode(
            "revocation list",
            bytes,
            MAX_REVOCATION_LIST_BYTES,
        )?)
    }

    /// The TOML file form.
    pub fn to_toml(&self) -> Result<String, RevocationError> {
        toml::to_string_pretty(self).map_err(|e| RevocationError::Toml(e.to_string()))
    }

    /// Parses the TOML file form (no trust checks).
    pub fn from_toml(text: &str) -> Result<Self, RevocationError> {
        if text.len() > 4 * MAX_REVOCATION_LIST_BYTES {
            return Err(RevocationError::Invalid(format!(
                "file is {} bytes, too large",
                text.len()
            )));
        }
        toml::from_str(text).map_err(|e| RevocationError::Toml(e.to_string()))
    }
}
