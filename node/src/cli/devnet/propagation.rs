//! The propagation step of `gaiamesh devnet`: node0 re-publishes its self-description and
//! every other node's `received_at_ms` for the new version is compared with node0's.
//!
//! Besides the delays, the step measures what the simulator needs to replay the same
//! federation (DESIGN §10, `tests/tests/calibration.rs`), each independently of the delays:
//! how long node0 took from issuing the version to handing it to gossip, the per-hop cost of
//! decoding, verifying, merging and committing one gossiped record, and the CPU time all
//! nodes together spent on the update, per receiver (the nodes share this machine's cores).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::{api_client::NodeApi, datadir::DataDir};

/// How long the CPU is sampled from each publication on.
const CPU_WINDOW: Duration = Duration::from_secs(1);
/// Publications measured; the delays of all are pooled, the CPU figures are medians.
const UPDATES: usize = 10;
/// Idle slices of 250 ms for the background CPU rate.
const BACKGROUND_SLICES: usize = 12;

/// What the propagation step measured.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Propagation {
    /// Median delay over the receivers (of all the updates), ms.
    pub(super) p50: u64,
    /// 99th percentile, ms.
    pub(super) p99: u64,
    /// The slowest receiver, ms.
    pub(super) max: u64,
    /// Every receiver's delay, sorted, ms.
    pub(super) delays_ms: Vec<u64>,
    /// Per update, when the last receiver had it (the federation's convergence time for
    /// it), in publication order, ms.
    pub(super) convergence_ms: Vec<u64>,
    /// The median of `convergence_ms`.
    pub(super) convergence_p50: u64,
    /// node0: from issuing the version to handing it to gossip, ms.
    pub(super) gossip_after_ms: f64,
    /// Median over the receivers of the time their gossip handler spent on the update
    /// (decode, verify, merge, commit), ms.
    pub(super) ingest_p50_ms: Option<f64>,
    /// CPU time all node processes spent because of the update (the same window idle
    /// subtracted), divided by the number of receivers, ms. `None` where the kernel does not
    /// expose per-thread CPU time (`/proc/PID/task/*/schedstat`).
    pub(super) cpu_ms_per_receiver: Option<f64>,
    /// Median over the receivers of their own CPU time from the publication until the
    /// update reached their merge step (`gaiamesh_sd_stored_cpu_seconds`), idle share
    /// subtracted, ms.
    pub(super) cpu_ms_before_merge: Option<f64>,
    /// `cpu_ms_per_receiver` minus `cpu_ms_before_merge`: verification, commit,
    /// forwarding, duplicates, the DHT put, ms.
    pub(super) cpu_ms_after_merge: Option<f64>,
    /// Gossip copies of the update received, per receiver.
    pub(super) copies_per_receiver: f64,
    /// CPU the idle nodes used together (heartbeats, presence), in cores; subtracted above.
    pub(super) background_cores: Option<f64>,
    /// Mean number of connections per node.
    pub(super) mean_connected_peers: f64,
}

