//! Building and signing repository metadata: the first root from the genesis, root
//! rotations, releases (targets + snapshot + timestamp) and timestamp refreshes.

use super::{
    BlobHash, RepoError, Role, TrustedRepository,
    metadata::{
        Bundle, Category, RoleKeys, Root, Signed, Snapshot, TargetCustom, TargetInfo, TargetName,
        Targets, Timestamp,
    },
};
use crate::{federation::Genesis, identity::Keypair, time::UnixMillis};

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// Root v1: every role held by the genesis' repository keys, signed by `keys`.
pub fn initial_root(
    genesis: &Genesis,
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Signed<Root>, RepoError> {
    let federation = genesis.id().map_err(|e| RepoError::Invalid {
        role: Role::Root,
        reason: format!("genesis: {e}"),
    })?;
    let roles = RoleKeys::from(&genesis.repository);
    Signed::sign(
        Root {
            federation,
            version: 1,
            expires: now.plus_ms(validity_ms),
            root: roles.clone(),
            targets: roles.clone(),
            snapshot: roles.clone(),
            timestamp: roles,
        },
        keys,
    )
}

/// The next root with new role keys. `keys` must include a threshold of the old root keys
/// and of the new ones.
pub fn rotate_root(
    prev: &Root,
    roles: [RoleKeys; 4],
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Signed<Root>, RepoError> {
    let [root, targets, snapshot, timestamp] = roles;
    Signed::sign(
        Root {
            federation: prev.federation,
            version: prev.version + 1,
            expires: now.plus_ms(validity_ms),
            root,
            targets,
            snapshot,
            timestamp,
        },
        keys,
    )
}

/// The description of a blob as a target.
pub fn target_info(bytes: &[u8], category: Category, platform: Option<String>) -> TargetInfo {
    TargetInfo {
        length: bytes.len() as u64,
        custom: TargetCustom {
            category,
            blake3: BlobHash::of(bytes),
            platform,
        },
    }
}

fn current_root(repo: &TrustedRepository) -> Result<&Root, RepoError> {
    repo.root().map(Signed::body).ok_or(RepoError::Missing {
        role: Role::Targets,
        needed: Role::Root,
    })
}

/// A new release: the trusted targets plus `add` (replacing same-named entries), with
/// targets, snapshot and timestamp one version up, all valid for `validity_ms`, signed by
/// `keys`. The bundle carries the whole root chain.
pub fn release(
    repo: &TrustedRepository,
    add: &[(TargetName, TargetInfo)],
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Bundle, RepoError> {
    release_replacing(repo, add, &[], now, validity_ms, keys)
}

/// [`release`] that also drops the targets in `remove` (superseded versions; nodes delete
/// blobs a release no longer names).
pub fn release_replacing(
    repo: &TrustedRepository,
    add: &[(TargetName, TargetInfo)],
    remove: &[TargetName],
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Bundle, RepoError> {
    build(repo, repo, add, remove, now, validity_ms, keys)
}

/// After a root rotation that changed the keys (the client then drops the release the
/// old keys signed): the release `before` trusted, re-signed under `repo`'s new root with
/// `keys`, each role one version above `before`'s so no node sees a rollback.
pub fn resign(
    before: &TrustedRepository,
    repo: &TrustedRepository,
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Bundle, RepoError> {
    build(repo, before, &[], &[], now, validity_ms, keys)
}

/// A release under `repo`'s root, continuing `base`'s targets and versions.
fn build(
    repo: &TrustedRepository,
    base: &TrustedRepository,
    add: &[(TargetName, TargetInfo)],
    remove: &[TargetName],
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Bundle, RepoError> {
    let root = current_root(repo)?;
    let prev = base.trusted_targets().map(Signed::body);
    let mut targets = prev.map(|t| t.targets.clone()).unwrap_or_default();
    for name in remove {
        targets.remove(name);
    }
    for (name, info) in add {
        targets.insert(name.clone(), info.clone());
    }
    let expires = now.plus_ms(validity_ms);
    let targets = Signed::sign(
        Targets {
            federation: root.federation,
            version: prev.map_or(1, |t| t.version + 1),
            expires,
            targets,
        },
        keys,
    )?;
    let snapshot = Signed::sign(
        Snapshot {
            federation: root.federation,
            version: base.snapshot().map_or(1, |s| s.body().version + 1),
            expires,
            targets: targets.meta_ref(),
        },
        keys,
    )?;
    let timestamp = sign_timestamp(repo, base, &snapshot, expires, keys)?;
    let mut bundle = repo.bundle(0);
    bundle.targets = Some(targets.bytes);
    bundle.snapshot = Some(snapshot.bytes);
    bundle.timestamp = Some(timestamp.bytes);
    Ok(bundle)
}

/// A new timestamp for the trusted snapshot (to extend a release's life without changing
/// it; the timestamp has the shortest expiry against freeze attacks).
pub fn refresh_timestamp(
    repo: &TrustedRepository,
    now: UnixMillis,
    validity_ms: u64,
    keys: &[&Keypair],
) -> Result<Bundle, RepoError> {
    let snapshot = repo.snapshot().ok_or(RepoError::Missing {
        role: Role::Timestamp,
        needed: Role::Snapshot,
    })?;
    let timestamp = sign_timestamp(repo, repo, snapshot, now.plus_ms(validity_ms), keys)?;
    let mut bundle = repo.bundle(0);
    bundle.timestamp = Some(timestamp.bytes);
    Ok(bundle)
}

fn sign_timestamp(
    repo: &TrustedRepository,
    base: &TrustedRepository,
    snapshot: &Signed<Snapshot>,
    expires: UnixMillis,
    keys: &[&Keypair],
) -> Result<Signed<Timestamp>, RepoError> {
    let root = current_root(repo)?;
    Signed::sign(
        Timestamp {
            federation: root.federation,
            version: base.timestamp().map_or(1, |t| t.body().version + 1),
            expires,
            snapshot: snapshot.meta_ref(),
        },
        keys,
    )
}
