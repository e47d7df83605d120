//! `gaiamesh query`.

use anyhow::{Result, anyhow};
use gaiamesh_directory::{
    catalogue::QueryOptions,
    query::{self, Sort},
};
use serde::Serialize;

use super::{DataDirArg, print_json};
use crate::{datadir::DataDir, now};

/// Arguments of `gaiamesh query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The query, e.g. 'service.kind = storage.object and service.price.amount < 0.02'.
    expr: String,
    #[command(flatten)]
    data_dir: DataDirArg,
    /// Sort by FIELD, ascending, or FIELD:desc.
    #[arg(long, value_name = "FIELD[:desc]")]
    sort: Option<Sort>,
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

#[derive(Serialize)]
struct Row {
    subject: String,
    seq: u64,
    legal_name: String,
    country: String,
    service: Option<serde_json::Value>,
}

pub(super) fn run(a: QueryArgs) -> Result<()> {
    let expr =
        query::parse(&a.expr).map_err(|e| anyhow!("invalid query:\n{}", e.render(&a.expr)))?;
    let dir = DataDir::new(&a.data_dir.data_dir);
    let cat = dir.catalogue()?;
    let started = std::time::Instant::now();
    let out = cat.query(
        &expr,
        QueryOptions {
            sort: a.sort,
            limit: Some(a.limit),
        },
        now(),
    );
    let elapsed = started.elapsed();
    let mut rows = Vec::new();
    for m in &out.matches {
        let Some(e) = cat.get(&m.subject)? else {
            continue;
        };
        let doc = &e.record.sd.document;
        rows.push(Row {
            subject: m.subject.to_string(),
            seq: m.seq,
            legal_name: doc.participant.legal_name.clone(),
            country: doc.node.location.country.clone(),
            service: m
                .service_index
                .and_then(|i| doc.services.get(i))
                .map(serde_json::to_value)
                .transpose()?,
        });
    }
    if a.json {
        return print_json(&serde_json::json!({
            "plan": a.explain.then(|| out.plan.to_string()),
            "total": out.total,
            "examined": out.examined,
            "matches": rows,
        }));
    }
    if a.explain {
        println!("{}\n", out.plan);
    }
    for r in &rows {
        let svc = r.service.as_ref();
        let field = |k: &str| {
            svc.and_then(|s| s.get(k))
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_owned()
        };
        let price = svc
            .and_then(|s| s.get("price"))
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
            r.legal_name,
            r.country,
            field("id"),
            field("kind"),
            price,
            r.subject
        );
    }
    eprintln!(
        "{} of {} match(es), {} node(s) examined in {:.2} ms",
        rows.len(),
        out.total,
        out.examined,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}
