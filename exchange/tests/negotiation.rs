//! Contract negotiation between the two sans-IO state machines: the happy path through
//! every Dataspace Protocol state, refusals with their reasons, forged and altered
//! agreements, and the transfer authorization built on the result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_exchange::{
    asset::{Asset, AssetFile, manifest_hash},
    compute::{AlgorithmRef, UsageBody, UsageRecord},
    contract::ContractError,
    metering::Usage,
    negotiation::{
        ConsumerNegotiation, Message, NegotiationError, ProviderInputs, ProviderNegotiation, State,
        Step,
    },
    policy::{Policy, Refusal},
    transfer::{TransferRefusal, authorize},
};
use gaiamesh_protocol::{
    identity::Keypair,
    testing::{NOW, TestFederation, key},
};

fn asset(policy: Policy) -> Asset {
    let files = vec![AssetFile {
        path: String::new(),
        size: 3,
        blake3: blake3::hash(b"abc").to_hex().to_string(),
    }];
    Asset {
        id: "weather".into(),
        path: "/nonexistent".into(),
        directory: false,
        manifest_blake3: manifest_hash(&files),
        files,
        size: 3,
        policy,
        added_at: NOW,
    }
}

struct World {
    fed: TestFederation,
    provider: Keypair,
    consumer: Keypair,
}

fn world() -> World {
    World {
        fed: TestFederation::new(3, 2, true),
        provider: key(1),
        consumer: key(2),
    }
}

fn consumer_side(w: &World, purpose: &str, onward: bool) -> ConsumerNegotiation {
    let cred = w.fed.credential(&w.consumer, 2).encode().unwrap();
    ConsumerNegotiation::new(
        &w.consumer,
        w.provider.public(),
        "weather",
        purpose,
        onward,
        cred,
        NOW,
    )
}

fn inputs<'a>(w: &'a World, asset: Option<&'a Asset>, done: u32) -> ProviderInputs<'a> {
    ProviderInputs {
        key: &w.provider,
        trust: &w.fed.trust,
        peer: w.consumer.public(),
        asset,
        transfers_so_far: done,
        now: NOW,
    }
}

/// Runs a negotiation to its end; returns the provider's and consumer's results.
fn negotiate(
    w: &World,
    a: &Asset,
    purpose: &str,
) -> Result<gaiamesh_exchange::contract::Agreement, NegotiationError> {
    let mut c = consumer_side(w, purpose, false);
    let mut p = ProviderNegotiation::new();
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    let offer = p.on_request(&req, &inputs(w, Some(a), 0))?;
    assert_eq!(p.state(), Some(State::Offered));
    let Step::Send(Message::Agree { consumer_signature }) =
        c.on_message(&w.consumer, offer, NOW)?
    else {
        panic!("no Agree")
    };
    assert_eq!(c.state(), State::Agreed);
    let provider_agreement = p.on_agree(consumer_signature)?;
    assert_eq!(p.state(), Some(State::Verified));
    p.finalized();
    assert_eq!(p.state(), Some(State::Finalized));
    let Step::Finalized(consumer_agreement) = c.on_message(&w.consumer, Message::Finalize, NOW)?
    else {
        panic!("not finalized")
    };
    assert_eq!(c.state(), State::Finalized);
    assert_eq!(provider_agreement, consumer_agreement);
    Ok(consumer_agreement)
}

