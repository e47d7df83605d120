//! `gaiamesh init`.

use std::{fs, path::PathBuf};

use anyhow::{Context, Result, bail};
use gaiamesh_protocol::identity::Keypair;
use serde::Serialize;

use super::print_json;
use crate::{
    datadir::{self, DataDir},
    keystore, now,
};

/// Arguments of `gaiamesh init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The data directory to create (or complete, when it exists).
    #[arg(long, short = 'd', env = "GAIAMESH_DATA_DIR", value_name = "DIR")]
    data_dir: PathBuf,
    /// The federation's genesis.toml, copied into the data dir.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// The membership credential the federation issued for this node.
    #[arg(long, value_name = "FILE")]
    credential: Option<PathBuf>,
    /// Use this node key (a key file written by `gaiamesh init`) instead of generating one:
    /// for nodes whose keys are made ahead of admission, as the Kubernetes manifests do.
    /// Refused when the data dir already holds another key.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct InitOutput {
    peer_id: String,
    data_dir: PathBuf,
    key_created: bool,
    federation: Option<String>,
    member: bool,
}

pub(super) fn run(args: InitArgs) -> Result<()> {
    let dir = DataDir::new(&args.data_dir);
    fs::create_dir_all(dir.root())
        .with_context(|| format!("cannot create {}", dir.root().display()))?;
    let given = match &args.key {
        Some(path) => {
            Some(keystore::read(path).with_context(|| format!("--key {}", path.display()))?)
        }
        None => None,
    };
    let key_created = !dir.key_path().exists();
    let key = if key_created {
        let k = given.unwrap_or_else(Keypair::generate);
        keystore::write_new(&dir.key_path(), &k)?;
        k
    } else {
        let k = dir.key()?;
        if let Some(g) = &given
            && g.public() != k.public()
        {
            bail!(
                "{} already holds the key of {}, not the one in --key ({}); \
                 a node keeps its key for life",
                dir.root().display(),
                k.public(),
                g.public()
            );
        }
        k
    };
    if !dir.config_path().exists() {
        datadir::write_atomic(&dir.config_path(), DEFAULT_CONFIG.as_bytes())?;
    }
    let mut federation = None;
    if let Some(g) = &args.genesis {
        let trust = datadir::load_trust(g)?;
        fs::copy(g, dir.genesis_path()).with_context(|| format!("cannot copy {}", g.display()))?;
        federation = Some(trust.id().to_string());
    }
    let mut member = false;
    if let Some(c) = &args.credential {
        let cred = datadir::load_credential(c)?;
        let trust = dir
            .trust()
            .context("a credential needs the federation's genesis (--genesis)")?;
        if let Err(e) = trust.verify_credential(&cred, Some(&key.public()), now()) {
            bail!(
                "{} is not a valid credential for this node: {e}",
                c.display()
            );
        }
        fs::copy(c, dir.credential_path())
            .with_context(|| format!("cannot copy {}", c.display()))?;
        member = true;
    }
    let out = InitOutput {
        peer_id: key.public().to_string(),
        data_dir: args.data_dir.clone(),
        key_created,
        federation,
        member,
    };
    if args.json {
        return print_json(&out);
    }
    println!("{}", out.peer_id);
    let verb = if key_created {
        "created"
    } else {
        "kept the existing key in"
    };
    eprintln!("{verb} {}", dir.root().display());
    if let Some(f) = &out.federation {
        eprintln!("federation {f}");
    }
    if !member {
        eprintln!(
            "next: ask the federation to admit this node:\n  gaiamesh federation admit --federation FED_DIR --peer {} --participant FILE --out membership.cred",
            out.peer_id
        );
    }
    Ok(())
}

const DEFAULT_CONFIG: &str = include_str!("../../../config/examples/node.toml");
