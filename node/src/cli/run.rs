//! `gaiamesh run` and `gaiamesh status`.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::{DataDirArg, print_json};
use crate::{daemon, datadir::DataDir};

/// Arguments of `gaiamesh run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Log format: human or json (overrides log.format of config.toml).
    #[arg(long)]
    log_format: Option<String>,
}

/// Arguments of `gaiamesh status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(a: RunArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let config = dir.config()?;
    let json = match a.log_format.as_deref() {
        Some("json") => true,
        Some("human") => false,
        Some(other) => bail!("--log-format {other:?} must be human or json"),
        None => config.log.format == gaiamesh_config::LogFormat::Json,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(daemon::run(dir))
}

/// GETs `path` from the node's API (address from `api.json`), returning the JSON body.
pub(crate) fn api_get(dir: &DataDir, path: &str) -> Result<serde_json::Value> {
    api_request(dir, "GET", path, None)
}

/// Whether a node is running on `dir` (its `api.json` exists).
pub(crate) fn node_running(dir: &DataDir) -> bool {
    dir.root().join("api.json").exists()
}

/// Percent-encodes a query-string value.
pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends a request to the node's API; writes carry the token from `api.json`.
pub(crate) fn api_request(
    dir: &DataDir,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<serde_json::Value> {
    let info_path = dir.root().join("api.json");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).with_context(|| {
            format!(
                "no node is running on {} (no api.json)",
                dir.root().display()
            )
        })?)?;
    let address = info["address"]
        .as_str()
        .context("api.json has no address")?;
    let hostport = address
        .strip_prefix("http://")
        .context("api.json address is not http://")?;
    let mut stream = TcpStream::connect(hostport)
        .with_context(|| format!("cannot reach the node at {address}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let token = info["token"].as_str().unwrap_or_default();
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    let status = head.split_whitespace().nth(1).unwrap_or("?");
    let value: serde_json::Value =
        serde_json::from_str(body).with_context(|| format!("unexpected response: {body}"))?;
    if status != "200" {
        bail!("{}", value["error"].as_str().unwrap_or(body));
    }
    Ok(value)
}

pub(super) fn status(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let st = api_get(&dir, "/api/v1/status")?;
    if a.json {
        return print_json(&st);
    }
    println!("peer       {}", st["peer_id"].as_str().unwrap_or("?"));
    println!("federation {}", st["federation"].as_str().unwrap_or("?"));
    println!(
        "peers      {} connected, {} admitted",
        st["connected_peers"], st["admitted_peers"]
    );
    println!("directory  {} entries", st["directory_entries"]);
    if let Some(addrs) = st["listen_addrs"].as_array() {
        for a in addrs {
            println!("listening  {}", a.as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

pub(super) fn peers(a: StatusArgs) -> Result<()> {
    let dir = DataDir::new(&a.data_dir.data_dir);
    let peers = api_get(&dir, "/api/v1/peers")?;
    if a.json {
        return print_json(&peers);
    }
    for p in peers.as_array().into_iter().flatten() {
        let admitted = if p["admitted"].as_bool() == Some(true) {
            "admitted"
        } else {
            "pending"
        };
        println!("{}  {admitted}", p["peer_id"].as_str().unwrap_or("?"));
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
        let out = api_request(&dir, "POST", "/api/v1/revocations", Some(&text))?;
        println!(
            "revocation list version {} in force; {} entries removed",
            list.body.version, out["removed_entries"]
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
