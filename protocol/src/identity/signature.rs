use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

/// What a signature is for. The domain tag is prepended to the signed bytes, so a signature
/// made for one kind of object can never be replayed as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Domain {
    /// A self-description, signed by its subject's node key.
    SelfDescription,
    /// A membership credential, signed by federation authorities.
    MembershipCredential,
    /// An attestation, signed by a certifier.
    Attestation,
    /// A revocation list, signed by federation authorities.
    RevocationList,
    /// Repository root metadata, signed by the root role.
    RepositoryRoot,
    /// Repository targets metadata, signed by the targets role.
    RepositoryTargets,
    /// Repository snapshot metadata, signed by the snapshot role.
    RepositorySnapshot,
    /// Repository timestamp metadata, signed by the timestamp role.
    RepositoryTimestamp,
    /// A data-exchange contract agreement, signed by provider and consumer.
    ContractAgreement,
    /// A transfer receipt, signed by the consumer.
    TransferReceipt,
    /// An entry (or the head) of a node's audit log, signed by the node key.
    AuditEntry,
    /// A compute job's usage record, signed by the provider and countersigned by the
    /// consumer.
    UsageRecord,
    /// Free-form test messages.
    Test,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::SelfDescription => b"gaiamesh/v1/self-description\0",
            Domain::MembershipCredential => b"gaiamesh/v1/membership-credential\0",
            Domain::Attestation => b"gaiamesh/v1/attestation\0",
            Domain::RevocationList => b"gaiamesh/v1/revocation-list\0",
            Domain::RepositoryRoot => b"gaiamesh/v1/repository-root\0",
            Domain::RepositoryTargets => b"gaiamesh/v1/repository-targets\0",
            Domain::RepositorySnapshot => b"gaiamesh/v1/repository-snapshot\0",
            Domain::RepositoryTimestamp => b"gaiamesh/v1/repository-timestamp\0",
            Domain::ContractAgreement => b"gaiamesh/v1/contract-agreement\0",
            Domain::TransferReceipt => b"gaiamesh/v1/transfer-receipt\0",
            Domain::AuditEntry => b"gaiamesh/v1/audit-entry\0",
            Domain::UsageRecord => b"gaiamesh/v1/usage-record\0",
            Domain::Test => b"gaiamesh/v1/test\0",
        }
    }

    pub(crate) fn tagged(self, message: &[u8]) -> Vec<u8> {
        let tag = self.tag();
        let mut out = Vec::with_capacity(tag.len() + message.len());
        out.extend_from_slice(tag);
        out.extend_from_slice(message);
        out
    }
}

impl Signature {
    /// The signature from its 64 bytes.
    pub fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The 64 signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Signature;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 signature bytes or 128 hex digits")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Signature, E> {
                <[u8; 64]>::try_from(v)
                    .map(Signature)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Signature, E> {
                let mut out = [0u8; 64];
                hex::decode_to_slice(v, &mut out)
                    .map_err(|e| E::custom(format!("signature: {e}")))?;
                Ok(Signature(out))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(Visitor)
        } else {
            deserializer.deserialize_bytes(Visitor)
        }
    }
}
