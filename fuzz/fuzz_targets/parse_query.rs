#![no_main]
//! The query parser on arbitrary text: errors, never panics; parsed queries plan and print.

use gaiamesh_directory::query;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(expr) = query::parse(text) {
            let plan = query::plan(&expr, 1000, |_, v| v.len());
            let _ = plan.to_string();
        } else if let Err(e) = query::parse(text) {
            let _ = e.render(text);
        }
    }
});
