//! Reconciliation messages (carried by `/gaiamesh/directory/2`): range-based set
//! reconciliation over the catalogue's (subject, seq, hash) items, with ranges as prefixes of
//! the subject key split 16 ways. The state machine lives in `gaiamesh-directory`; these are
//! the wire types and limits.

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError, EncodeError};

/// Largest encoded reconciliation message.
pub const MAX_RECONCILE_BYTES: usize = 2 * 1024 * 1024;
/// Most parts in a request (initiator → responder). A responder answers each request part
/// with at most 16 parts, so responses stay within [`MAX_PARTS`].
pub const MAX_REQUEST_PARTS: usize = 256;
/// Most parts in any message.
pub const MAX_PARTS: usize = 16 * MAX_REQUEST_PARTS;
/// Most item ids in one `Items` part.
pub const MAX_ITEMS_PER_PART: usize = 64;
/// Deepest prefix, in nibbles (a 32-byte key has 64).
pub const MAX_PREFIX_NIBBLES: u8 = 64;

/// A range: every key starting with these nibbles.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Prefix {
    /// Number of nibbles.
    pub nibbles: u8,
    /// The nibbles packed two per byte, high nibble first; `ceil(nibbles / 2)` bytes.
    pub bytes: Vec<u8>,
}

/// A range fingerprint: 4 bytes of BLAKE3 over the session's [`Salt`], the wrapping sum of
/// the item ids and their count. Empty ranges have the all-zero fingerprint.
///
/// Four bytes because every session draws a fresh salt: two differing ranges look equal with
/// probability 2^-32 in one session, independently in the next (reconciliation repeats, so a
/// miss heals), and a collision cannot be computed in advance. With 16 unsalted bytes, the
/// fingerprints were two thirds of a reconciliation's bytes.
pub type Fingerprint = [u8; 4];

/// A session's salt, drawn at random by the initiator and echoed in every answer.
pub type Salt = [u8; 8];

/// A short item id: the first 8 bytes of the item's 16-byte id. Ranges compared by item list
/// are small (≤ 64 items), so 8 bytes cannot collide by accident, and forging a collision
/// with another subject's item is a 2^64 second-preimage search.
pub type ShortId = [u8; 8];

/// One part of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Part {
    /// Fingerprints of the 16 children of `prefix`: `nonempty` has bit i set when child i
    /// holds items; `fingerprints` lists those children's fingerprints in order.
    Split {
        /// The parent range.
        prefix: Prefix,
        /// Bitmap of non-empty children.
        nonempty: u16,
        /// One fingerprint per set bit.
        fingerprints: Vec<Fingerprint>,
    },
    /// The sender's items in `prefix`. With `reply`, the receiver answers with its own.
    Items {
        /// The range.
        prefix: Prefix,
        /// Short ids, sorted.
        ids: Vec<ShortId>,
        /// Whether the sender wants the receiver's items back.
        reply: bool,
    },
}

/// A reconciliation message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileMessage {
    /// The session's salt: the initiator's in a request, echoed in the answer.
    pub salt: Salt,
    /// The parts, at most [`MAX_PARTS`].
    pub parts: Vec<Part>,
}

/// Why a reconciliation message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReconcileError {
    /// The bytes do not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The message could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A bound or invariant is broken.
    #[error("invalid reconciliation message: {0}")]
    Invalid(String),
}

impl Prefix {
    /// The whole key space.
    pub fn root() -> Self {
        Self {
            nibbles: 0,
            bytes: vec![],
        }
    }

    /// Nibble `i` of the prefix.
    pub fn nibble(&self, i: usize) -> u8 {
        let b = self.bytes.get(i / 2).copied().unwrap_or(0);
        if i.is_multiple_of(2) {
            b >> 4
        } else {
            b & 0x0f
        }
    }

