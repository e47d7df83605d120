//! gaiamesh's own 22.10 export against the bundled 22.10 registry shapes: a participant
//! with services and the Gaia-X terms conforms; an export edited to drop what the shapes
//! require is reported, naming focus, path and shape.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use gaiamesh_gaiax::{ExportFormat, ImportOptions, Source, export, import, ld::Contexts};
use gaiamesh_protocol::time::UnixMillis;
use gaiamesh_shapes::Shapes;
use serde_json::Value;

fn credentials(vp: &Value) -> Vec<(String, Value)> {
    vp["verifiableCredential"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("export[{i}]"), c.clone()))
        .collect()
}

/// The Loire fixture's self-description (a participant and a service offering with terms,
/// policy and data export), its legal address given a subdivision as 22.10 needs.
fn exported() -> Value {
    let bytes = std::fs::read(format!(
        "{}/../gaiax/tests/fixtures/loire/credentials.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let out = import(
        &[Source {
            name: "credentials.json".into(),
            bytes,
        }],
        &ImportOptions::default(),
    );
    let mut doc = out.document.expect("the Loire fixture imports");
    assert!(!doc.services.is_empty());
    if let Some(a) = doc.participant.legal_address.as_mut() {
        a.subdivision = Some("FR-IDF".into());
    }
    export(
        &doc,
        &[3u8; 32],
        ExportFormat::Tagus { gaia_x_terms: true },
        None,
        UnixMillis(1_800_000_000_000),
    )
    .unwrap()
}

#[test]
fn a_22_10_export_conforms_to_the_22_10_shapes() {
    let vp = exported();
    let types: Vec<&str> = vp["verifiableCredential"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["credentialSubject"]["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"gx:ServiceOffering"), "{types:?}");
    assert!(types.contains(&"gx:GaiaXTermsAndConditions"), "{types:?}");
    let outcome = Shapes::tagus()
        .unwrap()
        .validate(&credentials(&vp), &Contexts::bundled())
        .unwrap();
    assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    assert!(outcome.conforms(), "{:#?}", outcome.violations);
}

#[test]
fn an_export_edited_against_the_shapes_is_reported_in_full() {
    let mut vp = exported();
    for c in vp["verifiableCredential"].as_array_mut().unwrap() {
        let s = c["credentialSubject"].as_object_mut().unwrap();
        match s["type"].as_str().unwrap() {
            "gx:ServiceOffering" => {
                s.remove("gx:policy");
                s["gx:dataAccountExport"][0]["gx:accessType"] = "telepathic".into();
            }
            "gx:GaiaXTermsAndConditions" => {
                s["gx:termsAndConditions"] = "We agree to nothing.".into();
            }
            _ => {}
        }
    }
    let outcome = Shapes::tagus()
        .unwrap()
        .validate(&credentials(&vp), &Contexts::bundled())
        .unwrap();
    let lines: Vec<String> = outcome.violations.iter().map(|v| v.to_string()).collect();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(
        has("gx:policy: sh:MinCountConstraintComponent (shape gx:ServiceOfferingShape)"),
        "{lines:#?}"
    );
    assert!(
        has("gx:dataAccountExport: sh:NodeConstraintComponent (shape gx:ServiceOfferingShape)"),
        "{lines:#?}"
    );
    assert!(
        has(
            "gx:termsAndConditions: sh:HasValueConstraintComponent (shape gx:GaiaXTermsAndConditionsShape)"
        ),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
}
