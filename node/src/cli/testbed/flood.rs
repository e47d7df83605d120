//! A flooding member in the testbed: one node floods the directory topic with invalid
//! messages (`POST /api/v1/debug/flood`, fault injection) while node0 publishes and another
//! node's API health is probed; afterwards, who still admits the flooder.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use gaiamesh_testbed::scenario::{Flood, Publish};
use serde::Serialize;

use super::{Bed, measure, measure::quantile};
use crate::{api_client::NodeApi, daemon::FloodBody, datadir::DataDir};

/// A flood step's figures.
#[derive(Debug, Serialize)]
pub(super) struct FloodFigures {
    from: usize,
    per_second: u32,
    seconds: u64,
    /// Invalid messages the flooder handed to gossipsub, and those it refused (no peer).
    sent: u64,
    refused: u64,
    /// Nodes that still admitted the flooder at the end (of the others).
    still_admitted_by: Vec<usize>,
    /// node0's updates meanwhile at the other honest nodes: receipts of expected, p50 /
    /// p99 ms.
    receipts: usize,
    expected: usize,
    p50_ms: Option<u64>,
    p99_ms: Option<u64>,
    /// The probed node's `GET /api/v1/health`, every 100 ms: for 5 s before the flood
    /// (calm), then during it: p50 / p99 ms, and failures.
    probe: usize,
    api_calm_p50_ms: Option<u64>,
    api_calm_p99_ms: Option<u64>,
    api_p50_ms: Option<u64>,
    api_p99_ms: Option<u64>,
    api_failures: usize,
}

impl FloodFigures {
    pub(super) fn line(&self) -> String {
        let ms = |x: Option<u64>| x.map_or("-".into(), |x| format!("{x} ms"));
        format!(
            "node{} sent {} invalid messages ({} refused); still admitted by {:?}; node0's \
             updates meanwhile {}/{} receipts, p50 {}, p99 {}; node{}'s API p50 {}, p99 {} (calm: {}, {}), {} failed",
            self.from,
            self.sent,
            self.refused,
            self.still_admitted_by,
            self.receipts,
            self.expected,
            ms(self.p50_ms),
            ms(self.p99_ms),
            self.probe,
            ms(self.api_p50_ms),
            ms(self.api_p99_ms),
            ms(self.api_calm_p50_ms),
            ms(self.api_calm_p99_ms),
            self.api_failures
        )
    }
}

/// Probes node `i`'s API health every 100 ms for `for_`: latencies (ms) and failures.
fn probe(bed: &Bed, i: usize, for_: Duration) -> Result<(Vec<u64>, usize)> {
    let dir = DataDir::new(&bed.members[i].dir);
    let until = Instant::now() + for_;
    Ok(bed.members[i]
        .ns
        .enter(move || health_probe(&dir, || Instant::now() >= until))?)
}

/// `GET /api/v1/health` every 100 ms until `done()`: latencies (ms) and failures.
fn health_probe(dir: &DataDir, done: impl Fn() -> bool) -> (Vec<u64>, usize) {
    let (mut took, mut failed) = (Vec::new(), 0);
    while !done() {
        let t = Instant::now();
        match NodeApi::of(dir).and_then(|api| api.health()) {
            Ok(_) => took.push(u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)),
            Err(_) => failed += 1,
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(t.elapsed()));
    }
    (took, failed)
}

/// Runs a flood step.
pub(super) fn run(
    bed: &Bed,
    f: &Flood,
    peers: &[String],
    newest: &mut BTreeMap<usize, (String, u64)>,
) -> Result<FloodFigures> {
    let seconds = f.duration.as_secs();
    // The probe: its own thread, inside the probed node's namespace; 5 s calm first.
    let calm = probe(bed, f.probe, Duration::from_secs(5));
    let body = FloodBody {
        per_second: f.per_second,
        seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
    };
    bed.on(f.from, move |api| api.flood(&body))?;
    // The probe: its own thread, inside the probed node's namespace.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (stop, ns) = (stop.clone(), bed.members[f.probe].ns.clone());
        let dir = DataDir::new(&bed.members[f.probe].dir);
        std::thread::spawn(move || {
            ns.enter(move || health_probe(&dir, || stop.load(Ordering::Relaxed)))
        })
    };
    let publish = Publish {
        updates: u32::try_from((seconds / 2).max(1)).unwrap_or(u32::MAX),
        every: Duration::from_secs(2),
        from: 0,
        warmup: 0,
        timeout: Duration::from_secs(10),
    };
    let during = measure::publish(bed, &publish, newest);
    stop.store(true, Ordering::Relaxed);
    let (mut took, api_failures) = prober
        .join()
        .map_err(|_| anyhow::anyhow!("the API probe panicked"))??;
    let during = during?;
    // Let the flood run out, then read what it did and who still admits the flooder.
    let end = Instant::now() + Duration::from_secs(seconds + 10);
    let flood = loop {
        let s = bed.status(f.from)?;
        if !s.flood.as_ref().is_some_and(|f| f.running) || Instant::now() > end {
            break s.flood;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let still_admitted_by = (0..bed.members.len())
        .filter(|&i| i != f.from && bed.up(i))
        .filter(|&i| {
            bed.on(i, |api| api.peers())
                .ok()
                .is_some_and(|p| p.iter().any(|e| e.peer_id == peers[f.from] && e.admitted))
        })
        .collect();
    took.sort_unstable();
    let (mut calm, _) = calm?;
    calm.sort_unstable();
    // The honest receivers only: the flooder, disconnected, is meant to miss them.
    let honest: Vec<usize> = (1..bed.members.len()).filter(|&i| i != f.from).collect();
    let mut delays: Vec<u64> = honest.iter().flat_map(|&i| during.node_delays(i)).collect();
    delays.sort_unstable();
    let receipts = delays.len();
    let expected = honest.len() * during.updates.len();
    Ok(FloodFigures {
        from: f.from,
        per_second: f.per_second,
        seconds,
        sent: flood.as_ref().map_or(0, |f| f.sent),
        refused: flood.as_ref().map_or(0, |f| f.refused),
        still_admitted_by,
        receipts,
        expected,
        p50_ms: quantile(&delays, 0.5),
        p99_ms: quantile(&delays, 0.99),
        probe: f.probe,
        api_calm_p50_ms: quantile(&calm, 0.5),
        api_calm_p99_ms: quantile(&calm, 0.99),
        api_p50_ms: quantile(&took, 0.5),
        api_p99_ms: quantile(&took, 0.99),
        api_failures,
    })
}
