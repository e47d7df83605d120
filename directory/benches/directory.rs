//! Directory benchmarks (DESIGN §11), each against a baseline measured in the same run:
//! - query latency (p50/p99) on generated catalogues vs SQLite on the same rows and query;
//! - ingest (verify + merge + persist in redb) vs bare signature verification;
//! - reconciliation round trips and bytes for 100k entries with 0, 10 and 1000 differences.
//!
//! `cargo bench -p gaiamesh-directory --bench directory` (sizes: `GAIAMESH_BENCH_SIZES=10000,100000`).
//! Prints a Markdown report on stdout; progress on stderr.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use gaiamesh_directory::{
    catalogue::{Catalogue, QueryOptions},
    query,
    reconcile::{Initiator, Item, ReconcileSet, respond},
    store::{MemoryStore, RedbStore},
};
use gaiamesh_protocol::{
    identity::Keypair,
    sd::{SignedSelfDescription, parse_decimal},
    testing::{NOW, TestFederation, example_documents, generated_document},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SELECTIVE: &str = "node.location.subdivision = DE-3 and service.kind = storage.object and service.price.amount < 0.03";
const SELECTIVE_SQL: &str = "SELECT subject, idx FROM rows WHERE subdivision = 'de-3' AND kind = 'storage.object' AND price < 0.03";
const UNSELECTIVE: &str = "node.energy.renewable_pct >= 50 and service.price.amount < 0.02";
const UNSELECTIVE_SQL: &str =
    "SELECT subject, idx FROM rows WHERE renewable >= 50 AND price < 0.02";

fn records(f: &TestFederation, n: usize) -> Vec<SignedSelfDescription> {
    let examples = example_documents();
    let started = Instant::now();
    (0..n)
        .map(|i| {
            if i % 10_000 == 0 && i > 0 {
                eprintln!("  signed {i}/{n} ({:.0?})", started.elapsed());
            }
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            f.sign_document(
                &Keypair::from_secret_bytes(&seed),
                1,
                generated_document(&examples, i),
            )
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn time<T>(reps: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut last = f();
    for _ in 0..reps / 10 {
        last = f();
    }
    let mut samples: Vec<Duration> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            last = f();
            t.elapsed()
        })
        .collect();
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99), last)
}

