//! The network model: regions with a round-trip latency matrix, jitter, loss, per-node upload
//! and download bandwidth (a message waits for the sender's uplink and the receiver's
//! downlink), node up/down state and partitions.
//!
//! The built-in matrix ([`LatencyMatrix::default_eu`]) has one representative city per region.
//! Its round-trip times are approximate medians of public city-to-city ping measurements
//! (WonderNetwork's global ping statistics, <https://wondernetwork.com/pings>, for the city
//! pairs named in [`DEFAULT_REGIONS`]), rounded to whole milliseconds; within a region 2 ms.
//! They are an input, not a result: import measured ones with `placement.latency_csv`.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::engine::SimTime;

/// Default regions: (name, city, weight). EU-weighted: 90% of nodes in the EU, 10% in
/// North America (providers with a US presence).
pub const DEFAULT_REGIONS: [(&str, &str, f64); 8] = [
    ("eu-central", "Frankfurt", 0.22),
    ("eu-west", "Paris", 0.16),
    ("eu-northwest", "Amsterdam", 0.14),
    ("eu-north", "Stockholm", 0.08),
    ("eu-south", "Milan", 0.10),
    ("eu-southwest", "Madrid", 0.10),
    ("eu-east", "Warsaw", 0.10),
    ("us-east", "New York", 0.10),
];

/// Round-trip ms between the default regions, in [`DEFAULT_REGIONS`] order.
const DEFAULT_RTT_MS: [[u32; 8]; 8] = [
    // FRA PAR AMS STO MIL MAD WAW NYC
    [2, 10, 7, 24, 11, 27, 19, 82],   // Frankfurt
    [10, 2, 9, 32, 15, 19, 29, 75],   // Paris
    [7, 9, 2, 22, 18, 28, 23, 78],    // Amsterdam
    [24, 32, 22, 2, 33, 47, 22, 95],  // Stockholm
    [11, 15, 18, 33, 2, 27, 25, 90],  // Milan
    [27, 19, 28, 47, 27, 2, 45, 80],  // Madrid
    [19, 29, 23, 22, 25, 45, 2, 100], // Warsaw
    [82, 75, 78, 95, 90, 80, 100, 2], // New York
];

/// Named regions and their round-trip latencies.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyMatrix {
    /// Region names.
    pub regions: Vec<String>,
    /// Round-trip ms, `rtt_ms[i][j]`.
    pub rtt_ms: Vec<Vec<f64>>,
}

impl LatencyMatrix {
    /// The built-in EU-weighted matrix.
    pub fn default_eu() -> Self {
        Self {
            regions: DEFAULT_REGIONS.iter().map(|r| r.0.to_owned()).collect(),
            rtt_ms: DEFAULT_RTT_MS
                .iter()
                .map(|row| row.iter().map(|&x| f64::from(x)).collect())
                .collect(),
        }
    }

    /// Parses a CSV matrix: a header `region,<name>,<name>…`, then one row per region in the
    /// same order with round-trip milliseconds. It must be square and symmetric within 1 ms.
    pub fn from_csv(text: &str) -> Result<Self, MatrixError> {
        let bad = MatrixError;
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| bad("empty latency matrix".into()))?
            .split(',')
            .skip(1)
            .map(|s| s.trim().to_owned())
            .collect();
        if header.is_empty() || header.iter().any(String::is_empty) {
            return Err(bad("the header must be `region,<name>,<name>…`".into()));
        }
        let mut rtt = Vec::new();
        for (i, line) in lines.enumerate() {
            let mut cells = line.split(',').map(str::trim);
            let name = cells.next().unwrap_or_default();
            if header.get(i).map(String::as_str) != Some(name) {
                return Err(bad(format!(
                    "row {}: expected region {:?}, found {name:?}",
                    i + 2,
                    header.get(i).map_or("(none)", String::as_str)
                )));
            }
            let row: Result<Vec<f64>, MatrixError> = cells
                .map(|c| {
                    c.parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite() && *x >= 0.0)
                        .ok_or_else(|| bad(format!("row {}: {c:?} is not a latency in ms", i + 2)))
                })
                .collect();
            let row = row?;
            if row.len() != header.len() {
                return Err(bad(format!(
                    "row {}: {} values for {} regions",
                    i + 2,
                    row.len(),
                    header.len()
                )));
            }
            rtt.push(row);
        }
        if rtt.len() != header.len() {
            return Err(bad(format!(
                "{} rows for {} regions",
                rtt.len(),
                header.len()
            )));
        }
        for i in 0..rtt.len() {
            for j in 0..i {
                if (rtt[i][j] - rtt[j][i]).abs() > 1.0 {
                    return Err(bad(format!(
                        "not symmetric: {} → {} is {} ms, back {} ms",
                        header[i], header[j], rtt[i][j], rtt[j][i]
                    )));
                }
            }
        }
        Ok(Self {
            regions: header,
            rtt_ms: rtt,
        })
    }

    /// Index of a region.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.regions.iter().position(|r| r == name)
    }
}

