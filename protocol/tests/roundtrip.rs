//! Property tests: every wire type round-trips through its canonical encoding, and no input
//! makes a decoder panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use gaiamesh_protocol::{
    federation::{Attestation, Genesis, MembershipCredential, RevocationList},
    identity::Keypair,
    sd::*,
    testing::{NOW, TestFederation, key},
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9 ._-]{1,40}", "\\PC{1,20}"]
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::of(s)
}

fn finite() -> impl Strategy<Value = f64> {
    -1.0e6..1.0e6f64
}

fn service() -> impl Strategy<Value = Service> {
    let kinds = prop_oneof![
        Just(ServiceKind::ComputeVm),
        Just(ServiceKind::StorageObject),
        Just(ServiceKind::AiInference),
        Just(ServiceKind::DataResource),
        Just(ServiceKind::Other),
    ];
    (
        (
            "[a-z0-9-]{1,20}",
            kinds,
            opt(text()),
            opt(text()),
            prop::collection::vec(text(), 0..4),
        ),
        (
            prop::collection::vec("[A-Z]{2}", 0..4),
            prop::collection::vec("[A-Z]{2}", 0..4),
        ),
        prop::collection::vec(("[A-Za-z0-9]{1,10}", opt(text()), opt(text())), 0..4),
        opt(prop_oneof![
            Just(ProtectionLevel::Basic),
            Just(ProtectionLevel::High)
        ]),
        opt(prop_oneof![
            Just(ConsumptionModel::OnDemand),
            Just(ConsumptionModel::Spot)
        ]),
        opt(("[A-Z]{3}", "[0-9]{1,5}\\.[0-9]{1,4}", text())),
        opt(("https://[a-z]{1,10}\\.eu/t", "[0-9a-f]{64}")),
        opt(text()),
    )
        .prop_map(
            |(a, (dl, pl), certs, protection_level, consumption, price, terms, usage_policy)| {
                Service {
                    id: a.0,
                    kind: a.1,
                    name: a.2,
                    description: a.3,
                    keywords: a.4,
                    endpoint: None,
                    data_location: dl,
                    processing_location: pl,
                    certifications: certs
                        .into_iter()
                        .map(|(scheme, scope, level)| Certification {
                            scheme,
                            scope,
                            level,
                        })
                        .collect(),
                    protection_level,
                    consumption,
                    price: price.map(|(currency, amount, unit)| Price {
                        currency,
                        amount,
                        unit,
                    }),
                    terms: terms.map(|(url, sha256)| Terms { url, sha256 }),
                    data_export: vec![],
                    usage_policy,
                }
            },
        )
}

fn document() -> impl Strategy<Value = SdDocument> {
    (
        (
            text(),
            "[A-Z]{2}[0-9]{9}",
            "[A-Z]{2}",
            opt("[A-Z]{2}-[A-Z]{2}"),
            opt(text()),
        ),
        (
            prop_oneof![
                Just(NodeKind::Edge),
                Just(NodeKind::Hpc),
                Just(NodeKind::PublicCloud)
            ],
            "[A-Z]{2}",
            opt((finite(), finite())),
            prop::collection::vec("/ip4/[0-9.]{7,15}/udp/[0-9]{1,5}/quic-v1", 0..3),
        ),
        opt((
            opt(finite()),
            opt(0u8..=100),
            opt(any::<u8>()),
            opt(finite()),
            opt(text()),
        )),
        opt((
            opt("x86_64|aarch64"),
            opt(any::<u32>()),
            prop::collection::vec((text(), any::<u32>()), 0..3),
        )),
        prop::collection::vec(service(), 0..4),
        prop::collection::btree_map("[a-z:]{1,12}", text(), 0..4),
    )
        .prop_map(|(p, n, energy, hw, services, extensions)| SdDocument {
            participant: Participant {
                legal_name: p.0,
                registration: vec![Registration {
                    kind: RegistrationKind::VatId,
                    value: p.1,
                }],
                headquarters: Address {
                    country: p.2,
                    subdivision: p.3,
                    city: p.4,
                },
                legal_address: None,
            },
            node: NodeInfo {
                kind: n.0,
                location: Location {
                    country: n.1,
                    subdivision: None,
                    city: None,
                    coordinates: n.2.map(|(lat, lon)| Coordinates { lat, lon }),
                },
                addresses: n.3,
                software: None,
                hardware: hw.map(|(cpu_arch, vcpus, gpus)| Hardware {
                    cpu_arch,
                    vcpus,
                    memory_gib: None,
                    gpus: gpus
                        .into_iter()
                        .map(|(model, count)| Gpu { model, count })
                        .collect(),
                    storage_tib: None,
                }),
                network: None,
                energy: energy.map(|e| Energy {
                    pue: e.0,
                    renewable_pct: e.1,
                    heat_reuse_pct: e.2,
                    water_usage_l_per_kwh: e.3,
                    source: e.4,
                }),
                realtime: None,
            },
            services,
            extensions: extensions.into_iter().collect::<BTreeMap<_, _>>(),
        })
}

