//! Import and export of Gaia-X credentials, with fixtures written for both releases
//! (`tests/fixtures/tagus`, `tests/fixtures/loire`) and VC-JWTs signed in the tests with
//! EdDSA, ES256 and PS256 keys.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use gaiamesh_gaiax::{
    ExportFormat, ImportOptions, Imported, ProofStatus, Release, Signer, Source, did_key, export,
    import, jwt,
};
use gaiamesh_protocol::{
    sd::{ProtectionLevel, RegistrationKind, SdDocument, ServiceKind},
    time::UnixMillis,
};
use serde_json::{Value, json};
use sha2::Digest as _;

fn fixture(path: &str) -> Source {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    Source {
        name: path.to_owned(),
        bytes: std::fs::read(full).unwrap(),
    }
}

fn run(sources: &[Source]) -> Imported {
    import(sources, &ImportOptions::default())
}

fn doc(i: &Imported) -> &SdDocument {
    assert!(i.is_valid(), "{}", i.report.summary());
    i.document.as_ref().unwrap()
}

fn mapped_to(i: &Imported, field: &str) -> Vec<String> {
    i.report
        .mapped
        .iter()
        .filter(|f| f.detail == field)
        .map(|f| f.path.clone())
        .collect()
}

#[test]
fn tagus_presentation_maps_participant_services_and_data_resources() {
    let src = fixture("tagus/participant-vp.json");
    let out = run(std::slice::from_ref(&src));
    let d = doc(&out);
    let p = &d.participant;
    assert_eq!(p.legal_name, "Nordwolke GmbH");
    // In the order of the registration credential's properties (JSON objects are sorted).
    let regs: Vec<_> = p
        .registration
        .iter()
        .map(|r| (r.kind, r.value.as_str()))
        .collect();
    assert_eq!(
        regs,
        [
            (RegistrationKind::LeiCode, "5299009MZ4LMSOTHXY78"),
            (RegistrationKind::VatId, "DE123456789")
        ]
    );
    assert_eq!(p.headquarters.country, "DE");
    assert_eq!(p.headquarters.subdivision.as_deref(), Some("DE-BY"));
    assert_eq!(
        p.legal_address.as_ref().unwrap().subdivision.as_deref(),
        Some("DE-BE")
    );
    assert_eq!(d.node.location.country, "DE");

    assert_eq!(d.services.len(), 2);
    let s3 = &d.services[0];
    assert_eq!(s3.id, "s3-eu-central");
    assert_eq!(s3.kind, ServiceKind::Other);
    assert_eq!(s3.name.as_deref(), Some("S3-compatible object storage"));
    assert_eq!(s3.keywords, ["storage", "s3"]);
    assert_eq!(s3.usage_policy.as_deref(), Some("default: allow"));
    let terms = s3.terms.as_ref().unwrap();
    assert_eq!(terms.url, "https://nordwolke.example/terms.pdf");
    assert_eq!(
        terms.sha256,
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    );
    assert_eq!(s3.data_export[0].request_type, "API");
    assert_eq!(s3.data_export[0].format, "application/json");
    let data = &d.services[1];
    assert_eq!(data.kind, ServiceKind::DataResource);
    assert_eq!(data.id, "weather-2026");
    assert_eq!(data.usage_policy.as_deref(), Some("use: research only"));

    // JSON paths of what was mapped.
    assert_eq!(
        mapped_to(&out, "participant.legal_name"),
        [
            r#"tagus/participant-vp.json:$["verifiableCredential"][0]["credentialSubject"]["gx:legalName"]"#
        ]
    );
    assert_eq!(
        mapped_to(&out, "participant.registration[1]"),
        [
            r#"tagus/participant-vp.json:$["verifiableCredential"][1]["credentialSubject"]["gx:vatID"]"#
        ]
    );
    // Unmapped properties are kept aside, in the extensions while they fit.
    let parent = out
        .report
        .kept_aside
        .iter()
        .find(|f| f.path.ends_with(r#"["gx:parentOrganization"]"#))
        .expect("parentOrganization kept aside");
    let key = parent.detail.strip_prefix("extensions.").unwrap();
    assert!(
        d.extensions[key].contains("holding.example"),
        "{:?}",
        d.extensions
    );
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.path.ends_with(r#"["gx:license"]"#))
    );
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.detail.contains("GaiaXTermsAndConditions")
                || f.detail.contains("gaiaxtermsandconditions")),
        "{:?}",
        out.report.kept_aside
    );
    // The original bytes and their SHA-256, referenced from the document.
    let sha = hex::encode(sha2::Sha256::digest(&src.bytes));
    assert_eq!(out.originals.len(), 1);
    assert_eq!(out.originals[0].sha256, sha);
    assert_eq!(out.originals[0].bytes, src.bytes);
    assert!(d.extensions["gaiax.original.0"].starts_with(&format!("sha256:{sha}")));
    // Every credential is reported; the JSON-LD proof cannot be checked offline: the
    // 22.10 context is bundled, but the issuer's key is only in its did:web document.
    assert_eq!(out.report.credentials.len(), 5);
    assert!(out.report.credentials.iter().all(|c| c.format == "json-ld"));
    assert!(
        out.report.credentials[..4]
            .iter()
            .all(|c| c.release == Release::Tagus)
    );
    assert!(
        matches!(
            &out.report.credentials[0].proof,
            ProofStatus::NotChecked { reason }
                if reason.contains("did:web:nordwolke.example#JWK2020-RSA")
                    && reason.contains("--trust-key")
        ),
        "{:?}",
        out.report.credentials[0].proof
    );
    assert_eq!(out.report.credentials[1].proof, ProofStatus::Unsigned);
    assert!(out.report.invalid.is_empty(), "{:?}", out.report.invalid);
}

