//! Signed self-descriptions and federation trust: every tampering is refused with its cause.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_protocol::{
    codec::DecodeError,
    federation::{
        CredentialError, FederationId, KeySignature, MembershipCredential, Revocation,
        RevocationBody, RevocationError, RevocationList, ThresholdError,
    },
    identity::{Keypair, Signature},
    limits::MAX_SD_BYTES,
    sd::{MembershipStatus, SCHEMA_VERSION, SdError, SignedSelfDescription},
    testing::{DAY_MS, NOW, TestFederation, key},
    time::UnixMillis,
};

fn fed() -> TestFederation {
    TestFederation::new(3, 2, true)
}

#[test]
fn a_valid_record_is_accepted_with_its_status() {
    let f = fed();
    let node = key(1);
    let signed = f.signed_sd(&node, 1);
    let report = signed.check(&f.trust, NOW).unwrap();
    assert!(
        matches!(report.membership, MembershipStatus::Member { ref legal_name, .. } if legal_name == "Nordwolke GmbH")
    );
    let certs: Vec<_> = report
        .certifications
        .iter()
        .map(|c| (c.scheme.as_str(), c.is_attested()))
        .collect();
    assert_eq!(certs, vec![("C5", true), ("ISO27001", false)]);
    let bytes = signed.encode().unwrap();
    assert_eq!(SignedSelfDescription::decode(&bytes).unwrap(), signed);
}

#[test]
fn forged_signature_is_refused() {
    let f = fed();
    let mut signed = f.signed_sd(&key(1), 1);
    let mut sig = *signed.signature.as_bytes();
    sig[10] ^= 1;
    signed.signature = Signature::from_bytes(sig);
    assert!(matches!(
        signed.check(&f.trust, NOW),
        Err(SdError::BadSignature(_))
    ));
}

#[test]
fn signing_with_the_wrong_key_is_refused() {
    let f = fed();
    let sd = f.sd(&key(1), 1);
    assert!(matches!(
        sd.clone().sign(&key(2)),
        Err(SdError::WrongKey { .. })
    ));
    // Someone re-labels a record with another subject: the signature no longer matches.
    let mut signed = sd.sign(&key(1)).unwrap();
    signed.sd.subject = key(2).public();
    assert!(matches!(signed.verify(NOW), Err(SdError::BadSignature(s)) if s == key(2).public()));
}

#[test]
fn tampered_fields_are_refused() {
    let f = fed();
    let signed = f.signed_sd(&key(1), 1);
    let mut t = signed.clone();
    t.sd.seq = 2;
    assert!(matches!(
        t.check(&f.trust, NOW),
        Err(SdError::BadSignature(_))
    ));
    let mut t = signed.clone();
    t.sd.document.services[0].price.as_mut().unwrap().amount = "0.001".into();
    assert!(matches!(
        t.check(&f.trust, NOW),
        Err(SdError::BadSignature(_))
    ));
    // Flipping any single byte of the encoding never yields an accepted record.
    let bytes = signed.encode().unwrap();
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        if let Ok(s) = SignedSelfDescription::decode(&b) {
            assert!(
                s.check(&f.trust, NOW).is_err(),
                "byte {i} flipped and still accepted"
            );
        }
    }
}

#[test]
fn expired_and_future_records_are_refused() {
    let f = fed();
    let signed = f.signed_sd(&key(1), 1);
    let at_expiry = signed.sd.expires_at;
    assert!(matches!(
        signed.check(&f.trust, at_expiry),
        Err(SdError::Expired { .. })
    ));
    let early = UnixMillis(NOW.0 - 3_600_000);
    assert!(matches!(
        signed.check(&f.trust, early),
        Err(SdError::NotYetValid { .. })
    ));
    let mut sd = f.sd(&key(1), 1);
    sd.expires_at = NOW.plus_ms(8 * DAY_MS);
    assert!(matches!(sd.sign(&key(1)), Err(SdError::BadValidity { .. })));
}

