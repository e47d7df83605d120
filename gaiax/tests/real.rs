//! Real published Gaia-X credentials (`tests/fixtures/real`, origins and licences in
//! `SOURCES.md`), each with the verdict of the project it comes from: the compliance
//! service's own test fixtures and a participant set the compliance service attested.
//!
//! Their signatures are the real ones: JsonWebSignature2020 (PS256) over RDFC-1.0 with the
//! bundled 22.10 registry context, keyed by the Gaia-X wizard's did:web (which carries the
//! key). The notary's and the compliance service's keys need their DID documents, which are
//! only on the network: those proofs are reported as not checked, naming the key.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gaiamesh_gaiax::{ImportOptions, Imported, ProofStatus, Release, Source, import};
use gaiamesh_protocol::sd::RegistrationKind;
use serde_json::Value;

fn fixture(path: &str) -> Source {
    let full = format!("{}/tests/fixtures/real/{path}", env!("CARGO_MANIFEST_DIR"));
    Source {
        name: path.to_owned(),
        bytes: std::fs::read(full).unwrap(),
    }
}

fn run(paths: &[&str]) -> Imported {
    let sources: Vec<Source> = paths.iter().map(|p| fixture(p)).collect();
    import(&sources, &ImportOptions::default())
}

/// The proof status of each credential, in input order, as a short word.
fn proofs(i: &Imported) -> Vec<&'static str> {
    i.report
        .credentials
        .iter()
        .map(|c| match &c.proof {
            ProofStatus::Verified { .. } => "verified",
            ProofStatus::Invalid { .. } => "invalid",
            ProofStatus::NotChecked { .. } => "not checked",
            ProofStatus::Unsigned => "unsigned",
        })
        .collect()
}

const WIZARD_KEY: &str = "the key in the issuer's did:web";

#[test]
fn the_compliance_services_valid_participant_imports_and_its_wizard_signatures_verify() {
    let out = run(&["gx-compliance/participant-vp.json"]);
    assert!(out.is_valid(), "{}", out.report.summary());
    let doc = out.document.as_ref().unwrap();
    assert_eq!(
        doc.participant.legal_name,
        "Gaia-X European Association for Data and Cloud AISBL"
    );
    // the registration number is referenced by the notary credential's id
    assert_eq!(doc.participant.registration.len(), 1);
    assert_eq!(
        doc.participant.registration[0].kind,
        RegistrationKind::VatId
    );
    assert_eq!(doc.participant.registration[0].value, "BE0762747721");
    assert_eq!(
        doc.participant.headquarters.subdivision.as_deref(),
        Some("BE-BRU")
    );
    assert!(
        out.report
            .credentials
            .iter()
            .all(|c| c.release == Release::Tagus),
        "{}",
        out.report.summary()
    );
    // notary (registration number), participant, terms and conditions
    assert_eq!(proofs(&out), ["not checked", "verified", "verified"]);
    for c in &out.report.credentials[1..] {
        let ProofStatus::Verified { alg, key } = &c.proof else {
            unreachable!()
        };
        assert_eq!(alg, "PS256");
        assert!(key.contains(WIZARD_KEY), "{key}");
    }
    // Strict mode refuses only what cannot be checked offline, and says which key is needed.
    let strict = out.report.strict_problems();
    assert_eq!(strict.len(), 1, "{strict:#?}");
    assert!(
        strict[0].contains("did:web:registration.lab.gaia-x.eu::development#X509-JWK2020")
            && strict[0].contains("--trust-key"),
        "{}",
        strict[0]
    );
    // nothing unreported: the terms-and-conditions subject and the country code are kept
    let kept: Vec<&str> = out
        .report
        .kept_aside
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert!(
        kept.iter()
            .any(|p| p.ends_with("[\"gx:vatID-countryCode\"]")),
        "{kept:?}"
    );
    assert!(
        kept.iter()
            .any(|p| p.ends_with("[2][\"credentialSubject\"]")),
        "{kept:?}"
    );
}

#[test]
fn the_compliance_services_valid_service_offering_imports_with_its_provider() {
    let out = run(&["gx-compliance/service-offering-vp.json"]);
    assert!(out.is_valid(), "{}", out.report.summary());
    let doc = out.document.as_ref().unwrap();
    assert_eq!(doc.services.len(), 1, "{}", out.report.summary());
    assert_eq!(
        proofs(&out),
        ["not checked", "verified", "verified", "verified"]
    );
    // Its terms' hash is 40 hex digits (a SHA-1), which the 22.10 shape allows and the
    // compliance service accepts: kept aside with the reason, not refused.
    assert!(out.report.invalid.is_empty(), "{:#?}", out.report.invalid);
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.detail.contains("not a SHA-256")
                && f.path.contains("gx:termsAndConditions")),
        "{:#?}",
        out.report.kept_aside
    );
    assert_eq!(out.report.strict_problems().len(), 1);
}