#[test]
fn a_service_without_provided_by_is_refused_with_its_path() {
    let out = run(&[fixture("tagus/missing-provided-by.json")]);
    let d = doc(&out);
    assert!(d.services.is_empty());
    let f = &out.report.invalid[0];
    assert_eq!(
        f.path,
        r#"tagus/missing-provided-by.json:$["verifiableCredential"][2]["credentialSubject"]"#
    );
    assert!(
        f.detail.contains("gx:providedBy is missing"),
        "{}",
        f.detail
    );
}

#[test]
fn a_bad_country_code_is_invalid_and_no_document_is_made() {
    let out = run(&[fixture("tagus/bad-country.json")]);
    assert!(!out.is_valid());
    assert!(out.document.is_none());
    let f = out
        .report
        .invalid
        .iter()
        .find(|f| {
            f.path
                .ends_with(r#"["gx:headquarterAddress"]["gx:countrySubdivisionCode"]"#)
        })
        .unwrap_or_else(|| panic!("{:?}", out.report.invalid));
    assert!(
        f.detail.contains("\"XX\" is not an ISO 3166-1"),
        "{}",
        f.detail
    );
}

#[test]
fn malformed_input_is_reported_and_the_rest_still_imports() {
    let junk = Source {
        name: "junk.json".into(),
        bytes: b"{\"type\": \"VerifiablePresentation\"".to_vec(),
    };
    let not_vc = Source {
        name: "other.json".into(),
        bytes: br#"{"hello": "world"}"#.to_vec(),
    };
    let bad_jwt = Source {
        name: "bad.jwt".into(),
        bytes: b"eyJhbGciOiJFZERTQSJ9.bm90IGpzb24.c2ln".to_vec(),
    };
    let out = run(&[junk, not_vc, bad_jwt, fixture("tagus/participant-vp.json")]);
    assert!(out.is_valid());
    let paths: Vec<&str> = out.report.invalid.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["junk.json", "other.json:$", "bad.jwt"],
        "{:?}",
        out.report.invalid
    );
    assert!(
        out.report.invalid[0]
            .detail
            .contains("neither JSON nor a compact JWT")
    );
    assert!(out.report.invalid[2].detail.contains("payload"));
    let none = run(&[fixture("loire/credentials.json")][..0]);
    assert!(none.document.is_none());
    assert!(
        none.report.invalid[0]
            .detail
            .contains("no gx:LegalParticipant")
    );
}

fn check_loire(out: &Imported) {
    let d = doc(out);
    let p = &d.participant;
    assert_eq!(p.legal_name, "Meridian Cloud SAS");
    let kinds: Vec<_> = p
        .registration
        .iter()
        .map(|r| (r.kind, r.value.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (RegistrationKind::VatId, "FR40303265045"),
            (RegistrationKind::LeiCode, "969500KSV493XWY0PS33")
        ]
    );
    assert_eq!(p.headquarters.country, "FR");
    assert_eq!(p.headquarters.subdivision.as_deref(), Some("FR-IDF"));
    assert_eq!(p.headquarters.city.as_deref(), Some("Paris"));
    assert_eq!(p.legal_address.as_ref().unwrap().country, "FR");
    let s = &d.services[0];
    assert_eq!(s.id, "gpu-training");
    assert_eq!(s.name.as_deref(), Some("GPU training cluster"));
    assert_eq!(
        s.endpoint.as_deref(),
        Some("https://api.meridian.example/v1")
    );
    assert_eq!(s.keywords, ["ai", "training", "gpu"]);
    assert_eq!(
        s.usage_policy.as_deref(),
        Some("default: allow\njurisdiction: EU")
    );
    assert_eq!(
        s.terms.as_ref().unwrap().url,
        "https://meridian.example/terms"
    );
    assert_eq!(s.data_export[0].request_type, "email");
    assert_eq!(s.protection_level, Some(ProtectionLevel::Substantial));
    assert!(out.report.invalid.is_empty(), "{:?}", out.report.invalid);
}

#[test]
fn loire_json_ld_maps_legal_person_registrations_services_and_label() {
    let out = run(&[fixture("loire/credentials.json")]);
    check_loire(&out);
    assert!(
        out.report
            .credentials
            .iter()
            .all(|c| c.release == Release::Loire)
    );
}

/// A compact JWS over `payload` with `header`, signed by `sign`.
fn jws(header: Value, payload: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(payload.to_string())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig))
}

