//! The sandbox against real components built from Rust for wasm32-wasip2: the example
//! algorithm computes its answer, misbehaving algorithms are stopped with the reason named,
//! and the engine keeps serving jobs afterwards.
//!
//! The guests are built on first use (`cargo build --target wasm32-wasip2`, a few seconds).
//! Without that target the tests say so and pass, unless `GAIAMESH_REQUIRE_WASM=1` (CI sets
//! it after `rustup target add wasm32-wasip2`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    path::Path,
    sync::{Arc, OnceLock, atomic::AtomicBool},
    time::Duration,
};

use gaiamesh_compute::{ComputeError, Limits, Sandbox, StopReason};
use gaiamesh_e2e::wasm::guests;

fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new().unwrap())
}

fn wasm(name: &str) -> Option<Vec<u8>> {
    Some(std::fs::read(guests()?.join(format!("{name}.wasm"))).unwrap())
}

fn dataset(bytes: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    f
}

fn no_cancel() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn the_example_algorithm_computes_column_statistics() {
    let Some(bytes) = wasm("column-stats") else {
        return;
    };
    let algorithm = sandbox().load(&bytes).unwrap();
    assert_eq!(algorithm.hash(), blake3::hash(&bytes).to_hex().as_str());
    let csv = b"station,temperature,humidity\nA,12.5,80\nB,-3,75\nC,20.5,n/a\nD,,60\n";
    let data = dataset(csv);
    let report = sandbox()
        .run(
            &algorithm,
            data.path(),
            &["temperature".into()],
            Limits::default(),
            no_cancel(),
        )
        .unwrap();
    assert!(report.completed(), "{report:?}");
    let result: serde_json::Value = serde_json::from_slice(&report.output).unwrap();
    assert_eq!(result["rows"], 4);
    assert_eq!(result["count"], 3);
    assert_eq!(result["sum"], 30.0);
    assert_eq!(result["mean"], 10.0);
    assert_eq!(result["min"], -3.0);
    assert_eq!(result["max"], 20.5);
    assert_eq!(report.usage.bytes_read, csv.len() as u64);
    assert_eq!(report.usage.bytes_written, report.output.len() as u64);
    assert!(report.usage.fuel > 0 && report.usage.peak_memory_bytes > 0);

    // A missing column: the algorithm's own exit status and message.
    let report = sandbox()
        .run(
            &algorithm,
            data.path(),
            &["price".into()],
            Limits::default(),
            no_cancel(),
        )
        .unwrap();
    assert_eq!(report.stopped, Some(StopReason::Exit { code: 1 }));
    assert!(
        report.stderr.contains("no column named \"price\""),
        "{}",
        report.stderr
    );
    assert!(report.output.is_empty());
}

#[test]
fn metering_counts_every_byte_and_the_same_fuel_each_run() {
    let Some(bytes) = wasm("echo") else { return };
    let algorithm = sandbox().load(&bytes).unwrap();
    let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let data = dataset(&input);
    let run = || {
        sandbox()
            .run(&algorithm, data.path(), &[], Limits::default(), no_cancel())
            .unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.completed(), "{a:?}");
    assert_eq!(a.output, input);
    assert_eq!(a.usage.bytes_read, input.len() as u64);
    assert_eq!(a.usage.bytes_written, input.len() as u64);
    assert_eq!(a.usage.fuel, b.usage.fuel, "fuel is deterministic");
    assert_eq!(a.usage.peak_memory_bytes, b.usage.peak_memory_bytes);
}

#[test]
fn an_endless_loop_is_stopped_by_fuel_then_by_the_clock_then_by_cancellation() {
    let Some(bytes) = wasm("spin") else { return };
    let algorithm = sandbox().load(&bytes).unwrap();
    let data = dataset(b"");
    let fuel = Limits {
        fuel: 50_000_000,
        ..Limits::default()
    };
    let r = sandbox()
        .run(&algorithm, data.path(), &[], fuel, no_cancel())
        .unwrap();
    assert_eq!(r.stopped, Some(StopReason::Fuel { limit: 50_000_000 }));
    assert_eq!(r.usage.fuel, 50_000_000);

    let clock = Limits {
        fuel: u64::MAX,
        wall: Duration::from_millis(300),
        ..Limits::default()
    };
    let r = sandbox()
        .run(&algorithm, data.path(), &[], clock, no_cancel())
        .unwrap();
    assert_eq!(r.stopped, Some(StopReason::WallClock { limit_ms: 300 }));
    assert!(r.usage.wall_us >= 300_000, "{:?}", r.usage);

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let unlimited = Limits {
        fuel: u64::MAX,
        wall: Duration::from_secs(600),
        ..Limits::default()
    };
    let r = sandbox()
        .run(&algorithm, data.path(), &[], unlimited, cancel)
        .unwrap();
    canceller.join().unwrap();
    assert_eq!(r.stopped, Some(StopReason::Cancelled));
}

