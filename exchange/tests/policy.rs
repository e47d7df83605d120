//! Usage-policy evaluation: every dimension allows and denies, every combination of
//! satisfied and violated dimensions gives the documented first refusal, and policy files
//! are validated with every problem named.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gaiamesh_exchange::policy::{Consumer, Policy, Refusal, Request, evaluate};
use gaiamesh_protocol::time::UnixMillis;

const DAY: u64 = 86_400_000;
const T0: u64 = 1_800_000_000_000;

fn consumer() -> Consumer {
    Consumer {
        peer_id: "12D3KooWConsumer".into(),
        registration: "vatID:FR40303265045".into(),
        headquarters_country: "FR".into(),
        roles: vec!["consumer".into(), "research".into()],
    }
}

fn request() -> Request {
    Request {
        purpose: "research.medical".into(),
        onward_transfer: false,
        transfers_so_far: 2,
        now: UnixMillis(T0),
    }
}

/// A policy whose every dimension the standard consumer and request satisfy.
fn strict() -> Policy {
    Policy {
        participants: vec!["vatID:FR40303265045".into(), "12D3KooWOther".into()],
        roles: vec!["consumer".into()],
        purposes: vec!["research".into(), "ai.training".into()],
        jurisdiction: vec!["EU".into()],
        valid_from: Some(UnixMillis(T0 - DAY)),
        valid_until: Some(UnixMillis(T0 + DAY)),
        max_transfers: Some(3),
        onward_transfer: false,
        compute: None,
    }
}

#[test]
fn the_empty_policy_allows_any_member_and_the_strict_one_allows_the_standard_request() {
    assert_eq!(
        evaluate(&Policy::parse("").unwrap(), &consumer(), &request()),
        Ok(())
    );
    assert_eq!(evaluate(&strict(), &consumer(), &request()), Ok(()));
}

#[test]
fn each_dimension_allows_and_denies() {
    let c = consumer();
    let r = request();
    // Validity window.
    let mut p = strict();
    p.valid_from = Some(UnixMillis(T0 + 1));
    assert!(matches!(
        evaluate(&p, &c, &r),
        Err(Refusal::NotYetValid { .. })
    ));
    p.valid_from = Some(UnixMillis(T0));
    assert_eq!(evaluate(&p, &c, &r), Ok(()), "valid_from is inclusive");
    p.valid_until = Some(UnixMillis(T0 - 1));
    p.valid_from = None;
    assert!(matches!(evaluate(&p, &c, &r), Err(Refusal::Expired { .. })));
    p.valid_until = Some(UnixMillis(T0));
    assert_eq!(evaluate(&p, &c, &r), Ok(()), "valid_until is inclusive");
    // Participants: by registration (case-insensitive) or by peer id.
    let mut p = strict();
    p.participants = vec!["vatID:DE123456789".into()];
    let e = evaluate(&p, &c, &r).unwrap_err();
    assert!(e.to_string().contains("vatID:FR40303265045"), "{e}");
    p.participants = vec!["VATID:fr40303265045".into()];
    assert_eq!(evaluate(&p, &c, &r), Ok(()));
    p.participants = vec!["12D3KooWConsumer".into()];
    assert_eq!(evaluate(&p, &c, &r), Ok(()));
    // Roles: any one.
    let mut p = strict();
    p.roles = vec!["provider".into(), "auditor".into()];
    assert!(matches!(evaluate(&p, &c, &r), Err(Refusal::Role { .. })));
    p.roles.push("research".into());
    assert_eq!(evaluate(&p, &c, &r), Ok(()));
    // Jurisdiction: EU members, explicit countries.
    let mut p = strict();
    let mut swiss = consumer();
    swiss.headquarters_country = "CH".into();
    let e = evaluate(&p, &swiss, &r).unwrap_err();
    assert_eq!(e.dimension(), "jurisdiction");
    assert!(e.to_string().contains("CH"), "{e}");
    p.jurisdiction.push("CH".into());
    assert_eq!(evaluate(&p, &swiss, &r), Ok(()));
    p.jurisdiction = vec!["DE".into()];
    assert!(matches!(
        evaluate(&p, &c, &r),
        Err(Refusal::Jurisdiction { .. })
    ));
    // Purposes: a purpose covers its sub-purposes, not its prefixes or siblings.
    let p = strict();
    for (purpose, ok) in [
        ("research", true),
        ("research.medical", true),
        ("research.medical.oncology", true),
        ("researcher", false),
        ("ai", false),
        ("ai.training", true),
        ("ai.inference", false),
        ("marketing", false),
    ] {
        let mut r = request();
        r.purpose = purpose.into();
        assert_eq!(evaluate(&p, &c, &r).is_ok(), ok, "{purpose}");
    }
    // Transfer count: at most max.
    let mut r = request();
    r.transfers_so_far = 3;
    assert_eq!(
        evaluate(&strict(), &c, &r),
        Err(Refusal::TransferLimit { done: 3, max: 3 })
    );
    // Onward transfer.
    let mut r = request();
    r.onward_transfer = true;
    assert_eq!(evaluate(&strict(), &c, &r), Err(Refusal::OnwardTransfer));
    let mut p = strict();
    p.onward_transfer = true;
    assert_eq!(evaluate(&p, &c, &r), Ok(()));
}

