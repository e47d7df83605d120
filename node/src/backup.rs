//! Backups of a node's data dir, taken while the node runs, and their restore on a new host.
//!
//! A backup is a tar archive: a manifest (`gaiamesh-backup.json`), the node's small files
//! (key, configuration, genesis, credential, self-description, repository and revocation
//! state, asset registry) and consistent snapshots of its catalogue (`db.redb`) and audit log
//! (`audit.redb`), each copied within one read transaction while writers go on. Left out:
//! the DHT cache and the blob store (the federation holds both: records are re-published and
//! blobs fetched again after a restore), and the data of offered assets, which lives where
//! `assets.json` points, outside the data dir.
//!
//! Restoring checks what it wrote: the key must be the manifest's PeerId, the catalogue must
//! hold the manifest's entry count and the audit log must verify under the key.

use std::{
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use gaiamesh_directory::store::{RedbStore, Store, StoreError};
use gaiamesh_exchange::audit::{AuditError, AuditLog};
use serde::{Deserialize, Serialize};

use crate::{datadir::DataDir, keystore};

/// The manifest's name inside the archive.
pub const MANIFEST: &str = "gaiamesh-backup.json";
/// The archive format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Small files copied as they are, when present.
const FILES: &[&str] = &[
    "key",
    "config.toml",
    "genesis.toml",
    "membership.cred",
    "sd.toml",
    "sd.seq",
    "repository.bundle",
    "revocations.toml",
    "assets.json",
];
const CATALOGUE: &str = "db.redb";
const AUDIT: &str = "audit.redb";
/// The largest small file a restore accepts (a key or a config is a few KiB).
const SMALL_FILE_LIMIT: u64 = 16 * 1024 * 1024;

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The node's PeerId.
    pub peer_id: String,
    /// When the snapshots were taken (Unix ms).
    pub created_at_ms: u64,
    /// `gaiamesh --version` of the node that wrote it.
    pub version: String,
    /// The files in the archive besides the manifest.
    pub files: Vec<String>,
    /// Catalogue entries in the snapshot.
    pub directory_entries: u64,
    /// Audit log entries in the snapshot.
    pub audit_entries: u64,
}

