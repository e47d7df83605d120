//! The signed self-description record: header, document, credential and attestations, signed
//! by the subject's node key over the canonical postcard encoding.

use serde::{Deserialize, Serialize};

use super::{SCHEMA_VERSION, SdDocument, ValidationErrors, validate_document};
use crate::{
    codec::{self, DecodeError, EncodeError},
    federation::{Attestation, FederationId, MembershipCredential},
    identity::{Domain, Keypair, PublicKey, Signature},
    limits::{MAX_CLOCK_SKEW_MS, MAX_EMBEDDED_ATTESTATIONS, MAX_SD_BYTES, MAX_SD_VALIDITY_MS},
    time::UnixMillis,
};

/// Everything the subject signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfDescription {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub schema_version: u16,
    /// The node this describes; its key signs.
    pub subject: PublicKey,
    /// The federation it is published in.
    pub federation: FederationId,
    /// Strictly increasing per subject; a higher seq replaces a lower one.
    pub seq: u64,
    /// When it was signed.
    pub issued_at: UnixMillis,
    /// When it stops being valid (at most 7 days after `issued_at`).
    pub expires_at: UnixMillis,
    /// The document.
    pub document: SdDocument,
    /// The subject's membership credential.
    pub membership: Option<MembershipCredential>,
    /// Attestations backing certifications (at most 16).
    pub attestations: Vec<Attestation>,
}

/// A self-description and its subject's signature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedSelfDescription {
    /// What was signed.
    pub sd: SelfDescription,
    /// Signature by `sd.subject` over the canonical encoding of `sd`.
    pub signature: Signature,
}

/// Why a self-description is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The record does not encode within the size limit.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Unknown schema version.
    #[error("schema_version {0} is not supported (expected {SCHEMA_VERSION})")]
    SchemaVersion(u16),
    /// The signature does not verify against the subject's key.
    #[error("signature does not verify for subject {0}")]
    BadSignature(PublicKey),
    /// Signing was attempted with a key that is not the subject's.
    #[error("the signing key {signer} is not the subject {subject}")]
    WrongKey {
        /// The subject.
        subject: PublicKey,
        /// The key offered.
        signer: PublicKey,
    },
    /// Past `expires_at`.
    #[error("expired at {expires_at} (now {now})")]
    Expired {
        /// Its expiry.
        expires_at: UnixMillis,
        /// The time of the check.
        now: UnixMillis,
    },
    /// `issued_at` is in the future beyond the tolerated clock skew.
    #[error("issued at {issued_at}, which is in the future (now {now})")]
    NotYetValid {
        /// Its issue time.
        issued_at: UnixMillis,
        /// The time of the check.
        now: UnixMillis,
    },
    /// The validity window is empty or longer than 7 days.
    #[error("validity window {issued_at} – {expires_at} is empty or longer than 7 days")]
    BadValidity {
        /// Start.
        issued_at: UnixMillis,
        /// End.
        expires_at: UnixMillis,
    },
    /// The document breaks schema rules.
    #[error("invalid document:\n{0}")]
    Invalid(ValidationErrors),
    /// Too many embedded attestations.
    #[error("{0} embedded attestations, at most {MAX_EMBEDDED_ATTESTATIONS} allowed")]
    TooManyAttestations(usize),
    /// Published in another federation.
    #[error("published in federation {found}, not {expected}")]
    WrongFederation {
        /// This federation.
        expected: FederationId,
        /// The record's.
        found: FederationId,
    },
    /// The federation requires membership and the subject has no valid credential.
    #[error("subject {subject} is not an admitted member: {reason}")]
    NotAMember {
        /// The subject.
        subject: PublicKey,
        /// Why the credential does not count.
        reason: String,
    },
    /// The subject was revoked.
    #[error("subject {subject} was revoked: {reason}")]
    Revoked {
        /// The subject.
        subject: PublicKey,
        /// The revocation reason.
        reason: String,
    },
    /// The participant in the document is not the one the credential admits.
    #[error("participant does not match the membership credential: {0}")]
    ParticipantMismatch(String),
    /// A location is outside the federation's allowed jurisdictions.
    #[error("{path}: {country} is outside the federation's allowed jurisdictions")]
    Jurisdiction {
        /// Field path.
        path: String,
        /// The country.
        country: String,
    },
}

