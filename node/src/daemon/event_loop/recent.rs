//! The last directory updates this node stored (`GET /api/v1/updates`): what changed, from
//! whom, when — the dashboard's "last updates" and a provider's version history as this
//! node saw it. Bounded: the oldest update goes when a new one comes; nothing is persisted
//! (the catalogue keeps only each subject's newest version, docs/protocol.md).

use std::{cell::RefCell, collections::VecDeque};

use serde::Serialize;

/// Updates kept.
pub(crate) const CAPACITY: usize = 1024;

/// One stored version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub(crate) struct Update {
    pub(crate) subject: String,
    pub(crate) seq: u64,
    /// The merge outcome (`new`, `newer`, `equivocation`, …).
    pub(crate) outcome: &'static str,
    /// The peer it came from (`None`: this node's own).
    pub(crate) from: Option<String>,
    pub(crate) received_at_ms: u64,
}

/// The answer: newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UpdatesView {
    pub(crate) updates: Vec<Update>,
    /// Updates this node keeps in all (older ones are gone).
    pub(crate) capacity: usize,
}

/// A ring of the last [`CAPACITY`] updates. Interior mutability because events are emitted
/// from `&self` methods of the event loop, which owns this alone.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    ring: RefCell<VecDeque<Update>>,
}

impl Recent {
    /// Records `u`, dropping the oldest update when full.
    pub(crate) fn push(&self, u: Update) {
        let mut ring = self.ring.borrow_mut();
        if ring.len() == CAPACITY {
            ring.pop_front();
        }
        ring.push_back(u);
    }

    /// At most `limit` updates, newest first, of `subject` only when given.
    pub(crate) fn view(&self, subject: Option<&str>, limit: usize) -> UpdatesView {
        let ring = self.ring.borrow();
        let updates = ring
            .iter()
            .rev()
            .filter(|u| subject.is_none_or(|s| u.subject == s))
            .take(limit)
            .cloned()
            .collect();
        UpdatesView {
            updates,
            capacity: CAPACITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(subject: &str, seq: u64) -> Update {
        Update {
            subject: subject.into(),
            seq,
            outcome: "newer",
            from: None,
            received_at_ms: seq,
        }
    }

    #[test]
    fn newest_first_filtered_by_subject_and_bounded() {
        let r = Recent::default();
        for seq in 0..(CAPACITY as u64 + 10) {
            r.push(update(if seq % 2 == 0 { "a" } else { "b" }, seq));
        }
        let all = r.view(None, usize::MAX);
        assert_eq!(all.updates.len(), CAPACITY);
        assert_eq!(all.updates[0].seq, CAPACITY as u64 + 9);
        assert_eq!(
            all.updates.last().unwrap().seq,
            10,
            "the oldest ten are gone"
        );
        let a = r.view(Some("a"), 3);
        let seqs: Vec<u64> = a.updates.iter().map(|u| u.seq).collect();
        assert_eq!(
            seqs,
            [
                CAPACITY as u64 + 8,
                CAPACITY as u64 + 6,
                CAPACITY as u64 + 4
            ]
        );
        assert!(r.view(Some("c"), 10).updates.is_empty());
    }
}