    /// The child range `n` (0–15).
    pub fn child(&self, n: u8) -> Self {
        let mut bytes = self.bytes.clone();
        if self.nibbles.is_multiple_of(2) {
            bytes.push(n << 4);
        } else if let Some(last) = bytes.last_mut() {
            *last |= n & 0x0f;
        }
        Self {
            nibbles: self.nibbles + 1,
            bytes,
        }
    }

    /// Whether `key` lies in this range.
    pub fn contains(&self, key: &[u8; 32]) -> bool {
        (0..usize::from(self.nibbles)).all(|i| {
            let k = if i % 2 == 0 {
                key[i / 2] >> 4
            } else {
                key[i / 2] & 0x0f
            };
            k == self.nibble(i)
        })
    }

    /// The smallest key in the range (for binary search).
    pub fn lower(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..self.bytes.len()].copy_from_slice(&self.bytes);
        k
    }

    fn check(&self) -> Result<(), ReconcileError> {
        let want = usize::from(self.nibbles).div_ceil(2);
        if self.nibbles > MAX_PREFIX_NIBBLES || self.bytes.len() != want {
            return Err(ReconcileError::Invalid(format!(
                "prefix of {} nibbles with {} bytes",
                self.nibbles,
                self.bytes.len()
            )));
        }
        if self.nibbles % 2 == 1 && self.bytes.last().is_some_and(|b| b & 0x0f != 0) {
            return Err(ReconcileError::Invalid(
                "prefix has bits set past its length".into(),
            ));
        }
        Ok(())
    }
}

impl ReconcileMessage {
    /// Canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, ReconcileError> {
        Ok(codec::encode(
            "reconcile message",
            self,
            MAX_RECONCILE_BYTES,
        )?)
    }

    /// Decodes and checks every bound.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReconcileError> {
        let m: Self = codec::decode("reconcile message", bytes, MAX_RECONCILE_BYTES)?;
        m.check()?;
        Ok(m)
    }

    /// Checks every bound and invariant.
    pub fn check(&self) -> Result<(), ReconcileError> {
        if self.parts.len() > MAX_PARTS {
            return Err(ReconcileError::Invalid(format!(
                "{} parts, at most {MAX_PARTS}",
                self.parts.len()
            )));
        }
        for p in &self.parts {
            match p {
                Part::Split {
                    prefix,
                    nonempty,
                    fingerprints,
                } => {
                    prefix.check()?;
                    if prefix.nibbles >= MAX_PREFIX_NIBBLES {
                        return Err(ReconcileError::Invalid(
                            "cannot split a full-length key".into(),
                        ));
                    }
                    if fingerprints.len() != nonempty.count_ones() as usize {
                        return Err(ReconcileError::Invalid(
                            "fingerprint count does not match the bitmap".into(),
                        ));
                    }
                }
                Part::Items { prefix, ids, .. } => {
                    prefix.check()?;
                    if ids.len() > MAX_ITEMS_PER_PART {
                        return Err(ReconcileError::Invalid(format!(
                            "{} ids in one part, at most {MAX_ITEMS_PER_PART}",
                            ids.len()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p = Prefix::root().child(0xa).child(0x3).child(0xf);
        assert_eq!((p.nibbles, p.bytes.clone()), (3, vec![0xa3, 0xf0]));
        let mut key = [0u8; 32];
        key[0] = 0xa3;
        key[1] = 0xf7;
        assert!(p.contains(&key));
        key[1] = 0xe7;
        assert!(!p.contains(&key));
        assert_eq!(p.lower()[..2], [0xa3, 0xf0]);
        let bad = ReconcileMessage {
            salt: [0; 8],
            parts: vec![Part::Items {
                prefix: Prefix {
                    nibbles: 3,
                    bytes: vec![0xa3, 0xf1],
                },
                ids: vec![],
                reply: false,
            }],
        };
        assert!(ReconcileMessage::decode(&bad.encode().unwrap()).is_err());
    }
}
