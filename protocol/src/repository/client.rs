//! The repository client: which metadata a node trusts, and the TUF update workflow.

use super::{
    BlobHash, RepoError, Role,
    metadata::{
        Bundle, MetaRef, RoleKeys, RoleMetadata, Root, Signed, Snapshot, Targets, Timestamp,
    },
};
use crate::{
    federation::{FederationId, Genesis},
    limits::MAX_ROOT_CHAIN,
    time::UnixMillis,
};

/// What applying a bundle changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Root versions newly trusted.
    pub roots: Vec<u64>,
    /// The newly trusted timestamp version, if it changed.
    pub timestamp: Option<u64>,
    /// The newly trusted snapshot version, if it changed.
    pub snapshot: Option<u64>,
    /// The newly trusted targets version, if it changed.
    pub targets: Option<u64>,
}

impl Applied {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        !self.roots.is_empty()
            || self.timestamp.is_some()
            || self.snapshot.is_some()
            || self.targets.is_some()
    }
}

/// The metadata a node trusts. Every update either succeeds completely or leaves the
/// trusted state as it was.
#[derive(Clone, Debug)]
pub struct TrustedRepository {
    federation: FederationId,
    /// The genesis' repository keys: they sign root v1.
    anchor: RoleKeys,
    /// Every trusted root, oldest first (served to peers walking the chain).
    roots: Vec<Signed<Root>>,
    timestamp: Option<Signed<Timestamp>>,
    snapshot: Option<Signed<Snapshot>>,
    targets: Option<Signed<Targets>>,
}

impl TrustedRepository {
    /// A client that trusts only the genesis: the first root it accepts must be signed by a
    /// threshold of the genesis' repository keys.
    ///
    /// # Panics
    /// Never: a genesis that cannot be hashed has been refused when it was loaded; its id
    /// falls back to zeros so that nothing verifies against it.
    pub fn new(genesis: &Genesis) -> Self {
        Self {
            federation: genesis.id().unwrap_or(FederationId([0; 32])),
            anchor: RoleKeys::from(&genesis.repository),
            roots: Vec::new(),
            timestamp: None,
            snapshot: None,
            targets: None,
        }
    }

    /// The newest trusted root.
    pub fn root(&self) -> Option<&Signed<Root>> {
        self.roots.last()
    }

    /// The trusted root version (0: none).
    pub fn root_version(&self) -> u64 {
        self.root().map_or(0, |r| r.body().version)
    }

    /// The trusted timestamp.
    pub fn timestamp(&self) -> Option<&Signed<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot.
    pub fn snapshot(&self) -> Option<&Signed<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// The trusted targets, without the freshness check (see [`Self::targets`]).
    pub fn trusted_targets(&self) -> Option<&Signed<Targets>> {
        self.targets.as_ref()
    }

    /// The current release: the targets, if root, timestamp, snapshot and targets are all
    /// unexpired at `now` (a frozen repository is refused, not silently used).
    pub fn targets(&self, now: UnixMillis) -> Result<&Targets, RepoError> {
        let root = self.root().ok_or(RepoError::Missing {
            role: Role::Targets,
            needed: Role::Root,
        })?;
        root.check_fresh(now)?;
        let ts = self.timestamp.as_ref().ok_or(RepoError::Missing {
            role: Role::Targets,
            needed: Role::Timestamp,
        })?;
        ts.check_fresh(now)?;
        let sn = self.snapshot.as_ref().ok_or(RepoError::Missing {
            role: Role::Targets,
            needed: Role::Snapshot,
        })?;
        sn.check_fresh(now)?;
        let t = self.targets.as_ref().ok_or(RepoError::Missing {
            role: Role::Targets,
            needed: Role::Targets,
        })?;
        t.check_fresh(now)?;
        Ok(t.body())
    }

    /// Everything trusted, for a peer to catch up with (roots after `after_root`).
    pub fn bundle(&self, after_root: u64) -> Bundle {
        Bundle {
            roots: self
                .roots
                .iter()
                .filter(|r| r.body().version > after_root)
                .take(MAX_ROOT_CHAIN)
                .map(|r| r.bytes.clone())
                .collect(),
            timestamp: self.timestamp.as_ref().map(|m| m.bytes.clone()),
            snapshot: self.snapshot.as_ref().map(|m| m.bytes.clone()),
            targets: self.targets.as_ref().map(|m| m.bytes.clone()),
        }
    }

