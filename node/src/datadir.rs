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
}

impl DataDir {
    /// The data dir at `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
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
        self.root.join("config.toml")
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

/// Writes a file atomically (temp file + rename), so a crash leaves the old or the new content.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} into place", path.display()))
}
