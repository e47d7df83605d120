//! Set reconciliation of two 100k-entry catalogues that differ in a few entries: round
//! trips and bytes both ways, against the bytes of the differing records' ids (the
//! information that has to cross the network at the very least).

use std::time::Instant;

use anyhow::{Result, ensure};
use gaiamesh_directory::reconcile::{Initiator, Item, ReconcileSet, respond};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::report::{Bound, Check, Row};

/// What one reconciliation took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Request/answer pairs.
    pub round_trips: usize,
    /// Encoded bytes of every message, both ways.
    pub bytes: usize,
    /// Entries found to differ (have + need).
    pub found: usize,
}

/// Reconciles `entries` common items plus `differences` items only one side holds (half on
/// each side), generated from `seed`.
pub fn reconcile(entries: usize, differences: usize, seed: u64) -> Result<Outcome> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let common: Vec<Item> = (0..entries)
        .map(|_| Item {
            key: rng.r#gen(),
            id: rng.r#gen(),
        })
        .collect();
    let (mut a, mut b) = (common.clone(), common);
    for i in 0..differences {
        let it = Item {
            key: rng.r#gen(),
            id: rng.r#gen(),
        };
        if i % 2 == 0 { a.push(it) } else { b.push(it) }
    }
    let (sa, sb) = (ReconcileSet::new(a), ReconcileSet::new(b));
    let (mut init, mut msg) = Initiator::start(sa, rng.r#gen());
    let (mut round_trips, mut bytes) = (0, 0);
    loop {
        bytes += msg.encode()?.len();
        let reply = respond(&sb, &msg)?;
        bytes += reply.encode()?.len();
        round_trips += 1;
        match init.handle(&reply)? {
            Some(next) => msg = next,
            None => break,
        }
    }
    Ok(Outcome {
        round_trips,
        bytes,
        found: init.have().count() + init.need().count(),
    })
}

/// The reconciliation row: 100k entries, 10 differ; the worst of three seeds.
pub fn run() -> Result<Vec<Row>> {
    const ENTRIES: usize = 100_000;
    const DIFFERENCES: usize = 10;
    let started = Instant::now();
    let mut worst = Outcome {
        round_trips: 0,
        bytes: 0,
        found: 0,
    };
    for seed in [42, 43, 44] {
        let o = reconcile(ENTRIES, DIFFERENCES, seed)?;
        ensure!(
            o.found == DIFFERENCES,
            "reconciliation found {} of {DIFFERENCES} differences (seed {seed})",
            o.found
        );
        worst.round_trips = worst.round_trips.max(o.round_trips);
        worst.bytes = worst.bytes.max(o.bytes);
    }
    // Each differing record is named by its 32-byte subject key.
    let ids = DIFFERENCES * 32;
    let ratio = worst.bytes as f64 / ids as f64;
    eprintln!("reconciliation: 3 seeds in {:.1?}", started.elapsed());
    Ok(vec![Row {
        path: "reconciliation 100k, 10 differ".into(),
        ours: format!("{} B in {} round trips", worst.bytes, worst.round_trips),
        baseline: format!("{ids} B of differing ids"),
        ratio: Some(ratio),
        checks: vec![
            // The ratio is reported and guarded against regressions; the targets are
            // absolute (the minimum cannot be reached by any protocol that must also find
            // which ids differ).
            Check::new("ratio", ratio, Bound::AtMost(4096.0 / ids as f64)),
            Check::new("bytes", worst.bytes as f64, Bound::AtMost(4096.0)),
            Check::new("round trips", worst.round_trips as f64, Bound::AtMost(2.0)),
        ],
    }])
}
