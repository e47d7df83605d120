//! The userspace router: one TUN device in each node's namespace, every IPv4 packet read
//! from one and written to the destination's after the delay the [`LinkModel`] gives it (or
//! dropped). The kernel here has no `sch_netem`, so delay, jitter, loss and partitions are
//! applied here; nothing else connects the namespaces.
//!
//! Node `i` has address [`address`]`(i)` in 10.99.0.0/16 on its device `gm0`. The router
//! runs on a runtime of its own (one worker thread); dropping it stops forwarding.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    net::Ipv4Addr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::{sync::mpsc, time::Instant};
use tun_rs::{AsyncDevice, SyncDevice};

use crate::{
    TestbedError,
    link::{Fate, LinkModel},
};

/// The TUN device's name in every namespace.
pub const DEVICE: &str = "gm0";
/// Its MTU (QUIC needs 1200 at least).
pub const MTU: u16 = 1400;
/// Packets queued towards one node at most; beyond, they are dropped (counted).
const QUEUE: usize = 8192;

/// Node `i`'s address (10.99.0.1, …; 250 per /24).
pub fn address(i: usize) -> Ipv4Addr {
    let hi = u8::try_from(i / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(i % 250 + 1).unwrap_or(u8::MAX);
    Ipv4Addr::new(10, 99, hi, lo)
}

/// The node an address belongs to.
pub fn node_of(ip: Ipv4Addr) -> Option<usize> {
    let [a, b, hi, lo] = ip.octets();
    (a == 10 && b == 99 && (1..=250).contains(&lo))
        .then(|| usize::from(hi) * 250 + usize::from(lo) - 1)
}

/// The destination of an IPv4 packet.
fn destination(packet: &[u8]) -> Option<Ipv4Addr> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    Some(Ipv4Addr::new(
        packet[16], packet[17], packet[18], packet[19],
    ))
}

/// Creates node `i`'s device; call it inside the node's namespace.
pub fn device(i: usize) -> std::io::Result<SyncDevice> {
    tun_rs::DeviceBuilder::new()
        .name(DEVICE)
        .ipv4(address(i), 16, None)
        .mtu(MTU)
        .build_sync()
}

/// Packet counters.
#[derive(Debug, Default)]
pub struct Stats {
    forwarded: AtomicU64,
    lost: AtomicU64,
    partitioned: AtomicU64,
    unroutable: AtomicU64,
    overflow: AtomicU64,
}

/// A reading of [`Stats`].
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// Delivered.
    pub forwarded: u64,
    /// Dropped by `loss`.
    pub lost: u64,
    /// Dropped by a partition.
    pub partitioned: u64,
    /// Not IPv4, or to no node.
    pub unroutable: u64,
    /// Dropped because the destination's queue was full.
    pub overflow: u64,
}

/// The running router.
#[derive(Debug)]
pub struct Router {
    model: Arc<Mutex<LinkModel>>,
    stats: Arc<Stats>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Router {
    /// Forwards between `devices` (node i's at index i) by `model`; `seed` drives jitter
    /// and loss.
    pub fn start(
        devices: Vec<SyncDevice>,
        model: LinkModel,
        seed: u64,
    ) -> Result<Self, TestbedError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gaiamesh-router")
            .enable_all()
            .build()
            .map_err(|e| TestbedError::Router(e.to_string()))?;
        let model = Arc::new(Mutex::new(model));
        let stats = Arc::new(Stats::default());
        let devices: Vec<Arc<AsyncDevice>> = {
            let _guard = runtime.enter();
            devices
                .into_iter()
                .map(|d| AsyncDevice::new(d).map(Arc::new))
                .collect::<Result<_, _>>()
                .map_err(|e| TestbedError::Router(e.to_string()))?
        };
        let queues: Vec<mpsc::Sender<(Instant, Vec<u8>)>> = devices
            .iter()
            .map(|dev| {
                let (tx, rx) = mpsc::channel(QUEUE);
                runtime.spawn(deliver(dev.clone(), rx));
                tx
            })
            .collect();
        for (i, dev) in devices.iter().enumerate() {
            runtime.spawn(forward(
                i,
                dev.clone(),
                queues.clone(),
                model.clone(),
                stats.clone(),
                ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ));
        }
        Ok(Self {
            model,
            stats,
            runtime: Some(runtime),
        })
    }