#[test]
fn the_compliance_services_faulty_participant_is_refused_naming_the_missing_address() {
    // Its origin: "returns false and errors for a Self Description not conforming to shape"
    // (gx:headqarterAddress is misspelt, so gx:headquarterAddress is missing).
    let out = run(&["gx-compliance/participant-vp-faulty.json"]);
    assert!(!out.is_valid());
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail == "no headquarters address"
                && f.path.ends_with("[\"credentialSubject\"]")),
        "{}",
        out.report.summary()
    );
    // the misspelt property is named: it is no Gaia-X 22.10 term
    assert!(
        out.report
            .warnings
            .iter()
            .any(|f| f.path.ends_with("[\"gx:headqarterAddress\"]")
                && f.detail.contains("not a Gaia-X 22.10 term")),
        "{}",
        out.report.summary()
    );
    // its issuer's did:web needs the network
    assert_eq!(proofs(&out), ["not checked"]);
}

#[test]
fn every_property_of_the_real_sets_is_read_by_its_iri_and_is_a_22_10_term() {
    for set in [
        &["gx-compliance/participant-vp.json"][..],
        &["gx-compliance/service-offering-vp.json"],
        &[
            "claim-compliance-provider/legalParticipant.json",
            "claim-compliance-provider/legalRegistrationNumber.json",
            "claim-compliance-provider/termsAndConditions.json",
        ],
    ] {
        let out = run(set);
        assert!(
            out.report.terms[0].starts_with(&format!(
                "{n} of {n} credential(s) read by the IRIs",
                n = out.report.credentials.len()
            )),
            "{set:?}: {:?}",
            out.report.terms
        );
        assert_eq!(out.report.warnings, [], "{set:?}");
    }
}

#[test]
fn the_compliance_services_participant_without_proof_is_refused_in_strict_mode() {
    let out = run(&["gx-compliance/participant-vp-faulty-missing-proof.json"]);
    assert_eq!(proofs(&out), ["unsigned"]);
    let strict = out.report.strict_problems();
    assert!(
        strict.iter().any(|p| p.ends_with(": no proof")),
        "{strict:#?}"
    );
}

#[test]
fn a_real_credential_edited_after_signing_is_caught() {
    let mut vp: Value =
        serde_json::from_slice(&fixture("gx-compliance/participant-vp.json").bytes).unwrap();
    vp["verifiableCredential"][1]["credentialSubject"]["gx:legalName"] =
        "Gaia-X European Association for Data and Cloud AISBL (edited)".into();
    let source = Source {
        name: "edited.json".into(),
        bytes: serde_json::to_vec(&vp).unwrap(),
    };
    let out = import(&[source], &ImportOptions::default());
    assert_eq!(proofs(&out), ["not checked", "invalid", "verified"]);
    assert!(
        out.report
            .strict_problems()
            .iter()
            .any(|p| p.contains("[1]") && p.contains("INVALID")),
        "{:#?}",
        out.report.strict_problems()
    );
    // a signature moved to another issuer's credential does not verify either
    let mut vp: Value =
        serde_json::from_slice(&fixture("gx-compliance/participant-vp.json").bytes).unwrap();
    let proof = vp["verifiableCredential"][1]["proof"].clone();
    vp["verifiableCredential"][2]["proof"] = proof;
    let source = Source {
        name: "moved.json".into(),
        bytes: serde_json::to_vec(&vp).unwrap(),
    };
    let out = import(&[source], &ImportOptions::default());
    assert_eq!(proofs(&out), ["not checked", "verified", "invalid"]);
}

const MSG_SET: [&str; 3] = [
    "claim-compliance-provider/legalParticipant.json",
    "claim-compliance-provider/legalRegistrationNumber.json",
    "claim-compliance-provider/termsAndConditions.json",
];

