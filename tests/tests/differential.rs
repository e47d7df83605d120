//! The daemon and the simulator make the same decisions on the same input trace.
//!
//! Both drive one node core, `gaiamesh_core::node::NodeState`: the daemon instantiates it
//! with libp2p PeerIds, the simulator with `u32` indices. Here real daemons (three members
//! on loopback, one of them restarted) record every input their core got and what it
//! decided (`GAIAMESH_CORE_TRACE=1`), and each trace is replayed through the simulator's
//! instantiation (`gaiamesh sim replay`, `gaiamesh_sim::trace::check`): admission verdicts,
//! late drops, anti-entropy picks, presence, re-publication and restarts must all come out
//! the same. A decision that depends on anything the trace does not carry (the wall clock,
//! randomness the driver did not hand over, the peer type's order) fails the test; so does
//! a driver that made a decision the core did not (its effect would not be in the trace).
//! The simulator's own traces are replayed in `sim/tests/trace.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, time::Duration};

use gaiamesh_core::node::trace::{Decision, Entry, Input};
use gaiamesh_e2e::{
    mesh::{Node, configure, federation},
    ok,
};

const TRACE: [(&str, &str); 1] = [("GAIAMESH_CORE_TRACE", "1")];

fn decisions(t: &[Entry<u32>], f: impl Fn(&Decision<u32>) -> bool) -> usize {
    t.iter()
        .map(|e| match e {
            Entry::Step { decisions, .. } => decisions.iter().filter(|d| f(d)).count(),
            Entry::Start(_) => 0,
        })
        .sum()
}

fn starts(t: &[Entry<u32>]) -> usize {
    t.iter().filter(|e| matches!(e, Entry::Start(_))).count()
}

fn load(dir: &Path) -> Vec<Entry<u32>> {
    let path = dir.join("core-trace.jsonl");
    let t = gaiamesh_sim::trace::load(&path).unwrap();
    let done = gaiamesh_sim::trace::check(&t, &path.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}: {done:?}", dir.display());
    t
}

#[test]
fn daemon_core_traces_replay_to_the_same_decisions_in_the_simulators_core() {
    let root = tempfile::tempdir().unwrap();
    let dirs = federation(root.path(), 3);
    configure(&dirs[0], &[]);
    let first = Node::start_env(&dirs[0], &TRACE);
    let boot = vec![first.address()];
    let mut nodes = vec![first];
    for d in &dirs[1..] {
        configure(d, &boot);
        nodes.push(Node::start_env(d, &TRACE));
    }
    let admitted_all = |n: &Node| n.status()["admitted_peers"].as_u64() == Some(2);
    for n in &nodes {
        n.wait_for(
            "admission of both peers",
            Duration::from_secs(30),
            admitted_all,
        );
    }
    // Anti-entropy every 2 s (the test config): a few rounds of picks.
    std::thread::sleep(Duration::from_secs(5));
    // node2 restarts: a second core start in its trace; the others see it leave and
    // come back through admission.
    let n2 = nodes.pop().unwrap();
    n2.stop();
    let n2 = Node::start_env(&dirs[2], &TRACE);
    n2.wait_for("re-admission", Duration::from_secs(30), admitted_all);
    nodes.push(n2);
    std::thread::sleep(Duration::from_secs(3));
    for n in nodes {
        n.stop();
    }

    let traces: Vec<Vec<Entry<u32>>> = dirs.iter().map(|d| load(d)).collect();
    for (i, t) in traces.iter().enumerate() {
        // Not vacuous: each core admitted its peers and reconciled by its own timer.
        assert!(
            decisions(t, |d| matches!(d, Decision::Admit(_))) >= 2,
            "node{i}: {t:?}"
        );
        let timer_reconciles: usize = t
            .iter()
            .map(|e| match e {
                Entry::Step {
                    input: Input::Timeout { .. },
                    decisions,
                    ..
                } => decisions
                    .iter()
                    .filter(|d| matches!(d, Decision::Reconcile(_)))
                    .count(),
                _ => 0,
            })
            .sum();
        assert!(timer_reconciles >= 1, "node{i}: no anti-entropy pick");
        assert!(decisions(t, |d| matches!(d, Decision::Presence)) >= 1);
    }
    assert_eq!(starts(&traces[0]), 1);
    assert_eq!(starts(&traces[2]), 2, "node2's restart is in its trace");
    // node0 judged node2's credential again when its new core asked (the old connection
    // may still be open then, so node0 need not have seen it leave).
    // (Each peer is judged twice per meeting: on its request and on its answer.)
    let mut verdicts = std::collections::BTreeMap::<u32, usize>::new();
    for e in &traces[0] {
        if let Entry::Step {
            input:
                Input::Admission {
                    peer,
                    refused: None,
                    ..
                },
            ..
        } = e
        {
            *verdicts.entry(*peer).or_default() += 1;
        }
    }
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert!(
        verdicts.values().any(|&n| n >= 3),
        "node0 judged node2 again after its restart: {verdicts:?}"
    );

    // The same through the CLI, and a trace edited after the fact is caught.
    let path = dirs[2].join("core-trace.jsonl");
    let out = ok(root.path(), &["sim", "replay", path.to_str().unwrap()]);
    assert!(out.contains("2 core start(s)"), "{out}");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"presence\"]", "\"presence\",\"republish\"]", 1);
    assert_ne!(edited, text, "a presence decision to edit");
    std::fs::write(&path, edited).unwrap();
    let err = gaiamesh_e2e::fails(root.path(), &["sim", "replay", path.to_str().unwrap()]);
    assert!(err.contains("decides otherwise on replay"), "{err}");
}
