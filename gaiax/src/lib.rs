//! Gaia-X Trust Framework interoperability: credentials in, credentials out.
//!
//! - [`import()`] reads Gaia-X credentials — 22.10 (Tagus) JSON-LD presentations and
//!   credentials, Loire (24.x/25.11) JSON-LD or VC-JWT, bare or enveloped in a presentation
//!   — and maps them to a gaiamesh self-description, with a [`Report`] of what was mapped,
//!   what was kept aside and what is invalid, each with its JSON path. The original bytes
//!   and their SHA-256 are kept so the credentials can be presented again.
//! - Proofs are checked where that can be done offline: VC-JWT signatures ([`jwt`]; EdDSA,
//!   ES256, PS256) against a JWK in the header, a `did:key` issuer, or keys the caller
//!   trusts; `JsonWebSignature2020` proofs on JSON-LD credentials and presentations
//!   ([`ld::proof`]) the same way, over RDFC-1.0 canonical RDF, when every JSON-LD context
//!   the document names is bundled ([`ld::Contexts`]) or supplied from a file. What cannot
//!   be checked offline is reported as not checked, with the reason.
//! - [`export()`] writes a self-description as Loire `gx:LegalPerson`,
//!   registration-number and `gx:ServiceOffering` credentials, as JSON-LD or as VC-JWTs
//!   signed with the node key (`did:key`), or as 22.10 `gx:LegalParticipant` credentials
//!   with `JsonWebSignature2020` proofs, the form the 22.10 compliance service takes.
//!
//! The field mapping, release by release, is in `docs/gaiax.md`.

pub mod did_key;
pub mod did_web;
mod export;
mod import;
mod json;
pub mod jwt;
pub mod ld;
mod load;
pub mod odrl;
mod report;
pub mod validity;
mod vocab;
pub mod wizard;
pub mod x509;

pub use export::{ExportError, ExportFormat, GAIA_X_TERMS_2210, Signer, export};
pub use import::{ImportOptions, Imported, Original, import};
pub use load::Source;
pub use report::{CredentialReport, Finding, PresentationReport, ProofStatus, Release, Report};
pub use validity::Validity;

/// Most bytes read from one input file.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Most credentials taken from all input files together.
pub const MAX_CREDENTIALS: usize = 256;