fn sqlite(records: &[SignedSelfDescription]) -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE rows (subject BLOB, idx INTEGER, country TEXT, subdivision TEXT, node_kind TEXT,
                            renewable REAL, kind TEXT, price REAL);
         CREATE INDEX by_subdivision ON rows(subdivision);
         CREATE INDEX by_country ON rows(country);
         CREATE INDEX by_kind ON rows(kind);",
    )
    .unwrap();
    let tx = db.unchecked_transaction().unwrap();
    {
        let mut ins = tx
            .prepare("INSERT INTO rows VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .unwrap();
        for r in records {
            let d = &r.sd.document;
            let n = &d.node;
            for (i, s) in d.services.iter().enumerate() {
                ins.execute(rusqlite::params![
                    r.sd.subject.to_bytes().to_vec(),
                    i as i64,
                    n.location.country.to_lowercase(),
                    n.location.subdivision.as_deref().map(str::to_lowercase),
                    n.kind.as_str(),
                    n.energy
                        .as_ref()
                        .and_then(|e| e.renewable_pct)
                        .map(f64::from),
                    s.kind.as_str(),
                    s.price.as_ref().and_then(|p| parse_decimal(&p.amount)),
                ])
                .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    db.execute_batch("ANALYZE;").unwrap();
    db
}

fn sql_query(db: &rusqlite::Connection, sql: &str) -> usize {
    let mut stmt = db.prepare_cached(sql).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    rows.map(Result::unwrap).count()
}

fn bench_queries(f: &TestFederation, recs: &[SignedSelfDescription]) {
    let n = recs.len();
    eprintln!("building catalogue and SQLite with {n} entries");
    let mut cat = Catalogue::open(MemoryStore::new(), f.trust.clone(), usize::MAX).unwrap();
    for chunk in recs.chunks(5000) {
        cat.merge_batch(chunk.iter().map(|r| (r.clone(), None)).collect(), NOW)
            .unwrap();
    }
    let db = sqlite(recs);
    for (name, q, sql, reps) in [
        ("selective", SELECTIVE, SELECTIVE_SQL, 500),
        ("unselective", UNSELECTIVE, UNSELECTIVE_SQL, 30),
    ] {
        let expr = query::parse(q).unwrap();
        let (p50, p99, out) = time(reps, || cat.query(&expr, QueryOptions::default(), NOW));
        let (s50, s99, count) = time(reps, || sql_query(&db, sql));
        assert_eq!(out.total, count, "gaiamesh and SQLite disagree on {q}");
        println!(
            "| {n} | {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}x |",
            out.total,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            s50.as_secs_f64() * 1e3,
            s99.as_secs_f64() * 1e3,
            p50.as_secs_f64() / s50.as_secs_f64()
        );
    }
}

fn bench_ingest(f: &TestFederation, recs: &[SignedSelfDescription]) {
    // Re-published versions (seq 2) of the same subjects, with the same credentials.
    let examples = example_documents();
    let updates: Vec<_> = (0..recs.len())
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            f.sign_document(
                &Keypair::from_secret_bytes(&seed),
                2,
                generated_document(&examples, i),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cat = Catalogue::open(
        RedbStore::open(&dir.path().join("db.redb")).unwrap(),
        f.trust.clone(),
        usize::MAX,
    )
    .unwrap();
    let mut merge_all = |records: &[SignedSelfDescription]| {
        let t = Instant::now();
        for chunk in records.chunks(1000) {
            let outs = cat
                .merge_batch(chunk.iter().map(|r| (r.clone(), None)).collect(), NOW)
                .unwrap();
            assert!(
                outs.iter().all(|o| o.changed()),
                "{:?}",
                outs.iter().find(|o| !o.changed())
            );
        }
        t.elapsed()
    };
    let cold = merge_all(recs);
    let warm = merge_all(&updates);
    let t = Instant::now();
    for r in recs {
        r.verify(NOW).unwrap();
    }
    let verify_only = t.elapsed();
    let rate = |d: Duration| recs.len() as f64 / d.as_secs_f64();
    println!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
        recs.len(),
        rate(cold),
        rate(warm),
        rate(verify_only),
        rate(cold) / rate(verify_only),
        rate(warm) / rate(verify_only)
    );
}

fn bench_reconcile() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let common: Vec<Item> = (0..100_000)
        .map(|_| Item {
            key: rng.r#gen(),
            id: rng.r#gen(),
        })
        .collect();
    for diffs in [0usize, 10, 1000] {
        let mut a = common.clone();
        let mut b = common.clone();
        for i in 0..diffs {
            let it = Item {
                key: rng.r#gen(),
                id: rng.r#gen(),
            };
            if i % 2 == 0 { a.push(it) } else { b.push(it) }
        }
        let (sa, sb) = (ReconcileSet::new(a), ReconcileSet::new(b));
        let t = Instant::now();
        let (mut init, mut msg) = Initiator::start(sa);
        let (mut trips, mut bytes) = (0, 0);
        loop {
            bytes += msg.encode().unwrap().len();
            let reply = respond(&sb, &msg).unwrap();
            bytes += reply.encode().unwrap().len();
            trips += 1;
            match init.handle(&reply).unwrap() {
                Some(next) => msg = next,
                None => break,
            }
        }
        let found = init.have().count() + init.need().count();
        assert_eq!(found, diffs);
        println!(
            "| 100000 | {diffs} | {trips} | {bytes} | {:.1} | {:.1} |",
            bytes as f64 / 1024.0,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; arguments are ignored.
    let sizes: Vec<usize> = std::env::var("GAIAMESH_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let f = TestFederation::new(3, 2, true);
    let max = sizes.iter().copied().max().unwrap_or(0);
    eprintln!("signing {max} generated self-descriptions");
    let recs = records(&f, max);
    println!("## Query latency (ms), gaiamesh vs SQLite (in-memory, indexed) on the same rows\n");
    println!(
        "| entries | query | matches | gaiamesh p50 | gaiamesh p99 | SQLite p50 | SQLite p99 | p50 ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for n in &sizes {
        bench_queries(&f, &recs[..*n]);
    }
    println!("\nselective: `{SELECTIVE}`  \nunselective: `{UNSELECTIVE}`\n");
    println!(
        "## Ingest: verify + merge + persist (redb, batches of 1000), one core, SDs per second\n"
    );
    println!(
        "| records | cold: first sight of each credential | warm: re-published versions | baseline: SD signature check only | cold / baseline | warm / baseline |"
    );
    println!("|---|---|---|---|---|---|");
    bench_ingest(&f, &recs[..recs.len().min(20_000)]);
    println!("\n## Reconciliation, 100k entries\n");
    println!("| entries | differences | round trips | bytes (both ways) | KiB | time (ms) |");
    println!("|---|---|---|---|---|---|");
    bench_reconcile();
}