/// The seven dimensions, each satisfied or violated: all 128 combinations.
#[test]
fn every_combination_gives_the_first_violated_dimension() {
    let order = [
        "valid_from",
        "valid_until",
        "participants",
        "roles",
        "jurisdiction",
        "purposes",
        "max_transfers",
        "onward_transfer",
    ];
    for mask in 0u32..(1 << 7) {
        let mut p = strict();
        let mut c = consumer();
        let mut r = request();
        let violated = |i: u32| mask & (1 << i) != 0;
        if violated(0) {
            // The window: before it starts.
            p.valid_from = Some(UnixMillis(T0 + 1));
        }
        if violated(1) {
            c.registration = "vatID:NL000000000B01".into();
        }
        if violated(2) {
            c.roles = vec!["provider".into()];
        }
        if violated(3) {
            c.headquarters_country = "US".into();
        }
        if violated(4) {
            r.purpose = "marketing".into();
        }
        if violated(5) {
            r.transfers_so_far = 3;
        }
        if violated(6) {
            r.onward_transfer = true;
        }
        let got = evaluate(&p, &c, &r);
        match (0..7).find(|&i| violated(i)) {
            None => assert_eq!(got, Ok(()), "mask {mask:07b}"),
            Some(first) => {
                let dim = if first == 0 { 0 } else { first as usize + 1 };
                assert_eq!(got.unwrap_err().dimension(), order[dim], "mask {mask:07b}");
            }
        }
    }
}

#[test]
fn policy_files_parse_from_toml_and_json_and_every_problem_is_named() {
    let toml = r#"
        participants = ["vatID:FR40303265045"]
        roles = ["consumer"]
        purposes = ["research", "ai.training"]
        jurisdiction = ["EU", "CH"]
        valid_from = "2026-12-01T00:00:00Z"
        valid_until = "2027-12-01T00:00:00Z"
        max_transfers = 10
        onward_transfer = false
    "#;
    let p = Policy::parse(toml).unwrap();
    assert_eq!(p.max_transfers, Some(10));
    assert!(!p.onward_transfer);
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(Policy::parse(&json).unwrap(), p);
    assert_eq!(
        p.summary(),
        "purposes: research, ai.training; jurisdiction: EU, CH; roles: consumer; \
         1 named participant(s); at most 10 transfer(s); no onward transfer; \
         from 2026-12-01T00:00:00.000Z; until 2027-12-01T00:00:00.000Z"
    );
    assert!(
        Policy::parse("").unwrap().onward_transfer,
        "onward transfer allowed by default"
    );

    let bad = r#"
        jurisdiction = ["EU", "XX", "de"]
        purposes = ["research.", "a b"]
        valid_from = "2027-01-01T00:00:00Z"
        valid_until = "2026-01-01T00:00:00Z"
        max_transfers = 0
    "#;
    let e = Policy::parse(bad).unwrap_err();
    let all = e.0.join("\n");
    for needle in [
        "jurisdiction[1]: \"XX\"",
        "jurisdiction[2]: \"de\"",
        "purposes[0]: \"research.\" has an empty segment",
        "purposes[1]: \"a b\" must be",
        "valid_from 2027-01-01T00:00:00.000Z is not before valid_until",
        "max_transfers: 0",
    ] {
        assert!(all.contains(needle), "{needle} missing in:\n{all}");
    }
    let e = Policy::parse("purpose = [\"x\"]").unwrap_err();
    assert!(e.to_string().contains("unknown field `purpose`"), "{e}");
    let e = Policy::parse("valid_from = \"tomorrow\"").unwrap_err();
    assert!(e.to_string().contains("valid_from"), "{e}");
}
