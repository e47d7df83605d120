//! # gaiamesh-testbed
//!
//! A real-network testbed: every node of a federation in a network namespace of its own,
//! running the real `gaiamesh run`, the namespaces joined only through a userspace router
//! that applies European latencies, jitter, loss and partitions ([`router`], [`link`]) —
//! this kernel has no `sch_netem`, so the link emulation cannot come from `tc`. The
//! `gaiamesh testbed` command (in `node/src/cli/testbed.rs`) sets up the federation, runs a
//! [`scenario::Scenario`]'s steps and measures; this crate holds what needs no node:
//! namespaces, the router and the scenario format.
//!
//! Needs root and `/dev/net/tun` ([`netns::check`] says which is missing). Namespaces are
//! named `gmtb-…`; `gaiamesh testbed clean` removes any a killed run left behind.

pub mod link;
pub mod nat;
pub mod netns;
pub mod router;
pub mod scenario;

/// What can go wrong setting up or running a testbed.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// Namespaces need root.
    #[error("the testbed needs root (it creates network namespaces and TUN devices)")]
    NotRoot,
    /// Namespaces or TUN are unavailable.
    #[error("network namespaces are unavailable here: {0}")]
    NoNamespaces(String),
    /// An `ip` command failed.
    #[error("`{command}` failed: {message}")]
    Command {
        /// The command.
        command: String,
        /// What it said.
        message: String,
    },
    /// Entering a namespace failed.
    #[error("cannot enter namespace {namespace}: {message}")]
    Enter {
        /// The namespace.
        namespace: String,
        /// Why.
        message: String,
    },
    /// The router could not start.
    #[error("the router: {0}")]
    Router(String),
    /// The scenario is unusable.
    #[error("{path}: invalid testbed scenario:\n{}", .problems.join("\n"))]
    Scenario {
        /// The file (or key).
        path: String,
        /// One per line, each naming its key.
        problems: Vec<String>,
    },
}
