//! What a node does with a record that reached it by gossip, once the merge rules
//! ([`gaiamesh_directory::merge`]) have decided: forward it to its mesh, drop it quietly, or
//! reject it and count it against the peer that sent it. The daemon reports this verdict to
//! gossipsub (which forwards and scores); the simulator forwards and graylists by it.

use gaiamesh_directory::merge::MergeOutcome;

/// The gossip verdict on one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GossipVerdict {
    /// New to this node: forward it to the mesh.
    Accept,
    /// Not news, or not the sender's fault: neither forward nor penalise.
    Ignore,
    /// The sender misbehaved (invalid or forged record, or the subject itself equivocated):
    /// do not forward, and penalise the sender.
    Reject,
}

impl GossipVerdict {
    /// The verdict on a record whose merge ended in `outcome`, received from a peer that
    /// is (`sender_is_subject`) or is not the record's own subject.
    ///
    /// Two versions with one seq prove only that the subject equivocated: a forwarder that
    /// saw the other version first is honest, so only the subject is penalised. A full
    /// catalogue is this node's limit, not the sender's fault.
    pub fn of(outcome: &MergeOutcome, sender_is_subject: bool) -> Self {
        match outcome {
            MergeOutcome::Equivocation { .. } if sender_is_subject => Self::Reject,
            MergeOutcome::Equivocation { .. } => Self::Ignore,
            o if o.penalise() => Self::Reject,
            o if o.forward() => Self::Accept,
            _ => Self::Ignore,
        }
    }

    /// Its name in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Ignore => "ignore",
            Self::Reject => "reject",
        }
    }
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::sd::SdError;

    use super::*;

    #[test]
    fn verdicts() {
        use GossipVerdict::*;
        let cases = [
            (MergeOutcome::Inserted, false, Accept),
            (MergeOutcome::Replaced { old_seq: 1 }, false, Accept),
            (MergeOutcome::Duplicate, false, Ignore),
            (MergeOutcome::Stale { stored_seq: 3 }, true, Ignore),
            (MergeOutcome::CatalogueFull, false, Ignore),
            (MergeOutcome::Equivocation { replaced: true }, false, Ignore),
            (MergeOutcome::Equivocation { replaced: false }, true, Reject),
            (
                MergeOutcome::Rejected(SdError::SchemaVersion(9)),
                false,
                Reject,
            ),
            (
                MergeOutcome::Rejected(SdError::SchemaVersion(9)),
                true,
                Reject,
            ),
        ];
        for (outcome, subject, want) in cases {
            assert_eq!(GossipVerdict::of(&outcome, subject), want, "{outcome:?}");
        }
    }
}
