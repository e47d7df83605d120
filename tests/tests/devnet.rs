//! `gaiamesh devnet --once`, the README's main command.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_e2e::{fails, ok};

#[test]
fn devnet_converges_queries_and_stops() {
    let root = tempfile::tempdir().unwrap();
    let out = ok(
        root.path(),
        &["devnet", "--nodes", "4", "--dir", "net", "--once"],
    );
    assert!(out.contains("gaiamesh devnet: 4 nodes"), "{out}");
    assert!(out.contains("directory converged (4/4 entries)"), "{out}");
    assert!(
        out.contains("Nordwolke GmbH"),
        "example queries print matches:\n{out}"
    );
    // Every node stopped gracefully (api.json is removed on shutdown).
    for i in 0..4 {
        assert!(!root.path().join(format!("net/node{i}/api.json")).exists());
    }
    // The directory is kept, and reusing it needs --reset.
    let err = fails(
        root.path(),
        &["devnet", "--nodes", "2", "--dir", "net", "--once"],
    );
    assert!(err.contains("--reset"), "{err}");
    // After the devnet stopped, its catalogues can be queried offline.
    let q = ok(
        root.path(),
        &[
            "query",
            "node.location.country = DE",
            "--data-dir",
            "net/node3",
            "--json",
        ],
    );
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert!(q["total"].as_u64().unwrap() >= 2, "{q}");
}