    fn apply_inner(
        &mut self,
        bundle: &Bundle,
        now: Option<UnixMillis>,
    ) -> Result<Applied, RepoError> {
        let mut applied = Applied::default();
        if bundle.roots.len() > MAX_ROOT_CHAIN {
            return Err(RepoError::Invalid {
                role: Role::Root,
                reason: format!(
                    "{} root versions in one bundle, at most {MAX_ROOT_CHAIN}",
                    bundle.roots.len()
                ),
            });
        }
        for bytes in &bundle.roots {
            let root = Signed::<Root>::decode(bytes)?;
            if root.body().version <= self.root_version() {
                continue;
            }
            self.update_root(root)?;
            applied.roots.push(self.root_version());
        }
        if let Some(bytes) = &bundle.timestamp {
            applied.timestamp = self.timestamp_inner(bytes, now)?;
        }
        if let Some(bytes) = &bundle.snapshot {
            applied.snapshot = self.snapshot_inner(bytes, now)?;
        }
        if let Some(bytes) = &bundle.targets {
            applied.targets = self.targets_inner(bytes, now)?;
        }
        Ok(applied)
    }

    fn check_federation<T: RoleMetadata>(&self, m: &Signed<T>) -> Result<(), RepoError> {
        if m.body().federation() != self.federation {
            return Err(RepoError::WrongFederation { role: T::ROLE });
        }
        Ok(())
    }

    /// Trusts the next root version: signed by a threshold of the trusted root's root keys
    /// (the genesis' for v1) and of its own. Expiry is not checked here, so that a node
    /// that was offline can walk through roots that have expired since; [`Self::targets`]
    /// and the other updates check the newest root's expiry.
    pub fn update_root(&mut self, root: Signed<Root>) -> Result<(), RepoError> {
        self.check_federation(&root)?;
        let trusted = self.root_version();
        let got = root.body().version;
        if got != trusted + 1 {
            return Err(RepoError::RootVersion { trusted, got });
        }
        let old_keys = self.root().map_or(&self.anchor, |r| &r.body().root);
        root.verify(old_keys)?;
        root.verify(&root.body().root)?;
        // Fast-forward recovery: when a role's keys change, metadata signed by the old
        // keys is no longer trusted (its versions may have been pushed up by an attacker
        // who held the old keys).
        if let Some(old) = self.root().map(|r| r.body().clone()) {
            let new = root.body();
            if old.timestamp != new.timestamp {
                self.timestamp = None;
            }
            if old.snapshot != new.snapshot {
                self.timestamp = None;
                self.snapshot = None;
            }
            if old.targets != new.targets {
                self.snapshot = None;
                self.targets = None;
            }
        }
        if self.roots.len() >= MAX_ROOT_CHAIN * 16 {
            self.roots.remove(0);
        }
        self.roots.push(root);
        Ok(())
    }

    fn fresh_root(&self, role: Role, now: Option<UnixMillis>) -> Result<&Root, RepoError> {
        let root = self.root().ok_or(RepoError::Missing {
            role,
            needed: Role::Root,
        })?;
        fresh(root, now)?;
        Ok(root.body())
    }

    /// Reloads state this node verified and stored before: every signature, hash, length
    /// and version rule is checked again, but not expiry (a node restarted after a release
    /// expired must still know it, to refuse rollbacks; [`Self::targets`] still refuses
    /// expired metadata).
    pub fn load(&mut self, bundle: &Bundle) -> Result<Applied, RepoError> {
        self.apply_inner(bundle, None)
    }

    /// Applies a bundle: roots newer than the trusted one, one version at a time, then
    /// timestamp, snapshot and targets. Stops at the first refusal, keeping what was
    /// accepted before it (every accepted part was fully checked).
    pub fn apply(&mut self, bundle: &Bundle, now: UnixMillis) -> Result<Applied, RepoError> {
        self.apply_inner(bundle, Some(now))
    }

