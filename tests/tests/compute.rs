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

/// Registers `file` on `node` as asset `id` under the policy `policy` (TOML), with `extra`
/// arguments of `asset add`.
fn offer(r: &std::path::Path, node: &str, file: &str, id: &str, policy: &str, extra: &[&str]) {
    let policy_file = format!("{node}-{id}.policy.toml");
    std::fs::write(r.join(&policy_file), policy).unwrap();
    let mut args = vec![
        "asset",
        "add",
        file,
        "--id",
        id,
        "--policy",
        &policy_file,
        "--data-dir",
        node,
    ];
    args.extend_from_slice(extra);
    ok(r, &args);
}

/// The arguments that release `wasm` as `NAME@1.0.0` (optional, for `platform`) through
/// node0, signed by the federation's repository keys.
fn release_args(wasm: &std::path::Path, name: &str, platform: &str) -> Vec<String> {
    [
        "repo",
        "publish",
        wasm.to_str().unwrap(),
        "--name",
        name,
        "--version",
        "1.0.0",
        "--category",
        "optional",
        "--platform",
        platform,
        "--key",
        "fed/keys/repository-root-0.key",
        "--key",
        "fed/keys/repository-root-1.key",
        "--data-dir",
        "node0",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// Releases `wasm` as `NAME@1.0.0` for `platform`.
fn release(r: &std::path::Path, wasm: &std::path::Path, name: &str, platform: &str) {
    ok(r, &args(&release_args(wasm, name, platform)));
}

/// Starts a compute job on `consumer` through its API; the job id.
fn start_job(consumer: &mesh::Node, provider: &str, asset: &str, algorithm: &str) -> u64 {
    let body = format!(
        r#"{{"provider":"{provider}","asset":"{asset}","algorithm":"{algorithm}","purpose":"research"}}"#
    );
    let (code, started) = mesh::http(&consumer.dir, "POST", "/api/v1/compute", body.as_bytes());
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&started));
    serde_json::from_slice::<serde_json::Value>(&started).unwrap()["job"]
        .as_u64()
        .unwrap()
}

/// Job `job`'s view on `consumer`.
fn job_view(consumer: &mesh::Node, job: u64) -> serde_json::Value {
    let (_, v) = mesh::http(&consumer.dir, "GET", &format!("/api/v1/compute/{job}"), b"");
    serde_json::from_slice(&v).unwrap()
}

/// The `usage` entries of `node`'s audit log.
fn usage_records(r: &std::path::Path, node: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(r, &["audit", "list", "--data-dir", node, "--json"])).unwrap();
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "usage")
        .cloned()
        .collect()
}

