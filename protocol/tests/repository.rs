//! The repository client against the TUF attacks: rollback, freeze, mix-and-match,
//! k − 1 signatures, duplicate keys, foreign federations, root rotation and fast-forward
//! recovery, oversize metadata and path traversal in target names.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_protocol::{
    federation::Genesis,
    identity::Keypair,
    repository::{
        BlobHash, RepoError, Role, TrustedRepository,
        metadata::{Bundle, Category, RoleKeys, Root, Signed, TargetName, Targets, Timestamp},
        publish::{self, DAY_MS},
    },
    testing::{NOW, genesis_with_repository_keys, key},
};

struct Publisher {
    genesis: Genesis,
    keys: Vec<Keypair>,
    repo: TrustedRepository,
}

impl Publisher {
    /// A repository of 3 root keys, threshold 2, with root v1 signed by keys 0 and 1.
    fn new() -> Self {
        let (genesis, keys) = genesis_with_repository_keys(3, 2);
        let mut repo = TrustedRepository::new(&genesis);
        let root =
            publish::initial_root(&genesis, NOW, 365 * DAY_MS, &[&keys[0], &keys[1]]).unwrap();
        repo.update_root(root).unwrap();
        Self {
            genesis,
            keys,
            repo,
        }
    }

    fn signers(&self) -> Vec<&Keypair> {
        vec![&self.keys[0], &self.keys[1]]
    }

    /// Releases `name` with `content`; the publisher trusts its own release.
    fn release(&mut self, name: &str, content: &[u8]) -> Bundle {
        let info = publish::target_info(content, Category::Mandatory, None);
        let bundle = publish::release(
            &self.repo,
            &[(name.parse().unwrap(), info)],
            NOW,
            30 * DAY_MS,
            &self.signers(),
        )
        .unwrap();
        self.repo.apply(&bundle, NOW).unwrap();
        bundle
    }

    fn client(&self) -> TrustedRepository {
        TrustedRepository::new(&self.genesis)
    }
}

#[test]
fn a_release_is_trusted_with_every_field() {
    let mut p = Publisher::new();
    let bundle = p.release("identity/oidc-bridge@1.0.0", b"v1 bytes");
    let mut c = p.client();
    let applied = c.apply(&bundle, NOW).unwrap();
    assert_eq!(applied.roots, vec![1]);
    assert_eq!(
        (applied.timestamp, applied.snapshot, applied.targets),
        (Some(1), Some(1), Some(1))
    );
    let t = c.targets(NOW).unwrap();
    let name: TargetName = "identity/oidc-bridge@1.0.0".parse().unwrap();
    let info = &t.targets[&name];
    assert_eq!(info.length, 8);
    assert_eq!(info.custom.blake3, BlobHash::of(b"v1 bytes"));
    assert_eq!(info.custom.category, Category::Mandatory);
    // Applying the same bundle again changes nothing.
    assert!(!c.apply(&bundle, NOW).unwrap().changed());
    // A second release keeps the first target and adds the new one.
    let b2 = p.release("identity/oidc-bridge@1.1.0", b"v2");
    c.apply(&b2, NOW).unwrap();
    let t = c.targets(NOW).unwrap();
    assert_eq!(t.targets.len(), 2);
    assert_eq!(
        t.latest("identity/oidc-bridge").unwrap().0.version(),
        "1.1.0"
    );
}

#[test]
fn rollback_to_an_older_release_is_refused() {
    let mut p = Publisher::new();
    let old = p.release("certs/eu-trust-list@1", b"old");
    let new = p.release("certs/eu-trust-list@2", b"new");
    let mut c = p.client();
    c.apply(&new, NOW).unwrap();
    let err = c.apply(&old, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Rollback {
                role: Role::Timestamp,
                trusted: 2,
                got: 1
            }
        ),
        "{err}"
    );
    // Nothing trusted changed.
    assert_eq!(c.targets(NOW).unwrap().version, 2);
}

