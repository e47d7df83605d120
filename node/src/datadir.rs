//! The data directory of one node.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use gaiamesh_directory::{catalogue::Catalogue, store::RedbStore};
use gaiamesh_protocol::{
    federation::{FederationTrust, Genesis, MembershipCredential},
    identity::Keypair,
};

use crate::keystore;

/// Paths inside a node's data dir (DESIGN §9).
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
    /// `config.toml` elsewhere than in the data dir (`gaiamesh run --config`).
    config: Option<PathBuf>,
}

/// A running node's hold on its data dir ([`DataDir::lock_node`]).
#[derive(Debug)]
pub struct NodeLock {
    _file: fs::File,
}

impl DataDir {
    /// The data dir at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            config: None,
        }
    }

    /// The same data dir with its configuration read from `path` (a packaged node keeps it
    /// in `/etc/gaiamesh/config.toml`).
    pub fn with_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// Takes the data dir's lock (`node.lock`) for a running node, for as long as the
    /// returned file lives: the kernel releases it when the process ends, however it ends, so
    /// a stale `api.json` left by `kill -9` is told apart from a live node ([`Self::node_alive`]).
    pub fn lock_node(&self) -> Result<NodeLock> {
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(NodeLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another node is running on {} (it holds {})",
                self.root.display(),
                path.display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Whether a node process holds this data dir's lock now. A data dir whose lock file is
    /// missing (a node from before the lock existed) counts as alive while it has `api.json`.
    pub fn node_alive(&self) -> bool {
        let Ok(file) = fs::OpenOptions::new().write(true).open(self.lock_path()) else {
            return self.root.join("api.json").exists();
        };
        match file.try_lock() {
            // Nobody holds it (we hold it now; closing the file releases it).
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => self.root.join("api.json").exists(),
        }
    }

    /// The trusted repository state (`repository.bundle`), re-verified against the genesis.
    pub fn repository(&self) -> Result<gaiamesh_protocol::repository::TrustedRepository> {
        use gaiamesh_protocol::repository::{
            TrustedRepository,
            metadata::{Bundle, MAX_BUNDLE_BYTES},
        };
        let trust = self.trust()?;
        let mut repo = TrustedRepository::new(trust.genesis());
        let path = self.repository_path();
        if path.exists() {
            let len = fs::metadata(&path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .len();
            if len > MAX_BUNDLE_BYTES as u64 {
                bail!(
                    "{} is {len} bytes, more than a bundle may have ({MAX_BUNDLE_BYTES})",
                    path.display()
                );
            }
            let bytes =
                fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let bundle = Bundle::decode(&bytes).with_context(|| format!("{}", path.display()))?;
            repo.load(&bundle)
                .with_context(|| format!("{} does not verify", path.display()))?;
        }
        Ok(repo)
    }

    /// Stores the trusted repository state atomically.
    pub fn save_repository(
        &self,
        repo: &gaiamesh_protocol::repository::TrustedRepository,
    ) -> Result<()> {
        write_atomic(&self.repository_path(), &repo.bundle(0).encode()?)
    }

    fn repository_path(&self) -> PathBuf {
        self.root.join("repository.bundle")
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("node.lock")
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The node key (mode 0600).
    pub fn key_path(&self) -> PathBuf {
        self.root.join("key")
    }

    /// The node configuration.
    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| self.root.join("config.toml"))
    }

    /// The federation genesis.
    pub fn genesis_path(&self) -> PathBuf {
        self.root.join("genesis.toml")
    }

    /// The membership credential.
    pub fn credential_path(&self) -> PathBuf {
        self.root.join("membership.cred")
    }

    /// The catalogue database.
    pub fn db_path(&self) -> PathBuf {
        self.root.join("db.redb")
    }

    /// The node configuration (defaults when `config.toml` is absent).
    pub fn config(&self) -> Result<gaiamesh_config::NodeConfig> {
        let path = self.config_path();
        if path.exists() {
            Ok(gaiamesh_config::NodeConfig::load(&path)?)
        } else {
            Ok(gaiamesh_config::NodeConfig::from_toml_str("", "defaults")?)
        }
    }

    /// Opens the catalogue in this data dir (creating the database on first use).
    pub fn catalogue(&self) -> Result<Catalogue<RedbStore>> {
        let trust = self.trust()?;
        let max = usize::try_from(self.config()?.directory.max_entries).unwrap_or(usize::MAX);
        let store = RedbStore::open(&self.db_path()).with_context(|| {
            format!(
                "cannot open {} (is `gaiamesh run` using this data dir? then ask it through its API)",
                self.db_path().display()
            )
        })?;
        Ok(Catalogue::open(store, trust, max)?)
    }

    /// The highest seq this node has signed, so new versions always go up.
    pub fn seq_path(&self) -> PathBuf {
        self.root.join("sd.seq")
    }

    /// Reads the node key.
    pub fn key(&self) -> Result<Keypair> {
        if !self.key_path().exists() {
            bail!(
                "{} has no node key; run `gaiamesh init --data-dir {}` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(keystore::read(&self.key_path())?)
    }

    /// Reads and validates the genesis.
    pub fn trust(&self) -> Result<FederationTrust> {
        let path = self.genesis_path();
        if !path.exists() {
            bail!(
                "{} has no genesis.toml; run `gaiamesh init --data-dir {} --genesis FILE`",
                self.root.display(),
                self.root.display()
            );
        }
        load_trust(&path)
    }

    /// Reads the membership credential, if the node has one.
    pub fn credential(&self) -> Result<Option<MembershipCredential>> {
        let path = self.credential_path();
        if !path.exists() {
            return Ok(None);
        }
        load_credential(&path).map(Some)
    }

    /// The last signed seq (0 when none).
    pub fn last_seq(&self) -> Result<u64> {
        match fs::read_to_string(self.seq_path()) {
            Ok(s) => s
                .trim()
                .parse()
                .with_context(|| format!("{} is not a number", self.seq_path().display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.seq_path().display())),
        }
    }

    /// Records `seq` as the last signed seq.
    pub fn record_seq(&self, seq: u64) -> Result<()> {
        write_atomic(&self.seq_path(), format!("{seq}\n").as_bytes())
    }
}

/// Reads and validates a genesis file into a trust context.
pub fn load_trust(path: &Path) -> Result<FederationTrust> {
    let text = read_text(path, 256 * 1024)?;
    let genesis = Genesis::from_toml(&text).with_context(|| format!("{}", path.display()))?;
    FederationTrust::new(genesis).with_context(|| format!("{}", path.display()))
}

/// Reads a membership credential file (TOML).
pub fn load_credential(path: &Path) -> Result<MembershipCredential> {
    let text = read_text(path, 64 * 1024)?;
    MembershipCredential::from_toml(&text).with_context(|| format!("{}", path.display()))
}

/// Reads a text file, refusing files larger than `limit` bytes before reading them.
pub fn read_text(path: &Path, limit: u64) -> Result<String> {
    let len = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    if len > limit {
        bail!(
            "{} is {len} bytes, more than the {limit} allowed",
            path.display()
        );
    }
    fs::read_to_string(path)
        .with_context(|| format!("cannot read {} as UTF-8 text", path.display()))
}

/// Reads and validates a self-description document (TOML or JSON, by extension or content).
pub fn read_document(
    path: &Path,
) -> Result<gaiamesh_protocol::sd::SdDocument, gaiamesh_protocol::sd::DocumentError> {
    use gaiamesh_protocol::{limits::MAX_DOCUMENT_BYTES, sd::DocumentError};
    let text = read_text(path, MAX_DOCUMENT_BYTES as u64)
        .map_err(|e| DocumentError::Toml(format!("{e:#}")))?;
    gaiamesh_protocol::sd::SdDocument::parse(&text, document_format(path, &text))
}

/// A document's format: by its file extension, else by its first character.
pub fn document_format(path: &Path, text: &str) -> gaiamesh_protocol::sd::DocumentFormat {
    use gaiamesh_protocol::sd::DocumentFormat;
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => DocumentFormat::Json,
        Some("toml") => DocumentFormat::Toml,
        _ => DocumentFormat::sniff(text),
    }
}

/// Writes a file atomically (temp file + fsync + rename + fsync of the directory), so a crash
/// leaves the old or the new content, and the new content once this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", parent.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_tells_a_live_node_from_a_stale_api_json() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::new(tmp.path());
        fs::write(tmp.path().join("api.json"), "{}").unwrap();
        assert!(dir.node_alive(), "no lock file yet: api.json decides");
        let lock = dir.lock_node().unwrap();
        assert!(dir.node_alive());
        let second = dir.lock_node().unwrap_err().to_string();
        assert!(second.contains("another node is running"), "{second}");
        drop(lock);
        assert!(!dir.node_alive(), "the holder is gone: api.json is stale");
        assert!(!dir.node_alive(), "checking does not keep the lock");
        let _again = dir.lock_node().unwrap();
    }

    #[test]
    fn write_atomic_replaces_the_content() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f.toml");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!tmp.path().join("f.tmp").exists());
    }
}
