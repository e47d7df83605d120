//! Compute-to-data terms: which algorithms may run on an asset offered for computation
//! ([`ComputePolicy`], the `[compute]` table of a usage policy), the job request a consumer
//! sends under an agreement ([`JobRequest`]), and the usage record the provider signs and the
//! consumer countersigns ([`UsageRecord`]) — for a job, and in the same vocabulary for a
//! transfer ([`UsageBody::transfer`]: no algorithm, the manifest hash as the result).
//!
//! ```toml
//! purposes = ["research"]
//! [compute]
//! only = true                                  # never transferred, only computed on (default)
//! algorithms = ["column-stats@1.0.0", "blake3:9f2c…"]  # repository targets or hashes; empty: any released algorithm
//! max_output_bytes = 1048576                   # the largest result (default 16 MiB)
//! review = true                                # the provider's operator sees each result
//!                                              # before it leaves (default: no)
//! ```

use gaiamesh_protocol::{
    codec,
    identity::{Domain, Keypair, PublicKey, Signature},
    time::UnixMillis,
};
use serde::{Deserialize, Serialize};

use crate::{
    contract::{Agreement, AgreementId, ContractError},
    metering::{Charge, Usage},
};

/// Largest result a policy may allow: 1 GiB.
pub const MAX_OUTPUT_LIMIT: u64 = 1 << 30;
/// The result limit when the policy names none: 16 MiB.
pub const DEFAULT_OUTPUT_BYTES: u64 = 16 << 20;
/// Most arguments of a job, and the longest.
pub const MAX_ARGS: usize = 32;
/// Longest argument, bytes.
pub const MAX_ARG_BYTES: usize = 1024;
/// Largest encoded usage record.
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The `[compute]` table of a usage policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComputePolicy {
    /// Only computation: the asset's bytes are never transferred. Default: yes.
    #[serde(default = "yes")]
    pub only: bool,
    /// Algorithms that may run: repository targets `NAME@VERSION`, `NAME` (any released
    /// version) or `blake3:HEX`. Empty: any algorithm the federation's repository released.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// The largest result, bytes.
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// Results are held until the provider's operator approves them (`gaiamesh compute
    /// review`); a rejected or unreviewed one never leaves. Default: no (and then not
    /// written, so the policy's JSON form, and its hash in agreements, stay as before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub review: bool,
}

fn yes() -> bool {
    true
}

/// An algorithm as the provider checked it: a released repository target and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgorithmRef<'a> {
    /// `NAME@VERSION`.
    pub target: &'a str,
    /// BLAKE3 of the component, hex.
    pub blake3: &'a str,
}

impl ComputePolicy {
    /// The result limit.
    pub fn output_limit(&self) -> u64 {
        self.max_output_bytes.unwrap_or(DEFAULT_OUTPUT_BYTES)
    }

    /// Problems with the table, each naming its field.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.algorithms.len() > crate::policy::MAX_LIST {
            out.push(format!(
                "compute.algorithms: {} entries, at most {}",
                self.algorithms.len(),
                crate::policy::MAX_LIST
            ));
        }
        for (i, a) in self.algorithms.iter().enumerate() {
            let ok = match a.strip_prefix("blake3:") {
                Some(h) => h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                None => !a.is_empty() && a.len() <= crate::policy::MAX_ENTRY && !a.contains(' '),
            };
            if !ok {
                out.push(format!(
                    "compute.algorithms[{i}]: {a:?} is neither NAME[@VERSION] nor blake3:<64 hex digits>"
                ));
            }
        }
        match self.max_output_bytes {
            Some(0) => out.push("compute.max_output_bytes: 0 would permit no result".into()),
            Some(n) if n > MAX_OUTPUT_LIMIT => out.push(format!(
                "compute.max_output_bytes: {n} is above the {MAX_OUTPUT_LIMIT}-byte maximum"
            )),
            _ => {}
        }
        out
    }

    /// Whether `algorithm` may run: `Err` names the permitted list.
    pub fn permits(&self, algorithm: &AlgorithmRef<'_>) -> Result<(), JobRefusal> {
        if self.algorithms.is_empty() {
            return Ok(());
        }
        let name = algorithm
            .target
            .split_once('@')
            .map_or(algorithm.target, |(n, _)| n);
        let permitted = self
            .algorithms
            .iter()
            .any(|a| match a.strip_prefix("blake3:") {
                Some(h) => h.eq_ignore_ascii_case(algorithm.blake3),
                None => a == algorithm.target || a == name,
            });
        if permitted {
            Ok(())
        } else {
            Err(JobRefusal::NotPermitted {
                algorithm: algorithm.target.to_owned(),
                blake3: algorithm.blake3.to_owned(),
                permitted: self.algorithms.clone(),
            })
        }
    }
}