#[test]
fn expired_metadata_freezes_the_repository() {
    let mut p = Publisher::new();
    let bundle = p.release("a@1", b"x");
    let mut c = p.client();
    c.apply(&bundle, NOW).unwrap();
    let later = NOW.plus_ms(31 * DAY_MS);
    let err = c.targets(later).unwrap_err();
    assert!(matches!(err, RepoError::Expired { .. }), "{err}");
    // A node that first sees the bundle after expiry refuses it.
    let mut late = p.client();
    let err = late.apply(&bundle, later).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Expired {
                role: Role::Timestamp,
                ..
            }
        ),
        "{err}"
    );
    // A refreshed timestamp does not thaw it: the snapshot and targets expired too.
    let refreshed = publish::refresh_timestamp(&p.repo, later, DAY_MS, &p.signers()).unwrap();
    p.repo.apply(&refreshed, later).unwrap();
    c.apply(&refreshed, later).unwrap();
    assert_eq!(c.timestamp().unwrap().body().version, 2);
    let err = c.targets(later).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Expired {
                role: Role::Snapshot,
                ..
            }
        ),
        "{err}"
    );
    // A new release does.
    let bundle = publish::release(&p.repo, &[], later, DAY_MS, &p.signers()).unwrap();
    c.apply(&bundle, later).unwrap();
    assert!(c.targets(later).is_ok());
}

#[test]
fn mix_and_match_of_snapshot_and_targets_is_refused() {
    let mut p = Publisher::new();
    let b1 = p.release("a@1", b"one");
    let b2 = p.release("a@2", b"two");
    // The new timestamp with the old snapshot: hash mismatch.
    let mixed = Bundle {
        roots: b2.roots.clone(),
        timestamp: b2.timestamp.clone(),
        snapshot: b1.snapshot.clone(),
        targets: b1.targets.clone(),
    };
    let mut c = p.client();
    let err = c.apply(&mixed, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Mismatch {
                role: Role::Snapshot,
                by: Role::Timestamp,
                ..
            }
        ),
        "{err}"
    );
    // The right snapshot with the old targets.
    let mixed = Bundle {
        targets: b1.targets.clone(),
        ..b2.clone()
    };
    let mut c = p.client();
    let err = c.apply(&mixed, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Mismatch {
                role: Role::Targets,
                by: Role::Snapshot,
                ..
            }
        ),
        "{err}"
    );
    // What was accepted before the refusal stays: timestamp and snapshot v2, no targets.
    assert_eq!(c.snapshot().unwrap().body().version, 2);
    assert!(c.targets(NOW).is_err());
    c.apply(&b2, NOW).unwrap();
    assert_eq!(c.targets(NOW).unwrap().version, 2);
}

#[test]
fn k_minus_one_signatures_and_duplicate_signers_are_not_enough() {
    let p = Publisher::new();
    let info = publish::target_info(b"x", Category::Optional, None);
    let one = publish::release(
        &p.repo,
        &[("a@1".parse().unwrap(), info.clone())],
        NOW,
        DAY_MS,
        &[&p.keys[0]],
    )
    .unwrap();
    let err = p.client().apply(&one, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Signatures {
                role: Role::Timestamp,
                ..
            }
        ),
        "{err}"
    );
    // The same key twice counts once.
    let dup = publish::release(
        &p.repo,
        &[("a@1".parse().unwrap(), info)],
        NOW,
        DAY_MS,
        &[&p.keys[0], &p.keys[0]],
    )
    .unwrap();
    let err = p.client().apply(&dup, NOW).unwrap_err();
    assert!(err.to_string().contains("1 duplicate"), "{err}");
    // Root v1 with one genesis key is refused too.
    let root = publish::initial_root(&p.genesis, NOW, DAY_MS, &[&p.keys[2]]).unwrap();
    let err = p.client().update_root(root).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Signatures {
                role: Role::Root,
                version: 1,
                ..
            }
        ),
        "{err}"
    );
    // Keys outside the genesis count for nothing.
    let outsider = key(99);
    let root = publish::initial_root(&p.genesis, NOW, DAY_MS, &[&p.keys[0], &outsider]).unwrap();
    assert!(p.client().update_root(root).is_err());
}

#[test]
fn a_root_listing_one_key_twice_is_refused() {
    let p = Publisher::new();
    let k = p.keys[0].public();
    let body = Root {
        federation: p.genesis.id().unwrap(),
        version: 2,
        expires: NOW.plus_ms(DAY_MS),
        root: RoleKeys {
            keys: vec![k, k],
            threshold: 2,
        },
        targets: RoleKeys {
            keys: vec![k],
            threshold: 1,
        },
        snapshot: RoleKeys {
            keys: vec![k],
            threshold: 1,
        },
        timestamp: RoleKeys {
            keys: vec![k],
            threshold: 1,
        },
    };
    let err = Signed::sign(body, &[&p.keys[0]]).unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");
}

