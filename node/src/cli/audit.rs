//! `gaiamesh audit list|verify`: the node's hash-chained audit log of agreements,
//! transfers, receipts and refusals — through the API when the node runs, else from
//! `DATA_DIR/audit.redb` directly.

use anyhow::{Context, Result, bail};
use gaiamesh_exchange::audit::{AuditLog, Entry};

use super::{DataDirArg, StatusArgs, print_json};
use crate::{
    api_client::{NodeApi, node_running},
    datadir::DataDir,
};

/// `gaiamesh audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// List the entries (oldest first).
    List(ListArgs),
    /// Check the whole chain: every entry's hash, signature and link, and the signed head.
    /// Exits 1 naming the first broken entry.
    Verify(StatusArgs),
}

/// Arguments of `audit list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    data_dir: DataDirArg,
    /// First entry.
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Most entries.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The JSON view of an entry (hashes and ids in hex).
fn entry_json(e: &Entry) -> serde_json::Value {
    e.to_json()
}

fn summary(e: &serde_json::Value) -> String {
    let ev = &e["event"];
    let kind = e["kind"].as_str().unwrap_or("?");
    let inner = &ev[kind];
    let role = inner["role"].as_str().unwrap_or("?");
    let text = match kind {
        "agreement" => {
            let b = &inner["agreement"]["body"];
            format!(
                "{} {} for {:?} ({} bytes) provider {} consumer {}",
                inner["id"].as_str().map_or("?", |s| &s[..s.len().min(8)]),
                b["asset"].as_str().unwrap_or("?"),
                b["purpose"].as_str().unwrap_or("?"),
                b["size"],
                b["provider"].as_str().unwrap_or("?"),
                b["consumer"].as_str().unwrap_or("?"),
            )
        }
        "refusal" => format!(
            "{} {:?} by {}: {}",
            inner["asset"].as_str().unwrap_or("?"),
            inner["purpose"].as_str().unwrap_or("?"),
            inner["peer"].as_str().unwrap_or("?"),
            inner["reason"].as_str().unwrap_or("?")
        ),
        "transfer" => format!(
            "{} file {} from byte {}: {} bytes, {}",
            inner["agreement"]
                .as_str()
                .map_or("?", |s| &s[..s.len().min(8)]),
            inner["file"],
            inner["offset"],
            inner["bytes"],
            inner["outcome"].as_str().unwrap_or("?")
        ),
        "usage" => {
            let r = &inner["record"];
            let b = &r["body"];
            let price = b["charge"]["amount"].as_str().map_or(String::new(), |a| {
                format!(", {a} {}", b["charge"]["currency"].as_str().unwrap_or(""))
            });
            let signed = if r["consumer_signature"].is_null() {
                "signed by the provider"
            } else {
                "signed by both"
            };
            match b["algorithm"].as_str() {
                // a transfer's record
                Some("") => format!(
                    "transfer of {}: {} bytes sent in {:.1} ms{price} ({signed})",
                    b["asset"].as_str().unwrap_or("?"),
                    b["usage"]["bytes_read"],
                    b["usage"]["wall_us"].as_f64().unwrap_or(0.0) / 1e3,
                ),
                algorithm => format!(
                    "{} on {}: {}, {} fuel, read {} bytes, result {} bytes{price} ({signed})",
                    algorithm.unwrap_or("?"),
                    b["asset"].as_str().unwrap_or("?"),
                    b["outcome"].as_str().unwrap_or("?"),
                    b["usage"]["fuel"],
                    b["usage"]["bytes_read"],
                    b["usage"]["bytes_written"],
                ),
            }
        }
        "receipt" => {
            let b = &inner["receipt"]["body"];
            format!(
                "{} {} bytes signed by {}",
                b["agreement"]
                    .as_str()
                    .map_or("?", |s| &s[..s.len().min(8)]),
                b["bytes"],
                b["consumer"].as_str().unwrap_or("?")
            )
        }
        _ => String::new(),
    };
    format!(
        "{:>5}  {}  {kind:<9} {role:<8} {text}",
        e["seq"],
        e["at"].as_str().unwrap_or("?")
    )
}

fn open(dir: &DataDir) -> Result<AuditLog> {
    let path = dir.root().join("audit.redb");
    if !path.exists() {
        bail!(
            "{} has no audit log yet (it is created when the node first runs)",
            dir.root().display()
        );
    }
    AuditLog::open(&path, None).with_context(|| format!("cannot open {}", path.display()))
}

/// Runs `gaiamesh audit …`.
pub(super) fn run(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::List(a) => {
            let dir = DataDir::new(&a.data_dir.data_dir);
            let reply = if node_running(&dir) {
                // Decoded as the API declares it, then printed like the offline answer.
                serde_json::to_value(NodeApi::of(&dir)?.audit(a.from, a.limit)?)?
            } else {
                let log = open(&dir)?;
                let entries = log.list(a.from, a.limit)?;
                serde_json::json!({
                    "total": log.len()?,
                    "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
                })
            };
            if a.json {
                return print_json(&reply);
            }
            let entries = reply["entries"].as_array().cloned().unwrap_or_default();
            println!("{} entries", reply["total"]);
            for e in &entries {
                println!("{}", summary(e));
            }
            Ok(())
        }
        AuditCommand::Verify(a) => {
            let dir = DataDir::new(&a.data_dir.data_dir);
            let verified = if node_running(&dir) {
                NodeApi::of(&dir)?.audit_verify()?
            } else {
                let key = dir.key()?.public();
                open(&dir)?.verify(&key)?
            };
            if a.json {
                return print_json(&verified);
            }
            println!(
                "audit log intact: {} entries, head {}",
                verified.entries, verified.head
            );
            Ok(())
        }
    }
}
