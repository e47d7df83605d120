//! Self-descriptions: the document an operator writes ([`SdDocument`]), its validation with
//! field paths, and the signed record that crosses the network ([`SignedSelfDescription`]).

mod check;
mod document;
mod schema;
mod signed;
mod validate;

pub use check::{CertificationStatus, MembershipStatus, SdReport};
pub use document::{DocumentError, DocumentFormat};
pub use schema::*;
pub use signed::{Canonical, SdError, SelfDescription, SignedSelfDescription};
pub use validate::{FieldError, ValidationErrors, parse_decimal, validate_document};
