//! `gaiamesh query`: through the running node's API, or offline on the data dir's catalogue.

use anyhow::{Result, anyhow};
use gaiamesh_directory::{
    catalogue::QueryOptions,
    query::{self, Sort},
};

use super::{DataDirArg, print_json, run::node_running};
use crate::{api_client::NodeApi, datadir::DataDir, now};

/// Arguments of `gaiamesh query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The query, e.g. 'service.kind = storage.object and service.price.amount < 0.02'.
    expr: String,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Sort by FIELD, ascending, or FIELD:desc.
    #[arg(long, value_name = "FIELD[:desc]")]
    sort: Option<String>,
    /// At most N matches.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print the plan (index or scan) before the results.
    #[arg(long)]
    explain: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the query on the catalogue file (no node running).
fn offline(
    dir: &DataDir,
    expr: &query::Expr,
    sort: Option<Sort>,
    limit: usize,
) -> Result<serde_json::Value> {
    let cat = dir.catalogue()?;
    let out = cat.query(
        expr,
        QueryOptions {
            sort,
            limit: Some(limit),
            offset: 0,
        },
        now(),
    );
    let mut matches = Vec::new();
    for m in &out.matches {
        let Some(e) = cat.get(&m.subject)? else {
            continue;
        };
        let doc = &e.record.sd.document;
        matches.push(serde_json::json!({
            "subject": m.subject.to_string(),
            "seq": m.seq,
            "legal_name": doc.participant.legal_name,
            "country": doc.node.location.country,
            "service": m.service_index.and_then(|i| doc.services.get(i)),
        }));
    }
    Ok(
        serde_json::json!({ "plan": out.plan.to_string(), "total": out.total, "examined": out.examined, "matches": matches }),
    )
}

pub(super) fn run(a: QueryArgs) -> Result<()> {
    let expr =
        query::parse(&a.expr).map_err(|e| anyhow!("invalid query:\n{}", e.render(&a.expr)))?;
    let sort = a
        .sort
        .as_deref()
        .map(str::parse::<Sort>)
        .transpose()
        .map_err(|e| anyhow!("--sort: {e}"))?;
    let dir = DataDir::new(&a.data_dir.data_dir);
    let started = std::time::Instant::now();
    let result = if node_running(&dir) {
        // Decoded as the API declares it, then printed like the offline answer.
        let reply = NodeApi::of(&dir)?.directory(&a.expr, a.sort.as_deref(), a.limit)?;
        serde_json::to_value(reply)?
    } else {
        offline(&dir, &expr, sort, a.limit)?
    };
    let elapsed = started.elapsed();
    if a.json {
        let mut out = result.clone();
        if !a.explain {
            out["plan"] = serde_json::Value::Null;
        }
        return print_json(&out);
    }
    if a.explain {
        println!("{}\n", result["plan"].as_str().unwrap_or("?"));
    }
    let rows = result["matches"].as_array().cloned().unwrap_or_default();
    for r in &rows {
        let svc = &r["service"];
        let field = |k: &str| {
            svc.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_owned()
        };
        let price = svc
            .get("price")
            .filter(|p| !p.is_null())
            .map(|p| {
                format!(
                    "{} {}/{}",
                    p["amount"].as_str().unwrap_or("?"),
                    p["currency"].as_str().unwrap_or("?"),
                    p["unit"].as_str().unwrap_or("?")
                )
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<34} {}  {:<22} {:<16} {:<24} {}",
            r["legal_name"].as_str().unwrap_or("?"),
            r["country"].as_str().unwrap_or("?"),
            field("id"),
            field("kind"),
            price,
            r["subject"].as_str().unwrap_or("?")
        );
    }
    eprintln!(
        "{} of {} match(es), {} node(s) examined, {:.2} ms",
        rows.len(),
        result["total"],
        result["examined"],
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
