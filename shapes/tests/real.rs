//! SHACL validation of real published credentials (`gaiax/tests/fixtures/real`, origins in
//! its `SOURCES.md`) against the bundled 22.10 registry shapes, with the verdicts of the
//! compliance service's own test suite; edited copies that break several constraints at
//! once; a Turtle shapes graph given as a file; and the import report.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gaiamesh_gaiax::{ImportOptions, Imported, Source, import, ld::Contexts};
use gaiamesh_shapes::{Choice, Shapes, ShapesError, validate_import};
use serde_json::{Value, json};

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../gaiax/tests/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn real(path: &str) -> Source {
    Source {
        name: path.to_owned(),
        bytes: read(&format!("real/{path}")),
    }
}

fn imported(sources: &[Source]) -> Imported {
    import(sources, &ImportOptions::default())
}

#[test]
fn the_compliance_services_valid_sets_conform_to_the_22_10_shapes() {
    let shapes = Shapes::tagus().unwrap();
    for set in [
        vec![real("gx-compliance/participant-vp.json")],
        vec![real("gx-compliance/service-offering-vp.json")],
        vec![
            real("claim-compliance-provider/legalParticipant.json"),
            real("claim-compliance-provider/legalRegistrationNumber.json"),
            real("claim-compliance-provider/termsAndConditions.json"),
        ],
    ] {
        let out = imported(&set);
        let outcome = shapes
            .validate(&out.credentials, &Contexts::bundled())
            .unwrap();
        assert!(outcome.conforms(), "{:#?}", outcome.violations);
        assert!(outcome.skipped.is_empty());
    }
}

#[test]
fn the_compliance_services_faulty_participant_violates_the_participant_shape() {
    let out = imported(&[real("gx-compliance/participant-vp-faulty.json")]);
    let outcome = Shapes::tagus()
        .unwrap()
        .validate(&out.credentials, &Contexts::bundled())
        .unwrap();
    assert_eq!(outcome.violations.len(), 1, "{:#?}", outcome.violations);
    let v = &outcome.violations[0];
    assert_eq!(
        v.focus,
        "did:web:raw.githubusercontent.com:egavard:payload-sign:master"
    );
    assert_eq!(v.path.as_deref(), Some("gx:headquarterAddress"));
    assert_eq!(v.shape, "gx:LegalParticipantShape");
    assert_eq!(v.component, "sh:MinCountConstraintComponent");
}

/// The credentials of the real service-offering set, as JSON, to edit.
fn service_offering_set() -> Vec<Value> {
    let vp: Value =
        serde_json::from_slice(&read("real/gx-compliance/service-offering-vp.json")).unwrap();
    vp["verifiableCredential"].as_array().unwrap().clone()
}

#[test]
fn every_violation_is_reported_at_once_with_focus_path_and_shape() {
    let mut vcs = service_offering_set();
    // registration number: too short (sh:minLength 3)
    vcs[0]["credentialSubject"]["gx:vatID"] = json!("BE");
    // participant: no legal address (sh:minCount), a headquarters subdivision that is not
    // ISO 3166-2 (sh:pattern)
    let participant = vcs[1]["credentialSubject"].as_object_mut().unwrap();
    participant.remove("gx:legalAddress");
    participant["gx:headquarterAddress"]["gx:countrySubdivisionCode"] = json!("Brussels");
    // service: a request type outside the list (sh:in)
    vcs[3]["credentialSubject"]["gx:dataAccountExport"]["gx:requestType"] = json!("fax");
    let credentials: Vec<(String, Value)> = vcs
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("edited.json:$[{i}]"), v))
        .collect();
    let outcome = Shapes::tagus()
        .unwrap()
        .validate(&credentials, &Contexts::bundled())
        .unwrap();
    let found: Vec<(String, String)> = outcome
        .violations
        .iter()
        .map(|v| (v.path.clone().unwrap_or_default(), v.component.clone()))
        .collect();
    // The registration number is a target of its own shape; the address and the export
    // method are reached through sh:node, so their violations are the causes of the
    // parent's; the participant's failure makes the service's gx:providedBy fail too.
    for (path, component) in [
        ("gx:vatID", "sh:MinLengthConstraintComponent"),
        ("gx:legalAddress", "sh:MinCountConstraintComponent"),
        ("gx:headquarterAddress", "sh:NodeConstraintComponent"),
        ("gx:legalRegistrationNumber", "sh:NodeConstraintComponent"),
        ("gx:dataAccountExport", "sh:NodeConstraintComponent"),
        ("gx:providedBy", "sh:NodeConstraintComponent"),
    ] {
        assert!(
            found.iter().any(|(p, c)| p == path && c == component),
            "{path} {component} not in {found:#?}"
        );
    }
    let by_path = |path: &str| {
        outcome
            .violations
            .iter()
            .find(|v| v.path.as_deref() == Some(path))
            .unwrap()
    };
    let hq = by_path("gx:headquarterAddress");
    assert_eq!(hq.shape, "gx:LegalParticipantShape");
    assert!(
        hq.causes
            .iter()
            .any(|c| c.contains("gx:countrySubdivisionCode")
                && c.contains("sh:PatternConstraintComponent")
                && c.contains("Brussels")),
        "{:?}",
        hq.causes
    );
    let export = by_path("gx:dataAccountExport");
    assert!(
        export
            .causes
            .iter()
            .any(|c| c.contains("gx:requestType sh:InConstraintComponent") && c.contains("fax")),
        "{:?}",
        export.causes
    );
    // the focus of the minLength violation is the registration number's own id
    assert!(
        by_path("gx:vatID")
            .focus
            .ends_with("legalRegistrationNumberVC.json")
    );
}