#[test]
fn ten_gib_of_memory_is_refused_at_the_limit() {
    let Some(bytes) = wasm("hog") else { return };
    let algorithm = sandbox().load(&bytes).unwrap();
    let data = dataset(b"");
    let limits = Limits {
        memory_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let r = sandbox()
        .run(&algorithm, data.path(), &[], limits, no_cancel())
        .unwrap();
    match r.stopped {
        Some(StopReason::Memory { requested, limit }) => {
            assert_eq!(limit, 64 * 1024 * 1024);
            assert!(requested > limit);
        }
        other => panic!("expected the memory limit, got {other:?} ({})", r.stderr),
    }
    assert!(r.usage.peak_memory_bytes <= 64 * 1024 * 1024);
    assert!(r.output.is_empty());
}

#[test]
fn a_ten_gib_result_is_stopped_at_the_output_limit() {
    let Some(bytes) = wasm("flood") else { return };
    let algorithm = sandbox().load(&bytes).unwrap();
    let data = dataset(b"");
    let limits = Limits {
        output_bytes: 4 * 1024 * 1024,
        ..Limits::default()
    };
    let r = sandbox()
        .run(&algorithm, data.path(), &[], limits, no_cancel())
        .unwrap();
    assert_eq!(
        r.stopped,
        Some(StopReason::Output {
            limit: 4 * 1024 * 1024
        })
    );
    assert!(
        r.output.is_empty(),
        "nothing of a stopped job's output leaves"
    );
    assert!(r.usage.bytes_written <= 6 * 1024 * 1024, "{:?}", r.usage);
}

#[test]
fn nothing_outside_the_input_can_be_read() {
    let Some(bytes) = wasm("escape") else { return };
    let algorithm = sandbox().load(&bytes).unwrap();
    let data = dataset(b"secret rows");
    let r = sandbox()
        .run(&algorithm, data.path(), &[], Limits::default(), no_cancel())
        .unwrap();
    // The guest exits 2 when any read succeeded; 0 means every attempt failed.
    assert!(
        r.completed(),
        "{:?}: {}",
        r.stopped,
        String::from_utf8_lossy(&r.output)
    );
    assert!(
        r.output.is_empty(),
        "{}",
        String::from_utf8_lossy(&r.output)
    );
    assert_eq!(r.usage.bytes_read, 0);
    assert!(r.stderr.contains("/etc/passwd"), "{}", r.stderr);
}

#[test]
fn an_algorithm_that_wants_the_network_is_refused_before_it_starts() {
    let Some(bytes) = wasm("net") else { return };
    match sandbox().load(&bytes) {
        Err(ComputeError::ForbiddenImport { import, why }) => {
            assert!(import.starts_with("wasi:sockets/"), "{import}");
            assert!(why.contains("no network"));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn exit_statuses_and_traps_are_named() {
    let (Some(fail), Some(panic)) = (wasm("fail"), wasm("panic")) else {
        return;
    };
    let data = dataset(b"");
    let r = sandbox()
        .run(
            &sandbox().load(&fail).unwrap(),
            data.path(),
            &[],
            Limits::default(),
            no_cancel(),
        )
        .unwrap();
    // WASI 0.2's `exit` carries success or failure, not the number.
    assert_eq!(r.stopped, Some(StopReason::Exit { code: 1 }));
    assert!(r.stderr.contains("no column named price"));
    let r = sandbox()
        .run(
            &sandbox().load(&panic).unwrap(),
            data.path(),
            &[],
            Limits::default(),
            no_cancel(),
        )
        .unwrap();
    assert!(
        matches!(r.stopped, Some(StopReason::Trap { .. })),
        "{:?}",
        r.stopped
    );
    assert!(r.stderr.contains("index out of bounds"), "{}", r.stderr);
}

#[test]
fn what_is_not_a_component_is_refused_with_the_reason() {
    let core_module = b"\0asm\x01\0\0\0";
    match sandbox().load(core_module) {
        Err(ComputeError::Invalid(why)) => {
            assert!(why.contains("core WebAssembly module"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        sandbox().load(b"#!/bin/sh\nrm -rf /"),
        Err(ComputeError::Invalid(_))
    ));
    let missing = sandbox().run(
        &match wasm("echo") {
            Some(b) => sandbox().load(&b).unwrap(),
            None => return,
        },
        Path::new("/nonexistent/dataset.csv"),
        &[],
        Limits::default(),
        no_cancel(),
    );
    assert!(matches!(missing, Err(ComputeError::Dataset { .. })));
}

#[test]
fn the_committed_example_carries_its_manifest_and_a_fresh_build_the_same() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/algorithms");
    let declared = std::fs::read_to_string(root.join("column-stats/algorithm.toml")).unwrap();
    let declared = gaiamesh_compute::Manifest::parse(&declared).unwrap();
    let committed = std::fs::read(root.join("column-stats.wasm")).unwrap();
    assert_eq!(
        gaiamesh_compute::Manifest::require(&committed).unwrap(),
        declared
    );
    assert_eq!(declared.output.max_bytes, Some(4096));
    let Some(built) = wasm("column-stats") else {
        return;
    };
    assert_eq!(
        gaiamesh_compute::Manifest::require(&built).unwrap(),
        declared
    );
}

#[test]
fn a_manifest_embedded_afterwards_leaves_the_component_runnable() {
    let Some(bytes) = wasm("echo") else {
        return;
    };
    assert!(matches!(
        gaiamesh_compute::Manifest::require(&bytes).unwrap_err(),
        gaiamesh_compute::manifest::ManifestError::Missing
    ));
    let manifest = gaiamesh_compute::Manifest::parse("[output]\nmax_bytes = 5\n").unwrap();
    let declared = manifest.embed(&bytes).unwrap();
    assert_eq!(
        gaiamesh_compute::Manifest::require(&declared).unwrap(),
        manifest
    );
    let algorithm = sandbox().load(&declared).unwrap();
    let data = dataset(b"hello, world");
    // the declared bound stops a result longer than it said
    let report = sandbox()
        .run(
            &algorithm,
            data.path(),
            &[],
            manifest.bound(Limits::default()),
            no_cancel(),
        )
        .unwrap();
    assert!(
        matches!(report.stopped, Some(StopReason::Output { .. })),
        "{report:?}"
    );
    assert!(report.output.is_empty());
    let report = sandbox()
        .run(&algorithm, data.path(), &[], Limits::default(), no_cancel())
        .unwrap();
    assert!(report.completed(), "{report:?}");
    assert!(!report.output.is_empty());
}
