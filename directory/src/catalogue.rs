//! The catalogue: a [`Store`] of entries, the merge rules in front of it, and in-memory facets
//! and indexes for queries. One owner writes; every batch is one store transaction.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, MutexGuard, PoisonError},
};

use gaiamesh_protocol::{
    federation::{FederationTrust, RevocationError, RevocationList, VerifiedCache},
    identity::PublicKey,
    sd::SignedSelfDescription,
    time::UnixMillis,
};

use crate::{
    columns::{self, Columns},
    entry::{Entry, Evidence},
    facets::{Facets, Level, Value},
    index::Index,
    ingest::{self, MergePlan, Staged, Triage},
    merge::{MergeOutcome, Version, decide, settled_without_verification},
    query::{self, Access, Expr, QueryPlan, Sort},
    store::{Change, Store, StoreError},
};

/// Most credentials and attestations remembered as verified (~100 bytes each).
pub const VERIFIED_CACHE_CAPACITY: usize = 1 << 20;

/// A node counts as alive when its last presence heartbeat is at most this old.
pub const ALIVE_WINDOW_MS: u64 = 30_000;

/// The catalogue over store `S`.
#[derive(Debug)]
pub struct Catalogue<S> {
    store: S,
    trust: FederationTrust,
    facets: BTreeMap<PublicKey, Facets>,
    /// The numeric fields of `facets` as columns, for full scans.
    columns: Columns,
    index: Index,
    /// Last presence heartbeat per subject. Behind its own lock so that a node can record
    /// heartbeats through a shared reference while a batch is being written.
    presence: Mutex<HashMap<PublicKey, UnixMillis>>,
    max_entries: usize,
    verified: VerifiedCache,
}

/// Sorting and limiting of query results.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueryOptions {
    /// Sort by this field (default: subject, then service order).
    pub sort: Option<Sort>,
    /// At most this many matches.
    pub limit: Option<usize>,
    /// Skip this many matches first (after sorting): a page starts here.
    pub offset: usize,
}

/// One (node, service) match.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Match {
    /// The node.
    pub subject: PublicKey,
    /// Its seq.
    pub seq: u64,
    /// The matching service's index in the document (`None` for a node without services).
    pub service_index: Option<usize>,
}

/// Result of a query.
#[derive(Clone, Debug)]
pub struct QueryOutput {
    /// The plan that ran.
    pub plan: QueryPlan,
    /// Matches after sort and limit.
    pub matches: Vec<Match>,
    /// Matches before the offset and limit.
    pub total: usize,
    /// Nodes examined.
    pub examined: usize,
}

impl<S: Store> Catalogue<S> {
    /// Opens a catalogue over `store`, rebuilding facets and indexes from its entries.
    pub fn open(store: S, trust: FederationTrust, max_entries: usize) -> Result<Self, StoreError> {
        let mut cat = Self {
            store,
            trust,
            facets: BTreeMap::new(),
            columns: Columns::default(),
            index: Index::default(),
            presence: Mutex::new(HashMap::new()),
            max_entries,
            verified: VerifiedCache::new(max_entries.min(VERIFIED_CACHE_CAPACITY)),
        };
        let mut all = Vec::new();
        cat.store.for_each(&mut |e| all.push(Facets::of(&e)))?;
        for f in all {
            cat.index.insert(&f);
            cat.columns.upsert(&f);
            cat.facets.insert(f.subject, f);
        }
        Ok(cat)
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The trust context records are checked against.
    pub fn trust(&self) -> &FederationTrust {
        &self.trust
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.facets.len()
    }

    /// Whether the catalogue is empty.
    pub fn is_empty(&self) -> bool {
        self.facets.is_empty()
    }

    /// The stored entry of `subject`.
    pub fn get(&self, subject: &PublicKey) -> Result<Option<Entry>, StoreError> {
        if !self.facets.contains_key(subject) {
            return Ok(None);
        }
        self.store.get(subject)
    }

    /// (subject, seq, hash) of every entry in subject order: the set reconciliation works on.
    pub fn items(&self) -> impl Iterator<Item = (PublicKey, u64, [u8; 32])> + '_ {
        self.facets.values().map(|f| (f.subject, f.seq, f.hash))
    }

    /// A reconciliation snapshot of the catalogue.
    pub fn reconcile_set(&self) -> crate::reconcile::ReconcileSet {
        crate::reconcile::ReconcileSet::new(
            self.items()
                .map(|(s, q, h)| crate::reconcile::Item::new(&s, q, &h))
                .collect(),
        )
    }