/// Why a backup or a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The catalogue could not be read or written.
    #[error("catalogue: {0}")]
    Catalogue(#[from] StoreError),
    /// The audit log could not be read, written or verified.
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// The node key could not be read.
    #[error("node key: {0}")]
    Key(#[from] keystore::KeystoreError),
    /// The archive is not a backup this build can restore.
    #[error("not a gaiamesh backup: {0}")]
    Format(String),
    /// Restoring would overwrite a node.
    #[error("{0} already holds a node key; restore into an empty directory")]
    Exists(PathBuf),
    /// What was restored does not match the manifest.
    #[error("the restored data does not match the backup's manifest: {0}")]
    Mismatch(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes a backup of `dir` to `out` (replaced atomically once complete). `catalogue` and
/// `audit` are the node's open databases (a running node's own handles, or opened by the
/// caller when no node runs).
pub fn write(
    dir: &DataDir,
    catalogue: &RedbStore,
    audit: &AuditLog,
    out: &Path,
    now_ms: u64,
) -> Result<Manifest, BackupError> {
    let key = keystore::read(&dir.key_path())?;
    let work = tempfile::Builder::new()
        .prefix(".backup-")
        .tempdir_in(out.parent().unwrap_or(Path::new(".")))
        .map_err(io(out))?;
    let directory_entries = catalogue.snapshot_to(&work.path().join(CATALOGUE))?;
    let audit_entries = audit.snapshot_to(&work.path().join(AUDIT))?;
    let mut files: Vec<String> = FILES
        .iter()
        .filter(|f| dir.root().join(f).is_file())
        .map(|f| (*f).to_owned())
        .collect();
    files.push(CATALOGUE.to_owned());
    files.push(AUDIT.to_owned());
    let manifest = Manifest {
        format: FORMAT,
        peer_id: key.public().to_peer_id().to_string(),
        created_at_ms: now_ms,
        version: crate::VERSION.to_owned(),
        files,
        directory_entries,
        audit_entries,
    };
    let partial = work.path().join("archive.tar");
    let file = fs::File::create(&partial).map_err(io(&partial))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Format(format!("manifest: {e}")))?;
    let mut header = plain_header(json.len() as u64, now_ms);
    tar.append_data(&mut header, MANIFEST, json.as_slice())
        .map_err(io(&partial))?;
    for name in &manifest.files {
        let src = if name == CATALOGUE || name == AUDIT {
            work.path().join(name)
        } else {
            dir.root().join(name)
        };
        // Restore accepts regular files only.
        let file = fs::File::open(&src).map_err(io(&src))?;
        let len = file.metadata().map_err(io(&src))?.len();
        let mut header = plain_header(len, now_ms);
        tar.append_data(&mut header, name, file).map_err(io(&src))?;
    }
    let file = tar
        .into_inner()
        .map_err(io(&partial))?
        .into_inner()
        .map_err(|e| BackupError::Io {
            path: partial.clone(),
            source: e.into_error(),
        })?;
    file.sync_all().map_err(io(&partial))?;
    fs::rename(&partial, out).map_err(io(out))?;
    Ok(manifest)
}

/// A regular file's header: `len` bytes, mode 0600, no owner, never sparse.
fn plain_header(len: u64, now_ms: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(len);
    header.set_mode(0o600);
    header.set_mtime(now_ms / 1000);
    header.set_cksum();
    header
}

/// Writes a backup of a data dir whose node is not running (its databases opened here).
pub fn write_offline(dir: &DataDir, out: &Path, now_ms: u64) -> Result<Manifest, BackupError> {
    let catalogue = RedbStore::open(&dir.root().join(CATALOGUE))?;
    let audit = AuditLog::open(&dir.root().join(AUDIT), None)?;
    write(dir, &catalogue, &audit, out, now_ms)
}

/// Restores the backup `archive` into `target` (created if missing; refused if it already
/// holds a node key), then checks the result against the manifest.
pub fn restore(archive: &Path, target: &DataDir) -> Result<Manifest, BackupError> {
    let root = target.root();
    if target.key_path().exists() {
        return Err(BackupError::Exists(root.to_owned()));
    }
    fs::create_dir_all(root).map_err(io(root))?;
    let file = fs::File::open(archive).map_err(io(archive))?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let mut manifest: Option<Manifest> = None;
    let mut restored = Vec::new();
    for entry in tar.entries().map_err(io(archive))? {
        let mut entry = entry.map_err(io(archive))?;
        let name = entry
            .path()
            .map_err(io(archive))?
            .to_string_lossy()
            .into_owned();
        // Only the names a backup writes, as plain files: nothing else lands in the data dir.
        let known = name == MANIFEST
            || name == CATALOGUE
            || name == AUDIT
            || FILES.contains(&name.as_str());
        if !known || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Format(format!(
                "unexpected entry {name:?} ({:?})",
                entry.header().entry_type()
            )));
        }
        let size = entry.header().size().map_err(io(archive))?;
        if name == MANIFEST {
            if size > SMALL_FILE_LIMIT {
                return Err(BackupError::Format("the manifest is too large".into()));
            }
            let mut text = Vec::new();
            entry.read_to_end(&mut text).map_err(io(archive))?;
            let m: Manifest = serde_json::from_slice(&text)
                .map_err(|e| BackupError::Format(format!("manifest: {e}")))?;
            if m.format != FORMAT {
                return Err(BackupError::Format(format!(
                    "format {} (this build reads {FORMAT})",
                    m.format
                )));
            }
            manifest = Some(m);
            continue;
        }
        if manifest.is_none() {
            return Err(BackupError::Format(
                "the manifest does not come first".into(),
            ));
        }
        if name != CATALOGUE && name != AUDIT && size > SMALL_FILE_LIMIT {
            return Err(BackupError::Format(format!("{name} is {size} bytes")));
        }
        let dest = root.join(&name);
        let tmp = root.join(format!(".{name}.restoring"));
        let mut out = fs::File::create(&tmp).map_err(io(&tmp))?;
        if name == "key" {
            use std::os::unix::fs::PermissionsExt;
            out.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io(&tmp))?;
        }
        std::io::copy(&mut entry, &mut out).map_err(io(&tmp))?;
        out.flush().map_err(io(&tmp))?;
        out.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        restored.push(name);
    }
    let manifest = manifest.ok_or_else(|| BackupError::Format("no manifest".into()))?;
    let mut expected = manifest.files.clone();
    expected.sort();
    restored.sort();
    if expected != restored {
        return Err(BackupError::Mismatch(format!(
            "files {restored:?}, manifest {expected:?}"
        )));
    }
    let key = keystore::read(&target.key_path())?;
    let peer = key.public().to_peer_id().to_string();
    if peer != manifest.peer_id {
        return Err(BackupError::Mismatch(format!(
            "key of {peer}, manifest {}",
            manifest.peer_id
        )));
    }
    let entries = RedbStore::open(&root.join(CATALOGUE))?.len()?;
    if entries != manifest.directory_entries {
        return Err(BackupError::Mismatch(format!(
            "{entries} catalogue entries, manifest {}",
            manifest.directory_entries
        )));
    }
    let audit = AuditLog::open(&root.join(AUDIT), None)?;
    audit.verify(&key.public())?;
    let audit_entries = audit.len()?;
    if audit_entries != manifest.audit_entries {
        return Err(BackupError::Mismatch(format!(
            "{audit_entries} audit entries, manifest {}",
            manifest.audit_entries
        )));
    }
    Ok(manifest)
}