#[test]
fn a_participant_set_the_compliance_service_attested_imports_from_three_files() {
    let out = run(&MSG_SET);
    assert!(out.is_valid(), "{}", out.report.summary());
    let doc = out.document.as_ref().unwrap();
    assert_eq!(doc.participant.legal_name, "msg DAVID");
    assert_eq!(doc.participant.registration[0].value, "DE114884769");
    assert_eq!(
        doc.participant.headquarters.subdivision.as_deref(),
        Some("DE-NI")
    );
    assert_eq!(proofs(&out), ["verified", "not checked", "verified"]);
    let strict = out.report.strict_problems();
    assert_eq!(strict.len(), 1, "{strict:#?}");
    assert!(strict[0].contains("registrationnumber.notary.lab.gaia-x.eu"));
    // the originals are kept, one per file
    assert_eq!(out.originals.len(), 3);
}

#[test]
fn the_compliance_services_answer_is_a_22_10_credential_that_has_expired() {
    let out = run(&["claim-compliance-provider/complianceCredentialsResponse.json"]);
    let c = &out.report.credentials[0];
    assert_eq!(c.release, Release::Tagus, "{}", out.report.summary());
    assert!(!c.validity.is_valid());
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail.starts_with("EXPIRED at 2024-07-29T09:05:25.477Z")),
        "{}",
        out.report.summary()
    );
    // before its expiry, with the participant set, everything is in its window
    let sources: Vec<Source> = MSG_SET
        .iter()
        .chain(["claim-compliance-provider/complianceCredentialsResponse.json"].iter())
        .map(|p| fixture(p))
        .collect();
    let at = 1_714_521_600; // 2024-05-01T00:00:00Z
    let out = import(
        &sources,
        &ImportOptions {
            at: Some(at),
            ..ImportOptions::default()
        },
    );
    assert!(out.is_valid(), "{}", out.report.summary());
    assert!(out.report.credentials.iter().all(|c| c.validity.is_valid()));
}

/// The VC-JWT example of the Gaia-X ICAM document (24.07 and 25.11), signed with the key the
/// document publishes beside it.
fn icam_example(edit: impl FnOnce(&str) -> String) -> Imported {
    let dir = format!(
        "{}/tests/fixtures/real/gaia-x-icam",
        env!("CARGO_MANIFEST_DIR")
    );
    let jwk = std::fs::read_to_string(format!("{dir}/example-org-key.jwk.json")).unwrap();
    let token = std::fs::read_to_string(format!("{dir}/legal-participant.jwt")).unwrap();
    let opts = ImportOptions {
        trusted: gaiamesh_gaiax::jwt::parse_trusted(&jwk, None).unwrap(),
        at: Some(1_706_745_600), // 2024-02-01
        ..ImportOptions::default()
    };
    import(
        &[Source {
            name: "legal-participant.jwt".into(),
            bytes: edit(token.trim()).into_bytes(),
        }],
        &opts,
    )
}

#[test]
fn the_icam_documents_vc_jwt_example_verifies_with_its_published_key_and_is_never_valid() {
    let out = icam_example(str::to_owned);
    let c = &out.report.credentials[0];
    assert_eq!(c.format, "vc-jwt");
    assert!(
        matches!(&c.proof, ProofStatus::Verified { alg, key }
            if alg == "PS256" && key.contains("did:web:example.org#JWK2020-RSA")),
        "{:?}",
        c.proof
    );
    // the example's window is inverted (valid from 2024-04-01, until 2024-01-01): it is
    // valid at no instant, which the report says and strict mode refuses
    assert!(
        c.validity.describe().contains("valid at no instant"),
        "{:?}",
        c.validity
    );
    let strict = out.report.strict_problems();
    assert!(
        strict
            .iter()
            .any(|p| p.starts_with("legal-participant.jwt") && p.contains("ends (2024-01-01")),
        "{strict:?}"
    );
    // it references a registration-number credential it does not carry
    assert!(!out.is_valid());
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail.contains("in none of the input credentials")),
        "{}",
        out.report.summary()
    );
    // one character of the payload changed: the signature no longer verifies
    let forged = icam_example(|t| {
        let (head, rest) = t.split_once('.').unwrap();
        let (payload, sig) = rest.split_once('.').unwrap();
        let mut p = payload.to_owned().into_bytes();
        p[40] = if p[40] == b'A' { b'B' } else { b'A' };
        format!("{head}.{}.{sig}", String::from_utf8(p).unwrap())
    });
    assert!(
        matches!(
            forged.report.credentials.first().map(|c| &c.proof),
            Some(ProofStatus::Invalid { .. }) | None
        ),
        "{}",
        forged.report.summary()
    );
}
