//! Repository swarming against the swarm lower bound, under adversaries and crashes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use gaiamesh_sim::{net::LatencyMatrix, scenario::Scenario, simulate, swarm::ReleaseResult};

fn release(extra: &str, nodes: u32) -> ReleaseResult {
    release_of(extra, nodes, 400.0, 64)
}

fn release_of(extra: &str, nodes: u32, up_mbps: f64, mib: u32) -> ReleaseResult {
    let text = format!(
        "name = \"swarm\"\nnodes = {nodes}\nduration = \"10m\"\n\
         [placement]\nregions = {{ eu-central = 1.0 }}\n\
         [network]\nup_mbps = {up_mbps}\ndown_mbps = 4000\n\
         [workload]\nupdates_per_second = 0.0\n[kademlia]\nlookups_per_second = 0.0\n\
         [repository]\nreleases = [{{ at = \"5s\", size_mib = {mib} }}]\n{extra}"
    );
    let sc = Scenario::parse(&text, Path::new("swarm.toml")).unwrap();
    let r = simulate(sc, 3, LatencyMatrix::default_eu(), |_, _| {}).unwrap();
    assert_eq!(r.releases.len(), 1);
    r.releases.into_iter().next().unwrap()
}

#[test]
fn a_release_reaches_every_node_near_the_swarm_lower_bound() {
    let r = release("", 64);
    assert_eq!(r.chunks, 64, "1 MiB segments, the node's");
    assert_eq!(r.completion_ms.len(), 63, "every downloader completes");
    let last = *r.completion_ms.last().unwrap();
    // 64 MiB at 50 MB/s: the lower bound is F/up ≈ 1.34 s.
    assert!((1300.0..1400.0).contains(&r.lower_bound_ms), "{r:?}");
    let ratio = last / r.lower_bound_ms;
    assert!(ratio >= 1.0, "faster than physically possible: {ratio}");
    eprintln!(
        "swarm: last completion {ratio:.3} × the lower bound; publisher uploaded {} MiB",
        r.publisher_uploaded >> 20
    );
    // The node's scheduler at 64 nodes with 24 connections each: 2.3× (BENCHMARKS.md).
    // Its 8-node figures are held against the daemon's in the next test.
    assert!(
        ratio <= 2.5,
        "swarm too slow: {ratio} × the lower bound: {r:?}"
    );
    // A client-server copy would take N − 1 times the single-copy time.
    assert!(
        last * 10.0 < r.client_server_ms,
        "{last} vs {}",
        r.client_server_ms
    );
    // The publisher uploads a small share: the peers serve each other.
    let share = r.publisher_uploaded as f64 / (r.bytes as f64 * 63.0);
    assert!(share < 0.2, "publisher uploaded {share} of all copies");
    assert_eq!(r.timeouts, 0);
}

/// The daemon's own measurement (BENCHMARKS.md, session 8: `cargo bench -p gaiamesh-node
/// --bench repo`, 8 nodes, 256 MiB, 10 MB/s upload cap): 1.00–1.03× the swarm lower bound.
/// The simulator runs the same scheduler, super-seeding and busy rule, so it must predict
/// the same within 10%.
#[test]
fn eight_nodes_match_the_daemons_measured_swarm() {
    let r = release_of("", 8, 80.0, 256);
    assert_eq!(r.completion_ms.len(), 7);
    let ratio = r.completion_ms.last().unwrap() / r.lower_bound_ms;
    eprintln!("8 nodes, 256 MiB at 10 MB/s: {ratio:.3} × the lower bound (daemon: 1.00–1.03)");
    assert!((1.0..=1.13).contains(&ratio), "{ratio}: {r:?}");
}

#[test]
fn withholders_cost_timeouts_but_everyone_completes() {
    let r = release("[adversaries]\nwithholders = 8\n", 64);
    assert_eq!(r.completion_ms.len(), 63);
    assert!(r.timeouts > 0, "requests to withholders must time out");
}

#[test]
fn crashed_nodes_resume_after_restart() {
    let clean = release("", 64);
    let crashed = release(
        "[[faults]]\nat = \"5.5s\"\ncrash = { fraction = 0.3, restart_after = \"20s\" }\n",
        64,
    );
    assert_eq!(crashed.completion_ms.len(), 63, "restarted nodes finish");
    // Some nodes finished only after their restart (≥ 20 s after the crash).
    assert!(*crashed.completion_ms.last().unwrap() > 20_000.0);
    assert!(*clean.completion_ms.last().unwrap() < 20_000.0);
}

fn provider_run(extra: &str) -> gaiamesh_sim::model::Results {
    let text = format!(
        "name = \"providers\"\nnodes = 2000\nduration = \"20m\"\n\
         [workload]\nupdates_per_second = 0.0\n\
         [kademlia]\nlookups_per_second = 0.0\nprovider_lookups_per_second = 5.0\n{extra}"
    );
    let sc = Scenario::parse(&text, Path::new("providers.toml")).unwrap();
    simulate(sc, 5, LatencyMatrix::default_eu(), |_, _| {}).unwrap()
}

#[test]
fn provider_lookups_find_records_and_churn_loses_them_between_republications() {
    let stable = provider_run("");
    assert!(
        stable.provider_lookups > 4000,
        "{}",
        stable.provider_lookups
    );
    assert_eq!(
        stable.provider_found, stable.provider_lookups,
        "no churn: always found"
    );
    let hops: u64 = stable
        .provider_hops
        .iter()
        .enumerate()
        .map(|(h, c)| h as u64 * c)
        .sum();
    let mean = hops as f64 / stable.provider_found as f64;
    assert!((1.0..6.0).contains(&mean), "mean hops {mean}");
    // With k = 20 holders per key, even heavy churn (half the nodes, mostly away) leaves a
    // holder up: 0.42^20 ≈ 3e-8.
    let churn = "[churn]\nfraction = 0.5\nsession = { distribution = \"exponential\", mean = \"2m\" }\n\
                 downtime_mean = \"10m\"\n";
    let k20 = provider_run(&format!("provider_republish = \"1h\"\n{churn}"));
    assert!(k20.provider_found as f64 / k20.provider_lookups as f64 > 0.999);
    // With k = 2 the holders of a key can all be gone until the records are re-published.
    // (At k = 3 this churn costs lookups about 8% through routing tables that know too few
    // live nodes whatever the re-publication does, which hides its effect: 0.914 vs 0.919
    // over seeds 1–6, one seed reversed. At k = 2: 0.65 vs 0.69, every seed ≥ 2 points.)
    let rare = provider_run(&format!("k = 2\nprovider_republish = \"1h\"\n{churn}"));
    let often = provider_run(&format!("k = 2\nprovider_republish = \"1m\"\n{churn}"));
    let frac =
        |r: &gaiamesh_sim::model::Results| r.provider_found as f64 / r.provider_lookups as f64;
    assert!(
        frac(&rare) < 0.99,
        "records should go missing with churn: {}",
        frac(&rare)
    );
    assert!(
        frac(&often) > frac(&rare),
        "re-publishing every minute keeps more records findable: {} vs {}",
        frac(&often),
        frac(&rare)
    );
}
