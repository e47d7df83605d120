//! Merge rules: order independence, no rollback, invalid records never change the store,
//! equivocation evidence, expiry and revocation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_directory::{
    catalogue::Catalogue,
    merge::MergeOutcome,
    store::{MemoryStore, RedbStore, Store},
};
use gaiamesh_protocol::{
    federation::{RevocationBody, RevocationList},
    identity::{Keypair, Signature},
    sd::{SCHEMA_VERSION, SdError, SignedSelfDescription},
    testing::{DAY_MS, NOW, TestFederation, document, key},
    time::UnixMillis,
};
use proptest::prelude::*;

fn fed() -> TestFederation {
    TestFederation::new(3, 2, true)
}

fn catalogue(f: &TestFederation) -> Catalogue<MemoryStore> {
    Catalogue::open(MemoryStore::new(), f.trust.clone(), 10_000).unwrap()
}

/// Records for 3 subjects, seqs 1..=3, and one equivocating twin at seq 2 for subject 0.
fn record_pool(f: &TestFederation) -> Vec<SignedSelfDescription> {
    let mut out = Vec::new();
    for s in 0..3u8 {
        for seq in 1..=3 {
            out.push(f.signed_sd(&key(s + 1), seq));
        }
    }
    let mut twin = f.sd(&key(1), 2);
    twin.document.services[0].name = Some("a different name".into());
    out.push(twin.sign(&key(1)).unwrap());
    out
}

fn snapshot(c: &Catalogue<MemoryStore>) -> Vec<(String, u64, [u8; 32])> {
    c.items().map(|(s, q, h)| (s.to_string(), q, h)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any delivery order (with duplicates) of the same records gives the same catalogue.
    #[test]
    fn delivery_order_does_not_matter(order in Just((0..10usize).collect::<Vec<_>>()).prop_shuffle(), dups in prop::collection::vec(0..10usize, 0..5)) {
        let f = fed();
        let pool = record_pool(&f);
        let mut reference = catalogue(&f);
        for r in &pool {
            reference.merge(r.clone(), None, NOW).unwrap();
        }
        let mut c = catalogue(&f);
        for i in order.iter().chain(dups.iter()) {
            c.merge(pool[*i].clone(), None, NOW).unwrap();
        }
        prop_assert_eq!(snapshot(&c), snapshot(&reference));
        // Every subject ends at its highest seq.
        prop_assert!(c.items().all(|(_, seq, _)| seq == 3));
    }

    /// A lower seq never replaces a higher one.
    #[test]
    fn lower_seq_never_replaces(high in 2u64..1000, low in 0u64..1000) {
        prop_assume!(low < high);
        let f = fed();
        let mut c = catalogue(&f);
        c.merge(f.signed_sd(&key(1), high), None, NOW).unwrap();
        let out = c.merge(f.signed_sd(&key(1), low), None, NOW).unwrap();
        prop_assert_eq!(out, MergeOutcome::Stale { stored_seq: high });
        prop_assert_eq!(c.items().next().unwrap().1, high);
    }

    /// Corrupted records never change the store.
    #[test]
    fn invalid_records_never_change_the_store(byte in 0usize..64, seq in 2u64..100) {
        let f = fed();
        let mut c = catalogue(&f);
        c.merge(f.signed_sd(&key(1), 1), None, NOW).unwrap();
        let before = snapshot(&c);
        let mut forged = f.signed_sd(&key(1), seq);
        let mut sig = *forged.signature.as_bytes();
        sig[byte] ^= 0x01;
        forged.signature = Signature::from_bytes(sig);
        let out = c.merge(forged, Some(key(9).public()), NOW).unwrap();
        prop_assert!(out.penalise());
        prop_assert_eq!(snapshot(&c), before);
    }
}

#[test]
fn outcomes_name_what_happened() {
    let f = fed();
    let mut c = catalogue(&f);
    let from = Some(key(50).public());
    assert_eq!(
        c.merge(f.signed_sd(&key(1), 5), from, NOW).unwrap(),
        MergeOutcome::Inserted
    );
    assert_eq!(
        c.merge(f.signed_sd(&key(1), 5), from, NOW).unwrap(),
        MergeOutcome::Duplicate
    );
    assert_eq!(
        c.merge(f.signed_sd(&key(1), 6), from, NOW).unwrap(),
        MergeOutcome::Replaced { old_seq: 5 }
    );
    let entry = c.get(&key(1).public()).unwrap().unwrap();
    assert_eq!((entry.received_at, entry.from), (NOW, from));
    assert_eq!(
        entry.attested,
        vec![("s3-eu-central".to_owned(), "C5".to_owned())]
    );
    // Wrong federation, expired, non-member.
    let other = TestFederation::with_seed(5, 3, 2, true);
    assert!(matches!(
        c.merge(other.signed_sd(&key(2), 1), from, NOW).unwrap(),
        MergeOutcome::Rejected(SdError::WrongFederation { .. })
    ));
    let late = UnixMillis(NOW.0 + 8 * DAY_MS);
    assert!(matches!(
        c.merge(f.signed_sd(&key(2), 1), from, late).unwrap(),
        MergeOutcome::Rejected(SdError::Expired { .. })
    ));
    let mut sd = f.sd(&key(3), 1);
    sd.membership = None;
    let out = c.merge(sd.sign(&key(3)).unwrap(), from, NOW).unwrap();
    assert!(matches!(out, MergeOutcome::Rejected(SdError::NotAMember { .. })) && out.penalise());
    assert_eq!(c.len(), 1);
}

#[test]
fn equivocation_keeps_the_smaller_hash_and_records_evidence() {
    let f = fed();
    let a = f.signed_sd(&key(1), 2);
    let mut twin = f.sd(&key(1), 2);
    twin.document.services[0].name = Some("twin".into());
    let b = twin.sign(&key(1)).unwrap();
    let (small, large) = if a.content_hash().unwrap() < b.content_hash().unwrap() {
        (a, b)
    } else {
        (b, a)
    };
    for (first, second) in [(&small, &large), (&large, &small)] {
        let mut c = catalogue(&f);
        c.merge(first.clone(), None, NOW).unwrap();
        let out = c.merge(second.clone(), Some(key(9).public()), NOW).unwrap();
        assert!(matches!(out, MergeOutcome::Equivocation { .. }) && out.penalise());
        assert_eq!(c.items().next().unwrap().2, small.content_hash().unwrap());
        let ev = c.evidence().unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            ev[0].conflicting.content_hash().unwrap(),
            large.content_hash().unwrap()
        );
        assert!(
            ev[0].conflicting.verify(NOW).is_ok(),
            "evidence is signed by the subject"
        );
    }
}

