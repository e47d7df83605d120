//! What the catalogue stores per subject: the signed record and where and when it came from.

use gaiamesh_protocol::{
    codec::{self, DecodeError, EncodeError},
    identity::PublicKey,
    limits::MAX_SD_BYTES,
    sd::SignedSelfDescription,
    time::UnixMillis,
};
use serde::{Deserialize, Serialize};

/// One catalogue entry: the newest accepted version of a subject's self-description.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The signed record.
    pub record: SignedSelfDescription,
    /// BLAKE3 of the record's canonical encoding.
    pub hash: [u8; 32],
    /// When this node stored this version (local wall clock, passed in by the caller).
    pub received_at: UnixMillis,
    /// The peer it came from (`None`: imported locally or published by this node).
    pub from: Option<PublicKey>,
    /// Certifications backed by a valid attestation when the record was accepted, as
    /// (service id, scheme) pairs; kept so reopening a store needs no signature checks.
    pub attested: Vec<(String, String)>,
}

/// Proof that a subject signed two different records with the same seq.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The subject that equivocated.
    pub subject: PublicKey,
    /// The seq both records carry.
    pub seq: u64,
    /// The record the catalogue kept.
    pub kept: [u8; 32],
    /// The conflicting record, signed by the subject.
    pub conflicting: SignedSelfDescription,
    /// The peer that delivered the conflicting record.
    pub from: Option<PublicKey>,
    /// When it was seen.
    pub seen_at: UnixMillis,
}

/// Largest encoded entry: a record plus metadata.
pub const MAX_ENTRY_BYTES: usize = MAX_SD_BYTES + 256;

impl Entry {
    /// A new entry for `record`, computing its hash.
    pub fn new(
        record: SignedSelfDescription,
        received_at: UnixMillis,
        from: Option<PublicKey>,
        attested: Vec<(String, String)>,
    ) -> Result<Self, EncodeError> {
        let hash = *blake3::hash(&codec::encode(
            "signed self-description",
            &record,
            MAX_SD_BYTES,
        )?)
        .as_bytes();
        Ok(Self {
            record,
            hash,
            received_at,
            from,
            attested,
        })
    }

    /// An entry whose content hash the caller computed already.
    pub fn with_hash(
        record: SignedSelfDescription,
        hash: [u8; 32],
        received_at: UnixMillis,
        from: Option<PublicKey>,
        attested: Vec<(String, String)>,
    ) -> Self {
        Self {
            record,
            hash,
            received_at,
            from,
            attested,
        }
    }

    /// The subject.
    pub fn subject(&self) -> PublicKey {
        self.record.sd.subject
    }

    /// The seq.
    pub fn seq(&self) -> u64 {
        self.record.sd.seq
    }

    /// Canonical encoding for storage.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode("catalogue entry", self, MAX_ENTRY_BYTES)
    }

    /// Decodes a stored entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode("catalogue entry", bytes, MAX_ENTRY_BYTES)
    }
}

impl Evidence {
    /// Canonical encoding for storage.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode("equivocation evidence", self, MAX_ENTRY_BYTES)
    }

    /// Decodes stored evidence.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode("equivocation evidence", bytes, MAX_ENTRY_BYTES)
    }
}
