#![no_main]
//! Human documents: self-descriptions in TOML and JSON, credential and revocation files.

use gaiamesh_protocol::{
    federation::{MembershipCredential, RevocationList},
    sd::{DocumentFormat, SdDocument},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = SdDocument::parse(text, DocumentFormat::Toml);
        let _ = SdDocument::parse(text, DocumentFormat::Json);
        let _ = MembershipCredential::from_toml(text);
        let _ = RevocationList::from_toml(text);
    }
});
