//! # gaiamesh-core
//!
//! The node core: what a gaiamesh node decides, with no I/O, so that the daemon (`node/`)
//! and the simulator (`sim/`) run the same decisions (DESIGN §9). It holds:
//!
//! - [`Params`]: every protocol parameter the daemon and the simulator share — gossip mesh
//!   degrees and heartbeat, anti-entropy and presence intervals, admission deadline and bans,
//!   Kademlia's k and α, the repository's segment size and requests in flight. The daemon
//!   configures libp2p and its timers from it; the simulator's scenario defaults are it.
//!   Before, the two kept their own copies, which had drifted (mesh_n_low 4 vs 5, heartbeat
//!   500 ms vs 1 s, 8 vs 4 segment requests in flight).
//! - [`admission::verdict`]: whether a peer that connected may join, from its key and the
//!   credential it presented. The daemon asks it for every peer; the simulator for every
//!   outsider that tries to join.
//! - [`ingest::GossipVerdict`]: what a node does with a gossiped record once the merge rules
//!   decided (forward, drop, or reject and penalise the sender). The daemon reports it to
//!   gossipsub; the simulator forwards and graylists by it.
//! - [`node::NodeState`]: the node's peers and periodic work — admission deadlines, what
//!   follows an admission, anti-entropy (when, and with whom), presence, DHT re-publication
//!   and the coalesced re-announcement — as actions for the daemon's event loop and the
//!   simulator to carry out. [`node::trace`] records what a core was told and decided and
//!   replays it: a daemon's trace replays to the same decisions in the simulator's core.
//! - [`pieces`]: the repository's piece scheduler (which segment from which provider,
//!   hedging, strikes, busy backoff) and super-seeding. The daemon's multi-source download
//!   and the simulator's swarm both run it.
//!
//! ```
//! let p = gaiamesh_core::Params::default();
//! assert!(p.gossip.mesh_n_low <= p.gossip.mesh_n && p.gossip.mesh_n <= p.gossip.mesh_n_high);
//! println!("{}", p.summary());
//! ```

pub mod admission;
pub mod ingest;
pub mod node;
mod params;
pub mod pieces;

pub use params::{
    AdmissionParams, GossipParams, KademliaParams, Params, RepositoryParams, SyncParams,
};
