//! `gaiamesh asset`: register files and directories with a usage policy; each appears in
//! the node's self-description as a `data.resource` service carrying the policy's summary
//! (docs/exchange.md).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gaiamesh_exchange::{
    asset::{Asset, Registry},
    policy::Policy,
};
use gaiamesh_protocol::sd::{SdDocument, Service, ServiceKind};

use super::{DataDirArg, StatusArgs, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    datadir::{self, DataDir},
    now,
};

/// Asset commands.
#[derive(Debug, Subcommand)]
pub enum AssetCommand {
    /// Register a file or directory (hashed with BLAKE3) under an id with a usage policy,
    /// and add it to the self-description (re-published when the node runs).
    Add(AddArgs),
    /// List the registered assets.
    List(StatusArgs),
    /// Unregister an asset and drop its service from the self-description.
    Remove(RemoveArgs),
}

/// Arguments of `asset add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The file or directory.
    path: PathBuf,
    /// Its id: 1–64 letters, digits or . _ + -.
    #[arg(long)]
    id: String,
    /// The usage policy (TOML or JSON; docs/exchange.md).
    #[arg(long)]
    policy: PathBuf,
    /// A name for the service (default: the file name).
    #[arg(long)]
    name: Option<String>,
    /// A description for the service.
    #[arg(long)]
    description: Option<String>,
    /// The service's price, `AMOUNT CURRENCY/UNIT`, e.g. `0.05 EUR/Gfuel` for computation
    /// (units: docs/exchange.md, "Metering and price") or `0.02 EUR/GB`.
    #[arg(long, value_parser = parse_price)]
    price: Option<gaiamesh_protocol::sd::Price>,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print the asset as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `asset remove`.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The asset id.
    id: String,
    #[command(flatten)]
    data_dir: DataDirArg,
}

/// `--price` text that is not `AMOUNT CURRENCY/UNIT`.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not AMOUNT CURRENCY/UNIT, e.g. \"0.05 EUR/Gfuel\"")]
struct PriceArgError(String);

/// `AMOUNT CURRENCY/UNIT` → a price (the self-description's validation checks the codes).
fn parse_price(s: &str) -> Result<gaiamesh_protocol::sd::Price, PriceArgError> {
    let bad = || PriceArgError(s.to_owned());
    let (amount, rest) = s.trim().split_once(' ').ok_or_else(bad)?;
    let (currency, unit) = rest.trim().split_once('/').ok_or_else(bad)?;
    if amount.is_empty() || currency.is_empty() || unit.is_empty() {
        return Err(bad());
    }
    Ok(gaiamesh_protocol::sd::Price {
        currency: currency.to_owned(),
        amount: amount.to_owned(),
        unit: unit.to_owned(),
    })
}

pub(super) fn run(cmd: AssetCommand) -> Result<()> {
    match cmd {
        AssetCommand::Add(a) => add(a),
        AssetCommand::List(a) => list(a),
        AssetCommand::Remove(a) => remove(a),
    }
}

/// The node's self-description document and where it is.
fn document(dir: &DataDir) -> Result<(PathBuf, SdDocument)> {
    let path = dir.root().join(&dir.config()?.sd.document);
    if !path.exists() {
        bail!(
            "{} has no self-description document ({}); write one first (gaiamesh sd check)",
            dir.root().display(),
            path.display()
        );
    }
    let doc =
        super::read_document(&path).map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
    Ok((path, doc))
}

/// Writes `doc` (validated by the caller) atomically, and re-publishes it when the node
/// runs.
fn store_document(dir: &DataDir, path: &std::path::Path, doc: &SdDocument) -> Result<()> {
    let toml = doc.to_toml()?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &toml).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    if node_running(dir) {
        let out = NodeApi::of(dir)?.publish(Some(("application/toml", &toml)))?;
        eprintln!("self-description re-published (seq {})", out.seq);
    } else {
        eprintln!("self-description updated; the node publishes it when it starts");
    }
    Ok(())
}

fn add(a: AddArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let text = datadir::read_text(&a.policy, 64 * 1024)?;
    let policy = Policy::parse(&text).with_context(|| a.policy.display().to_string())?;
    let mut registry = Registry::open(dir.root())?;
    if registry.get(&a.id).is_some() {
        bail!(
            "asset {:?} exists; `gaiamesh asset remove {}` first",
            a.id,
            a.id
        );
    }
    let (doc_path, mut doc) = document(&dir)?;
    if doc.services.iter().any(|s| s.id == a.id) {
        bail!(
            "the self-description already has a service {:?}; choose another asset id",
            a.id
        );
    }
    eprintln!("hashing {} …", a.path.display());
    let asset = Asset::scan(&a.id, &a.path, policy, now())?;
    let name = a.name.clone().or_else(|| {
        asset
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let mut service = Service::new(asset.id.clone(), ServiceKind::DataResource);
    service.name = name;
    service.description = a.description.clone();
    service.data_location = vec![doc.node.location.country.clone()];
    service.usage_policy = Some(asset.policy.summary());
    service.price = a.price.clone();
    doc.services.push(service);
    // The document is checked before anything is stored.
    gaiamesh_protocol::sd::validate_document(&doc)
        .map_err(|e| anyhow::anyhow!("the self-description would be invalid:\n{e}"))?;
    registry.add(asset.clone())?;
    store_document(&dir, &doc_path, &doc)?;
    if a.json {
        print_json(&asset)
    } else {
        println!(
            "asset {} ({} file(s), {} bytes, blake3 {}) registered: {}",
            asset.id,
            asset.files.len(),
            asset.size,
            asset.manifest_blake3,
            asset.policy.summary()
        );
        Ok(())
    }
}

fn list(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let registry = Registry::open(dir.root())?;
    let assets: Vec<&Asset> = registry.list().collect();
    if a.json {
        return print_json(&assets);
    }
    if assets.is_empty() {
        println!("no assets; add one with `gaiamesh asset add PATH --id ID --policy POLICY.toml`");
    }
    for x in assets {
        println!(
            "{:<24} {:>12} bytes {:>6} file(s)  {}\n    {}",
            x.id,
            x.size,
            x.files.len(),
            x.path.display(),
            x.policy.summary()
        );
    }
    Ok(())
}

fn remove(a: RemoveArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let mut registry = Registry::open(dir.root())?;
    let (doc_path, mut doc) = document(&dir)?;
    let removed = registry.remove(&a.id)?;
    doc.services.retain(|s| s.id != removed.id);
    store_document(&dir, &doc_path, &doc)?;
    println!("asset {} removed", removed.id);
    Ok(())
}
