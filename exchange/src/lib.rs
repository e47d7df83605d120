//! Sovereign data exchange (DESIGN §8), the parts that need no network:
//!
//! - [`policy`]: the usage-policy language and its pure evaluation (allowed, or the reason
//!   for a refusal);
//! - [`asset`]: the provider's registry of files and directories with BLAKE3 hashes;
//! - [`contract`]: requests, agreements signed by both parties, receipts;
//! - [`negotiation`]: the Dataspace Protocol negotiation as sans-IO state machines for
//!   both sides;
//! - [`transfer`]: the transfer messages, the provider's authorization check and the
//!   consumer's verified, resumable staging on disk;
//! - [`audit`]: the hash-chained, signed audit log in redb;
//! - [`compute`]: compute-to-data terms (the policy's `[compute]` table, job requests,
//!   usage records signed by both parties);
//! - [`metering`]: what a compute job used and its price from the provider's price model.
//!
//! The node (`gaiamesh-node`) carries these over `/gaiamesh/negotiate/1` and
//! `/gaiamesh/transfer/1`.

pub mod asset;
pub mod audit;
pub mod compute;
pub mod contract;
pub mod metering;
pub mod negotiation;
pub mod policy;
pub mod transfer;
