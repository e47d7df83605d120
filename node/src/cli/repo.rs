//! `gaiamesh repo`: keys, publishing releases, rotating keys, listing, fetching.
//!
//! The repository state of a node is `DATA_DIR/repository.bundle` (the trusted root chain,
//! timestamp, snapshot and targets, re-verified on every load) and its blobs under
//! `DATA_DIR/blobs/`. With a node running on the data dir, signing still happens here (the
//! keys never reach the daemon) and the node gets the signed bundle, which it announces to
//! the mesh.

mod rotate;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gaiamesh_protocol::{
    identity::Keypair,
    repository::{
        BlobHash, TrustedRepository,
        metadata::{Bundle, Category, TargetName},
        publish,
    },
};
use serde::Serialize;

use super::{DataDirArg, StatusArgs, duration_ms, parse_duration, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    blobs::BlobStore,
    daemon::{LocalState, ReleaseBody},
    datadir::DataDir,
    keystore, now,
};

/// Repository commands.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Create a repository signing key (mode 0600); prints its public key.
    Keygen(KeygenArgs),
    /// Add a component version to the repository and sign the new release with k of n keys.
    #[command(disable_version_flag = true)]
    Publish(PublishArgs),
    /// List the components of the trusted release and whether their blobs are here.
    List(StatusArgs),
    /// Fetch a component (NAME@VERSION, or NAME for its newest version) from the mesh
    /// through the running node; waits with a progress line unless --no-wait.
    Fetch(FetchArgs),
    /// The release and every component's local state and fetch progress (running node).
    Status(StatusArgs),
    /// Rotate the repository's keys: a new root version whose roles the new keys hold,
    /// signed by a threshold of the current root keys and of the new ones; the current
    /// release is re-signed with the new keys. Nodes walk the root chain to it.
    Rotate(rotate::RotateArgs),
}

/// Arguments of `repo fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// NAME@VERSION or NAME.
    target: String,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Copy the fetched blob to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Return once the fetch has started.
    #[arg(long)]
    no_wait: bool,
    /// Give up waiting after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    timeout: std::time::Duration,
    /// Print the final state as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `repo keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (must not exist).
    #[arg(long)]
    out: PathBuf,
}

/// Arguments of `repo publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The component's file.
    file: PathBuf,
    /// Component name: `/`-separated segments of `[A-Za-z0-9._+-]` (e.g. `identity/oidc-bridge`).
    #[arg(long)]
    name: String,
    /// Component version (e.g. `1.2.0`).
    #[arg(long)]
    version: String,
    /// `mandatory` (every node fetches and pins it) or `optional` (on demand).
    #[arg(long, default_value = "optional")]
    category: Category,
    /// Platform the component is for (e.g. `linux-x86_64`); default: any. A compute-to-data
    /// algorithm is `wasm32-wasip2` and must carry its manifest (`gaiamesh compute embed`).
    #[arg(long)]
    platform: Option<String>,
    /// Signing keys (repeat; a threshold of the repository's keys must sign). The first
    /// release also creates root v1, which a threshold of the genesis' repository keys signs.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// Drop the other versions of this component from the release (nodes then delete their
    /// blobs).
    #[arg(long)]
    supersede: bool,
    /// How long the release is valid (nodes refuse it afterwards: re-publish in time).
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    expires: std::time::Duration,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(cmd: RepoCommand) -> Result<()> {
    match cmd {
        RepoCommand::Keygen(a) => {
            let key = Keypair::generate();
            keystore::write_new(&a.out, &key)?;
            println!("{}", key.public());
            Ok(())
        }
        RepoCommand::Publish(a) => publish_release(a),
        RepoCommand::List(a) | RepoCommand::Status(a) => list(a),
        RepoCommand::Fetch(a) => fetch(a),
        RepoCommand::Rotate(a) => rotate::run(a),
    }
}

/// The data dir's trusted repository (re-verified from `repository.bundle`).
fn load(dir: &DataDir) -> Result<TrustedRepository> {
    dir.repository()
}

/// Writes the trusted state atomically.
fn save(dir: &DataDir, repo: &TrustedRepository) -> Result<()> {
    dir.save_repository(repo)
}

/// The signing keys in `paths`.
fn read_keys(paths: &[PathBuf]) -> Result<Vec<Keypair>> {
    paths
        .iter()
        .map(|p| keystore::read(p).with_context(|| format!("key {}", p.display())))
        .collect()
}

