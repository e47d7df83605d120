//! # gaiamesh-protocol
//!
//! The types that cross the network in a gaiamesh federation, and the rules that decide
//! whether they are acceptable. No I/O, no clock: every check takes `now` as a parameter, so
//! the node daemon and the simulator run exactly the same code.
//!
//! Main types:
//! - [`identity::Keypair`], [`identity::PublicKey`]: ed25519 node, authority and certifier
//!   keys; a `PublicKey` prints as its libp2p PeerId.
//! - [`sd::SdDocument`]: the self-description an operator writes (TOML or JSON), validated
//!   with field paths; [`sd::SignedSelfDescription`]: the signed record gossiped into the
//!   directory.
//! - [`federation::Genesis`], [`federation::MembershipCredential`],
//!   [`federation::Attestation`], [`federation::RevocationList`], and
//!   [`federation::FederationTrust`], which checks them.
//! - [`repository`]: the software repository's TUF-style metadata and client workflow.
//! - [`codec`]: canonical postcard encoding with size limits ([`limits`]).
//!
//! ```
//! use gaiamesh_protocol::{identity::Keypair, sd::{SdDocument, DocumentFormat}};
//!
//! let doc = SdDocument::parse(r#"
//!     [participant]
//!     legal_name = "Nordwolke GmbH"
//!     registration = [{ kind = "vatID", value = "DE123456789" }]
//!     headquarters = { country = "DE", subdivision = "DE-BY" }
//!     [node]
//!     kind = "public_cloud"
//!     location = { country = "DE" }
//! "#, DocumentFormat::Toml).unwrap();
//! assert_eq!(doc.participant.legal_name, "Nordwolke GmbH");
//! let key = Keypair::generate();
//! println!("node id: {}", key.public());
//! ```

pub mod codec;
pub mod codes;
pub mod federation;
pub mod identity;
pub mod limits;
pub mod reconcile;
pub mod repository;
pub mod sd;
pub mod time;
pub mod wire;

/// Text that does not name a value of the type it was parsed as.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not {expected}")]
pub struct ParseError {
    /// The text (its first 80 characters).
    pub text: String,
    /// What was expected, e.g. `a BLAKE3 hash (64 hex digits)`.
    pub expected: &'static str,
}

impl ParseError {
    /// `text` is not `expected`.
    pub fn new(text: &str, expected: &'static str) -> Self {
        Self {
            text: text.chars().take(80).collect(),
            expected,
        }
    }
}

#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
