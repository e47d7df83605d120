//! A simulated node's core trace (`trace_node`) replays to the same decisions, over its
//! restarts, through the file the simulator writes — the same check
//! `tests/tests/differential.rs` makes on real daemons' traces.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gaiamesh_core::node::trace::{Decision, Entry, Input};
use gaiamesh_sim::trace;

#[test]
fn a_simulated_nodes_trace_replays_over_its_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    // Node 5 of 60 under heavy churn: it leaves and returns, and its peers do.
    std::fs::write(
        &file,
        "name = \"trace\"\nnodes = 60\nduration = \"20m\"\ntrace_node = 5\n\
         [workload]\nupdates_per_second = 1.0\n[kademlia]\nlookups_per_second = 0.0\n\
         [anti_entropy]\ninterval = \"20s\"\n\
         [churn]\nfraction = 1.0\nsession = { distribution = \"exponential\", mean = \"3m\" }\n\
         downtime_mean = \"1m\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    gaiamesh_sim::run_file(&file, None, &out, |_, _| {}).unwrap();
    let path = out.join("core-trace.jsonl");
    let t = trace::load(&path).unwrap();
    let done = trace::check(&t, "core-trace.jsonl").unwrap();
    assert!(done.starts >= 2, "node 5 restarted: {done:?}");
    let picks = t
        .iter()
        .filter(|e| {
            matches!(e, Entry::Step { input: Input::Timeout { .. }, decisions, .. }
                if decisions.iter().any(|d| matches!(d, Decision::Reconcile(_))))
        })
        .count();
    assert!(picks >= 10, "anti-entropy picks: {picks}");
    assert!(
        t.iter().any(|e| matches!(
            e,
            Entry::Step {
                input: Input::Disconnected(_),
                ..
            }
        )),
        "its peers went down"
    );
    // A trace whose random draws were changed does not replay: the picks depend on them.
    let mut changed = t.clone();
    for e in &mut changed {
        if let Entry::Step {
            input: Input::Timeout { entropy },
            ..
        } = e
        {
            *entropy = !*entropy;
        }
    }
    assert!(trace::check(&changed, "changed").is_err());
}

#[test]
fn no_trace_without_a_trace_node_and_a_bad_one_is_refused() {
    let text = "name = \"t\"\nnodes = 10\nduration = \"1m\"\ntrace_node = 10\n";
    let e =
        gaiamesh_sim::scenario::Scenario::parse(text, std::path::Path::new("t.toml")).unwrap_err();
    assert!(
        e.to_string()
            .contains("trace_node: must name a node below `nodes`"),
        "{e}"
    );
    let sc = gaiamesh_sim::scenario::Scenario::parse(
        "name = \"t\"\nnodes = 10\nduration = \"1m\"\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let m = sc.latency(std::path::Path::new(".")).unwrap();
    assert!(
        gaiamesh_sim::simulate(sc, 1, m, |_, _| {})
            .unwrap()
            .core_trace
            .is_empty()
    );
}
