//! The merge rules (DESIGN §6), as a pure decision over the stored entry and an incoming,
//! already-checked record. Properties (tested): the result does not depend on delivery order;
//! a lower seq never replaces a higher one; an invalid record never changes the store.

use gaiamesh_protocol::sd::SdError;

/// What merging one record did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MergeOutcome {
    /// A new subject.
    Inserted,
    /// A higher seq replaced the stored version.
    Replaced {
        /// The seq that was replaced.
        old_seq: u64,
    },
    /// The same record is stored already.
    Duplicate,
    /// The stored version has a higher seq; nothing changed.
    Stale {
        /// The stored seq.
        stored_seq: u64,
    },
    /// Same seq, different content: the subject signed two versions. Evidence was recorded;
    /// the record with the smaller hash is kept so every node keeps the same one.
    Equivocation {
        /// Whether the incoming record replaced the stored one (it had the smaller hash).
        replaced: bool,
    },
    /// The record breaks a rule; the sender should be penalised.
    Rejected(SdError),
    /// The catalogue is full and the subject is new.
    CatalogueFull,
}

impl MergeOutcome {
    /// Whether the catalogue changed.
    pub fn changed(&self) -> bool {
        matches!(
            self,
            MergeOutcome::Inserted
                | MergeOutcome::Replaced { .. }
                | MergeOutcome::Equivocation { replaced: true }
        )
    }

    /// Whether the sender misbehaved (forged, invalid or equivocating record).
    pub fn penalise(&self) -> bool {
        matches!(
            self,
            MergeOutcome::Rejected(_) | MergeOutcome::Equivocation { .. }
        )
    }

    /// Whether the record should be forwarded (gossip `Accept`): it is new to us.
    pub fn forward(&self) -> bool {
        matches!(self, MergeOutcome::Inserted | MergeOutcome::Replaced { .. })
    }
}

/// The (seq, content hash) of a record version: all the merge rules compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    /// The record's seq.
    pub seq: u64,
    /// BLAKE3 of its canonical encoding.
    pub hash: [u8; 32],
}

/// Decides how a valid `incoming` version merges with the `stored` one.
pub fn decide(stored: Option<Version>, incoming: Version) -> MergeOutcome {
    let Some(stored) = stored else {
        return MergeOutcome::Inserted;
    };
    if incoming.seq > stored.seq {
        MergeOutcome::Replaced {
            old_seq: stored.seq,
        }
    } else if incoming.seq < stored.seq {
        MergeOutcome::Stale {
            stored_seq: stored.seq,
        }
    } else if stored.hash == incoming.hash {
        MergeOutcome::Duplicate
    } else {
        MergeOutcome::Equivocation {
            replaced: incoming.hash < stored.hash,
        }
    }
}

/// Whether `decide` can settle `incoming` without verifying it: a stale or identical copy
/// changes nothing whether or not it is valid, so its signatures need not be checked.
pub fn settled_without_verification(
    stored: Option<Version>,
    incoming: Version,
) -> Option<MergeOutcome> {
    let stored = stored?;
    (incoming.seq < stored.seq || incoming == stored).then(|| decide(Some(stored), incoming))
}
