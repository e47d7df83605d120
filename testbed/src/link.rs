//! The link model, sans-IO: what happens to one packet from node `a` to node `b` — its
//! one-way delay (half the round trip between their regions, ± jitter), whether it is lost,
//! whether a partition drops it. The router ([`crate::router`]) asks it for every packet.

use std::time::Duration;

use rand::Rng;

/// What becomes of a packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fate {
    /// Delivered after this long.
    Deliver(Duration),
    /// Dropped at random (`loss`).
    Lost,
    /// Dropped: the two nodes are on different sides of a partition.
    Partitioned,
}

/// Delays between nodes, jitter, loss and the partition in force.
#[derive(Clone, Debug)]
pub struct LinkModel {
    n: usize,
    /// One-way delay a → b, µs (row-major, n × n).
    one_way_us: Vec<u64>,
    jitter: f64,
    loss: f64,
    /// Partition side of each node; all 0 when healed.
    side: Vec<u16>,
}

impl LinkModel {
    /// Nodes in `region[i]` of a round-trip matrix `rtt_ms` (ms), with `jitter` (each
    /// delay × (1 ± jitter), uniform) and `loss` (probability per packet).
    pub fn new(rtt_ms: &[Vec<f64>], region: &[usize], jitter: f64, loss: f64) -> Self {
        let n = region.len();
        let mut one_way_us = Vec::with_capacity(n * n);
        for &ra in region {
            for &rb in region {
                one_way_us.push((rtt_ms[ra][rb] * 500.0).round() as u64);
            }
        }
        Self {
            n,
            one_way_us,
            jitter,
            loss,
            side: vec![0; n],
        }
    }

    /// Nodes.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The base one-way delay from `a` to `b`.
    pub fn one_way(&self, a: usize, b: usize) -> Duration {
        Duration::from_micros(self.one_way_us[a * self.n + b])
    }

    /// Splits the nodes: `groups[k]` lists the nodes on side k + 1; nodes in no group form
    /// side 0. Packets cross no side boundary until [`Self::heal`].
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        self.side = vec![0; self.n];
        for (k, g) in groups.iter().enumerate() {
            for &i in g {
                if let Some(s) = self.side.get_mut(i) {
                    *s = u16::try_from(k + 1).unwrap_or(u16::MAX);
                }
            }
        }
    }

    /// Removes the partition.
    pub fn heal(&mut self) {
        self.side = vec![0; self.n];
    }

    /// Whether a partition is in force.
    pub fn partitioned(&self) -> bool {
        self.side.iter().any(|s| *s != 0)
    }

    /// The fate of one packet from `a` to `b` (both below [`Self::len`]).
    pub fn fate(&self, a: usize, b: usize, rng: &mut impl Rng) -> Fate {
        if self.side[a] != self.side[b] {
            return Fate::Partitioned;
        }
        if self.loss > 0.0 && rng.r#gen::<f64>() < self.loss {
            return Fate::Lost;
        }
        let base = self.one_way_us[a * self.n + b] as f64;
        let factor = if self.jitter > 0.0 {
            1.0 + self.jitter * (rng.r#gen::<f64>() * 2.0 - 1.0)
        } else {
            1.0
        };
        Fate::Deliver(Duration::from_micros((base * factor).max(0.0) as u64))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn model(jitter: f64, loss: f64) -> LinkModel {
        let rtt = vec![vec![2.0, 30.0], vec![30.0, 2.0]];
        LinkModel::new(&rtt, &[0, 1, 1], jitter, loss)
    }

    #[test]
    fn half_the_round_trip_between_regions() {
        let m = model(0.0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            m.fate(0, 1, &mut rng),
            Fate::Deliver(Duration::from_millis(15))
        );
        assert_eq!(
            m.fate(1, 2, &mut rng),
            Fate::Deliver(Duration::from_millis(1))
        );
    }

    #[test]
    fn jitter_stays_within_its_band_and_loss_drops_its_share() {
        let m = model(0.2, 0.1);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (mut lost, mut min, mut max) = (0, u64::MAX, 0);
        for _ in 0..10_000 {
            match m.fate(0, 1, &mut rng) {
                Fate::Deliver(d) => {
                    let us = d.as_micros() as u64;
                    min = min.min(us);
                    max = max.max(us);
                }
                Fate::Lost => lost += 1,
                Fate::Partitioned => panic!("no partition"),
            }
        }
        assert!((800..1200).contains(&lost), "{lost}");
        assert!(
            min >= 12_000 && max <= 18_000 && max - min > 5_000,
            "{min}..{max}"
        );
    }

    #[test]
    fn a_partition_drops_across_sides_until_healed() {
        let mut m = model(0.0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        m.partition(&[vec![0], vec![1, 2]]);
        assert!(m.partitioned());
        assert_eq!(m.fate(0, 1, &mut rng), Fate::Partitioned);
        assert!(matches!(m.fate(1, 2, &mut rng), Fate::Deliver(_)));
        m.heal();
        assert!(matches!(m.fate(0, 1, &mut rng), Fate::Deliver(_)));
    }
}
