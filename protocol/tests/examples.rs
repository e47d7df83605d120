//! The example documents shipped in `config/examples/` stay valid.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, fs, path::PathBuf};

use gaiamesh_protocol::{
    federation::Genesis,
    sd::{DocumentFormat, SdDocument},
};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/examples")
}

#[test]
fn every_example_self_description_is_valid_and_they_are_varied() {
    let mut countries = BTreeSet::new();
    let mut node_kinds = BTreeSet::new();
    let mut service_kinds = BTreeSet::new();
    let mut schemes = BTreeSet::new();
    let mut count = 0;
    for entry in fs::read_dir(examples().join("sd")).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let doc = SdDocument::parse(&text, DocumentFormat::Toml)
            .unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
        count += 1;
        countries.insert(doc.node.location.country.clone());
        node_kinds.insert(doc.node.kind.as_str());
        for s in &doc.services {
            service_kinds.insert(s.kind.as_str());
            assert_eq!(
                s.price.as_ref().map(|p| p.currency.as_str()),
                Some("EUR"),
                "{}",
                path.display()
            );
            schemes.extend(s.certifications.iter().map(|c| c.scheme.clone()));
        }
        assert!(
            doc.node.energy.is_some(),
            "{} has no energy figures",
            path.display()
        );
    }
    assert!(count >= 20, "{count} examples");
    assert!(countries.len() >= 15, "{countries:?}");
    for k in ["public_cloud", "private_cloud", "edge", "hpc"] {
        assert!(node_kinds.contains(k), "no {k} example");
    }
    for k in [
        "storage.object",
        "compute.vm",
        "ai.inference",
        "data.resource",
    ] {
        assert!(service_kinds.contains(k), "no {k} example");
    }
    for s in ["C5", "ISO27001", "SecNumCloud"] {
        assert!(schemes.contains(s), "no {s} example");
    }
}

#[test]
fn the_example_genesis_is_valid() {
    let text = fs::read_to_string(examples().join("genesis.toml")).unwrap();
    let g = Genesis::from_toml(&text).unwrap();
    assert!(g.policy.require_membership);
}
