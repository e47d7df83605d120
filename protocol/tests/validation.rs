//! Document validation: every problem is reported with its field path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_protocol::{
    sd::{DocumentError, DocumentFormat, SdDocument, validate_document},
    testing::{DOCUMENT_TOML, document},
};

fn errors_of(doc: &SdDocument) -> Vec<String> {
    match validate_document(doc) {
        Ok(()) => vec![],
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_design_example_is_valid() {
    assert_eq!(errors_of(&document()), Vec::<String>::new());
}

#[test]
fn reports_every_error_with_its_path() {
    let mut doc = document();
    doc.participant.headquarters.country = "XX".into();
    doc.node.location.subdivision = Some("AT-9".into());
    doc.services.push(doc.services[0].clone());
    doc.services.push(doc.services[0].clone());
    doc.services[1].id = "second".into();
    doc.services[2].id = "third".into();
    doc.services[2].price.as_mut().unwrap().currency = "EURO".into();
    doc.services[2].price.as_mut().unwrap().amount = "1,5".into();
    doc.services[1].data_location = vec!["DE".into(), "Germany".into()];
    let errs = errors_of(&doc);
    assert_eq!(
        errs,
        vec![
            r#"participant.headquarters.country: "XX" is not an ISO 3166-1 alpha-2 country code"#,
            r#"participant.headquarters.subdivision: "DE-BY" is not a subdivision of XX"#,
            r#"node.location.subdivision: "AT-9" is not a subdivision of DE"#,
            r#"services[1].data_location[1]: "Germany" is not an ISO 3166-1 alpha-2 country code"#,
            r#"services[2].price.currency: "EURO" is not an ISO 4217 code"#,
            r#"services[2].price.amount: "1,5" is not a decimal amount (digits, optionally '.' and up to 8 decimals)"#,
        ]
    );
}

#[test]
fn duplicate_service_ids_and_bounds() {
    let mut doc = document();
    doc.services = vec![doc.services[0].clone(); 65];
    let errs = errors_of(&doc);
    assert!(
        errs.contains(&"services: 65 services, at most 64 allowed".to_owned()),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e
                .starts_with("services[1].id: \"s3-eu-central\" is used by an earlier service"))
    );
    let mut doc = document();
    doc.participant.legal_name = "x".repeat(200);
    doc.services[0].keywords = vec!["k".into(); 17];
    doc.node.energy.as_mut().unwrap().renewable_pct = Some(101);
    doc.node.energy.as_mut().unwrap().pue = Some(f64::NAN);
    let errs = errors_of(&doc);
    assert!(
        errs.contains(&"participant.legal_name: is 200 bytes long, at most 128 allowed".to_owned()),
        "{errs:?}"
    );
    assert!(errs.contains(&"services[0].keywords: 17 entries, at most 16 allowed".to_owned()));
    assert!(errs.contains(&"node.energy.renewable_pct: 101 is more than 100 percent".to_owned()));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("node.energy.pue: NaN is outside"))
    );
}

#[test]
fn registration_formats() {
    let mut doc = document();
    doc.participant.registration[0].value = "DE12".into();
    assert!(
        errors_of(&doc).is_empty(),
        "short but well-formed VAT ids pass"
    );
    doc.participant.registration[0].value = "12345".into();
    assert_eq!(
        errors_of(&doc),
        vec![
            r#"participant.registration[0].value: "12345" is not a VAT id (country prefix and 2–13 letters or digits)"#
        ]
    );
    doc.participant.registration.clear();
    assert_eq!(
        errors_of(&doc),
        vec!["participant.registration: at least one registration number is required"]
    );
}

#[test]
fn json_and_toml_give_the_same_document() {
    let toml_doc = document();
    let json = serde_json::to_string(&toml_doc).unwrap();
    let json_doc = SdDocument::parse(&json, DocumentFormat::sniff(&json)).unwrap();
    assert_eq!(toml_doc, json_doc);
    let again = SdDocument::parse(&toml_doc.to_toml().unwrap(), DocumentFormat::Toml).unwrap();
    assert_eq!(toml_doc, again);
}

#[test]
fn structural_errors_name_the_key() {
    let text = DOCUMENT_TOML.replace("kind = \"storage.object\"", "kind = \"storage.objects\"");
    let err = SdDocument::parse(&text, DocumentFormat::Toml)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("storage.objects") && err.contains("kind"),
        "{err}"
    );
    let text = DOCUMENT_TOML.replace("legal_name", "legal_nam");
    let err = SdDocument::parse(&text, DocumentFormat::Toml)
        .unwrap_err()
        .to_string();
    assert!(err.contains("legal_nam"), "{err}");
    let big = "#".repeat(300_000);
    assert!(matches!(
        SdDocument::parse(&big, DocumentFormat::Toml),
        Err(DocumentError::TooLarge(_))
    ));
}
