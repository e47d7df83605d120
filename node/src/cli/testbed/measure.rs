//! What the testbed measures: propagation of published updates to every node, and the time
//! until every node holds every update after a partition heals.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Result;
use gaiamesh_testbed::scenario::Publish;
use serde::Serialize;

use super::Bed;

/// One published update and when each node stored it.
#[derive(Debug, Serialize)]
pub(super) struct Update {
    pub(super) seq: u64,
    /// Per node: ms from the publisher storing it to this node storing it (`received_at_ms`
    /// on both; one clock). `None`: the publisher itself, a node that is down, or one that
    /// did not have it within the step's timeout.
    pub(super) delays_ms: Vec<Option<u64>>,
}

/// A publish step's result.
#[derive(Debug, Serialize)]
pub(super) struct PublishStep {
    pub(super) from: usize,
    pub(super) updates: Vec<Update>,
}

/// The `q` quantile of sorted values.
pub(super) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}

impl PublishStep {
    /// Every delay measured, sorted.
    pub(super) fn delays(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .updates
            .iter()
            .flat_map(|u| u.delays_ms.iter().flatten().copied())
            .collect();
        v.sort_unstable();
        v
    }

    /// Receipts expected (every other node, every update) and measured.
    pub(super) fn reached(&self) -> (usize, usize) {
        let expected = self
            .updates
            .iter()
            .map(|u| u.delays_ms.len().saturating_sub(1))
            .sum();
        (expected, self.delays().len())
    }

    /// For each update every other node received: when the last one had it (ms), sorted.
    pub(super) fn convergence(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .updates
            .iter()
            .filter_map(|u| {
                let others = u
                    .delays_ms
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != self.from);
                others.map(|(_, d)| *d).collect::<Option<Vec<u64>>>()
            })
            .filter_map(|d| d.into_iter().max())
            .collect();
        v.sort_unstable();
        v
    }

    /// Node `i`'s delays, sorted.
    pub(super) fn node_delays(&self, i: usize) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .updates
            .iter()
            .filter_map(|u| u.delays_ms.get(i).copied().flatten())
            .collect();
        v.sort_unstable();
        v
    }

    pub(super) fn line(&self) -> String {
        let d = self.delays();
        let (expected, got) = self.reached();
        format!(
            "{} updates from node{}: {got}/{expected} receipts, p50 {} ms, p99 {} ms, max {} ms",
            self.updates.len(),
            self.from,
            quantile(&d, 0.5).map_or("-".into(), |x| x.to_string()),
            quantile(&d, 0.99).map_or("-".into(), |x| x.to_string()),
            d.last().map_or("-".into(), |x| x.to_string()),
        )
    }
}

/// The stored seq and `received_at_ms` of `subject` at node `i`, if it has an entry.
fn entry(bed: &Bed, i: usize, subject: &str) -> Option<(u64, u64)> {
    let subject = subject.to_owned();
    let e = bed.on(i, move |api| api.entry(&subject)).ok()?;
    Some((e.seq, e.received_at_ms))
}

/// Runs a publish step; `newest` learns the publisher's new seq.
pub(super) fn publish(
    bed: &Bed,
    p: &Publish,
    newest: &mut BTreeMap<usize, (String, u64)>,
) -> Result<PublishStep> {
    let n = bed.members.len();
    let subject = bed.status(p.from)?.peer_id;
    let mut updates = Vec::with_capacity(p.updates as usize);
    for k in 0..p.warmup + p.updates {
        let started = Instant::now();
        let seq = super::republish(bed, p.from)?;
        newest.insert(p.from, (subject.clone(), seq));
        let origin = loop {
            match entry(bed, p.from, &subject) {
                Some((s, at)) if s == seq => break at,
                _ if started.elapsed() > p.timeout => {
                    anyhow::bail!("node{} did not store its own update {seq}", p.from)
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let mut delays_ms: Vec<Option<u64>> = vec![None; n];
        let mut pending: Vec<usize> = (0..n).filter(|&i| i != p.from && bed.up(i)).collect();
        while !pending.is_empty() && started.elapsed() < p.timeout {
            pending.retain(|&i| match entry(bed, i, &subject) {
                Some((s, at)) if s >= seq => {
                    delays_ms[i] = Some(at.saturating_sub(origin));
                    false
                }
                _ => true,
            });
            if !pending.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if k >= p.warmup {
            updates.push(Update { seq, delays_ms });
        }
        if let Some(rest) = p.every.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    Ok(PublishStep {
        from: p.from,
        updates,
    })
}

/// After a heal: how long until every running node held the newest update of every subject
/// published.
#[derive(Debug, Serialize)]
pub(super) struct Heal {
    /// Seconds after the heal; `None`: not within the wait.
    pub(super) converged_s: Option<f64>,
    /// Nodes still missing an update when the wait ended.
    pub(super) missing: Vec<usize>,
}

impl Heal {
    pub(super) fn line(&self) -> String {
        match self.converged_s {
            Some(s) => format!("every node holds every update {s:.1} s after the heal"),
            None => format!(
                "not converged; still missing updates: nodes {:?}",
                self.missing
            ),
        }
    }
}

/// Waits up to `timeout` for convergence after a heal.
pub(super) fn heal(
    bed: &Bed,
    newest: &BTreeMap<usize, (String, u64)>,
    timeout: Duration,
) -> Result<Heal> {
    let start = Instant::now();
    let n = bed.members.len();
    let mut missing: Vec<usize> = (0..n).filter(|&i| bed.up(i)).collect();
    loop {
        missing.retain(|&i| {
            newest
                .values()
                .any(|(subject, seq)| entry(bed, i, subject).is_none_or(|(s, _)| s < *seq))
        });
        if missing.is_empty() {
            return Ok(Heal {
                converged_s: Some(start.elapsed().as_secs_f64()),
                missing,
            });
        }
        if start.elapsed() > timeout {
            return Ok(Heal {
                converged_s: None,
                missing,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
