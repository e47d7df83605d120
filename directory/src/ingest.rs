//! The ingest pipeline in stages, so that a node can run each where it belongs:
//!
//! 1. [`Catalogue::triage`](crate::catalogue::Catalogue::triage) (needs the current
//!    versions, cheap): hash the record and settle stale or duplicate copies, which change
//!    nothing whether or not they are valid, without checking a signature;
//! 2. [`Hashed::check`] (CPU-bound, needs only the federation's trust): signatures,
//!    membership, revocation, jurisdictions, attestations. Independent per record, so
//!    [`check_all`] spreads a batch over threads;
//! 3. [`Catalogue::plan_merge`](crate::catalogue::Catalogue::plan_merge): the merge decisions against the
//!    current versions, the store changes and the new facets;
//! 4. the store write (one transaction: the batch is durable or absent);
//! 5. [`Catalogue::apply`](crate::catalogue::Catalogue::apply): the in-memory facets and
//!    indexes follow the store.
//!
//! [`Catalogue::merge_batch`](crate::catalogue::Catalogue::merge_batch) runs all five in a row;
//! the daemon's storage writer runs stage 2 on every core and stage 4 outside the catalogue's
//! lock.

use gaiamesh_protocol::{
    federation::{FederationTrust, VerifiedCache},
    identity::PublicKey,
    sd::{Canonical, SdError, SignedSelfDescription},
    time::UnixMillis,
};

use crate::{
    entry::Entry,
    facets::Facets,
    merge::{MergeOutcome, Version},
    store::Change,
};

/// A record with its content hash, waiting for its signatures to be checked.
#[derive(Clone, Debug)]
pub struct Hashed {
    pub(crate) record: SignedSelfDescription,
    pub(crate) hash: [u8; 32],
    /// The encoding the hash was taken of; its signed part is checked in stage 2.
    canonical: Canonical,
}

/// A record that passed every check of the federation at the time given, with what the check
/// found. Only [`Hashed::check`] makes one.
#[derive(Clone, Debug)]
pub struct Checked {
    pub(crate) record: SignedSelfDescription,
    pub(crate) hash: [u8; 32],
    pub(crate) attested: Vec<(String, String)>,
}

/// Where a record stands after [`Catalogue::triage`](crate::catalogue::Catalogue::triage).
#[derive(Clone, Debug)]
pub enum Triage {
    /// Decided without checking signatures (stale or duplicate copy, or undecodable).
    Settled(MergeOutcome),
    /// Needs its signatures checked before it can be merged.
    Check(Box<Hashed>),
}

/// A record ready for [`Catalogue::plan_merge`](crate::catalogue::Catalogue::plan_merge).
#[derive(Clone, Debug)]
pub enum Staged {
    /// Already decided.
    Settled(MergeOutcome),
    /// Failed the check. Still merged by version: an earlier record of the same batch may
    /// make it a stale copy, which is not the sender's fault (the outcome must not depend on
    /// how records were batched).
    Refused {
        /// The record's subject.
        subject: PublicKey,
        /// Its version.
        version: Version,
        /// Why it failed.
        error: SdError,
    },
    /// Checked and valid.
    Checked(Box<Checked>),
}

impl Hashed {
    /// The record.
    pub fn record(&self) -> &SignedSelfDescription {
        &self.record
    }

    /// Stage 2: the federation's acceptance check at `now`. `cache` remembers credentials
    /// and attestations already verified, so a re-published record costs one signature check.
    pub fn check(
        self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Staged {
        let subject = self.record.sd.subject;
        let version = Version {
            seq: self.record.sd.seq,
            hash: self.hash,
        };
        match self
            .record
            .check_canonical(&self.canonical, trust, now, cache)
        {
            Ok(report) => Staged::Checked(Box::new(Checked {
                attested: report
                    .certifications
                    .iter()
                    .filter(|c| c.is_attested())
                    .map(|c| (c.service.clone(), c.scheme.clone()))
                    .collect(),
                record: self.record,
                hash: self.hash,
            })),
            Err(error) => Staged::Refused {
                subject,
                version,
                error,
            },
        }
    }
}

impl Triage {
    /// Finishes stage 2 for a settled record, or runs it.
    pub fn check(
        self,
        trust: &FederationTrust,
        now: UnixMillis,
        cache: Option<&VerifiedCache>,
    ) -> Staged {
        match self {
            Triage::Settled(o) => Staged::Settled(o),
            Triage::Check(h) => h.check(trust, now, cache),
        }
    }
}

/// How many threads [`check_all`] uses for `to_check` records with up to `max_threads`.
pub fn check_threads(to_check: usize, max_threads: usize) -> usize {
    /// Below this many records per thread, a thread costs more than it saves.
    const MIN_PER_THREAD: usize = 16;
    max_threads.min(to_check / MIN_PER_THREAD).max(1)
}

/// Stage 2 for a whole batch on up to `threads` threads ([`check_threads`]), sharing `cache`.
/// Results are in input order. With one thread it runs on the calling thread.
pub fn check_all(
    batch: Vec<Triage>,
    trust: &FederationTrust,
    now: UnixMillis,
    cache: &VerifiedCache,
    threads: usize,
) -> Vec<Staged> {
    let to_check = batch
        .iter()
        .filter(|t| matches!(t, Triage::Check(_)))
        .count();
    let threads = check_threads(to_check, threads);
    if threads <= 1 {
        return batch
            .into_iter()
            .map(|t| t.check(trust, now, Some(cache)))
            .collect();
    }
    let chunk = batch.len().div_ceil(threads);
    let mut chunks: Vec<Vec<Triage>> = Vec::with_capacity(threads);
    let mut rest = batch.into_iter();
    for _ in 0..threads {
        chunks.push(rest.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|part| {
                let work = move || {
                    part.into_iter()
                        .map(|t| t.check(trust, now, Some(cache)))
                        .collect::<Vec<_>>()
                };
                std::thread::Builder::new()
                    .name("gaiamesh-check".into())
                    .spawn_scoped(s, work)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.map(|h| h.join()) {
                Ok(Ok(v)) => v,
                // A panicking check is a bug; re-raise it on the caller's thread.
                Ok(Err(p)) => std::panic::resume_unwind(p),
                // As `Scope::spawn` does when the OS refuses a thread.
                Err(e) => panic!("cannot start a check thread: {e}"),
            })
            .collect()
    })
}

/// Stage 3's output: the decisions, the store changes to make durable, and the facets to
/// apply once they are.
#[derive(Debug, Default)]
pub struct MergePlan {
    /// One outcome per record, in input order.
    pub outcomes: Vec<MergeOutcome>,
    pub(crate) changes: Vec<Change>,
    pub(crate) facets: Vec<Facets>,
}

impl MergePlan {
    /// The store changes (stage 4), leaving the plan ready for `apply`.
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Whether the plan changes the catalogue's entries.
    pub fn changes_anything(&self) -> bool {
        !self.facets.is_empty()
    }
}

impl Checked {
    pub(crate) fn into_entry(self, now: UnixMillis, from: Option<PublicKey>) -> Entry {
        Entry::with_hash(self.record, self.hash, now, from, self.attested)
    }

    /// The record.
    pub fn record(&self) -> &SignedSelfDescription {
        &self.record
    }
}

/// Stage 1 without a catalogue: hashing alone.
pub(crate) fn hash(record: SignedSelfDescription) -> Result<Hashed, SdError> {
    let canonical = record.canonical()?;
    Ok(Hashed {
        hash: canonical.content_hash(),
        record,
        canonical,
    })
}
