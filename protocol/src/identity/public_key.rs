use std::{fmt, hash::Hash, str::FromStr};

use ed25519_dalek::VerifyingKey;
use libp2p_identity::PeerId;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Domain, Signature};

/// An ed25519 public key: a node's identity (its PeerId), or an authority's, certifier's or
/// repository root's key. Always a valid curve point (checked on construction); kept as the
/// 32 compressed bytes so that catalogues of a million entries stay small.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

/// Why bytes or a string are not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// The bytes are not 32 long or not a point on the curve.
    #[error("not an ed25519 public key: {0}")]
    InvalidKey(String),
    /// The string does not parse as a libp2p PeerId.
    #[error("{0:?} is not a PeerId: {1}")]
    InvalidPeerId(String, String),
    /// The PeerId hashes its key (RSA, secp256k1, …), so the key cannot be recovered from it.
    #[error("PeerId {0} does not embed an ed25519 key")]
    NotEd25519(String),
}

impl PublicKey {
    /// The key from its 32-byte compressed form.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(|_| Self(*bytes))
            .map_err(|e| PublicKeyError::InvalidKey(e.to_string()))
    }

    /// The 32-byte compressed form.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Verifies `signature` over `message` in the given domain.
    pub fn verify(&self, domain: Domain, message: &[u8], signature: &Signature) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let msg = domain.tagged(message);
        let sig = ed25519_dalek::Signature::from_bytes(signature.as_bytes());
        // Strict verification rejects malleable signatures and small-order keys.
        key.verify_strict(&msg, &sig).is_ok()
    }

    /// The libp2p PeerId of this key. Built from the bytes (an ed25519 PeerId is the
    /// identity multihash of the key's protobuf encoding), without decompressing the point
    /// again: every entry's facets and every log line name a key, and decompressing costs
    /// as much as a third of a signature check.
    pub fn to_peer_id(&self) -> PeerId {
        /// Multihash "identity" (0x00) of 36 bytes, then the protobuf `PublicKey`:
        /// field 1 (key type) = 1 (Ed25519), field 2 (data) of 32 bytes.
        const PREFIX: [u8; 6] = [0x00, 36, 0x08, 0x01, 0x12, 32];
        let mut bytes = [0u8; 38];
        bytes[..6].copy_from_slice(&PREFIX);
        bytes[6..].copy_from_slice(&self.0);
        PeerId::from_bytes(&bytes).unwrap_or_else(|_| self.to_libp2p().to_peer_id())
    }

    /// The libp2p form of this key.
    pub fn to_libp2p(&self) -> libp2p_identity::PublicKey {
        // The bytes come from a valid VerifyingKey, so libp2p accepts them; the fallback is
        // unreachable but keeps this function total.
        match libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.0) {
            Ok(k) => libp2p_identity::PublicKey::from(k),
            Err(_) => unreachable_key(),
        }
    }

    /// The ed25519 key embedded in a PeerId (ed25519 PeerIds inline their key).
    pub fn from_peer_id(peer: &PeerId) -> Result<Self, PublicKeyError> {
        let mh = peer.as_ref();
        // Multihash code 0x00 is "identity": the digest is the protobuf-encoded key itself.
        if mh.code() != 0 {
            return Err(PublicKeyError::NotEd25519(peer.to_string()));
        }
        let key = libp2p_identity::PublicKey::try_decode_protobuf(mh.digest())
            .map_err(|_| PublicKeyError::NotEd25519(peer.to_string()))?;
        let ed = key
            .try_into_ed25519()
            .map_err(|_| PublicKeyError::NotEd25519(peer.to_string()))?;
        Self::from_bytes(&ed.to_bytes())
    }
}

#[allow(clippy::panic)]
fn unreachable_key() -> libp2p_identity::PublicKey {
    panic!("a valid ed25519 VerifyingKey is always a valid libp2p ed25519 key")
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_peer_id(), f)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let peer = PeerId::from_str(s.trim())
            .map_err(|e| PublicKeyError::InvalidPeerId(s.to_owned(), e.to_string()))?;
        Self::from_peer_id(&peer)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = String::deserialize(deserializer)?;
            s.parse().map_err(de::Error::custom)
        } else {
            let bytes = <[u8; 32]>::deserialize(deserializer)?;
            Self::from_bytes(&bytes).map_err(de::Error::custom)
        }
    }
}
