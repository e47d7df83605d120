//! A node ingesting at full rate still answers its API: node A holds N records (imported
//! offline), node B starts empty and fetches them all from A by reconciliation, while a probe
//! asks B for `GET /api/v1/status` every 10 ms. `status` is answered by B's event loop and
//! reads its catalogue, so it waits for whatever the event loop or the catalogue's lock is
//! busy with.
//!
//! The federation is open (no membership credential needed) and the records carry none, so
//! each costs one signature check: the steady state of a federation whose credentials a node
//! has seen (the ingest bench's "warm" workload).
//!
//! Prints one `ingest under load:` line (run with `--no-capture`): records, the ingest window
//! and rate seen by B, and the status latency p50/p99/max with the probe count. It asserts
//! only what must hold on any machine: every record arrives, every probe is answered. The
//! default N suits a debug build in CI; BENCHMARKS.md has the release figures:
//!
//! ```sh
//! cargo build --release -p gaiamesh-node --bin gaiamesh
//! GAIAMESH_BIN=$PWD/target/release/gaiamesh GAIAMESH_LOAD_RECORDS=20000 \
//!   cargo test --release -p gaiamesh-e2e --test ingest_load -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    time::{Duration, Instant},
};

use gaiamesh_e2e::{
    mesh::{Node, api_address, configure},
    ok,
};
use gaiamesh_protocol::{
    identity::Keypair,
    testing::{TestFederation, example_documents, generated_document},
    time::UnixMillis,
};

fn wall_clock() -> UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    UnixMillis(ms as u64)
}

/// `n` records of distinct members, without credentials, written as files under `dir`.
fn write_records(f: &TestFederation, dir: &Path, n: usize) -> Vec<String> {
    let examples = example_documents();
    let now = wall_clock();
    (0..n)
        .map(|i| {
            let mut seed = [9u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let k = Keypair::from_secret_bytes(&seed);
            let mut sd = f.sd(&k, 1);
            sd.document = generated_document(&examples, i);
            sd.membership = None;
            sd.attestations.clear();
            sd.issued_at = now;
            sd.expires_at = now.plus_ms(7 * 24 * 3600 * 1000);
            let path = dir.join(format!("r{i:06}.sd"));
            std::fs::write(&path, sd.sign(&k).unwrap().encode().unwrap()).unwrap();
            path.to_str().unwrap().to_owned()
        })
        .collect()
}

/// One `GET /api/v1/status`; the latency and the directory size it reports.
fn status(host: &str) -> Option<(Duration, u64)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET /api/v1/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let took = t.elapsed();
    if !buf.starts_with(b"HTTP/1.1 200") {
        return None;
    }
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let body: serde_json::Value = serde_json::from_slice(&buf[split + 4..]).ok()?;
    Some((took, body["directory_entries"].as_u64()?))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

#[test]
fn a_node_answers_status_while_it_ingests_at_full_rate() {
    let n: usize = std::env::var("GAIAMESH_LOAD_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let f = TestFederation::new(3, 2, false);
    std::fs::write(r.join("genesis.toml"), f.trust.genesis().to_toml().unwrap()).unwrap();
    for name in ["a", "b"] {
        ok(
            r,
            &["init", "--data-dir", name, "--genesis", "genesis.toml"],
        );
    }
    let records_dir = r.join("records");
    std::fs::create_dir(&records_dir).unwrap();
    let files = write_records(&f, &records_dir, n);
    for chunk in files.chunks(2000) {
        let mut args = vec!["directory", "import", "--data-dir", "a"];
        args.extend(chunk.iter().map(String::as_str));
        ok(r, &args);
    }

    configure(&r.join("a"), &[]);
    let a = Node::start(&r.join("a"));
    assert_eq!(a.status()["directory_entries"].as_u64(), Some(n as u64));
    configure(&r.join("b"), &[a.address()]);
    let b = Node::start(&r.join("b"));
    let (host, _) = api_address(&b.dir);

    // Probe until B holds every record (or a generous deadline passes).
    let deadline = Instant::now() + Duration::from_secs(60 + n as u64 / 50);
    let mut during = Vec::new();
    let mut failures = 0;
    let mut first_seen: Option<Instant> = None;
    let mut done_at: Option<Instant> = None;
    while Instant::now() < deadline && done_at.is_none() {
        let at = Instant::now();
        match status(&host) {
            Some((took, entries)) => {
                if entries > 0 && first_seen.is_none() {
                    first_seen = Some(at);
                }
                if first_seen.is_some() {
                    during.push(took);
                }
                if entries >= n as u64 {
                    done_at = Some(at + took);
                }
            }
            None => failures += 1,
        }
        std::thread::sleep(Duration::from_millis(10).saturating_sub(at.elapsed()));
    }
    let done_at = done_at.unwrap_or_else(|| {
        panic!(
            "B holds {:?} of {n} records after the deadline\n{}",
            status(&host).map(|s| s.1),
            b.log()
        )
    });
    let window = done_at - first_seen.unwrap();
    during.sort_unstable();
    println!(
        "ingest under load: {n} records in {:.2} s ({:.0} records/s); status p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} probes, {failures} failed",
        window.as_secs_f64(),
        n as f64 / window.as_secs_f64(),
        percentile(&during, 0.5).as_secs_f64() * 1e3,
        percentile(&during, 0.99).as_secs_f64() * 1e3,
        during.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        during.len(),
    );
    assert_eq!(failures, 0, "every status probe is answered");
}
