//! Sovereign data exchange (DESIGN §8). Built so far: the usage-policy language and its
//! evaluation ([`policy`]), a pure function from a policy, the consumer's verified
//! membership facts and its request to "allowed" or the reason for a refusal; and the
//! provider's asset registry ([`asset`]): files and directories with their BLAKE3 hashes
//! and policies. Contract negotiation, transfers and the audit log build on them (issue 7,
//! not built yet).

pub mod asset;
pub mod policy;