/// The repository state to build on: the running node's (it owns the state), else the
/// data dir's.
fn current(dir: &DataDir) -> Result<TrustedRepository> {
    if !node_running(dir) {
        return load(dir);
    }
    let bytes = NodeApi::of(dir)?.repo_bundle()?;
    let mut repo = TrustedRepository::new(dir.trust()?.genesis());
    repo.load(&Bundle::decode(&bytes)?)?;
    Ok(repo)
}

/// Hands a signed `bundle` (already applied to `repo`) to the running node, which imports
/// `file` (when given) and announces the release; without a node, saves `repo`.
fn hand_over(
    dir: &DataDir,
    repo: &TrustedRepository,
    bundle: &Bundle,
    file: Option<&std::path::Path>,
) -> Result<()> {
    if !node_running(dir) {
        return save(dir, repo);
    }
    let file = file.map(std::fs::canonicalize).transpose()?;
    NodeApi::of(dir)?.repo_release(&ReleaseBody {
        bundle: hex::encode(bundle.encode()?),
        file,
    })?;
    Ok(())
}

fn blob_store(dir: &DataDir) -> Result<BlobStore> {
    Ok(BlobStore::open(&dir.root().join("blobs"))?)
}

#[derive(Serialize)]
struct Published {
    target: String,
    blake3: String,
    length: u64,
    category: Category,
    root_version: u64,
    targets_version: u64,
    expires: String,
}

