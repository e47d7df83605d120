//! Data exchange between real nodes on loopback: a policy refusal with its reason, a
//! verified transfer with agreement, transfer and receipt in both audit logs, bytes changed
//! at the provider detected, failover to a second provider, resume after the provider is
//! killed mid-transfer, and a tampered audit log detected.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use gaiamesh_e2e::{
    fails,
    mesh::{self, Node, configure, configure_with, federation, http},
    ok,
};

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn add_asset(r: &Path, node: &str, file: &str, id: &str, policy: &str) {
    std::fs::write(r.join(format!("{id}.policy.toml")), policy).unwrap();
    ok(
        r,
        &[
            "asset",
            "add",
            file,
            "--id",
            id,
            "--policy",
            &format!("{id}.policy.toml"),
            "--data-dir",
            node,
        ],
    );
}

fn peer_id(n: &Node) -> String {
    n.status()["peer_id"].as_str().unwrap().to_owned()
}

fn audit(r: &Path, node: &str) -> Vec<serde_json::Value> {
    let out = ok(r, &["audit", "list", "--data-dir", node, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["entries"].as_array().unwrap().clone()
}

fn kinds(entries: &[serde_json::Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn fetch(r: &Path, node: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exchange", "fetch", "--data-dir", node, "--json"];
    all.extend_from_slice(args);
    gaiamesh_e2e::run(r, &all)
}

/// node1 fetches `asset` from `provider` for `purpose` into `out`.
fn fetch_from(
    r: &Path,
    provider: &str,
    asset: &str,
    purpose: &str,
    out: &str,
) -> std::process::Output {
    fetch(
        r,
        "node1",
        &[
            "--provider",
            provider,
            "--asset",
            asset,
            "--purpose",
            purpose,
            "--out",
            out,
        ],
    )
}

#[test]
fn exchanges_are_negotiated_verified_audited_and_fail_over() {
    let t0 = std::time::Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", t0.elapsed());
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let nodes = mesh::start(r, 3);
    step("mesh up");
    let content = data(3 * 1024 * 1024 + 123, 1);
    std::fs::write(r.join("weather.bin"), &content).unwrap();
    let research_eu =
        "purposes = [\"research\"]\njurisdiction = [\"EU\"]\nonward_transfer = false\n";
    std::fs::write(r.join("weather.policy.toml"), research_eu).unwrap();
    // priced per gigabyte read: the transfer's usage record carries the price
    let add = [
        "asset",
        "add",
        "weather.bin",
        "--id",
        "weather",
        "--policy",
        "weather.policy.toml",
        "--price",
        "0.50 EUR/GB-read",
        "--data-dir",
        "node0",
    ];
    ok(r, &add);
    let provider = peer_id(&nodes[0]);

    step("asset added");
    // The policy refuses a purpose it does not permit, and says why.
    let out = fetch_from(r, &provider, "weather", "marketing", "got/weather.bin");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("purpose") && err.contains("marketing"),
        "{err}"
    );
    assert!(!r.join("got/weather.bin").exists());

    // Permitted: negotiated, transferred, verified, in place.
    let out = fetch_from(
        r,
        &provider,
        "weather",
        "research.climate",
        "got/weather.bin",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["bytes"], content.len() as u64);
    assert!(job["negotiation_ms"].as_f64().unwrap() > 0.0);
    // Metered like a compute job: the provider's signed record of bytes sent and time taken.
    assert_eq!(job["usage"]["bytes_read"], content.len() as u64, "{job}");
    assert!(job["usage"]["wall_us"].as_u64().unwrap() > 0, "{job}");
    assert_eq!(job["usage"]["fuel"], 0);
    assert_eq!(job["charge"]["currency"], "EUR", "{job}");
    assert_eq!(job["charge"]["unit"], "GB-read");
    assert_eq!(job["charge"]["quantity"], "0.003145851", "{job}");
    assert_eq!(std::fs::read(r.join("got/weather.bin")).unwrap(), content);
    assert!(!r.join("got/weather.bin.part").exists());
    assert!(!r.join("got/weather.bin.agreement").exists());
    // An existing file is not replaced unless asked.
    let out = fetch_from(r, &provider, "weather", "research", "got/weather.bin");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--overwrite")
            || String::from_utf8_lossy(&out.stderr).contains("overwrite"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    step("fetched");
    // Both audit logs hold the refusal, the agreement, the transfer and the receipt.
    nodes[0].wait_for(
        "the receipt at the provider",
        Duration::from_secs(10),
        |_| kinds(&audit(r, "node0")).contains(&"receipt".to_owned()),
    );
    nodes[0].wait_for(
        "the countersigned transfer record at the provider",
        Duration::from_secs(10),
        |_| {
            audit(r, "node0").iter().any(|e| {
                e["kind"] == "usage"
                    && !e["event"]["usage"]["record"]["consumer_signature"].is_null()
            })
        },
    );
    for node in ["node0", "node1"] {
        let k = kinds(&audit(r, node));
        for want in ["refusal", "agreement", "transfer", "receipt", "usage"] {
            assert!(k.contains(&want.to_owned()), "{node}: {k:?}");
        }
        let usage = audit(r, node)
            .into_iter()
            .find(|e| e["kind"] == "usage")
            .unwrap();
        let body = &usage["event"]["usage"]["record"]["body"];
        assert_eq!(body["algorithm"], "", "a transfer's record: {body}");
        assert_eq!(body["usage"]["bytes_read"], content.len() as u64);
        let v = ok(r, &["audit", "verify", "--data-dir", node]);
        assert!(v.contains("intact"), "{v}");
    }
    let agreement = audit(r, "node0")
        .into_iter()
        .find(|e| e["kind"] == "agreement")
        .unwrap();
    let body = &agreement["event"]["agreement"]["agreement"]["body"];
    assert_eq!(body["purpose"], "research.climate");
    assert_eq!(
        body["consumer_registration"]
            .as_str()
            .unwrap()
            .split(':')
            .count(),
        2
    );

    step("audit checked");
    // Bytes changed at the provider after registration: the consumer's BLAKE3 check fails,
    // nothing is put in place.
    let mut changed = content.clone();
    changed[1_000_000] ^= 0x40;
    std::fs::write(r.join("weather.bin"), &changed).unwrap();
    let out = fetch_from(r, &provider, "weather", "research", "got/changed.bin");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not match the agreed BLAKE3"), "{err}");
    assert!(!r.join("got/changed.bin").exists());
    assert!(!r.join("got/changed.bin.part").exists());
    std::fs::write(r.join("weather.bin"), &content).unwrap();

    step("tamper checked");
    // Failover: the same asset on node2; whichever provider the query lists first is
    // stopped, and the fetch comes from the other one.
    add_asset(r, "node2", "weather.bin", "weather", research_eu);
    let q = "service.kind = data.resource and service.id = weather";
    nodes[1].wait_for(
        "both providers in the directory",
        Duration::from_secs(30),
        |_| {
            let (code, body) = http(
                &r.join("node1"),
                "GET",
                &format!("/api/v1/directory?q={}", q.replace(' ', "%20")),
                b"",
            );
            code == 200 && serde_json::from_slice::<serde_json::Value>(&body).unwrap()["total"] == 2
        },
    );
    let (_, body) = http(
        &r.join("node1"),
        "GET",
        &format!("/api/v1/directory?q={}", q.replace(' ', "%20")),
        b"",
    );
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let first = listed["matches"][0]["subject"].as_str().unwrap().to_owned();
    step("both providers listed");
    let mut nodes: Vec<Option<Node>> = nodes.into_iter().map(Some).collect();
    let (first_i, second_i) = if first == provider { (0, 2) } else { (2, 0) };
    nodes[first_i].take().unwrap().stop();
    let out = fetch(
        r,
        "node1",
        &[
            "--query",
            q,
            "--purpose",
            "research",
            "--attempts",
            "1",
            "--out",
            "got/failover.bin",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = peer_id(nodes[second_i].as_ref().unwrap());
    assert_eq!(job["provider"], second.as_str());
    assert_eq!(job["attempts"].as_array().unwrap().len(), 1, "{job}");
    assert_eq!(job["attempts"][0]["provider"], first.as_str());
    assert_eq!(std::fs::read(r.join("got/failover.bin")).unwrap(), content);

    step("failover done");
    // A tampered audit log is detected (the node is stopped; the CLI reads the file).
    nodes[1].take().unwrap().stop();
    tamper_audit(&r.join("node1/audit.redb"));
    let err = fails(r, &["audit", "verify", "--data-dir", "node1"]);
    assert!(err.contains("entry 1"), "{err}");
}

/// Flips the last byte (inside the signature) of entry 1.
fn tamper_audit(path: &Path) {
    use redb::{ReadableDatabase, TableDefinition};
    const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("audit_entries_v1");
    let db = redb::Database::create(path).unwrap();
    let mut bytes = {
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(ENTRIES).unwrap();
        t.get(1).unwrap().unwrap().value().to_vec()
    };
    *bytes.last_mut().unwrap() ^= 1;
    let txn = db.begin_write().unwrap();
    txn.open_table(ENTRIES)
        .unwrap()
        .insert(1, bytes.as_slice())
        .unwrap();
    txn.commit().unwrap();
}

#[test]
fn a_transfer_resumes_after_the_provider_is_killed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let dirs = federation(r, 2);
    configure(&dirs[0], &[]);
    // 2 MiB/s upload: 12 MiB take six seconds, time enough to kill the provider mid-way.
    let limit = "\n[repository]\nupload_limit_kib_s = 2048\n";
    let cfg = std::fs::read_to_string(dirs[0].join("config.toml")).unwrap();
    std::fs::write(dirs[0].join("config.toml"), format!("{cfg}{limit}")).unwrap();
    let n0 = Node::start(&dirs[0]);
    let provider = peer_id(&n0);
    let boot = vec![n0.address()];
    // node1 may present spoiled agreements (fault injection) at the end.
    configure_with(&dirs[1], &boot, "fault_injection = true", "");
    let n1 = Node::start(&dirs[1]);
    n1.wait_for("admission", Duration::from_secs(30), |x| {
        x.status()["admitted_peers"].as_u64().unwrap_or(0) >= 1
    });
    let content = data(12 * 1024 * 1024, 7);
    std::fs::write(r.join("big.bin"), &content).unwrap();
    add_asset(r, "node0", "big.bin", "big", "");
    let out_path = r.join("got/big.bin");
    let body = serde_json::json!({
        "provider": provider, "asset": "big", "purpose": "research",
        "out": out_path, "attempts": 1,
    });
    let (code, reply) = http(
        &dirs[1],
        "POST",
        "/api/v1/exchange/fetch",
        body.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&reply));
    let job = serde_json::from_slice::<serde_json::Value>(&reply).unwrap()["job"]
        .as_u64()
        .unwrap();
    let job_view = || {
        let (_, b) = http(
            &dirs[1],
            "GET",
            &format!("/api/v1/exchange/fetch/{job}"),
            b"",
        );
        serde_json::from_slice::<serde_json::Value>(&b).unwrap()
    };
    n1.wait_for("a few MiB to arrive", Duration::from_secs(30), |_| {
        job_view()["bytes"].as_u64().unwrap_or(0) > 3 * 1024 * 1024
    });
    // It comes back on the same port (node1 redials the address it knows).
    let listen = boot[0].split("/p2p/").next().unwrap().to_owned();
    let cfg = std::fs::read_to_string(dirs[0].join("config.toml")).unwrap();
    let cfg = cfg.replace("/ip4/127.0.0.1/udp/0/quic-v1", &listen);
    n0.kill();
    std::fs::write(dirs[0].join("config.toml"), cfg).unwrap();
    n1.wait_for("the attempt to fail", Duration::from_secs(60), |_| {
        job_view()["state"] == "failed"
    });
    let staged = std::fs::metadata(r.join("got/big.bin.part")).unwrap().len();
    assert!(staged > 0 && staged < content.len() as u64, "{staged}");
    assert!(r.join("got/big.bin.agreement").exists());

    // The provider comes back; the same fetch resumes under the kept agreement.
    let n0 = Node::start(&dirs[0]);
    n0.wait_for("admission", Duration::from_secs(30), |x| {
        x.status()["admitted_peers"].as_u64().unwrap_or(0) >= 1
    });
    let out = fetch_from(r, &provider, "big", "research", "got/big.bin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["resumed_from"].as_u64().unwrap(), staged, "{done}");
    assert!(done["negotiation_ms"].is_null(), "negotiated again: {done}");
    assert_eq!(std::fs::read(&out_path).unwrap(), content);
    // One agreement at the provider: the resume did not count as another transfer.
    let agreements = audit(r, "node0")
        .iter()
        .filter(|e| e["kind"] == "agreement")
        .count();
    assert_eq!(agreements, 1);

    // An altered or forged agreement is refused by the provider, which logs the refusal.
    for (how, why) in [
        ("altered", "signature does not verify"),
        ("forged", "signature does not verify"),
    ] {
        let body = serde_json::json!({ "provider": provider, "how": how });
        let (code, reply) = http(
            &dirs[1],
            "POST",
            "/api/v1/debug/spoiled-agreement",
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&reply));
        let answer: serde_json::Value = serde_json::from_slice(&reply).unwrap();
        let answer = answer["answer"].as_str().unwrap();
        assert!(
            answer.starts_with("refused") && answer.contains(why),
            "{how}: {answer}"
        );
    }
    let refusals = audit(r, "node0")
        .into_iter()
        .filter(|e| e["kind"] == "refusal")
        .count();
    assert_eq!(refusals, 2);
    drop(n1);
}
