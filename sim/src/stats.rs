//! Bounded-memory statistics: a log-bucketed histogram (relative error ≤ 1%) for delays and
//! a plain counter histogram for small integers (lookup hops).

use serde::Serialize;

/// A histogram over non-negative values with ~1% relative resolution, any count.
#[derive(Clone, Debug, Default)]
pub struct LogHistogram {
    /// counts[i]: values in [BASE^i, BASE^(i+1)) (bucket 0 also holds values < 1).
    counts: Vec<u64>,
    total: u64,
    max: f64,
    sum: f64,
}

const BASE: f64 = 1.02;

impl LogHistogram {
    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        let v = v.max(0.0);
        let i = if v < 1.0 {
            0
        } else {
            (v.ln() / BASE.ln()) as usize + 1
        };
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
        self.total += 1;
        self.sum += v;
        self.max = self.max.max(v);
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Mean.
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum / self.total as f64
        }
    }

    /// Largest value.
    pub fn max(&self) -> f64 {
        self.max
    }

    fn upper(i: usize) -> f64 {
        if i == 0 { 1.0 } else { BASE.powi(i as i32) }
    }

    /// The `q` quantile (0..=1), as the upper edge of its bucket (capped at the max).
    pub fn quantile(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let target = ((self.total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    /// (value, cumulative fraction) points of the CDF, one per non-empty bucket.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            seen += c;
            out.push((
                Self::upper(i).min(self.max),
                seen as f64 / self.total as f64,
            ));
        }
        out
    }

    /// Summary for JSON.
    pub fn summary(&self) -> Quantiles {
        Quantiles {
            count: self.total,
            mean: round3(self.mean()),
            p50: round3(self.quantile(0.5)),
            p90: round3(self.quantile(0.9)),
            p99: round3(self.quantile(0.99)),
            max: round3(self.max),
        }
    }
}

/// Count, mean and quantiles.
#[derive(Clone, Debug, Serialize)]
pub struct Quantiles {
    /// Values.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Rounds to 3 decimals (stable JSON).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Quantile of a sorted slice.
pub fn quantile_sorted(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_two_percent() {
        let mut h = LogHistogram::default();
        for v in 1..=10_000 {
            h.add(f64::from(v));
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let got = h.quantile(q);
            assert!((got - exact).abs() / exact < 0.02, "q{q}: {got} vs {exact}");
        }
        assert_eq!(h.max(), 10_000.0);
        assert_eq!(h.count(), 10_000);
        let cdf = h.cdf();
        assert!((cdf.last().unwrap().1 - 1.0).abs() < 1e-12);
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }
}
