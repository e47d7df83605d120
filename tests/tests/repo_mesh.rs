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

    // The repository keys rotate on the running node0: every node walks to root v2 and
    // trusts the release re-signed by the new keys.
    let new_keys: Vec<String> = ["new-0.key", "new-1.key"]
        .iter()
        .map(|k| ok(r, &["repo", "keygen", "--out", k]).trim().to_owned())
        .collect();
    ok(
        r,
        &[
            "repo",
            "rotate",
            "--new-key",
            &new_keys[0],
            "--new-key",
            &new_keys[1],
            "--threshold",
            "2",
            "--key",
            "fed/keys/repository-root-0.key",
            "--key",
            "fed/keys/repository-root-1.key",
            "--key",
            "new-0.key",
            "--key",
            "new-1.key",
            "--data-dir",
            "node0",
        ],
    );
    let root_version = |dir: &Path| {
        let (_, body) = gaiamesh_e2e::mesh::http(dir, "GET", "/api/v1/repo", b"");
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["root_version"].clone()
    };
    for (i, n) in nodes.iter().enumerate() {
        n.wait_for("root v2", Duration::from_secs(30), |_| {
            root_version(&dirs[i]) == 2
        });
        assert_eq!(local_state(r, &format!("node{i}"), target), "complete");
    }

    // A node that joins later catches up: the root chain and the release on admission,
    // then the blob.
    configure(&dirs[3], &boot);
    let late = Node::start(&dirs[3]);
    late.wait_for(
        "catch-up of the mandatory component",
        Duration::from_secs(60),
        |_| local_state(r, "node3", target) == "complete",
    );
    assert_eq!(local_state(r, "node3", tool), "missing");
    assert_eq!(root_version(&dirs[3]), 2);
    let text = ok(r, &["repo", "status", "--data-dir", "node3"]);
    assert!(
        text.contains("targets v3") && text.contains("valid"),
        "{text}"
    );
    late.stop();
    for n in nodes {
        n.stop();
    }
}

/// A counter from the node's `/metrics` (0 when absent).
fn metric(dir: &Path, name: &str) -> f64 {
    let (code, body) = gaiamesh_e2e::mesh::http(dir, "GET", "/metrics", b"");
    assert_eq!(code, 200);
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn publish_optional(r: &Path, file: &str, name: &str, bytes: &[u8]) {
    std::fs::write(r.join(file), bytes).unwrap();
    ok(
        r,
        &[
            "repo",
            "publish",
            file,
            "--name",
            name,
            "--version",
            "1",
            "--key",
            "fed/keys/repository-root-0.key",
            "--key",
            "fed/keys/repository-root-2.key",
            "--data-dir",
            "node0",
        ],
    );
}

/// Three admitted nodes booting from node0; `api` goes into node1's `[api]` section.
fn three_nodes(r: &Path, api: &str) -> (Vec<std::path::PathBuf>, [Node; 3]) {
    let nodes = gaiamesh_e2e::mesh::start_with(r, 3, |i| if i == 1 { api } else { "" });
    let dirs = nodes.iter().map(|n| n.dir.clone()).collect();
    let Ok(nodes) = <[Node; 3]>::try_from(nodes) else {
        unreachable!("three nodes were started")
    };
    (dirs, nodes)
}

fn pseudo_random(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

#[test]
fn a_peer_serving_garbage_is_penalised_and_the_blob_comes_from_elsewhere() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let (dirs, [n0, n1, n2]) = three_nodes(r, "fault_injection = true");
    let content = pseudo_random(3 * 1024 * 1024, 7);
    publish_optional(r, "data.bin", "datasets/reference", &content);
    let target = "datasets/reference@1";
    // node1 gets an honest copy, then starts serving garbage.
    n1.wait_for("the release", Duration::from_secs(30), |_| {
        !local_state(r, "node1", target).is_empty()
    });
    ok(r, &["repo", "fetch", target, "--data-dir", "node1"]);
    let (code, _) =
        gaiamesh_e2e::mesh::http(&dirs[1], "POST", "/api/v1/debug/corrupt-blobs", b"on");
    assert_eq!(code, 200);
    n2.wait_for("the release", Duration::from_secs(30), |_| {
        !local_state(r, "node2", target).is_empty()
    });
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
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        content,
        "only verified data was stored"
    );
    assert!(
        metric(&dirs[2], "gaiamesh_repo_penalised_peers_total") >= 1.0,
        "node1 sent garbage and must be penalised\n{}",
        n2.log()
    );
    assert!(n2.log().contains("fails verification"), "{}", n2.log());
    for n in [n0, n1, n2] {
        n.stop();
    }
}

