//! Backup of a running node and restore on a "new host" (another data dir): same PeerId,
//! directory intact, audit chain verified; a restore never overwrites a node, and a tampered
//! archive is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gaiamesh_e2e::{fails, mesh, ok};

#[test]
fn backup_of_a_running_node_restores_elsewhere() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let nodes = mesh::start(r, 2);
    for n in &nodes {
        n.wait_for("both self-descriptions", Duration::from_secs(30), |x| {
            x.status()["directory_entries"].as_u64().unwrap_or(0) >= 2
        });
    }
    let before = nodes[1].status();
    let dir = nodes[1].dir.to_str().unwrap().to_owned();

    // While it runs.
    let out = ok(
        r,
        &["backup", "--data-dir", &dir, "--out", "b.tar", "--json"],
    );
    let manifest: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(manifest["peer_id"], before["peer_id"], "{manifest}");
    assert!(
        manifest["directory_entries"].as_u64().unwrap() >= 2,
        "{manifest}"
    );
    assert!(r.join("b.tar").exists());
    let refused = fails(r, &["backup", "--data-dir", &dir, "--out", "b.tar"]);
    assert!(refused.contains("refusing to overwrite"), "{refused}");

    // The old host goes away; the backup comes up on a new one.
    let mut nodes = nodes;
    nodes.pop().unwrap().stop();
    let out = ok(r, &["restore", "b.tar", "--data-dir", "host2"]);
    assert!(out.contains("chain verified"), "{out}");
    let refused = fails(r, &["restore", "b.tar", "--data-dir", "host2"]);
    assert!(refused.contains("already holds a node key"), "{refused}");
    mesh::configure(&r.join("host2"), &[nodes[0].address()]);
    let restored = mesh::Node::start(&r.join("host2"));
    let after = restored.status();
    assert_eq!(after["peer_id"], before["peer_id"]);
    assert!(
        after["directory_entries"].as_u64().unwrap()
            >= before["directory_entries"].as_u64().unwrap(),
        "{after}"
    );
    restored.wait_for(
        "re-admission by the other member",
        Duration::from_secs(30),
        |x| x.status()["admitted_peers"].as_u64().unwrap_or(0) >= 1,
    );

    // A stopped node is backed up directly; a tampered archive does not restore.
    restored.stop();
    ok(r, &["backup", "--data-dir", "host2", "--out", "c.tar"]);
    let mut bytes = std::fs::read(r.join("c.tar")).unwrap();
    let at = bytes.windows(7).position(|w| w == b"db.redb").unwrap();
    bytes[at..at + 7].copy_from_slice(b"../evil");
    std::fs::write(r.join("bad.tar"), &bytes).unwrap();
    let refused = fails(r, &["restore", "bad.tar", "--data-dir", "host3"]);
    assert!(
        refused.contains("not a gaiamesh backup") || refused.contains("bad.tar"),
        "{refused}"
    );
    assert!(!r.join("evil").exists());
}