fn publish_release(a: PublishArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let name: TargetName = format!("{}@{}", a.name, a.version).parse()?;
    let keys = read_keys(&a.keys)?;
    let signers: Vec<&Keypair> = keys.iter().collect();
    let now = now();
    if a.platform.as_deref() == Some(gaiamesh_compute::manifest::PLATFORM) {
        check_algorithm(&a.file)?;
    }
    let running = node_running(&dir);
    let mut repo = current(&dir)?;
    if repo.root().is_none() {
        let genesis = dir.trust()?.genesis().clone();
        let root = publish::initial_root(&genesis, now, 365 * publish::DAY_MS, &signers)?;
        repo.update_root(root)
            .context("root v1 must be signed by a threshold of the genesis' repository keys")?;
    }
    let (hash, length) = if running {
        let bytes =
            std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
        (BlobHash::of(&bytes), bytes.len() as u64)
    } else {
        let file = std::fs::File::open(&a.file)
            .with_context(|| format!("cannot read {}", a.file.display()))?;
        blob_store(&dir)?.import(file, a.category == Category::Mandatory)?
    };
    let info = gaiamesh_protocol::repository::metadata::TargetInfo {
        length,
        custom: gaiamesh_protocol::repository::metadata::TargetCustom {
            category: a.category,
            blake3: hash,
            platform: a.platform.clone(),
        },
    };
    if let Some(existing) = repo
        .trusted_targets()
        .and_then(|t| t.body().targets.get(&name))
        && existing.custom.blake3 != hash
    {
        bail!(
            "{name} is already released with other content ({}); publish a new version",
            existing.custom.blake3
        );
    }
    let superseded: Vec<TargetName> = if a.supersede {
        repo.trusted_targets()
            .map(|t| {
                t.body()
                    .targets
                    .keys()
                    .filter(|k| k.name() == name.name() && **k != name)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let bundle = publish::release_replacing(
        &repo,
        &[(name.clone(), info)],
        &superseded,
        now,
        duration_ms(a.expires),
        &signers,
    )?;
    repo.apply(&bundle, now)
        .context("the new release does not verify with these keys (a threshold must sign)")?;
    hand_over(&dir, &repo, &bundle, Some(&a.file))?;
    let t = repo.targets(now)?;
    let out = Published {
        target: name.to_string(),
        blake3: hash.to_string(),
        length,
        category: a.category,
        root_version: repo.root_version(),
        targets_version: t.version,
        expires: t.expires.to_string(),
    };
    if a.json {
        print_json(&out)
    } else {
        println!(
            "published {} ({} bytes, {}, blake3 {}) as targets v{}, valid until {}",
            out.target, out.length, out.category, out.blake3, out.targets_version, out.expires
        );
        Ok(())
    }
}

/// A compute-to-data algorithm must declare what it reads, writes and needs: providers
/// refuse one without a valid manifest, so publishing it would release something no one
/// can run.
fn check_algorithm(file: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    gaiamesh_compute::Manifest::require(&bytes).with_context(|| {
        format!(
            "{} is not a publishable {} algorithm",
            file.display(),
            gaiamesh_compute::manifest::PLATFORM
        )
    })?;
    Ok(())
}

#[derive(Serialize)]
struct Listed {
    target: String,
    category: Category,
    platform: Option<String>,
    length: u64,
    blake3: String,
    /// `complete`, `partial (N bytes)` or `missing`.
    local: String,
}

fn list(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    if node_running(&dir) {
        let status = NodeApi::of(&dir)?.repo()?;
        if a.json {
            return print_json(&status.targets);
        }
        println!(
            "release: targets v{}, root v{} ({})",
            status
                .targets_version
                .map_or("-".to_owned(), |v| v.to_string()),
            status.root_version,
            status
                .error
                .as_deref()
                .map_or("valid".to_owned(), |e| format!("NOT TRUSTED NOW: {e}"))
        );
        for t in &status.targets {
            let progress = t.fetch.as_ref().map_or(String::new(), |f| {
                format!(
                    "  [{}: {} of {} bytes, {} providers]",
                    f.state, f.verified, f.length, f.providers
                )
            });
            println!(
                "  {:<40} {:<9} {:>12} bytes  {}{progress}",
                t.target,
                t.category,
                t.length,
                t.local.as_str()
            );
        }
        return Ok(());
    }
    let repo = load(&dir)?;
    let Some(targets) = repo.trusted_targets() else {
        if a.json {
            return print_json(&Vec::<Listed>::new());
        }
        println!("no release yet (publish one with gaiamesh repo publish)");
        return Ok(());
    };
    let store = blob_store(&dir)?;
    let mut rows = Vec::new();
    for (name, info) in &targets.body().targets {
        let local = match store.get(&info.custom.blake3)? {
            Some(r) if r.complete => "complete".to_owned(),
            Some(r) => format!("partial ({} of {} bytes)", r.verified_bytes(), r.length),
            None => "missing".to_owned(),
        };
        rows.push(Listed {
            target: name.to_string(),
            category: info.custom.category,
            platform: info.custom.platform.clone(),
            length: info.length,
            blake3: info.custom.blake3.to_string(),
            local,
        });
    }
    if a.json {
        return print_json(&rows);
    }
    let fresh = match repo.targets(now()) {
        Ok(_) => "valid".to_owned(),
        Err(e) => format!("NOT TRUSTED NOW: {e}"),
    };
    println!(
        "release: targets v{}, root v{} ({fresh})",
        targets.body().version,
        repo.root_version()
    );
    for r in rows {
        println!(
            "  {:<40} {:<9} {:>12} bytes  {}",
            r.target, r.category, r.length, r.local
        );
    }
    Ok(())
}

fn fetch(a: FetchArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    if !node_running(&dir) {
        bail!(
            "no node is running on {}: fetching needs the mesh (start it with gaiamesh run)",
            dir.root().display()
        );
    }
    let api = NodeApi::of(&dir)?;
    let started = api.repo_fetch(&a.target)?;
    let target = started.target.clone();
    if a.no_wait {
        return if a.json {
            print_json(&started)
        } else {
            println!("fetching {target} ({})", started.blake3);
            Ok(())
        };
    }
    let t0 = std::time::Instant::now();
    let mut progress = super::ProgressLine::bytes(a.json);
    let row = loop {
        let row = api
            .repo()?
            .targets
            .into_iter()
            .find(|t| t.blake3 == started.blake3);
        let Some(row) = row else {
            bail!("{target} is no longer in the node's release");
        };
        if row.local == LocalState::Complete {
            break row;
        }
        let length = row.length.max(1);
        if let Some(reason) = row
            .fetch
            .as_ref()
            .and_then(|f| f.state.strip_prefix("failed: "))
        {
            bail!("fetching {target} failed: {reason}");
        }
        if t0.elapsed() > a.timeout {
            bail!(
                "{target} not complete after {:?} ({} of {length} bytes)",
                a.timeout,
                row.verified
            );
        }
        let providers = row.fetch.as_ref().map_or(0, |f| f.providers);
        progress.draw(
            &target,
            &format!("{providers} providers"),
            row.verified,
            length,
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    progress.done();
    if let Some(out) = &a.out {
        let hash: BlobHash = started.blake3.parse()?;
        // The node holds the store open; the blob's data file is complete and verified.
        let src = dir.root().join("blobs").join(format!("{hash}.data"));
        std::fs::copy(&src, out).with_context(|| format!("cannot write {}", out.display()))?;
    }
    if a.json {
        print_json(&row)
    } else {
        println!(
            "{target}: complete ({} bytes) in {:.1?}",
            row.length,
            t0.elapsed()
        );
        Ok(())
    }
}