#[test]
fn loire_vc_jwts_verify_with_eddsa_es256_and_ps256_and_tampering_is_caught() {
    let creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    let mut rng = rand::rngs::OsRng;

    // EdDSA, issuer did:key.
    let ed = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let did = did_key::ed25519_did(&ed.verifying_key().to_bytes());
    let mut c0 = creds[0].clone();
    c0["issuer"] = did.clone().into();
    let t0 = jws(
        json!({"alg": "EdDSA", "typ": "vc+jwt", "kid": did_key::verification_method(&did)}),
        &c0,
        |m| {
            use ed25519_dalek::Signer as _;
            ed.sign(m).to_bytes().to_vec()
        },
    );

    // ES256, key given with --trust-key.
    let es = p256::ecdsa::SigningKey::random(&mut rng);
    let point = es.verifying_key().to_encoded_point(false);
    let es_jwk = json!({"kty": "EC", "crv": "P-256", "kid": "did:web:notary.example#es256",
        "x": B64.encode(point.x().unwrap()), "y": B64.encode(point.y().unwrap())});
    let es_sign = |m: &[u8]| {
        use p256::ecdsa::signature::Signer as _;
        let s: p256::ecdsa::Signature = es.sign(m);
        s.to_bytes().to_vec()
    };
    let t1 = jws(
        json!({"alg": "ES256", "kid": "did:web:notary.example#es256"}),
        &creds[1],
        es_sign,
    );

    // PS256, key in the header.
    let rsa_key = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let public = rsa_key.to_public_key();
    use rsa::traits::PublicKeyParts as _;
    let rsa_jwk = json!({"kty": "RSA", "n": B64.encode(public.n().to_bytes_be()),
        "e": B64.encode(public.e().to_bytes_be())});
    let ps = rsa::pss::BlindedSigningKey::<sha2::Sha256>::new(rsa_key);
    // (issued by a lab none of whose keys is trusted here: a notary's credential must verify
    // with the notary's trusted key, not with a key its header brings along)
    let mut c2 = creds[2].clone();
    c2["issuer"] = "did:web:lab.example".into();
    let t2 = jws(json!({"alg": "PS256", "jwk": rsa_jwk.clone()}), &c2, |m| {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        ps.sign_with_rng(&mut rand::rngs::OsRng, m).to_vec()
    });
    // The others as VC-DM 1.1 JWTs (`vc` claim), EdDSA with a header JWK.
    let ed_jwk = jwt::ed25519_jwk(&ed.verifying_key().to_bytes());
    let rest: Vec<String> = creds[3..]
        .iter()
        .map(|c| {
            jws(
                json!({"alg": "EdDSA", "jwk": ed_jwk}),
                &json!({"vc": c}),
                |m| {
                    use ed25519_dalek::Signer as _;
                    ed.sign(m).to_bytes().to_vec()
                },
            )
        })
        .collect();

    let mut list: Vec<Value> = [&t0, &t1, &t2]
        .iter()
        .map(|t| json!({"type": "EnvelopedVerifiableCredential", "id": format!("data:application/vc+jwt,{t}")}))
        .collect();
    list.extend(rest.iter().map(|t| Value::String(t.clone())));
    let vp = json!({"type": "VerifiablePresentation", "verifiableCredential": list});
    let src = Source {
        name: "vp.json".into(),
        bytes: vp.to_string().into_bytes(),
    };
    let trusted = jwt::parse_trusted(&json!({"keys": [es_jwk]}).to_string(), None).unwrap();
    let out = import(
        std::slice::from_ref(&src),
        &ImportOptions {
            trusted: trusted.clone(),
            ..ImportOptions::default()
        },
    );
    check_loire(&out);
    let proofs: Vec<&ProofStatus> = out.report.credentials.iter().map(|c| &c.proof).collect();
    assert!(
        matches!(proofs[0], ProofStatus::Verified { alg, key } if alg == "EdDSA" && key == "did:key issuer")
    );
    assert!(
        matches!(proofs[1], ProofStatus::Verified { alg, key } if alg == "ES256" && key == "trusted key did:web:notary.example#es256")
    );
    assert!(
        matches!(proofs[2], ProofStatus::Verified { alg, key } if alg == "PS256" && key.starts_with("header jwk"))
    );
    assert!(
        proofs[3..]
            .iter()
            .all(|p| matches!(p, ProofStatus::Verified { .. }))
    );
    // In the notary's name, a key the header brings along does not replace the notary's
    // trusted key.
    let posing = jws(json!({"alg": "PS256", "jwk": rsa_jwk}), &creds[2], |m| {
        use rsa::signature::{RandomizedSigner as _, SignatureEncoding as _};
        ps.sign_with_rng(&mut rand::rngs::OsRng, m).to_vec()
    });
    let posing = jwt::decode(&posing).unwrap().check(&trusted);
    assert!(
        matches!(&posing, ProofStatus::Invalid { reason } if reason.contains("trusted key did:web:notary.example#es256")),
        "{posing:?}"
    );
    // The JWTs are kept as they were, each with its own hash.
    let jwts: Vec<_> = out.originals.iter().filter(|o| o.kind == "jwt").collect();
    assert_eq!(jwts.len(), 5);
    assert_eq!(jwts[0].bytes, t0.as_bytes());

    // Without the trusted key the ES256 credential cannot be checked offline.
    let untrusted = run(std::slice::from_ref(&src));
    assert!(matches!(
        &untrusted.report.credentials[1].proof,
        ProofStatus::NotChecked { reason } if reason.contains("--trust-key")
    ));

    // A tampered payload: the legal name changed after signing.
    let parts: Vec<&str> = t0.split('.').collect();
    let mut forged = c0.clone();
    forged["credentialSubject"]["schema:name"] = "Mallory SAS".into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(forged.to_string()),
        parts[2]
    );
    let out = run(&[Source {
        name: "tampered.jwt".into(),
        bytes: tampered.into_bytes(),
    }]);
    assert!(matches!(
        &out.report.credentials[0].proof,
        ProofStatus::Invalid { reason } if reason.contains("does not verify")
    ));
}