#[test]
fn root_rotation_and_fast_forward_recovery() {
    let mut p = Publisher::new();
    let b1 = p.release("a@1", b"one");
    let mut c = p.client();
    c.apply(&b1, NOW).unwrap();

    // The timestamp key is compromised: an attacker pushes its version to 1000.
    let ts = c.timestamp().unwrap().body().clone();
    let evil = Signed::sign(
        Timestamp {
            version: 1000,
            ..ts
        },
        &p.signers(),
    )
    .unwrap();
    c.update_timestamp(&evil.bytes, NOW).unwrap();
    assert_eq!(c.timestamp().unwrap().body().version, 1000);

    // The federation rotates to new keys 5 and 6 for every role (root v2, signed by 2 old
    // and 2 new keys).
    let new_keys = [key(5), key(6)];
    let roles = RoleKeys {
        keys: new_keys.iter().map(Keypair::public).collect(),
        threshold: 2,
    };
    let root1 = p.repo.root().unwrap().body().clone();
    let only_new = publish::rotate_root(
        &root1,
        [roles.clone(), roles.clone(), roles.clone(), roles.clone()],
        NOW,
        365 * DAY_MS,
        &[&new_keys[0], &new_keys[1]],
    )
    .unwrap();
    assert!(
        matches!(
            c.clone().update_root(only_new).unwrap_err(),
            RepoError::Signatures {
                role: Role::Root,
                version: 2,
                ..
            }
        ),
        "a rotation must be signed by the old root keys too"
    );
    let root2 = publish::rotate_root(
        &root1,
        [roles.clone(), roles.clone(), roles.clone(), roles],
        NOW,
        365 * DAY_MS,
        &[&p.keys[0], &p.keys[1], &new_keys[0], &new_keys[1]],
    )
    .unwrap();
    p.repo.update_root(root2).unwrap();
    p.keys = vec![key(5), key(6)];
    // The publisher's trusted timestamp/snapshot/targets were discarded by the rotation, so
    // its next release starts at version 1 again: fast-forward recovery.
    assert!(p.repo.timestamp().is_none() && p.repo.trusted_targets().is_none());
    let b2 = p.release("a@2", b"two");
    let applied = c.apply(&b2, NOW).unwrap();
    assert_eq!(applied.roots, vec![2]);
    assert_eq!(c.timestamp().unwrap().body().version, 1);
    assert_eq!(c.targets(NOW).unwrap().targets.len(), 1);

    // A new client walks root v1 → v2 from the bundle.
    let mut fresh = p.client();
    fresh.apply(&b2, NOW).unwrap();
    assert_eq!(fresh.root_version(), 2);
    // Old keys no longer sign anything.
    let old = Publisher::new();
    let forged = publish::release(
        &fresh,
        &[(
            "a@3".parse().unwrap(),
            publish::target_info(b"evil", Category::Mandatory, None),
        )],
        NOW,
        DAY_MS,
        &old.signers(),
    )
    .unwrap();
    let err = fresh.apply(&forged, NOW).unwrap_err();
    assert!(matches!(err, RepoError::Signatures { .. }), "{err}");
}

#[test]
fn roots_are_walked_one_version_at_a_time() {
    let p = Publisher::new();
    let root1 = p.repo.root().unwrap().body().clone();
    let keys = RoleKeys::from(&p.genesis.repository);
    let root3 = Signed::sign(
        Root {
            version: 3,
            ..root1.clone()
        },
        &p.signers(),
    )
    .unwrap();
    let mut c = p.client();
    c.update_root(p.repo.root().unwrap().clone()).unwrap();
    let err = c.update_root(root3).unwrap_err();
    assert!(
        matches!(err, RepoError::RootVersion { trusted: 1, got: 3 }),
        "{err}"
    );
    let root2 = publish::rotate_root(
        &root1,
        [keys.clone(), keys.clone(), keys.clone(), keys],
        NOW,
        DAY_MS,
        &p.signers(),
    )
    .unwrap();
    c.update_root(root2).unwrap();
    assert_eq!(c.root_version(), 2);
}

