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
    // node1 negotiated for node0's dataset and holds a byte-identical copy.
    assert!(
        out.contains("exchange: node1 got devnet-dataset (4 MiB)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(root.path().join("net/received/devnet-dataset.bin")).unwrap(),
        std::fs::read(root.path().join("net/assets/devnet-dataset.bin")).unwrap()
    );
    // node1 ran the example algorithm on node0's data: the aggregates came back, priced,
    // with the usage record in both audit logs (node0: as signed, then countersigned).
    assert!(
        out.contains("compute: node1 ran column-stats@1.0.0 on node0's devnet-weather"),
        "{out}"
    );
    assert!(out.contains("usage records signed by both, 2 / 1"), "{out}");
    assert!(out.contains("\"rows\":10000"), "{out}");
    // After the devnet stopped, both audit logs verify offline.
    for node in ["net/node0", "net/node1"] {
        let v = ok(root.path(), &["audit", "verify", "--data-dir", node]);
        assert!(v.contains("intact"), "{v}");
    }
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