/// A latency matrix that cannot be used: what is wrong, with the row.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MatrixError(String);

/// A placement that does not fit the latency matrix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// A weight for a region the matrix does not have.
    #[error("placement.regions.{name}: not a region of the latency matrix ({known})")]
    UnknownRegion {
        /// The region named.
        name: String,
        /// The matrix's regions.
        known: String,
    },
    /// Every weight is zero.
    #[error("placement: all region weights are zero")]
    AllZero,
    /// More regions than a node's region index holds.
    #[error("at most 255 regions, not {0}")]
    TooManyRegions(usize),
}

fn pair(a: u32, b: u32) -> (u32, u32) {
    (a.min(b), a.max(b))
}

/// Where a node is and whether it can talk: what every message sent or link checked reads
/// of its two ends, in one place (three separate per-node arrays cost three cache lines per
/// end where this costs one; 3 bytes a node, 300 KB at 10^5 nodes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Place {
    up: bool,
    /// Partition side (0: main side). Links across sides drop everything.
    side: u8,
    /// Region index into the latency matrix.
    region: u8,
}

/// The live network: where nodes are, which are up, partitions and link queues.
pub struct Network {
    matrix: LatencyMatrix,
    /// One-way base latency in µs, `region × region`, flattened.
    one_way_us: Vec<u64>,
    regions: usize,
    /// Each node's region, partition side and whether it is up.
    place: Vec<Place>,
    jitter: f64,
    loss: f64,
    /// µs per byte on each node's uplink / downlink.
    up_us_per_byte: f64,
    down_us_per_byte: f64,
    up_free: Vec<SimTime>,
    down_free: Vec<SimTime>,
    /// Bytes sent per node.
    pub sent_bytes: Vec<u64>,
    /// Connections closed while both ends were up (a partition outlasted the idle
    /// timeout), as `(lower, higher)` node pairs; they carry nothing until redialled.
    closed: std::collections::HashSet<(u32, u32)>,
    /// The partition in force, when a heal follows it: what is sent across it is held.
    hold: Option<Hold>,
}

/// A partition that heals: a message sent across it on a connection that is still open at
/// the heal is delivered after the heal (QUIC retransmits it once packets get through),
/// as if sent then; one sent on a connection that closes first is lost.
#[derive(Clone, Debug)]
pub struct Hold {
    /// When the partition heals.
    pub heal: SimTime,
    /// When each node's connections across it close (its idle timeout).
    pub closes: Vec<SimTime>,
}

impl Network {
    /// Places `n` nodes by `weights` (region name → weight; empty: defaults).
    pub fn new(
        n: usize,
        matrix: LatencyMatrix,
        weights: &std::collections::BTreeMap<String, f64>,
        params: &crate::scenario::NetworkParams,
        rng: &mut ChaCha8Rng,
    ) -> Result<Self, PlacementError> {
        let w: Vec<f64> = if weights.is_empty() {
            matrix
                .regions
                .iter()
                .map(|r| {
                    DEFAULT_REGIONS
                        .iter()
                        .find(|d| d.0 == r)
                        .map_or(1.0, |d| d.2)
                })
                .collect()
        } else {
            for name in weights.keys() {
                if matrix.index(name).is_none() {
                    return Err(PlacementError::UnknownRegion {
                        name: name.clone(),
                        known: matrix.regions.join(", "),
                    });
                }
            }
            matrix
                .regions
                .iter()
                .map(|r| weights.get(r).copied().unwrap_or(0.0))
                .collect()
        };
        let total: f64 = w.iter().sum();
        if total <= 0.0 {
            return Err(PlacementError::AllZero);
        }
        if matrix.regions.len() > 255 {
            return Err(PlacementError::TooManyRegions(matrix.regions.len()));
        }
        let place = (0..n)
            .map(|_| {
                let mut x = rng.r#gen::<f64>() * total;
                let mut r = 0;
                while r + 1 < w.len() && x >= w[r] {
                    x -= w[r];
                    r += 1;
                }
                Place {
                    up: true,
                    side: 0,
                    region: r as u8,
                }
            })
            .collect();
        let regions = matrix.regions.len();
        let one_way_us = matrix
            .rtt_ms
            .iter()
            .flat_map(|row| row.iter().map(|ms| (ms * 500.0) as u64))
            .collect();
        let bytes_per_us = |mbps: f64| mbps / 8.0;
        Ok(Self {
            matrix,
            one_way_us,
            regions,
            place,
            jitter: params.jitter,
            loss: params.loss,
            up_us_per_byte: 1.0 / bytes_per_us(params.up_mbps),
            down_us_per_byte: 1.0 / bytes_per_us(params.down_mbps),
            up_free: vec![SimTime(0); n],
            down_free: vec![SimTime(0); n],
            sent_bytes: vec![0; n],
            closed: std::collections::HashSet::new(),
            hold: None,
        })
    }

