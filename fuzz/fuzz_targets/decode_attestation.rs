#![no_main]
//! Attestations from arbitrary bytes, then the certifier check.

use gaiamesh_protocol::{
    federation::Attestation,
    testing::{NOW, TestFederation},
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FED: OnceLock<TestFederation> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fed = FED.get_or_init(|| TestFederation::new(3, 2, true));
    if let Ok(a) = Attestation::decode(data) {
        let _ = fed.trust.verify_attestation(&a, NOW);
    }
});
