//! Calibration of the simulator against a real devnet (DESIGN §10): the same 32-node
//! federation on loopback, once as 32 real node processes and once simulated, must agree on
//! the median propagation of a self-description update.
//!
//! The simulator is not fitted to the propagation it is compared with. Its inputs are
//! measured independently in the same devnet run: the per-hop cost of decoding, verifying,
//! merging and committing one gossiped record (`gaiamesh_sd_ingest_seconds`, for that
//! update only, median over the nodes), how long node0's publication took before it sent
//! the update (`POST /api/v1/sd`: sign, store, commit, gossip), and the mean number of
//! connections per node; loopback latency is 0.1 ms
//! round trip; the gossip parameters are the node's (D = 6, D_lo = 4, D_hi = 12, 500 ms
//! heartbeat, flood publishing). Tolerance: the simulated median lies within ±50% of the real one, or within
//! 3 ms (received_at_ms has 1 ms resolution and the real nodes share 2 cores).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_e2e::ok;
use gaiamesh_sim::{scenario::Scenario, simulate};

#[test]
fn simulator_agrees_with_a_real_devnet_on_median_propagation() {
    let root = tempfile::tempdir().unwrap();
    let out = ok(
        root.path(),
        &[
            "devnet",
            "--nodes",
            "32",
            "--dir",
            "net",
            "--once",
            "--json",
            "--timeout",
            "300s",
        ],
    );
    let real: serde_json::Value = serde_json::from_str(&out).unwrap();
    let real_p50 = real["propagation_ms"]["p50"].as_f64().expect("propagation");
    let ingest_ms = real["ingest_p50_ms"].as_f64().expect("ingest time");
    let peers = real["mean_connected_peers"].as_f64().unwrap();
    let publish_ms = real["publish_ms"].as_f64().expect("publish time");
    assert!(ingest_ms > 0.0, "{real}");

    let csv = root.path().join("loopback.csv");
    std::fs::write(&csv, "region,loopback\nloopback,0.1\n").unwrap();
    let text = format!(
        "name = \"calibration\"\nnodes = 32\nduration = \"2m\"\n\
         [placement]\nlatency_csv = \"loopback.csv\"\nregions = {{ loopback = 1.0 }}\n\
         [network]\njitter = 0.5\nup_mbps = 10000\ndown_mbps = 10000\nvalidate_ms = {ingest_ms}\npublish_ms = {publish_ms}\n\
         [gossip]\npeers = {}\nheartbeat = \"500ms\"\nd_lo = 4\nflood_publish = true\n\
         [workload]\nupdates_per_second = 0.5\nsd_bytes = 4096\n\
         [kademlia]\nlookups_per_second = 0.0\n",
        (peers.round() as u32).clamp(6, 31)
    );
    let sc = Scenario::parse(&text, &root.path().join("calibration.toml")).unwrap();
    let matrix = sc.latency(root.path()).unwrap();
    let sim = simulate(sc, 1, matrix, |_, _| {}).unwrap();
    let sim_p50 = sim.propagation_ms.quantile(0.5);
    eprintln!(
        "calibration: real p50 {real_p50} ms, simulated p50 {sim_p50:.2} ms \
         (ingest {ingest_ms:.2} ms per hop, publish {publish_ms:.2} ms, {peers:.1} peers per node)"
    );
    let tolerance = (0.5 * real_p50).max(3.0);
    assert!(
        (sim_p50 - real_p50).abs() <= tolerance,
        "simulated median propagation {sim_p50:.2} ms vs real {real_p50} ms \
         (tolerance {tolerance:.1} ms; ingest {ingest_ms:.2} ms per hop, {peers:.1} peers)"
    );
}
