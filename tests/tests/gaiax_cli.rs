//! `gaiamesh gaiax import` / `export` through the binary: files in, a checked
//! self-description and the originals out; a signed export that imports again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use gaiamesh_e2e::{fails, ok};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../gaiax/tests/fixtures")
        .join(rel)
}

#[test]
fn import_writes_a_valid_sd_and_keeps_the_originals_then_export_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let vp = fixture("tagus/participant-vp.json");
    ok(
        d.path(),
        &[
            "gaiax",
            "import",
            vp.to_str().unwrap(),
            "--out",
            "sd.toml",
            "--node-kind",
            "edge",
        ],
    );
    let sd = std::fs::read_to_string(d.path().join("sd.toml")).unwrap();
    assert!(
        sd.contains("Nordwolke GmbH") && sd.contains("kind = \"edge\""),
        "{sd}"
    );
    // The document passes the same check as a hand-written one.
    ok(d.path(), &["sd", "check", "sd.toml"]);
    let originals: Vec<_> = std::fs::read_dir(d.path().join("sd.credentials"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(originals.len(), 1);
    assert!(originals[0].ends_with(".json"));
    assert_eq!(
        std::fs::read(d.path().join("sd.credentials").join(&originals[0])).unwrap(),
        std::fs::read(&vp).unwrap()
    );

    // Export as VC-JWTs signed with a node key, then import that again.
    ok(
        d.path(),
        &[
            "federation",
            "init",
            "--name",
            "Gaia-X Test",
            "--out",
            "fed",
        ],
    );
    ok(
        d.path(),
        &[
            "init",
            "--data-dir",
            "node",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    let out = ok(
        d.path(),
        &[
            "gaiax",
            "export",
            "--data-dir",
            "node",
            "--sd",
            "sd.toml",
            "--format",
            "vc-jwt",
            "--out",
            "vp.json",
        ],
    );
    assert!(out.is_empty());
    let report: serde_json::Value = serde_json::from_str(&ok(
        d.path(),
        &[
            "gaiax",
            "import",
            "vp.json",
            "--json",
            "--credentials-dir",
            "again",
        ],
    ))
    .unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(
        report["document"]["participant"]["legal_name"],
        "Nordwolke GmbH"
    );
    let proofs = report["report"]["credentials"].as_array().unwrap();
    assert!(!proofs.is_empty());
    assert!(
        proofs.iter().all(|c| c["proof"]["status"] == "verified"),
        "{proofs:?}"
    );

    let original = report["document"].clone();
    // As 22.10 credentials with JsonWebSignature2020 proofs: checked against the bundled
    // 22.10 shapes before writing, and imported again in strict mode.
    let stderr = gaiamesh_e2e::ok_stderr(
        d.path(),
        &[
            "gaiax",
            "export",
            "--data-dir",
            "node",
            "--sd",
            "sd.toml",
            "--release",
            "22.10",
            "--accept-gaia-x-terms",
            "--out",
            "vp-2210.json",
        ],
    );
    assert!(
        stderr.contains("shapes: conforms to gaia-x 22.10"),
        "{stderr}"
    );
    let vp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.path().join("vp-2210.json")).unwrap()).unwrap();
    let types: Vec<&str> = vp["verifiableCredential"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credentialSubject"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "gx:LegalParticipant");
    assert!(types.contains(&"gx:legalRegistrationNumber"), "{types:?}");
    assert!(types.contains(&"gx:GaiaXTermsAndConditions"), "{types:?}");
    let report: serde_json::Value = serde_json::from_str(&ok(
        d.path(),
        &[
            "gaiax",
            "import",
            "vp-2210.json",
            "--strict",
            "--json",
            "--credentials-dir",
            "again-2210",
        ],
    ))
    .unwrap();
    assert_eq!(
        report["document"]["participant"], original["participant"],
        "{report}"
    );
    assert_eq!(
        report["report"]["shapes"][0],
        "validated against gaia-x 22.10: conforms"
    );
    assert_eq!(
        report["report"]["presentations"][0]["proof"]["status"],
        "verified"
    );
    // 22.10 is JSON-LD only; the terms flag is 22.10's.
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "export",
            "-d",
            "node",
            "--sd",
            "sd.toml",
            "--release",
            "22.10",
            "--format",
            "vc-jwt",
        ],
    );
    assert!(text.contains("--format vc-jwt is for Loire"), "{text}");
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "export",
            "-d",
            "node",
            "--sd",
            "sd.toml",
            "--accept-gaia-x-terms",
        ],
    );
    assert!(text.contains("is for --release 22.10"), "{text}");

    // Signed under a did:web: the DID document the node prints is what an importer needs.
    let stderr = gaiamesh_e2e::ok_stderr(
        d.path(),
        &[
            "gaiax",
            "did-document",
            "-d",
            "node",
            "--did",
            "did:web:nordwolke.example",
            "--out",
            "did.json",
        ],
    );
    assert!(
        stderr.contains("https://nordwolke.example/.well-known/did.json"),
        "{stderr}"
    );
    ok(
        d.path(),
        &[
            "gaiax",
            "export",
            "-d",
            "node",
            "--sd",
            "sd.toml",
            "--release",
            "22.10",
            "--accept-gaia-x-terms",
            "--did",
            "did:web:nordwolke.example",
            "--out",
            "vp-web.json",
        ],
    );
    let import_web = |extra: &[&str]| {
        let mut args = vec!["gaiax", "import", "vp-web.json", "--strict", "--json"];
        args.extend_from_slice(extra);
        gaiamesh_e2e::run(d.path(), &args)
    };
    let out = import_web(&["--did-document", "did.json", "--credentials-dir", "web"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["report"]["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["proof"]["key"]
                .as_str()
                .is_some_and(|k| k.contains("did:web:nordwolke.example#node-key"))),
        "{report}"
    );
    // without the DID document strict mode refuses: the proofs cannot be checked offline
    assert!(!import_web(&[]).status.success());
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "did-document",
            "-d",
            "node",
            "--did",
            "did:key:z6Mk",
        ],
    );
    assert!(text.contains("is not a did:web"), "{text}");
}

