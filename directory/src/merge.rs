//! The merge rules (DESIGN §6), as a pure decision over the stored entry and an incoming,
//! already-checked record. Properties (tested): the result does not depend on delivery order;
//! a lower seq never replaces a higher one; an invalid record never changes the store.

use gaiamesh_protocol::sd::SdError;

use crate::entry::Entry;

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

/// Decides how a valid `incoming` entry merges with the `stored` one.
pub fn decide(stored: Option<&Entry>, incoming: &Entry) -> MergeOutcome {
    let Some(stored) = stored else {
        return MergeOutcome::Inserted;
    };
    let (old, new) = (stored.seq(), incoming.seq());
    if new > old {
        MergeOutcome::Replaced { old_seq: old }
    } else if new < old {
        MergeOutcome::Stale { stored_seq: old }
    } else if stored.hash == incoming.hash {
        MergeOutcome::Duplicate
    } else {
        MergeOutcome::Equivocation {
            replaced: incoming.hash < stored.hash,
        }
    }
}
