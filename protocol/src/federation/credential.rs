//! Membership credentials: a threshold of federation authorities binds a participant to one or
//! more PeerIds, with roles and an expiry.

use serde::{Deserialize, Serialize};

use super::{FederationId, ThresholdError, ThresholdSigned};
use crate::{
    codec::{self, DecodeError, EncodeError},
    codes,
    identity::{Domain, Keypair, PublicKey},
    limits::{MAX_CREDENTIAL_BYTES, MAX_CREDENTIAL_PEERS, MAX_ROLES, MAX_SHORT_STRING},
    sd::{Registration, SCHEMA_VERSION},
    time::UnixMillis,
};

/// What the authorities sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialBody {
    /// Schema version.
    pub schema_version: u16,
    /// The federation the credential is valid in.
    pub federation: FederationId,
    /// Who is admitted.
    pub participant: MemberParticipant,
    /// The node keys the participant operates (1–16).
    pub peers: Vec<PublicKey>,
    /// Roles, e.g. `provider`, `consumer`, `certifier` (0–8).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Start of validity.
    pub issued_at: UnixMillis,
    /// End of validity.
    pub expires_at: UnixMillis,
}

/// The participant named in a credential.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberParticipant {
    /// Registered legal name.
    pub legal_name: String,
    /// One registration number.
    pub registration: Registration,
    /// ISO 3166-1 country of the headquarters.
    pub headquarters_country: String,
}

/// A membership credential: the body and the authorities' signatures.
pub type MembershipCredential = ThresholdSigned<CredentialBody>;

/// Why a credential is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Issued for another federation.
    #[error("credential is for federation {found}, not {expected}")]
    WrongFederation {
        /// This federation.
        expected: FederationId,
        /// The credential's.
        found: FederationId,
    },
    /// Past its expiry.
    #[error("credential expired at {0}")]
    Expired(UnixMillis),
    /// Issued in the future.
    #[error("credential is not valid before {0}")]
    NotYetValid(UnixMillis),
    /// Does not list the peer presenting it.
    #[error("credential does not bind peer {0}")]
    PeerNotBound(PublicKey),
    /// The member was revoked.
    #[error("peer {peer} was revoked: {reason}")]
    Revoked {
        /// The revoked peer.
        peer: PublicKey,
        /// Why.
        reason: String,
    },
    /// Not enough authority signatures.
    #[error("credential is not signed by enough authorities: {0}")]
    Signatures(#[from] ThresholdError),
    /// A field is out of bounds.
    #[error("credential field {0}")]
    Invalid(String),
    /// Unsupported schema.
    #[error("credential schema_version {0} is not supported")]
    SchemaVersion(u16),
    /// The binary form does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The credential cannot be encoded (too large).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The text form does not parse.
    #[error("credential is not valid TOML: {0}")]
    Toml(String),
}

impl CredentialBody {
    /// Checks bounds and formats (not signatures or time).
    pub fn check_fields(&self) -> Result<(), CredentialError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(CredentialError::SchemaVersion(self.schema_version));
        }
        let p = &self.participant;
        if p.legal_name.trim().is_empty() || p.legal_name.len() > MAX_SHORT_STRING {
            return Err(CredentialError::Invalid(format!(
                "participant.legal_name must be 1–{MAX_SHORT_STRING} bytes"
            )));
        }
        if p.registration.value.trim().is_empty() || p.registration.value.len() > 64 {
            return Err(CredentialError::Invalid(
                "participant.registration.value must be 1–64 bytes".into(),
            ));
        }
        if !codes::is_country(&p.headquarters_country) {
            return Err(CredentialError::Invalid(format!(
                "participant.headquarters_country: {:?} is not an ISO 3166-1 country code",
                p.headquarters_country
            )));
        }
        if self.peers.is_empty() || self.peers.len() > MAX_CREDENTIAL_PEERS {
            return Err(CredentialError::Invalid(format!(
                "peers: 1–{MAX_CREDENTIAL_PEERS} required"
            )));
        }
        if self.roles.len() > MAX_ROLES
            || self.roles.iter().any(|r| {
                r.is_empty()
                    || r.len() > 32
                    || !r
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        {
            return Err(CredentialError::Invalid(format!(
                "roles: at most {MAX_ROLES}, each 1–32 letters, digits, - or _"
            )));
        }
        if self.expires_at <= self.issued_at {
            return Err(CredentialError::Invalid(
                "expires_at must be after issued_at".into(),
            ));
        }
        Ok(())
    }
}

impl ThresholdSigned<CredentialBody> {
    /// Signs a credential body with authority keys.
    pub fn issue(body: CredentialBody, authorities: &[&Keypair]) -> Result<Self, CredentialError> {
        body.check_fields()?;
        Ok(Self::sign(
            body,
            Domain::MembershipCredential,
            MAX_CREDENTIAL_BYTES,
            authorities,
        )?)
    }

    /// Canonical binary encoding.
    pub fn encode(&self) -> Result<Vec<u8>, CredentialError> {
        Ok(codec::encode(
            "membership credential",
            self,
            MAX_CREDENTIAL_BYTES,
        )?)
    }

    /// Decodes the binary form (no trust checks).
    pub fn decode(bytes: &[u8]) -> Result<Self, CredentialError> {
        Ok(codec::decode(
            "membership credential",
            bytes,
            MAX_CREDENTIAL_BYTES,
        )?)
    }

    /// The TOML file form (`membership.cred`).
    pub fn to_toml(&self) -> Result<String, CredentialError> {
        toml::to_string_pretty(self).map_err(|e| CredentialError::Toml(e.to_string()))
    }

    /// Parses the TOML file form (no trust checks).
    pub fn from_toml(text: &str) -> Result<Self, CredentialError> {
        if text.len() > 4 * MAX_CREDENTIAL_BYTES {
            return Err(CredentialError::Invalid(format!(
                "file is {} bytes, too large",
                text.len()
            )));
        }
        toml::from_str(text).map_err(|e| CredentialError::Toml(e.to_string()))
    }
}