#[test]
fn sweep_removes_expired_and_revoked() {
    let mut f = fed();
    let mut c = catalogue(&f);
    c.merge(f.signed_sd(&key(1), 1), None, NOW).unwrap();
    c.merge(f.signed_sd(&key(2), 1), None, NOW).unwrap();
    let body = RevocationBody {
        schema_version: SCHEMA_VERSION,
        federation: f.trust.id(),
        version: 1,
        issued_at: NOW,
        revoked: vec![gaiamesh_protocol::federation::Revocation {
            peer: key(2).public(),
            reason: "gone".into(),
            revoked_at: NOW,
        }],
    };
    let keys: Vec<&Keypair> = f.authorities.iter().collect();
    let list = RevocationList::issue(body, &keys).unwrap();
    assert_eq!(c.apply_revocations(&list, NOW).unwrap(), 1);
    assert_eq!(c.len(), 1);
    // A revoked member's record is rejected from now on.
    assert!(matches!(
        c.merge(f.signed_sd(&key(2), 2), None, NOW).unwrap(),
        MergeOutcome::Rejected(SdError::Revoked { .. })
    ));
    f.trust.apply_revocations(&list).unwrap();
    assert_eq!(c.sweep(UnixMillis(NOW.0 + 7 * DAY_MS)).unwrap(), 1);
    assert!(c.is_empty());
}

#[test]
fn capacity_is_bounded() {
    let f = fed();
    let mut c = Catalogue::open(MemoryStore::new(), f.trust.clone(), 2).unwrap();
    let outs = c
        .merge_batch(
            (1..=3).map(|i| (f.signed_sd(&key(i), 1), None)).collect(),
            NOW,
        )
        .unwrap();
    assert_eq!(outs[2], MergeOutcome::CatalogueFull);
    assert_eq!(c.len(), 2);
    // Updates of known subjects still go in.
    assert_eq!(
        c.merge(f.signed_sd(&key(1), 2), None, NOW).unwrap(),
        MergeOutcome::Replaced { old_seq: 1 }
    );
}