    /// The latency matrix in use.
    pub fn matrix(&self) -> &LatencyMatrix {
        &self.matrix
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.place.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.place.is_empty()
    }

    /// Whether node `i` is up.
    pub fn is_up(&self, i: u32) -> bool {
        self.place[i as usize].up
    }

    /// Node `i` goes up or down.
    pub fn set_up(&mut self, i: u32, up: bool) {
        self.place[i as usize].up = up;
    }

    /// Nodes up now.
    pub fn up_count(&self) -> usize {
        self.place.iter().filter(|p| p.up).count()
    }

    /// Node `i`'s partition side (0: the main side).
    pub fn side(&self, i: u32) -> u8 {
        self.place[i as usize].side
    }

    /// Puts node `i` on partition side `side`.
    pub fn set_side(&mut self, i: u32, side: u8) {
        self.place[i as usize].side = side;
    }

    /// Every node back on the main side: the partition healed.
    pub fn heal_sides(&mut self) {
        self.place.iter_mut().for_each(|p| p.side = 0);
    }

    /// Node `i`'s region (an index into the latency matrix's regions).
    pub fn region(&self, i: u32) -> u8 {
        self.place[i as usize].region
    }

    /// How long bulk data `a` sends at `now` waits behind what its uplink already queued (µs).
    pub fn backlog_us(&self, a: u32, now: SimTime) -> u64 {
        self.up_free[a as usize].0.saturating_sub(now.0)
    }

    /// Whether `a` and `b` can talk now (both up, same partition side, their connection
    /// not closed).
    pub fn linked(&self, a: u32, b: u32) -> bool {
        self.reachable(a, b) && (self.closed.is_empty() || !self.closed.contains(&pair(a, b)))
    }

    /// Whether a dial from `a` to `b` would get through (both up, same partition side).
    pub fn reachable(&self, a: u32, b: u32) -> bool {
        let (a, b) = (self.place[a as usize], self.place[b as usize]);
        a.up && b.up && a.side == b.side
    }

    /// The connection between `a` and `b` closed (both ends stay up).
    pub fn close(&mut self, a: u32, b: u32) {
        self.closed.insert(pair(a, b));
    }

    /// Holds what is sent across the partition in force until `hold.heal` (see [`Hold`]);
    /// `None`: it is lost (no heal follows, or the partition healed).
    pub fn set_hold(&mut self, hold: Option<Hold>) {
        self.hold = hold;
    }

    /// When a message from `a` to `b`, cut off by the partition, gets through: at the heal,
    /// if their connection is still open then.
    fn held_until(&self, a: u32, b: u32) -> Option<SimTime> {
        let h = self.hold.as_ref()?;
        let (ai, bi) = (a as usize, b as usize);
        let (pa, pb) = (self.place[ai], self.place[bi]);
        (pa.up
            && pb.up
            && pa.side != pb.side
            && !self.is_closed(a, b)
            && h.heal < h.closes[ai].min(h.closes[bi]))
        .then_some(h.heal)
    }

    /// Whether the connection between `a` and `b` was closed (and not reopened).
    pub fn is_closed(&self, a: u32, b: u32) -> bool {
        !self.closed.is_empty() && self.closed.contains(&pair(a, b))
    }

    /// A connection between `a` and `b` is up again.
    pub fn reopen(&mut self, a: u32, b: u32) {
        if !self.closed.is_empty() {
            self.closed.remove(&pair(a, b));
        }
    }