/// Why a job request is refused by its terms (before anything runs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobRefusal {
    /// The policy names other algorithms.
    #[error("algorithm {algorithm} ({blake3}) is not among the permitted {permitted:?}")]
    NotPermitted {
        /// The algorithm asked for.
        algorithm: String,
        /// Its hash.
        blake3: String,
        /// What the policy permits.
        permitted: Vec<String>,
    },
    /// Too many arguments.
    #[error("{0} arguments, at most {MAX_ARGS}")]
    TooManyArgs(usize),
    /// An argument too long.
    #[error("an argument of {0} bytes, at most {MAX_ARG_BYTES}")]
    ArgTooLong(usize),
}

/// A compute job asked for under an agreement (on `/gaiamesh/transfer/1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The agreement for the asset.
    pub agreement: Box<Agreement>,
    /// The algorithm: a repository target `NAME@VERSION`.
    pub algorithm: String,
    /// Its BLAKE3 as the consumer expects it, hex.
    pub blake3: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl JobRequest {
    /// Problems with the arguments.
    pub fn check_args(&self) -> Result<(), JobRefusal> {
        if self.args.len() > MAX_ARGS {
            return Err(JobRefusal::TooManyArgs(self.args.len()));
        }
        if let Some(a) = self.args.iter().find(|a| a.len() > MAX_ARG_BYTES) {
            return Err(JobRefusal::ArgTooLong(a.len()));
        }
        Ok(())
    }
}

/// What a compute job used, as the provider states it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageBody {
    /// The agreement the job ran under.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub agreement: AgreementId,
    /// The provider (who ran it).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub provider: PublicKey,
    /// The consumer (who asked).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub consumer: PublicKey,
    /// The asset computed on.
    pub asset: String,
    /// The algorithm's repository target, `NAME@VERSION`.
    pub algorithm: String,
    /// Its BLAKE3, hex.
    pub algorithm_blake3: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// `completed`, or why it stopped.
    pub outcome: String,
    /// BLAKE3 of the result, hex (empty when stopped).
    pub result_blake3: String,
    /// What it used.
    pub usage: Usage,
    /// Its price from the provider's price model, when it has one for computation.
    pub charge: Option<Charge>,
    /// When it started and ended.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub started_at: UnixMillis,
    /// When it ended.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub finished_at: UnixMillis,
}

impl UsageBody {
    /// A transfer's record in the same vocabulary: no algorithm, the asset's manifest hash
    /// as the result, `bytes` read from the provider's storage and sent, `wall_us` from the
    /// first file request to the consumer's receipt.
    pub fn transfer(
        agreement: &Agreement,
        bytes: u64,
        wall_us: u64,
        charge: Option<Charge>,
        started_at: UnixMillis,
        finished_at: UnixMillis,
    ) -> Result<Self, ContractError> {
        Ok(Self {
            agreement: agreement.body.id()?,
            provider: agreement.body.provider,
            consumer: agreement.body.consumer,
            asset: agreement.body.asset.clone(),
            algorithm: String::new(),
            algorithm_blake3: String::new(),
            args: Vec::new(),
            outcome: "completed".into(),
            result_blake3: agreement.body.manifest_blake3.clone(),
            usage: Usage {
                bytes_read: bytes,
                wall_us,
                ..Usage::default()
            },
            charge,
            started_at,
            finished_at,
        })
    }