#[test]
fn import_export_import_keeps_every_mapped_field() {
    for src in ["tagus/participant-vp.json", "loire/credentials.json"] {
        let first = run(&[fixture(src)]);
        let mut d1 = doc(&first).clone();
        let node = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
        let pk = node.verifying_key().to_bytes();
        let sign = |m: &[u8]| {
            use ed25519_dalek::Signer as _;
            node.sign(m).to_bytes()
        };
        for format in [
            ExportFormat::JsonLd,
            ExportFormat::VcJwt,
            ExportFormat::Tagus { gaia_x_terms: true },
        ] {
            if let ExportFormat::Tagus { .. } = format
                && d1
                    .participant
                    .legal_address
                    .as_ref()
                    .is_some_and(|a| a.subdivision.is_none())
            {
                // 22.10 addresses are subdivision codes: the Loire set's legal address
                // (a country only) cannot be exported until it has one.
                let e = export(&d1, &pk, format, None, UnixMillis(0)).unwrap_err();
                assert!(
                    e.to_string()
                        .contains("participant.legal_address.subdivision"),
                    "{e}"
                );
                if let Some(legal) = d1.participant.legal_address.as_mut() {
                    legal.subdivision = Some(format!("{}-IDF", legal.country));
                }
            }
            let vp = export(
                &d1,
                &pk,
                format,
                Some(Signer {
                    public: &pk,
                    sign: &sign,
                    did: None,
                }),
                UnixMillis(1_800_000_000_000),
            )
            .unwrap();
            // checked just after the export was made
            let again = import(
                &[Source {
                    name: "exported.json".into(),
                    bytes: vp.to_string().into_bytes(),
                }],
                &ImportOptions {
                    at: Some(1_800_000_001),
                    ..ImportOptions::default()
                },
            );
            let d2 = doc(&again);
            assert_eq!(d2.participant, d1.participant, "{src} {format:?}");
            assert_eq!(d2.services.len(), d1.services.len());
            for (a, b) in d1.services.iter().zip(&d2.services) {
                assert_eq!(
                    (
                        &a.id,
                        a.kind,
                        &a.name,
                        &a.description,
                        &a.keywords,
                        &a.endpoint
                    ),
                    (
                        &b.id,
                        b.kind,
                        &b.name,
                        &b.description,
                        &b.keywords,
                        &b.endpoint
                    ),
                    "{src} {format:?}"
                );
                assert_eq!(
                    (&a.terms, &a.usage_policy, &a.data_export),
                    (&b.terms, &b.usage_policy, &b.data_export)
                );
            }
            if format == ExportFormat::VcJwt {
                assert!(
                    again.report.credentials.iter().all(|c| matches!(
                        &c.proof,
                        ProofStatus::Verified { key, .. } if key == "did:key issuer"
                    )),
                    "{:?}",
                    again.report.credentials
                );
            }
            if let ExportFormat::Tagus { .. } = format {
                // Every credential and the presentation carry a JsonWebSignature2020 proof
                // that verifies offline with the bundled 22.10 context, and the import is
                // clean enough for strict mode.
                assert!(
                    again.report.credentials.iter().all(|c| c.release
                        == gaiamesh_gaiax::Release::Tagus
                        && matches!(&c.proof, ProofStatus::Verified { alg, .. } if alg == "EdDSA")),
                    "{src}: {:?}",
                    again.report.credentials
                );
                assert!(
                    again
                        .report
                        .presentations
                        .iter()
                        .all(|p| matches!(&p.proof, ProofStatus::Verified { .. })),
                    "{:?}",
                    again.report.presentations
                );
                assert_eq!(again.report.strict_problems(), Vec::<String>::new());
            }
        }
    }
}

#[test]
fn validity_windows_are_checked_at_a_given_instant_and_strict_mode_lists_every_problem() {
    let mut creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    creds[1]["validUntil"] = "2026-12-01T00:00:00Z".into();
    let src = Source {
        name: "creds.json".into(),
        bytes: serde_json::to_vec(&creds).unwrap(),
    };
    let at = |t: &str| {
        gaiamesh_gaiax::validity::parse_time(t)
            .unwrap()
            .unix_timestamp()
    };
    let before = import(
        std::slice::from_ref(&src),
        &ImportOptions {
            at: Some(at("2026-11-15T00:00:00Z")),
            ..ImportOptions::default()
        },
    );
    assert!(
        before
            .report
            .credentials
            .iter()
            .all(|c| c.validity.is_valid())
    );
    let after = import(
        std::slice::from_ref(&src),
        &ImportOptions {
            at: Some(at("2026-12-02T00:00:00Z")),
            ..ImportOptions::default()
        },
    );
    let expired = &after.report.credentials[1].validity;
    assert!(
        matches!(expired, gaiamesh_gaiax::Validity::Expired { until, at } if until == "2026-12-01T00:00:00Z" && at == "2026-12-02T00:00:00Z"),
        "{expired:?}"
    );
    assert!(
        after
            .report
            .invalid
            .iter()
            .any(|f| f.path.contains("[1]") && f.detail.contains("EXPIRED")),
        "{}",
        after.report.summary()
    );
    // Before its start, too.
    let early = import(
        std::slice::from_ref(&src),
        &ImportOptions {
            at: Some(at("2026-10-01T00:00:00Z")),
            ..ImportOptions::default()
        },
    );
    assert!(matches!(
        early.report.credentials[0].validity,
        gaiamesh_gaiax::Validity::NotYetValid { .. }
    ));
    // Strict: every unsigned credential and the expired one, each by its path.
    let problems = after.report.strict_problems();
    assert_eq!(
        problems.iter().filter(|p| p.ends_with("no proof")).count(),
        creds.len(),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("EXPIRED")),
        "{problems:?}"
    );
}

