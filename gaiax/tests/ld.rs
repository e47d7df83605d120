//! JSON-LD to RDF, RDFC-1.0 and JsonWebSignature2020 against vectors made by an independent
//! implementation (pyld + `cryptography`; `scripts/gaiax-fixtures/make_ld_fixtures.py`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gaiamesh_gaiax::{
    ProofStatus, jwt,
    ld::{self, Contexts, canon, proof},
};
use serde_json::{Value, json};

const GX_URL: &str = "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#";

fn path(rel: &str) -> String {
    format!("{}/tests/fixtures/ld/{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap()
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap()
}

/// The bundled contexts plus the project-written stand-in for the Gaia-X context.
fn contexts() -> Contexts {
    let mut c = Contexts::bundled();
    c.add(
        GX_URL,
        read("contexts/gx-trustframework-stand-in.jsonld").into_bytes(),
    )
    .unwrap();
    c
}

fn keys() -> Vec<jwt::TrustedKey> {
    ["EdDSA", "ES256", "PS256"]
        .iter()
        .flat_map(|k| {
            // the test vectors' keys, bound to the issuer of the fixtures
            let kid = format!("did:web:nordwolke.example#JWK2020-{k}");
            jwt::parse_trusted(&read(&format!("jws2020/JWK2020-{k}.jwk.json")), Some(&kid)).unwrap()
        })
        .collect()
}

#[test]
fn canonical_nquads_match_pyld() {
    let mut names: Vec<String> = std::fs::read_dir(path("canon"))
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(".jsonld").map(str::to_owned)
        })
        .collect();
    names.sort();
    // The four written by hand and the twelve random blank-node graphs.
    assert_eq!(names.len(), 16, "{names:?}");
    for name in names {
        let doc = json(&format!("canon/{name}.jsonld"));
        let quads = ld::to_quads(&doc, &Contexts::bundled()).unwrap();
        let ours = canon::canonicalize(&quads).unwrap();
        assert_eq!(ours, read(&format!("canon/{name}.nq")), "{name}");
    }
}

#[test]
fn proofs_made_by_jsonld_signatures_verify_with_every_algorithm() {
    let ctx = contexts();
    let trusted = keys();
    for (file, alg) in [
        ("participant-eddsa", "EdDSA"),
        ("participant-es256", "ES256"),
        ("participant-ps256", "PS256"),
    ] {
        let doc = json(&format!("jws2020/{file}.json"));
        match proof::check(&doc, &ctx, &trusted) {
            ProofStatus::Verified { alg: a, key } => {
                assert_eq!(a, alg);
                assert!(key.contains(&format!("JWK2020-{alg}")), "{key}");
                assert!(!key.contains("Gaia-X"), "{key}");
            }
            other => panic!("{file}: {other:?}"),
        }
    }
    // The Gaia-X 22.10 form, which signs the document hash as hex only.
    let doc = json("jws2020/participant-gaiax-digest-ps256.json");
    assert!(matches!(
        proof::check(&doc, &ctx, &trusted),
        ProofStatus::Verified { ref key, .. } if key.contains("Gaia-X 22.10")
    ));
}