#[test]
fn credential_with_k_minus_one_signatures_is_refused() {
    let f = fed();
    let node = key(1);
    let mut sd = f.sd(&node, 1);
    sd.membership = Some(f.credential(&node, 1));
    let err = sd.sign(&node).unwrap().check(&f.trust, NOW).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SdError::NotAMember { .. }), "{msg}");
    assert!(
        msg.contains("1 valid signature(s) from distinct authority keys, 2 required"),
        "{msg}"
    );
}

#[test]
fn a_signer_counted_twice_does_not_reach_the_threshold() {
    let f = fed();
    let node = key(1);
    let mut cred = f.credential(&node, 1);
    let dup = cred.signatures[0].clone();
    cred.signatures.push(dup);
    let err = f
        .trust
        .verify_credential(&cred, Some(&node.public()), NOW)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CredentialError::Signatures(ThresholdError::BelowThreshold {
                valid: 1,
                duplicates: 1,
                ..
            })
        ),
        "{err}"
    );
    // A non-authority's signature does not count either.
    let mut cred = f.credential(&node, 1);
    let outsider = key(9);
    let bytes = gaiamesh_protocol::codec::encode("x", &cred.body, 8192).unwrap();
    cred.signatures.push(KeySignature {
        key: outsider.public(),
        signature: outsider.sign(
            gaiamesh_protocol::identity::Domain::MembershipCredential,
            &bytes,
        ),
    });
    let err = f
        .trust
        .verify_credential(&cred, Some(&node.public()), NOW)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CredentialError::Signatures(ThresholdError::BelowThreshold { unknown: 1, .. })
        ),
        "{err}"
    );
}

#[test]
fn credential_binding_expiry_and_federation() {
    let f = fed();
    let node = key(1);
    let cred = f.credential(&node, 2);
    assert!(
        f.trust
            .verify_credential(&cred, Some(&node.public()), NOW)
            .is_ok()
    );
    assert!(matches!(
        f.trust
            .verify_credential(&cred, Some(&key(2).public()), NOW),
        Err(CredentialError::PeerNotBound(_))
    ));
    let late = cred.body.expires_at;
    assert!(matches!(
        f.trust.verify_credential(&cred, None, late),
        Err(CredentialError::Expired(_))
    ));
    let other = TestFederation::with_seed(1, 3, 2, true);
    assert!(matches!(
        other.trust.verify_credential(&cred, None, NOW),
        Err(CredentialError::WrongFederation { .. })
    ));
    // Tampering with the body after signing breaks every signature.
    let mut t = cred.clone();
    t.body.roles.push("certifier".into());
    assert!(matches!(
        t.verify_threshold(
            "authority",
            gaiamesh_protocol::identity::Domain::MembershipCredential,
            8192,
            &f.trust.genesis().authorities.keys,
            2
        ),
        Err(ThresholdError::BelowThreshold { bad: 2, .. })
    ));
    let text = cred.to_toml().unwrap();
    assert_eq!(MembershipCredential::from_toml(&text).unwrap(), cred);
}

fn revocation(
    f: &TestFederation,
    version: u64,
    peers: &[&Keypair],
    signers: usize,
) -> RevocationList {
    let body = RevocationBody {
        schema_version: SCHEMA_VERSION,
        federation: f.trust.id(),
        version,
        issued_at: NOW,
        revoked: peers
            .iter()
            .map(|p| Revocation {
                peer: p.public(),
                reason: "contract terminated".into(),
                revoked_at: NOW,
            })
            .collect(),
    };
    let keys: Vec<&Keypair> = f.authorities.iter().take(signers).collect();
    RevocationList::issue(body, &keys).unwrap()
}