fn fed() -> TestFederation {
    TestFederation::new(3, 2, true)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any document (valid or not) survives the canonical encoding unchanged inside a
    /// signed record, and through TOML and JSON.
    #[test]
    fn signed_sd_round_trips(doc in document(), seq in any::<u64>(), seed in any::<u8>()) {
        let f = fed();
        let node = Keypair::from_secret_bytes(&[seed; 32]);
        let mut sd = f.sd(&node, seq);
        sd.document = doc.clone();
        // Bypass `sign`'s validation: encoding must be lossless for any value.
        let signed = SignedSelfDescription { signature: node.sign(gaiamesh_protocol::identity::Domain::Test, b""), sd };
        if let Ok(bytes) = signed.encode() {
            prop_assert_eq!(&SignedSelfDescription::decode(&bytes).unwrap(), &signed);
            // One encoding serves the content hash and the signature check: its signed part
            // is exactly the self-description's encoding.
            let canonical = signed.canonical().unwrap();
            prop_assert_eq!(canonical.as_bytes(), &bytes[..]);
            prop_assert_eq!(
                canonical.signed_bytes(),
                &gaiamesh_protocol::codec::encode("sd", &signed.sd, usize::MAX).unwrap()[..]
            );
            prop_assert_eq!(canonical.content_hash(), signed.content_hash().unwrap());
            prop_assert_eq!(canonical.content_hash(), *blake3::hash(&bytes).as_bytes());
        }
        let json = serde_json::to_string(&doc).unwrap();
        prop_assert_eq!(&serde_json::from_str::<SdDocument>(&json).unwrap(), &doc);
        let toml_text = toml::to_string(&doc).unwrap();
        prop_assert_eq!(&toml::from_str::<SdDocument>(&toml_text).unwrap(), &doc);
    }

    /// Valid documents sign and verify; invalid ones are refused by `sign`.
    #[test]
    fn sign_then_check(doc in document()) {
        let f = fed();
        let node = key(1);
        let mut sd = f.sd(&node, 1);
        let valid = validate_document(&doc).is_ok();
        sd.document = doc;
        sd.document.participant.registration = vec![Registration { kind: RegistrationKind::VatId, value: "DE123456789".into() }];
        let still_valid = validate_document(&sd.document).is_ok();
        match sd.sign(&node) {
            Ok(signed) => {
                prop_assert!(still_valid);
                // Jurisdictions are unrestricted in this federation, so only validity matters.
                prop_assert!(signed.check(&f.trust, NOW).is_ok());
            }
            Err(SdError::Invalid(_)) => prop_assert!(!still_valid),
            Err(SdError::Encode(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error {e} (valid before registration fix: {valid})"),
        }
    }

    #[test]
    fn credential_attestation_revocation_genesis_round_trip(seed in 1u8..200, roles in prop::collection::vec("[a-z]{1,10}", 0..4)) {
        let f = fed();
        let node = key(seed);
        let mut cred = f.credential(&node, 3);
        cred.body.roles = roles;
        prop_assert_eq!(&MembershipCredential::decode(&cred.encode().unwrap()).unwrap(), &cred);
        prop_assert_eq!(&MembershipCredential::from_toml(&cred.to_toml().unwrap()).unwrap(), &cred);
        let att = f.attestation(&node, "ISO27001");
        prop_assert_eq!(&Attestation::decode(&att.encode().unwrap()).unwrap(), &att);
        let g = f.trust.genesis();
        prop_assert_eq!(&Genesis::decode(&g.encode().unwrap()).unwrap(), g);
    }

    /// Arbitrary bytes never make a decoder panic.
    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedSelfDescription::decode(&bytes);
        let _ = MembershipCredential::decode(&bytes);
        let _ = Attestation::decode(&bytes);
        let _ = RevocationList::decode(&bytes);
        let _ = Genesis::decode(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = SdDocument::parse(s, DocumentFormat::sniff(s));
            let _ = Genesis::from_toml(s);
        }
    }

    /// Mutating a valid record anywhere never yields a different record that is accepted.
    #[test]
    fn mutations_are_never_accepted(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let f = fed();
        let signed = f.signed_sd(&key(1), 1);
        let mut bytes = signed.encode().unwrap();
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        if let Ok(s) = SignedSelfDescription::decode(&bytes)
            && s != signed {
                prop_assert!(s.check(&f.trust, NOW).is_err());
            }
    }
}

fn prefix() -> impl Strategy<Value = gaiamesh_protocol::reconcile::Prefix> {
    prop::collection::vec(0u8..16, 0..12).prop_map(|nibbles| {
        nibbles
            .iter()
            .fold(gaiamesh_protocol::reconcile::Prefix::root(), |p, n| {
                p.child(*n)
            })
    })
}

proptest! {
    #[test]
    fn reconcile_messages_round_trip(
        salt in any::<[u8; 8]>(),
        parts in prop::collection::vec(
            prop_oneof![
                (prefix(), any::<u16>()).prop_map(|(prefix, nonempty)| gaiamesh_protocol::reconcile::Part::Split {
                    prefix,
                    nonempty,
                    fingerprints: vec![[7; 4]; nonempty.count_ones() as usize],
                }),
                (prefix(), prop::collection::vec(any::<[u8; 8]>(), 0..64), any::<bool>())
                    .prop_map(|(prefix, ids, reply)| gaiamesh_protocol::reconcile::Part::Items { prefix, ids, reply }),
            ],
            0..20,
        )
    ) {
        let msg = gaiamesh_protocol::reconcile::ReconcileMessage { salt, parts };
        let bytes = msg.encode().unwrap();
        prop_assert_eq!(gaiamesh_protocol::reconcile::ReconcileMessage::decode(&bytes).unwrap(), msg);
    }

    #[test]
    fn reconcile_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = gaiamesh_protocol::reconcile::ReconcileMessage::decode(&bytes);
    }
}
