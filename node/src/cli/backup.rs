//! `gaiamesh backup` and `gaiamesh restore` (see [`crate::backup`]).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::{DataDirArg, print_json};
use crate::{api_client, backup, datadir::DataDir};

/// Arguments of `gaiamesh backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// The archive to write (a tar file; refused if it exists).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `gaiamesh restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive written by `gaiamesh backup`.
    archive: PathBuf,
    /// The data dir to restore into: new or empty (a data dir with a node key is refused).
    #[arg(long, short = 'd', env = "GAIAMESH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

/// Backs up a running node through its API (the node snapshots its own databases while it
/// runs), or a stopped node's data dir directly.
pub(super) fn backup(a: BackupArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    if a.out.exists() {
        bail!("{} exists; refusing to overwrite it", a.out.display());
    }
    let manifest = if api_client::node_running(&dir) {
        eprintln!("asking the running node for a snapshot…");
        let answer = api_client::NodeApi::of(&dir)?
            .timeout(std::time::Duration::from_secs(600))
            .backup()?;
        move_file(&answer.path, &a.out)?;
        answer.manifest
    } else {
        backup::write_offline(&dir, &a.out, crate::now().0)
            .with_context(|| format!("backing up {}", dir.root().display()))?
    };
    if a.json {
        return print_json(&manifest);
    }
    println!(
        "backed up {} to {}: {} directory entries, {} audit entries, {} files",
        manifest.peer_id,
        a.out.display(),
        manifest.directory_entries,
        manifest.audit_entries,
        manifest.files.len()
    );
    Ok(())
}

/// Renames `from` to `to`, or copies it across file systems.
fn move_file(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    std::fs::remove_file(from).with_context(|| format!("removing {}", from.display()))
}

/// Restores a backup into a new data dir and checks it.
pub(super) fn restore(a: RestoreArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir);
    let manifest = backup::restore(&a.archive, &dir)
        .with_context(|| format!("restoring {}", a.archive.display()))?;
    if a.json {
        return print_json(&manifest);
    }
    println!(
        "restored {} into {}: {} directory entries, {} audit entries (chain verified)",
        manifest.peer_id,
        dir.root().display(),
        manifest.directory_entries,
        manifest.audit_entries
    );
    eprintln!("the DHT cache and blobs are fetched again from the federation once the node runs");
    Ok(())
}