#[test]
fn invalid_credentials_fail_with_the_reason_and_its_path() {
    let d = tempfile::tempdir().unwrap();
    let bad = fixture("tagus/bad-country.json");
    let text = fails(d.path(), &["gaiax", "import", bad.to_str().unwrap()]);
    assert!(text.contains("\"XX\" is not an ISO 3166-1"), "{text}");
    assert!(text.contains("[\"gx:countrySubdivisionCode\"]"), "{text}");
    std::fs::write(d.path().join("key.json"), "{\"kty\": \"oct\"}").unwrap();
    let vp = fixture("tagus/participant-vp.json");
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "import",
            vp.to_str().unwrap(),
            "--trust-key",
            "key.json",
        ],
    );
    assert!(text.contains("kty \"oct\" is not supported"), "{text}");
    let text = fails(d.path(), &["gaiax", "export", "--data-dir", "nowhere"]);
    assert!(text.contains("no node key"), "{text}");
}

#[test]
fn json_ld_proofs_verify_with_a_trusted_key_and_a_supplied_context() {
    let d = tempfile::tempdir().unwrap();
    let vp = fixture("ld/jws2020/presentation-eddsa.json")
        .display()
        .to_string();
    let ctx = format!(
        "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#={}",
        fixture("ld/contexts/gx-trustframework-stand-in.jsonld").display()
    );
    let mut keys = Vec::new();
    // Each key bound to the issuer whose proofs it signs (the participant's own keys, and
    // the notary's for the registration-number credential).
    for (issuer, k) in [
        ("nordwolke.example", "EdDSA"),
        ("nordwolke.example", "PS256"),
        ("registration.notary.example", "ES256"),
    ] {
        keys.push("--trust-key".to_owned());
        keys.push(format!(
            "did:web:{issuer}#JWK2020-{k}={}",
            fixture(&format!("ld/jws2020/JWK2020-{k}.jwk.json")).display()
        ));
    }
    let import = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["gaiax", "import", "--json", vp.as_str()];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(d.path(), &args)).unwrap()
    };
    let proofs = |v: &serde_json::Value| -> Vec<String> {
        v["report"]["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["proof"]["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut all: Vec<&str> = vec!["--context", ctx.as_str()];
    all.extend(keys.iter().map(String::as_str));
    let v = import(&all);
    assert_eq!(proofs(&v), ["verified", "verified"], "{v}");
    assert_eq!(v["report"]["credentials"][0]["proof"]["alg"], "PS256");
    let vp_proof = &v["report"]["presentations"][0]["proof"];
    assert_eq!(vp_proof["status"], "verified", "{v}");
    assert_eq!(vp_proof["alg"], "EdDSA");
    // Without --context the bundled copy of the 22.10 registry document serves: it binds
    // `gx:` as the stand-in does, so the proofs verify the same.
    let v = import(&keys.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(proofs(&v), ["verified", "verified"], "{v}");
    // A context that is neither bundled nor given: not checked, naming it and the flag.
    let text = std::fs::read_to_string(&vp).unwrap().replace(
        "https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework",
        "https://registry.example/unbundled/trustframework",
    );
    std::fs::write(d.path().join("other-context.json"), text).unwrap();
    let mut args = vec!["gaiax", "import", "--json", "other-context.json"];
    args.extend(keys.iter().map(String::as_str));
    let v: serde_json::Value = serde_json::from_str(&ok(d.path(), &args)).unwrap();
    assert_eq!(proofs(&v), ["not_checked", "not_checked"], "{v}");
    let reason = v["report"]["credentials"][0]["proof"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("registry.example/unbundled") && reason.contains("--context URL=FILE"),
        "{reason}"
    );
    // The same keys from the issuers' DID documents (did:web's did.json, local copies).
    let jwk = |k: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("ld/jws2020/JWK2020-{k}.jwk.json"))).unwrap(),
        )
        .unwrap()
    };
    for (host, ks) in [
        ("nordwolke.example", vec!["EdDSA", "PS256"]),
        ("registration.notary.example", vec!["ES256"]),
    ] {
        let did = format!("did:web:{host}");
        let methods: Vec<serde_json::Value> = ks
            .iter()
            .map(|k| {
                serde_json::json!({"id": format!("#JWK2020-{k}"), "type": "JsonWebKey2020",
                    "controller": did, "publicKeyJwk": jwk(k)})
            })
            .collect();
        let doc = serde_json::json!({"id": did, "verificationMethod": methods});
        std::fs::write(d.path().join(format!("{host}.did.json")), doc.to_string()).unwrap();
    }
    let v = import(&[
        "--context",
        ctx.as_str(),
        "--did-document",
        "nordwolke.example.did.json",
        "--did-document",
        "registration.notary.example.did.json",
    ]);
    assert_eq!(proofs(&v), ["verified", "verified"], "{v}");
    // With a trust anchor, a DID document's keys must be certified up to it: these carry no
    // chain, so the import stops, naming the method; --x5u needs an anchor; a bad anchor
    // file is refused by name (chains that do verify: gaiax/tests/x509.rs).
    let mut root = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    root.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let root = root
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    std::fs::write(d.path().join("anchor.pem"), root.pem()).unwrap();
    std::fs::write(d.path().join("junk.pem"), "not a certificate").unwrap();
    let with = |extra: &[&str]| -> String {
        let mut args = vec![
            "gaiax",
            "import",
            vp.as_str(),
            "--context",
            ctx.as_str(),
            "--did-document",
            "nordwolke.example.did.json",
        ];
        args.extend_from_slice(extra);
        fails(d.path(), &args)
    };
    let text = with(&["--trust-anchor", "anchor.pem"]);
    assert!(
        text.contains("--did-document nordwolke.example.did.json")
            && text.contains("did:web:nordwolke.example#JWK2020-EdDSA) is not certified")
            && text.contains("no certificate chain (x5c or x5u)"),
        "{text}"
    );
    let text = with(&["--x5u", "https://nordwolke.example/chain.pem=anchor.pem"]);
    assert!(text.contains("--trust-anchor"), "{text}");
    let text = with(&["--trust-anchor", "junk.pem"]);
    assert!(
        text.contains("junk.pem") && text.contains("no PEM CERTIFICATE"),
        "{text}"
    );
    // Strict: with every proof verified and the credentials valid at --at, the import goes
    // through; without the keys it is refused, listing each unchecked proof, writing nothing.
    let mut strict = all.clone();
    strict.extend(["--strict", "--at", "2026-12-01T00:00:00Z"]);
    let v = import(&strict);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["strict_problems"], serde_json::json!([]));
    let out = d.path().join("strict.toml");
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "import",
            vp.as_str(),
            "--context",
            ctx.as_str(),
            "--strict",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(
        text.contains("--strict: 3 problem(s)") && text.contains("proof not checked"),
        "{text}"
    );
    assert!(!out.exists() && !d.path().join("strict.credentials").exists());
    let text = fails(
        d.path(),
        &["gaiax", "import", vp.as_str(), "--at", "yesterday"],
    );
    assert!(text.contains("--at") && text.contains("RFC 3339"), "{text}");
    // A malformed --context is refused by name.
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "import",
            vp.as_str(),
            "--context",
            "no-equals-sign",
        ],
    );
    assert!(text.contains("expected URL=FILE"), "{text}");
}

