//! Directory ingest (DESIGN §11) against a baseline measured in the same run: verify +
//! merge + persist in redb, cold and warm, against bare signature verification of the same
//! records.
//!
//! `cargo bench -p gaiamesh-directory --bench directory` (`GAIAMESH_BENCH_RECORDS`, default
//! 20000). Prints a Markdown table on stdout; progress on stderr. Query latency against
//! SQLite and reconciliation bytes are measured by `cargo run --release -p gaiamesh-bench`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

use std::time::{Duration, Instant};

use gaiamesh_directory::{catalogue::Catalogue, store::RedbStore};
use gaiamesh_protocol::{
    sd::SignedSelfDescription,
    testing::{NOW, TestFederation, signed_catalogue},
};

fn bench_ingest(f: &TestFederation, recs: &[SignedSelfDescription]) {
    // Re-published versions (seq 2) of the same subjects, with the same credentials.
    let updates = signed_catalogue(f, recs.len(), 2);
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

fn main() {
    // `cargo bench` passes --bench; arguments are ignored.
    let n: usize = std::env::var("GAIAMESH_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let f = TestFederation::new(3, 2, true);
    eprintln!("signing {n} generated self-descriptions");
    let recs = signed_catalogue(&f, n, 1);
    println!(
        "## Ingest: verify + merge + persist (redb, batches of 1000), one core, SDs per second\n"
    );
    println!(
        "| records | cold: first sight of each credential | warm: re-published versions | baseline: SD signature check only | cold / baseline | warm / baseline |"
    );
    println!("|---|---|---|---|---|---|");
    bench_ingest(&f, &recs);
}