/// Runs the step over `nodes` (data dir, process id); node0 publishes [`UPDATES`] times.
pub(super) fn measure(nodes: &[(PathBuf, u32)], timeout: Duration) -> Result<Option<Propagation>> {
    if nodes.len() < 2 {
        return Ok(None);
    }
    let dirs: Vec<NodeApi> = nodes
        .iter()
        .map(|(d, _)| NodeApi::of(&DataDir::new(d)))
        .collect::<Result<_, _>>()?;
    let pids: Vec<u32> = nodes.iter().map(|(_, p)| *p).collect();
    let node0 = &dirs[0];
    let subject = node0.status()?.peer_id;
    let mean_connected_peers = mean_peers(&dirs);
    let receivers = (nodes.len() - 1) as f64;
    // What the idle nodes burn (heartbeats, presence): the median of short slices, so a
    // periodic burst (reconciliation, DHT republication) does not count as the rate.
    let background = background_ns_per_s(&pids);

    let mut delays_ms = Vec::with_capacity(UPDATES * (dirs.len() - 1));
    let mut convergence_ms = Vec::with_capacity(UPDATES);
    let (mut gossip_after, mut ingest, mut per_receiver, mut copies_sum) =
        (Vec::new(), Vec::new(), Vec::new(), 0.0);
    let (mut before_merge, mut after_merge) = (Vec::new(), Vec::new());
    for _ in 0..UPDATES {
        // Nothing polls the nodes during the window.
        let before = counters(&dirs)?;
        let per_process: Vec<Option<u64>> = pids
            .iter()
            .map(|p| crate::cpu::process_cpu_ns(Some(*p)))
            .collect();
        let t = Instant::now();
        let cpu_before = per_process.iter().copied().sum::<Option<u64>>();
        let published = node0.publish(None)?;
        std::thread::sleep(CPU_WINDOW.saturating_sub(t.elapsed()));
        let cpu_after = crate::cpu::processes_cpu_ns(&pids);
        let window = t.elapsed().as_secs_f64();
        let after = counters(&dirs)?;
        let copies: f64 = before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.sd_copies - b.sd_copies)
            .sum();
        copies_sum += copies;
        let caused_ms = match (cpu_before, cpu_after, background) {
            (Some(a), Some(b), Some(bg)) => {
                Some((b.saturating_sub(a) as f64 - bg * window).max(0.0) / 1e6)
            }
            _ => None,
        };
        gossip_after.push(published.gossip_after_ms);
        ingest.extend(ingest_median_ms(&before, &after));
        let seq = published.seq;
        let these = delays(&dirs, nodes, &subject, seq, timeout)?;
        // Each receiver's own CPU from the publication to its merge step, its share of the
        // idle rate over that time subtracted.
        let bg_each = background.unwrap_or(0.0) / pids.len() as f64;
        let mut pre: Vec<f64> = per_process[1..]
            .iter()
            .zip(&after[1..])
            .zip(&these)
            .filter_map(|((b, a), d)| {
                let b = (*b)? as f64;
                let at = a.stored_cpu_s? * 1e9;
                Some(((at - b) - bg_each * *d as f64 / 1e3).max(0.0) / 1e6)
            })
            .collect();
        if let (Some(total), Some(pre_ms)) = (caused_ms, median(std::mem::take(&mut pre))) {
            let each = total / receivers;
            per_receiver.push(each);
            before_merge.push(pre_ms);
            after_merge.push((each - pre_ms).max(0.0));
        }
        convergence_ms.push(these.iter().copied().max().unwrap_or(0));
        delays_ms.extend(these);
    }
    delays_ms.sort_unstable();
    let mut sorted = convergence_ms.clone();
    sorted.sort_unstable();
    let pick = |p: f64| delays_ms[((delays_ms.len() - 1) as f64 * p).round() as usize];
    Ok(Some(Propagation {
        p50: pick(0.5),
        p99: pick(0.99),
        max: delays_ms[delays_ms.len() - 1],
        convergence_p50: sorted[sorted.len() / 2],
        convergence_ms,
        gossip_after_ms: median(gossip_after).unwrap_or(0.0),
        ingest_p50_ms: median(ingest),
        cpu_ms_per_receiver: median(per_receiver),
        cpu_ms_before_merge: median(before_merge),
        cpu_ms_after_merge: median(after_merge),
        copies_per_receiver: copies_sum / UPDATES as f64 / receivers,
        background_cores: background.map(|ns| ns / 1e9),
        mean_connected_peers,
        delays_ms,
    }))
}