#[test]
fn a_negotiation_passes_every_state_and_both_hold_the_same_signed_agreement() {
    let w = world();
    let a = asset(Policy {
        purposes: vec!["research".into()],
        jurisdiction: vec!["EU".into()],
        ..Policy::default()
    });
    let agreement = negotiate(&w, &a, "research.climate").unwrap();
    let id = agreement.verify().unwrap();
    let b = &agreement.body;
    assert_eq!(b.provider, w.provider.public());
    assert_eq!(b.consumer, w.consumer.public());
    assert_eq!(b.consumer_registration, "vatID:DE123456789");
    assert_eq!(b.manifest_blake3, a.manifest_blake3);
    assert_eq!(b.purpose, "research.climate");
    assert!(b.policy.contains("research"), "{}", b.policy);
    // The agreement authorizes transfers to this consumer only.
    let me = w.provider.public();
    assert_eq!(
        authorize(&agreement, &me, &w.consumer.public(), Some(&agreement), NOW).unwrap(),
        id
    );
    assert!(matches!(
        authorize(&agreement, &me, &key(9).public(), Some(&agreement), NOW),
        Err(TransferRefusal::WrongParty(_))
    ));
    assert!(matches!(
        authorize(
            &agreement,
            &key(9).public(),
            &w.consumer.public(),
            Some(&agreement),
            NOW
        ),
        Err(TransferRefusal::WrongParty(_))
    ));
    assert!(matches!(
        authorize(
            &agreement,
            &me,
            &w.consumer.public(),
            Some(&agreement),
            b.expires_at.plus_ms(1)
        ),
        Err(TransferRefusal::Expired(_))
    ));
}

#[test]
fn policy_refusals_terminate_with_the_reason() {
    let w = world();
    let a = asset(Policy {
        purposes: vec!["research".into()],
        ..Policy::default()
    });
    let e = negotiate(&w, &a, "marketing").unwrap_err();
    assert!(
        matches!(e, NegotiationError::Policy(Refusal::Purpose { .. })),
        "{e}"
    );
    assert!(e.reason().contains("marketing"), "{}", e.reason());

    let ch_only = asset(Policy {
        jurisdiction: vec!["CH".into()],
        ..Policy::default()
    });
    let e = negotiate(&w, &ch_only, "research").unwrap_err();
    assert!(
        matches!(e, NegotiationError::Policy(Refusal::Jurisdiction { .. })),
        "{e}"
    );

    // max_transfers counts the consumer's earlier agreements.
    let once = asset(Policy {
        max_transfers: Some(1),
        ..Policy::default()
    });
    let c = consumer_side(&w, "research", false);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    assert!(
        ProviderNegotiation::new()
            .on_request(&req, &inputs(&w, Some(&once), 0))
            .is_ok()
    );
    let mut p = ProviderNegotiation::new();
    let e = p.on_request(&req, &inputs(&w, Some(&once), 1)).unwrap_err();
    assert!(
        matches!(e, NegotiationError::Policy(Refusal::TransferLimit { .. })),
        "{e}"
    );
    assert_eq!(p.state(), Some(State::Terminated));

    // No onward transfer.
    let closed = asset(Policy {
        onward_transfer: false,
        ..Policy::default()
    });
    let c = consumer_side(&w, "research", true);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    let e = ProviderNegotiation::new()
        .on_request(&req, &inputs(&w, Some(&closed), 0))
        .unwrap_err();
    assert!(
        matches!(e, NegotiationError::Policy(Refusal::OnwardTransfer)),
        "{e}"
    );
}

#[test]
fn requests_with_bad_credentials_or_parties_are_refused() {
    let w = world();
    let a = asset(Policy::default());
    let c = consumer_side(&w, "research", false);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    // Unknown asset.
    let e = ProviderNegotiation::new()
        .on_request(&req, &inputs(&w, None, 0))
        .unwrap_err();
    assert!(matches!(e, NegotiationError::UnknownAsset(_)), "{e}");
    // Someone else's stream presenting the consumer's request.
    let mut other = inputs(&w, Some(&a), 0);
    other.peer = key(9).public();
    let e = ProviderNegotiation::new()
        .on_request(&req, &other)
        .unwrap_err();
    assert!(matches!(e, NegotiationError::WrongParty(_)), "{e}");
    // A credential of another federation.
    let mut foreign = req.clone();
    foreign.credential = TestFederation::with_seed(7, 3, 2, true)
        .credential(&w.consumer, 2)
        .encode()
        .unwrap();
    let e = ProviderNegotiation::new()
        .on_request(&foreign, &inputs(&w, Some(&a), 0))
        .unwrap_err();
    assert!(matches!(e, NegotiationError::Credential(_)), "{e}");
    // Below the authorities' threshold.
    let mut weak = req.clone();
    weak.credential = w.fed.credential(&w.consumer, 1).encode().unwrap();
    let e = ProviderNegotiation::new()
        .on_request(&weak, &inputs(&w, Some(&a), 0))
        .unwrap_err();
    assert!(matches!(e, NegotiationError::Credential(_)), "{e}");
    // Garbage.
    let mut garbage = req.clone();
    garbage.credential = vec![1, 2, 3];
    assert!(matches!(
        ProviderNegotiation::new().on_request(&garbage, &inputs(&w, Some(&a), 0)),
        Err(NegotiationError::Credential(_))
    ));
    // Addressed to another provider.
    let mut elsewhere = req;
    elsewhere.provider = key(8).public();
    assert!(matches!(
        ProviderNegotiation::new().on_request(&elsewhere, &inputs(&w, Some(&a), 0)),
        Err(NegotiationError::WrongParty(_))
    ));
}