#[test]
fn redb_store_survives_reopen_and_matches_memory() {
    let f = fed();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    {
        let mut c = Catalogue::open(RedbStore::open(&path).unwrap(), f.trust.clone(), 100).unwrap();
        let batch = (1..=5)
            .map(|i| (f.signed_sd(&key(i), u64::from(i)), Some(key(60).public())))
            .collect();
        c.merge_batch(batch, NOW).unwrap();
        let mut twin = f.sd(&key(1), 1);
        twin.document.participant.legal_name = "Nordwolke GmbH".into();
        twin.document.services.clear();
        c.merge(twin.sign(&key(1)).unwrap(), None, NOW).unwrap();
    }
    let c = Catalogue::open(RedbStore::open(&path).unwrap(), f.trust.clone(), 100).unwrap();
    assert_eq!(c.len(), 5);
    assert_eq!(c.store().len().unwrap(), 5);
    assert_eq!(c.evidence().unwrap().len(), 1);
    let e = c.get(&key(3).public()).unwrap().unwrap();
    assert_eq!((e.seq(), e.from), (3, Some(key(60).public())));
    assert_eq!(e.record, f.signed_sd(&key(3), 3));
    let _ = document();
}

/// A forged copy of subject 1's seq-1 record (signature of another key).
fn forged_old(f: &TestFederation) -> SignedSelfDescription {
    let mut r = f.signed_sd(&key(1), 1);
    r.signature = f.signed_sd(&key(2), 1).signature;
    r
}

/// An invalid record that an earlier record of the same batch makes stale is a stale copy,
/// as it would be in a batch of its own: how records are batched changes no outcome.
#[test]
fn batching_does_not_change_outcomes() {
    let f = fed();
    let batch = [f.signed_sd(&key(1), 2), forged_old(&f)];
    let mut together = catalogue(&f);
    let outs = together
        .merge_batch(batch.iter().map(|r| (r.clone(), None)).collect(), NOW)
        .unwrap();
    let mut apart = catalogue(&f);
    let one_by_one: Vec<_> = batch
        .iter()
        .map(|r| apart.merge(r.clone(), None, NOW).unwrap())
        .collect();
    assert_eq!(outs, one_by_one);
    assert_eq!(outs[1], MergeOutcome::Stale { stored_seq: 2 });
    // Alone, in an empty catalogue, the forgery is refused.
    let mut fresh = catalogue(&f);
    assert!(matches!(
        fresh.merge(forged_old(&f), None, NOW).unwrap(),
        MergeOutcome::Rejected(SdError::BadSignature(_))
    ));
}

/// The staged pipeline with checks on several threads decides exactly what `merge_batch`
/// decides on one, in input order, and leaves the same catalogue.
#[test]
fn staged_ingest_on_threads_matches_merge_batch() {
    use gaiamesh_directory::ingest::{check_all, check_threads};
    use gaiamesh_protocol::federation::VerifiedCache;
    let f = fed();
    let mut batch: Vec<SignedSelfDescription> = (0..80u8)
        .map(|i| f.signed_sd(&key(i + 1), u64::from(i % 3) + 1))
        .collect();
    batch.insert(17, forged_old(&f));
    batch.extend(record_pool(&f));
    let mut reference = catalogue(&f);
    let want = reference
        .merge_batch(batch.iter().map(|r| (r.clone(), None)).collect(), NOW)
        .unwrap();

    let mut c = catalogue(&f);
    let triaged = batch.iter().map(|r| c.triage(r.clone())).collect();
    let cache = VerifiedCache::new(1000);
    assert_eq!(
        check_threads(batch.len(), 3),
        3,
        "the checks run on three threads"
    );
    let staged = check_all(triaged, c.trust(), NOW, &cache, 3);
    assert!(!cache.is_empty());
    let mut plan = c
        .plan_merge(staged.into_iter().map(|s| (s, None)).collect(), NOW)
        .unwrap();
    assert!(plan.changes_anything());
    // Nothing is visible before the plan is applied.
    assert!(c.is_empty());
    let changes = plan.take_changes();
    let mut store = MemoryStore::new();
    store.write(changes).unwrap();
    let got = c.apply(plan);
    assert_eq!(got, want);
    assert_eq!(snapshot(&c), snapshot(&reference));
    assert!(
        got.iter().any(|o| matches!(o, MergeOutcome::Rejected(_))),
        "the forgery is refused"
    );
}
