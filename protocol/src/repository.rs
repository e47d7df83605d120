//! The federation's software repository: TUF-style metadata (root, targets, snapshot,
//! timestamp), each signed by a threshold of its role's keys, and the client workflow that
//! decides which release a node trusts.
//!
//! - [`metadata`]: the four roles, target names and descriptions, signing and encoding;
//! - [`TrustedRepository`]: the client state machine. The first root must be signed by a
//!   threshold of the genesis' repository keys; each later root by a threshold of the
//!   previous root's keys *and* of its own; roots are walked one version at a time.
//!   Timestamp → snapshot → targets are checked against each other's hashes, lengths and
//!   versions (mix-and-match), against the trusted versions (rollback) and against `now`
//!   (freeze); a rotation of the timestamp, snapshot or targets keys discards the trusted
//!   metadata of those roles (fast-forward recovery).
//! - [`publish`]: building and signing new versions.
//!
//! No I/O: the node fetches the bytes and passes `now`; the simulator and tests drive the
//! same code.
//!
//! ```
//! use gaiamesh_protocol::{identity::Keypair, time::UnixMillis,
//!     repository::{publish, TrustedRepository, metadata::{Category, TargetName}}};
//! # let (genesis, keys) = gaiamesh_protocol::testing::genesis_with_repository_keys(2, 1);
//! let now = UnixMillis(1_800_000_000_000);
//! let signers: Vec<&Keypair> = keys.iter().collect();
//! let mut repo = TrustedRepository::new(&genesis);
//! repo.update_root(publish::initial_root(&genesis, now, 365 * publish::DAY_MS, &signers).unwrap()).unwrap();
//! let name: TargetName = "identity/oidc-bridge@1.0.0".parse().unwrap();
//! let info = publish::target_info(b"component bytes", Category::Mandatory, None);
//! let bundle = publish::release(&repo, &[(name.clone(), info)], now, 30 * publish::DAY_MS, &signers).unwrap();
//! let mut node = TrustedRepository::new(&genesis);
//! node.apply(&bundle, now).unwrap();
//! assert!(node.targets(now).unwrap().targets.contains_key(&name));
//! ```

mod client;
pub mod metadata;
pub mod publish;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use client::{Applied, TrustedRepository};

use crate::{
    codec::{DecodeError, EncodeError},
    federation::ThresholdError,
    time::UnixMillis,
};

/// A blob's BLAKE3 hash: its content address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The first 8 bytes in hex, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.short())
    }
}

impl std::str::FromStr for BlobHash {
    type Err = crate::ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|_| crate::ParseError::new(s, "a BLAKE3 hash (64 hex digits)"))?;
        Ok(Self(out))
    }
}

/// The four TUF roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Keys of every role; signed by the previous root's keys and its own.
    Root,
    /// What the release contains.
    Targets,
    /// Which targets version is current.
    Snapshot,
    /// Which snapshot is current; short expiry against freeze attacks.
    Timestamp,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        })
    }
}

/// Why repository metadata is refused. Nothing already trusted changes when an update
/// fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    /// The bytes do not decode.
    #[error("{role} metadata: {source}")]
    Decode {
        /// Which role.
        role: Role,
        /// The decoder's error.
        source: DecodeError,
    },
    /// The metadata cannot be encoded (too large).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Not signed by enough keys of the role.
    #[error("{role} v{version}: {source}")]
    Signatures {
        /// Which role.
        role: Role,
        /// The version refused.
        version: u64,
        /// The threshold check's error.
        source: ThresholdError,
    },
    /// Metadata of another federation.
    #[error("{role} metadata belongs to another federation")]
    WrongFederation {
        /// Which role.
        role: Role,
    },
    /// A root that is not the next version of the trusted one.
    #[error(
        "root v{got} is not the next root version (trusted v{trusted}; roots are applied one at a time)"
    )]
    RootVersion {
        /// Trusted root version (0: none yet).
        trusted: u64,
        /// Version received.
        got: u64,
    },
    /// A version older than the trusted one (rollback attack).
    #[error("{role} v{got} is older than the trusted v{trusted} (rollback refused)")]
    Rollback {
        /// Which role.
        role: Role,
        /// Trusted version.
        trusted: u64,
        /// Version received.
        got: u64,
    },
    /// The same version with different content.
    #[error("{role} v{version} differs from the trusted metadata of the same version")]
    Equivocation {
        /// Which role.
        role: Role,
        /// The version.
        version: u64,
    },
    /// Expired metadata (freeze attack, or a publisher that stopped signing).
    #[error("{role} v{version} expired at {expires} (now {now})")]
    Expired {
        /// Which role.
        role: Role,
        /// Its version.
        version: u64,
        /// When it expired.
        expires: UnixMillis,
        /// The time of the check.
        now: UnixMillis,
    },
    /// Metadata that does not match what the role above says (mix-and-match).
    #[error(
        "{role} v{got_version} ({got_length} bytes, {got_hash}) is not the one the {by} names: v{version}, {length} bytes, {hash}"
    )]
    Mismatch {
        /// Which role.
        role: Role,
        /// The role that names it.
        by: Role,
        /// Named version, length and hash.
        version: u64,
        /// Named length.
        length: u64,
        /// Named hash.
        hash: BlobHash,
        /// Version received.
        got_version: u64,
        /// Length received.
        got_length: u64,
        /// Hash received.
        got_hash: BlobHash,
    },
    /// A role needed first is missing (e.g. a snapshot before any timestamp).
    #[error("no trusted {needed} yet: {role} metadata cannot be checked")]
    Missing {
        /// What was offered.
        role: Role,
        /// What must be trusted first.
        needed: Role,
    },
    /// A field is invalid (duplicate keys, bad threshold, a bad target name or size…).
    #[error("{role} metadata: {reason}")]
    Invalid {
        /// Which role.
        role: Role,
        /// What is wrong, with the field.
        reason: String,
    },
}