#[test]
fn forged_or_altered_agreements_are_refused_on_both_sides() {
    let w = world();
    let a = asset(Policy::default());
    // The consumer refuses an offer whose body differs from its request, or whose
    // provider signature is forged.
    let mut c = consumer_side(&w, "research", false);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    let Message::Offer {
        body,
        provider_signature,
    } = ProviderNegotiation::new()
        .on_request(&req, &inputs(&w, Some(&a), 0))
        .unwrap()
    else {
        panic!()
    };
    let mut altered = body.clone();
    altered.purpose = "anything".into();
    let e = c
        .on_message(
            &w.consumer,
            Message::Offer {
                body: altered,
                provider_signature,
            },
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            NegotiationError::Contract(ContractError::Mismatch("offer.purpose"))
        ),
        "{e}"
    );
    assert_eq!(c.state(), State::Terminated);

    let mut c = consumer_side(&w, "research", false);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    let Message::Offer { body, .. } = ProviderNegotiation::new()
        .on_request(&req, &inputs(&w, Some(&a), 0))
        .unwrap()
    else {
        panic!()
    };
    let forged = body.sign(&key(9)).unwrap();
    let e = c
        .on_message(
            &w.consumer,
            Message::Offer {
                body,
                provider_signature: forged,
            },
            NOW,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            NegotiationError::Contract(ContractError::BadSignature("provider"))
        ),
        "{e}"
    );

    // The provider refuses an Agree signed by someone else.
    let c = consumer_side(&w, "research", false);
    let Message::Request(req) = c.request() else {
        unreachable!()
    };
    let mut p = ProviderNegotiation::new();
    let Message::Offer { body, .. } = p.on_request(&req, &inputs(&w, Some(&a), 0)).unwrap() else {
        panic!()
    };
    let e = p.on_agree(body.sign(&key(9)).unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            NegotiationError::Contract(ContractError::BadSignature("consumer"))
        ),
        "{e}"
    );
    assert_eq!(p.state(), Some(State::Terminated));

    // A transfer under an altered agreement, or one the provider never recorded, is refused.
    let agreement = negotiate(&w, &a, "research").unwrap();
    let me = w.provider.public();
    let mut bigger = agreement.clone();
    bigger.body.expires_at = bigger.body.expires_at.plus_ms(1_000_000);
    assert!(matches!(
        authorize(&bigger, &me, &w.consumer.public(), Some(&agreement), NOW),
        Err(TransferRefusal::Agreement(ContractError::BadSignature(
            "provider"
        )))
    ));
    // Signed by both, but not in the provider's log (e.g. a provider key leaked and was
    // rotated: only recorded agreements count).
    assert!(matches!(
        authorize(&agreement, &me, &w.consumer.public(), None, NOW),
        Err(TransferRefusal::Unknown(_))
    ));
}

