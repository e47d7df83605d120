//! The simulator drives every node's core by its deadlines; a federation with anti-entropy
//! runs through its whole duration. Regression: deadlines with a nanosecond part (the random
//! phase of the first anti-entropy round) were rounded *down* to the simulator's microsecond
//! clock, fired early, and the node asked for the same instant again for ever — the run never
//! ended (it took the calibration test past CI's limit).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn a_federation_with_anti_entropy_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"timers\"\nnodes = 16\nduration = \"2m\"\n\
         [workload]\nupdates_per_second = 0.5\n[kademlia]\nlookups_per_second = 0.0\n\
         [anti_entropy]\ninterval = \"10s\"\n",
    )
    .unwrap();
    let sc = gaiamesh_sim::scenario::Scenario::load(&file).unwrap();
    let matrix = sc.latency(dir.path()).unwrap();
    let r = gaiamesh_sim::simulate(sc, 3, matrix, |_, _| {}).unwrap();
    // 16 nodes, one round each per 10 s over 2 min: about 190 rounds.
    assert!(
        (120..=260).contains(&r.anti_entropy),
        "anti-entropy rounds: {}",
        r.anti_entropy
    );
    // A spinning timer shows as millions of events; the whole run needs tens of thousands.
    assert!(r.events < 2_000_000, "{} events", r.events);
}