#[test]
fn revoked_members_are_refused_and_lists_cannot_roll_back() {
    let mut f = fed();
    let node = key(1);
    let signed = f.signed_sd(&node, 1);
    assert!(matches!(
        f.trust.apply_revocations(&revocation(&f, 1, &[&node], 1)),
        Err(RevocationError::Signatures(_))
    ));
    let v2 = revocation(&f, 2, &[&node], 2);
    f.trust.apply_revocations(&v2).unwrap();
    let err = signed.check(&f.trust, NOW).unwrap_err();
    assert!(
        matches!(err, SdError::Revoked { ref reason, .. } if reason == "contract terminated"),
        "{err}"
    );
    assert!(matches!(
        f.trust.verify_credential(
            signed.sd.membership.as_ref().unwrap(),
            Some(&node.public()),
            NOW
        ),
        Err(CredentialError::Revoked { .. })
    ));
    // An older list (that would un-revoke) is refused.
    let v1 = revocation(&f, 1, &[], 3);
    assert_eq!(
        f.trust.apply_revocations(&v1),
        Err(RevocationError::Rollback {
            current: 2,
            found: 1
        })
    );
    assert!(f.trust.revocation(&node.public()).is_some());
    let text = v2.to_toml().unwrap();
    assert_eq!(RevocationList::from_toml(&text).unwrap(), v2);
}

#[test]
fn wrong_federation_and_missing_membership() {
    let f = fed();
    let node = key(1);
    let mut sd = f.sd(&node, 1);
    sd.federation = FederationId([7; 32]);
    assert!(matches!(
        sd.sign(&node).unwrap().check(&f.trust, NOW),
        Err(SdError::WrongFederation { .. })
    ));
    let mut sd = f.sd(&node, 1);
    sd.membership = None;
    let signed = sd.sign(&node).unwrap();
    assert!(matches!(
        signed.check(&f.trust, NOW),
        Err(SdError::NotAMember { .. })
    ));
    let open = TestFederation::new(3, 2, false);
    let mut sd = open.sd(&node, 1);
    sd.membership = None;
    let report = sd.sign(&node).unwrap().check(&open.trust, NOW).unwrap();
    assert_eq!(report.membership, MembershipStatus::NotPresented);
}

#[test]
fn participant_must_match_the_credential() {
    let f = fed();
    let node = key(1);
    let mut sd = f.sd(&node, 1);
    sd.document.participant.registration[0].value = "DE999999999".into();
    let err = sd.sign(&node).unwrap().check(&f.trust, NOW).unwrap_err();
    assert!(matches!(err, SdError::ParticipantMismatch(_)), "{err}");
}

#[test]
fn attestations_by_non_certifiers_stay_self_declared() {
    let f = fed();
    let node = key(1);
    let rogue = TestFederation::with_seed(2, 3, 2, true);
    let mut sd = f.sd(&node, 1);
    // Same scheme, signed by a certifier of another federation.
    let mut att = rogue.attestation(&node, "ISO27001");
    att.body.federation = f.trust.id();
    sd.attestations.push(att);
    let report = sd.sign(&node).unwrap().check(&f.trust, NOW).unwrap();
    let iso = report
        .certifications
        .iter()
        .find(|c| c.scheme == "ISO27001")
        .unwrap();
    assert!(!iso.is_attested());
    // An attestation past its validity no longer counts.
    let later = UnixMillis(NOW.0 + DAY_MS);
    let mut sd = f.sd(&node, 2);
    sd.issued_at = later;
    sd.expires_at = later.plus_ms(DAY_MS);
    let mut att = f.attestation(&node, "C5");
    att.body.valid_until = NOW.plus_ms(1);
    sd.attestations =
        vec![gaiamesh_protocol::federation::Attestation::sign(att.body, &f.certifier).unwrap()];
    let report = sd.sign(&node).unwrap().check(&f.trust, later).unwrap();
    assert!(report.certifications.iter().all(|c| !c.is_attested()));
}

