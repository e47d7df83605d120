//! Admission that sticks (issue 16): outsiders — no credential, another federation's
//! credential, a member's credential copied — that redial a member in a loop are refused on
//! first contact, banned, and never connected for more than 2 s in total.

#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    path::Path,
    time::{Duration, Instant},
};

use gaiamesh_e2e::{
    example,
    mesh::{Node, admit, configure, configure_with, federation, http},
    ok,
};

/// Creates the data dir `root/name` in the federation `fed` (relative to `root`), without a
/// credential; returns its PeerId.
fn init(root: &Path, name: &str, fed: &str) -> String {
    let peer = ok(
        root,
        &[
            "init",
            "--data-dir",
            name,
            "--genesis",
            &format!("{fed}/genesis.toml"),
        ],
    )
    .trim()
    .to_owned();
    std::fs::copy(
        example("sd/07-nordic-hydro-se-lulea.toml"),
        root.join(name).join("sd.toml"),
    )
    .unwrap();
    peer
}

#[test]
fn outsiders_that_redial_are_refused_banned_and_never_linger() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let dirs = federation(r, 1);
    configure_with(&dirs[0], &[], "", "");
    let member = Node::start(&dirs[0]);
    let boot = vec![member.address()];

    // 1. No credential at all.
    let bare = init(r, "bare", "fed");
    // 2. Admitted, but by another federation.
    std::fs::create_dir(r.join("other")).unwrap();
    ok(
        &r.join("other"),
        &["federation", "init", "--name", "Other", "--out", "fed"],
    );
    let foreign_dir = admit(
        &r.join("other"),
        "foreign",
        &example("sd/03-seine-cloud-fr-paris.toml"),
    );
    let foreign = gaiamesh_e2e::mesh::Node::start(&{
        configure(&foreign_dir, &boot);
        foreign_dir.clone()
    });
    let foreign_peer = foreign.status()["peer_id"].as_str().unwrap().to_owned();
    // 3. A member's credential, copied next to another key.
    let copier = init(r, "copier", "fed");
    std::fs::copy(
        dirs[0].join("membership.cred"),
        r.join("copier").join("membership.cred"),
    )
    .unwrap();
    for name in ["bare", "copier"] {
        configure(&r.join(name), &boot);
    }
    let started = Instant::now();
    let outsiders = [Node::start(&r.join("bare")), Node::start(&r.join("copier"))];
    let names: HashMap<String, &str> = [
        (bare.clone(), "no credential"),
        (foreign_peer.clone(), "another federation"),
        (copier.clone(), "a copied credential"),
    ]
    .into();

    // Every outsider redials while it is alone (1 s, 2 s, 4 s, …): watch the member's and
    // the outsiders' peer lists for 12 s and add up how long each outsider is connected.
    let step = Duration::from_millis(100);
    let mut connected: HashMap<&str, Duration> = HashMap::new();
    while started.elapsed() < Duration::from_secs(12) {
        let (code, body) = http(&dirs[0], "GET", "/api/v1/peers", b"");
        assert_eq!(code, 200);
        let peers: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for p in peers.as_array().unwrap() {
            let id = p["peer_id"].as_str().unwrap();
            let name = names.get(id).copied().unwrap_or("unknown");
            assert_ne!(name, "unknown", "an unexpected peer {id}");
            assert_eq!(p["admitted"], false, "{name} was admitted");
            *connected.entry(name).or_default() += step;
        }
        // The outsiders' own view: connected to anyone at all.
        for (o, name) in outsiders
            .iter()
            .zip(["no credential", "a copied credential"])
            .chain([(&foreign, "another federation")])
        {
            let (code, body) = http(&o.dir, "GET", "/api/v1/peers", b"");
            assert_eq!(code, 200);
            let peers: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if !peers.as_array().unwrap().is_empty() {
                *connected.entry(name).or_default() += step;
            }
        }
        std::thread::sleep(step);
    }
    for (name, t) in &connected {
        assert!(
            *t <= Duration::from_secs(2),
            "the outsider with {name} was seen connected (by the member or by itself) {t:?} in total\n{}",
            member.log()
        );
    }
    let log = member.log();
    for reason in ["no membership credential", "peer banned"] {
        assert!(log.contains(reason), "member log lacks {reason:?}:\n{log}");
    }
    // Their redials were denied at connection establishment, by the ban.
    let (_, metrics) = http(&dirs[0], "GET", "/metrics", b"");
    let metrics = String::from_utf8(metrics).unwrap();
    let banned: f64 = metrics
        .lines()
        .find(|l| l.starts_with("gaiamesh_connections_banned_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no ban counter:\n{metrics}"));
    assert!(banned >= 1.0, "no redial was denied by a ban:\n{metrics}");
    for o in outsiders.iter().chain([&foreign]) {
        let s = o.status();
        assert_eq!(s["admitted_peers"], 0, "{s}");
    }
    // The member's directory holds only itself.
    let (_, body) = http(&dirs[0], "GET", "/api/v1/status", b"");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["directory_entries"], 1, "{status}");
}