#[test]
fn odrl_service_policies_become_usage_policies_an_asset_can_use() {
    let d = tempfile::tempdir().unwrap();
    let mut creds: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fixture("loire/credentials.json")).unwrap())
            .unwrap();
    let offering = creds
        .iter_mut()
        .find(|c| c["credentialSubject"]["type"] == "gx:ServiceOffering")
        .unwrap();
    offering["credentialSubject"]["gx:servicePolicy"] = serde_json::json!({
        "@context": "http://www.w3.org/ns/odrl.jsonld",
        "@type": "Set",
        "permission": [{"action": "use", "constraint": [
            {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"},
            {"leftOperand": "spatial", "operator": "eq", "rightOperand": "EU"},
            {"leftOperand": "count", "operator": "lteq", "rightOperand": 3}
        ]}]
    });
    std::fs::write(
        d.path().join("creds.json"),
        serde_json::to_vec(&creds).unwrap(),
    )
    .unwrap();
    ok(
        d.path(),
        &[
            "gaiax",
            "import",
            "creds.json",
            "--out",
            "sd.toml",
            "--policies",
            "policies",
        ],
    );
    let files: Vec<_> = std::fs::read_dir(d.path().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("purposes = [\"research\"]"), "{text}");
    assert!(text.contains("jurisdiction = [\"EU\"]"), "{text}");
    assert!(text.contains("max_transfers = 3"), "{text}");
}