fn invalid_reason(doc: &Value) -> String {
    match proof::check(doc, &contexts(), &keys()) {
        ProofStatus::Invalid { reason } => reason,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn tampering_is_detected() {
    let good = json("jws2020/participant-ps256.json");
    // A changed value.
    let mut d = good.clone();
    d["credentialSubject"]["gx:legalName"] = json!("Evil GmbH");
    assert!(invalid_reason(&d).contains("does not verify"));
    // A changed proof option (covered by the standard form).
    let mut d = good.clone();
    d["proof"]["created"] = json!("2030-01-01T00:00:00Z");
    assert!(invalid_reason(&d).contains("does not verify"));
    // A flipped signature byte.
    let mut d = good.clone();
    let jws = d["proof"]["jws"].as_str().unwrap().to_owned();
    let mut bytes = jws.into_bytes();
    let last = bytes.len() - 3;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    d["proof"]["jws"] = json!(String::from_utf8(bytes).unwrap());
    assert!(invalid_reason(&d).contains("does not verify"));
    // An added property the contexts do not define: JSON-LD would drop it, so it is refused
    // rather than shown as signed.
    let mut d = good.clone();
    d["credentialSubject"]["legalName"] = json!("Evil GmbH");
    let r = invalid_reason(&d);
    assert!(r.contains("not defined") && r.contains("legalName"), "{r}");
    // Same JSON-LD meaning, different JSON: key order and an equivalent context spelling
    // still verify (the proof is over the RDF).
    let mut d = good.clone();
    let subject = d["credentialSubject"].as_object_mut().unwrap();
    let name = subject.remove("gx:legalName").unwrap();
    subject.insert(format!("{GX_URL}legalName"), name);
    assert!(matches!(
        proof::check(&d, &contexts(), &keys()),
        ProofStatus::Verified { .. }
    ));
}

#[test]
fn proofs_that_cannot_be_checked_offline_say_why() {
    let good = json("jws2020/participant-eddsa.json");
    // A context that is neither bundled nor given.
    let mut d = good.clone();
    d["@context"]
        .as_array_mut()
        .unwrap()
        .push(json!("https://contexts.example/unbundled/v1"));
    match proof::check(&d, &Contexts::bundled(), &keys()) {
        ProofStatus::NotChecked { reason } => {
            assert!(
                reason.contains("https://contexts.example/unbundled/v1")
                    && reason.contains("--context"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The Gaia-X 22.10 context is bundled: the bundled contexts alone reach the key.
    assert!(matches!(
        proof::check(&good, &Contexts::bundled(), &keys()),
        ProofStatus::Verified { .. }
    ));
    // No key for did:web.
    match proof::check(&good, &contexts(), &[]) {
        ProofStatus::NotChecked { reason } => {
            assert!(
                reason.contains("did:web:nordwolke.example#JWK2020-EdDSA"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Another proof type.
    let mut d = good.clone();
    d["proof"]["type"] = json!("Ed25519Signature2020");
    assert!(matches!(
        proof::check(&d, &contexts(), &keys()),
        ProofStatus::NotChecked { ref reason } if reason.contains("Ed25519Signature2020")
    ));
}

#[test]
fn the_wrong_key_and_malformed_proofs_are_invalid() {
    let good = json("jws2020/participant-es256.json");
    let ed = jwt::parse_trusted(
        &read("jws2020/JWK2020-EdDSA.jwk.json"),
        Some("did:web:nordwolke.example#JWK2020-ES256"),
    )
    .unwrap();
    match proof::check(&good, &contexts(), &ed) {
        ProofStatus::NotChecked { .. } | ProofStatus::Invalid { .. } => {}
        other => panic!("verified with the wrong key: {other:?}"),
    }
    for (jws, what) in [
        ("abc", "not a JWS"),
        ("eyJhbGciOiJFUzI1NiJ9.cGF5bG9hZA.c2ln", "not detached"),
        ("!!..c2ln", "header"),
    ] {
        let mut d = good.clone();
        d["proof"]["jws"] = json!(jws);
        let r = invalid_reason(&d);
        assert!(r.contains(what), "{jws}: {r}");
    }
    let mut d = good.clone();
    d["proof"].as_object_mut().unwrap().remove("jws");
    assert!(invalid_reason(&d).contains("without \"jws\""));
    // b64: false outside crit.
    let mut d = good.clone();
    let header = base64_url(r#"{"alg":"ES256","b64":false}"#);
    d["proof"]["jws"] = json!(format!("{header}..c2ln"));
    assert!(invalid_reason(&d).contains("crit"));
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn import_checks_presentation_and_credential_proofs() {
    use gaiamesh_gaiax::{ImportOptions, Source, import};
    let src = Source {
        name: "vp.json".into(),
        bytes: read("jws2020/presentation-eddsa.json").into_bytes(),
    };
    let opts = ImportOptions {
        trusted: keys(),
        contexts: contexts(),
        ..ImportOptions::default()
    };
    let out = import(std::slice::from_ref(&src), &opts);
    assert!(out.is_valid(), "{}", out.report.summary());
    assert_eq!(
        out.document.as_ref().unwrap().participant.legal_name,
        "Nordwolke GmbH"
    );
    assert!(matches!(
        &out.report.credentials[0].proof,
        ProofStatus::Verified { alg, .. } if alg == "PS256"
    ));
    let vp = &out.report.presentations[0];
    assert_eq!(vp.origin, "vp.json:$");
    assert!(
        matches!(&vp.proof, ProofStatus::Verified { alg, .. } if alg == "EdDSA"),
        "{:?}",
        vp.proof
    );
    assert!(
        out.report
            .summary()
            .contains("vp.json:$ [presentation]: proof verified (EdDSA")
    );
    // The embedded credential changed: both its own proof and the presentation's break.
    let mut v: Value = serde_json::from_slice(&src.bytes).unwrap();
    v["verifiableCredential"][0]["credentialSubject"]["gx:legalName"] = json!("Evil GmbH");
    let out = import(
        &[Source {
            name: "vp.json".into(),
            bytes: serde_json::to_vec(&v).unwrap(),
        }],
        &opts,
    );
    assert!(matches!(
        &out.report.credentials[0].proof,
        ProofStatus::Invalid { .. }
    ));
    assert!(
        out.report
            .invalid
            .iter()
            .any(|f| f.detail.starts_with("presentation proof INVALID")),
        "{:?}",
        out.report.invalid
    );
    // Without the keys and the Gaia-X context, nothing is claimed.
    let out = import(std::slice::from_ref(&src), &ImportOptions::default());
    assert!(matches!(
        &out.report.credentials[0].proof,
        ProofStatus::NotChecked { .. }
    ));
}