    /// Whether this is a transfer's record (no algorithm ran).
    pub fn is_transfer(&self) -> bool {
        self.algorithm.is_empty()
    }

    fn encode(&self) -> Result<Vec<u8>, ContractError> {
        Ok(codec::encode("usage record", self, MAX_RECORD_BYTES)?)
    }
}

/// A usage record: signed by the provider, then countersigned by the consumer on receipt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// What it says.
    pub body: UsageBody,
    /// The provider's signature.
    pub provider_signature: Signature,
    /// The consumer's, once it accepted the record.
    pub consumer_signature: Option<Signature>,
}

impl UsageRecord {
    /// `body` signed by the provider's `key`.
    pub fn sign(body: UsageBody, key: &Keypair) -> Result<Self, ContractError> {
        Ok(Self {
            provider_signature: key.sign(Domain::UsageRecord, &body.encode()?),
            body,
            consumer_signature: None,
        })
    }

    /// Checks the provider's signature and that the record is for `agreement` (by id and
    /// parties) and, when a result arrived, for these bytes.
    pub fn verify_provider(
        &self,
        agreement: &Agreement,
        result: Option<&[u8]>,
    ) -> Result<(), ContractError> {
        let b = &self.body;
        if b.agreement != agreement.body.id()? {
            return Err(ContractError::Mismatch("usage.agreement"));
        }
        if b.provider != agreement.body.provider {
            return Err(ContractError::Mismatch("usage.provider"));
        }
        if b.consumer != agreement.body.consumer {
            return Err(ContractError::Mismatch("usage.consumer"));
        }
        if b.asset != agreement.body.asset {
            return Err(ContractError::Mismatch("usage.asset"));
        }
        if let Some(bytes) = result
            && blake3::hash(bytes).to_hex().as_str() != b.result_blake3
        {
            return Err(ContractError::Mismatch("usage.result_blake3"));
        }
        if !b
            .provider
            .verify(Domain::UsageRecord, &b.encode()?, &self.provider_signature)
        {
            return Err(ContractError::BadSignature("usage record (provider)"));
        }
        Ok(())
    }

    /// Checks a transfer's record: the provider's signature, the agreement, and that it
    /// meters the transfer of this agreement's manifest (not a job).
    pub fn verify_transfer(&self, agreement: &Agreement) -> Result<(), ContractError> {
        self.verify_provider(agreement, None)?;
        if !self.body.is_transfer() {
            return Err(ContractError::Mismatch("usage.algorithm"));
        }
        if self.body.result_blake3 != agreement.body.manifest_blake3 {
            return Err(ContractError::Mismatch("usage.result_blake3"));
        }
        Ok(())
    }

    /// The consumer's countersignature added with `key`.
    pub fn countersign(mut self, key: &Keypair) -> Result<Self, ContractError> {
        self.consumer_signature = Some(key.sign(Domain::UsageRecord, &self.body.encode()?));
        Ok(self)
    }

    /// Checks both signatures.
    pub fn verify_both(&self) -> Result<(), ContractError> {
        let bytes = self.body.encode()?;
        if !self
            .body
            .provider
            .verify(Domain::UsageRecord, &bytes, &self.provider_signature)
        {
            return Err(ContractError::BadSignature("usage record (provider)"));
        }
        let Some(sig) = &self.consumer_signature else {
            return Err(ContractError::Missing("the consumer's countersignature"));
        };
        if !self.body.consumer.verify(Domain::UsageRecord, &bytes, sig) {
            return Err(ContractError::BadSignature("usage record (consumer)"));
        }
        Ok(())
    }
}
