#![no_main]
//! Membership credentials from arbitrary bytes, then the threshold check.

use gaiamesh_protocol::{
    federation::MembershipCredential,
    testing::{NOW, TestFederation},
};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static FED: OnceLock<TestFederation> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fed = FED.get_or_init(|| TestFederation::new(3, 2, true));
    if let Ok(c) = MembershipCredential::decode(data) {
        let _ = fed.trust.verify_credential(&c, None, NOW);
    }
});