#[test]
fn the_compliance_services_wrapped_answer_imports_with_both_parts() {
    let vp: Value = serde_json::from_slice(&fixture("tagus/participant-vp.json").bytes).unwrap();
    let wrapped = json!({
        "selfDescriptionCredential": vp,
        "complianceCredential": {
            "@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiableCredential"],
            "id": "https://compliance.example/credential-offers/1",
            "issuer": "did:web:compliance.example",
            "issuanceDate": "2026-11-01T00:00:00Z",
            "credentialSubject": [{
                "type": "gx:compliance",
                "id": "https://nordwolke.example/participant.json",
                "integrity": "sha256-0123"
            }]
        }
    });
    let src = Source {
        name: "compliance-answer.json".into(),
        bytes: wrapped.to_string().into_bytes(),
    };
    let out = run(std::slice::from_ref(&src));
    assert_eq!(doc(&out).participant.legal_name, "Nordwolke GmbH");
    let origins: Vec<&str> = out
        .report
        .credentials
        .iter()
        .map(|c| c.origin.as_str())
        .collect();
    assert!(
        origins[0].contains("[\"selfDescriptionCredential\"][\"verifiableCredential\"][0]"),
        "{origins:?}"
    );
    assert!(
        origins
            .last()
            .unwrap()
            .ends_with("[\"complianceCredential\"]"),
        "{origins:?}"
    );
}

/// The 22.10 participant set as the notary and wizard issue it: every subject is the
/// participant's DID, and `gx:legalRegistrationNumber` names the registration-number
/// *credential*.
fn notary_style_set() -> Value {
    let mut vp: Value =
        serde_json::from_slice(&fixture("tagus/participant-vp.json").bytes).unwrap();
    let did = "did:web:nordwolke.example";
    let creds = vp["verifiableCredential"].as_array_mut().unwrap();
    for c in creds.iter_mut() {
        if c["credentialSubject"]["type"] != "gx:ServiceOffering"
            && c["credentialSubject"]["type"] != "gx:DataResource"
        {
            c["credentialSubject"]["id"] = did.into();
        }
    }
    creds[0]["credentialSubject"]["gx:legalRegistrationNumber"] =
        json!({"id": "https://nordwolke.example/credentials/lrn.json"});
    for c in creds.iter_mut().skip(2).take(2) {
        for k in ["gx:providedBy", "gx:producedBy"] {
            if c["credentialSubject"].get(k).is_some() {
                c["credentialSubject"][k] = json!({ "id": did });
            }
        }
    }
    vp
}

#[test]
fn references_resolve_against_credential_ids_and_shared_subject_ids() {
    let vp = notary_style_set();
    let src = Source {
        name: "notary.json".into(),
        bytes: vp.to_string().into_bytes(),
    };
    let out = run(std::slice::from_ref(&src));
    let d = doc(&out);
    assert_eq!(d.participant.legal_name, "Nordwolke GmbH");
    let kinds: Vec<_> = d.participant.registration.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&RegistrationKind::VatId), "{kinds:?}");
    assert!(kinds.contains(&RegistrationKind::LeiCode), "{kinds:?}");
    assert_eq!(d.services.len(), 2, "{}", out.report.summary());
    // a reference to an id nobody has is still named
    let mut broken = vp.clone();
    broken["verifiableCredential"][0]["credentialSubject"]["gx:legalRegistrationNumber"] =
        json!({"id": "https://nowhere.example/lrn.json"});
    let out = run(&[Source {
        name: "broken.json".into(),
        bytes: broken.to_string().into_bytes(),
    }]);
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail.contains("in none of the input credentials")),
        "{}",
        out.report.summary()
    );
}

#[test]
fn a_loire_participant_without_a_name_is_named_by_its_id_and_embedded_providers_count() {
    let creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    let mut nameless = creds.clone();
    let participant = nameless[0]["credentialSubject"].as_object_mut().unwrap();
    let name_key = participant
        .keys()
        .find(|k| k.ends_with("name"))
        .cloned()
        .unwrap();
    participant.remove(&name_key);
    let out = run(&[Source {
        name: "nameless.json".into(),
        bytes: serde_json::to_vec(&nameless).unwrap(),
    }]);
    let id = creds[0]["credentialSubject"]["id"].as_str().unwrap();
    assert_eq!(doc(&out).participant.legal_name, id);
    assert!(
        out.report
            .mapped
            .iter()
            .any(|f| f.detail.contains("named by its id")),
        "{}",
        out.report.summary()
    );
    // The participant only inside the offering's gx:providedBy (no credential of its own).
    let mut embedded: Vec<Value> = creds
        .iter()
        .filter(|c| {
            c["credentialSubject"]["type"]
                .as_str()
                .is_some_and(|t| t != "gx:LegalPerson")
        })
        .cloned()
        .collect();
    let offering = embedded
        .iter_mut()
        .find(|c| c["credentialSubject"]["type"] == "gx:ServiceOffering")
        .unwrap();
    offering["credentialSubject"]["gx:providedBy"] = creds[0]["credentialSubject"].clone();
    let out = run(&[Source {
        name: "embedded.json".into(),
        bytes: serde_json::to_vec(&embedded).unwrap(),
    }]);
    let d = doc(&out);
    assert_eq!(d.participant.legal_name, "Meridian Cloud SAS");
    assert!(!d.services.is_empty(), "{}", out.report.summary());
}

