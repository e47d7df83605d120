//! Request-response messages of the node's protocols, with their limits:
//! `/gaiamesh/admission/1` (credential exchange on every connection) and
//! `/gaiamesh/directory/2` (reconciliation rounds, fetching and pushing records).

use serde::{Deserialize, Serialize};

use crate::{
    codec::{self, DecodeError, EncodeError},
    federation::MembershipCredential,
    limits::MAX_CREDENTIAL_BYTES,
    reconcile::{MAX_RECONCILE_BYTES, ReconcileMessage, ShortId},
    sd::SignedSelfDescription,
};

/// Protocol name of admission.
pub const ADMISSION_PROTOCOL: &str = "/gaiamesh/admission/1";
/// Protocol name of directory requests (reconcile, fetch, push); version 2 since the
/// reconciliation messages carry a salt and 4-byte fingerprints.
pub const DIRECTORY_PROTOCOL: &str = "/gaiamesh/directory/2";
/// Most records in one fetch or push.
pub const MAX_RECORDS_PER_MESSAGE: usize = 64;
/// Largest directory message.
pub const MAX_DIRECTORY_MESSAGE_BYTES: usize = MAX_RECONCILE_BYTES + 64 * 1024;
/// Largest admission message.
pub const MAX_ADMISSION_BYTES: usize = MAX_CREDENTIAL_BYTES + 64;

/// Both sides send their credential; the receiver checks it binds the connection's PeerId.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The sender's credential (none in an open federation without one).
    pub credential: Option<MembershipCredential>,
}

/// A request on `/gaiamesh/directory/2`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DirectoryRequest {
    /// A reconciliation round from the initiator.
    Reconcile(ReconcileMessage),
    /// The records with these short ids.
    Fetch(Vec<ShortId>),
    /// Records the receiver lacks.
    Push(Vec<SignedSelfDescription>),
    /// The sender's revocation list (anti-entropy for revocations, next to gossip).
    Revocations(Box<crate::federation::RevocationList>),
}

/// A response on `/gaiamesh/directory/2`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DirectoryResponse {
    /// The responder's reconciliation answer.
    Reconcile(ReconcileMessage),
    /// Requested records (unknown ids are skipped).
    Records(Vec<SignedSelfDescription>),
    /// Pushed records were processed.
    Ack,
    /// The request was refused.
    Refused(String),
}

/// Why a wire message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A bound is broken.
    #[error("invalid message: {0}")]
    Invalid(String),
}

fn check_records(n: usize) -> Result<(), WireError> {
    if n > MAX_RECORDS_PER_MESSAGE {
        return Err(WireError::Invalid(format!(
            "{n} records, at most {MAX_RECORDS_PER_MESSAGE}"
        )));
    }
    Ok(())
}

impl Admission {
    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        Ok(codec::encode("admission", self, MAX_ADMISSION_BYTES)?)
    }

    /// Decodes with limits.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        Ok(codec::decode("admission", bytes, MAX_ADMISSION_BYTES)?)
    }
}

impl DirectoryRequest {
    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.check()?;
        Ok(codec::encode(
            "directory request",
            self,
            MAX_DIRECTORY_MESSAGE_BYTES,
        )?)
    }

    /// Decodes and checks bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let m: Self = codec::decode("directory request", bytes, MAX_DIRECTORY_MESSAGE_BYTES)?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), WireError> {
        match self {
            DirectoryRequest::Reconcile(m) => {
                m.check().map_err(|e| WireError::Invalid(e.to_string()))
            }
            DirectoryRequest::Fetch(ids) => check_records(ids.len()),
            DirectoryRequest::Push(r) => check_records(r.len()),
            DirectoryRequest::Revocations(l) => l
                .body
                .check_fields()
                .map_err(|e| WireError::Invalid(e.to_string())),
        }
    }
}

impl DirectoryResponse {
    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.check()?;
        Ok(codec::encode(
            "directory response",
            self,
            MAX_DIRECTORY_MESSAGE_BYTES,
        )?)
    }

    /// Decodes and checks bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let m: Self = codec::decode("directory response", bytes, MAX_DIRECTORY_MESSAGE_BYTES)?;
        m.check()?;
        Ok(m)
    }

    fn check(&self) -> Result<(), WireError> {
        match self {
            DirectoryResponse::Reconcile(m) => {
                m.check().map_err(|e| WireError::Invalid(e.to_string()))
            }
            DirectoryResponse::Records(r) => check_records(r.len()),
            DirectoryResponse::Ack => Ok(()),
            DirectoryResponse::Refused(s) if s.len() > 1024 => {
                Err(WireError::Invalid("refusal reason too long".into()))
            }
            DirectoryResponse::Refused(_) => Ok(()),
        }
    }
}