/// Every receiver's delay for node0's version `seq`, ms after node0 stored it.
fn delays(
    dirs: &[NodeApi],
    nodes: &[(PathBuf, u32)],
    subject: &str,
    seq: u64,
    timeout: Duration,
) -> Result<Vec<u64>> {
    let origin = dirs[0].entry(subject)?.received_at_ms;
    let start = Instant::now();
    let mut out = Vec::with_capacity(dirs.len() - 1);
    for (d, (dir, _)) in dirs[1..].iter().zip(&nodes[1..]) {
        loop {
            let e = d.entry(subject).ok();
            if let Some(e) = e.filter(|e| e.seq == seq) {
                out.push(e.received_at_ms.saturating_sub(origin));
                break;
            }
            if start.elapsed() > timeout {
                bail!(
                    "{} did not receive node0's update within {timeout:?}",
                    dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(out)
}

/// The idle CPU rate of the processes (ns per s): the median over [`BACKGROUND_SLICES`]
/// slices of 250 ms.
fn background_ns_per_s(pids: &[u32]) -> Option<f64> {
    let slice = Duration::from_millis(250);
    let mut rates = Vec::with_capacity(BACKGROUND_SLICES);
    let mut last = (Instant::now(), crate::cpu::processes_cpu_ns(pids)?);
    for _ in 0..BACKGROUND_SLICES {
        std::thread::sleep(slice);
        let now = (Instant::now(), crate::cpu::processes_cpu_ns(pids)?);
        rates
            .push(now.1.saturating_sub(last.1) as f64 / now.0.duration_since(last.0).as_secs_f64());
        last = now;
    }
    median(rates)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The gossip copies each node received (duplicates included), and the sum and count of
/// its `gaiamesh_sd_ingest_seconds` histogram.
#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    sd_copies: f64,
    stored_cpu_s: Option<f64>,
    ingest_sum: f64,
    ingest_count: f64,
}

fn counters(dirs: &[NodeApi]) -> Result<Vec<Counters>> {
    let mut out = Vec::with_capacity(dirs.len());
    for d in dirs {
        out.push(parse_counters(&d.metrics()?));
    }
    Ok(out)
}

/// Reads [`Counters`] from a Prometheus text exposition; series of one name (any labels)
/// are summed.
fn parse_counters(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut it = line.split_whitespace();
        let (Some(series), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        let v: f64 = v.parse().unwrap_or(0.0);
        match name {
            // Labelled by topic; the self-description topic is `/gaiamesh/<federation>/sd/1`.
            "libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total"
                if series.contains("/sd/1\"") =>
            {
                c.sd_copies += v;
            }
            "gaiamesh_sd_stored_cpu_seconds" => c.stored_cpu_s = Some(v),
            "gaiamesh_sd_ingest_seconds_sum" => c.ingest_sum += v,
            "gaiamesh_sd_ingest_seconds_count" => c.ingest_count += v,
            _ => {}
        }
    }
    c
}

/// The median over nodes of the mean ingest time (ms) between two readings.
fn ingest_median_ms(before: &[Counters], after: &[Counters]) -> Option<f64> {
    let mut per_node: Vec<f64> = before
        .iter()
        .zip(after)
        .filter(|(b, a)| a.ingest_count > b.ingest_count)
        .map(|(b, a)| (a.ingest_sum - b.ingest_sum) / (a.ingest_count - b.ingest_count) * 1e3)
        .collect();
    if per_node.is_empty() {
        return None;
    }
    per_node.sort_by(f64::total_cmp);
    Some(per_node[per_node.len() / 2])
}

/// Mean number of connected peers over the nodes.
fn mean_peers(dirs: &[NodeApi]) -> f64 {
    let peers: Vec<f64> = dirs
        .iter()
        .filter_map(|d| d.status().ok().map(|s| s.connected_peers as f64))
        .collect();
    peers.iter().sum::<f64>() / peers.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_median_over_nodes_that_ingested() {
        let c = |ingest_sum, ingest_count| Counters {
            sd_copies: 0.0,
            stored_cpu_s: None,
            ingest_sum,
            ingest_count,
        };
        let before = [c(0.0, 0.0), c(1.0, 10.0), c(2.0, 5.0)];
        let after = [c(0.0, 0.0), c(1.010, 11.0), c(2.060, 7.0)];
        let m = ingest_median_ms(&before, &after).unwrap();
        assert!((m - 30.0).abs() < 1e-6, "{m}");
        assert_eq!(ingest_median_ms(&before, &before), None);
    }

    #[test]
    fn counters_sum_labelled_series() {
        let text = "# HELP x\n\
            libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"/gaiamesh/f/sd/1\"} 3\n\
            libp2p_gossipsub_topic_msg_recv_counts_unfiltered_total{hash=\"/gaiamesh/f/presence/1\"} 4\n\
            gaiamesh_sd_stored_cpu_seconds 1.25\n\
            gaiamesh_sd_ingest_seconds_sum 0.5\n\
            gaiamesh_sd_ingest_seconds_count 2\n\
            gaiamesh_sd_ingest_seconds_bucket{le=\"0.1\"} 1\n";
        let c = parse_counters(text);
        assert_eq!((c.sd_copies, c.ingest_sum, c.ingest_count), (3.0, 0.5, 2.0));
        assert_eq!(c.stored_cpu_s, Some(1.25));
    }
}
