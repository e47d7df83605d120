#![no_main]
//! Revocation lists from arbitrary bytes, then applying them.

use gaiamesh_protocol::{federation::RevocationList, testing::TestFederation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(l) = RevocationList::decode(data) {
        let mut fed = TestFederation::new(3, 2, true);
        let _ = fed.trust.apply_revocations(&l);
    }
});
