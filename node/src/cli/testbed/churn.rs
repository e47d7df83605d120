//! The churn step: round after round, the nodes killed in the previous round come back and
//! a share of the others each publish an update and are killed with SIGKILL as soon as it is
//! acknowledged, while node0 keeps publishing. Afterwards every node must hold every
//! acknowledged update: an acknowledgement that a SIGKILL can undo is a lost update.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::Result;
use gaiamesh_testbed::scenario::Churn;
use rand::{SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{Bed, measure};

/// What a churn step measured.
#[derive(Debug, Serialize)]
pub(super) struct ChurnFigures {
    /// Rounds run.
    pub(super) rounds: u32,
    /// Nodes killed (with SIGKILL) over all rounds.
    pub(super) kills: usize,
    /// Updates acknowledged by their publisher (node0's and the victims' last words).
    pub(super) acknowledged: usize,
    /// Seconds from the last restart until every node held every acknowledged update;
    /// `None`: not within the wait.
    pub(super) converged_s: Option<f64>,
    /// Nodes that still missed an acknowledged update when the wait ended.
    pub(super) missing: Vec<usize>,
}

impl ChurnFigures {
    pub(super) fn line(&self) -> String {
        let end = match self.converged_s {
            Some(s) => format!("every node holds every one {s:.1} s after the last restart"),
            None => format!("not converged; nodes {:?} still miss updates", self.missing),
        };
        format!(
            "{} rounds, {} kills, {} acknowledged updates; {end}",
            self.rounds, self.kills, self.acknowledged
        )
    }
}

/// Runs `c`; `newest` learns every acknowledged update.
pub(super) fn run(
    bed: &mut Bed,
    c: &Churn,
    seed: u64,
    newest: &mut BTreeMap<usize, (String, u64)>,
) -> Result<ChurnFigures> {
    let n = bed.members.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let subjects: Vec<String> = (0..n)
        .map(|i| bed.status(i).map(|s| s.peer_id).unwrap_or_default())
        .collect();
    let (mut kills, mut acknowledged) = (0, 0);
    let mut down: Vec<usize> = Vec::new();
    let mut acknowledge = |i: usize, seq: u64, newest: &mut BTreeMap<usize, (String, u64)>| {
        newest.insert(i, (subjects[i].clone(), seq));
        acknowledged += 1;
    };
    for round in 0..c.rounds {
        let started = Instant::now();
        restart(bed, &down)?;
        let mut candidates: Vec<usize> = (1..n).filter(|i| !down.contains(i)).collect();
        candidates.shuffle(&mut rng);
        candidates.truncate(c.victims(n));
        for &i in &candidates {
            // The last word: acknowledged, then killed at once.
            if let Ok(seq) = super::republish(bed, i) {
                acknowledge(i, seq, newest);
            }
            bed.kill(i);
            kills += 1;
        }
        down = candidates;
        eprintln!("  round {}/{}: killed {down:?}", round + 1, c.rounds);
        while started.elapsed() < c.every {
            let tick = Instant::now();
            if let Ok(seq) = super::republish(bed, 0) {
                acknowledge(0, seq, newest);
            }
            let left = c.every.saturating_sub(started.elapsed());
            std::thread::sleep(c.publish_every.saturating_sub(tick.elapsed()).min(left));
        }
    }
    restart(bed, &down)?;
    let h = measure::heal(bed, newest, c.timeout)?;
    Ok(ChurnFigures {
        rounds: c.rounds,
        kills,
        acknowledged,
        converged_s: h.converged_s,
        missing: h.missing,
    })
}

fn restart(bed: &mut Bed, nodes: &[usize]) -> Result<()> {
    for &i in nodes {
        bed.start(i)?;
    }
    for &i in nodes {
        bed.wait_api(i, Duration::from_secs(30))?;
    }
    Ok(())
}
