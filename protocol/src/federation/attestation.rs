//! Attestations: a certifier of the federation vouches that a node (or one of its services)
//! holds a certification.

use serde::{Deserialize, Serialize};

use super::FederationId;
use crate::{
    codec::{self, DecodeError, EncodeError},
    identity::{Domain, Keypair, PublicKey, Signature},
    limits::{MAX_ATTESTATION_BYTES, MAX_SHORT_STRING},
    sd::SCHEMA_VERSION,
    time::UnixMillis,
};

/// What a certifier signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationBody {
    /// Schema version.
    pub schema_version: u16,
    /// The federation whose certifier signs.
    pub federation: FederationId,
    /// The node whose operator holds the certification.
    pub subject: PublicKey,
    /// The service it covers; `None` covers every service of the node.
    #[serde(default)]
    pub service: Option<String>,
    /// Scheme, e.g. `C5`, `ISO27001`.
    pub scheme: String,
    /// Scope, as on the certificate.
    #[serde(default)]
    pub scope: Option<String>,
    /// When it was signed.
    pub issued_at: UnixMillis,
    /// When the certificate runs out.
    pub valid_until: UnixMillis,
}

/// A signed attestation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// What was attested.
    pub body: AttestationBody,
    /// The certifier's key.
    pub certifier: PublicKey,
    /// Its signature over the canonical body.
    pub signature: Signature,
}

/// Why an attestation does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The key is not a certifier of the federation.
    #[error("{0} is not a certifier of this federation")]
    UnknownCertifier(PublicKey),
    /// The signature does not verify.
    #[error("attestation signature by {0} does not verify")]
    BadSignature(PublicKey),
    /// Issued in another federation.
    #[error("attestation is for federation {0}")]
    WrongFederation(FederationId),
    /// Past `valid_until`.
    #[error("attestation expired at {0}")]
    Expired(UnixMillis),
    /// A field is out of bounds.
    #[error("attestation field {0}")]
    Invalid(String),
    /// The binary form does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The attestation cannot be encoded (too large).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl Attestation {
    /// Signs `body` as certifier `key`.
    pub fn sign(body: AttestationBody, key: &Keypair) -> Result<Self, AttestationError> {
        body.check_fields()?;
        let bytes = codec::encode("attestation", &body, MAX_ATTESTATION_BYTES)?;
        Ok(Self {
            signature: key.sign(Domain::Attestation, &bytes),
            certifier: key.public(),
            body,
        })
    }

    /// Checks the signature (not whether the certifier is trusted).
    pub fn verify_signature(&self) -> Result<(), AttestationError> {
        self.body.check_fields()?;
        let bytes = codec::encode("attestation", &self.body, MAX_ATTESTATION_BYTES)?;
        if self
            .certifier
            .verify(Domain::Attestation, &bytes, &self.signature)
        {
            Ok(())
        } else {
            Err(AttestationError::BadSignature(self.certifier))
        }
    }

    /// Canonical binary encoding.
    pub fn encode(&self) -> Result<Vec<u8>, AttestationError> {
        Ok(codec::encode("attestation", self, MAX_ATTESTATION_BYTES)?)
    }

    /// Decodes the binary form (no trust checks).
    pub fn decode(bytes: &[u8]) -> Result<Self, AttestationError> {
        Ok(codec::decode("attestation", bytes, MAX_ATTESTATION_BYTES)?)
    }

    /// Whether this attestation covers `scheme` for `service` of its subject.
    pub fn covers(&self, scheme: &str, service: &str) -> bool {
        self.body.scheme.eq_ignore_ascii_case(scheme)
            && self.body.service.as_deref().is_none_or(|s| s == service)
    }
}

impl AttestationBody {
    fn check_fields(&self) -> Result<(), AttestationError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(AttestationError::Invalid(format!(
                "schema_version {} is not supported",
                self.schema_version
            )));
        }
        let token = |s: &str, max: usize| {
            !s.is_empty()
                && s.len() <= max
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
        };
        if !token(&self.scheme, 32) {
            return Err(AttestationError::Invalid(format!(
                "scheme {:?} is not a scheme name",
                self.scheme
            )));
        }
        if self.service.as_deref().is_some_and(|s| !token(s, 64)) {
            return Err(AttestationError::Invalid(
                "service is not a service id".into(),
            ));
        }
        if self
            .scope
            .as_deref()
            .is_some_and(|s| s.is_empty() || s.len() > MAX_SHORT_STRING)
        {
            return Err(AttestationError::Invalid(format!(
                "scope must be 1–{MAX_SHORT_STRING} bytes"
            )));
        }
        if self.valid_until <= self.issued_at {
            return Err(AttestationError::Invalid(
                "valid_until must be after issued_at".into(),
            ));
        }
        Ok(())
    }
}