    /// Sends `bytes` from `a` to `b` at `now`: the arrival time, or `None` when the message
    /// is lost (loss, partition, a node down). Uplink and downlink are FIFO queues.
    pub fn send(
        &mut self,
        a: u32,
        b: u32,
        bytes: u32,
        now: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> Option<SimTime> {
        self.send_inner(a, b, bytes, now, rng, true)
    }

    /// Sends a small control message (a request, an announcement) that a multiplexed
    /// connection (QUIC streams) interleaves with bulk transfers instead of queueing it
    /// behind them: it pays its own transmission time and the latency, not the queue.
    pub fn send_control(
        &mut self,
        a: u32,
        b: u32,
        bytes: u32,
        now: SimTime,
        rng: &mut ChaCha8Rng,
    ) -> Option<SimTime> {
        self.send_inner(a, b, bytes, now, rng, false)
    }

    fn send_inner(
        &mut self,
        a: u32,
        b: u32,
        bytes: u32,
        now: SimTime,
        rng: &mut ChaCha8Rng,
        queued: bool,
    ) -> Option<SimTime> {
        let (ai, bi) = (a as usize, b as usize);
        self.sent_bytes[ai] += u64::from(bytes);
        let now = if self.linked(a, b) {
            now
        } else {
            self.held_until(a, b)?.max(now)
        };
        if self.loss > 0.0 && rng.r#gen::<f64>() < self.loss {
            return None;
        }
        let transmit = (f64::from(bytes) * self.up_us_per_byte) as u64;
        let up_done = if queued {
            let done = self.up_free[ai].max(now).plus_us(transmit);
            self.up_free[ai] = done;
            done
        } else {
            now.plus_us(transmit)
        };
        let base = self.one_way_us
            [usize::from(self.place[ai].region) * self.regions + usize::from(self.place[bi].region)]
            as f64;
        let j = if self.jitter > 0.0 {
            1.0 + self.jitter * (rng.r#gen::<f64>() * 2.0 - 1.0)
        } else {
            1.0
        };
        let arrive = up_done.plus_us((base * j) as u64);
        let receive = (f64::from(bytes) * self.down_us_per_byte) as u64;
        if !queued {
            return Some(arrive.plus_us(receive));
        }
        let down_done = self.down_free[bi].max(arrive).plus_us(receive);
        self.down_free[bi] = down_done;
        Some(down_done)
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn default_matrix_is_symmetric_and_csv_round_trips() {
        let m = LatencyMatrix::default_eu();
        let mut csv = format!("region,{}\n", m.regions.join(","));
        for (i, r) in m.regions.iter().enumerate() {
            let row: Vec<String> = m.rtt_ms[i].iter().map(|x| x.to_string()).collect();
            csv.push_str(&format!("{r},{}\n", row.join(",")));
        }
        assert_eq!(LatencyMatrix::from_csv(&csv).unwrap(), m);
    }

    #[test]
    fn bad_csv_is_explained() {
        assert!(
            LatencyMatrix::from_csv("region,a,b\na,1,5\nb,9,1\n")
                .unwrap_err()
                .to_string()
                .contains("not symmetric")
        );
        assert!(
            LatencyMatrix::from_csv("region,a,b\na,1,x\nb,5,1\n")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
        assert!(
            LatencyMatrix::from_csv("region,a,b\nb,1,5\na,5,1\n")
                .unwrap_err()
                .to_string()
                .contains("expected region")
        );
    }

    #[test]
    fn delays_follow_latency_and_bandwidth() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let params = crate::scenario::NetworkParams {
            jitter: 0.0,
            up_mbps: 8.0, // 1 byte per µs
            down_mbps: 1000.0,
            ..Default::default()
        };
        let mut net = Network::new(
            2,
            LatencyMatrix::default_eu(),
            &Default::default(),
            &params,
            &mut rng,
        )
        .unwrap();
        net.place[0].region = 0; // Frankfurt → New York: 41 ms one way
        net.place[1].region = 7;
        let t = net.send(0, 1, 1000, SimTime(0), &mut rng).unwrap();
        assert!((42_000..42_100).contains(&t.0), "{t:?}");
        // The second message waits for the uplink.
        let t2 = net.send(0, 1, 1000, SimTime(0), &mut rng).unwrap();
        assert!(t2.0 >= t.0 + 1000, "{t2:?}");
        net.set_side(1, 1);
        assert!(net.send(0, 1, 10, SimTime(0), &mut rng).is_none());
    }
}
