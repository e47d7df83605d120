//! `gaiamesh run` and `gaiamesh status`.

use anyhow::{Context, Result, bail};

use super::{DataDirArg, StatusArgs, print_json};
use crate::{daemon, datadir::DataDir};

/// Arguments of `gaiamesh run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Log format: human or json (overrides log.format of config.toml).
    #[arg(long)]
    log_format: Option<String>,
    /// Read the configuration from FILE instead of DIR/config.toml (the Debian package uses
    /// /etc/gaiamesh/config.toml). SIGHUP re-reads it.
    #[arg(long, env = "GAIAMESH_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

pub(super) fn run(a: RunArgs) -> Result<()> {
    let mut dir = DataDir::new(&a.data_dir.data_dir);
    if let Some(path) = &a.config {
        if !path.exists() {
            bail!("--config {}: no such file", path.display());
        }
        dir = dir.with_config(path);
    }
    let config = dir.config()?;
    let json = match a.log_format.as_deref() {
        Some("json") => true,
        Some("human") => false,
        Some(other) => bail!("--log-format {other:?} must be human or json"),
        None => config.log.format == gaiamesh_config::LogFormat::Json,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.filter))
        .with_context(|| format!("log.filter {:?}", config.log.filter))?;
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // SIGHUP may set another filter (daemon::service::reload).
    let log: daemon::LogFilter = if json {
        let b = builder.json().with_filter_reloading();
        let handle = b.reload_handle();
        b.init();
        filter_setter(handle)
    } else {
        let b = builder.with_filter_reloading();
        let handle = b.reload_handle();
        b.init();
        filter_setter(handle)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(daemon::run(dir, Some(log)))
}

/// The daemon's way to set another log filter through the subscriber's reload handle.
fn filter_setter<S: 'static>(
    handle: tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, S>,
) -> daemon::LogFilter {
    Box::new(move |f| Ok(handle.reload(tracing_subscriber::EnvFilter::try_new(f)?)?))
}

use crate::api_client::NodeApi;
pub(crate) use crate::api_client::node_running;

pub(super) fn status(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let st = NodeApi::of(&dir)?.status()?;
    if a.json {
        return print_json(&st);
    }
    println!("peer       {}", st.peer_id);
    println!("federation {}", st.federation);
    println!(
        "peers      {} connected, {} admitted",
        st.connected_peers, st.admitted_peers
    );
    println!("directory  {} entries", st.directory_entries);
    for a in &st.listen_addrs {
        println!("listening  {a}");
    }
    Ok(())
}

pub(super) fn peers(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let peers = NodeApi::of(&dir)?.peers()?;
    if a.json {
        return print_json(&peers);
    }
    for p in &peers {
        let admitted = if p.admitted { "admitted" } else { "pending" };
        println!("{}  {admitted}", p.peer_id);
    }
    Ok(())
}

/// Revocation commands.
#[derive(Debug, clap::Subcommand)]
pub enum RevocationsCommand {
    /// Apply a newer revocation list: through the running node (which gossips it to the
    /// federation and disconnects revoked peers), or into the data dir for the next start.
    Apply {
        /// The list (`revocations.toml` of the federation directory).
        file: std::path::PathBuf,
        #[command(flatten)]
        data_dir: DataDirArg,
    },
}

pub(super) fn revocations(cmd: RevocationsCommand) -> Result<()> {
    let RevocationsCommand::Apply { file, data_dir } = cmd;
    let dir = DataDir::new(&data_dir.data_dir);
    let text = crate::datadir::read_text(&file, 8 * 1024 * 1024)?;
    let list = gaiamesh_protocol::federation::RevocationList::from_toml(&text)
        .with_context(|| format!("{}", file.display()))?;
    if node_running(&dir) {
        let out = NodeApi::of(&dir)?.revoke(&text)?;
        println!(
            "revocation list version {} in force; {} entries removed",
            list.body.version, out.removed_entries
        );
        return Ok(());
    }
    let mut trust = dir.trust()?;
    let current = dir.root().join("revocations.toml");
    if current.exists() {
        let old = gaiamesh_protocol::federation::RevocationList::from_toml(
            &crate::datadir::read_text(&current, 8 * 1024 * 1024)?,
        )?;
        trust.apply_revocations(&old)?;
    }
    trust
        .apply_revocations(&list)
        .with_context(|| format!("{}", file.display()))?;
    crate::datadir::write_atomic(&current, text.as_bytes())?;
    println!(
        "revocation list version {} stored; it takes effect when the node starts",
        list.body.version
    );
    Ok(())
}