#[test]
fn exported_credentials_bind_every_prefix_they_use_and_name_a_legal_address() {
    let first = run(&[fixture("loire/credentials.json")]);
    let mut d = doc(&first).clone();
    d.participant.legal_address = None;
    let vp = export(
        &d,
        &[1u8; 32],
        ExportFormat::JsonLd,
        None,
        UnixMillis(1_800_000_000_000),
    )
    .unwrap();
    fn keys(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    if k != "@context" {
                        out.push(k.clone());
                        keys(x, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    for c in vp["verifiableCredential"].as_array().unwrap() {
        let ctx = c["@context"].as_array().unwrap();
        assert_eq!(ctx[0], "https://www.w3.org/ns/credentials/v2");
        assert_eq!(ctx[1], "https://w3id.org/gaia-x/development#");
        let bound = ctx[2].as_object().unwrap();
        let mut used = Vec::new();
        keys(&c["credentialSubject"], &mut used);
        for k in used {
            if let Some((prefix, _)) = k.split_once(':')
                && prefix != "gx"
            {
                assert!(bound.contains_key(prefix), "{k} uses an unbound prefix");
                assert!(bound[prefix].as_str().unwrap().starts_with("http"));
            }
        }
    }
    let person = &vp["verifiableCredential"][0]["credentialSubject"];
    assert_eq!(person["type"], "gx:LegalPerson");
    assert_eq!(
        person["gx:legalAddress"], person["gx:headquartersAddress"],
        "without its own legal address the headquarters are it"
    );
}

#[test]
fn an_odrl_service_policy_maps_its_enforceable_terms_and_keeps_the_rest() {
    let mut creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    let offering = creds
        .iter_mut()
        .find(|c| c["credentialSubject"]["type"] == "gx:ServiceOffering")
        .unwrap();
    offering["credentialSubject"]["gx:servicePolicy"] = json!({
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Offer",
        "permission": [{
            "action": "use",
            "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"},
                {"leftOperand": "spatial", "operator": "isAnyOf", "rightOperand": ["DE", "FR"]},
                {"leftOperand": "dateTime", "operator": "lteq", "rightOperand": "2027-06-30"},
                {"leftOperand": "payAmount", "operator": "eq", "rightOperand": "10"}
            ]
        }],
        "prohibition": [{"action": "distribute"}]
    });
    let out = run(&[Source {
        name: "odrl.json".into(),
        bytes: serde_json::to_vec(&creds).unwrap(),
    }]);
    let d = doc(&out);
    let svc = d
        .services
        .iter()
        .find(|s| {
            s.usage_policy
                .as_deref()
                .is_some_and(|p| p.starts_with("ODRL:"))
        })
        .expect("a service with the ODRL summary");
    let summary = svc.usage_policy.as_deref().unwrap();
    assert!(
        summary.contains("purposes research")
            && summary.contains("consumers in DE, FR")
            && summary.contains("until 2027-06-30")
            && summary.contains("no onward transfer"),
        "{summary}"
    );
    let (sid, terms) = &out.policies[0];
    assert_eq!(sid, &svc.id);
    assert_eq!(terms.purposes, ["research"]);
    // nothing lost: the unmapped term is reported and the whole policy kept verbatim
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.detail.contains("payAmount")),
        "{}",
        out.report.summary()
    );
    assert!(
        d.extensions
            .values()
            .any(|v| v.contains("odrl.jsonld") && v.contains("payAmount"))
    );
}

#[test]
fn another_releases_property_names_are_mapped_with_a_warning_that_strict_mode_refuses() {
    let mut creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    let person = creds[0]["credentialSubject"].as_object_mut().unwrap();
    let name_key = person
        .keys()
        .find(|k| k.ends_with("name"))
        .cloned()
        .unwrap();
    let name = person.remove(&name_key).unwrap();
    person.insert("gx:legalName".into(), name); // the 22.10 name under gx:LegalPerson
    let out = run(&[Source {
        name: "mixed.json".into(),
        bytes: serde_json::to_vec(&creds).unwrap(),
    }]);
    assert_eq!(doc(&out).participant.legal_name, "Meridian Cloud SAS");
    let w = &out.report.warnings;
    assert_eq!(w.len(), 1, "{}", out.report.summary());
    assert!(
        w[0].path.ends_with("[\"gx:legalName\"]") && w[0].detail.contains("schema:name"),
        "{w:?}"
    );
    assert!(
        out.report
            .strict_problems()
            .iter()
            .any(|p| p.contains("22.10 name"))
    );
    // The fixtures as published use their own release's names: no warning.
    for f in ["loire/credentials.json", "tagus/participant-vp.json"] {
        assert!(run(&[fixture(f)]).report.warnings.is_empty(), "{f}");
    }
}

/// The 22.10 fixture's participant credential with its subject edited by `edit` (its proof
/// then fails, which these tests do not look at).
fn tagus_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Imported {
    let mut vp: Value =
        serde_json::from_slice(&fixture("tagus/participant-vp.json").bytes).unwrap();
    edit(
        vp["verifiableCredential"][0]["credentialSubject"]
            .as_object_mut()
            .unwrap(),
    );
    run(&[Source {
        name: "edited.json".into(),
        bytes: serde_json::to_vec(&vp).unwrap(),
    }])
}

