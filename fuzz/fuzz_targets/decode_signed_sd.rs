#![no_main]
//! Signed self-descriptions from arbitrary bytes: decoding and the full acceptance check
//! must never panic, and whatever decodes must re-encode to the same bytes.

use gaiamesh_protocol::{
    sd::SignedSelfDescription,
    testing::{NOW, TestFederation},
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FED: OnceLock<TestFederation> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fed = FED.get_or_init(|| TestFederation::new(3, 2, true));
    if let Ok(sd) = SignedSelfDescription::decode(data) {
        let _ = sd.check(&fed.trust, NOW);
        // Bytes, not values: a document may carry a NaN (validation refuses it), and
        // NaN != NaN would make a value comparison fail on a correct round trip.
        if let Ok(again) = sd.encode() {
            let reencoded = SignedSelfDescription::decode(&again).and_then(|d| d.encode());
            assert_eq!(reencoded.ok().as_deref(), Some(again.as_slice()));
        }
    }
});