#[test]
fn a_download_killed_midway_resumes_without_fetching_verified_ranges_again() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let dirs = federation(r, 2);
    configure(&dirs[0], &[]);
    // node0 uploads at 384 KiB/s, so a 3 MiB download takes about 8 s.
    let mut cfg = std::fs::read_to_string(dirs[0].join("config.toml")).unwrap();
    cfg.push_str("[repository]\nupload_limit_kib_s = 384\n");
    std::fs::write(dirs[0].join("config.toml"), cfg).unwrap();
    let n0 = Node::start(&dirs[0]);
    let boot = vec![n0.address()];
    configure(&dirs[1], &boot);
    let n1 = Node::start(&dirs[1]);
    n1.wait_for("admission", Duration::from_secs(30), |n| {
        n.status()["admitted_peers"].as_u64().unwrap_or(0) >= 1
    });
    let content = pseudo_random(3 * 1024 * 1024, 11);
    publish_optional(r, "big.bin", "models/base", &content);
    let target = "models/base@1";
    n1.wait_for("the release", Duration::from_secs(30), |_| {
        !local_state(r, "node1", target).is_empty()
    });
    ok(
        r,
        &["repo", "fetch", target, "--data-dir", "node1", "--no-wait"],
    );
    let verified = |r: &Path| -> u64 {
        repo_status(r, "node1")
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["target"] == target)
            .and_then(|t| t["verified"].as_u64())
            .unwrap_or(0)
    };
    n1.wait_for("a part of the blob", Duration::from_secs(30), |_| {
        verified(r) >= 1024 * 1024
    });
    n1.kill();
    let n1 = Node::start(&dirs[1]);
    let kept = verified(r);
    assert!(
        kept >= 1024 * 1024,
        "verified ranges survive SIGKILL: {kept}"
    );
    assert_eq!(local_state(r, "node1", target), "partial");
    let copy = r.join("copy.bin");
    ok(
        r,
        &[
            "repo",
            "fetch",
            target,
            "--data-dir",
            "node1",
            "--out",
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    // Only what was missing crossed the wire after the restart (plus bao parents).
    let after = metric(&dirs[1], "gaiamesh_repo_downloaded_bytes_total");
    let missing = (content.len() as u64 - kept) as f64;
    assert!(
        after <= missing * 1.1 + 64.0 * 1024.0,
        "re-fetched verified ranges: {after} bytes sent for {missing} missing"
    );
    n0.stop();
    n1.stop();
}

/// A provider whose stored copy was damaged on disk: it validates what it serves, so the
/// damaged chunk group never leaves it. The stream is cut there, the fetching node keeps
/// the groups verified before it, does not penalise the honest-but-damaged peer, and gets
/// the rest from another provider.
#[test]
fn a_provider_with_a_damaged_copy_cuts_the_stream_and_the_blob_comes_from_elsewhere() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let (dirs, [n0, n1, n2]) = three_nodes(r, "");
    let content = pseudo_random(3 * 1024 * 1024, 13);
    publish_optional(r, "data.bin", "datasets/damaged", &content);
    let target = "datasets/damaged@1";
    for (name, node) in [("node1", &n1), ("node2", &n2)] {
        node.wait_for("the release", Duration::from_secs(30), |_| {
            !local_state(r, name, target).is_empty()
        });
    }
    ok(r, &["repo", "fetch", target, "--data-dir", "node1"]);
    // Damage node1's copy in its second MiB, 300 KiB in (after several 64 KiB pieces of
    // that segment went out), then leave node1 as the only provider.
    let data = walk(&dirs[1])
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "data"))
        .expect("node1 stores the blob as <hash>.data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[1024 * 1024 + 300 * 1024] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    n0.stop();
    n1.wait_for("node0 gone", Duration::from_secs(30), |n| {
        n.status()["admitted_peers"].as_u64().unwrap_or(9) <= 1
    });
    ok(
        r,
        &["repo", "fetch", target, "--data-dir", "node2", "--no-wait"],
    );
    n1.wait_for(
        "the damage found while serving",
        Duration::from_secs(30),
        |n| n.log().contains("failed verification while served"),
    );
    assert_ne!(local_state(r, "node2", target), "complete");
    // node0 comes back (on a new port, so it dials node1): node2 completes from it.
    configure(&dirs[0], &[n1.address()]);
    let n0 = Node::start(&dirs[0]);
    let copy = r.join("copy.bin");
    let out = gaiamesh_e2e::run(
        r,
        &[
            "repo",
            "fetch",
            target,
            "--data-dir",
            "node2",
            "--timeout",
            "60s",
            "--out",
            copy.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n--- node2\n{}\n--- node1\n{}",
        String::from_utf8_lossy(&out.stderr),
        n2.log(),
        n1.log()
    );
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        content,
        "only verified data was stored"
    );
    assert_eq!(
        metric(&dirs[2], "gaiamesh_repo_penalised_peers_total"),
        0.0,
        "node1 never sent unverified bytes, so it is not penalised\n{}",
        n2.log()
    );
    for n in [n0, n1, n2] {
        n.stop();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
