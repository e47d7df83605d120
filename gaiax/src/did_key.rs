//! `did:key` identifiers for Ed25519 and P-256 public keys (multicodec + base58btc).

/// Multicodec prefix of an Ed25519 public key (0xed, varint).
const ED25519: [u8; 2] = [0xed, 0x01];
/// Multicodec prefix of a compressed P-256 public key (0x1200, varint).
const P256: [u8; 2] = [0x80, 0x24];

/// A public key named by a `did:key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DidKey {
    /// 32 bytes.
    Ed25519([u8; 32]),
    /// SEC1 encoding (33 bytes compressed).
    P256(Vec<u8>),
}

/// `did:key:z…` of an Ed25519 public key.
pub fn ed25519_did(public: &[u8; 32]) -> String {
    let mut bytes = ED25519.to_vec();
    bytes.extend_from_slice(public);
    format!("did:key:z{}", bs58::encode(bytes).into_string())
}

/// The verification method of a `did:key`: `did:key:z…#z…`.
pub fn verification_method(did: &str) -> String {
    let multibase = did.strip_prefix("did:key:").unwrap_or(did);
    format!("{did}#{multibase}")
}

/// Why a `did:key` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DidKeyError {
    /// Not `did:key:z…`.
    #[error("{0:?} is not a base58btc did:key")]
    NotBase58DidKey(String),
    /// The multibase part is not base58btc.
    #[error("{did:?}: {source}")]
    Base58 {
        /// The identifier.
        did: String,
        /// What the decoder found.
        source: bs58::decode::Error,
    },
    /// An Ed25519 multicodec with a key that is not 32 bytes.
    #[error("{0:?}: an Ed25519 key has 32 bytes")]
    Ed25519Length(String),
    /// Another key type.
    #[error("{0:?}: only Ed25519 and P-256 did:keys are supported")]
    Unsupported(String),
}

/// Parses `did:key:z…` (with or without a `#fragment`) into the key it names.
pub fn parse(did: &str) -> Result<DidKey, DidKeyError> {
    let did = did.split('#').next().unwrap_or(did);
    let Some(z) = did.strip_prefix("did:key:z") else {
        return Err(DidKeyError::NotBase58DidKey(did.to_string()));
    };
    let bytes = bs58::decode(z)
        .into_vec()
        .map_err(|source| DidKeyError::Base58 {
            did: did.to_string(),
            source,
        })?;
    match bytes.get(..2) {
        Some(p) if p == ED25519 => <[u8; 32]>::try_from(&bytes[2..])
            .map(DidKey::Ed25519)
            .map_err(|_| DidKeyError::Ed25519Length(did.to_string())),
        Some(p) if p == P256 && bytes.len() == 35 => Ok(DidKey::P256(bytes[2..].to_vec())),
        _ => Err(DidKeyError::Unsupported(did.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_the_spec_example() {
        // did:key spec test vector (Ed25519).
        let did = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
        let DidKey::Ed25519(k) = parse(did).unwrap() else {
            panic!("not ed25519")
        };
        assert_eq!(ed25519_did(&k), did);
        assert_eq!(
            verification_method(did),
            format!("{did}#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp")
        );
        assert!(parse(&format!("{did}#frag")).is_ok());
        assert!(parse("did:web:example.com").is_err());
        assert!(parse("did:key:z111").is_err());
    }
}