    /// Equivocation evidence recorded so far.
    pub fn evidence(&self) -> Result<Vec<Evidence>, StoreError> {
        self.store.evidence()
    }

    /// Merges one record received from `from` at `now`.
    pub fn merge(
        &mut self,
        record: SignedSelfDescription,
        from: Option<PublicKey>,
        now: UnixMillis,
    ) -> Result<MergeOutcome, StoreError> {
        Ok(self
            .merge_batch(vec![(record, from)], now)?
            .pop()
            .unwrap_or(MergeOutcome::Duplicate))
    }

    /// Merges a batch in one store transaction; returns one outcome per record, in order.
    /// Runs the stages of [`crate::ingest`] in a row on this thread.
    pub fn merge_batch(
        &mut self,
        batch: Vec<(SignedSelfDescription, Option<PublicKey>)>,
        now: UnixMillis,
    ) -> Result<Vec<MergeOutcome>, StoreError> {
        let mut staged = Vec::with_capacity(batch.len());
        for (record, from) in batch {
            staged.push((
                self.triage(record)
                    .check(&self.trust, now, Some(&self.verified)),
                from,
            ));
        }
        let mut plan = self.plan_merge(staged, now)?;
        self.store.write(plan.take_changes())?;
        Ok(self.apply(plan))
    }

    /// The stored version of `subject`.
    pub fn version(&self, subject: &PublicKey) -> Option<Version> {
        self.facets.get(subject).map(|f| Version {
            seq: f.seq,
            hash: f.hash,
        })
    }

    /// Ingest stage 1: hashes `record` and settles a stale or duplicate copy without checking
    /// its signatures.
    pub fn triage(&self, record: SignedSelfDescription) -> Triage {
        let hashed = match ingest::hash(record) {
            Ok(h) => h,
            Err(e) => return Triage::Settled(MergeOutcome::Rejected(e)),
        };
        let incoming = Version {
            seq: hashed.record.sd.seq,
            hash: hashed.hash,
        };
        match settled_without_verification(self.version(&hashed.record.sd.subject), incoming) {
            Some(outcome) => Triage::Settled(outcome),
            None => Triage::Check(Box::new(hashed)),
        }
    }

    /// Ingest stage 3: decides each staged record against the current versions (and the
    /// earlier records of the batch), and lists the store changes. Changes nothing.
    pub fn plan_merge(
        &self,
        batch: Vec<(Staged, Option<PublicKey>)>,
        now: UnixMillis,
    ) -> Result<MergePlan, StoreError> {
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut pending: BTreeMap<PublicKey, Entry> = BTreeMap::new();
        let mut changes = Vec::new();
        let mut new_subjects = 0usize;
        for (staged, from) in batch {
            let checked = match staged {
                Staged::Settled(o) => {
                    outcomes.push(o);
                    continue;
                }
                Staged::Refused {
                    subject,
                    version,
                    error,
                } => {
                    let stored = match pending.get(&subject) {
                        Some(e) => Some(Version {
                            seq: e.seq(),
                            hash: e.hash,
                        }),
                        None => self.version(&subject),
                    };
                    outcomes.push(
                        settled_without_verification(stored, version)
                            .unwrap_or(MergeOutcome::Rejected(error)),
                    );
                    continue;
                }
                Staged::Checked(c) => c,
            };
            let subject = checked.record.sd.subject;
            let incoming_version = Version {
                seq: checked.record.sd.seq,
                hash: checked.hash,
            };
            let stored_version = match pending.get(&subject) {
                Some(e) => Some(Version {
                    seq: e.seq(),
                    hash: e.hash,
                }),
                None => self.version(&subject),
            };
            let outcome = decide(stored_version, incoming_version);
            if !outcome.changed() && !matches!(outcome, MergeOutcome::Equivocation { .. }) {
                outcomes.push(outcome);
                continue;
            }
            let incoming = checked.into_entry(now, from);
            if let MergeOutcome::Equivocation { replaced } = outcome {
                let stored = match pending.get(&subject) {
                    Some(e) => Some(e.clone()),
                    None => self.store.get(&subject)?,
                };
                if let Some(stored) = stored {
                    let (kept, loser) = if replaced {
                        (&incoming, &stored)
                    } else {
                        (&stored, &incoming)
                    };
                    changes.push(Change::Evidence(Evidence {
                        subject,
                        seq: incoming.seq(),
                        kept: kept.hash,
                        conflicting: loser.record.clone(),
                        from,
                        seen_at: now,
                    }));
                }
            }
            if matches!(outcome, MergeOutcome::Inserted) {
                if self.facets.len() + new_subjects >= self.max_entries {
                    outcomes.push(MergeOutcome::CatalogueFull);
                    continue;
                }
                new_subjects += 1;
            }
            if outcome.changed() {
                pending.insert(subject, incoming);
            }
            outcomes.push(outcome);
        }
        let facets = pending.values().map(Facets::of).collect();
        changes.extend(pending.into_values().map(Change::Put));
        Ok(MergePlan {
            outcomes,
            changes,
            facets,
        })
    }

