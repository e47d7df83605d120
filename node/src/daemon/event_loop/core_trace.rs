//! The core's trace on disk (`GAIAMESH_CORE_TRACE=1`): every input the event loop gave
//! [`gaiamesh_core::node::NodeState`] and what it decided, as JSON lines in
//! `DATADIR/core-trace.jsonl`, peers as the hex of their PeerId bytes (so their order is the
//! PeerIds' order). A restarted node appends to the same file. `tests/tests/differential.rs`
//! replays it through the simulator's instantiation of the core
//! ([`gaiamesh_core::node::trace::replay`]).
//!
//! A debugging and testing aid, off by default. The lines are written by one thread of their
//! own, never on the event loop; if it falls behind by [`QUEUE`] batches the trace stops (a
//! trace with a hole would not replay) and says so in the log.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::mpsc::{SyncSender, TrySendError, sync_channel},
};

use gaiamesh_core::node::trace::Entry;
use libp2p::PeerId;
use tracing::warn;

/// The environment variable that turns the trace on.
pub(crate) const ENV: &str = "GAIAMESH_CORE_TRACE";
/// The file, in the data directory.
pub(crate) const FILE: &str = "core-trace.jsonl";
/// Batches queued for the writer thread at most.
const QUEUE: usize = 256;

/// The writer's end on the event loop.
pub(crate) struct CoreTrace {
    tx: SyncSender<Vec<Entry<String>>>,
    writer: std::thread::JoinHandle<()>,
}

impl CoreTrace {
    /// A writer appending to `DATADIR/core-trace.jsonl` when the environment asks for one.
    pub(crate) fn from_env(dir: &Path) -> Option<Self> {
        let on = std::env::var(ENV).is_ok_and(|v| !v.is_empty() && v != "0");
        on.then(|| Self::start(dir.join(FILE)))
    }

    fn start(path: PathBuf) -> Self {
        let (tx, rx) = sync_channel::<Vec<Entry<String>>>(QUEUE);
        let writer = std::thread::spawn(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
            let mut out = match file {
                Ok(f) => std::io::BufWriter::new(f),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot write the core trace");
                    return;
                }
            };
            for batch in rx {
                let lines = batch.iter().try_for_each(|e| {
                    serde_json::to_writer(&mut out, e).map_err(std::io::Error::other)?;
                    out.write_all(b"\n")
                });
                if let Err(e) = lines.and_then(|()| out.flush()) {
                    warn!(path = %path.display(), error = %e, "core trace stopped");
                    return;
                }
            }
        });
        Self { tx, writer }
    }

    /// Waits until everything handed over is written (blocking: call it off the loop).
    pub(crate) fn finish(self) {
        drop(self.tx);
        let _ = self.writer.join();
    }

    /// Hands `entries` to the writer; `false` when the trace had to stop.
    pub(crate) fn write(&self, entries: Vec<Entry<PeerId>>) -> bool {
        if entries.is_empty() {
            return true;
        }
        let batch = entries
            .into_iter()
            .map(|e| e.map_peers(|p| hex::encode(p.to_bytes())))
            .collect();
        match self.tx.try_send(batch) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                warn!("the core trace's writer fell behind; the trace stops here");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}