#[test]
fn properties_are_matched_by_the_iri_their_context_gives_them() {
    // `ex:legalName` is another vocabulary's legalName: not the Gaia-X term (a match by
    // local name would take it: it comes first), kept aside
    let out = tagus_with(|cs| {
        cs.insert("ex:legalName".into(), json!("Not the Gaia-X legal name"));
        cs.insert("@context".into(), json!({"ex": "https://example.org/ns#"}));
    });
    assert_eq!(doc(&out).participant.legal_name, "Nordwolke GmbH");
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.path.ends_with("[\"ex:legalName\"]")),
        "{:?}",
        out.report.kept_aside
    );
    // an alias the context defines is the term it names
    let out = tagus_with(|cs| {
        let name = cs.remove("gx:legalName").unwrap();
        cs.insert("officialName".into(), name);
        cs.insert(
            "@context".into(),
            json!({"officialName": format!("{}legalName", gaiamesh_gaiax::ld::GX_2210_URL.to_owned() + "#")}),
        );
    });
    assert_eq!(doc(&out).participant.legal_name, "Nordwolke GmbH");
}

#[test]
fn the_other_releases_namespace_and_unknown_22_10_terms_are_warnings_strict_mode_refuses() {
    // the Loire namespace's legalName under a 22.10 type: not the 22.10 term
    let out = tagus_with(|cs| {
        let name = cs.remove("gx:legalName").unwrap();
        cs.insert("loire:legalName".into(), name);
        cs.insert(
            "@context".into(),
            json!({"loire": "https://w3id.org/gaia-x/development#"}),
        );
    });
    assert!(
        out.report
            .warnings
            .iter()
            .any(|f| f.path.ends_with("[\"loire:legalName\"]")
                && f.detail.contains("the Gaia-X Loire namespace")
                && f.detail.contains("kept, not mapped")
                && !f.detail.contains("  ")),
        "{}",
        out.report.summary()
    );
    assert!(!out.is_valid(), "no legal name is left");
    // a gx: term 22.10 does not define
    let out = tagus_with(|cs| {
        cs.insert("gx:legalNickname".into(), json!("NW"));
    });
    assert!(out.is_valid(), "{}", out.report.summary());
    let strict = out.report.strict_problems();
    assert!(
        strict
            .iter()
            .any(|p| p.contains("[\"gx:legalNickname\"]") && p.contains("not a Gaia-X 22.10 term")),
        "{strict:?}"
    );
    assert!(
        out.report
            .kept_aside
            .iter()
            .any(|f| f.path.ends_with("[\"gx:legalNickname\"]"))
    );
}

#[test]
fn an_unbound_gx_prefix_is_read_by_local_name_with_a_warning() {
    let mut vp: Value =
        serde_json::from_slice(&fixture("tagus/participant-vp.json").bytes).unwrap();
    // the service-offering credential without the registry context: `gx:` unbound
    vp["verifiableCredential"][2]["@context"] = json!(["https://www.w3.org/2018/credentials/v1"]);
    let out = run(&[Source {
        name: "unbound.json".into(),
        bytes: serde_json::to_vec(&vp).unwrap(),
    }]);
    assert!(out.is_valid(), "{}", out.report.summary());
    assert_eq!(
        doc(&out).services[0].name.as_deref(),
        Some("S3-compatible object storage")
    );
    assert!(
        out.report
            .warnings
            .iter()
            .any(|f| f.path.contains("[\"verifiableCredential\"][2]")
                && f.detail.contains("the prefix gx: is bound by none")),
        "{}",
        out.report.summary()
    );
}

#[test]
fn the_report_says_which_credentials_were_read_by_iri_and_which_by_local_name() {
    // the registration-number subject names the 22.06 registry's participant document,
    // which is not bundled
    let out = run(&[fixture("tagus/participant-vp.json")]);
    assert_eq!(
        out.report.terms[0],
        "4 of 5 credential(s) read by the IRIs their JSON-LD contexts expand to"
    );
    assert!(
        out.report.terms[1].contains("[\"verifiableCredential\"][1]")
            && out.report.terms[1].contains("shapes/jsonld/participant is not available offline"),
        "{:?}",
        out.report.terms
    );
    // the Loire context is not bundled
    let out = run(&[fixture("loire/credentials.json")]);
    assert!(
        out.report.terms[0].starts_with("0 of "),
        "{:?}",
        out.report.terms
    );
    assert!(
        out.report.terms[1].starts_with("read by local property names, not IRIs")
            && out.report.terms[1].contains("https://w3id.org/gaia-x/development#"),
        "{:?}",
        out.report.terms
    );
}

#[test]
fn subjects_named_with_at_id_keep_their_ids_and_at_keys_are_not_data() {
    let mut creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    for c in &mut creds {
        let cs = c["credentialSubject"].as_object_mut().unwrap();
        if let Some(id) = cs.remove("id") {
            cs.insert("@id".into(), id);
        }
        if let Some(t) = cs.remove("type") {
            cs.insert("@type".into(), t);
        }
    }
    let plain = run(&[fixture("loire/credentials.json")]);
    let at = run(&[Source {
        name: "at-id.json".into(),
        bytes: serde_json::to_vec(&creds).unwrap(),
    }]);
    let ids =
        |i: &Imported| -> Vec<String> { doc(i).services.iter().map(|s| s.id.clone()).collect() };
    assert_eq!(ids(&at), ids(&plain));
    assert!(
        ids(&at).iter().all(|id| !id.starts_with("service-")),
        "{:?}",
        ids(&at)
    );
    assert!(
        !doc(&at)
            .extensions
            .keys()
            .any(|k| k.contains("@id") || k.contains("@type")),
        "{:?}",
        doc(&at).extensions.keys().collect::<Vec<_>>()
    );
}

