use std::{borrow::Cow, time::Duration};

use wasm_encoder::{Component, CustomSection, Module, ModuleSection};

use super::{Manifest, ManifestError, SECTION};
use crate::Limits;

const EXAMPLE: &str = r#"
description = "count, sum, mean, minimum and maximum of one CSV column"
usage = "COLUMN"
[input]
media_types = ["text/csv"]
[output]
media_type = "application/json"
max_bytes = 4096
[resources]
memory_mib = 64
fuel = 10_000_000_000
wall = "30s"
"#;

fn section(data: &str) -> CustomSection<'_> {
    CustomSection {
        name: Cow::Borrowed(SECTION),
        data: Cow::Borrowed(data.as_bytes()),
    }
}

/// A component whose one core module carries `data` as its manifest section, the way a
/// Rust `link_section` ends up after `wasm-component-ld`.
fn component_with_nested(data: &[&str]) -> Vec<u8> {
    let mut module = Module::new();
    for d in data {
        module.section(&section(d));
    }
    let mut component = Component::new();
    component.section(&ModuleSection(&module));
    component.finish()
}

#[test]
fn the_example_parses_with_every_field_and_survives_a_round_trip_through_toml() {
    let m = Manifest::parse(EXAMPLE).unwrap();
    assert_eq!(m.input.media_types, ["text/csv"]);
    assert_eq!(m.output.media_type.as_deref(), Some("application/json"));
    assert_eq!(m.output.max_bytes, Some(4096));
    assert_eq!(m.resources.memory_mib, Some(64));
    assert_eq!(m.resources.fuel, Some(10_000_000_000));
    assert_eq!(m.resources.wall, Some(Duration::from_secs(30)));
    assert_eq!(Manifest::parse(&m.to_toml()).unwrap(), m);
}

#[test]
fn bad_fields_are_all_named_and_unknown_ones_refused() {
    let bad = "usage = \"\"\n[input]\nmedia_types = [\"csv\"]\n[output]\nmax_bytes = 0\n\
               [resources]\nmemory_mib = 0\nwall = \"0s\"\n";
    let ManifestError::Fields(problems) = Manifest::parse(bad).unwrap_err() else {
        panic!("expected field problems");
    };
    let all = problems.join("\n");
    for field in [
        "usage",
        "input.media_types[0]",
        "output.max_bytes",
        "resources.memory_mib",
        "resources.wall",
    ] {
        assert!(all.contains(field), "{field} not named in {all}");
    }
    let err = Manifest::parse("[resources]\ngpus = 1\n").unwrap_err();
    assert!(err.to_string().contains("gpus"), "{err}");
    let err = Manifest::parse(&"#".repeat(super::MAX_MANIFEST_BYTES + 1)).unwrap_err();
    assert!(matches!(err, ManifestError::TooLarge(_)), "{err}");
}

#[test]
fn embedding_adds_a_section_that_reads_back_and_a_second_is_refused() {
    let m = Manifest::parse(EXAMPLE).unwrap();
    let bare = Component::new().finish();
    assert!(Manifest::read(&bare).unwrap().is_none());
    let declared = m.embed(&bare).unwrap();
    assert!(wasmparser::Parser::is_component(&declared));
    assert_eq!(Manifest::read(&declared).unwrap(), Some(m.clone()));
    assert!(matches!(
        m.embed(&declared).unwrap_err(),
        ManifestError::AlreadyDeclared
    ));
    // a core module is not an algorithm
    let core = Module::new().finish();
    assert!(matches!(
        m.embed(&core).unwrap_err(),
        ManifestError::Wasm(_)
    ));
}

#[test]
fn a_manifest_inside_a_core_module_is_found_and_two_are_refused() {
    let nested = component_with_nested(&[EXAMPLE]);
    assert_eq!(
        Manifest::read(&nested).unwrap(),
        Some(Manifest::parse(EXAMPLE).unwrap())
    );
    let twice = component_with_nested(&[EXAMPLE, EXAMPLE]);
    assert!(matches!(
        Manifest::read(&twice).unwrap_err(),
        ManifestError::Duplicate(2)
    ));
    let broken = component_with_nested(&["[resources]\nmemory_mib = -1\n"]);
    assert!(matches!(
        Manifest::read(&broken).unwrap_err(),
        ManifestError::Syntax(_)
    ));
    assert!(matches!(
        Manifest::read(b"not wasm at all").unwrap_err(),
        ManifestError::Wasm(_)
    ));
}

#[test]
fn needs_above_the_limits_are_each_named_and_the_declared_result_bounds_the_job() {
    let m = Manifest::parse(EXAMPLE).unwrap();
    let generous = Limits::default();
    m.fits(&generous).unwrap();
    let tight = Limits {
        memory_bytes: 32 << 20,
        fuel: 1_000,
        wall: Duration::from_secs(5),
        ..Limits::default()
    };
    let ManifestError::Exceeds(over) = m.fits(&tight).unwrap_err() else {
        panic!("expected needs above the limits");
    };
    assert_eq!(over.len(), 3, "{over:?}");
    assert!(
        over[0].contains("64 MiB of memory, 32 MiB allowed"),
        "{over:?}"
    );
    assert!(
        over[1].contains("10000000000 fuel, 1000 allowed"),
        "{over:?}"
    );
    assert!(
        over[2].contains("30s of wall-clock time, 5s allowed"),
        "{over:?}"
    );
    assert_eq!(m.bound(generous).output_bytes, 4096);
    let none = Manifest::default();
    assert_eq!(none.bound(generous), generous);
}
