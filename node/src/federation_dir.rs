//! The directory `gaiamesh federation init` creates: the genesis and the secret keys of the
//! authorities, certifier and repository roots. In production each authority keeps its own
//! key; this layout serves a federation run from one place and the devnet.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use gaiamesh_protocol::{
    federation::{FederationTrust, RevocationList},
    identity::Keypair,
};

use crate::{datadir, keystore};

/// Paths inside a federation directory.
#[derive(Clone, Debug)]
pub struct FederationDir {
    root: PathBuf,
}

impl FederationDir {
    /// The federation dir at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `genesis.toml`.
    pub fn genesis_path(&self) -> PathBuf {
        self.root.join("genesis.toml")
    }

    /// `revocations.toml`, the current revocation list.
    pub fn revocations_path(&self) -> PathBuf {
        self.root.join("revocations.toml")
    }

    /// Secret key of authority `i`.
    pub fn authority_key_path(&self, i: usize) -> PathBuf {
        self.root.join("keys").join(format!("authority-{i}.key"))
    }

    /// Secret key of certifier `i`.
    pub fn certifier_key_path(&self, i: usize) -> PathBuf {
        self.root.join("keys").join(format!("certifier-{i}.key"))
    }

    /// Secret key of repository root `i`.
    pub fn repository_key_path(&self, i: usize) -> PathBuf {
        self.root
            .join("keys")
            .join(format!("repository-root-{i}.key"))
    }

    /// The validated genesis as a trust context, with the current revocations applied.
    pub fn trust(&self) -> Result<FederationTrust> {
        if !self.genesis_path().exists() {
            bail!(
                "{} is not a federation directory (no genesis.toml); create one with `gaiamesh federation init`",
                self.root.display()
            );
        }
        let mut trust = datadir::load_trust(&self.genesis_path())?;
        if let Some(list) = self.revocations()? {
            trust
                .apply_revocations(&list)
                .with_context(|| format!("{}", self.revocations_path().display()))?;
        }
        Ok(trust)
    }

    /// The current revocation list, if any.
    pub fn revocations(&self) -> Result<Option<RevocationList>> {
        let path = self.revocations_path();
        if !path.exists() {
            return Ok(None);
        }
        let text = datadir::read_text(&path, 8 * 1024 * 1024)?;
        Ok(Some(
            RevocationList::from_toml(&text).with_context(|| format!("{}", path.display()))?,
        ))
    }

    /// The authority keys present in this directory that the genesis lists, enough to reach
    /// the threshold.
    pub fn signing_authorities(&self, trust: &FederationTrust) -> Result<Vec<Keypair>> {
        let auth = &trust.genesis().authorities;
        let mut keys = Vec::new();
        for i in 0..auth.keys.len() {
            let path = self.authority_key_path(i);
            if !path.exists() {
                continue;
            }
            let k = keystore::read(&path)?;
            if auth.keys.contains(&k.public()) && keys.len() < usize::from(auth.threshold) {
                keys.push(k);
            }
        }
        if keys.len() < usize::from(auth.threshold) {
            bail!(
                "{} holds {} authority key(s) of this genesis, {} are needed to sign",
                self.root.join("keys").display(),
                keys.len(),
                auth.threshold
            );
        }
        Ok(keys)
    }

    /// The first certifier key present.
    pub fn certifier(&self, trust: &FederationTrust) -> Result<Keypair> {
        let path = self.certifier_key_path(0);
        let k = keystore::read(&path)
            .with_context(|| "the federation directory has no certifier key")?;
        if !trust.genesis().certifiers.contains(&k.public()) {
            bail!("{} is not a certifier of this genesis", path.display());
        }
        Ok(k)
    }

    /// Creates `keys/` with mode 0700.
    pub fn create_key_dir(&self) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.root.join("keys");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))
    }
}
