//! Sovereign data exchange (DESIGN §8). This first part is the usage-policy language and
//! its evaluation ([`policy`]): a pure function from a policy, the consumer's verified
//! membership facts and its request to "allowed" or the reason for a refusal. Contract
//! negotiation, transfers and the audit log build on it (issue 7, not built yet).

pub mod policy;
