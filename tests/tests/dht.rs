//! Real processes on loopback: Kademlia (a light node answers attribute queries through the
//! DHT, with the same answer as a full replica) and misbehaving members (a forged and an
//! equivocating self-description are rejected and their sender penalised).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, path::Path, time::Duration};

use gaiamesh_e2e::{
    mesh::{Node, admit, configure_with, federation, http},
    ok, run,
};
use gaiamesh_protocol::sd::{SelfDescription, SignedSelfDescription};

const CONVERGE: Duration = Duration::from_secs(60);

fn entries(n: &Node) -> u64 {
    n.status()["directory_entries"].as_u64().unwrap()
}

fn query(dir: &Path, q: &str) -> std::process::Output {
    run(
        dir,
        &["query", q, "--data-dir", ".", "--json", "--limit", "1000"],
    )
}

fn subjects(out: &std::process::Output) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["subject"].as_str().unwrap().to_owned())
        .collect()
}

fn start_mesh(root: &Path, n: usize, api: impl Fn(usize) -> &'static str) -> Vec<Node> {
    let dirs = federation(root, n);
    configure_with(&dirs[0], &[], api(0), "");
    let first = Node::start(&dirs[0]);
    let boot = vec![first.address()];
    let mut nodes = vec![first];
    for (i, d) in dirs.iter().enumerate().skip(1) {
        configure_with(d, &boot, api(i), "");
        nodes.push(Node::start(d));
    }
    nodes
}

#[test]
fn ten_nodes_converge_and_a_light_node_answers_through_the_dht() {
    let root = tempfile::tempdir().unwrap();
    let nodes = start_mesh(root.path(), 10, |_| "");
    for n in &nodes {
        n.wait_for("10 directory entries", CONVERGE, |n| entries(n) == 10);
    }
    let boot = vec![nodes[0].address(), nodes[5].address()];
    let light_dir = admit(
        root.path(),
        "light",
        &gaiamesh_e2e::example("sd/17-baltic-edge-ee-tallinn.toml"),
    );
    configure_with(&light_dir, &boot, "", "mode = \"light\"");
    let light = Node::start(&light_dir);
    assert_eq!(light.status()["mode"], "light");
    // The light node's own record reaches the full replicas (pushed on admission).
    for n in &nodes {
        n.wait_for("the light node's entry", CONVERGE, |n| entries(n) == 11);
    }
    // It keeps no replica.
    assert_eq!(entries(&light), 1);

    // Attribute queries through the DHT give the full replica's answer once the records and
    // provider announcements have been put (right after start they may still be in flight).
    for q in [
        "node.location.country = DE",
        "service.kind = storage.object and service.price.amount < 0.05",
        "node.kind in [edge, telco_edge]",
        "node.location.country = EE",
    ] {
        let expected = subjects(&query(&nodes[3].dir, q));
        assert!(!expected.is_empty(), "{q}: the full replica finds nothing");
        light.wait_for(&format!("the DHT answer to {q}"), CONVERGE, |l| {
            let out = query(&l.dir, q);
            out.status.success() && subjects(&out) == expected
        });
        let v: serde_json::Value = serde_json::from_slice(&query(&light.dir, q).stdout).unwrap();
        assert_eq!(v["source"], "dht", "{v}");
        assert!(
            v["providers"].as_u64().unwrap() >= expected.len() as u64 / 2,
            "{v}"
        );
    }
    // A query without an announced attribute cannot run on a light node: a clear error.
    let out = query(&light.dir, "node.energy.pue < 1.3");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("light node") && err.contains("equality"),
        "{err}"
    );

    // Kademlia lookups are measured.
    let (code, body) = http(&light.dir, "GET", "/metrics", b"");
    let metrics = String::from_utf8(body).unwrap();
    assert_eq!(code, 200);
    assert!(
        metrics.contains("gaiamesh_kad_query_seconds_count{kind=\"get_providers\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gaiamesh_light_queries_total"),
        "{metrics}"
    );

    // The DHT store survives a restart (records are in dht.redb).
    let dir3 = nodes[3].dir.clone();
    assert!(dir3.join("dht.redb").exists());
}

fn node_key(dir: &Path) -> gaiamesh_protocol::identity::Keypair {
    let text = std::fs::read_to_string(dir.join("key")).unwrap();
    gaiamesh_protocol::identity::Keypair::from_secret_text(&text).unwrap()
}

fn now() -> gaiamesh_protocol::time::UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    gaiamesh_protocol::time::UnixMillis(u64::try_from(ms).unwrap())
}

/// A validly signed self-description of the node in `dir` at `seq`, built from what the
/// mesh shows for it, with `legal_name` changed.
fn resign(shown: &serde_json::Value, dir: &Path, seq: u64, legal_name: &str) -> Vec<u8> {
    let key = node_key(dir);
    let credential = gaiamesh_protocol::federation::MembershipCredential::from_toml(
        &std::fs::read_to_string(dir.join("membership.cred")).unwrap(),
    )
    .unwrap();
    let mut document: gaiamesh_protocol::sd::SdDocument =
        serde_json::from_value(shown["document"].clone()).unwrap();
    document.participant.legal_name = legal_name.into();
    let now = now();
    let trust_id = gaiamesh_protocol::federation::Genesis::from_toml(
        &std::fs::read_to_string(dir.join("genesis.toml")).unwrap(),
    )
    .unwrap()
    .id()
    .unwrap();
    let sd = SelfDescription {
        schema_version: gaiamesh_protocol::sd::SCHEMA_VERSION,
        subject: key.public(),
        federation: trust_id,
        seq,
        issued_at: now,
        expires_at: now.plus_ms(3_600_000),
        document,
        membership: Some(credential),
        attestations: vec![],
    };
    sd.sign(&key).unwrap().encode().unwrap()
}