#[test]
fn metadata_of_another_federation_is_refused() {
    let mut a = Publisher::new();
    let bundle = a.release("a@1", b"x");
    let (mut other, _) = genesis_with_repository_keys(3, 2);
    other.name = "another federation".into();
    let mut c = TrustedRepository::new(&other);
    let err = c.apply(&bundle, NOW).unwrap_err();
    assert!(
        matches!(err, RepoError::WrongFederation { role: Role::Root }),
        "{err}"
    );
}

#[test]
fn equivocating_timestamps_and_oversize_or_garbage_metadata_are_refused() {
    let mut p = Publisher::new();
    let b = p.release("a@1", b"x");
    let mut c = p.client();
    c.apply(&b, NOW).unwrap();
    let ts = c.timestamp().unwrap().body().clone();
    let other = Signed::sign(
        Timestamp {
            expires: ts.expires.plus_ms(1),
            ..ts
        },
        &p.signers(),
    )
    .unwrap();
    let err = c.update_timestamp(&other.bytes, NOW).unwrap_err();
    assert!(matches!(err, RepoError::Equivocation { .. }), "{err}");
    let err = c.update_timestamp(&vec![0u8; 5000], NOW).unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
    let err = c.update_timestamp(&[1, 2, 3], NOW).unwrap_err();
    assert!(matches!(err, RepoError::Decode { .. }), "{err}");
    // A snapshot larger than the timestamp names is refused before decoding.
    let mut big = b.snapshot.clone().unwrap();
    big.push(0);
    let err = c.update_snapshot(&big, NOW).unwrap_err();
    assert!(matches!(err, RepoError::Mismatch { .. }), "{err}");
}

#[test]
fn target_names_with_path_traversal_are_refused_in_signed_targets() {
    let p = Publisher::new();
    // A targets body cannot even be built with a traversal name; a forged encoding with
    // one does not decode.
    assert!("../../etc/shadow@1".parse::<TargetName>().is_err());
    let mut targets = Targets {
        federation: p.genesis.id().unwrap(),
        version: 1,
        expires: NOW.plus_ms(DAY_MS),
        targets: Default::default(),
    };
    targets.targets.insert(
        "okname@1".parse().unwrap(),
        publish::target_info(b"x", Category::Optional, None),
    );
    let signed = Signed::sign(targets, &p.signers()).unwrap();
    let needle = b"okname@1";
    let mut bytes = signed.bytes.clone();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at..at + needle.len()].copy_from_slice(b"../..x@1");
    let err = Signed::<Targets>::decode(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            RepoError::Decode {
                role: Role::Targets,
                ..
            }
        ),
        "{err}"
    );
}

mod round_trips {
    use gaiamesh_protocol::repository::metadata::{Bundle, Category, TargetName};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bundles_round_trip(parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..5), ts in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))) {
            let b = Bundle { roots: parts, timestamp: ts.clone(), snapshot: ts, targets: None };
            prop_assert_eq!(Bundle::decode(&b.encode().unwrap()).unwrap(), b);
        }

        #[test]
        fn target_names_round_trip(name in "[a-z0-9]{1,10}(/[a-z0-9._-]{1,10}){0,3}", version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,2}") {
            let s = format!("{name}@{version}");
            if let Ok(t) = s.parse::<TargetName>() {
                let bytes = postcard::to_stdvec(&t).unwrap();
                prop_assert_eq!(postcard::from_bytes::<TargetName>(&bytes).unwrap(), t);
            }
            prop_assert!(Category::Mandatory.to_string().parse::<Category>().is_ok());
        }
    }
}

#[test]
fn stored_state_reloads_after_expiry_and_still_refuses_rollback() {
    let mut p = Publisher::new();
    let old = p.release("a@1", b"one");
    let new = p.release("a@2", b"two");
    let later = NOW.plus_ms(400 * DAY_MS);
    let mut c = p.client();
    c.load(&new).unwrap();
    assert_eq!(c.trusted_targets().unwrap().body().version, 2);
    assert!(matches!(
        c.targets(later).unwrap_err(),
        RepoError::Expired { .. }
    ));
    assert!(matches!(
        c.load(&old).unwrap_err(),
        RepoError::Rollback { .. }
    ));
    // Forged state is not loaded either.
    let mut forged = new.clone();
    if let Some(t) = forged.targets.as_mut() {
        let last = t.len() - 1;
        t[last] ^= 1;
    }
    assert!(p.client().load(&forged).is_err());
}