#[test]
fn the_import_report_names_the_shapes_and_strict_mode_refuses_violations() {
    let mut out = imported(&[real("gx-compliance/participant-vp-faulty.json")]);
    validate_import(&mut out, Choice::Bundled, &Contexts::bundled()).unwrap();
    assert_eq!(
        out.report.shapes,
        ["validated against gaia-x 22.10: 1 violation(s)"]
    );
    assert_eq!(out.report.shape_violations.len(), 1);
    let v = &out.report.shape_violations[0];
    assert_eq!(
        v.path,
        "did:web:raw.githubusercontent.com:egavard:payload-sign:master gx:headquarterAddress"
    );
    assert!(
        v.detail.contains("shape gx:LegalParticipantShape"),
        "{}",
        v.detail
    );
    assert!(
        out.report
            .strict_problems()
            .iter()
            .any(|p| p.contains("sh:MinCountConstraintComponent")),
        "{:#?}",
        out.report.strict_problems()
    );
    assert!(
        out.report
            .summary()
            .contains("shape violation: did:web:raw")
    );

    // a conforming set: a note, no violation, nothing more for strict mode to refuse
    let mut out = imported(&[real("gx-compliance/participant-vp.json")]);
    let before = out.report.strict_problems().len();
    validate_import(&mut out, Choice::Bundled, &Contexts::bundled()).unwrap();
    assert_eq!(
        out.report.shapes,
        ["validated against gaia-x 22.10: conforms"]
    );
    assert_eq!(out.report.strict_problems().len(), before);

    // skipped on request, and said so
    let mut out = imported(&[real("gx-compliance/participant-vp-faulty.json")]);
    validate_import(&mut out, Choice::Skip, &Contexts::bundled()).unwrap();
    assert!(out.report.shape_violations.is_empty());
    assert!(out.report.shapes[0].contains("--no-shapes"));

    // Loire credentials: no bundled shapes, and the report says what to pass
    let loire = Source {
        name: "loire.json".into(),
        bytes: read("loire/credentials.json"),
    };
    let mut out = imported(&[loire]);
    validate_import(&mut out, Choice::Bundled, &Contexts::bundled()).unwrap();
    assert!(
        out.report.shapes.iter().any(|n| n.contains("--shapes")),
        "{:?}",
        out.report.shapes
    );
}

/// A Loire-style shapes graph in Turtle, as a federation would give it with `--shapes`.
const LOIRE_SHAPES: &str = r#"
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix gx: <https://w3id.org/gaia-x/development#> .
@prefix schema: <https://schema.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

gx:LegalPersonShape a sh:NodeShape ;
    sh:targetClass gx:LegalPerson ;
    sh:property [ sh:path schema:name ; sh:datatype xsd:string ; sh:maxCount 1 ] ;
    sh:property [ sh:path gx:registrationNumber ; sh:minCount 1 ] ;
    sh:property [ sh:path gx:legalAddress ; sh:minCount 1 ; sh:node gx:AddressShape ] ;
    sh:property [ sh:path gx:headquartersAddress ; sh:minCount 1 ; sh:node gx:AddressShape ] .

