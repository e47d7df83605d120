//! Real `gaiamesh run` processes on loopback: admission, convergence, updates, catch-up
//! after restart, and refusal of non-members.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gaiamesh_e2e::{
    mesh::{Node, admit, configure, federation},
    ok,
};

const CONVERGE: Duration = Duration::from_secs(60);

fn entries(n: &Node) -> u64 {
    n.status()["directory_entries"].as_u64().unwrap()
}

#[test]
fn nodes_converge_update_catch_up_and_refuse_outsiders() {
    let root = tempfile::tempdir().unwrap();
    let dirs = federation(root.path(), 5);
    configure(&dirs[0], &[]);
    let first = Node::start(&dirs[0]);
    let boot = vec![first.address()];
    let mut nodes = vec![first];
    for d in &dirs[1..] {
        configure(d, &boot);
        nodes.push(Node::start(d));
    }
    // All five catalogues converge to five entries.
    for n in &nodes {
        n.wait_for("5 directory entries", CONVERGE, |n| entries(n) == 5);
    }
    let s = nodes[0].status();
    assert!(s["connected_peers"].as_u64().unwrap() >= 4, "{s}");
    assert!(s["peer_id"].as_str().unwrap().starts_with("12D3KooW"));

    // Presence: every node is alive from node1's point of view (heartbeats every 10 s).
    nodes[1].wait_for("all nodes alive", CONVERGE, |n| {
        let q = gaiamesh_e2e::run(
            &n.dir,
            &[
                "query",
                "alive = true",
                "--data-dir",
                ".",
                "--json",
                "--limit",
                "1000",
            ],
        );
        q.status.success() && {
            let v: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
            let subjects: std::collections::BTreeSet<_> = v["matches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["subject"].as_str().unwrap().to_owned())
                .collect();
            subjects.len() == 5
        }
    });
    let peers: serde_json::Value =
        serde_json::from_str(&ok(&dirs[0], &["peers", "--data-dir", ".", "--json"])).unwrap();
    assert!(
        peers
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["admitted"] == true),
        "{peers}"
    );

    // A query through the running node's API.
    let q = ok(
        root.path(),
        &[
            "query",
            "service.kind = storage.object",
            "--data-dir",
            dirs[1].to_str().unwrap(),
            "--json",
        ],
    );
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert!(q["total"].as_u64().unwrap() >= 1, "{q}");

    // A higher-seq update of node0 replaces the old version everywhere.
    let subject0 = s["peer_id"].as_str().unwrap().to_owned();
    let before = s["own_seq"].as_u64().unwrap();
    let out = ok(
        root.path(),
        &["sd", "publish", "--data-dir", dirs[0].to_str().unwrap()],
    );
    assert!(out.starts_with("published seq"), "{out}");
    for n in &nodes {
        n.wait_for("node0's new seq", CONVERGE, |n| {
            let show = gaiamesh_e2e::run(
                &n.dir,
                &["sd", "show", &subject0, "--data-dir", ".", "--json"],
            );
            show.status.success()
                && serde_json::from_slice::<serde_json::Value>(&show.stdout).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
                    > before
        });
    }
    let show: serde_json::Value = serde_json::from_str(&ok(
        &dirs[3],
        &["sd", "show", &subject0, "--data-dir", ".", "--json"],
    ))
    .unwrap();
    assert!(show["received_at_ms"].as_u64().unwrap() > 0);
    assert_eq!(
        show["document"]["participant"]["legal_name"],
        "Nordwolke GmbH"
    );

    // A node that was down catches up after restart, and its state survived.
    let n4 = nodes.pop().unwrap();
    n4.stop();
    // A sixth member joins while node4 is down.
    let extra = admit(
        root.path(),
        "node5",
        &gaiamesh_e2e::example("sd/06-amstel-data-nl-amsterdam.toml"),
    );
    configure(&extra, &boot);
    nodes.push(Node::start(&extra));
    nodes[0].wait_for("6 entries", CONVERGE, |n| entries(n) == 6);
    let n4 = Node::start(&dirs[4]);
    assert!(entries(&n4) >= 5, "state survived the restart");
    n4.wait_for("catch up to 6 entries", CONVERGE, |n| entries(n) == 6);

    // An outsider (no credential) is refused and never enters anyone's catalogue.
    let outsider = root.path().join("outsider");
    ok(
        root.path(),
        &[
            "init",
            "--data-dir",
            "outsider",
            "--genesis",
            "fed/genesis.toml",
        ],
    );
    std::fs::copy(
        gaiamesh_e2e::example("sd/07-nordic-hydro-se-lulea.toml"),
        outsider.join("sd.toml"),
    )
    .unwrap();
    configure(&outsider, &boot);
    let out_node = Node::start(&outsider);
    std::thread::sleep(Duration::from_secs(4));
    let os = out_node.status();
    assert_eq!(os["admitted_peers"], 0, "{os}");
    assert_eq!(os["connected_peers"], 0, "outsider still connected: {os}");
    assert!(
        nodes[0].log().contains("no membership credential"),
        "node0 did not refuse the outsider"
    );
    for n in nodes.iter().chain([&n4]) {
        assert_eq!(entries(n), 6, "{}", n.dir.display());
    }
    drop(out_node);

    // Revoking node2 takes effect on running nodes: the list spreads by gossip, node2's entry
    // is dropped everywhere and node2 is disconnected.
    let node2_peer = nodes[2].status()["peer_id"].as_str().unwrap().to_owned();
    ok(
        root.path(),
        &[
            "federation",
            "revoke",
            "--federation",
            "fed",
            "--peer",
            &node2_peer,
            "--reason",
            "left the federation",
        ],
    );
    let out = ok(
        root.path(),
        &[
            "revocations",
            "apply",
            "fed/revocations.toml",
            "--data-dir",
            dirs[0].to_str().unwrap(),
        ],
    );
    assert!(out.contains("version 1 in force"), "{out}");
    for (i, n) in nodes.iter().enumerate().chain([(9, &n4)]) {
        if i == 2 {
            continue;
        }
        n.wait_for("node2's entry to be dropped", CONVERGE, |n| entries(n) == 5);
    }
    nodes[2].wait_for("node2 to be cut off", CONVERGE, |n| {
        n.status()["admitted_peers"] == 0
    });
    assert!(
        dirs[3].join("revocations.toml").exists(),
        "the list is stored for restarts"
    );
}
