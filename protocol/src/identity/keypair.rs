use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

use super::{Domain, PublicKey, Signature};

/// A secret ed25519 key with its public half. The secret is wiped from memory on drop and
/// never appears in `Debug` output or logs.
#[derive(Clone)]
pub struct Keypair(SigningKey);

/// Why a secret key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretKeyError {
    /// The text does not start with the expected header line.
    #[error("not a gaiamesh secret key file (expected a line starting with {SECRET_HEADER:?})")]
    BadHeader,
    /// The key material is not 64 hex digits.
    #[error("the secret key is not 64 hex digits")]
    BadHex,
}

const SECRET_HEADER: &str = "gaiamesh-ed25519-secret-v1:";

impl Keypair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        Self(SigningKey::from_bytes(&secret))
    }

    /// A key from 32 secret bytes (deterministic keys for tests and the simulator).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        // A SigningKey's verifying key is always a valid point.
        match PublicKey::from_bytes(self.0.verifying_key().as_bytes()) {
            Ok(k) => k,
            Err(_) => unreachable_public(),
        }
    }

    /// Signs `message` in `domain`.
    pub fn sign(&self, domain: Domain, message: &[u8]) -> Signature {
        Signature::from_bytes(self.0.sign(&domain.tagged(message)).to_bytes())
    }

    /// Signs `message` as it is, without a gaiamesh domain tag: only for formats that
    /// define their own signing input (JWS for Gaia-X VC-JWTs). Never use it for gaiamesh
    /// objects, whose signatures must stay domain-separated.
    pub fn sign_external(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The secret in its text file form: one line `gaiamesh-ed25519-secret-v1:<64 hex>`.
    /// Write it with mode 0600.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let secret = Zeroizing::new(self.0.to_bytes());
        Zeroizing::new(format!("{SECRET_HEADER}{}\n", hex::encode(secret.as_ref())))
    }

    /// Reads the text form written by [`Keypair::to_secret_text`].
    pub fn from_secret_text(text: &str) -> Result<Self, SecretKeyError> {
        let hex_part = text
            .trim()
            .strip_prefix(SECRET_HEADER)
            .ok_or(SecretKeyError::BadHeader)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_part, bytes.as_mut()).map_err(|_| SecretKeyError::BadHex)?;
        Ok(Self::from_secret_bytes(&bytes))
    }

    /// The same key as a libp2p keypair, for the swarm.
    pub fn to_libp2p(&self) -> libp2p_identity::Keypair {
        let mut secret = self.0.to_bytes();
        // `ed25519_from_bytes` zeroizes the buffer it is given.
        match libp2p_identity::Keypair::ed25519_from_bytes(&mut secret) {
            Ok(k) => k,
            Err(_) => unreachable_libp2p(),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_public() -> PublicKey {
    panic!("the verifying key of a signing key is a valid point")
}

#[allow(clippy::panic)]
fn unreachable_libp2p() -> libp2p_identity::Keypair {
    panic!("32 bytes are always a valid ed25519 secret")
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Keypair {{ public: {}, secret: <redacted> }}",
            self.public()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let k = Keypair::from_secret_bytes(&[7u8; 32]);
        let text = k.to_secret_text();
        let hex_secret = text.trim().trim_start_matches(SECRET_HEADER);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(hex_secret));
        assert!(!dbg.contains("0707070707"));
    }

    #[test]
    fn secret_text_round_trips() {
        let k = Keypair::generate();
        let back = Keypair::from_secret_text(&k.to_secret_text()).unwrap();
        assert_eq!(k.public(), back.public());
        assert!(matches!(
            Keypair::from_secret_text("nope"),
            Err(SecretKeyError::BadHeader)
        ));
        assert!(matches!(
            Keypair::from_secret_text("gaiamesh-ed25519-secret-v1:zz"),
            Err(SecretKeyError::BadHex)
        ));
    }

    #[test]
    fn peer_id_round_trips_and_matches_libp2p() {
        for _ in 0..64 {
            let k = Keypair::generate();
            let peer = k.public().to_peer_id();
            assert_eq!(peer, k.to_libp2p().public().to_peer_id());
            assert_eq!(
                peer.to_string(),
                k.to_libp2p().public().to_peer_id().to_string()
            );
            assert_eq!(PublicKey::from_peer_id(&peer).unwrap(), k.public());
            assert_eq!(peer.to_string().parse::<PublicKey>().unwrap(), k.public());
        }
    }

    #[test]
    fn signatures_are_domain_separated() {
        let k = Keypair::generate();
        let sig = k.sign(Domain::SelfDescription, b"hello");
        assert!(k.public().verify(Domain::SelfDescription, b"hello", &sig));
        assert!(
            !k.public()
                .verify(Domain::MembershipCredential, b"hello", &sig)
        );
        assert!(!k.public().verify(Domain::SelfDescription, b"hellp", &sig));
        let other = Keypair::generate();
        assert!(
            !other
                .public()
                .verify(Domain::SelfDescription, b"hello", &sig)
        );
    }
}