    fn model(&self) -> std::sync::MutexGuard<'_, LinkModel> {
        self.model.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// See [`LinkModel::partition`].
    pub fn partition(&self, groups: &[Vec<usize>]) {
        self.model().partition(groups);
    }

    /// See [`LinkModel::heal`].
    pub fn heal(&self) {
        self.model().heal();
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        let s = &self.stats;
        Counts {
            forwarded: s.forwarded.load(Ordering::Relaxed),
            lost: s.lost.load(Ordering::Relaxed),
            partitioned: s.partitioned.load(Ordering::Relaxed),
            unroutable: s.unroutable.load(Ordering::Relaxed),
            overflow: s.overflow.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}

/// Reads node `from`'s packets and queues each for its destination.
async fn forward(
    from: usize,
    dev: Arc<AsyncDevice>,
    queues: Vec<mpsc::Sender<(Instant, Vec<u8>)>>,
    model: Arc<Mutex<LinkModel>>,
    stats: Arc<Stats>,
    mut rng: ChaCha8Rng,
) {
    let mut buf = vec![0u8; usize::from(MTU) + 64];
    // Per destination, when the last packet is due: a link is FIFO, so jitter varies the
    // delay without reordering packets (independent per-packet jitter reordered a fast
    // stream so often that QUIC took it for loss and crawled at a few Mbit/s).
    let mut last_due: Vec<Option<Instant>> = vec![None; queues.len()];
    loop {
        let n = match dev.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(node = from, error = %e, "router: reading a device failed");
                return;
            }
        };
        let packet = &buf[..n];
        let Some(to) = destination(packet)
            .and_then(node_of)
            .filter(|&t| t < queues.len() && t != from)
        else {
            stats.unroutable.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let fate = model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fate(from, to, &mut rng);
        match fate {
            Fate::Deliver(delay) => {
                let due = fifo_due(&mut last_due[to], Instant::now() + delay);
                if queues[to].try_send((due, packet.to_vec())).is_ok() {
                    stats.forwarded.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.overflow.fetch_add(1, Ordering::Relaxed);
                }
            }
            Fate::Lost => {
                stats.lost.fetch_add(1, Ordering::Relaxed);
            }
            Fate::Partitioned => {
                stats.partitioned.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// When a packet that would be due at `due` is due on a FIFO link whose previous packet is
/// due at `last` (not before it); updates `last`.
fn fifo_due(last: &mut Option<Instant>, due: Instant) -> Instant {
    let due = last.map_or(due, |l| due.max(l));
    *last = Some(due);
    due
}

/// Writes packets to a node's device when they are due (earliest first).
async fn deliver(dev: Arc<AsyncDevice>, mut rx: mpsc::Receiver<(Instant, Vec<u8>)>) {
    // (due, arrival order, packet): equal due times keep their order.
    let mut due: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let next = due.peek().map(|Reverse((t, _, _))| *t);
        tokio::select! {
            got = rx.recv() => match got {
                Some((t, p)) => {
                    seq += 1;
                    due.push(Reverse((t, seq, p)));
                }
                None => return,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while due.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                    if let Some(Reverse((_, _, p))) = due.pop() {
                        let _ = dev.send(&p).await;
                    }
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_keeps_its_packets_in_order_whatever_the_jitter() {
        let t0 = Instant::now();
        let mut last = None;
        let ms = Duration::from_millis;
        assert_eq!(fifo_due(&mut last, t0 + ms(30)), t0 + ms(30));
        // A later packet drawn a shorter delay waits for the one before it.
        assert_eq!(fifo_due(&mut last, t0 + ms(28)), t0 + ms(30));
        assert_eq!(fifo_due(&mut last, t0 + ms(33)), t0 + ms(33));
    }

    #[test]
    fn addresses_and_nodes_map_both_ways() {
        for i in [0, 1, 249, 250, 251, 999] {
            assert_eq!(node_of(address(i)), Some(i));
        }
        assert_eq!(address(0), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(node_of(Ipv4Addr::new(10, 98, 0, 1)), None);
        assert_eq!(node_of(Ipv4Addr::new(10, 99, 0, 0)), None);
    }

    #[test]
    fn only_ipv4_packets_have_a_destination() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[16..20].copy_from_slice(&[10, 99, 0, 3]);
        assert_eq!(destination(&p), Some(Ipv4Addr::new(10, 99, 0, 3)));
        p[0] = 0x60;
        assert_eq!(destination(&p), None);
        assert_eq!(destination(&p[..10]), None);
    }
}
