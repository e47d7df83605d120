//! Ed25519 identities: node keys, authority keys, certifier keys.
//!
//! [`PublicKey`] is the wire form of every key; its human form is the libp2p PeerId string
//! (`12D3KooW…`), so an operator sees the same id in logs, documents and `gaiamesh peers`.
//! [`Keypair`] holds a secret key that is wiped on drop and never printed.

mod keypair;
mod public_key;
mod signature;

pub use keypair::{Keypair, SecretKeyError};
pub use public_key::{PublicKey, PublicKeyError};
pub use signature::{Domain, Signature};
