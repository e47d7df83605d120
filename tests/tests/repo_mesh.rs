//! The software repository across real nodes on loopback: a mandatory component published on
//! one node reaches every node (verified, pinned), an optional one is fetched on demand, a
//! node that was down catches up after restart, and every copy is byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use gaiamesh_e2e::{
    mesh::{Node, configure, federation},
    ok,
};

fn repo_status(root: &Path, node: &str) -> serde_json::Value {
    let out = ok(root, &["repo", "list", "--data-dir", node, "--json"]);
    serde_json::from_str(&out).unwrap()
}

fn local_state(root: &Path, node: &str, target: &str) -> String {
    repo_status(root, node)
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .map(|t| t["local"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn releases_replicate_across_the_mesh() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let dirs = federation(r, 4);
    configure(&dirs[0], &[]);
    let n0 = Node::start(&dirs[0]);
    let boot = vec![n0.address()];
    let mut nodes = vec![n0];
    for d in &dirs[1..3] {
        configure(d, &boot);
        nodes.push(Node::start(d));
    }
    for n in &nodes {
        n.wait_for("admission of every peer", Duration::from_secs(30), |n| {
            n.status()["admitted_peers"].as_u64().unwrap_or(0) >= 2
        });
    }
    // A 3 MiB mandatory component, published on the running node0 through its API.
    let content: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(r.join("bridge.bin"), &content).unwrap();
    let out = ok(
        r,
        &[
            "repo",
            "publish",
            "bridge.bin",
            "--name",
            "identity/oidc-bridge",
            "--version",
            "1.0.0",
            "--category",
            "mandatory",
            "--key",
            "fed/keys/repository-root-0.key",
            "--key",
            "fed/keys/repository-root-1.key",
            "--data-dir",
            "node0",
            "--json",
        ],
    );
    let published: serde_json::Value = serde_json::from_str(&out).unwrap();
    let target = "identity/oidc-bridge@1.0.0";
    assert_eq!(published["target"], target);
    // Every running node fetches it by itself.
    for (i, n) in nodes.iter().enumerate() {
        n.wait_for("the mandatory component", Duration::from_secs(60), |_| {
            local_state(r, &format!("node{i}"), target) == "complete"
        });
    }
    // A copy is byte-identical.
    let copy = r.join("copy.bin");
    ok(
        r,
        &[
            "repo",
            "fetch",
            target,
            "--data-dir",
            "node2",
            "--out",
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&copy).unwrap(), content);

    // An optional component is not fetched until asked for.
    std::fs::write(r.join("tool.bin"), vec![42u8; 200_000]).unwrap();
    ok(
        r,
        &[
            "repo",
            "publish",
            "tool.bin",
            "--name",
            "tools/inspector",
            "--version",
            "0.3",
            "--key",
            "fed/keys/repository-root-1.key",
            "--key",
            "fed/keys/repository-root-2.key",
            "--data-dir",
            "node0",
        ],
    );
    let tool = "tools/inspector@0.3";
    nodes[1].wait_for("the new release", Duration::from_secs(30), |_| {
        !local_state(r, "node1", tool).is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(local_state(r, "node1", tool), "missing");
    let fetched = ok(
        r,
        &[
            "repo",
            "fetch",
            "tools/inspector",
            "--data-dir",
            "node1",
            "--json",
        ],
    );
    assert!(fetched.contains("complete"), "{fetched}");

    // A node that joins later catches up: the release on admission, then the blob.
    configure(&dirs[3], &boot);
    let late = Node::start(&dirs[3]);
    late.wait_for(
        "catch-up of the mandatory component",
        Duration::from_secs(60),
        |_| local_state(r, "node3", target) == "complete",
    );
    assert_eq!(local_state(r, "node3", tool), "missing");
    let text = ok(r, &["repo", "status", "--data-dir", "node3"]);
    assert!(
        text.contains("targets v2") && text.contains("valid"),
        "{text}"
    );
    late.stop();
    for n in nodes {
        n.stop();
    }
}
