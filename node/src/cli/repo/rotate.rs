//! `gaiamesh repo rotate`: replace the repository's signing keys.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gaiamesh_protocol::{
    identity::{Keypair, PublicKey},
    repository::{metadata::RoleKeys, publish},
};

use super::{current, hand_over, read_keys};
use crate::{
    cli::{DataDirArg, duration_ms, parse_duration, print_json},
    datadir::DataDir,
    now,
};

/// Arguments of `repo rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// A public key of the new key set (repeat; as `repo keygen` prints them).
    #[arg(long = "new-key", required = true)]
    new_keys: Vec<String>,
    /// Distinct valid signatures the new keys must give for every role.
    #[arg(long)]
    threshold: u8,
    /// Signing keys (repeat): a threshold of the current root keys and a threshold of the
    /// new ones (the new root is signed by both sets).
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// How long the new root is valid.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    root_expires: std::time::Duration,
    /// How long the re-signed release is valid.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires: std::time::Duration,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(a: RotateArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let mut new_keys: Vec<PublicKey> = Vec::new();
    for k in &a.new_keys {
        let key: PublicKey = k
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("--new-key {k:?}: {e}"))?;
        if new_keys.contains(&key) {
            bail!("--new-key {k} is given twice");
        }
        new_keys.push(key);
    }
    if a.threshold == 0 || usize::from(a.threshold) > new_keys.len() {
        bail!(
            "--threshold must be 1–{} (the number of new keys), not {}",
            new_keys.len(),
            a.threshold
        );
    }
    let keys = read_keys(&a.keys)?;
    let signers: Vec<&Keypair> = keys.iter().collect();
    let mut repo = current(&dir)?;
    let before = repo.clone();
    let prev = repo
        .root()
        .context("the repository has no root yet: publish a first release (it creates root v1)")?
        .body()
        .clone();
    let roles = RoleKeys {
        keys: new_keys.clone(),
        threshold: a.threshold,
    };
    let now = now();
    let root = publish::rotate_root(
        &prev,
        [roles.clone(), roles.clone(), roles.clone(), roles],
        now,
        duration_ms(a.root_expires),
        &signers,
    )?;
    repo.update_root(root).context(
        "the new root needs a threshold of the current root keys and a threshold of the new keys",
    )?;
    let bundle = if before.trusted_targets().is_some() {
        // Re-sign the release with the new keys: the old ones no longer count.
        let b = publish::resign(&before, &repo, now, duration_ms(a.expires), &signers)?;
        repo.apply(&b, now)
            .context("re-signing the release needs a threshold of the new keys")?;
        b
    } else {
        repo.bundle(0)
    };
    hand_over(&dir, &repo, &bundle, None)?;
    let out = serde_json::json!({
        "root_version": repo.root_version(),
        "keys": new_keys.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "threshold": a.threshold,
        "targets_version": repo.trusted_targets().map(|t| t.body().version),
    });
    if a.json {
        print_json(&out)
    } else {
        println!(
            "root v{}: every role now held by {} key(s), {} signature(s) required",
            repo.root_version(),
            new_keys.len(),
            a.threshold
        );
        Ok(())
    }
}