gx:AddressShape a sh:NodeShape ;
    sh:property [ sh:path gx:countryCode ; sh:minCount 1 ; sh:pattern "^[A-Z]{2}$" ] .
"#;

/// The contexts for the Loire fixture: the Gaia-X development context is not bundled, so a
/// stand-in binds the prefixes it uses (as `--context URL=FILE` would).
fn loire_contexts() -> Contexts {
    let mut c = Contexts::bundled();
    c.add(
        "https://w3id.org/gaia-x/development#",
        serde_json::to_vec(&json!({"@context": {
            "gx": "https://w3id.org/gaia-x/development#",
            "schema": "https://schema.org/",
            "vcard": "http://www.w3.org/2006/vcard/ns#",
        }}))
        .unwrap(),
    )
    .unwrap();
    c
}

#[test]
fn shapes_given_as_turtle_validate_loire_credentials() {
    let shapes = Shapes::from_document(
        "loire.shacl.ttl",
        LOIRE_SHAPES.as_bytes(),
        &Contexts::bundled(),
    )
    .unwrap();
    let loire = Source {
        name: "loire.json".into(),
        bytes: read("loire/credentials.json"),
    };
    let mut out = imported(std::slice::from_ref(&loire));
    validate_import(&mut out, Choice::Given(&shapes), &loire_contexts()).unwrap();
    assert_eq!(
        out.report.shapes,
        ["validated against loire.shacl.ttl: conforms"],
        "{:#?}",
        out.report.shape_violations
    );

    // the same participant with a lower-case country code in its legal address
    let mut list: Value = serde_json::from_slice(&loire.bytes).unwrap();
    list[0]["credentialSubject"]["gx:legalAddress"]["gx:countryCode"] = json!("fr");
    let edited = Source {
        name: "edited.json".into(),
        bytes: serde_json::to_vec(&list).unwrap(),
    };
    let mut out = imported(&[edited]);
    validate_import(&mut out, Choice::Given(&shapes), &loire_contexts()).unwrap();
    assert_eq!(out.report.shape_violations.len(), 1, "{:#?}", out.report);
    let v = &out.report.shape_violations[0];
    assert_eq!(
        v.path,
        "https://meridian.example/legal-person#cs gx:legalAddress"
    );
    assert_eq!(
        v.detail,
        "sh:NodeConstraintComponent (shape gx:LegalPersonShape); because: gx:countryCode \
         sh:PatternConstraintComponent (value \"fr\")"
    );

    // without the Loire context, the credentials cannot become RDF: each is named as skipped
    let mut out = imported(&[loire]);
    validate_import(&mut out, Choice::Given(&shapes), &Contexts::bundled()).unwrap();
    assert!(
        out.report
            .shapes
            .iter()
            .any(|n| n.contains("not validated against shapes")
                && n.contains("https://w3id.org/gaia-x/development#")),
        "{:?}",
        out.report.shapes
    );
}

#[test]
fn bad_shapes_files_are_refused_naming_the_file() {
    let cases: [(&str, &[u8], &str); 3] = [
        ("broken.ttl", b"gx:Shape a sh:NodeShape ;;; .", "broken.ttl"),
        ("shapes.txt", b"", "name the file .ttl"),
        ("bad.jsonld", b"{not json", "not JSON"),
    ];
    for (name, bytes, why) in cases {
        let err = Shapes::from_document(name, bytes, &Contexts::bundled()).unwrap_err();
        assert!(matches!(err, ShapesError::Shapes { .. }));
        let text = err.to_string();
        assert!(text.contains(name) && text.contains(why), "{text}");
    }
}

#[test]
fn a_shapes_graph_in_json_ld_is_read_like_the_bundled_one() {
    // the bundled document, given as a file, gives the same verdicts
    let shapes = Shapes::from_document(
        "trustframework.jsonld",
        gaiamesh_gaiax::ld::GX_2210_DOC.as_bytes(),
        &Contexts::bundled(),
    )
    .unwrap();
    let out = imported(&[real("gx-compliance/participant-vp-faulty.json")]);
    let outcome = shapes
        .validate(&out.credentials, &Contexts::bundled())
        .unwrap();
    assert_eq!(outcome.violations.len(), 1);
    assert!(outcome.violations[0].path.as_deref() == Some("gx:headquarterAddress"));
}
