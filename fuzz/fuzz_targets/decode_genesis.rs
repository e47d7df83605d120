#![no_main]
//! Genesis documents from arbitrary bytes (binary form) and text (TOML form).

use gaiamesh_protocol::federation::Genesis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = Genesis::decode(data) {
        let _ = g.id();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Genesis::from_toml(text);
    }
});
