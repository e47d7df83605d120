//! Federation trust: the genesis that founds a federation, membership credentials signed by
//! a threshold of its authorities, attestations by its certifiers, and revocation lists.
//!
//! [`FederationTrust`] bundles a validated genesis with the newest revocation list and is
//! what the node, the directory and the CLI ask "is this credential / record acceptable?".

mod attestation;
mod cache;
mod credential;
mod genesis;
mod revocation;
mod threshold;
mod trust;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

pub use attestation::{Attestation, AttestationBody, AttestationError};
pub use cache::VerifiedCache;
pub use credential::{CredentialBody, CredentialError, MemberParticipant, MembershipCredential};
pub use genesis::{Genesis, GenesisError, KeySet, Policy};
pub use revocation::{Revocation, RevocationBody, RevocationError, RevocationList};
pub use threshold::{KeySignature, ThresholdError, ThresholdSigned};
pub use trust::FederationTrust;

/// A federation's id: the BLAKE3 hash of its genesis' canonical encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FederationId(pub [u8; 32]);

impl FederationId {
    /// The first 8 bytes in hex, for topic names and logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for FederationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for FederationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FederationId({})", self.short())
    }
}

impl std::str::FromStr for FederationId {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| crate::ParseError::new(s, "a federation id (64 hex digits)"))?;
        Ok(Self(out))
    }
}

impl Serialize for FederationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for FederationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            String::deserialize(deserializer)?
                .parse()
                .map_err(de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}
