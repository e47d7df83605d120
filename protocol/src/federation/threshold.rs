//! Objects signed by k of n keys. A key signing twice counts once; signatures by keys outside
//! the key set or that do not verify count for nothing.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    codec::{self, EncodeError},
    identity::{Domain, Keypair, PublicKey, Signature},
    limits::MAX_SIGNATURES,
};

/// One signature and the key that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySignature {
    /// The signing key.
    pub key: PublicKey,
    /// Its signature over the domain-tagged canonical body.
    pub signature: Signature,
}

/// A body with signatures by several keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct ThresholdSigned<T> {
    /// What was signed.
    pub body: T,
    /// Signatures over `body` (at most 32).
    pub signatures: Vec<KeySignature>,
}

/// Why a threshold-signed object is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// Fewer distinct valid signatures from the key set than the threshold.
    #[error(
        "{valid} valid signature(s) from distinct {role} keys, {required} required \
         ({duplicates} duplicate signer(s) counted once, {unknown} by keys that are not {role} keys, \
         {bad} that do not verify)"
    )]
    BelowThreshold {
        /// Which key set (authority, repository root, …).
        role: &'static str,
        /// Distinct valid signatures from keys in the set.
        valid: usize,
        /// The threshold.
        required: u8,
        /// Signatures by a key that had already signed.
        duplicates: usize,
        /// Signatures by keys outside the set.
        unknown: usize,
        /// Signatures that do not verify.
        bad: usize,
    },
    /// More signatures than any legitimate object carries.
    #[error("{count} signatures, at most {MAX_SIGNATURES} allowed")]
    TooManySignatures {
        /// How many signatures were attached.
        count: usize,
    },
    /// The body could not be encoded for checking.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl<T: Serialize> ThresholdSigned<T> {
    /// Signs `body` with each of `keys`.
    pub fn sign(
        body: T,
        domain: Domain,
        limit: usize,
        keys: &[&Keypair],
    ) -> Result<Self, EncodeError> {
        let bytes = codec::encode("signed body", &body, limit)?;
        let signatures = keys
            .iter()
            .map(|k| KeySignature {
                key: k.public(),
                signature: k.sign(domain, &bytes),
            })
            .collect();
        Ok(Self { body, signatures })
    }

    /// Counts distinct, valid signatures by keys in `keyset` and checks them against
    /// `threshold`. Returns the keys that signed validly.
    pub fn verify_threshold(
        &self,
        role: &'static str,
        domain: Domain,
        limit: usize,
        keyset: &[PublicKey],
        threshold: u8,
    ) -> Result<BTreeSet<PublicKey>, ThresholdError> {
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(ThresholdError::TooManySignatures {
                count: self.signatures.len(),
            });
        }
        let bytes = codec::encode("signed body", &self.body, limit)?;
        let (mut signers, mut duplicates, mut unknown, mut bad) = (BTreeSet::new(), 0, 0, 0);
        for s in &self.signatures {
            if !keyset.contains(&s.key) {
                unknown += 1;
            } else if signers.contains(&s.key) {
                duplicates += 1;
            } else if s.key.verify(domain, &bytes, &s.signature) {
                signers.insert(s.key);
                if signers.len() >= usize::from(threshold) && threshold > 0 {
                    // Enough: further signatures cannot change the outcome.
                    return Ok(signers);
                }
            } else {
                bad += 1;
            }
        }
        if signers.len() < usize::from(threshold) || threshold == 0 {
            return Err(ThresholdError::BelowThreshold {
                role,
                valid: signers.len(),
                required: threshold,
                duplicates,
                unknown,
                bad,
            });
        }
        Ok(signers)
    }
}