    /// Ingest stage 5: once the plan's changes are durable, the facets and indexes follow.
    /// Returns the outcomes.
    pub fn apply(&mut self, plan: MergePlan) -> Vec<MergeOutcome> {
        for f in plan.facets {
            self.replace_facets(f);
        }
        plan.outcomes
    }

    fn replace_facets(&mut self, f: Facets) {
        match self.facets.get(&f.subject) {
            Some(old) => self.index.replace(old, &f),
            None => self.index.insert(&f),
        }
        self.columns.upsert(&f);
        self.facets.insert(f.subject, f);
    }

    fn remove_subjects(&mut self, subjects: Vec<PublicKey>) -> Result<usize, StoreError> {
        let n = subjects.len();
        self.store
            .write(subjects.iter().copied().map(Change::Remove).collect())?;
        for s in subjects {
            if let Some(old) = self.facets.remove(&s) {
                self.index.remove(&old);
            }
            self.columns.remove(&s);
            self.presence().remove(&s);
        }
        Ok(n)
    }

    /// Removes expired entries and revoked members; returns how many were removed.
    pub fn sweep(&mut self, now: UnixMillis) -> Result<usize, StoreError> {
        let gone: Vec<_> = self
            .facets
            .values()
            .filter(|f| now >= f.expires_at || self.trust.revocation(&f.subject).is_some())
            .map(|f| f.subject)
            .collect();
        self.remove_subjects(gone)
    }

    /// Puts a newer revocation list in force and drops the revoked members' entries.
    pub fn apply_revocations(
        &mut self,
        list: &RevocationList,
        now: UnixMillis,
    ) -> Result<usize, RevocationOrStore> {
        self.trust.apply_revocations(list)?;
        Ok(self.sweep(now)?)
    }

    /// Records a presence heartbeat of a known subject.
    pub fn touch(&self, subject: &PublicKey, now: UnixMillis) {
        if self.facets.contains_key(subject) {
            self.presence().insert(*subject, now);
        }
    }

    /// The presence map. A plain map of timestamps cannot be left half-updated by a panic,
    /// so a poisoned lock is recovered from.
    fn presence(&self) -> MutexGuard<'_, HashMap<PublicKey, UnixMillis>> {
        self.presence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When `subject` was last seen.
    pub fn last_seen(&self, subject: &PublicKey) -> Option<UnixMillis> {
        self.presence().get(subject).copied()
    }

    fn alive(
        presence: &HashMap<PublicKey, UnixMillis>,
        subject: &PublicKey,
        now: UnixMillis,
    ) -> bool {
        presence
            .get(subject)
            .is_some_and(|t| now.since(*t) <= ALIVE_WINDOW_MS)
    }

    /// The plan the catalogue would use for `expr`.
    pub fn plan(&self, expr: &Expr) -> QueryPlan {
        query::plan(expr, self.facets.len(), |field, value| {
            self.index.count(field, value)
        })
    }

    /// Runs a query at time `now` (for `alive`).
    pub fn query(&self, expr: &Expr, opts: QueryOptions, now: UnixMillis) -> QueryOutput {
        let plan = self.plan(expr);
        // A full scan over numeric fields only, in subject order, reads the columns.
        if matches!(plan.access, Access::FullScan { .. })
            && opts.sort.is_none()
            && let Some(compiled) = columns::compile(expr)
        {
            let matches = self.columns.scan(&compiled);
            return Self::page(plan, matches, opts, self.facets.len());
        }
        self.query_rows(expr, plan, opts, now)
    }

    fn page(
        plan: QueryPlan,
        matches: Vec<Match>,
        opts: QueryOptions,
        examined: usize,
    ) -> QueryOutput {
        let total = matches.len();
        let matches = matches
            .into_iter()
            .skip(opts.offset)
            .take(opts.limit.unwrap_or(usize::MAX))
            .collect();
        QueryOutput {
            plan,
            matches,
            total,
            examined,
        }
    }