/// The outcomes of the usage records in `node`'s audit log.
fn usage_outcomes(r: &std::path::Path, node: &str) -> Vec<String> {
    usage_records(r, node)
        .iter()
        .map(|e| {
            e["event"]["usage"]["record"]["body"]["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn only_the_result_of_a_permitted_released_algorithm_leaves_the_provider() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // node0 and node2 both offer "weather"; node2's policy refuses research.
    let nodes = mesh::start(r, 3);
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
    offer(
        r,
        "node0",
        "weather.csv",
        "weather",
        "purposes = [\"research\"]\n[compute]\nalgorithms = [\"column-stats\"]\nmax_output_bytes = 4096\n",
        &["--price", "0.05 EUR/Gfuel"],
    );
    let wasm = example("algorithms/column-stats.wasm");
    for name in ["column-stats", "other-stats"] {
        release(r, &wasm, name, "wasm32-wasip2");
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

    // node2 offers the same asset under a policy that refuses research.
    offer(
        r,
        "node2",
        "weather.csv",
        "weather",
        "purposes = [\"marketing\"]\n[compute]\n",
        &[],
    );
    nodes[1].wait_for(
        "both offers in the directory",
        Duration::from_secs(30),
        |_| {
            let q = ok(
                r,
                &[
                    "query",
                    "service.id = weather",
                    "--data-dir",
                    "node1",
                    "--json",
                ],
            );
            serde_json::from_str::<serde_json::Value>(&q).unwrap()["total"] == 2
        },
    );
    // The permitted one, found by a query: node2 refuses (if tried first), node0 runs it, and
    // only its aggregates come back.
    let good: Vec<String> = [
        "compute",
        "run",
        "--data-dir",
        "node1",
        "--query",
        "service.id = weather",
        "--algorithm",
        "column-stats",
        "--purpose",
        "research.climate",
        "--arg",
        "temperature",
        "--timeout",
        "60s",
        "--json",
        "--out",
        "stats.json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = ok(r, &args(&good));
    let job: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(job["state"], "completed", "{job}");
    assert_eq!(job["provider"], provider.as_str(), "{job}");
    for attempt in job["attempts"].as_array().unwrap() {
        assert!(
            attempt["error"].as_str().unwrap().contains("research"),
            "{attempt}"
        );
    }
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
    let usage = |node: &str| usage_records(r, node);
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

#[test]
fn a_runaway_algorithm_is_stopped_with_its_reason_and_a_cancel_reaches_the_provider() {
    let Some(guests) = gaiamesh_e2e::wasm::guests() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // node0 gives each job 2 s of wall clock.
    let dirs = mesh::federation(r, 2);
    mesh::configure_with(&dirs[0], &[], "", "[compute]\nwall = \"2s\"");
    let n0 = mesh::Node::start(&dirs[0]);
    mesh::configure_with(&dirs[1], &[n0.address()], "", "");
    let n1 = mesh::Node::start(&dirs[1]);
    for n in [&n0, &n1] {
        n.wait_for("admission", Duration::from_secs(30), |x| {
            x.status()["admitted_peers"].as_u64().unwrap_or(0) >= 1
        });
    }
    let provider = n0.status()["peer_id"].as_str().unwrap().to_owned();
    std::fs::write(r.join("data.csv"), "a,b\n1,2\n").unwrap();
    // Any released algorithm may run.
    offer(r, "node0", "data.csv", "data", "[compute]\n", &[]);
    // An algorithm must declare what it reads, writes and needs: spin as built does not.
    let spin = guests.join("spin.wasm");
    let err = fails(r, &args(&release_args(&spin, "spin", "wasm32-wasip2")));
    assert!(err.contains("declares no manifest"), "{err}");
    std::fs::write(
        r.join("spin.toml"),
        "description = \"loops forever\"\n[resources]\nwall = \"1s\"\n",
    )
    .unwrap();
    std::fs::write(r.join("greedy.toml"), "[resources]\nmemory_mib = 4096\n").unwrap();
    for name in ["spin", "greedy"] {
        let manifest = format!("{name}.toml");
        let out = format!("{name}.wasm");
        let embedded = [
            "compute",
            "embed",
            spin.to_str().unwrap(),
            "--manifest",
            &manifest,
            "--out",
            &out,
        ];
        ok(r, &embedded);
        release(r, &r.join(&out), name, "wasm32-wasip2");
    }
    let inspected: serde_json::Value =
        serde_json::from_str(&ok(r, &["compute", "inspect", "spin.wasm", "--json"])).unwrap();
    assert_eq!(inspected["manifest"]["resources"]["wall"], "1s");
    assert_eq!(inspected["manifest"]["description"], "loops forever");
    // The same bytes released as a native component are not an algorithm.
    release(r, &guests.join("spin.wasm"), "native-tool", "linux-x86_64");
    n1.wait_for("the release", Duration::from_secs(30), |_| {
        ok(r, &["repo", "list", "--data-dir", "node1", "--json"]).contains("native-tool@1.0.0")
    });
    let refused = |algorithm: &str| {
        fails(
            r,
            &[
                "compute",
                "run",
                "--data-dir",
                "node1",
                "--provider",
                &provider,
                "--asset",
                "data",
                "--algorithm",
                algorithm,
                "--purpose",
                "research",
                "--timeout",
                "60s",
            ],
        )
    };
    let err = refused("spin");
    assert!(
        err.contains("wall-clock limit: still running after 2000 ms"),
        "{err}"
    );
    // One that needs more memory than node0 gives a job is refused before it starts.
    let err = refused("greedy");
    assert!(err.contains("4096 MiB of memory, 256 MiB allowed"), "{err}");
    let err = refused("native-tool");
    assert!(err.contains("released for linux-x86_64"), "{err}");
    // The provider is healthy and answers at once.
    assert_eq!(mesh::http(&n0.dir, "GET", "/api/v1/health", b"").0, 200);

    // A job cancelled by the consumer is stopped by the provider, well before its 2 s.
    let job = start_job(&n1, &provider, "data", "spin");
    n1.wait_for("the job to run", Duration::from_secs(30), |n| {
        job_view(n, job)["state"] == "running"
    });
    std::thread::sleep(Duration::from_millis(300));
    let out = ok(
        r,
        &[
            "compute",
            "cancel",
            &job.to_string(),
            "--data-dir",
            "node1",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["state"], "failed");
    assert_eq!(v["error"], "cancelled by this node");
    let err = fails(
        r,
        &["compute", "cancel", &job.to_string(), "--data-dir", "node1"],
    );
    assert!(err.contains("already failed"), "{err}");
    n0.wait_for(
        "the provider's record of the cancelled run",
        Duration::from_secs(10),
        |_| usage_outcomes(r, "node0").iter().any(|o| o == "cancelled"),
    );
    assert_eq!(mesh::http(&n0.dir, "GET", "/api/v1/health", b"").0, 200);

    // Results of an asset under review wait for node0's operator: a rejected one never
    // leaves (the consumer gets the signed record with the reason), an approved one does.
    offer(
        r,
        "node0",
        "data.csv",
        "reviewed",
        "[compute]\nreview = true\n",
        &[],
    );
    // (an algorithm that copies its input out: exactly what a reviewer is there to stop)
    std::fs::write(r.join("echo.toml"), "description = \"copies its input\"\n").unwrap();
    let echo = guests.join("echo.wasm");
    let embedded = [
        "compute",
        "embed",
        echo.to_str().unwrap(),
        "--manifest",
        "echo.toml",
        "--out",
        "echo.wasm",
    ];
    ok(r, &embedded);
    release(r, &r.join("echo.wasm"), "echo", "wasm32-wasip2");
    n1.wait_for("the release", Duration::from_secs(30), |_| {
        ok(r, &["repo", "list", "--data-dir", "node1", "--json"]).contains("echo@1.0.0")
    });
    let held = |decision: &[&str]| -> serde_json::Value {
        let job = start_job(&n1, &provider, "reviewed", "echo");
        let mut waiting = serde_json::Value::Null;
        n0.wait_for("a result held for review", Duration::from_secs(30), |_| {
            let v: serde_json::Value = serde_json::from_str(&ok(
                r,
                &["compute", "reviews", "--data-dir", "node0", "--json"],
            ))
            .unwrap();
            waiting = v[0].clone();
            !waiting.is_null()
        });
        assert_eq!(waiting["asset"], "reviewed");
        assert_eq!(waiting["algorithm"], "echo@1.0.0");
        assert_eq!(waiting["result"], "a,b\n1,2\n", "{waiting}");
        // held: the consumer has nothing yet
        let v = job_view(&n1, job);
        assert_eq!(v["state"], "running", "{v}");
        let id = waiting["id"].as_u64().unwrap().to_string();
        let mut args = vec!["compute", "review", &id, "--data-dir", "node0"];
        args.extend_from_slice(decision);
        ok(r, &args);
        let mut done = serde_json::Value::Null;
        n1.wait_for(
            "the decision to reach the consumer",
            Duration::from_secs(30),
            |n| {
                done = job_view(n, job);
                done["state"] == "completed" || done["state"] == "failed"
            },
        );
        done
    };
    let rejected = held(&["--reject", "names a station"]);
    assert_eq!(rejected["state"], "failed", "{rejected}");
    assert!(rejected["result"].is_null(), "{rejected}");
    assert_eq!(
        rejected["outcome"],
        "withheld by the provider's review: names a station"
    );
    let approved = held(&["--approve"]);
    assert_eq!(approved["state"], "completed", "{approved}");
    assert_eq!(approved["result"], "a,b\n1,2\n", "{approved}");
    // Nothing waits any more; a decision on a result that no longer waits is refused.
    let err = fails(
        r,
        &["compute", "review", "1", "--approve", "--data-dir", "node0"],
    );
    assert!(err.contains("no result 1 waits for review"), "{err}");

    // node0 killed mid-job: node1's job fails naming the closed connection; node0, started
    // again, records the job as interrupted (signed, in its audit log) and does not rerun it.
    let job = start_job(&n1, &provider, "data", "spin");
    let journal = dirs[0].join("compute/running");
    n0.wait_for(
        "the job in node0's journal",
        Duration::from_secs(30),
        |_| std::fs::read_dir(&journal).is_ok_and(|d| d.count() == 1),
    );
    n0.kill();
    let mut failed = serde_json::Value::Null;
    n1.wait_for("the job to fail", Duration::from_secs(30), |n| {
        failed = job_view(n, job);
        failed["state"] == "failed"
    });
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("connection closed before the job's answer"),
        "{error}"
    );
    let n0 = mesh::Node::start(&dirs[0]);
    n0.wait_for(
        "the interrupted job's record",
        Duration::from_secs(30),
        |_| {
            usage_outcomes(r, "node0")
                .iter()
                .any(|o| o.starts_with("interrupted:") && o.contains("not run again"))
        },
    );
    assert_eq!(std::fs::read_dir(&journal).unwrap().count(), 0);
    assert!(ok(r, &["audit", "verify", "--data-dir", "node0"]).contains("intact"));
}