#[test]
fn real_credentials_are_validated_against_the_shapes_of_their_release() {
    let d = tempfile::tempdir().unwrap();
    let real = |f: &str| {
        fixture(&format!("real/gx-compliance/{f}"))
            .display()
            .to_string()
    };
    // The compliance service's valid participant: its wizard signatures verify, it conforms
    // to the bundled 22.10 registry shapes, and the document is written.
    let stderr = gaiamesh_e2e::ok_stderr(
        d.path(),
        &[
            "gaiax",
            "import",
            &real("participant-vp.json"),
            "--out",
            "sd.toml",
        ],
    );
    assert!(
        stderr.contains("shapes: validated against gaia-x 22.10: conforms")
            && stderr.contains("proof verified (PS256"),
        "{stderr}"
    );
    ok(d.path(), &["sd", "check", "sd.toml"]);

    // Its faulty participant: --strict refuses it, naming focus, path, constraint and shape.
    let faulty = real("participant-vp-faulty.json");
    let text = fails(d.path(), &["gaiax", "import", &faulty, "--strict"]);
    assert!(
        text.contains(
            "did:web:raw.githubusercontent.com:egavard:payload-sign:master gx:headquarterAddress: \
             sh:MinCountConstraintComponent (shape gx:LegalParticipantShape)"
        ),
        "{text}"
    );
    // as JSON, the violations are a list of their own
    let out = gaiamesh_e2e::run(d.path(), &["gaiax", "import", &faulty, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["report"]["shape_violations"][0]["path"],
        "did:web:raw.githubusercontent.com:egavard:payload-sign:master gx:headquarterAddress"
    );
    // --no-shapes: not validated, and said so
    let out = gaiamesh_e2e::run(
        d.path(),
        &["gaiax", "import", &faulty, "--no-shapes", "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["report"]["shape_violations"], serde_json::json!([]));
    assert!(
        v["report"]["shapes"][0]
            .as_str()
            .unwrap()
            .contains("--no-shapes")
    );

    // A shapes file that cannot be read is an error naming it.
    std::fs::write(d.path().join("shapes.txt"), "").unwrap();
    let text = fails(
        d.path(),
        &["gaiax", "import", &faulty, "--shapes", "shapes.txt"],
    );
    assert!(
        text.contains("shapes.txt") && text.contains(".ttl"),
        "{text}"
    );
    std::fs::write(d.path().join("broken.ttl"), "gx:S a sh:NodeShape ;;; .").unwrap();
    let text = fails(
        d.path(),
        &["gaiax", "import", &faulty, "--shapes", "broken.ttl"],
    );
    assert!(text.contains("broken.ttl"), "{text}");
    // A Turtle shapes file applies to every credential.
    std::fs::write(
        d.path().join("names.ttl"),
        "@prefix sh: <http://www.w3.org/ns/shacl#> .\n\
         @prefix gx: <https://registry.lab.gaia-x.eu/development/api/trusted-shape-registry/v1/shapes/jsonld/trustframework#> .\n\
         gx:NameShape a sh:NodeShape ; sh:targetClass gx:LegalParticipant ;\n\
           sh:property [ sh:path gx:legalName ; sh:maxLength 10 ] .\n",
    )
    .unwrap();
    let text = fails(
        d.path(),
        &[
            "gaiax",
            "import",
            &real("participant-vp.json"),
            "--shapes",
            "names.ttl",
            "--strict",
        ],
    );
    assert!(
        text.contains("gx:legalName: sh:MaxLengthConstraintComponent (shape gx:NameShape)"),
        "{text}"
    );
}
