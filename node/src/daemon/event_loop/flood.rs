//! Fault injection (`[api] fault_injection = true`, `POST /api/v1/debug/flood`): the node
//! floods the directory topic with invalid messages, as a misbehaving member would, so a
//! federation (and the testbed) can see its defences work: every receiver rejects them,
//! gossipsub's score of the sender sinks, and the node cores disconnect and ban it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::info;

use super::EventLoop;

/// The event loop's tick, over which a second's messages are spread.
const TICKS_PER_SECOND: u32 = 4;

/// A flood in progress (or ended: it stays for the status).
#[derive(Debug)]
pub(crate) struct Flood {
    per_tick: u32,
    until: Instant,
    sent: u64,
    refused: u64,
    running: bool,
}

/// `flood` in `GET /api/v1/status`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FloodStatus {
    /// Messages handed to gossipsub.
    pub sent: u64,
    /// Messages gossipsub would not publish (no peer left to send to, mostly).
    pub refused: u64,
    /// Whether it is still running.
    pub running: bool,
}

impl Flood {
    pub(crate) fn new(per_second: u32, seconds: u32, now: Instant) -> Self {
        Self {
            per_tick: per_second.div_ceil(TICKS_PER_SECOND),
            until: now + Duration::from_secs(u64::from(seconds)),
            sent: 0,
            refused: 0,
            running: true,
        }
    }

    pub(crate) fn status(&self) -> FloodStatus {
        FloodStatus {
            sent: self.sent,
            refused: self.refused,
            running: self.running,
        }
    }
}

impl EventLoop {
    /// Publishes this tick's share of the flood: unique invalid messages (gossipsub would
    /// drop repeats as duplicates before they reach validation).
    pub(super) fn flood_tick(&mut self) {
        let Some(f) = self.flood.as_mut() else {
            return;
        };
        if !f.running {
            return;
        }
        if Instant::now() >= f.until {
            f.running = false;
            info!(sent = f.sent, refused = f.refused, "flood ended");
            return;
        }
        let topic = self.topic.clone();
        for _ in 0..f.per_tick {
            let n = f.sent + f.refused;
            let body = format!("gaiamesh flood message {n}: not a self-description").into_bytes();
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic.clone(), body)
            {
                Ok(_) => f.sent += 1,
                Err(_) => f.refused += 1,
            }
        }
    }
}