#[test]
fn messages_out_of_order_terminate() {
    let w = world();
    let mut c = consumer_side(&w, "research", false);
    let e = c
        .on_message(&w.consumer, Message::Finalize, NOW)
        .unwrap_err();
    assert!(matches!(e, NegotiationError::Unexpected { .. }), "{e}");
    let mut p = ProviderNegotiation::new();
    let e = p.on_agree(key(1).sign(gaiamesh_protocol::identity::Domain::Test, b"x"));
    assert!(matches!(e, Err(NegotiationError::Unexpected { .. })));
    // Oversize and malformed frames are decode errors, not panics.
    assert!(Message::decode(&[0xff; 10]).is_err());
    assert!(Message::decode(&vec![0u8; 70 * 1024]).is_err());
    let mut c = consumer_side(&w, "research", false);
    let e = c
        .on_message(
            &w.consumer,
            Message::Terminate {
                reason: "maintenance".into(),
            },
            NOW,
        )
        .unwrap_err();
    assert_eq!(e, NegotiationError::Terminated("maintenance".into()));
}

fn compute_asset(algorithms: &[&str]) -> Asset {
    let text = format!(
        "purposes = [\"research\"]\n[compute]\nalgorithms = {algorithms:?}\nmax_output_bytes = 4096\n"
    );
    asset(Policy::parse(&text).unwrap())
}

fn usage_body(agreement: &gaiamesh_exchange::contract::Agreement, result: &[u8]) -> UsageBody {
    UsageBody {
        agreement: agreement.body.id().unwrap(),
        provider: agreement.body.provider,
        consumer: agreement.body.consumer,
        asset: agreement.body.asset.clone(),
        algorithm: "column-stats@1.0.0".into(),
        algorithm_blake3: "ab".repeat(32),
        args: vec!["temperature".into()],
        outcome: "completed".into(),
        result_blake3: blake3::hash(result).to_hex().to_string(),
        usage: Usage {
            fuel: 1_000_000,
            wall_us: 2_000,
            peak_memory_bytes: 1 << 20,
            bytes_read: 3,
            bytes_written: result.len() as u64,
        },
        charge: None,
        started_at: NOW,
        finished_at: NOW,
    }
}

#[test]
fn a_compute_offer_names_its_algorithms_and_is_negotiated_like_any_asset() {
    let w = world();
    let a = compute_asset(&["column-stats@1.0.0", &format!("blake3:{}", "cd".repeat(32))]);
    assert!(a.compute_only());
    assert!(a.policy.summary().contains("computation only"));
    let c = a.policy.compute.as_ref().unwrap();
    assert_eq!(c.output_limit(), 4096);
    let released = |target, blake3| AlgorithmRef { target, blake3 };
    let (ab, cd, ef) = ("ab".repeat(32), "cd".repeat(32), "ef".repeat(32));
    assert!(c.permits(&released("column-stats@1.0.0", &ab)).is_ok());
    assert!(c.permits(&released("anything@2.0.0", &cd)).is_ok());
    let refused = c
        .permits(&released("column-stats@2.0.0", &ef))
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("column-stats@2.0.0") && refused.contains("not among"),
        "{refused}"
    );
    // Any version by name; an empty list: any released algorithm.
    let by_name = compute_asset(&["column-stats"]);
    let by_name = by_name.policy.compute.as_ref().unwrap();
    assert!(
        by_name
            .permits(&released("column-stats@2.0.0", "00"))
            .is_ok()
    );
    assert!(
        compute_asset(&[])
            .policy
            .compute
            .unwrap()
            .permits(&released("x@1", "00"))
            .is_ok()
    );
    assert!(negotiate(&w, &a, "research.climate").is_ok());
}

#[test]
fn a_review_is_part_of_the_terms_and_no_review_keeps_the_policy_hash_as_before() {
    let reviewed = Policy::parse("[compute]\nreview = true\n").unwrap();
    assert!(reviewed.compute.as_ref().unwrap().review);
    assert!(
        reviewed
            .summary()
            .contains("results reviewed by the provider")
    );
    let plain = Policy::parse("[compute]\n").unwrap();
    assert!(!plain.compute.as_ref().unwrap().review);
    assert!(!plain.summary().contains("reviewed"));
    // Not written when off: the JSON form (hashed into agreements) is what it was.
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("review"), "{json}");
    assert!(
        serde_json::to_string(&reviewed)
            .unwrap()
            .contains("\"review\":true")
    );
}