    /// Trusts a newer timestamp. Returns its version when it changed, `None` when it is
    /// the one already trusted.
    pub fn update_timestamp(
        &mut self,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<Option<u64>, RepoError> {
        self.timestamp_inner(bytes, Some(now))
    }

    /// Trusts the snapshot the trusted timestamp names.
    pub fn update_snapshot(
        &mut self,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<Option<u64>, RepoError> {
        self.snapshot_inner(bytes, Some(now))
    }

    /// Trusts the targets the trusted snapshot names.
    pub fn update_targets(
        &mut self,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<Option<u64>, RepoError> {
        self.targets_inner(bytes, Some(now))
    }

    fn timestamp_inner(
        &mut self,
        bytes: &[u8],
        now: Option<UnixMillis>,
    ) -> Result<Option<u64>, RepoError> {
        let root = self.fresh_root(Role::Timestamp, now)?;
        let ts = Signed::<Timestamp>::decode(bytes)?;
        self.check_federation(&ts)?;
        ts.verify(&root.timestamp)?;
        let got = ts.body().version;
        if let Some(old) = &self.timestamp {
            let trusted = old.body().version;
            if got < trusted {
                return Err(RepoError::Rollback {
                    role: Role::Timestamp,
                    trusted,
                    got,
                });
            }
            if got == trusted {
                return if old.bytes == ts.bytes {
                    Ok(None)
                } else {
                    Err(RepoError::Equivocation {
                        role: Role::Timestamp,
                        version: got,
                    })
                };
            }
            let (old_sn, new_sn) = (old.body().snapshot.version, ts.body().snapshot.version);
            if new_sn < old_sn {
                return Err(RepoError::Rollback {
                    role: Role::Snapshot,
                    trusted: old_sn,
                    got: new_sn,
                });
            }
        }
        fresh(&ts, now)?;
        self.timestamp = Some(ts);
        Ok(Some(got))
    }

    fn snapshot_inner(
        &mut self,
        bytes: &[u8],
        now: Option<UnixMillis>,
    ) -> Result<Option<u64>, RepoError> {
        // Re-offering the trusted bytes is a no-op, not a trust decision (gossip repeats).
        if self.snapshot.as_ref().is_some_and(|s| s.bytes == bytes) {
            return Ok(None);
        }
        let root = self.fresh_root(Role::Snapshot, now)?;
        let ts = self.timestamp.as_ref().ok_or(RepoError::Missing {
            role: Role::Snapshot,
            needed: Role::Timestamp,
        })?;
        fresh(ts, now)?;
        let named = ts.body().snapshot;
        check_ref(Role::Snapshot, Role::Timestamp, named, bytes, None)?;
        let sn = Signed::<Snapshot>::decode(bytes)?;
        check_ref(
            Role::Snapshot,
            Role::Timestamp,
            named,
            bytes,
            Some(sn.body().version),
        )?;
        self.check_federation(&sn)?;
        sn.verify(&root.snapshot)?;
        if let Some(old) = &self.snapshot {
            let (trusted, got) = (old.body().targets.version, sn.body().targets.version);
            if got < trusted {
                return Err(RepoError::Rollback {
                    role: Role::Targets,
                    trusted,
                    got,
                });
            }
        }
        fresh(&sn, now)?;
        let v = sn.body().version;
        self.snapshot = Some(sn);
        Ok(Some(v))
    }

    fn targets_inner(
        &mut self,
        bytes: &[u8],
        now: Option<UnixMillis>,
    ) -> Result<Option<u64>, RepoError> {
        if self.targets.as_ref().is_some_and(|t| t.bytes == bytes) {
            return Ok(None);
        }
        let root = self.fresh_root(Role::Targets, now)?;
        let sn = self.snapshot.as_ref().ok_or(RepoError::Missing {
            role: Role::Targets,
            needed: Role::Snapshot,
        })?;
        fresh(sn, now)?;
        let named = sn.body().targets;
        check_ref(Role::Targets, Role::Snapshot, named, bytes, None)?;
        let t = Signed::<Targets>::decode(bytes)?;
        check_ref(
            Role::Targets,
            Role::Snapshot,
            named,
            bytes,
            Some(t.body().version),
        )?;
        self.check_federation(&t)?;
        t.verify(&root.targets)?;
        fresh(&t, now)?;
        let v = t.body().version;
        self.targets = Some(t);
        Ok(Some(v))
    }
}

/// The expiry check, skipped when reloading (`now` is `None`).
fn fresh<T: RoleMetadata>(m: &Signed<T>, now: Option<UnixMillis>) -> Result<(), RepoError> {
    match now {
        Some(now) => m.check_fresh(now),
        None => Ok(()),
    }
}

/// Checks `bytes` (of `version`, once decoded) against what the role above names. Length and
/// hash are checked before decoding, so oversize or substituted metadata is refused first.
fn check_ref(
    role: Role,
    by: Role,
    named: MetaRef,
    bytes: &[u8],
    version: Option<u64>,
) -> Result<(), RepoError> {
    let got_hash = BlobHash::of(bytes);
    let got_length = bytes.len() as u64;
    let got_version = version.unwrap_or(named.version);
    if got_length != named.length || got_hash != named.blake3 || got_version != named.version {
        return Err(RepoError::Mismatch {
            role,
            by,
            version: named.version,
            length: named.length,
            hash: named.blake3,
            got_version,
            got_length,
            got_hash,
        });
    }
    Ok(())
}