impl SelfDescription {
    /// Signs with `key`, which must be the subject's. Validates the document first.
    pub fn sign(self, key: &Keypair) -> Result<SignedSelfDescription, SdError> {
        if key.public() != self.subject {
            return Err(SdError::WrongKey {
                subject: self.subject,
                signer: key.public(),
            });
        }
        self.check_static()?;
        let bytes = codec::encode("self-description", &self, MAX_SD_BYTES - 66)?;
        let signature = key.sign(Domain::SelfDescription, &bytes);
        let signed = SignedSelfDescription {
            sd: self,
            signature,
        };
        // The whole record must fit the limit receivers enforce.
        signed.encode()?;
        Ok(signed)
    }

    /// Checks that do not depend on time, keys or the federation.
    fn check_static(&self) -> Result<(), SdError> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(SdError::SchemaVersion(self.schema_version));
        }
        if self.expires_at <= self.issued_at
            || self.expires_at.since(self.issued_at) > MAX_SD_VALIDITY_MS
        {
            return Err(SdError::BadValidity {
                issued_at: self.issued_at,
                expires_at: self.expires_at,
            });
        }
        if self.attestations.len() > MAX_EMBEDDED_ATTESTATIONS {
            return Err(SdError::TooManyAttestations(self.attestations.len()));
        }
        validate_document(&self.document).map_err(SdError::Invalid)
    }
}

impl SignedSelfDescription {
    /// Canonical binary encoding (at most 32 KiB).
    pub fn encode(&self) -> Result<Vec<u8>, SdError> {
        Ok(codec::encode(
            "signed self-description",
            self,
            MAX_SD_BYTES,
        )?)
    }

    /// Decodes the binary form; refuses more than 32 KiB before parsing. Does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, SdError> {
        Ok(codec::decode(
            "signed self-description",
            bytes,
            MAX_SD_BYTES,
        )?)
    }

    /// BLAKE3 of the canonical encoding: the record's identity in reconciliation and evidence.
    pub fn content_hash(&self) -> Result<[u8; 32], SdError> {
        Ok(self.canonical()?.content_hash())
    }

    /// The canonical encoding, which gives both the content hash and the signed bytes.
    pub fn canonical(&self) -> Result<Canonical, SdError> {
        let bytes = self.encode()?;
        let signature = codec::encode("signature", &self.signature, MAX_SIGNATURE_ENCODING)?;
        // Postcard writes a struct's fields in order: the record's encoding is the
        // self-description's followed by the signature's.
        let signed_len = bytes.len().saturating_sub(signature.len());
        Ok(Canonical { bytes, signed_len })
    }

    /// Checks everything that needs no federation context: schema, bounds, document rules,
    /// validity window at `now`, and the subject's signature.
    pub fn verify(&self, now: UnixMillis) -> Result<(), SdError> {
        let bytes = codec::encode("self-description", &self.sd, MAX_SD_BYTES)?;
        self.verify_signed_bytes(now, &bytes)
    }

    /// [`Self::verify`] with the record's canonical encoding already made (the ingest path
    /// hashes it first), so the self-description is not encoded again.
    pub fn verify_canonical(&self, now: UnixMillis, canonical: &Canonical) -> Result<(), SdError> {
        self.verify_signed_bytes(now, canonical.signed_bytes())
    }

    /// `bytes` must be the canonical encoding of `self.sd`.
    fn verify_signed_bytes(&self, now: UnixMillis, bytes: &[u8]) -> Result<(), SdError> {
        let sd = &self.sd;
        sd.check_static()?;
        if now >= sd.expires_at {
            return Err(SdError::Expired {
                expires_at: sd.expires_at,
                now,
            });
        }
        if sd.issued_at > now.plus_ms(MAX_CLOCK_SKEW_MS) {
            return Err(SdError::NotYetValid {
                issued_at: sd.issued_at,
                now,
            });
        }
        if !sd
            .subject
            .verify(Domain::SelfDescription, bytes, &self.signature)
        {
            return Err(SdError::BadSignature(sd.subject));
        }
        Ok(())
    }
}

/// A signature's encoding is 64 bytes and a length prefix.
const MAX_SIGNATURE_ENCODING: usize = 80;

/// A record's canonical encoding ([`SignedSelfDescription::encode`]), knowing where the
/// signed self-description ends and the signature begins.
#[derive(Clone, Debug)]
pub struct Canonical {
    bytes: Vec<u8>,
    signed_len: usize,
}

impl Canonical {
    /// BLAKE3 of the whole encoding ([`SignedSelfDescription::content_hash`]).
    pub fn content_hash(&self) -> [u8; 32] {
        *blake3::hash(&self.bytes).as_bytes()
    }

    /// The self-description's canonical encoding: the bytes its subject signed.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[..self.signed_len]
    }

    /// The whole encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