#[test]
fn bad_compute_tables_are_refused_with_their_fields() {
    let e = Policy::parse("[compute]\nalgorithms = [\"\", \"blake3:xyz\"]\nmax_output_bytes = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("compute.algorithms[0]"), "{e}");
    assert!(e.contains("compute.algorithms[1]"), "{e}");
    assert!(e.contains("compute.max_output_bytes"), "{e}");
    let e = Policy::parse("[compute]\nreveiw = true\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("reveiw"), "{e}");
    let big = Policy::parse("[compute]\nmax_output_bytes = 2000000000\n").unwrap_err();
    assert!(big.to_string().contains("maximum"), "{big}");
}

#[test]
fn a_transfer_is_metered_in_the_same_record_bound_to_its_manifest() {
    let w = world();
    let a = compute_asset(&[]);
    let agreement = negotiate(&w, &a, "research").unwrap();
    let body = UsageBody::transfer(&agreement, 3, 1_500, None, NOW, NOW).unwrap();
    assert!(body.is_transfer());
    assert_eq!(body.usage.bytes_read, 3);
    assert_eq!(body.usage.wall_us, 1_500);
    let record = UsageRecord::sign(body, &w.provider).unwrap();
    record.verify_transfer(&agreement).unwrap();
    let signed_by_both = record.clone().countersign(&w.consumer).unwrap();
    signed_by_both.verify_both().unwrap();
    // A job's record is not a transfer's, and another manifest is not this one.
    let job = UsageRecord::sign(usage_body(&agreement, b"{}"), &w.provider).unwrap();
    assert_eq!(
        job.verify_transfer(&agreement),
        Err(ContractError::Mismatch("usage.algorithm"))
    );
    let mut other = UsageBody::transfer(&agreement, 3, 1, None, NOW, NOW).unwrap();
    other.result_blake3 = "00".repeat(32);
    let other = UsageRecord::sign(other, &w.provider).unwrap();
    assert_eq!(
        other.verify_transfer(&agreement),
        Err(ContractError::Mismatch("usage.result_blake3"))
    );
}

#[test]
fn a_usage_record_binds_the_agreement_and_the_result_and_needs_both_signatures() {
    let w = world();
    let a = compute_asset(&[]);
    let agreement = negotiate(&w, &a, "research").unwrap();
    let result = br#"{"mean":10}"#;
    let record = UsageRecord::sign(usage_body(&agreement, result), &w.provider).unwrap();
    record.verify_provider(&agreement, Some(result)).unwrap();
    // Another result, another agreement's id, a forged provider: refused with the field.
    assert_eq!(
        record.verify_provider(&agreement, Some(b"{}")),
        Err(ContractError::Mismatch("usage.result_blake3"))
    );
    let mut altered = record.clone();
    altered.body.usage.fuel = 1;
    assert_eq!(
        altered.verify_provider(&agreement, Some(result)),
        Err(ContractError::BadSignature("usage record (provider)"))
    );
    let forged = UsageRecord::sign(usage_body(&agreement, result), &w.consumer).unwrap();
    assert!(forged.verify_provider(&agreement, Some(result)).is_err());
    // Countersigned by the consumer: both verify; not countersigned, or by someone else: no.
    assert_eq!(
        record.verify_both(),
        Err(ContractError::Missing("the consumer's countersignature"))
    );
    let both = record.clone().countersign(&w.consumer).unwrap();
    both.verify_both().unwrap();
    let wrong = record.countersign(&key(9)).unwrap();
    assert_eq!(
        wrong.verify_both(),
        Err(ContractError::BadSignature("usage record (consumer)"))
    );
}