#[test]
fn an_export_signed_under_a_did_web_verifies_with_its_did_document_and_only_with_it() {
    let first = run(&[fixture("tagus/participant-vp.json")]);
    let d1 = doc(&first).clone();
    let node = ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]);
    let pk = node.verifying_key().to_bytes();
    let sign = |m: &[u8]| {
        use ed25519_dalek::Signer as _;
        node.sign(m).to_bytes()
    };
    let did = "did:web:provider.example:gaia-x";
    let did_doc = gaiamesh_gaiax::did_web::document(did, &pk).unwrap();
    let keys = gaiamesh_gaiax::jwt::did_document_keys(&did_doc.to_string(), None).unwrap();
    // another key published under the same DID: the signatures must not verify with it
    let other = gaiamesh_gaiax::did_web::document(did, &[1u8; 32]).unwrap();
    let other_keys = gaiamesh_gaiax::jwt::did_document_keys(&other.to_string(), None).unwrap();
    for format in [
        ExportFormat::VcJwt,
        ExportFormat::Tagus { gaia_x_terms: true },
    ] {
        let vp = export(
            &d1,
            &pk,
            format,
            Some(Signer {
                public: &pk,
                sign: &sign,
                did: Some(did),
            }),
            UnixMillis(1_800_000_000_000),
        )
        .unwrap();
        let with = |trusted: Vec<gaiamesh_gaiax::jwt::TrustedKey>| {
            import(
                &[Source {
                    name: "exported.json".into(),
                    bytes: vp.to_string().into_bytes(),
                }],
                &ImportOptions {
                    trusted,
                    at: Some(1_800_000_001),
                    ..ImportOptions::default()
                },
            )
        };
        let out = with(keys.clone());
        assert_eq!(doc(&out).participant, d1.participant);
        assert!(
            out.report.credentials.iter().all(|c| matches!(
                &c.proof,
                ProofStatus::Verified { key, .. } if key.contains("did:web:provider.example:gaia-x#node-key")
            )),
            "{format:?}: {:?}",
            out.report.credentials
        );
        assert_eq!(out.report.strict_problems(), Vec::<String>::new());
        let forged = with(other_keys.clone());
        assert!(
            forged
                .report
                .credentials
                .iter()
                .all(|c| matches!(&c.proof, ProofStatus::Invalid { .. })),
            "{format:?}: {:?}",
            forged.report.credentials
        );
        // without the DID document a JSON-LD proof cannot be checked offline; a VC-JWT's
        // header key proves integrity only, and strict mode refuses both
        let alone = with(Vec::new());
        assert!(!alone.report.strict_problems().is_empty(), "{format:?}");
    }
}

/// The Loire fixture with a Loire context supplied (`--context`): its terms are read by IRI.
fn loire_with_context(edit: impl FnOnce(&mut Vec<Value>)) -> Imported {
    let mut creds: Vec<Value> =
        serde_json::from_slice(&fixture("loire/credentials.json").bytes).unwrap();
    edit(&mut creds);
    let mut contexts = gaiamesh_gaiax::ld::Contexts::bundled();
    // the prefixes the Loire credentials use, as a user would supply the context
    let loire = json!({"@context": {
        "gx": "https://w3id.org/gaia-x/development#",
        "schema": "https://schema.org/",
        "vcard": "http://www.w3.org/2006/vcard/ns#",
        "gaiamesh": "https://gaiamesh.org/ns#"
    }});
    contexts
        .add(
            "https://w3id.org/gaia-x/development#",
            serde_json::to_vec(&loire).unwrap(),
        )
        .unwrap();
    import(
        &[Source {
            name: "loire.json".into(),
            bytes: serde_json::to_vec(&creds).unwrap(),
        }],
        &ImportOptions {
            contexts,
            ..ImportOptions::default()
        },
    )
}

#[test]
fn loire_credentials_are_read_by_iri_once_their_context_is_supplied() {
    let out = loire_with_context(|_| {});
    let n = out.report.credentials.len();
    assert_eq!(
        out.report.terms[0],
        format!("{n} of {n} credential(s) read by the IRIs their JSON-LD contexts expand to")
    );
    assert_eq!(doc(&out).participant.legal_name, "Meridian Cloud SAS");
    assert_eq!(out.report.warnings, [], "{}", out.report.summary());
    // a 22.10 registry term under the Loire type: the other release's, kept, not mapped
    let out = loire_with_context(|creds| {
        let person = creds[0]["credentialSubject"].as_object_mut().unwrap();
        let address = person.remove("gx:headquartersAddress").unwrap();
        person.insert("tagus:headquarterAddress".into(), address);
        person.insert(
            "@context".into(),
            json!({ "tagus": gaiamesh_gaiax::ld::GX_2210_URL.to_owned() + "#" }),
        );
    });
    assert!(
        out.report
            .warnings
            .iter()
            .any(|f| f.path.ends_with("[\"tagus:headquarterAddress\"]")
                && f.detail.contains("the Gaia-X 22.10 namespace")),
        "{}",
        out.report.summary()
    );
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail == "no headquarters address"),
        "{}",
        out.report.summary()
    );
}
