//! Gossip heartbeats: when an id is advertised, and what a node does at a heartbeat it
//! would otherwise have no event for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use super::{Ev, Model, Version};
use crate::{engine::SimTime, net::LatencyMatrix, scenario::Scenario};

/// A federation of `nodes` that publishes nothing and looks nothing up: once its meshes
/// settle, no node has a reason to heartbeat.
fn quiet(nodes: u32) -> Model {
    let text = format!(
        "name = \"quiet\"\nnodes = {nodes}\nduration = \"60s\"\n\
         [workload]\nupdates_per_second = 0.0\n[kademlia]\nlookups_per_second = 0.0\n"
    );
    let sc = Scenario::parse(&text, Path::new("quiet.toml")).unwrap();
    Model::new(sc, 7, LatencyMatrix::default_eu()).unwrap()
}

/// Handles every event up to `t`; `each` sees each one before it is handled.
fn run_until(m: &mut Model, t: SimTime, mut each: impl FnMut(&Model, &Ev)) {
    while let Some((now, ev)) = m.q.pop_until(t) {
        each(m, &ev);
        m.handle(now, ev);
    }
}

#[test]
fn an_id_is_advertised_at_each_of_the_three_heartbeats_after_it_arrived() {
    let mut m = quiet(60);
    run_until(&mut m, SimTime::from_secs(10), |_, _| {});
    // Node 5 gets an update nobody else has: each heartbeat's IHAVE carries news.
    let x = 5u32;
    let now = m.q.now();
    let u = m.add_update(
        x,
        Version {
            seq: 99,
            hash: [9; 32],
        },
        true,
        now,
    );
    m.store(x, u, now);
    m.remember(x, u);
    let mut advertised = 0;
    let mut heartbeats = 0;
    while let Some((t, ev)) = m.q.pop_until(SimTime::from_secs(15)) {
        let hb_of_x = matches!(ev, Ev::Heartbeat(i) if i == x);
        m.handle(t, ev);
        if hb_of_x {
            heartbeats += 1;
            // after a heartbeat, `recent` holds what that heartbeat advertised
            if m.recent[x as usize].iter().any(|(v, _)| *v == u) {
                advertised += 1;
            }
        }
    }
    // gossipsub gossips a message id from its first `history_gossip` (3) cache windows,
    // and shifts the windows after each heartbeat: three heartbeats
    assert_eq!(advertised, 3, "over {heartbeats} heartbeats of node {x}");
}

#[test]
fn an_idle_node_repairs_its_mesh_at_its_next_heartbeat_after_a_mesh_peer_leaves() {
    let mut m = quiet(60);
    run_until(&mut m, SimTime::from_secs(10), |_, _| {});
    let gone = 0u32;
    let holders: Vec<u32> = (1..60)
        .filter(|&i| m.mesh[i as usize].contains(&gone))
        .collect();
    assert!(!holders.is_empty());
    // The meshes have settled: nobody heartbeats any more.
    let mut beats = 0;
    run_until(&mut m, SimTime::from_secs(12), |_, ev| {
        beats += usize::from(matches!(ev, Ev::Heartbeat(_)));
    });
    assert_eq!(beats, 0, "heartbeats in a quiet federation");
    let now = m.q.now();
    m.take_down(gone, now);
    // within one heartbeat interval (500 ms), each holder drops it and grafts another
    run_until(&mut m, SimTime::from_ms(12_600), |_, _| {});
    let d_lo = m.sc.gossip.d_lo as usize;
    for i in holders {
        let mesh = &m.mesh[i as usize];
        assert!(!mesh.contains(&gone), "node {i} still meshes with {gone}");
        assert!(mesh.len() >= d_lo, "node {i}: mesh of {}", mesh.len());
    }
}