    /// The row path: every candidate entry's values, row by row.
    fn query_rows(
        &self,
        expr: &Expr,
        plan: QueryPlan,
        opts: QueryOptions,
        now: UnixMillis,
    ) -> QueryOutput {
        let candidates: Vec<&Facets> = match &plan.access {
            Access::Index { driver, intersect } => {
                // The intersected postings are looked up once, not once per subject.
                let postings: Vec<Vec<&std::collections::HashSet<PublicKey>>> = intersect
                    .iter()
                    .map(|l| {
                        l.values
                            .iter()
                            .filter_map(|v| self.index.lookup(l.field, v))
                            .collect()
                    })
                    .collect();
                let in_all = |s: &PublicKey| {
                    postings
                        .iter()
                        .all(|any_of| any_of.iter().any(|set| set.contains(s)))
                };
                let mut subjects: Vec<PublicKey> = Vec::new();
                for v in &driver.values {
                    if let Some(set) = self.index.lookup(driver.field, v) {
                        subjects.extend(set.iter().filter(|s| in_all(s)));
                    }
                }
                // Postings are unordered: subject order, as a full scan gives.
                subjects.sort_unstable();
                if driver.values.len() > 1 {
                    subjects.dedup();
                }
                subjects.iter().filter_map(|s| self.facets.get(s)).collect()
            }
            Access::FullScan { .. } => self.facets.values().collect(),
        };
        let examined = candidates.len();
        let mut rows: Vec<(Match, Option<&Value>)> = Vec::new();
        // Presence is looked up only for queries that ask about it.
        let presence = expr.mentions("alive").then(|| self.presence());
        for f in candidates {
            let alive = presence
                .as_ref()
                .is_some_and(|p| Self::alive(p, &f.subject, now));
            if f.has_no_services() {
                if query::matches(expr, f.node(), None, alive) {
                    rows.push((
                        Match {
                            subject: f.subject,
                            seq: f.seq,
                            service_index: None,
                        },
                        sort_value(opts.sort, f, None),
                    ));
                }
                continue;
            }
            for (i, svc) in f.services().enumerate() {
                if query::matches(expr, f.node(), Some(svc), alive) {
                    let m = Match {
                        subject: f.subject,
                        seq: f.seq,
                        service_index: Some(i),
                    };
                    rows.push((m, sort_value(opts.sort, f, Some(svc))));
                }
            }
        }
        if let Some(sort) = opts.sort {
            rows.sort_by(|a, b| {
                let ord = cmp_values(a.1, b.1);
                let ord = if sort.desc { ord.reverse() } else { ord };
                // Missing values always last, whatever the direction.
                let missing = |v: Option<&Value>| v.is_none_or(|v| *v == Value::Missing);
                missing(a.1).cmp(&missing(b.1)).then(ord)
            });
        }
        Self::page(
            plan,
            rows.into_iter().map(|(m, _)| m).collect(),
            opts,
            examined,
        )
    }
}

fn sort_value<'a>(
    sort: Option<Sort>,
    f: &'a Facets,
    svc: Option<&'a [Value]>,
) -> Option<&'a Value> {
    let s = sort?;
    match s.field.level {
        Level::Node => f.node().get(s.field.slot),
        Level::Service => svc.and_then(|v| v.get(s.field.slot)),
    }
}

fn cmp_values(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let key = |v: Option<&Value>| -> (u8, f64, String) {
        match v {
            Some(Value::Num(n)) => (0, *n, String::new()),
            Some(Value::Str(s)) => (1, 0.0, s.to_lowercase()),
            Some(Value::List(xs)) => (
                1,
                0.0,
                xs.first().map(|s| s.to_lowercase()).unwrap_or_default(),
            ),
            Some(Value::Bool(b)) => (0, f64::from(u8::from(*b)), String::new()),
            Some(Value::Missing) | None => (2, 0.0, String::new()),
        }
    };
    let (ka, kb) = (key(a), key(b));
    ka.0.cmp(&kb.0)
        .then(ka.1.partial_cmp(&kb.1).unwrap_or(Ordering::Equal))
        .then(ka.2.cmp(&kb.2))
}

