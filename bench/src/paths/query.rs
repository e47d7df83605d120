//! Queries over a generated catalogue against SQLite on the same rows (DESIGN §11).
//!
//! The catalogue is generated from the example self-descriptions, varied per entry, every
//! record signed and carrying a threshold-signed membership credential. The SQLite baseline
//! (rusqlite, bundled SQLite, in memory) holds the same (node, service) rows with indexes on
//! subdivision, country and service kind, `ANALYZE`d, and runs the equivalent SQL through a
//! cached prepared statement. Both sides must return the same number of matches; both are
//! warmed up alike and timed over the same number of repetitions.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use gaiamesh_directory::{
    catalogue::{Catalogue, QueryOptions},
    query,
    store::MemoryStore,
};
use gaiamesh_protocol::{
    sd::{SignedSelfDescription, parse_decimal},
    testing::{NOW, TestFederation, signed_catalogue},
};

use crate::report::{Bound, Check, Row};

/// An indexed query: two index lookups intersected, then a filter.
pub const SELECTIVE: &str = "node.location.subdivision = DE-3 and service.kind = storage.object and service.price.amount < 0.03";
const SELECTIVE_SQL: &str = "SELECT subject, idx FROM rows WHERE subdivision = 'de-3' AND kind = 'storage.object' AND price < 0.03";
/// A query no index helps: a full scan.
pub const FULL_SCAN: &str = "node.energy.renewable_pct >= 50 and service.price.amount < 0.02";
const FULL_SCAN_SQL: &str = "SELECT subject, idx FROM rows WHERE renewable >= 50 AND price < 0.02";

/// Median and 99th percentile of `reps` timed calls of `f`, after `reps / 10 + 1` untimed
/// ones; and the last result.
pub fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut last = f();
    for _ in 0..reps / 10 {
        last = f();
    }
    let mut samples: Vec<Duration> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            last = f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), last)
}

/// The SQLite baseline holding the same rows as the catalogue.
pub fn sqlite(records: &[SignedSelfDescription]) -> Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open_in_memory()?;
    db.execute_batch(
        "CREATE TABLE rows (subject BLOB, idx INTEGER, country TEXT, subdivision TEXT, node_kind TEXT,
                            renewable REAL, kind TEXT, price REAL);
         CREATE INDEX by_subdivision ON rows(subdivision);
         CREATE INDEX by_country ON rows(country);
         CREATE INDEX by_kind ON rows(kind);",
    )?;
    let tx = db.unchecked_transaction()?;
    {
        let mut ins = tx.prepare("INSERT INTO rows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for r in records {
            let d = &r.sd.document;
            let n = &d.node;
            for (i, s) in d.services.iter().enumerate() {
                ins.execute(rusqlite::params![
                    r.sd.subject.to_bytes().to_vec(),
                    i64::try_from(i)?,
                    n.location.country.to_lowercase(),
                    n.location.subdivision.as_deref().map(str::to_lowercase),
                    n.kind.as_str(),
                    n.energy
                        .as_ref()
                        .and_then(|e| e.renewable_pct)
                        .map(f64::from),
                    s.kind.as_str(),
                    s.price.as_ref().and_then(|p| parse_decimal(&p.amount)),
                ])?;
            }
        }
    }
    tx.commit()?;
    db.execute_batch("ANALYZE;")?;
    Ok(db)
}

fn sql_count(db: &rusqlite::Connection, sql: &str) -> Result<usize> {
    let mut stmt = db.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
    let mut n = 0;
    for r in rows {
        r?;
        n += 1;
    }
    Ok(n)
}

/// "100k" for 100000.
pub fn size_label(n: usize) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The selective and the full-scan query over `entries` generated self-descriptions.
pub fn run(entries: usize, quick: bool) -> Result<Vec<Row>> {
    let f = TestFederation::new(3, 2, true);
    eprintln!("query: signing {entries} generated self-descriptions");
    let started = Instant::now();
    let records = signed_catalogue(&f, entries, 1);
    eprintln!(
        "query: building the catalogue and SQLite ({:.1?} so far)",
        started.elapsed()
    );
    let mut cat = Catalogue::open(MemoryStore::new(), f.trust.clone(), usize::MAX)?;
    for chunk in records.chunks(5000) {
        cat.merge_batch(chunk.iter().map(|r| (r.clone(), None)).collect(), NOW)?;
    }
    let db = sqlite(&records)?;
    let label = size_label(entries);
    let mut rows = Vec::new();
    for (name, q, sql, reps, target) in [
        (
            "selective",
            SELECTIVE,
            SELECTIVE_SQL,
            if quick { 2000 } else { 500 },
            0.5,
        ),
        (
            "full scan",
            FULL_SCAN,
            FULL_SCAN_SQL,
            if quick { 50 } else { 30 },
            1.0,
        ),
    ] {
        let expr = query::parse(q).with_context(|| format!("parsing {q}"))?;
        let (p50, _, out) = time(reps, || cat.query(&expr, QueryOptions::default(), NOW));
        let (s50, _, count) = time(reps, || sql_count(&db, sql));
        let count = count?;
        ensure!(
            out.total == count,
            "gaiamesh found {} and SQLite {count} for {q}",
            out.total
        );
        let ratio = p50.as_secs_f64() / s50.as_secs_f64();
        rows.push(Row {
            path: format!("query {label}, {name}"),
            ours: format!("{:.3} ms p50 ({count} matches)", p50.as_secs_f64() * 1e3),
            baseline: format!("SQLite {:.3} ms p50", s50.as_secs_f64() * 1e3),
            ratio: Some(ratio),
            checks: vec![Check::new("ratio", ratio, Bound::AtMost(target))],
        });
    }
    Ok(rows)
}