/// Reads `GET /api/v1/events` of the node in `dir` for 15 s on a thread; returns the text.
fn sse_collector(dir: &Path) -> std::thread::JoinHandle<String> {
    use std::io::{Read, Write};
    let (host, _) = gaiamesh_e2e::mesh::api_address(dir);
    let mut s = std::net::TcpStream::connect(&host).unwrap();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    std::thread::spawn(move || {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let start = std::time::Instant::now();
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while start.elapsed() < Duration::from_secs(15) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

fn score_of(observer: &Node, peer: &str) -> Option<f64> {
    let peers: serde_json::Value =
        serde_json::from_str(&ok(&observer.dir, &["peers", "--data-dir", ".", "--json"])).unwrap();
    peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == peer)
        .and_then(|p| p["score"].as_f64())
}

#[test]
fn forged_and_equivocating_self_descriptions_are_rejected_and_penalised() {
    let root = tempfile::tempdir().unwrap();
    // node2 and node3 run with fault injection: they will misbehave on purpose.
    let nodes = start_mesh(root.path(), 5, |i| {
        if i >= 3 { "fault_injection = true" } else { "" }
    });
    for n in &nodes {
        n.wait_for("5 directory entries", CONVERGE, |n| entries(n) == 5);
    }
    let id = |n: &Node| n.status()["peer_id"].as_str().unwrap().to_owned();
    let (forger, equivocator) = (&nodes[3], &nodes[4]);
    let (forger_id, equivocator_id, victim_id) = (id(forger), id(equivocator), id(&nodes[0]));
    let show = |n: &Node, subject: &str| -> serde_json::Value {
        serde_json::from_str(&ok(
            &n.dir,
            &["sd", "show", subject, "--data-dir", ".", "--json"],
        ))
        .unwrap()
    };
    // node1 streams its events (server-sent events) while the misbehaviour happens.
    let events = sse_collector(&nodes[1].dir);
    // Without fault injection the endpoint does not exist.
    let (code, _) = http(&nodes[1].dir, "POST", "/api/v1/debug/gossip", b"x");
    assert_eq!(code, 404);

    // 1. The forger gossips node0's self-description with a higher seq and a changed name,
    //    signed with the forger's key (a forgery: the signature is not node0's).
    let victim = show(&nodes[1], &victim_id);
    let victim_seq = victim["seq"].as_u64().unwrap();
    let mut forged: SignedSelfDescription = SignedSelfDescription::decode(&resign(
        &victim,
        &forger.dir,
        victim_seq + 10,
        "Forged Name Ltd",
    ))
    .unwrap();
    forged.sd.subject = node_key(&nodes[0].dir).public();
    let bytes = forged.encode().unwrap();
    let (code, body) = http(&forger.dir, "POST", "/api/v1/debug/gossip", &bytes);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // Its direct peers reject it and penalise the forger; nobody stores it.
    let observers: Vec<&Node> = nodes[..3].iter().collect();
    observers[0].wait_for("the forger to be penalised", CONVERGE, |_| {
        observers
            .iter()
            .any(|o| score_of(o, &forger_id).is_some_and(|s| s < 0.0))
    });
    for n in &nodes {
        let v = show(n, &victim_id);
        assert_eq!(
            v["seq"].as_u64().unwrap(),
            victim_seq,
            "{}",
            n.dir.display()
        );
        assert_ne!(
            v["document"]["participant"]["legal_name"],
            "Forged Name Ltd"
        );
    }

    // 2. The equivocator signs two versions with one seq and gossips both.
    let own = show(&nodes[1], &equivocator_id);
    let seq = own["seq"].as_u64().unwrap() + 10;
    let a = resign(&own, &equivocator.dir, seq, "Version A GmbH");
    let b = resign(&own, &equivocator.dir, seq, "Version B GmbH");
    for v in [&a, &b] {
        let (code, body) = http(&equivocator.dir, "POST", "/api/v1/debug/gossip", v);
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    }
    observers[0].wait_for("the equivocator to be penalised", CONVERGE, |_| {
        observers
            .iter()
            .any(|o| score_of(o, &equivocator_id).is_some_and(|s| s < 0.0))
    });
    // Every honest node ends with the same one of the two versions: the smaller hash.
    let hash = |v: &[u8]| {
        SignedSelfDescription::decode(v)
            .unwrap()
            .content_hash()
            .unwrap()
    };
    let expected = if hash(&a) < hash(&b) {
        "Version A GmbH"
    } else {
        "Version B GmbH"
    };
    let winner = |n: &Node| {
        show(n, &equivocator_id)["document"]["participant"]["legal_name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    observers[0].wait_for("all honest nodes to agree", CONVERGE, |_| {
        observers.iter().all(|o| winner(o) == expected)
    });
    // Honest peers are not penalised for forwarding.
    for o in &observers {
        for p in &observers {
            if let Some(s) = score_of(o, &id(p)) {
                assert!(
                    s >= 0.0,
                    "{} penalised honest {}",
                    o.dir.display(),
                    p.dir.display()
                );
            }
        }
    }
    // The stream told a subscriber about the rejections and the stored versions.
    let streamed = events.join().unwrap();
    assert!(streamed.contains("event: sd_rejected"), "{streamed}");
    assert!(streamed.contains("\"type\":\"sd_stored\""), "{streamed}");
    // The rejections are counted.
    let rejected = observers.iter().any(|o| {
        let (_, body) = http(&o.dir, "GET", "/metrics", b"");
        String::from_utf8(body)
            .unwrap()
            .lines()
            .any(|l| l.starts_with("gaiamesh_gossip_messages_total{outcome=\"reject\"}"))
    });
    assert!(rejected, "no rejection counted");
}