/// Failure of [`Catalogue::apply_revocations`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationOrStore {
    /// The list was refused.
    #[error(transparent)]
    Revocation(#[from] RevocationError),
    /// The store failed while removing entries.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use gaiamesh_protocol::testing::{
        NOW, TestFederation, example_documents, generated_document, generated_key,
    };

    use super::*;
    use crate::store::MemoryStore;

    /// Numeric queries: node and service fields, missing values, `!=`, `in`, `not`, `or`.
    const NUMERIC: &[&str] = &[
        "node.energy.renewable_pct >= 50 and service.price.amount < 0.02",
        "service.price.amount < 0.03",
        "node.energy.pue <= 1.2 or service.price.amount >= 0.04",
        "not node.energy.renewable_pct < 30",
        "node.hardware.gpu_count != 0",
        "node.hardware.gpu_count = 0",
        "node.realtime.max_latency_ms in [5, 10, 20]",
        "node.energy.water_usage_l_per_kwh > 0.1 or not service.price.amount > 0.01",
        "seq = 2",
        "service.price.amount != 0.018",
    ];

    fn both_paths_agree(c: &Catalogue<MemoryStore>) {
        let mut nonempty = 0;
        for q in NUMERIC {
            let expr = query::parse(q).unwrap();
            assert!(columns::compile(&expr).is_some(), "{q} is numeric");
            let plan = c.plan(&expr);
            assert!(matches!(plan.access, Access::FullScan { .. }), "{q}");
            for opts in [
                QueryOptions::default(),
                QueryOptions {
                    offset: 3,
                    limit: Some(7),
                    sort: None,
                },
            ] {
                let cols = c.query(&expr, opts, NOW);
                let rows = c.query_rows(&expr, c.plan(&expr), opts, NOW);
                assert_eq!(cols.matches, rows.matches, "{q}");
                assert_eq!(
                    (cols.total, cols.examined),
                    (rows.total, rows.examined),
                    "{q}"
                );
                nonempty += usize::from(opts.limit.is_none() && cols.total > 0);
            }
        }
        assert!(nonempty >= 8, "most queries match something: {nonempty}");
    }

    #[test]
    fn the_columns_answer_numeric_scans_as_the_rows_do() {
        let f = TestFederation::new(3, 2, true);
        let examples = example_documents();
        let mut c = Catalogue::open(MemoryStore::new(), f.trust.clone(), 10_000).unwrap();
        let doc = |i: usize| {
            let mut d = generated_document(&examples, i);
            // Some nodes without services, some without energy figures.
            if i.is_multiple_of(7) {
                d.services.clear();
            }
            if i.is_multiple_of(5) {
                d.node.energy = None;
            }
            d
        };
        let batch = (0..300)
            .map(|i| (f.sign_document(&generated_key(i), 1, doc(i)), None))
            .collect();
        c.merge_batch(batch, NOW).unwrap();
        both_paths_agree(&c);
        // New versions with other services (slots freed and reused), then removals.
        let batch = (0..300)
            .step_by(3)
            .map(|i| (f.sign_document(&generated_key(i), 2, doc(i + 1)), None))
            .collect();
        c.merge_batch(batch, NOW).unwrap();
        both_paths_agree(&c);
        let gone: Vec<PublicKey> = (0..300)
            .step_by(4)
            .map(|i| generated_key(i).public())
            .collect();
        c.remove_subjects(gone).unwrap();
        both_paths_agree(&c);
        let expr = query::parse("service.price.amount < 1000").unwrap();
        assert!(c.query(&expr, QueryOptions::default(), NOW).total > 0);
    }

    #[test]
    fn indexed_queries_answer_as_a_full_scan_does() {
        let f = TestFederation::new(3, 2, true);
        let examples = example_documents();
        let mut c = Catalogue::open(MemoryStore::new(), f.trust.clone(), 10_000).unwrap();
        let batch = (0..600)
            .map(|i| {
                let d = generated_document(&examples, i);
                (f.sign_document(&generated_key(i), 1, d), None)
            })
            .collect();
        c.merge_batch(batch, NOW).unwrap();
        for q in [
            "node.location.subdivision = DE-3 and service.kind = storage.object",
            "node.location.country in [DE, FR] and service.kind = storage.object and service.price.amount < 0.03",
            "service.kind = storage.object",
            "node.location.country = FR and node.energy.renewable_pct >= 40",
        ] {
            let expr = query::parse(q).unwrap();
            let plan = c.plan(&expr);
            assert!(matches!(plan.access, Access::Index { .. }), "{q}: {plan:?}");
            let indexed = c.query(&expr, QueryOptions::default(), NOW);
            let scan = QueryPlan {
                access: Access::FullScan { entries: c.len() },
                filter: expr.clone(),
            };
            let scanned = c.query_rows(&expr, scan, QueryOptions::default(), NOW);
            assert!(indexed.total > 0, "{q}");
            assert_eq!(
                indexed.matches, scanned.matches,
                "{q}: same matches, same order"
            );
        }
    }

    #[test]
    fn other_queries_take_the_row_path() {
        for q in [
            "node.location.country = de",
            "alive = true",
            "service.price.amount < 0.02 and service.kind = storage.object",
        ] {
            assert!(columns::compile(&query::parse(q).unwrap()).is_none(), "{q}");
        }
    }
}
