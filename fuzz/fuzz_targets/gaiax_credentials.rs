#![no_main]
//! Gaia-X credential import on arbitrary input: JSON-LD (with the JsonWebSignature2020 check:
//! JSON-LD to RDF and RDFC-1.0) and VC-JWTs. Reports errors, never panics, stays bounded.

use gaiamesh_gaiax::{ImportOptions, Source, import, ld};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = import(
        &[Source {
            name: "fuzz".into(),
            bytes: data.to_vec(),
        }],
        &ImportOptions::default(),
    );
    let _ = out.report.summary();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let contexts = ld::Contexts::bundled();
        if let Ok(quads) = ld::to_quads(&v, &contexts) {
            // Canonical output must not depend on the input's blank node labels or order.
            if let Ok(a) = ld::canon::canonicalize(&quads) {
                let mut reversed = quads.clone();
                reversed.reverse();
                for q in &mut reversed {
                    relabel(&mut q.subject);
                    relabel(&mut q.object);
                    if let Some(g) = &mut q.graph {
                        relabel(g);
                    }
                }
                let b = ld::canon::canonicalize(&reversed).expect("relabelled dataset");
                assert_eq!(a, b, "canonical form depends on blank node labels or order");
            }
        }
        let _ = ld::undefined_terms(&v, &contexts);
    }
});

fn relabel(n: &mut ld::canon::Node) {
    if let ld::canon::Node::Blank(b) = n {
        *b = format!("r{b}");
    }
}
