//! # gaiamesh-node
//!
//! The `gaiamesh` binary and its library: key storage, data directories, federation tooling,
//! the command-line interface and the node daemon; protocol rules live in `gaiamesh-protocol`
//! and `gaiamesh-directory`.
//!
//! Main pieces:
//! - [`keystore`]: secret keys on disk, mode 0600, refused when readable by others.
//! - [`datadir::DataDir`]: the files of one node (`key`, `config.toml`, `genesis.toml`,
//!   `membership.cred`).
//! - [`federation_dir::FederationDir`]: the files of a federation's authorities.
//! - [`cli`]: the `gaiamesh` commands; [`api_client`]: a client of a running node's API.
//! - [`blobs::BlobStore`]: the repository's content-addressed blobs, verified streaming
//!   (bao, 16 KiB chunk groups), resumable downloads, pinning and garbage collection.
//! - [`daemon`]: `gaiamesh run` — the libp2p swarm, its event loop and the HTTP API.

/// `gaiamesh --version` and the API's `status.version`: the crate version, the git revision
/// and the build profile (`0.1.0 (rev 1a2b3c4d5e6f, release)`; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (rev ",
    env!("GAIAMESH_GIT_REV"),
    ", ",
    env!("GAIAMESH_BUILD_PROFILE"),
    ")"
);

pub mod api_client;
pub mod backup;
pub mod blobs;
pub mod cli;
pub mod cpu;
pub mod daemon;
pub mod datadir;
pub mod federation_dir;
pub mod keystore;

/// Milliseconds since the Unix epoch, from the system clock. The only place the CLI reads it.
pub fn now() -> gaiamesh_protocol::time::UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    gaiamesh_protocol::time::UnixMillis(ms)
}
