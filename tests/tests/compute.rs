//! Compute-to-data between real nodes on loopback: node0 offers a dataset for computation
//! only and the federation releases the example algorithm; node1 cannot download the data,
//! cannot run an algorithm the policy does not name or the release does not hold, and gets
//! only the aggregates of the permitted one, with a usage record signed by both in both
//! audit logs and a price from node0's self-description.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use gaiamesh_e2e::{example, fails, mesh, ok};

/// `NAME` of a Prometheus text exposition, summed over labels.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn only_the_result_of_a_permitted_released_algorithm_leaves_the_provider() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let nodes = mesh::start(r, 2);
    let provider = nodes[0].status()["peer_id"].as_str().unwrap().to_owned();

    let mut csv = String::from("station,temperature,humidity\n");
    for i in 0..2000 {
        csv.push_str(&format!(
            "S{i},{},{}\n",
            f64::from(i % 300) / 10.0,
            50 + i % 40
        ));
    }
    std::fs::write(r.join("weather.csv"), &csv).unwrap();
    std::fs::write(
        r.join("compute.toml"),
        "purposes = [\"research\"]\n[compute]\nalgorithms = [\"column-stats\"]\nmax_output_bytes = 4096\n",
    )
    .unwrap();
    ok(
        r,
        &[
            "asset",
            "add",
            "weather.csv",
            "--id",
            "weather",
            "--policy",
            "compute.toml",
            "--price",
            "0.05 EUR/Gfuel",
            "--data-dir",
            "node0",
        ],
    );
    let wasm = example("algorithms/column-stats.wasm");
    for name in ["column-stats", "other-stats"] {
        ok(
            r,
            &[
                "repo",
                "publish",
                wasm.to_str().unwrap(),
                "--name",
                name,
                "--version",
                "1.0.0",
                "--category",
                "optional",
                "--key",
                "fed/keys/repository-root-0.key",
                "--key",
                "fed/keys/repository-root-1.key",
                "--data-dir",
                "node0",
            ],
        );
    }
    nodes[1].wait_for("the release", Duration::from_secs(30), |_| {
        ok(r, &["repo", "list", "--data-dir", "node1", "--json"]).contains("other-stats@1.0.0")
    });

    let run = |algorithm: &str, purpose: &str| -> Vec<String> {
        [
            "compute",
            "run",
            "--data-dir",
            "node1",
            "--provider",
            &provider,
            "--asset",
            "weather",
            "--algorithm",
            algorithm,
            "--purpose",
            purpose,
            "--arg",
            "temperature",
            "--timeout",
            "60s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };

    // The rows cannot be downloaded.
    let err = fails(
        r,
        &[
            "exchange",
            "fetch",
            "--data-dir",
            "node1",
            "--provider",
            &provider,
            "--asset",
            "weather",
            "--purpose",
            "research",
            "--out",
            "copy.csv",
            "--attempts",
            "1",
        ],
    );
    assert!(err.contains("computation only"), "{err}");
    assert!(!r.join("copy.csv").exists());
    // A released algorithm the policy does not name, one the release does not hold, a
    // purpose the policy does not permit: each refused with the reason.
    let err = fails(r, &args(&run("other-stats", "research")));
    assert!(err.contains("not among the permitted"), "{err}");
    let err = fails(r, &args(&run("no-such-algorithm", "research")));
    assert!(err.contains("not a released repository target"), "{err}");
    let err = fails(r, &args(&run("column-stats", "marketing")));
    assert!(err.contains("marketing"), "{err}");

    // The permitted one: only its aggregates come back.
    let mut good = run("column-stats", "research.climate");
    good.extend([
        "--json".to_owned(),
        "--out".to_owned(),
        "stats.json".to_owned(),
    ]);
    let out = ok(r, &args(&good));
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "completed", "{job}");
    let result = job["result"].as_str().unwrap();
    let stats: serde_json::Value = serde_json::from_str(result).unwrap();
    assert_eq!(stats["rows"], 2000);
    assert_eq!(stats["max"], 29.9);
    assert_eq!(
        std::fs::read_to_string(r.join("stats.json")).unwrap(),
        result
    );
    assert_eq!(job["usage"]["bytes_read"], csv.len() as u64);
    assert!(job["usage"]["fuel"].as_u64().unwrap() > 0);
    assert_eq!(job["charge"]["currency"], "EUR");
    assert_eq!(job["charge"]["unit"], "Gfuel");
    assert!(
        job["charge"]["amount"].as_str().unwrap().starts_with("0.0"),
        "{job}"
    );

    // What left node0: no asset bytes, the result's bytes for the job.
    let metrics = String::from_utf8(mesh::http(&nodes[0].dir, "GET", "/metrics", b"").1).unwrap();
    assert_eq!(metric(&metrics, "gaiamesh_exchange_sent_bytes_total"), 0.0);
    assert_eq!(
        metric(&metrics, "gaiamesh_exchange_compute_result_bytes_total"),
        result.len() as f64
    );
    assert_eq!(
        metric(&metrics, "gaiamesh_exchange_compute_jobs_total"),
        1.0
    );

    // The usage record, signed by node0 and countersigned by node1, in both audit logs.
    let usage = |node: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value =
            serde_json::from_str(&ok(r, &["audit", "list", "--data-dir", node, "--json"])).unwrap();
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "usage")
            .cloned()
            .collect()
    };
    nodes[0].wait_for("the countersigned record", Duration::from_secs(10), |_| {
        usage("node0").len() == 2
    });
    let consumer = usage("node1");
    assert_eq!(consumer.len(), 1);
    let record = &consumer[0]["event"]["usage"]["record"];
    assert!(!record["consumer_signature"].is_null(), "{record}");
    assert_eq!(record["body"]["algorithm"], "column-stats@1.0.0");
    assert_eq!(record["body"]["outcome"], "completed");
    let provider_side = usage("node0");
    assert!(!provider_side[1]["event"]["usage"]["record"]["consumer_signature"].is_null());
    for node in ["node0", "node1"] {
        assert!(ok(r, &["audit", "verify", "--data-dir", node]).contains("intact"));
    }
}
