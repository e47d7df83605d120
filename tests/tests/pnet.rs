//! A federation with a pre-shared key: members connect over TCP+pnet; a node without the key
//! never completes a handshake (it does not even reach admission).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use gaiamesh_e2e::{
    example,
    mesh::{Node, admit},
    ok,
};

fn configure_tcp(dir: &Path, bootstrap: Option<&str>) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\nbootstrap = [{}]\n\
             [api]\nlisten = \"127.0.0.1:0\"\n",
            bootstrap.map(|b| format!("{b:?}")).unwrap_or_default()
        ),
    )
    .unwrap();
}

#[test]
fn members_connect_over_tcp_pnet_and_nodes_without_the_key_cannot_handshake() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    ok(
        r,
        &[
            "federation",
            "init",
            "--name",
            "Private",
            "--out",
            "fed",
            "--psk",
        ],
    );
    let genesis = std::fs::read_to_string(r.join("fed/genesis.toml")).unwrap();
    assert!(genesis.contains("psk = "), "{genesis}");
    let a = admit(r, "a", &example("sd/01-nordwolke-de-nuernberg.toml"));
    let b = admit(r, "b", &example("sd/02-rheinrechen-de-frankfurt.toml"));
    configure_tcp(&a, None);
    let na = Node::start(&a);
    let boot = na.address_with("/tcp/");
    configure_tcp(&b, Some(&boot));
    let nb = Node::start(&b);
    for n in [&na, &nb] {
        n.wait_for("2 entries over TCP+pnet", Duration::from_secs(60), |n| {
            n.status()["directory_entries"] == 2
        });
    }
    assert!(na.log().contains("pre-shared key"), "{}", na.log());

    // Another federation without the key dials the same TCP port: the pnet handshake fails
    // before noise, so the listener never learns a PeerId and never runs admission.
    ok(
        r,
        &["federation", "init", "--name", "Other", "--out", "other"],
    );
    let c = r.join("c");
    let peer_c = ok(
        r,
        &["init", "--data-dir", "c", "--genesis", "other/genesis.toml"],
    )
    .trim()
    .to_owned();
    configure_tcp(&c, Some(&boot));
    let nc = Node::start(&c);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(nc.status()["connected_peers"], 0);
    assert!(
        !na.log().contains(&peer_c),
        "the listener saw the outsider's PeerId:\n{}",
        na.log()
    );
}