#[test]
fn jurisdiction_policy_is_enforced() {
    let f = TestFederation::new(3, 2, false);
    let mut g = f.trust.genesis().clone();
    g.policy.allowed_jurisdictions = vec!["EU".into()];
    let trust = gaiamesh_protocol::federation::FederationTrust::new(g).unwrap();
    let node = key(1);
    let mut sd = f.sd(&node, 1);
    sd.federation = trust.id();
    sd.membership = None;
    assert!(
        sd.clone().sign(&node).unwrap().check(&trust, NOW).is_ok(),
        "DE is in the EU"
    );
    sd.document.services[0]
        .processing_location
        .push("US".into());
    let err = sd.sign(&node).unwrap().check(&trust, NOW).unwrap_err();
    assert_eq!(
        err.to_string(),
        "services[0].processing_location[1]: US is outside the federation's allowed jurisdictions"
    );
}

#[test]
fn oversize_input_is_refused_before_parsing() {
    let big = vec![0u8; MAX_SD_BYTES + 1];
    assert!(matches!(
        SignedSelfDescription::decode(&big),
        Err(SdError::Decode(DecodeError::TooLarge { .. }))
    ));
    let f = fed();
    let node = key(1);
    let mut sd = f.sd(&node, 1);
    sd.document.extensions = (0..32)
        .map(|i| (format!("k{i}"), "v".repeat(1000)))
        .collect();
    assert!(matches!(sd.sign(&node), Err(SdError::Encode(_))));
    // Trailing bytes after a valid record are refused too.
    let mut bytes = f.signed_sd(&node, 1).encode().unwrap();
    bytes.push(0);
    assert!(matches!(
        SignedSelfDescription::decode(&bytes),
        Err(SdError::Decode(DecodeError::TrailingBytes { .. }))
    ));
}

#[test]
fn genesis_rules() {
    let f = fed();
    let g = f.trust.genesis().clone();
    let text = g.to_toml().unwrap();
    let back = gaiamesh_protocol::federation::Genesis::from_toml(&text).unwrap();
    assert_eq!(back.id().unwrap(), g.id().unwrap());
    let mut bad = g.clone();
    bad.authorities.threshold = 4;
    bad.authorities.keys.push(bad.authorities.keys[0]);
    bad.policy.allowed_jurisdictions = vec!["Europe".into()];
    let err = bad.validate().unwrap_err().to_string();
    assert!(
        err.contains("authorities.keys: a key is listed twice"),
        "{err}"
    );
    assert!(
        err.contains("policy.allowed_jurisdictions[0]: \"Europe\""),
        "{err}"
    );
    let mut t = g.clone();
    t.name.push('!');
    assert_ne!(t.id().unwrap(), g.id().unwrap());
    assert!(g.allows_jurisdiction("FR"));
}

#[test]
fn the_verification_cache_never_admits_a_forgery() {
    let f = fed();
    let node = key(1);
    let cache = gaiamesh_protocol::federation::VerifiedCache::new(16);
    let signed = f.signed_sd(&node, 1);
    assert!(signed.check_cached(&f.trust, NOW, Some(&cache)).is_ok());
    assert_eq!(cache.len(), 2, "credential and attestation remembered");
    assert!(signed.check_cached(&f.trust, NOW, Some(&cache)).is_ok());
    assert_eq!(cache.hits(), 2);
    // A credential with a broken signature hashes differently and is verified in full.
    let mut sd = f.sd(&node, 2);
    let mut cred = sd.membership.clone().unwrap();
    let mut sig = *cred.signatures[0].signature.as_bytes();
    sig[3] ^= 1;
    cred.signatures[0].signature = Signature::from_bytes(sig);
    cred.signatures.truncate(2);
    sd.membership = Some(cred);
    let err = sd
        .sign(&node)
        .unwrap()
        .check_cached(&f.trust, NOW, Some(&cache))
        .unwrap_err();
    assert!(matches!(err, SdError::NotAMember { .. }), "{err}");
    // Expiry is checked on every use, cached or not.
    let late = UnixMillis(NOW.0 + 400 * DAY_MS);
    let cred = signed.sd.membership.as_ref().unwrap();
    assert!(matches!(
        f.trust
            .verify_credential_cached(cred, Some(&node.public()), late, Some(&cache)),
        Err(CredentialError::Expired(_))
    ));
}
